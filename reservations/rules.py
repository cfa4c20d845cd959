"""Sync-mode restrictions (SPEC §3 "Restrictions"), checked by the reservation
services before they write anything, and shown by the portal before the user acts.

The signatures are the contract with ``reservations.services``: each check
raises ``RuleViolation`` (403) or ``EditNotAllowed`` (409, with the list of
differences) to refuse, and returns ``None`` to allow. ``actor`` is the Django
user acting; system jobs and Outlook-inbound changes (actor ``None``) are never
restricted. Series are checked per occurrence. One file of about 400 lines on purpose:
the whole table of restrictions reads beside SPEC §3 (STYLE 11).

| rule                         | mode     | refuses                                                               |
|------------------------------|----------|-----------------------------------------------------------------------|
| personal_on_behalf           | Personal | booking a synced room for someone else                                |
| personal_group               | Personal | a group reservation in a synced room                                  |
| personal_outlook_not_connected | Personal | booking a synced room in person without a usable Outlook connection |
| personal_not_requested_for   | Personal | changing/cancelling a sync mailbox ``user`` reservation of someone else |
| personal_channel             | Personal | changing/cancelling a ``user`` reservation from the REST API etc.      |
| personal_outlook_not_connected | Personal | changing/cancelling a ``user`` reservation without Outlook connected |
| strict_user_mailbox          | Strict   | changing/cancelling a reservation whose meeting is in an employee's own calendar |
| outlook_origin_edit (409)    | all      | editing a meeting created in Outlook (cancelling is allowed)          |
| room_organizer_multi_room    | Strict + rooms organize | a reservation spanning several rooms with mailboxes    |
"""

from collections.abc import Iterable
from functools import cached_property

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import prefetch_related_objects

from exchange_auth import credentials, properties
from exchange_auth.modes import Mode, PlanError, is_user_triggered, plan_sync
from exchange_auth.providers import active_provider, provider_for_room
from reservations.exceptions import EditNotAllowed, RuleViolation
from reservations.models import Kind, Origin, SyncMailbox

# Fields of a change that reach the Outlook meeting, and the name a user knows them by.
MEETING_FIELDS = {
    "start": "time",
    "end": "time",
    "subject": "subject",
    "room": "location",
    "body": "body",
    "attendees": "attendees",
    "requested_for": "organizer",
}
CHANNEL_NAMES = "the portal, quick reservation, the mobile app or the event planner"


class Lookups:
    """What the rules read besides the reservation: the sync mode, the active provider and the
    actor's Outlook connection. Each is looked up at most once, and only when a rule needs it,
    so one check costs what it did and a page of many reservations costs the same as one."""

    def __init__(self, actor=None):
        self.actor = actor

    @cached_property
    def mode(self) -> Mode:
        return properties.sync_mode()

    @cached_property
    def provider(self):
        """The default provider (the one employees connect their Outlook through)."""
        return active_provider()

    @cached_property
    def _providers(self) -> dict:
        return {}

    def provider_for(self, room):
        """The provider of ``room``'s building (else the default one), looked up once per building."""
        if room is None:
            return self.provider
        key = room.building_id
        if key not in self._providers:
            # A building naming no provider is the default's: the lookup already made serves it.
            self._providers[key] = provider_for_room(room) if room.building.calendar_provider_id else self.provider
        return self._providers[key]

    def rooms_organize_in(self, room) -> bool:
        provider = self.provider_for(room)
        return bool(provider and provider.rooms_organize_own_meetings)

    @cached_property
    def _connections(self) -> dict:
        return {}

    def connection_for(self, room) -> tuple[bool, bool]:
        """(has a usable Outlook connection, must reconnect) in the tenant of ``room``'s
        provider: an employee connects once per tenant they book in. Looked up once per provider."""
        provider = self.provider_for(room)
        key = provider.pk if provider is not None else None
        if key not in self._connections:
            usable = credentials.has_personal_token(self.actor, provider) if provider is not None else False
            revoked = not usable and provider is not None and provider.personal_tokens.filter(user=self.actor, needs_reconnect=True).exists()
            self._connections[key] = (usable, revoked)
        return self._connections[key]

    @cached_property
    def blocker_user(self) -> str:
        return properties.get(properties.BLOCKER_USER) or ""

    @property
    def rooms_organize(self) -> bool:
        return bool(self.provider and self.provider.rooms_organize_own_meetings)


# --- the checks the services call --------------------------------------------------------


def check_create(*, actor, requested_for, room, kind: str, source: str, subsource: str, rooms_count: int = 1) -> None:
    """May ``actor`` create a reservation of ``kind`` in ``room`` for ``requested_for``?"""
    if actor is None:
        return
    lookups = Lookups(actor)
    mode = lookups.mode
    violation = (
        _multi_room_violation(lookups, room, rooms_count)
        or _group_violation(mode, room, kind)
        or _on_behalf_violation(mode, room, actor, requested_for, kind)
        or _create_connection_violation(lookups, room, kind, source, subsource)
    )
    if violation:
        raise violation


