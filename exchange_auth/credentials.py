"""Tokens for Microsoft Graph, acquired with msal (SPEC §3).

Three identities:

* **app-only** (client credentials): ``app_token(provider)``;
* the provider's **delegated user**, connected once by an admin through the
  authorization-code flow: ``delegated_user_token(provider)``;
* an employee's **personal token** (Personal mode), connected from the portal:
  ``personal_token(provider, user)``.

``system_token`` is the system-to-system credential (delegated user when
connected, else app-only) and ``token_for_plan`` picks the credential a
``modes.SyncPlan`` asks for. A user-triggered action in Personal mode never
falls back to another identity: a missing, expired or revoked personal token
raises ``ReconnectRequired``.

msal caches live encrypted in the database (``SerializableTokenCache``); a
silent refresh rotates the refresh token, and the new cache is written back
under a row lock so two workers never spend the same refresh token.
"""

import logging
import threading
import time
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import msal
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.http import new_session
from exchange_auth.models import CalendarProvider, PersonalToken
from exchange_auth.modes import Credential, SyncPlan

logger = logging.getLogger(__name__)

# The sign-in response comes back as a GET (response_mode=query) on purpose: a
# cross-site form POST would arrive without Django's SameSite=Lax session cookie,
# and the session holds the flow's state and PKCE verifier. msal warns about it.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)

# Delegated permissions (offline_access, openid and profile are added by msal).
DELEGATED_SCOPES = ["Calendars.ReadWrite", "Calendars.ReadWrite.Shared", "User.Read"]
# Microsoft Graph's application ID URI in each national cloud. Any other Graph
# base URL (the emulator, a test proxy) stands in for the public cloud's Graph.
_GRAPH_RESOURCES = {
    "graph.microsoft.com": "https://graph.microsoft.com",
    "graph.microsoft.us": "https://graph.microsoft.us",
    "dod-graph.microsoft.us": "https://dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn": "https://microsoftgraph.chinacloudapi.cn",
}


class CredentialError(Exception):
    """No token could be had. ``message`` names the exact cause; ``cause`` is a short code:
    wrong_secret, unknown_client, unknown_tenant, unreachable, tls, not_configured,
    not_connected, refresh_refused, wrong_account, graph_error."""

    def __init__(self, message: str, *, cause: str = "error"):
        super().__init__(message)
        self.message = message
        self.cause = cause


class ReconnectRequired(CredentialError):
    """The employee's Outlook connection is missing, expired or revoked: ask them to reconnect."""

    def __init__(self, user, message: str = "", *, cause: str = "reconnect"):
        name = getattr(user, "get_username", lambda: str(user))()
        super().__init__(message or f"{name} must connect Outlook again before this can be synced.", cause=cause)
        self.user = user


class GraphToken(str):
    """An access token (use it as a string) that knows whose it is. Its repr never shows the token."""

    kind: str  # "app" | "delegated" | "personal"
    identity: str  # the client id (app) or the account's email

    def __new__(cls, value: str, *, kind: str, identity: str):
        token = super().__new__(cls, value)
        token.kind = kind
        token.identity = identity
        return token

    def __repr__(self) -> str:
        return f"<GraphToken {self.kind} {self.identity}>"

    __str__ = str.__str__

    @property
    def authorization(self) -> str:
        return f"Bearer {self}"


def app_scopes(provider: CalendarProvider) -> list[str]:
    host = (urlsplit(provider.graph_base_url).hostname or "").lower()
    return [f"{_GRAPH_RESOURCES.get(host, 'https://graph.microsoft.com')}/.default"]


# --- msal applications ---------------------------------------------------------


