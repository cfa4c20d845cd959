"""Sign-in flows: connect (and disconnect) the delegated user or an employee's Outlook.

Both use msal's authorization code + PKCE flow: ``begin_auth_code_flow``
returns the flow to keep in the session and the URL to send the person to;
``complete_auth_code_flow`` redeems the code and names who signed in; the
``connect_*`` services check it is the right account and store the msal cache
encrypted.
"""

import warnings
from dataclasses import dataclass

import msal
import requests
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.credentials.errors import CredentialError, translate_error, translate_exception
from exchange_auth.credentials.msal_apps import DELEGATED_SCOPES, build_app
from exchange_auth.models import CalendarProvider, PersonalToken

# The sign-in response comes back as a GET (response_mode=query) on purpose: a
# cross-site form POST would arrive without Django's SameSite=Lax session cookie,
# and the session holds the flow's state and PKCE verifier. msal warns about it.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)


def begin_auth_code_flow(provider: CalendarProvider, *, redirect_uri: str, login_hint: str = "") -> dict:
    """Start the authorization code + PKCE flow; keep the returned dict (session), send the user to ``flow["auth_uri"]``."""
    app = build_app(provider, token_cache=msal.SerializableTokenCache())
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
    app = build_app(provider, token_cache=cache)
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