def check_update(*, actor, reservation, source: str, subsource: str, changes: dict) -> None:
    """May ``actor`` apply ``changes`` ({field: (old, new)}) to ``reservation``?

    Fields: subject, body, start, end, room, arrangement, attendees, requested_for."""
    if actor is None:
        return
    if reservation.origin == Origin.EXCHANGE:
        differences = meeting_differences(reservation, changes)
        if differences:
            raise EditNotAllowed(
                "This meeting was created in Outlook, so it can't be changed here: change it in Outlook "
                f"(or cancel the reservation). Not changed: {', '.join(differences)}.",
                differences=differences,
            )
    lookups = Lookups(actor)
    violation = _mailbox_violation(lookups, reservation, source, subsource, action="change")
    if violation is None and "room" in changes:
        new_room = changes["room"][1]
        violation = _group_violation(lookups.mode, new_room, reservation.kind)
    if violation:
        raise violation


def check_cancel(*, actor, reservation, source: str, subsource: str) -> None:
    """May ``actor`` cancel ``reservation``? A meeting created in Outlook can always be cancelled
    (the room declines it)."""
    if actor is None or reservation.origin == Origin.EXCHANGE:
        return
    violation = _mailbox_violation(Lookups(actor), reservation, source, subsource, action="cancel")
    if violation:
        raise violation


# --- what the portal shows before the user acts ---------------------------------------------------


def ui_capabilities(actor, room=None, reservation=None, *, source: str = "portal") -> dict:
    """Which actions the portal offers ``actor`` for ``room`` (booking) or ``reservation``
    (change, cancel), and why not. Same rules as the checks above."""
    return _capabilities(Lookups(actor), room, reservation, source=source)


def ui_capabilities_many(actor, reservations: Iterable, *, source: str = "portal") -> dict[int, dict]:
    """{reservation id: ui_capabilities(actor, reservation=...)} for a page of reservations, with
    the provider, the mode and the actor's Outlook connection looked up once: the cost doesn't
    grow with the number of rows or of distinct rooms. Rows should come with their room's
    building and their requested-by/for users (``selectors.reservation_queryset``)."""
    rows = list(reservations)
    lookups = Lookups(actor)
    # Rows whose meeting hasn't been placed yet are placed by the mode table, which asks
    # whether the requested-for person has a mailbox: their profiles, in one query.
    unplaced = [row for row in rows if not row.sync_mailbox and row.room.is_synced]
    if unplaced:
        prefetch_related_objects([row.requested_for for row in unplaced], "profile")
    return {row.pk: _capabilities(lookups, None, row, source=source) for row in rows}


def _capabilities(lookups: Lookups, room, reservation, *, source: str) -> dict:
    actor = lookups.actor
    mode = lookups.mode
    room = room if room is not None else getattr(reservation, "room", None)
    caps = {
        "mode": mode.value,
        "can_book_on_behalf": True, "on_behalf_reason": "",
        "can_group": bool(room is None or room.group_reservations_enabled),
        "group_reason": "" if room is None or room.group_reservations_enabled else "This room doesn't take group reservations.",
        "outlook_connection_required": False, "outlook_reason": "",
        "can_edit": reservation is not None, "edit_reason": "",
        "can_cancel": reservation is not None, "cancel_reason": "",
        "offer_cancel_meeting_choice": False,
        "room_change_note": "",
        "changes_here_note": "",
    }
    if room is not None:
        on_behalf = _on_behalf_violation(mode, room, actor, None, Kind.ON_BEHALF)
        if on_behalf:
            caps.update(can_book_on_behalf=False, on_behalf_reason=on_behalf.message)
        group = _group_violation(mode, room, Kind.GROUP)
        if group and caps["can_group"]:
            caps.update(can_group=False, group_reason=group.message)
        connection = _create_connection_violation(lookups, room, Kind.STANDARD, source, "")
        if connection:
            caps.update(outlook_connection_required=True, outlook_reason=connection.message)
    if reservation is not None:
        if reservation.origin == Origin.EXCHANGE:
            caps.update(can_edit=False, edit_reason="This meeting was created in Outlook: change it in Outlook.")
        else:
            edit = _mailbox_violation(lookups, reservation, source, "", action="change")
            if edit:
                caps.update(can_edit=False, edit_reason=edit.message)
        if reservation.origin != Origin.EXCHANGE:
            cancel = _mailbox_violation(lookups, reservation, source, "", action="cancel")
            if cancel:
                caps.update(can_cancel=False, cancel_reason=cancel.message)
        caps["offer_cancel_meeting_choice"] = _product_can_choose_on_cancel(lookups, reservation)
        caps["room_change_note"] = _room_change_note(lookups, reservation)
        caps["changes_here_note"] = changes_here_note(reservation.room)
    elif room is not None:
        caps["offer_cancel_meeting_choice"] = room.is_synced and not _room_organizes(lookups, room)
    return caps


