"""Access tokens for each identity (SPEC §3), and the one a sync plan asks for.

``app_token`` (client credentials), ``delegated_user_token`` (the provider's
delegated user), ``personal_token`` (an employee's own, Personal mode);
``system_token`` is the delegated user when connected, else app-only;
``token_for_plan`` picks by ``modes.SyncPlan``. A Personal plan never falls
back to another identity: a missing, expired or revoked personal token raises
``ReconnectRequired``. A silent refresh rotates the refresh token, so the new
cache is written back under a row lock: two workers never spend the same one.
"""

from urllib.parse import urlsplit

import requests
from django.db import transaction
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.credentials.errors import (
    CredentialError,
    ReconnectRequired,
    translate_error,
    translate_exception,
)
from exchange_auth.credentials.msal_apps import (
    drop_cached_app,
    is_refusal,
    memo_get,
    memo_put,
    shared_app_token,
    silent_token,
)
from exchange_auth.models import CalendarProvider, PersonalToken
from exchange_auth.modes import Credential, SyncPlan

# Microsoft Graph's application ID URI in each national cloud. Any other Graph
# base URL (the emulator, a test proxy) stands in for the public cloud's Graph.
_GRAPH_RESOURCES = {
    "graph.microsoft.com": "https://graph.microsoft.com",
    "graph.microsoft.us": "https://graph.microsoft.us",
    "dod-graph.microsoft.us": "https://dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn": "https://microsoftgraph.chinacloudapi.cn",
}


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


def app_token(provider: CalendarProvider, *, force_refresh: bool = False) -> GraphToken:
    """An app-only token (client credentials), reused until shortly before it expires.

    ``force_refresh`` (after Graph answered 401) drops the cached token first."""
    if force_refresh:
        drop_cached_app(provider)

    def acquire(app) -> dict:
        try:
            result = app.acquire_token_for_client(scopes=app_scopes(provider))
        except requests.exceptions.RequestException as exc:
            raise translate_exception(exc, provider) from None
        if "access_token" not in result:
            raise translate_error(result, provider)
        return result

    # One acquisition per process, shared by its threads (msal_apps.shared_app_token).
    return GraphToken(shared_app_token(provider, acquire), kind="app", identity=provider.client_id)


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
    if stored and not force_refresh and (memo := memo_get(key, stored[0])):
        return GraphToken(memo, kind="delegated", identity=stored[1])
    with transaction.atomic():
        locked = CalendarProvider.objects.select_for_update().get(pk=provider.pk)
        try:
            blob = locked.delegated_token_cache
        except crypto.DecryptionError as exc:
            raise CredentialError(str(exc), cause="not_connected") from None
        username = locked.delegated_connected_as
        outcome = silent_token(locked, blob, username, force_refresh=force_refresh)
        if outcome.token:
            if outcome.cache_blob is not None or locked.delegated_last_error:
                if outcome.cache_blob is not None:
                    locked.delegated_token_cache = outcome.cache_blob
                locked.delegated_last_error = ""
                locked.save(update_fields=["delegated_token_cache_encrypted", "delegated_last_error", "updated_at"])
            provider.delegated_token_cache_encrypted = locked.delegated_token_cache_encrypted
            memo_put(key, locked.delegated_token_cache_encrypted, outcome.token, outcome.expires_in)
            return GraphToken(outcome.token, kind="delegated", identity=username)
    error = translate_error(outcome.error, provider, identity=username)
    if is_refusal(outcome.error):
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
    if stored and not force_refresh and (memo := memo_get(("personal", stored[0]), stored[1])):
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
        outcome = silent_token(provider, blob, row.account_email, force_refresh=force_refresh)
        if outcome.token:
            if outcome.cache_blob is not None:
                row.token_cache = outcome.cache_blob
                row.refreshed_at = timezone.now()
                row.last_error = ""
                row.save(update_fields=["token_cache_encrypted", "refreshed_at", "last_error"])
            memo_put(("personal", row.pk), row.token_cache_encrypted, outcome.token, outcome.expires_in)
            return GraphToken(outcome.token, kind="personal", identity=row.account_email)
    if is_refusal(outcome.error):
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
