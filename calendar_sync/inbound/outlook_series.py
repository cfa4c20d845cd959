"""Series made in Outlook: a room copy's occurrence belongs to a ``ReservationSeries``.

The pull puts on each occurrence what its series master says (``copies.SERIES_MASTER``: the
``patternedRecurrence``, the first slot, the subject). Here that pattern is mapped onto the
product's series, the inverse of ``outbound.payloads.recurrence_for`` (daily; weekly on its
days; absoluteMonthly on the first occurrence's day; relativeMonthly on one weekday at an
index, "the 2nd Tuesday"; ends on a date, after a count or never), and the series is found
(room + the master's iCalUId) or created. A pattern the product's series can't express
(yearly, a relativeMonthly on several weekdays) gives None: its occurrences stay single
reservations, as before.

The occurrences themselves join the series one by one as the room's copy reports them, so the
room's answer is per occurrence: one that collides in the product is declined alone (row (a)
of ``room_calendar``), a moved or cancelled one changes or cancels its reservation alone, and a
whole-series change updates the series here and each occurrence as its copy changes.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reservations import services
from reservations.models import ReservationSeries
from workplace.models import Room

from .copies import NO_SUBJECT, Copy, graph_datetime

GRAPH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FREQUENCIES = {"daily": "daily", "weekly": "weekly", "absoluteMonthly": "monthly", "relativeMonthly": "monthly"}
INDEXES = ("first", "second", "third", "fourth", "last")  # recurrencePattern's weekIndex values


def _zone(name: str, room: Room) -> str:
    """The series' time zone: the range's when it is an IANA name, else the building's (the
    product expands its own series there; Outlook's Windows names are not IANA ones)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return room.building.timezone
    return name if name and name.upper() != "UTC" else room.building.timezone


def pattern_of(master: dict | None, room: Room) -> dict | None:
    """The product series' fields (``services.SERIES_PATTERN_FIELDS``) for a master's
    ``recurrence`` and first slot; None when there is no master or the product can't express it."""
    if not master or not master.get("recurrence"):
        return None
    recurrence = master["recurrence"]
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    frequency = FREQUENCIES.get(pattern.get("type") or "")
    first_start, first_end = graph_datetime(master.get("start")), graph_datetime(master.get("end"))
    if frequency is None or first_start is None or first_end is None:
        return None
    weekdays, index = [], ""
    if frequency == "weekly" or pattern.get("type") == "relativeMonthly":
        weekdays = sorted({GRAPH_DAYS.index(day) + 1 for day in pattern.get("daysOfWeek") or [] if day in GRAPH_DAYS})
    if pattern.get("type") == "relativeMonthly":
        # https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern: index (default
        # first) and daysOfWeek; the product's monthly-on-a-weekday takes exactly one weekday.
        index = pattern.get("index") or "first"
        if index not in INDEXES or len(weekdays) != 1:
            return None
    until = count = None
    if rng.get("type") == "endDate" and rng.get("endDate"):
        until = dt.date.fromisoformat(str(rng["endDate"])[:10])
    elif rng.get("type") == "numbered" and rng.get("numberOfOccurrences"):
        count = int(rng["numberOfOccurrences"])
    return {
        "subject": ((master.get("subject") or "").strip() or NO_SUBJECT)[:255], "frequency": frequency,
        "interval": max(1, int(pattern.get("interval") or 1)), "weekdays": weekdays, "index": index, "until": until, "count": count,
        "first_start": first_start, "first_end": first_end, "timezone": _zone(rng.get("recurrenceTimeZone") or "", room),
    }


def known_series(room: Room, copy: Copy) -> ReservationSeries | None:
    if not copy.series_master_id or not copy.uid:
        return None
    return ReservationSeries.objects.filter(room=room, ical_uid=copy.uid).first()


def series_for(room: Room, copy: Copy, *, requested_for, mailbox: str) -> ReservationSeries | None:
    """The product's series this occurrence joins: found (and brought up to date with its master)
    or created; None for a single meeting or a pattern the product can't express."""
    pattern = pattern_of(copy.series_master, room) if copy.series_master_id and copy.uid else None
    if pattern is None:
        return None
    series = known_series(room, copy)
    if series is None:
        return services.series_create_from_exchange(
            room=room, requested_for=requested_for, pattern=pattern,
            exchange=services.ExchangeIds(event_id=copy.series_master_id, ical_uid=copy.uid, mailbox=mailbox,
                                          organizer=copy.organizer, sync_mailbox="other"),
        )
    services.series_update_from_exchange(series=series, pattern=pattern)
    return series


def follow_master(room: Room, copy: Copy, series: ReservationSeries | None) -> None:
    """A copy of an Outlook series' occurrence changed: the series follows its master (a change
    of the whole series shows on each occurrence's copy)."""
    if series is None or series.origin != "exchange" or series.ical_uid != copy.uid:
        return
    pattern = pattern_of(copy.series_master, room)
    if pattern is not None:
        services.series_update_from_exchange(series=series, pattern=pattern)
