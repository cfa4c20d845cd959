"""msal applications and the token caches behind them.

1. One ``ConfidentialClientApplication`` per provider configuration and process:
   its in-memory cache keeps the app-only token until shortly before it expires.
2. Delegated and personal tokens come from an msal ``SerializableTokenCache``
   stored encrypted in the database; ``silent_token`` refreshes (and rotates)
   from it and hands back the new cache for the caller to write under its lock.
3. Access tokens already handed out are remembered per stored cache (the memo),
   so most calls need neither the row lock nor msal.
"""

import threading
import time
from dataclasses import dataclass

import msal
import requests
from django.conf import settings

from exchange_auth import crypto
from exchange_auth.credentials.errors import CredentialError, translate_exception
from exchange_auth.http import new_session
from exchange_auth.models import CalendarProvider

# Delegated permissions (offline_access, openid and profile are added by msal).
DELEGATED_SCOPES = ["Calendars.ReadWrite", "Calendars.ReadWrite.Shared", "User.Read"]


def build_app(provider: CalendarProvider, token_cache=None) -> msal.ConfidentialClientApplication:
    if not (provider.tenant_id and provider.client_id):
        raise CredentialError(f"Calendar provider {provider.name!r} has no tenant id or client id.", cause="not_configured")
    try:
        return msal.ConfidentialClientApplication(
            provider.client_id,
            client_credential=client_credential(provider),
            authority=provider.authority,
            instance_discovery=False,
            http_client=new_session(),
            timeout=settings.GRAPH_TIMEOUT_SECONDS,
            token_cache=token_cache,
        )
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise translate_exception(exc, provider) from None


def client_credential(provider: CalendarProvider) -> str | dict:
    """What proves the app: the certificate when one is stored (msal signs a client assertion
    with its key, header x5t = its SHA-1 thumbprint), else the client secret."""
    try:
        if provider.has_client_certificate:
            return {"private_key": provider.client_certificate_key, "thumbprint": provider.client_certificate_thumbprint}
        secret = provider.client_secret
    except crypto.DecryptionError as exc:
        raise CredentialError(str(exc), cause="not_configured") from None
    if not secret:
        raise CredentialError(f"Calendar provider {provider.name!r} has no client secret or certificate.", cause="not_configured")
    return secret


# --- 1. the app-only application, one per provider configuration -------------------------

_app_lock = threading.Lock()
_apps: dict[tuple, msal.ConfidentialClientApplication] = {}


def _app_key(provider: CalendarProvider) -> tuple:
    return (provider.pk, provider.authority, provider.client_id, provider.client_secret_encrypted,
            provider.client_certificate_key_encrypted, provider.graph_base_url)


# Building an application reads the authority's openid-configuration, and its first token is a
# round to the token endpoint: threads of one worker (the threads pool runs 8 pushes at once)
# that all start cold must not each do both. One builder/acquirer at a time per process; the
# others wait for it and take its result (issue 17: 8 discoveries and 8 tokens per worker).
_acquire_lock = threading.Lock()
_app_tokens: dict[tuple, tuple[str, float]] = {}  # app key -> (access token, expires at)


def cached_app(provider: CalendarProvider) -> msal.ConfidentialClientApplication:
    key = _app_key(provider)
    with _app_lock:
        app = _apps.get(key)
    if app is None:
        with _acquire_lock:
            with _app_lock:
                app = _apps.get(key)
            if app is None:
                app = build_app(provider)
                with _app_lock:
                    for stale in [k for k in _apps if k[0] == provider.pk]:
                        del _apps[stale]
                    _apps[key] = app
    return app


def shared_app_token(provider: CalendarProvider, acquire) -> str:
    """The provider's app-only access token, shared by the process's threads: served from memory
    until ``MEMO_MARGIN_SECONDS`` before it expires, else ``acquire(app)`` (which returns msal's
    result dict, or raises) run by one thread while the others wait for its token."""
    key = _app_key(provider)
    hit = _app_tokens.get(key)
    if hit and hit[1] - time.time() > MEMO_MARGIN_SECONDS:
        return hit[0]
    with _acquire_lock:
        hit = _app_tokens.get(key)
        if hit and hit[1] - time.time() > MEMO_MARGIN_SECONDS:
            return hit[0]
    app = cached_app(provider)
    with _acquire_lock:
        hit = _app_tokens.get(key)
        if hit and hit[1] - time.time() > MEMO_MARGIN_SECONDS:
            return hit[0]
        result = acquire(app)
        token = result["access_token"]
        _app_tokens[key] = (token, time.time() + max(int(result.get("expires_in") or 0), 0))
        return token


def drop_cached_app(provider: CalendarProvider) -> None:
    """Forget the provider's application and so its cached app-only token (after Graph answered 401)."""
    key = _app_key(provider)
    with _app_lock:
        _apps.pop(key, None)
    _app_tokens.pop(key, None)


def forget_cached_apps() -> None:
    """Drop every in-memory msal application and token (tests; after a provider changed)."""
    with _app_lock:
        _apps.clear()
    _app_tokens.clear()
    with _memo_lock:
        _memo.clear()


# --- 2. stored msal caches (delegated user, personal tokens) -------------------------------


@dataclass
class SilentResult:
    token: str | None
    cache_blob: str | None  # the new serialized cache when msal changed it (rotation)
    error: dict | None
    expires_in: int = 0


def silent_token(provider: CalendarProvider, cache_blob: str, username: str, *, force_refresh: bool = False) -> SilentResult:
    """Acquire a delegated token from a stored cache, refreshing (and rotating) if needed."""
    cache = msal.SerializableTokenCache()
    if cache_blob:
        cache.deserialize(cache_blob)
    app = build_app(provider, token_cache=cache)
    accounts = app.get_accounts(username=username) if username else app.get_accounts()
    if not accounts:
        return SilentResult(None, None, {"error": "no_account", "error_description": "No signed-in account in the stored cache."})
    try:
        result = app.acquire_token_silent_with_error(DELEGATED_SCOPES, account=accounts[0], force_refresh=force_refresh)
    except requests.exceptions.RequestException as exc:
        raise translate_exception(exc, provider) from None
    new_blob = cache.serialize() if cache.has_state_changed else None
    if result and "access_token" in result:
        return SilentResult(result["access_token"], new_blob, None, int(result.get("expires_in") or 0))
    return SilentResult(None, new_blob, result or {"error": "no_token", "error_description": "No usable token or refresh token is stored."})


def is_refusal(error: dict) -> bool:
    """The identity provider refused the refresh (revoked, expired): only a new sign-in helps."""
    return error.get("error") in {"invalid_grant", "interaction_required", "consent_required", "login_required", "no_account", "no_token"}


# --- 3. access tokens already handed out ----------------------------------------------------

# Keyed by (kind, row id); the stored ciphertext must still be the same (a
# rotation or reconnect changes it).
_memo_lock = threading.Lock()
_memo: dict[tuple[str, int], tuple[str, str, float]] = {}
MEMO_MARGIN_SECONDS = 300  # msal's own refresh margin


def memo_get(key: tuple[str, int], ciphertext: str) -> str | None:
    with _memo_lock:
        hit = _memo.get(key)
    if hit and hit[0] == ciphertext and hit[2] - time.time() > MEMO_MARGIN_SECONDS:
        return hit[1]
    return None


def memo_put(key: tuple[str, int], ciphertext: str, token: str, expires_in: int) -> None:
    with _memo_lock:
        _memo[key] = (ciphertext, token, time.time() + max(int(expires_in or 0), 0))
