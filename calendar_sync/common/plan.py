"""The SPEC §3 plan of one sync event: which provider, which credential and mailbox act,
who organizes — and the Graph client that acts with it.

Both wings use it: the outbound pushes plan each event; the confirmation checks and the
inbound reconcilers read the organizer's copy of a meeting with the client its plan gives.
The mode table itself lives in ``exchange_auth.modes`` and takes plain values."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from exchange_auth import properties
from exchange_auth.credentials import CredentialError
from exchange_auth.graph import GraphClient
from exchange_auth.modes import Credential, PlanError, ProviderAccounts, SyncPlan, plan_sync
from reservations.models import Reservation, SyncEvent
from reservations.outbox import SyncEventDetails

from .clients import client_for, mailbox_client
from .tenancy import provider_for_room


class PermanentSyncError(Exception):
    """Retrying won't help (no provider, no account for the plan, reconnect needed...).
    ``cause`` names what the admins would fix (the alert's dedupe key)."""

    def __init__(self, message: str = "", *, cause: str = ""):
        super().__init__(message)
        self.cause = cause


def provider(room=None):
    """The calendar provider of ``room`` (its building's, else the default one); a sync event
    can't be pushed without one."""
    found = provider_for_room(room)
    if found is None:
        raise PermanentSyncError("No calendar provider is active.")
    return found


def user_email(user) -> str:
    return (getattr(user, "email", "") or "").lower()


def has_mailbox(user) -> bool:
    profile = getattr(user, "profile", None)
    return bool(user_email(user)) and (profile is None or profile.has_mailbox)


def _acting_user(details: SyncEventDetails, target):
    """Who acted (the service recorded it), else the requester."""
    if details.actor_id:
        for known in (getattr(target, "requested_by", None), getattr(target, "requested_for", None)):
            if known is not None and known.pk == details.actor_id:
                return known  # already loaded with the target: no query
        user = get_user_model().objects.filter(pk=details.actor_id).first()
        if user is not None:
            return user
    return target.requested_by


def plan_for(event: SyncEvent, target, room, provider) -> tuple[SyncPlan, object]:
    """The SPEC §3 plan for this event's action, and the acting user."""
    details = SyncEventDetails.of(event)
    actor = _acting_user(details, target)
    source = details.source or getattr(target, "source", "portal")
    subsource = details.subsource if details.subsource is not None else getattr(target, "subsource", "")
    by_user = not details.system
    accounts: ProviderAccounts = provider.accounts
    try:
        plan = plan_sync(
            mode=properties.sync_mode(),
            source=source,
            subsource=subsource,
            kind=getattr(target, "kind", "standard"),
            acting_user=user_email(actor),
            requested_for=user_email(target.requested_for),
            requested_for_has_mailbox=has_mailbox(target.requested_for),
            room_mailbox=(room.mailbox or "").lower(),
            accounts=accounts,
            blocker_user=properties.get(properties.BLOCKER_USER) or "",
            by_user=by_user,
            existing_sync_mailbox=(getattr(target, "sync_mailbox", "") or "") if event.type != SyncEvent.Type.CREATE else "",
        )
    except PlanError as exc:
        raise PermanentSyncError(str(exc)) from exc
    return plan, actor


def client_for_plan(plan: SyncPlan, provider, actor, link_mailbox: str = "") -> GraphClient:
    """The plan's credential — except that a meeting living in another mailbox than the
    plan's (e.g. created by the REST API in the employee's calendar, now changed in the
    portal in Personal mode) is changed with the system credential that reaches it. The
    system credential is the one that reaches the mailbox acted on (``mailbox_reach``: the
    delegated user in its own mailbox and the rooms, app-only in people's calendars)."""
    target = (link_mailbox or plan.mailbox or "").lower()
    if link_mailbox and plan.credential == Credential.PERSONAL and link_mailbox.lower() != plan.mailbox.lower():
        return mailbox_client(provider, target)
    try:
        if plan.credential == Credential.SYSTEM and target:
            return mailbox_client(provider, target)
        return client_for(plan, provider, actor)
    except CredentialError as exc:  # no token, or the person must reconnect: retrying won't help
        raise permanent(exc) from exc


def permanent(exc: CredentialError) -> PermanentSyncError:
    return PermanentSyncError(f"{type(exc).__name__}: {exc}")


def timezone_of(room) -> str:
    return room.building.timezone or "UTC"


def linked_plan(reservation: Reservation, plan: SyncPlan) -> SyncPlan:
    """The plan as the existing meeting has it (organizer and mailbox as stored): a meeting
    keeps its organizer, so attendees are worked out against the linked one."""
    organizer = reservation.organizer or plan.organizer
    room_mailbox = (reservation.room.mailbox or "").lower()
    return SyncPlan(
        credential=plan.credential, token_user=plan.token_user, mailbox=reservation.mailbox or plan.mailbox,
        sync_mailbox=reservation.sync_mailbox or plan.sync_mailbox, organizer=organizer,
        organizer_is_room=bool(room_mailbox) and organizer.lower() == room_mailbox,
        employee_role="organizer" if organizer.lower() == user_email(reservation.requested_for) else "attendee",
        invitee=plan.invitee,
    )
