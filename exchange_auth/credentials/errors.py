"""Why no token could be had, in one sentence an admin or an employee can act on.

``translate_exception`` names a network or discovery failure (TLS, timeout,
unreachable host, unknown tenant); ``translate_error`` maps the token
endpoint's OAuth error and its AADSTS codes (7000215 wrong secret, 7000222
expired secret, 700027 refused certificate, 700016 unknown client, 90002
unknown tenant) to a ``CredentialError`` with a short
``cause`` code.
"""

from urllib.parse import urlsplit

import requests
from django.conf import settings

from exchange_auth.models import CalendarProvider


class CredentialError(Exception):
    """No token could be had. ``message`` names the exact cause; ``cause`` is a short code:
    wrong_secret, secret_expired, wrong_certificate, app_disabled, unknown_client, unknown_tenant, unreachable, tls, not_configured,
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
    if (sentence := _CREDENTIAL_CODES.get(next((c for c in codes if c in _CREDENTIAL_CODES), 0))) is not None:
        cause, text = sentence
        return CredentialError(f"{text.format(client_id=provider.client_id, tenant=provider.tenant_id)} ({description})", cause=cause)
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


# AADSTS codes about the app's own credential (secret or certificate), as plain sentences with their fix.
_CREDENTIAL_CODES = {
    7000222: ("secret_expired", "The client secret of app {client_id} has expired: create a new one under the app registration's "
                                "Certificates & secrets and enter it (with its expiry) in the calendar provider, or upload a certificate."),
    7000215: ("wrong_secret", "Wrong client secret for app {client_id} in tenant {tenant}: enter the secret's Value (not its ID) "
                              "from the app registration's Certificates & secrets."),
    700027: ("wrong_certificate", "The certificate was refused for app {client_id}: upload its public part (.cer) under the app "
                                  "registration's Certificates & secrets, or upload the provider a certificate that is registered "
                                  "there and has not expired."),
    700024: ("wrong_certificate", "The signed client assertion of app {client_id} is outside its valid time: check this server's clock."),
    7000112: ("app_disabled", "App {client_id} is disabled in tenant {tenant}: an administrator enables it under Enterprise applications."),
    7000229: ("unknown_client", "App {client_id} has no service principal in tenant {tenant}: an administrator consents to it there."),
}


def _first_line(value) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
