"""The portal's calendars to book from, as ready-made HTML rows: a building's (or floor's)
day as a scheduling grid (rooms as rows, half hours as columns) and a room's week
(hours as rows, days as columns).

The cells are built here in Python, not in template loops: a page draws hundreds of them
and Django's template engine costs tens of microseconds per cell (issue 14's page-speed
target). Every free slot is a real link to the prefilled booking form, so the grids work
without JavaScript; ``portal.js`` adds click-and-drag and arrow-key selection on top,
reading the ``data-`` attributes written here.

A busy slot names what holds it only where the viewer may see it: their own bookings
(made by them or for them), any for staff, any in a room that shows subjects
(``Room.show_subjects``); otherwise "Busy". One query per grid."""

import datetime as dt
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, router
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from reservations.links import id_url
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

# The day grid spans these building-local hours, in slots of SLOT_MINUTES.
GRID_START_HOUR = 7
GRID_END_HOUR = 21
SLOT_MINUTES = 30
# The week view's hours (building-local), one row per hour.
WEEK_START_HOUR = 7
WEEK_END_HOUR = 21

class Busy(NamedTuple):
    """A reservation as the grid needs it (the attributes ``calendar_grid._label`` reads)."""

    id: int
    room_id: int
    start: dt.datetime
    end: dt.datetime
    subject: str
    requested_for_id: int | None
    requested_by_id: int | None


# The busy intervals of a page of rooms: one statement, written out (building it through the ORM
# cost ~2 ms of Python a request, four times its run) and with the times as Unix seconds
# (Django's loader for timestamptz costs ~5 µs a value in Python). Table and columns are the
# Reservation model's; tests/reservations/test_portal_building_week.py checks it against the ORM.
_BUSY_SQL = (
    'SELECT "id", "room_id", CAST(EXTRACT(EPOCH FROM "start") AS bigint), CAST(EXTRACT(EPOCH FROM "end") AS bigint),'
    ' "subject", "requested_for_id", "requested_by_id"'
    ' FROM "reservations_reservation"'
    ' WHERE "room_id" = ANY(%s) AND "state" = ANY(%s) AND "start" < %s AND "end" > %s'
    ' ORDER BY "start", "id"'
)


def busy_intervals(*, rooms: Sequence[Room], start: dt.datetime, end: dt.datetime) -> dict[int, list[Busy]]:
    """{room id: [Busy]}: the active reservations of ``rooms`` overlapping [start, end), by
    start — one query."""
    by_room: dict[int, list[Busy]] = defaultdict(list)
    connection = connections[router.db_for_read(Reservation)]
    if connection.vendor != "postgresql":
        # The embedded default (SQLite, `make run`) has neither ANY(array) nor EXTRACT(EPOCH):
        # the same rows through the ORM.
        rows = (Reservation.objects.filter(room__in=[r.pk for r in rooms], state__in=list(ACTIVE_STATES), start__lt=end, end__gt=start)
                .order_by("start", "id").values_list("id", "room_id", "start", "end", "subject", "requested_for_id", "requested_by_id"))
        for pk, room_id, start_at, end_at, subject, for_id, by_id in rows:
            by_room[room_id].append(Busy(pk, room_id, start_at.replace(microsecond=0), end_at.replace(microsecond=0), subject, for_id, by_id))
        return by_room
    utc, from_epoch = dt.UTC, dt.datetime.fromtimestamp
    with connection.cursor() as cursor:
        cursor.execute(_BUSY_SQL, [[r.pk for r in rooms], list(ACTIVE_STATES), end, start])
        for pk, room_id, start_s, end_s, subject, for_id, by_id in cursor.fetchall():
            by_room[room_id].append(Busy(pk, room_id, from_epoch(start_s, utc), from_epoch(end_s, utc), subject, for_id, by_id))
    return by_room


# Read as named tuples with these attributes (no model instance per reservation: a grid draws many).
_FIELDS = ("id", "room_id", "start", "end", "subject", "requested_for_id", "requested_by_id")


def _label(reservation: Reservation, room: Room, user: AbstractBaseUser) -> tuple[str, bool, bool]:
    """(what the viewer sees, is it theirs, may they open it)."""
    mine = user.pk in (reservation.requested_for_id, reservation.requested_by_id)
    openable = mine or user.is_staff
    visible = openable or room.show_subjects
    return (reservation.subject or "Reserved") if visible else "Busy", mine, openable


def _busy_cell(reservation: Reservation, room: Room, user: AbstractBaseUser, span: int, tz: dt.tzinfo,
               first_slot: int) -> str:
    label, mine, openable = _label(reservation, room, user)
    when = f"{reservation.start.astimezone(tz):%H:%M}–{reservation.end.astimezone(tz):%H:%M}"
    text = escape(label)
    inner = (f'<a href="{id_url("portal:reservation_detail", reservation.id)}">{text}</a>'
             if openable else f"<span>{text}</span>")
    css = "busy mine" if mine else "busy"
    colspan = f' colspan="{span}"' if span > 1 else ""
    return (f'<td class="{css}"{colspan} data-slot="{first_slot}" data-span="{span}" title="{text}, {when}">'
            f'{inner}<span class="sr-only"> {when}</span></td>')


def day_grid_hours() -> list[dict]:
    """The grid's column headers: one per hour, two slots wide."""
    per_hour = 60 // SLOT_MINUTES
    return [{"label": f"{h:02d}:00", "span": per_hour} for h in range(GRID_START_HOUR, GRID_END_HOUR)]


