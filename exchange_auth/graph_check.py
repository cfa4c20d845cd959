"""The few Graph reads exchange_auth makes itself: "Test connection" and mailbox access checks.

They go through ``GraphClient`` like every other Graph call (STYLE 6); this
module turns its errors into sentences an admin can act on: ``GraphCallError``
(Graph's status and code) or, when Graph could not be reached, the
``CredentialError`` that names why.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import unquote, urlsplit

from exchange_auth.credentials import (
    CredentialError,
    GraphToken,
    app_token,
    delegated_user_token,
    translate_exception,
)
from exchange_auth.graph import GraphClient, GraphError, users_path
from exchange_auth.http import new_session
from exchange_auth.models import CalendarProvider

# A token function (asked again with force_refresh=True after a 401), or one token as is.
Token = GraphToken | Callable[..., GraphToken]


class GraphCallError(CredentialError):
    """Graph answered with an error; ``status`` and ``code`` are Graph's (e.g. 403 ErrorAccessDenied)."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message, cause="graph_error")
        self.status = status
        self.code = code


class _Bearer:
    """The client's token callable; remembers the token it last handed out, so an error can say whose it was."""

    def __init__(self, token: Token):
        self._source = token
        self.last = token if isinstance(token, str) else None

    def __call__(self, force_refresh: bool = False) -> str:
        if not isinstance(self._source, str):
            self.last = self._source(force_refresh=force_refresh)
        return self.last


def _read(provider: CalendarProvider, token: Token, path: str, read: Callable[[GraphClient], object]):
    """``read(client)`` with a client acting with ``token``; Graph's errors as sentences.

    One attempt per call (``max_attempts=1``): an admin is waiting for the answer, so the
    first failure is reported rather than retried with backoff."""
    bearer = _Bearer(token)
    with new_session() as session:
        client = GraphClient(bearer, base_url=provider.graph_base_url, session=session, max_attempts=1, credential_label="check")
        try:
            return read(client)
        except GraphError as exc:
            raise _sentence(exc, provider, client.root + path, bearer.last) from None


def _sentence(exc: GraphError, provider: CalendarProvider, url: str, token: str | None) -> CredentialError:
    if exc.status == 0:  # no HTTP answer: TLS, refused, timeout
        return translate_exception(exc.__cause__ or exc, provider, url=url)
    code = exc.code or f"HTTP {exc.status}"
    who = f"{token.kind} token of {token.identity}" if isinstance(token, GraphToken) else "token"
    if exc.status == 403:
        message = f"Access denied to {unquote(urlsplit(url).path)} for the {who}: {code}: {exc.message}"
    elif exc.status == 401:
        message = f"Graph refused the {who} ({code}): {exc.message}"
    else:
        message = f"Graph answered {exc.status} {code}: {exc.message}"
    return GraphCallError(message, status=exc.status, code=code)


def graph_get(provider: CalendarProvider, token: Token, path: str, *, params: dict | None = None) -> dict:
    """The JSON of ``GET {graph_base_url}/{path}`` (``path`` e.g. ``me``)."""
    path = "/" + path.lstrip("/")
    return _read(provider, token, path, lambda client: client.get(path, params=params) or {})


def graph_post(provider: CalendarProvider, token: Token, path: str, *, json: dict) -> dict:
    """The JSON of ``POST {graph_base_url}/{path}`` (the preflight's test subscription)."""
    path = "/" + path.lstrip("/")
    return _read(provider, token, path, lambda client: client.post(path, json=json) or {})


def graph_delete(provider: CalendarProvider, token: Token, path: str) -> None:
    path = "/" + path.lstrip("/")
    _read(provider, token, path, lambda client: client.delete(path))


def list_rooms(provider: CalendarProvider, token: Token) -> list[dict]:
    """Every room of the tenant: all pages, following ``@odata.nextLink``."""
    path = "/places/microsoft.graph.room"
    return _read(provider, token, path, lambda client: client.collect(path, params={"$top": "100"}))


def check_mailbox_access(provider: CalendarProvider, token: Token, mailbox: str) -> None:
    """Raise GraphCallError (403 ErrorAccessDenied) when ``token`` can't read ``mailbox``'s calendar."""
    graph_get(provider, token, users_path(mailbox, "calendar"))


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    cause: str = ""
    rooms: list[str] = field(default_factory=list)


def test_connection(provider: CalendarProvider) -> ConnectionReport:
    """1. acquire a fresh app-only token; 2. list the tenant's rooms with it; 3. if a delegated
    user is connected, refresh its token too. Success or the exact error, in one sentence."""
    try:
        app_token(provider, force_refresh=True)
        listed = list_rooms(provider, partial(app_token, provider))
        rooms = [room.get("emailAddress") or room.get("displayName", "?") for room in listed]
    except CredentialError as exc:
        return ConnectionReport(ok=False, message=exc.message, cause=exc.cause)
    message = f"Connected to tenant {provider.tenant_id}: {len(rooms)} room(s) found ({', '.join(rooms[:10]) or 'none'})."
    if provider.delegated_connected:
        try:
            delegated_user_token(provider)
        except CredentialError as exc:
            return ConnectionReport(ok=False, message=f"{message} But the delegated user failed: {exc.message}", cause=exc.cause, rooms=rooms)
        message += f" Delegated user {provider.delegated_connected_as} is connected."
    return ConnectionReport(ok=True, message=message, rooms=rooms)
