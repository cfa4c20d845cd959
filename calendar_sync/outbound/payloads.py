"""Graph event payloads for reservations and series (SPEC §3 "organizer" column).

Pure functions: a reservation (or series) and a ``SyncPlan`` in, JSON out.
Times are sent as local wall-clock times in the building's time zone (an IANA
name; Graph accepts Windows or IANA names), so Outlook shows the meeting in the
room's zone and a series keeps its local time across DST changes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from exchange_auth.modes import SyncPlan

from ..common.own_meetings import mark, transaction_id

GRAPH_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def graph_time(value: datetime, tz_name: str) -> dict:
    local = value.astimezone(ZoneInfo(tz_name))
    return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": tz_name}


def _address(email: str, name: str = "") -> dict:
    return {"address": email, "name": name or email}


def _user_name(user) -> str:
    full = (user.get_full_name() or "").strip() if hasattr(user, "get_full_name") else ""
    return full or getattr(user, "email", "") or str(user)


def location_for(room) -> dict:
    loc = {"displayName": room.name, "locationType": "conferenceRoom"}
    if room.mailbox:
        loc["locationEmailAddress"] = room.mailbox
        loc["uniqueId"] = room.mailbox
        loc["uniqueIdType"] = "directory"
    return loc


def attendees_for(*, room, requested_for, attendees, plan: SyncPlan) -> list[dict]:
    """1. the room as ``resource`` unless it organizes; 2. the employee when someone
    else (a service account, the room) organizes; 3. a blocker's invitee; 4. the
    reservation's own attendees. Never the organizer itself, never twice."""
    out: list[dict] = []
    seen = {plan.organizer.lower()} if plan.organizer else set()

    def add(email: str, name: str, type_: str) -> None:
        if email and email.lower() not in seen:
            seen.add(email.lower())
            out.append({"emailAddress": _address(email, name), "type": type_})

    if room.mailbox and plan.room_is_attendee:
        add(room.mailbox, room.name, "resource")
    employee_email = getattr(requested_for, "email", "") if requested_for is not None else ""
    if plan.employee_role == "attendee" or (employee_email and employee_email.lower() != plan.organizer.lower()):
        add(employee_email, _user_name(requested_for) if requested_for is not None else "", "required")
    if plan.invitee:
        add(plan.invitee, "", "required")
    for a in attendees:
        if a.type == "resource":
            continue  # rooms come from the reservation's room
        add(a.email, a.name, a.type if a.type in ("required", "optional") else "required")
    return out


def text_body(text: str) -> dict:
    return {"contentType": "text", "content": text or ""}


