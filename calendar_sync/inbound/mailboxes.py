"""Which mailboxes inbound sync listens to (SPEC §3, §4).

Every synced room's. And the provider's organizer mailbox (its service account: the
organizer account, else the delegated user) whenever the product's meetings live there:
1. Strict mode without room organizers (the service account organizes every meeting);
2. Normal mode when someone has no mailbox (the service account organizes theirs);
3. in any mode while live product meetings sit in its calendar (or the delegated user's)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.modes import Mode
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

from ..common import tenancy
from ..models import Subscription


def synced_mailboxes(provider=None) -> list[str]:
    """The synced rooms' mailboxes (of ``provider``'s rooms when given: each tenant listens to its own)."""
    rooms = tenancy.rooms_of(provider) if provider is not None else Room.objects.all()
    return sorted({m.lower() for m in rooms.filter(sync_enabled=True).exclude(mailbox="").values_list("mailbox", flat=True)})


def service_accounts(provider) -> list[str]:
    """The mailboxes that hold meetings on the product's behalf: the table's service account
    (organizer account, else delegated user) first, then the delegated user if it differs
    (Personal-mode blockers live there, ``exchange_auth.modes.plan_sync`` step 1)."""
    if provider is None:
        return []
    accounts = provider.accounts
    found = [accounts.service_account, accounts.delegated_user]
    return list(dict.fromkeys(a.strip().lower() for a in found if a and a.strip()))


def organizer_mailboxes(provider, *, rooms: list[str] | None = None) -> list[str]:
    """The organizer mailbox(es) to subscribe to (rules 1–3 above)."""
    rooms = synced_mailboxes(provider) if rooms is None else rooms
    accounts = [a for a in service_accounts(provider) if a not in rooms]
    if not rooms or not accounts:
        return []
    mode = properties.sync_mode()
    organizes = (mode is Mode.STRICT and not provider.rooms_organize_own_meetings) or (mode is Mode.NORMAL and _someone_without_mailbox())
    main = service_accounts(provider)[0]
    wanted = [main] if organizes and main in accounts else []
    wanted += [a for a in accounts if a not in wanted and _holds_live_meetings(a)]
    return wanted


def _holds_live_meetings(mailbox: str) -> bool:
    """Active product meetings that are not over live in ``mailbox`` (rule 3)."""
    return Reservation.objects.filter(mailbox__iexact=mailbox, state__in=ACTIVE_STATES, end__gt=timezone.now()).exists()


def _someone_without_mailbox() -> bool:
    """An active person the mode table would give the service account as organizer (as
    the outbound plan decides it: no email address, or a profile without a mailbox)."""
    people = get_user_model().objects.filter(is_active=True)
    return people.filter(Q(email="") | Q(profile__has_mailbox=False)).exists()


def subscribed_mailboxes(provider) -> dict[str, str]:
    """{mailbox: Subscription.Kind} of every mailbox that should have a live subscription."""
    rooms = synced_mailboxes(provider)
    wanted = dict.fromkeys(rooms, Subscription.Kind.ROOM)
    for mailbox in organizer_mailboxes(provider, rooms=rooms):
        wanted.setdefault(mailbox, Subscription.Kind.ORGANIZER)
    return wanted


def is_organizer_mailbox(provider, mailbox: str) -> bool:
    """Whether ``mailbox`` is one of the provider's service accounts (its pulls reconcile only
    the product's meetings there, ``organizer_calendar``)."""
    return mailbox.lower() in service_accounts(provider)


def delegated_mailbox(provider) -> str:
    """The connected delegated user's own mailbox ('' when none is connected)."""
    if provider is None or not provider.delegated_connected:
        return ""
    return (provider.delegated_connected_as or provider.delegated_user_email or "").strip().lower()