def offer_cancel_meeting_choice(reservations) -> bool:
    """For a multi-select or recurring cancel dialog: offer "also cancel the meeting on
    people's calendars" only when the product can choose for every selected reservation."""
    lookups = Lookups()
    rows = list(reservations)
    return bool(rows) and all(_product_can_choose_on_cancel(lookups, row) for row in rows)


def meeting_differences(reservation, changes: dict) -> dict:
    """{"time"|"subject"|"location"|"body"|"attendees"|"organizer": {"current": .., "requested": ..}}
    for the changes that would reach the Outlook meeting (the arrangement does not)."""
    differences: dict[str, dict] = {}
    if "start" in changes or "end" in changes:
        old_start, new_start = changes.get("start", (reservation.start, reservation.start))
        old_end, new_end = changes.get("end", (reservation.end, reservation.end))
        differences["time"] = {
            "current": f"{old_start.isoformat()} – {old_end.isoformat()}",
            "requested": f"{new_start.isoformat()} – {new_end.isoformat()}",
        }
    for field, label in MEETING_FIELDS.items():
        if field in ("start", "end") or field not in changes:
            continue
        old, new = changes[field]
        differences[label] = {"current": _describe(field, old), "requested": _describe(field, new)}
    return differences


# --- the rules ----------------------------------------------------------------------------------


def _on_behalf_violation(mode, room, actor, requested_for, kind) -> RuleViolation | None:
    """Personal mode: nobody can write to another person's calendar, so no on-behalf bookings
    of synced rooms (the portal hides "this reservation is for")."""
    # A room without a mailbox: the organizer account writes its meetings, nobody's own calendar.
    if mode is not Mode.PERSONAL or not room.is_synced or not room.has_mailbox or kind == Kind.BLOCKER:
        return None
    if requested_for is not None and getattr(requested_for, "pk", None) == getattr(actor, "pk", None):
        return None
    return RuleViolation(
        "personal_on_behalf",
        f"{room.name} syncs with Outlook, and in Personal mode reservations there can only be made for yourself "
        "(the meeting is written to your own calendar). Book a room that isn't synced to book for someone else.",
    )


def _group_violation(mode, room, kind) -> RuleViolation | None:
    if mode is not Mode.PERSONAL or kind != Kind.GROUP or not room.is_synced or not room.has_mailbox:
        return None
    return RuleViolation(
        "personal_group",
        f"Group reservations aren't available for {room.name} because it syncs with Outlook in Personal mode. "
        "Choose a room that isn't synced.",
    )


def _create_connection_violation(lookups: Lookups, room, kind, source, subsource) -> RuleViolation | None:
    """Personal mode: booking a synced room in person writes to the employee's own calendar with
    their own token; without one it could never sync, and no other identity may stand in."""
    if lookups.mode is not Mode.PERSONAL or not room.is_synced or not room.has_mailbox or kind == Kind.BLOCKER:
        return None
    if not is_user_triggered(source=source, subsource=subsource):
        return None
    return _connection_violation(lookups, room)


def _connection_violation(lookups: Lookups, room) -> RuleViolation | None:
    usable, reconnect = lookups.connection_for(room)
    if usable:
        return None
    return RuleViolation(
        "personal_outlook_not_connected",
        ("Your Outlook connection expired or was revoked: reconnect Outlook, then try again."
         if reconnect else "Connect your Outlook account first: in Personal mode reservations in synced rooms "
         "are written to your own calendar."),
        extra={"reconnect_outlook": True},
    )


def _mailbox_violation(lookups: Lookups, reservation, source, subsource, *, action: str) -> RuleViolation | None:
    """Update/cancel restrictions that depend on where the meeting lives (its sync mailbox)."""
    mode, actor = lookups.mode, lookups.actor
    sync_mailbox = effective_sync_mailbox(reservation, lookups=lookups)
    if sync_mailbox != SyncMailbox.USER:
        return None
    verb = "changed" if action == "change" else "cancelled"
    if mode is Mode.STRICT:
        return RuleViolation(
            "strict_user_mailbox",
            f"This reservation's meeting is in {reservation.mailbox or 'an employee'}'s own calendar, and in Strict mode "
            f"such reservations can't be {verb} here. Ask an admin, or {action} the meeting in Outlook.",
        )
    if mode is not Mode.PERSONAL:
        return None
    if not is_user_triggered(source=source, subsource=subsource):
        return RuleViolation(
            "personal_channel",
            f"This reservation's meeting is in the owner's own Outlook calendar, so in Personal mode it can only be "
            f"{verb} by them from {CHANNEL_NAMES}, not {'at a room panel' if source == 'room_panel' else 'through the API'}.",
        )
    if getattr(actor, "pk", None) != reservation.requested_for_id:
        return RuleViolation(
            "personal_not_requested_for",
            f"This reservation's meeting is in {reservation.requested_for}'s own Outlook calendar, so in Personal mode "
            f"only they can {'change' if action == 'change' else 'cancel'} it.",
        )
    return _connection_violation(lookups, reservation.room)