def day_grid_rows(*, rooms: Sequence[Room], day: dt.date, tz: dt.tzinfo, user: AbstractBaseUser,
                  now: dt.datetime | None = None, show_floor: bool = True) -> list[dict]:
    """[{room, week_url, cells (HTML), html (the whole ``<tr>``)}] for ``rooms`` on ``day`` (local
    to ``tz``, the building's zone): one query for all rooms' reservations. ``show_floor``: each
    row names its room's floor (the grid shows more than one floor)."""
    if not rooms:
        return []
    now = now or timezone.now()
    slots = (GRID_END_HOUR - GRID_START_HOUR) * 60 // SLOT_MINUTES
    # Wall-clock slots in the building's zone (aware datetimes compare as instants).
    times = [dt.time(GRID_START_HOUR + i * SLOT_MINUTES // 60, i * SLOT_MINUTES % 60) for i in range(slots)] + [dt.time(GRID_END_HOUR)]
    edges = [dt.datetime.combine(day, t, tzinfo=tz) for t in times]
    bounds = list(zip(edges, edges[1:], strict=False))
    view_start, view_end = edges[0], edges[-1]
    ordered = all(a < b for a, b in bounds)  # else (a clock change inside the span) slot by slot
    by_room = busy_intervals(rooms=rooms, start=view_start, end=view_end)
    labels = [(f"{s:%H:%M}", f"{e:%H:%M}") for s, e in bounds]
    past = [e <= now for _, e in bounds]
    date_query = urlencode({"date": day.isoformat()})
    out = []
    for room in rooms:
        book_base = f'{id_url("portal:book", room.pk)}?{date_query}'
        name = escape(room.name)
        # Each slot's holder: the first reservation (by start) that overlaps it.
        holders: list = [None] * slots
        for r in by_room.get(room.pk, ()):
            if ordered:  # the slots r overlaps: edges[k] < r.end and edges[k + 1] > r.start
                covered = range(max(bisect_right(edges, r.start) - 1, 0), min(bisect_left(edges, r.end), slots))
            else:
                covered = [k for k in range(slots) if r.start < bounds[k][1] and r.end > bounds[k][0]]
            for k in covered:
                if holders[k] is None:
                    holders[k] = r
        cells: list[str] = []
        i = 0
        while i < slots:
            holder = holders[i]
            if holder is not None:
                j = i + 1
                while j < slots and holder.start < bounds[j][1] and holder.end > bounds[j][0]:
                    j += 1
                cells.append(_busy_cell(holder, room, user, j - i, tz, i))
                i = j
                continue
            if past[i]:
                cells.append(f'<td class="past" data-slot="{i}"></td>')
            else:
                s, e = labels[i]
                cells.append(
                    f'<td class="free" data-slot="{i}" data-start="{s}" data-end="{e}">'
                    f'<a href="{book_base}&amp;start={s}&amp;end={e}" aria-label="Book {name}, {s}–{e}">'
                    f'<span aria-hidden="true">+</span></a></td>')
            i += 1
        week_url = f'{id_url("portal:room_week", room.pk)}?week={day.isoformat()}'
        row_cells = "".join(cells)
        floor = room.floor if show_floor and room.floor_id else None
        where = f" · {escape(floor.name)}" if floor is not None else ""
        html = (f'<tr data-room="{room.pk}" data-book="{escape(book_base)}" data-room-name="{name}">'
                f'<th scope="row" class="room-col"><a href="{escape(week_url)}" aria-label="{name}\'s week">{name}</a> '
                f'<span class="muted small">{room.capacity}<span class="sr-only"> seats</span>{where}</span></th>{row_cells}</tr>')
        out.append({
            "room": room,
            "book_base": book_base,
            "week_url": week_url,
            "cells": mark_safe(row_cells),  # noqa: S308 - every value above is escaped or ours
            "html": mark_safe(html),  # noqa: S308 - every value above is escaped or ours
        })
    return out


def week_grid(*, room: Room, monday: dt.date, user: AbstractBaseUser, now: dt.datetime | None = None) -> dict:
    """A room's week: {days, rows: [{hour, cells (HTML)}]}, hour cells; a busy one names what holds
    it where ``user`` may see it, a free one links to the booking form. One query."""
    tz = room.building.tzinfo
    now = now or timezone.now()
    days = [monday + dt.timedelta(days=n) for n in range(7)]
    week_start = dt.datetime.combine(days[0], dt.time.min, tzinfo=tz)
    week_end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    reservations = list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, start__lt=week_end, end__gt=week_start)
        .order_by("start").values_list(*_FIELDS, named=True)
    )
    book_url = id_url("portal:book", room.pk)
    day_labels = [f"{d:%A} {d.day} {d:%B}" for d in days]
    rows = []
    for hour in range(WEEK_START_HOUR, WEEK_END_HOUR):
        cells: list[str] = []
        s, e = f"{hour:02d}:00", f"{hour + 1:02d}:00"
        for n, day in enumerate(days):
            start = dt.datetime.combine(day, dt.time(hour), tzinfo=tz)
            end = start + dt.timedelta(hours=1)
            holder = next((r for r in reservations if r.start < end and r.end > start), None)
            if holder is not None:
                label, mine, openable = _label(holder, room, user)
                text = escape(label)
                inner = (f'<a href="{id_url("portal:reservation_detail", holder.id)}">{text}</a>'
                         if openable else text)
                cells.append(f'<td class="busy{" mine" if mine else ""}">{inner}</td>')
            elif end <= now:
                cells.append('<td class="past"></td>')
            else:
                cells.append(
                    f'<td class="free"><a href="{book_url}?date={day.isoformat()}&amp;start={s}&amp;end={e}" '
                    f'aria-label="Book {day_labels[n]}, {s}–{e}"><span aria-hidden="true">+</span></a></td>')
        rows.append({"hour": hour, "cells": mark_safe("".join(cells))})  # noqa: S308 - escaped above
    return {"days": days, "rows": rows}
