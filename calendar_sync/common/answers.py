"""The room's answer to a meeting (SPEC §4 "Confirmation"), wherever it is read.

The room's booking attendant answers on the organizer's copy of the meeting (the room
attendee's ``status.response``). The push's response, the confirmation checks, the
organizer mailbox's pull and the room's own copy all apply it here, so a decline always
ends as ``rejected`` with one reason and one email, whoever reads it first."""

from __future__ import annotations

from exchange_auth.graph import GraphError, NotFound, users_path
from reservations.models import ApprovalState, Reservation, SyncEvent
from reservations.services import WAITING_FOR_ANSWER

from . import outcomes
from .plan import PermanentSyncError, client_for_plan, plan_for, provider

ROOM_DECLINED = "{room} declined the meeting: the room is not available at that time."
DELEGATE_DECLINED = "{room}'s booking delegate declined the request in Exchange."
# What the organizer's copy is read with: enough for the room's answer and the change key.
ORGANIZER_COPY_SELECT = "id,changeKey,attendees,isCancelled,iCalUId"


def room_response(event: dict, room_mailbox: str) -> str:
    """The room's answer as the organizer's copy shows it: accepted, declined,
    tentativelyAccepted, notResponded or none ("" if the room isn't on it)."""
    for attendee in (event or {}).get("attendees", []) or []:
        address = ((attendee.get("emailAddress") or {}).get("address") or "").lower()
        if address == room_mailbox.lower():
            return ((attendee.get("status") or {}).get("response") or "none")
    return ""


def answer_in(reservation: Reservation, graph_event: dict, *, plan_organizer_is_room: bool | None = None) -> str:
    """The room's answer that the organizer's copy of the meeting carries: "accepted",
    "declined", "tentative" (the room's bookings are approved by a delegate, who has the
    request now: Exchange's resource booking attendant answers tentative for it), or "" (none
    yet). A room without a mailbox, or one that organizes the meeting itself, has nothing
    to answer: the meeting stands."""
    room = reservation.room
    organizer_is_room = plan_organizer_is_room if plan_organizer_is_room is not None else (
        bool(room.mailbox) and reservation.organizer.lower() == room.mailbox.lower()
    )
    return room_answer_in(room, graph_event, organizer_is_room=organizer_is_room)


def room_answer_in(room, graph_event: dict, *, organizer_is_room: bool) -> str:
    """``answer_in`` for a meeting of ``room`` whose organizer is known."""
    if not room.mailbox or organizer_is_room:
        return "accepted"
    return normalised(room_response(graph_event, room.mailbox))


def normalised(response: str) -> str:
    """A Graph responseType as the room's answer: accepted, declined, tentative or ""."""
    if response == "tentativelyAccepted":
        return "tentative"
    return response if response in ("accepted", "declined") else ""


def declined_reason(room, reservation: Reservation | None = None) -> str:
    """What a rejected employee reads when ``room`` declined (its delegate, when the
    reservation was waiting for one)."""
    if reservation is not None and reservation.approval_state == ApprovalState.AWAITING_APPROVAL:
        return DELEGATE_DECLINED.format(room=room.name)
    return ROOM_DECLINED.format(room=room.name)


def apply_room_answer(reservation: Reservation, graph_event: dict, *, plan_organizer_is_room: bool | None = None) -> str:
    """Confirm / reject a reservation waiting for the room from the organizer's copy of its
    meeting. Returns the room's answer ("" when there is none yet: the caller decides
    whether to ask again later)."""
    return apply_room_response(reservation, answer_in(reservation, graph_event, plan_organizer_is_room=plan_organizer_is_room))


def apply_room_response(reservation: Reservation, answer: str) -> str:
    """The one place the room's answer changes a reservation. Only a reservation still
    waiting for it (awaiting, or conflicted) is changed: accepted → confirmed, declined →
    rejected with the same reason and email (``outcomes.mark_rejected``). The transitions
    are conditional updates, so two readers of one answer make one change and the
    employee is told once. "tentative" (a delegate has the request) keeps it waiting, its
    approval state ``awaiting_approval`` (SPEC §2). Returns the answer ("" when there is none yet)."""
    if answer == "accepted":
        if reservation.state in WAITING_FOR_ANSWER:
            outcomes.mark_confirmed(reservation)
    elif answer == "declined":
        if reservation.state in WAITING_FOR_ANSWER:
            outcomes.mark_rejected(reservation, declined_reason(reservation.room, reservation))
    elif answer == "tentative":
        if reservation.state in WAITING_FOR_ANSWER:
            outcomes.mark_awaiting_approval(reservation)
    else:
        return ""
    return answer


def meeting_of(reservation: Reservation) -> tuple[str, str]:
    """(mailbox, event id) of the organizer's copy that carries the room's answer: the
    reservation's own meeting, or for an occurrence without an id of its own its series' master."""
    if reservation.event_id:
        return reservation.mailbox, reservation.event_id
    series = reservation.series
    if series is not None and series.event_id:
        return series.mailbox or reservation.mailbox, series.event_id
    return "", ""


def read_organizer_copy(reservation: Reservation) -> dict | None:
    """The organizer's copy of the reservation's meeting (where the room's answer shows), read
    now and applied to nothing: None when it is gone or cancelled, {} when it can't be read."""
    active = provider(reservation.room)
    plan, actor = plan_for(SyncEvent(details={}), reservation, reservation.room, active)
    mailbox, event_id = meeting_of(reservation)
    if not event_id:
        return {}
    try:
        client = client_for_plan(plan, active, actor, link_mailbox=mailbox)
        body = client.get(users_path(mailbox, "events", event_id), params={"$select": ORGANIZER_COPY_SELECT})
    except NotFound:
        return None
    except (GraphError, PermanentSyncError):
        return {}
    if not body:
        return {}
    return None if body.get("isCancelled") else body
