"""Confirmation (SPEC §4): a new reservation on a room with a mailbox waits for the room.

The room's booking attendant answers on the organizer's copy of the meeting
(the room attendee's ``status.response``) moments after the create. Three
readers apply that answer, all through ``push.apply_room_answer``:

1. ``check_answers`` — right after pushes whose create response didn't carry an
   answer yet: reads the organizer's copies of all fresh awaiting meetings with
   ``$batch`` (20 per HTTP request), coalesced across pushes;
2. inbound change notifications (issue 6) call ``apply_room_answer`` too;
3. ``check_room_calendars`` — every 10 minutes: the room's calendar must still
   hold each awaiting meeting, else the reservation is ``conflicted``;
4. ``clean_up_unanswered`` — no answer within ``exchange_callback_time_limit`` →
   ``rejected``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from exchange_auth import properties
from reservations.models import Reservation, State, SyncEvent

from . import conf, outcomes, push
from .clients import system_client
from .graph import AccessDenied, BatchItem, GraphError, GraphResponse, NotFound, users_path

logger = logging.getLogger("calendar_sync")

_SELECT = "id,changeKey,attendees,isCancelled,iCalUId"


def _awaiting():
    return (
        Reservation.objects.filter(state=State.AWAITING_CONFIRMATION)
        .exclude(event_id="")
        .select_related("room__building", "requested_for__profile", "requested_by")
    )


def check_answers(*, max_age_seconds: float | None = None, limit: int = 1000) -> dict:
    """Read the room's answer for awaiting reservations pushed recently. Returns counts."""
    qs = _awaiting()
    if max_age_seconds is not None:
        qs = qs.filter(created_at__gte=timezone.now() - timedelta(seconds=max_age_seconds))
    reservations = list(qs.order_by("created_at")[:limit])
    counts = {"checked": 0, "confirmed": 0, "rejected": 0, "unanswered": 0, "missing": 0}
    if not reservations:
        return counts
    provider = push._provider()
    groups: dict[int, tuple] = {}
    members: dict[int, list[Reservation]] = defaultdict(list)
    for reservation in reservations:
        fake_event = SyncEvent(details={"system": False})
        plan, actor = push.plan_for(fake_event, reservation, reservation.room, provider)
        try:
            client = push._client(plan, provider, actor, link_mailbox=reservation.mailbox)
        except push.PermanentSyncError:
            client = system_client(provider)
        groups[id(client)] = (client,)
        members[id(client)].append(reservation)
    for key, (client,) in groups.items():
        batch = members[key]
        items = [BatchItem("GET", users_path(r.mailbox, "events", r.event_id) + f"?$select={_SELECT}") for r in batch]
        try:
            answers = client.batch(items)
        except GraphError as exc:
            logger.warning("confirmation batch failed: %s", exc)
            continue
        for reservation, answer in zip(batch, answers, strict=True):
            counts["checked"] += 1
            if isinstance(answer, NotFound):
                counts["missing"] += 1
                outcomes.mark_conflicted(reservation, "The meeting no longer exists in Exchange.")
                continue
            if not isinstance(answer, GraphResponse):
                continue
            body = answer.body or {}
            if body.get("isCancelled"):
                counts["missing"] += 1
                outcomes.mark_conflicted(reservation, "The meeting was cancelled in Exchange.")
                continue
            outcomes.set_change_key(reservation, body.get("changeKey", ""))
            result = _apply_without_reschedule(reservation, body)
            counts[{"accepted": "confirmed", "declined": "rejected"}.get(result, "unanswered")] += 1
    return counts


def _apply_without_reschedule(reservation: Reservation, body: dict) -> str:
    from . import payloads

    room = reservation.room
    if not room.mailbox or reservation.organizer.lower() == room.mailbox.lower():
        outcomes.mark_confirmed(reservation)
        return "accepted"
    answer = payloads.room_response(body, room.mailbox)
    if answer == "accepted":
        outcomes.mark_confirmed(reservation)
    elif answer == "declined":
        outcomes.mark_rejected(reservation, f"{room.name} declined the meeting: the room is not available at that time.")
    return answer


def pending_answers(max_age_seconds: float | None = None) -> int:
    qs = _awaiting()
    if max_age_seconds is not None:
        qs = qs.filter(created_at__gte=timezone.now() - timedelta(seconds=max_age_seconds))
    return qs.count()


def check_room_calendars() -> dict:
    """The 10-minute check: each awaiting meeting must be on its room's calendar (or, if the
    room hasn't answered, still on the organizer's); a meeting gone → ``conflicted``."""
    counts = {"checked": 0, "confirmed": 0, "rejected": 0, "conflicted": 0}
    reservations = list(_awaiting().filter(room__mailbox__gt=""))
    if not reservations:
        return counts
    provider = push._provider()
    client = system_client(provider)
    items = []
    for r in reservations:
        window = {"startDateTime": (r.start - timedelta(minutes=1)).isoformat(), "endDateTime": (r.end + timedelta(minutes=1)).isoformat()}
        query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in window.items())
        items.append(BatchItem("GET", users_path(r.room.mailbox, "calendarView") + f"?{query}&$select=id,iCalUId,isCancelled,responseStatus"))
    answers = client.batch(items)
    for reservation, answer in zip(reservations, answers, strict=True):
        counts["checked"] += 1
        if isinstance(answer, AccessDenied) or not isinstance(answer, GraphResponse):
            continue
        copies = [e for e in (answer.body or {}).get("value", []) if e.get("iCalUId") == reservation.ical_uid and not e.get("isCancelled")]
        if copies:
            response = ((copies[0].get("responseStatus") or {}).get("response") or "")
            if response == "accepted" and outcomes.mark_confirmed(reservation):
                counts["confirmed"] += 1
            continue
        # Not on the room's calendar: unanswered (still on the organizer's, room not yet
        # answering) or gone. Ask the organizer's copy once to tell the two apart.
        result = check_answers_for(reservation)
        if result in ("accepted", "declined"):
            counts["confirmed" if result == "accepted" else "rejected"] += 1
        elif result == "missing":
            if outcomes.mark_conflicted(reservation, f"The meeting is missing from {reservation.room.name}'s calendar."):
                counts["conflicted"] += 1
    return counts


def check_answers_for(reservation: Reservation) -> str:
    provider = push._provider()
    plan, actor = push.plan_for(SyncEvent(details={}), reservation, reservation.room, provider)
    try:
        client = push._client(plan, provider, actor, link_mailbox=reservation.mailbox)
        body = client.get(users_path(reservation.mailbox, "events", reservation.event_id), params={"$select": _SELECT})
    except NotFound:
        return "missing"
    except (GraphError, push.PermanentSyncError):
        return ""
    if body.get("isCancelled"):
        return "missing"
    answer = _apply_without_reschedule(reservation, body)
    return answer if answer in ("accepted", "declined") else "unanswered"


def clean_up_unanswered() -> int:
    """Awaiting longer than ``exchange_callback_time_limit`` → rejected (employee told)."""
    limit = int(properties.get(properties.EXCHANGE_CALLBACK_TIME_LIMIT))
    cutoff = timezone.now() - timedelta(seconds=limit)
    n = 0
    for reservation in Reservation.objects.filter(state=State.AWAITING_CONFIRMATION, created_at__lt=cutoff).select_related("room__building", "requested_for", "requested_by"):
        hours = limit / 3600
        if outcomes.mark_rejected(reservation, f"{reservation.room.name} did not answer within {hours:g} hours."):
            n += 1
    return n


def follow_up_window() -> float:
    return conf.confirm_follow_up_seconds()
