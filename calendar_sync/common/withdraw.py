"""Withdrawing the room from the meeting of a reservation the product rejected.

When the product rejects a reservation whose meeting already exists in Exchange — no answer
within ``exchange_callback_time_limit``, a delegate's approval not given within
``approval_time_limit`` — the meeting must not go on inviting the room: the room is taken off
the organizer's copy (its attendee and its location entry), with If-Match on the change key
(``meetings.patch``). Exchange then sends the room a cancellation and its booking attendant
removes the meeting from the room's calendar; the organizer and the other attendees keep
their meeting, without the room. (A room that declined is left on the meeting as declined:
that is Exchange's own record of its answer.)

The withdrawal is no user's action: it is made with the system-to-system credential that
reaches the organizer's mailbox (SPEC §3). A failure is kept on the reservation (sync state
``error`` with the cause) for the admins; it never undoes the rejection."""

from __future__ import annotations

import logging

from exchange_auth.graph import GraphError
from reservations.models import ACTIVE_STATES, Reservation

from . import meetings, outcomes
from .answers import meeting_of
from .clients import mailbox_client
from .plan import PermanentSyncError, provider

logger = logging.getLogger("calendar_sync")

SELECT = "id,changeKey,attendees,location,locations,isCancelled"


def _is_room(entry: dict, room_mailbox: str, room_name: str) -> bool:
    address = (entry.get("locationEmailAddress") or entry.get("uniqueId") or "").lower()
    return address == room_mailbox or (not address and (entry.get("displayName") or "") == room_name)


def without_room(body: dict, room_mailbox: str, room_name: str) -> dict | None:
    """The PATCH that takes the room off the meeting ``body``; None when it isn't on it."""
    room_mailbox = room_mailbox.lower()
    attendees = body.get("attendees") or []
    kept = [a for a in attendees if ((a.get("emailAddress") or {}).get("address") or "").lower() != room_mailbox]
    if len(kept) == len(attendees):
        return None
    patch: dict = {"attendees": [{"emailAddress": a.get("emailAddress"), "type": a.get("type") or "required"} for a in kept]}
    locations = [loc for loc in (body.get("locations") or []) if not _is_room(loc, room_mailbox, room_name)]
    if len(locations) != len(body.get("locations") or []):
        patch["locations"] = locations
    if _is_room(body.get("location") or {}, room_mailbox, room_name):
        patch["location"] = locations[0] if locations else {"displayName": ""}
    return patch


def withdraw_room(reservation: Reservation) -> str:
    """Take ``reservation``'s room off its meeting. Returns what happened: "withdrawn",
    "not_invited" (the room isn't on it any more), "gone" (no meeting), "kept" (the room
    organizes it, or other occurrences of the series still hold the room), or "failed"."""
    room = reservation.room
    if not room.mailbox:
        return "kept"
    mailbox, event_id = meeting_of(reservation)
    if not event_id:
        return "gone"
    if reservation.organizer and reservation.organizer.lower() == room.mailbox.lower():
        return "kept"  # the room organizes the meeting: its copy is the meeting
    if not reservation.event_id and reservation.series_id and Reservation.objects.filter(
        series_id=reservation.series_id, state__in=ACTIVE_STATES,
    ).exclude(pk=reservation.pk).exists():
        return "kept"  # the series' master still books the room for its other occurrences
    try:
        client = mailbox_client(provider(room), mailbox)
        body = meetings.get(client, mailbox, event_id, select=SELECT)
        if body is None or body.get("isCancelled"):
            return "gone"
        patch = without_room(body, room.mailbox, room.name)
        if patch is None:
            return "not_invited"
        if meetings.patch(client, mailbox, event_id, body.get("changeKey", ""), patch) is None:
            return "gone"
    except (GraphError, PermanentSyncError) as exc:
        logger.warning("withdrawing %s from the meeting of rejected reservation %s failed: %s", room.mailbox, reservation.pk, exc)
        outcomes.failed(reservation, f"{room.name} could not be withdrawn from the meeting in Exchange: {exc}")
        return "failed"
    logger.info("withdrew %s from the meeting of rejected reservation %s", room.mailbox, reservation.pk)
    return "withdrawn"


def reject_and_withdraw(reservation: Reservation, reason: str) -> bool:
    """``outcomes.mark_rejected`` (the employee told) and, when it changed the reservation,
    the room withdrawn from its meeting. False when the reservation was not rejected now."""
    if not outcomes.mark_rejected(reservation, reason):
        return False
    withdraw_room(reservation)
    return True