def translate_exception(exc: Exception, provider: CalendarProvider, *, url: str = "") -> CredentialError:
    """A network or discovery failure as a sentence naming its cause (``url``: what was called)."""
    host = urlsplit(url or provider.authority_host).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        return CredentialError(
            f"TLS failure talking to {host}: its certificate is not trusted ({_first_line(exc)}). "
            "Check the authority host, or set GRAPH_CA_BUNDLE to the CA that signed it.",
            cause="tls",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return CredentialError(f"{host} did not answer within {settings.GRAPH_TIMEOUT_SECONDS} s.", cause="unreachable")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return CredentialError(f"Can't reach {host}: {_first_line(exc)}.", cause="unreachable")
    if isinstance(exc, requests.exceptions.HTTPError):
        return CredentialError(f"{host} failed: {_first_line(exc)}.", cause="unreachable")
    if isinstance(exc, ValueError) and "authority" in str(exc).lower():
        return CredentialError(
            f"Unknown tenant {provider.tenant_id!r} at {provider.authority_host}: its OpenID configuration "
            f"({provider.authority}/v2.0/.well-known/openid-configuration) could not be read.",
            cause="unknown_tenant",
        )
    return CredentialError(f"Could not talk to {host}: {_first_line(exc)}.")


def translate_error(result: dict, provider: CalendarProvider, *, identity: str = "") -> CredentialError:
    """An OAuth error response from the token endpoint as a sentence naming its cause."""
    error = result.get("error", "error")
    codes = result.get("error_codes") or []
    description = _first_line(result.get("error_description", "")).split(" Trace ID:")[0]
    if error == "invalid_client" and 7000215 in codes:
        return CredentialError(
            f"Wrong client secret for app {provider.client_id} in tenant {provider.tenant_id}: {description}",
            cause="wrong_secret",
        )
    if error == "invalid_client":
        return CredentialError(f"The client secret was refused for app {provider.client_id}: {description}", cause="wrong_secret")
    if error == "unauthorized_client" or 700016 in codes:
        return CredentialError(
            f"Unknown client id {provider.client_id} in tenant {provider.tenant_id}: {description}", cause="unknown_client"
        )
    if 90002 in codes:
        return CredentialError(f"Unknown tenant {provider.tenant_id!r}: {description}", cause="unknown_tenant")
    if error in ("invalid_grant", "interaction_required", "consent_required", "login_required"):
        who = f" for {identity}" if identity else ""
        return CredentialError(f"Sign-in{who} is no longer valid ({error}): {description}", cause="refresh_refused")
    return CredentialError(f"Token request refused ({error}): {description}")


def _first_line(value) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


def _build_app(provider: CalendarProvider, token_cache=None) -> msal.ConfidentialClientApplication:
    if not (provider.tenant_id and provider.client_id):
        raise CredentialError(f"Calendar provider {provider.name!r} has no tenant id or client id.", cause="not_configured")
    try:
        secret = provider.client_secret
    except crypto.DecryptionError as exc:
        raise CredentialError(str(exc), cause="not_configured") from None
    if not secret:
        raise CredentialError(f"Calendar provider {provider.name!r} has no client secret.", cause="not_configured")
    try:
        return msal.ConfidentialClientApplication(
            provider.client_id,
            client_credential=secret,
            authority=provider.authority,
            instance_discovery=False,
            http_client=new_session(),
            timeout=settings.GRAPH_TIMEOUT_SECONDS,
            token_cache=token_cache,
        )
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise translate_exception(exc, provider) from None


# One msal application per provider configuration and process: its in-memory
# cache keeps the app-only token until shortly before it expires.
_app_lock = threading.Lock()
_apps: dict[tuple, msal.ConfidentialClientApplication] = {}


def _app_key(provider: CalendarProvider) -> tuple:
    return (provider.pk, provider.authority, provider.client_id, provider.client_secret_encrypted, provider.graph_base_url)


def _cached_app(provider: CalendarProvider) -> msal.ConfidentialClientApplication:
    key = _app_key(provider)
    with _app_lock:
        app = _apps.get(key)
    if app is None:
        app = _build_app(provider)
        with _app_lock:
            for stale in [k for k in _apps if k[0] == provider.pk]:
                del _apps[stale]
            _apps[key] = app
    return app


def forget_cached_apps() -> None:
    """Drop every in-memory msal application and token (tests; after a provider changed)."""
    with _app_lock:
        _apps.clear()
    with _memo_lock:
        _memo.clear()


# --- app-only ----------------------------------------------------------------------


def app_token(provider: CalendarProvider, *, force_refresh: bool = False) -> GraphToken:
    """An app-only token (client credentials), reused until shortly before it expires.

    ``force_refresh`` (after Graph answered 401) drops the cached token first."""
    if force_refresh:
        with _app_lock:
            _apps.pop(_app_key(provider), None)
    app = _cached_app(provider)
    try:
        result = app.acquire_token_for_client(scopes=app_scopes(provider))
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider) from None
    if "access_token" not in result:
        raise translate_error(result, provider)
    return GraphToken(result["access_token"], kind="app", identity=provider.client_id)


