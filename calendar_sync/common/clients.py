"""Graph clients per credential, built from exchange_auth's token functions.

One ``GraphClient`` (and so one pooled HTTP session) per (provider, credential,
token user) per process; tokens come from ``exchange_auth.credentials`` on every
request (msal serves them from its cache and refreshes silently)."""

from __future__ import annotations

import functools
import inspect
import threading

from django.db import connection

from exchange_auth import credentials
from exchange_auth.graph import GraphClient
from exchange_auth.modes import Credential, SyncPlan
from workplace.models import Room

_clients: dict[tuple, GraphClient] = {}
_lock = threading.Lock()


def _accepts(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _token_callable(plan: SyncPlan, provider, acting_user):
    creds = credentials
    func = creds.token_for_plan
    refresh_ok = _accepts(func, "force_refresh")

    def token(force_refresh: bool = False) -> str:
        kwargs = {"force_refresh": True} if (force_refresh and refresh_ok) else {}
        result = func(plan, provider, acting_user, **kwargs)
        return result if isinstance(result, str) else result["access_token"]

    return token


def client_for(plan: SyncPlan, provider, acting_user=None) -> GraphClient:
    """The client acting with ``plan``'s credential (system, or the acting user's own token)."""
    who = ""
    if plan.credential == Credential.PERSONAL:
        who = getattr(acting_user, "email", "") or plan.token_user
    key = (provider.pk, provider.updated_at, str(plan.credential), who.lower())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = GraphClient(
                _token_callable(plan, provider, acting_user), base_url=provider.graph_base_url,
                credential_label=f"{plan.credential}" + (f":{who}" if who else ""),
            )
            _clients[key] = client
        return client


def system_plan(mailbox: str = "") -> SyncPlan:
    """The provider's own credential acting on ``mailbox`` (no person behind it)."""
    return SyncPlan(credential=Credential.SYSTEM, token_user="", mailbox=mailbox, sync_mailbox="other", organizer="", organizer_is_room=False, employee_role="attendee")


def system_client(provider) -> GraphClient:
    return client_for(system_plan(), provider, None)


def credential_client(provider, credential: str) -> GraphClient:
    """The client acting with one named credential, whatever the system credential is now:
    ``"app"`` (app-only), ``"delegated"`` (the provider's delegated user), ``""`` (the system
    client). Subscriptions use it: Graph lets only their creator renew or delete them."""
    if not credential:
        return system_client(provider)
    creds = credentials
    func = {"app": creds.app_token, "delegated": creds.delegated_user_token}[credential]
    key = (provider.pk, provider.updated_at, f"credential:{credential}", "")
    with _lock:
        client = _clients.get(key)
        if client is None:
            def token(force_refresh: bool = False) -> str:
                return func(provider, force_refresh=force_refresh)

            client = GraphClient(token, base_url=provider.graph_base_url, credential_label=credential)
            _clients[key] = client
        return client


def delegate_of(mailbox: str) -> bool:
    """Whether the provider's delegated user is a delegate of ``mailbox``: SPEC §3 makes it
    a delegate on the rooms (a room mailbox of the directory), not on people's calendars."""
    if not mailbox:
        return False
    if connection.vendor == "postgresql":
        # Every push asks (mailbox_reach): the ORM's mailbox__iexact EXISTS, written once.
        with connection.cursor() as cursor:
            cursor.execute(_room_mailbox_sql(), [mailbox])
            return cursor.fetchone() is not None
    return Room.objects.filter(mailbox__iexact=mailbox).exists()


@functools.cache
def _room_mailbox_sql() -> str:
    quote = connection.ops.quote_name
    column = quote(Room._meta.get_field("mailbox").column)
    return f"SELECT 1 FROM {quote(Room._meta.db_table)} WHERE UPPER({column}::text) = UPPER(%s) LIMIT 1"  # noqa: S608 (identifiers from metadata)


def mailbox_reach(provider, mailbox: str) -> credentials.Reach:
    """Which of the provider's own credentials act on ``mailbox``, best first, and why."""
    return credentials.reach(provider, mailbox, delegate_of=delegate_of(mailbox))


def mailbox_client(provider, mailbox: str, credential: str | None = None) -> GraphClient:
    """The provider's own client for acting on ``mailbox``: ``credential`` when given, else the
    first its reach names (the system client when none does: its token call then says why)."""
    if credential is None:
        credential = mailbox_reach(provider, mailbox).first
    return credential_client(provider, credential)


def reset() -> None:
    """Forget every client (tests: after the emulator restarts or the provider changes)."""
    with _lock:
        _clients.clear()
