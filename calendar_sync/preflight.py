"""Preflight: everything a real tenant can lack for the configured sync mode, each with its fix.

"Test connection" only shows that a token comes and rooms list. The preflight asks Graph, with
the credential each job really uses (SPEC §3 mode table):

1. the app-only token (secret or certificate; AADSTS codes as sentences);
2. its application permissions: the ``roles`` claim must hold Calendars.ReadWrite and Place.Read.All;
3. the credential's expiry (✗ expired, ⚠ within 30 days; exchange_auth.expiry mails the admins);
4. each synced room reachable app-only (a cheap read of its calendar): the application access policy's scope;
5. the delegated user: its token, and its delegate access to each room;
6. the organizer account reachable with the system credential;
7. the webhook: PUBLIC_BASE_URL https, and a test subscription created (Graph's handshake reaches us) and deleted.

It lives in calendar_sync, beside the entry points, because checks 7 need the webhook's URLs and
subscription shape (``inbound.subscriptions``), which exchange_auth may not import. Results flow up
as a ``Preflight``: the admin page and ``manage.py outlook_preflight`` render it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from django.utils import timezone

from exchange_auth import graph_check, properties
from exchange_auth.credentials import CredentialError, app_token, delegated_user_token, system_token
from exchange_auth.expiry import credential_expiry
from exchange_auth.models import CalendarProvider
from exchange_auth.modes import Mode

from . import conf
from .inbound.mailboxes import synced_mailboxes
from .inbound.subscriptions import CHANGE_TYPES, lifecycle_url, notification_url, refused_reason

OK, WARN, FAIL = "ok", "warn", "fail"
SYMBOLS = {OK: "✓", WARN: "⚠", FAIL: "✗"}
REQUIRED_ROLES = ("Calendars.ReadWrite", "Place.Read.All")
MICROSOFT_GRAPH_HOSTS = {"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]


@dataclass
class Preflight:
    provider: CalendarProvider
    mode: Mode
    checks: list[Check] = field(default_factory=list)
    ran_at: dt.datetime = field(default_factory=timezone.now)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix if status != OK else ""))


def preflight_run(provider: CalendarProvider) -> Preflight:
    """Every check, in the order above; never raises for what Graph or Entra ID answer."""
    result = Preflight(provider=provider, mode=properties.sync_mode())
    rooms = synced_mailboxes()
    token = _app_only(result)
    if token is not None:
        _roles(result, token)
    _expiry(result)
    _rooms_app_only(result, rooms, token)
    _delegated_user(result, rooms)
    _organizer(result)
    _webhook(result, rooms, token)
    return result


# --- 1-3: the app-only credential ------------------------------------------------------------


def _app_only_needed(result: Preflight) -> bool:
    """Normal mode writes to employees' calendars (only app-only reaches them); without a
    connected delegated user app-only is the system credential."""
    return result.mode is Mode.NORMAL or not result.provider.delegated_connected


def _app_only(result: Preflight):
    provider = result.provider
    kind = "certificate" if provider.has_client_certificate else "client secret"
    try:
        token = app_token(provider, force_refresh=True)
    except CredentialError as exc:
        status = FAIL if _app_only_needed(result) else WARN
        result.add("App-only token", status, exc.message,
                   f"Check the tenant id, client id and the {kind} of the provider against the app registration in Entra ID. "
                   "Without an app-only token rooms are polled instead of subscribed"
                   + (", and in Normal mode no meeting can be written to an employee's calendar." if result.mode is Mode.NORMAL else "."))
        return None
    result.add("App-only token", OK, f"Acquired with the {kind} of app {provider.client_id}.")
    return token


def _claims(token: str) -> dict | None:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None


def _roles(result: Preflight, token: str) -> None:
    claims = _claims(token)
    if claims is None:
        result.add("Application permissions", WARN, "The access token is not a readable JWT: its roles can't be checked.",
                   "Check the app's application permissions in Entra ID by hand.")
        return
    roles = set(claims.get("roles") or [])
    missing = [role for role in REQUIRED_ROLES if role not in roles]
    if missing:
        result.add("Application permissions", FAIL,
                   f"The app-only token lacks {', '.join(missing)} (it has: {', '.join(sorted(roles)) or 'no application permission'}).",
                   f"In Entra ID: App registrations → {result.provider.client_id} → API permissions → Add a permission → Microsoft Graph → "
                   f"Application permissions → {', '.join(missing)}; then \"Grant admin consent\".")
    else:
        result.add("Application permissions", OK, f"The token's roles include {', '.join(REQUIRED_ROLES)}.")


def _expiry(result: Preflight) -> None:
    expiry = credential_expiry(result.provider)
    name = f"{expiry.kind.capitalize()} expiry"
    if expiry.expires_at is None:
        result.add(name, WARN, expiry.sentence(),
                   "Enter the secret's expiry date (Entra ID shows it under Certificates & secrets) in the provider, "
                   "so admins are warned 30 and 7 days before it stops working.")
        return
    threshold = expiry.threshold()
    status = FAIL if threshold == 0 else WARN if threshold is not None else OK
    result.add(name, status, expiry.sentence(), expiry.fix)


# --- 4-6: the mailboxes each credential must reach -------------------------------------------


def _reach(provider: CalendarProvider, token, mailbox: str) -> CredentialError | None:
    try:
        graph_check.check_mailbox_access(provider, token, mailbox)
    except CredentialError as exc:
        return exc
    return None


def _not_found(exc: CredentialError) -> bool:
    return getattr(exc, "status", 0) == 404


def _rooms_app_only(result: Preflight, rooms: list[str], token) -> None:
    provider = result.provider
    if not rooms:
        result.add("Synced rooms", WARN, "No synced room has a mailbox: nothing is synced with Exchange.",
                   "Give the rooms their Exchange room mailbox and tick \"sync enabled\" under Rooms.")
        return
    if token is None:
        result.add("App-only access to the rooms", WARN, "Not checked: there is no app-only token (see above).")
        return
    status = FAIL if _app_only_needed(result) else WARN
    for room in rooms:
        error = _reach(provider, partial(app_token, provider), room)
        name = f"App-only access to {room}"
        if error is None:
            result.add(name, OK, "Its calendar can be read app-only.")
        elif _not_found(error):
            result.add(name, FAIL, error.message, "No such mailbox in the tenant: correct the room's mailbox address under Rooms.")
        else:
            result.add(name, status, error.message,
                       f"An application access policy (or RBAC for Applications scope) of app {provider.client_id} leaves this mailbox out: "
                       "add it to the policy's mail-enabled security group (Exchange Online PowerShell: New-ApplicationAccessPolicy "
                       f"-AppId {provider.client_id} -PolicyScopeGroupId <group> -AccessRight RestrictAccess), then verify with "
                       f"Test-ApplicationAccessPolicy -Identity {room} -AppId {provider.client_id}.")


def _delegated_user(result: Preflight, rooms: list[str]) -> None:
    provider = result.provider
    if not provider.delegated_connected:
        if provider.delegated_user_email:
            result.add("Delegated user", WARN, f"{provider.delegated_user_email} is named but not connected: app-only is the system credential.",
                       "Use the admin action \"Connect delegated user\" and sign in as that account (or clear the field).")
        return
    user = provider.delegated_connected_as
    try:
        delegated_user_token(provider, force_refresh=True)
    except CredentialError as exc:
        result.add("Delegated user", FAIL, exc.message, "Connect it again: admin action \"Connect delegated user\".")
        return
    result.add("Delegated user", OK, f"Connected as {user}; its token refreshes.")
    for room in rooms:
        error = _reach(provider, partial(delegated_user_token, provider), room)
        name = f"Delegate access of {user} to {room}"
        if error is None:
            result.add(name, OK, "It can act on the room's calendar.")
        else:
            result.add(name, FAIL, error.message,
                       f"Make {user} a delegate of the room with editor rights (Exchange Online PowerShell: Add-MailboxFolderPermission "
                       f"-Identity {room}:\\Calendar -User {user} -AccessRights Editor -SharingPermissionFlags Delegate).")


def _organizer(result: Preflight) -> None:
    provider = result.provider
    account = provider.accounts.service_account
    needed = result.mode is Mode.STRICT and not provider.rooms_organize_own_meetings
    if not account:
        result.add("Organizer account", FAIL if needed else WARN,
                   "No organizer account (nor delegated user) is set: " + (
                       "Strict mode has no one to organize meetings in rooms that don't organize their own." if needed
                       else "people without a mailbox can't get a meeting, and free/busy shows as unknown."),
                   "Enter the service account's address as the provider's organizer account.")
        return
    error = _reach(provider, partial(system_token, provider), account)
    if error is None:
        result.add("Organizer account", OK, f"{account}'s calendar is reachable with the system credential.")
    else:
        result.add("Organizer account", FAIL, error.message,
                   f"{account} must be a mailbox of the tenant that the system credential reaches: include it in the app's application "
                   "access policy (app-only), or connect it as the delegated user.")


# --- 7: the webhook ---------------------------------------------------------------------------


def _webhook(result: Preflight, rooms: list[str], token) -> None:
    provider = result.provider
    url = notification_url()
    graph_host = (urlsplit(provider.graph_base_url).hostname or "").lower()
    fix_url = ("Put the app behind a reverse proxy or tunnel with a publicly trusted certificate and set PUBLIC_BASE_URL to its "
               "https:// address (see the README, \"HTTPS for Graph\").")
    if not url.startswith("https://"):
        real = graph_host in MICROSOFT_GRAPH_HOSTS
        result.add("Webhook URL is HTTPS", FAIL if real else WARN,
                   f"{url} is not https: Graph refuses it" + ("." if real else " (only the emulator accepts it, in development)."), fix_url)
    else:
        result.add("Webhook URL is HTTPS", OK, url)
    mailbox, token_fn = _probe_target(provider, rooms, token)
    if mailbox is None:
        result.add("Test subscription", WARN, "Not tried: no mailbox can be subscribed (no app-only token, no delegated user).")
        return
    body = {
        "changeType": CHANGE_TYPES, "notificationUrl": url, "lifecycleNotificationUrl": lifecycle_url(),
        "resource": f"users/{mailbox}/events", "clientState": secrets.token_urlsafe(32), "latestSupportedTlsVersion": "v1_2",
        "expirationDateTime": (timezone.now() + dt.timedelta(minutes=10)).astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    try:
        created = graph_check.graph_post(provider, token_fn, "/subscriptions", json=body)
    except CredentialError as exc:
        status = getattr(exc, "status", 0)
        if status == 400:
            detail, fix = refused_reason(exc), fix_url
        elif status == 403:
            detail, fix = exc.message, "Subscribing needs the application permission Calendars.ReadWrite on the mailbox (see the access checks above)."
        else:
            detail, fix = exc.message, fix_url
        result.add("Test subscription", FAIL, f"Graph refused a test subscription on {mailbox}: {detail}. Until fixed, mailboxes are polled "
                   f"every {conf.get().poll_seconds} s instead of notified.", fix)
        return
    try:
        graph_check.graph_delete(provider, token_fn, f"/subscriptions/{created['id']}")
    except CredentialError:
        pass  # it expires on its own within 10 minutes
    result.add("Test subscription", OK, f"Graph validated {url} and a test subscription on {mailbox} was created and deleted.")


def _probe_target(provider: CalendarProvider, rooms: list[str], token):
    """A mailbox to try a subscription on, with the credential that would subscribe it."""
    if token is not None and rooms:
        return rooms[0], partial(app_token, provider)
    if provider.delegated_connected and provider.delegated_connected_as:
        return provider.delegated_connected_as.lower(), partial(delegated_user_token, provider)
    if token is not None and provider.accounts.service_account:
        return provider.accounts.service_account, partial(app_token, provider)
    return None, None