# --- stored msal caches (delegated user, personal tokens) -------------------------------


@dataclass
class _SilentResult:
    token: str | None
    cache_blob: str | None  # the new serialized cache when msal changed it (rotation)
    error: dict | None
    expires_in: int = 0


# Access tokens already handed out, per stored cache: most calls are answered
# here without taking the row lock. Keyed by (kind, row id); the stored
# ciphertext must still be the same (a rotation or reconnect changes it).
_memo_lock = threading.Lock()
_memo: dict[tuple[str, int], tuple[str, str, float]] = {}
MEMO_MARGIN_SECONDS = 300  # msal's own refresh margin


def _memo_get(key: tuple[str, int], ciphertext: str) -> str | None:
    with _memo_lock:
        hit = _memo.get(key)
    if hit and hit[0] == ciphertext and hit[2] - time.time() > MEMO_MARGIN_SECONDS:
        return hit[1]
    return None


def _memo_put(key: tuple[str, int], ciphertext: str, token: str, expires_in: int) -> None:
    with _memo_lock:
        _memo[key] = (ciphertext, token, time.time() + max(int(expires_in or 0), 0))


def _silent(provider: CalendarProvider, cache_blob: str, username: str, *, force_refresh: bool = False) -> _SilentResult:
    """Acquire a delegated token from a stored cache, refreshing (and rotating) if needed."""
    cache = msal.SerializableTokenCache()
    if cache_blob:
        cache.deserialize(cache_blob)
    app = _build_app(provider, token_cache=cache)
    accounts = app.get_accounts(username=username) if username else app.get_accounts()
    if not accounts:
        return _SilentResult(None, None, {"error": "no_account", "error_description": "No signed-in account in the stored cache."})
    try:
        result = app.acquire_token_silent_with_error(DELEGATED_SCOPES, account=accounts[0], force_refresh=force_refresh)
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider) from None
    new_blob = cache.serialize() if cache.has_state_changed else None
    if result and "access_token" in result:
        return _SilentResult(result["access_token"], new_blob, None, int(result.get("expires_in") or 0))
    return _SilentResult(None, new_blob, result or {"error": "no_token", "error_description": "No usable token or refresh token is stored."})


def _is_refusal(error: dict) -> bool:
    """The identity provider refused the refresh (revoked, expired): only a new sign-in helps."""
    return error.get("error") in {"invalid_grant", "interaction_required", "consent_required", "login_required", "no_account", "no_token"}


def delegated_user_token(provider: CalendarProvider, *, force_refresh: bool = False) -> GraphToken:
    """The provider's delegated user's token; raises CredentialError when not connected or refused."""
    if not provider.delegated_connected:
        raise CredentialError(
            f"The delegated user of {provider.name!r} is not connected: use the admin action \"Connect delegated user\".",
            cause="not_connected",
        )
    key = ("delegated", provider.pk)
    stored = CalendarProvider.objects.filter(pk=provider.pk).values_list(
        "delegated_token_cache_encrypted", "delegated_connected_as").first()
    if stored and not force_refresh and (memo := _memo_get(key, stored[0])):
        return GraphToken(memo, kind="delegated", identity=stored[1])
    with transaction.atomic():
        locked = CalendarProvider.objects.select_for_update().get(pk=provider.pk)
        try:
            blob = locked.delegated_token_cache
        except crypto.DecryptionError as exc:
            raise CredentialError(str(exc), cause="not_connected") from None
        username = locked.delegated_connected_as
        outcome = _silent(locked, blob, username, force_refresh=force_refresh)
        if outcome.token:
            if outcome.cache_blob is not None or locked.delegated_last_error:
                if outcome.cache_blob is not None:
                    locked.delegated_token_cache = outcome.cache_blob
                locked.delegated_last_error = ""
                locked.save(update_fields=["delegated_token_cache_encrypted", "delegated_last_error", "updated_at"])
            provider.delegated_token_cache_encrypted = locked.delegated_token_cache_encrypted
            _memo_put(key, locked.delegated_token_cache_encrypted, outcome.token, outcome.expires_in)
            return GraphToken(outcome.token, kind="delegated", identity=username)
    error = translate_error(outcome.error, provider, identity=username)
    if _is_refusal(outcome.error):
        error = CredentialError(
            f"The delegated user {username} must be connected again (admin action \"Connect delegated user\"): {error.message}",
            cause="refresh_refused",
        )
    CalendarProvider.objects.filter(pk=provider.pk).update(delegated_last_error=error.message)
    raise error


