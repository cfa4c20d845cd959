"""The few Graph reads exchange_auth makes itself: "Test connection" and mailbox access checks.

Everything else Graph-facing is calendar_sync's client; these reads live here
because exchange_auth imports no other app of ours.
"""

from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import requests
from django.conf import settings

from exchange_auth.credentials import (
    CredentialError,
    GraphToken,
    app_token,
    delegated_user_token,
    translate_exception,
)
from exchange_auth.http import new_session
from exchange_auth.models import CalendarProvider


class GraphCallError(CredentialError):
    """Graph answered with an error; ``status`` and ``code`` are Graph's (e.g. 403 ErrorAccessDenied)."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message, cause="graph_error")
        self.status = status
        self.code = code


def graph_get(provider: CalendarProvider, token: GraphToken, path: str, *, params: dict | None = None) -> dict:
    url = f"{provider.graph_base_url.rstrip('/')}/{path.lstrip('/')}"
    session = new_session()
    try:
        response = session.get(
            url, params=params, timeout=settings.GRAPH_TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider, url=url) from None
    finally:
        session.close()
    if response.status_code >= 400:
        raise _graph_error(response, token)
    return response.json()


def _graph_error(response: requests.Response, token: GraphToken) -> GraphCallError:
    try:
        body = response.json().get("error", {})
    except ValueError:
        body = {}
    code = body.get("code") or f"HTTP {response.status_code}"
    detail = body.get("message") or response.reason
    who = f"{token.kind} token of {token.identity}" if isinstance(token, GraphToken) else "token"
    if response.status_code == 403:
        message = f"Access denied to {unquote(response.request.path_url.split('?')[0])} for the {who}: {code}: {detail}"
    elif response.status_code == 401:
        message = f"Graph refused the {who} ({code}): {detail}"
    else:
        message = f"Graph answered {response.status_code} {code}: {detail}"
    return GraphCallError(message, status=response.status_code, code=code)


def list_rooms(provider: CalendarProvider, token: GraphToken) -> list[dict]:
    data = graph_get(provider, token, "places/microsoft.graph.room", params={"$top": "100"})
    return data.get("value", [])


def check_mailbox_access(provider: CalendarProvider, token: GraphToken, mailbox: str) -> None:
    """Raise GraphCallError (403 ErrorAccessDenied) when ``token`` can't read ``mailbox``'s calendar."""
    graph_get(provider, token, f"users/{quote(mailbox, safe='@')}/calendar")


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    cause: str = ""
    rooms: list[str] = field(default_factory=list)


def test_connection(provider: CalendarProvider) -> ConnectionReport:
    """1. acquire an app-only token; 2. list the tenant's rooms; 3. if a delegated user is
    connected, refresh its token too. Success or the exact error, in one sentence."""
    try:
        token = app_token(provider, force_refresh=True)
        rooms = [room.get("emailAddress") or room.get("displayName", "?") for room in list_rooms(provider, token)]
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