def effective_sync_mailbox(reservation, *, lookups: Lookups | None = None) -> str:
    """Where the reservation's meeting lives: the stored sync mailbox, or for a reservation
    whose first sync hasn't run yet, where the mode table will put it."""
    if reservation.sync_mailbox:
        return reservation.sync_mailbox
    room = reservation.room
    if not room.is_synced:
        return ""
    lookups = lookups or Lookups()
    provider = lookups.provider_for(room)
    if provider is None:
        return ""
    requester, requested_for = reservation.requested_by, reservation.requested_for
    try:
        plan = plan_sync(
            mode=lookups.mode, source=reservation.source, subsource=reservation.subsource,
            kind=reservation.kind, acting_user=(requester.email or "").lower(),
            requested_for=(requested_for.email or "").lower(), requested_for_has_mailbox=_has_mailbox(requested_for),
            room_mailbox=room.mailbox, accounts=provider.accounts,
            blocker_user=lookups.blocker_user,
        )
    except PlanError:
        return ""
    return plan.sync_mailbox


def _multi_room_violation(lookups: Lookups, room, rooms_count) -> RuleViolation | None:
    if rooms_count <= 1 or not _room_organizes(lookups, room):
        return None
    return RuleViolation(
        "room_organizer_multi_room",
        "Rooms organize their own meetings here, so one reservation can't span several rooms. "
        "Book each room separately.",
    )


def _room_organizes(lookups: Lookups, room) -> bool:
    if lookups.mode is not Mode.STRICT or not room.has_mailbox:
        return False
    return lookups.rooms_organize_in(room)


def _product_can_choose_on_cancel(lookups: Lookups, reservation) -> bool:
    """Whether cancelling may either keep or cancel the meeting on people's calendars.

    Not for room-organizer meetings (cancelled with the reservation), nor for meetings
    created in Outlook (the room declines them), nor when there's no meeting at all."""
    if not reservation.room.is_synced or reservation.origin == Origin.EXCHANGE:
        return False
    room_mailbox = (reservation.room.mailbox or "").lower()
    if reservation.organizer:
        return reservation.organizer.lower() != room_mailbox
    return not _room_organizes(lookups, reservation.room)


CHANGES_HERE = ("{room} has no Exchange mailbox: its meeting in Outlook is organized by the reservations account, which "
                "isn't watched for changes. Change or cancel this reservation here; changes made in Outlook don't reach it.")


def changes_here_note(room) -> str:
    """For a synced room without a mailbox (README "Rooms without a mailbox"): where changes belong."""
    if room is None or not room.is_synced or room.has_mailbox:
        return ""
    return CHANGES_HERE.format(room=room.name)


def _room_change_note(lookups: Lookups, reservation) -> str:
    """What moving the reservation to another room does to its Outlook meeting (SPEC §3)."""
    if reservation.room.is_synced and not reservation.room.has_mailbox:
        return ("The reservations account's Outlook meeting is kept when you move to another room without a mailbox; "
                "moving to a room with a mailbox may replace it with a new meeting, which that room is asked to accept.")
    if lookups.mode is Mode.STRICT and lookups.rooms_organize_in(reservation.room):
        return ("Rooms organize their own meetings: moving to another room with a mailbox cancels this meeting and "
                "that room sends everyone a new invitation. Moving to a room without a mailbox keeps the meeting.")
    if reservation.room.is_synced or reservation.event_id:
        return "The Outlook meeting is kept: only its room changes, and the new room is asked to accept it."
    return "Moving to a room that syncs with Outlook puts the meeting in Outlook, and that room is asked to accept it."


def _has_mailbox(user) -> bool:
    try:
        return bool(user.profile.has_mailbox)
    except ObjectDoesNotExist:  # no profile row: an ordinary employee with a mailbox
        return True


def _describe(field: str, value) -> object:
    if field == "room":
        return getattr(value, "name", str(value))
    if field == "requested_for":
        return getattr(value, "email", "") or str(value)
    if field == "attendees":
        return sorted((item.get("email") if isinstance(item, dict) else str(item)) for item in (value or []))
    return value