def personal_token(provider: CalendarProvider, user, *, force_refresh: bool = False) -> GraphToken:
    """The employee's own token; ``ReconnectRequired`` when missing, expired or revoked."""
    if user is None or not getattr(user, "pk", None):
        raise CredentialError("A personal token needs the acting user.", cause="not_connected")
    stored = PersonalToken.objects.filter(user=user, provider=provider, needs_reconnect=False).values_list(
        "pk", "token_cache_encrypted", "account_email").first()
    if stored and not force_refresh and (memo := _memo_get(("personal", stored[0]), stored[1])):
        return GraphToken(memo, kind="personal", identity=stored[2])
    with transaction.atomic():
        row = PersonalToken.objects.select_for_update().filter(user=user, provider=provider).first()
        if row is None:
            raise ReconnectRequired(user, "Connect your Outlook account to book synced rooms.", cause="not_connected")
        if row.needs_reconnect:
            raise ReconnectRequired(user, "Your Outlook connection expired or was revoked: reconnect Outlook.")
        try:
            blob = row.token_cache
        except crypto.DecryptionError:
            blob = ""
        outcome = _silent(provider, blob, row.account_email, force_refresh=force_refresh)
        if outcome.token:
            if outcome.cache_blob is not None:
                row.token_cache = outcome.cache_blob
                row.refreshed_at = timezone.now()
                row.last_error = ""
                row.save(update_fields=["token_cache_encrypted", "refreshed_at", "last_error"])
            _memo_put(("personal", row.pk), row.token_cache_encrypted, outcome.token, outcome.expires_in)
            return GraphToken(outcome.token, kind="personal", identity=row.account_email)
    if _is_refusal(outcome.error):
        detail = translate_error(outcome.error, provider, identity=row.account_email).message
        PersonalToken.objects.filter(pk=row.pk).update(needs_reconnect=True, last_error=detail)
        raise ReconnectRequired(user, f"Your Outlook connection expired or was revoked: reconnect Outlook. ({detail})")
    raise translate_error(outcome.error, provider, identity=row.account_email)


def has_personal_token(user, provider: CalendarProvider | None = None) -> bool:
    """Whether ``user`` has a usable (not known to be revoked) Outlook connection."""
    if user is None or not getattr(user, "pk", None):
        return False
    rows = PersonalToken.objects.filter(user=user, needs_reconnect=False)
    if provider is not None:
        rows = rows.filter(provider=provider)
    return rows.exists()


def system_token(provider: CalendarProvider, *, force_refresh: bool = False) -> GraphToken:
    """The system-to-system credential: the delegated user when connected, else app-only.

    A connected delegated user whose refresh is refused raises rather than
    switching to app-only: the two reach different mailboxes."""
    if provider.delegated_connected:
        return delegated_user_token(provider, force_refresh=force_refresh)
    return app_token(provider, force_refresh=force_refresh)


def token_for_plan(plan: SyncPlan, provider: CalendarProvider, acting_user, *, force_refresh: bool = False) -> GraphToken:
    """The token a sync plan asks for. Personal plans use only the acting user's own token."""
    if plan.credential is Credential.PERSONAL:
        if acting_user is None:
            raise CredentialError("This action must be done by the employee with their own Outlook connection.", cause="not_connected")
        token_user = (plan.token_user or "").lower()
        if token_user and token_user != (acting_user.email or "").lower():
            raise CredentialError(
                f"The plan asks for {plan.token_user}'s token but {acting_user.get_username()} is acting.", cause="wrong_account"
            )
        return personal_token(provider, acting_user, force_refresh=force_refresh)
    return system_token(provider, force_refresh=force_refresh)