def online_meeting_fields(link) -> dict:
    """A Teams meeting: Graph makes its join link (onlineMeeting.joinUrl). Only when asked for:
    an update without these fields leaves Outlook's own choice alone."""
    return {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"} if link.online_meeting else {}


def event_payload(reservation, plan: SyncPlan, *, tz_name: str) -> dict:
    """The fields the product manages on a single meeting (create and full update)."""
    room = reservation.room
    return {
        **online_meeting_fields(reservation),
        "subject": reservation.subject,
        "body": text_body(reservation.body),
        "start": graph_time(reservation.start, tz_name),
        "end": graph_time(reservation.end, tz_name),
        "location": location_for(room),
        "locations": [location_for(room)],
        "attendees": attendees_for(room=room, requested_for=reservation.requested_for, attendees=list(reservation.attendees.all()), plan=plan),
        "showAs": "busy",
        "responseRequested": True,
        "allowNewTimeProposals": False,
    }


# Fields Graph reads together: a change of one sends the others of its group too.
_TOGETHER = (("start", "end", "recurrence"), ("location", "locations"), ("isOnlineMeeting", "onlineMeetingProvider"))


def _attendee_key(attendees) -> list[tuple[str, str]]:
    return sorted(((a.get("emailAddress") or {}).get("address", "").lower(), a.get("type", "")) for a in attendees or [])


def pushed_state(payloads) -> dict | None:
    """The meeting's fields as the product last wrote them: the last create's body (it carries a
    ``transactionId``) with the updates sent since applied in order; None when unknown."""
    state = None
    for payload in payloads:
        if not payload:
            continue
        if "transactionId" in payload:
            state = dict(payload)
        elif state is not None:
            state.update(payload)
    return state


def changed_fields(desired: dict, pushed: dict | None) -> dict:
    """The part of ``desired`` that differs from what the meeting was last given (all of it when
    that is unknown). Graph mails every attendee an update for each PATCH that carries a meeting
    property, changed or not, and only the changed attendees for one carrying attendees alone
    (https://learn.microsoft.com/en-us/graph/api/event-update?view=graph-rest-1.0, "Notes for
    updating specific properties"): so a PATCH carries what changed, nothing else."""
    if pushed is None:
        return dict(desired)
    changed = {}
    for key, value in desired.items():
        same = _attendee_key(value) == _attendee_key(pushed.get(key)) if key == "attendees" else pushed.get(key) == value
        if not same:
            changed[key] = value
    for group in _TOGETHER:
        if any(key in changed for key in group):
            changed.update({key: desired[key] for key in group if key in desired})
    return changed


def create_payload(reservation, plan: SyncPlan, *, tz_name: str, sync_event_id: int) -> dict:
    payload = event_payload(reservation, plan, tz_name=tz_name)
    payload["transactionId"] = transaction_id(
        reservation_id=reservation.pk, series_id=None, sync_event_id=sync_event_id, room_mailbox=reservation.room.mailbox
    )
    payload["singleValueExtendedProperties"] = mark(reservation_id=reservation.pk)
    return payload


def occurrence_patch(reservation, *, tz_name: str) -> dict:
    """An exception to a series: the fields one occurrence may change."""
    return {
        "subject": reservation.subject,
        "body": text_body(reservation.body),
        "start": graph_time(reservation.start, tz_name),
        "end": graph_time(reservation.end, tz_name),
    }


def recurrence_for(series) -> dict:
    """``patternedRecurrence`` for a series, expanded in the series' time zone."""
    tz = ZoneInfo(series.timezone)
    first_local = series.first_start.astimezone(tz)
    pattern: dict = {"interval": series.interval or 1, "firstDayOfWeek": "monday"}
    if series.frequency == "daily":
        pattern["type"] = "daily"
    elif series.frequency == "weekly":
        days = series.weekdays or [first_local.isoweekday()]
        pattern["type"] = "weekly"
        pattern["daysOfWeek"] = [GRAPH_DAYS[d - 1] for d in sorted(days)]
    elif series.index:
        # https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern: relativeMonthly
        # needs daysOfWeek and index (first, second, third, fourth, last).
        pattern["type"] = "relativeMonthly"
        pattern["daysOfWeek"] = [GRAPH_DAYS[(series.weekdays or [first_local.isoweekday()])[0] - 1]]
        pattern["index"] = series.index
    else:
        pattern["type"] = "absoluteMonthly"
        pattern["dayOfMonth"] = first_local.day
    rng: dict = {"startDate": first_local.date().isoformat(), "recurrenceTimeZone": series.timezone}
    if series.until:
        rng.update(type="endDate", endDate=series.until.isoformat())
    elif series.count:
        rng.update(type="numbered", numberOfOccurrences=series.count)
    else:
        rng["type"] = "noEnd"
    return {"pattern": pattern, "range": rng}


def recurrence_ending(series, end_date) -> dict:
    """The series' pattern with its range cut to end on ``end_date`` (series-local date):
    how a series that has begun is ended without touching its past occurrences."""
    recurrence = recurrence_for(series)
    recurrence["range"] = {
        "type": "endDate", "startDate": recurrence["range"]["startDate"], "endDate": end_date.isoformat(),
        "recurrenceTimeZone": series.timezone,
    }
    return recurrence


def series_create_payload(series, plan: SyncPlan, *, room, attendees, sync_event_id: int, body: str = "") -> dict:
    tz = series.timezone
    payload = {
        **online_meeting_fields(series),
        "subject": series.subject,
        "body": text_body(body),
        "start": graph_time(series.first_start, tz),
        "end": graph_time(series.first_end, tz),
        "location": location_for(room),
        "locations": [location_for(room)],
        "attendees": attendees_for(room=room, requested_for=series.requested_for, attendees=attendees, plan=plan),
        "recurrence": recurrence_for(series),
        "showAs": "busy",
        "responseRequested": True,
        "allowNewTimeProposals": False,
    }
    payload["transactionId"] = transaction_id(reservation_id=None, series_id=series.pk, sync_event_id=sync_event_id, room_mailbox=room.mailbox)
    payload["singleValueExtendedProperties"] = mark(series_id=series.pk)
    return payload