# --- authorization-code flow (connect delegated user, connect Outlook) --------------------


def begin_auth_code_flow(provider: CalendarProvider, *, redirect_uri: str, login_hint: str = "") -> dict:
    """Start the authorization code + PKCE flow; keep the returned dict (session), send the user to ``flow["auth_uri"]``."""
    app = _build_app(provider, token_cache=msal.SerializableTokenCache())
    try:
        return app.initiate_auth_code_flow(
            DELEGATED_SCOPES, redirect_uri=redirect_uri, login_hint=login_hint or None, prompt="select_account"
        )
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider) from None


@dataclass
class Connection:
    account_email: str
    cache_blob: str


def complete_auth_code_flow(provider: CalendarProvider, flow: dict, auth_response: dict) -> Connection:
    """Redeem the code the identity provider sent back; returns who signed in and the msal cache."""
    cache = msal.SerializableTokenCache()
    app = _build_app(provider, token_cache=cache)
    try:
        result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    except ValueError as exc:  # state mismatch, replayed or foreign response
        raise CredentialError(f"The sign-in response doesn't match the sign-in that was started ({exc}). Try again.") from None
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider) from None
    if "access_token" not in result:
        if result.get("error") and "error_description" in result:
            raise translate_error(result, provider)
        raise CredentialError(f"Sign-in failed: {result.get('error', 'no token returned')}.")
    claims = result.get("id_token_claims") or {}
    email = (claims.get("preferred_username") or claims.get("email") or "").lower()
    if not email:
        raise CredentialError("The sign-in response named no account (no preferred_username in the id token).")
    return Connection(account_email=email, cache_blob=cache.serialize())


def connect_delegated_user(provider: CalendarProvider, connection: Connection) -> None:
    expected = (provider.delegated_user_email or "").lower()
    if expected and connection.account_email != expected:
        raise CredentialError(
            f"Signed in as {connection.account_email}, but the provider's delegated user is {expected}. Sign in as {expected}.",
            cause="wrong_account",
        )
    provider.delegated_token_cache = connection.cache_blob
    provider.delegated_connected_as = connection.account_email
    provider.delegated_connected_at = timezone.now()
    provider.delegated_last_error = ""
    provider.save(
        update_fields=[
            "delegated_token_cache_encrypted", "delegated_connected_as", "delegated_connected_at",
            "delegated_last_error", "updated_at",
        ]
    )


def disconnect_delegated_user(provider: CalendarProvider) -> None:
    provider.delegated_token_cache = ""
    provider.delegated_connected_as = ""
    provider.delegated_connected_at = None
    provider.save(update_fields=["delegated_token_cache_encrypted", "delegated_connected_as", "delegated_connected_at", "updated_at"])


def connect_personal(provider: CalendarProvider, user, connection: Connection) -> PersonalToken:
    """Store the employee's connection. They must sign in as themselves (their Django email)."""
    expected = (user.email or "").lower()
    if not expected:
        raise CredentialError("Your profile has no email address, so Outlook can't be connected.", cause="wrong_account")
    if connection.account_email != expected:
        raise CredentialError(
            f"You signed in to Outlook as {connection.account_email}, but you are {expected}. Sign in with your own account.",
            cause="wrong_account",
        )
    now = timezone.now()
    row, _ = PersonalToken.objects.update_or_create(
        user=user,
        provider=provider,
        defaults={
            "account_email": connection.account_email,
            "token_cache_encrypted": crypto.encrypt(connection.cache_blob),
            "connected_at": now,
            "refreshed_at": now,
            "needs_reconnect": False,
            "last_error": "",
        },
    )
    return row


def disconnect_personal(provider: CalendarProvider | None, user) -> int:
    rows = PersonalToken.objects.filter(user=user)
    if provider is not None:
        rows = rows.filter(provider=provider)
    deleted, _ = rows.delete()
    return deleted
