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
from html import escape  # what django.utils.html.escape calls, without its lazy-string wrapper
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db import connections, router
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from reservations.links import id_url, id_url_parts
from reservations.models import ACTIVE_STATES, Reservation
from workplace import day_hours
from workplace.models import Floor, Room

# The grids span their building's hours (``Building.day_span``: minutes after local midnight,
# on the half hour, up to 1440): the day grid in slots of SLOT_MINUTES, a room's week an hour a row.
SLOT_MINUTES = day_hours.STEP_MINUTES
DEFAULT_SPAN = day_hours.minutes(day_hours.DEFAULT_STARTS, day_hours.DEFAULT_ENDS)


def wall_clock(day: dt.date, minute: int, tz: dt.tzinfo) -> dt.datetime:
    """``day``'s wall-clock time ``minute`` minutes after midnight in ``tz`` (1440: the next midnight)."""
    days, minute = divmod(minute, day_hours.DAY_MINUTES)
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(minute // 60, minute % 60), tzinfo=tz)


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


def busy_intervals(*, rooms: Sequence[Room], start: dt.datetime, end: dt.datetime,
                   tz: dt.tzinfo = dt.UTC) -> dict[int, list[Busy]]:
    """{room id: [Busy]}: the active reservations of ``rooms`` overlapping [start, end), by
    start — one query. Their times are aware, in ``tz`` (a grid's zone: no conversion per cell)."""
    by_room: dict[int, list[Busy]] = defaultdict(list)
    connection = connections[router.db_for_read(Reservation)]
    if connection.vendor != "postgresql":
        # The embedded default (SQLite, `make run`) has neither ANY(array) nor EXTRACT(EPOCH):
        # the same rows through the ORM.
        rows = (Reservation.objects.filter(room__in=[r.pk for r in rooms], state__in=list(ACTIVE_STATES), start__lt=end, end__gt=start)
                .order_by("start", "id").values_list("id", "room_id", "start", "end", "subject", "requested_for_id", "requested_by_id"))
        for pk, room_id, start_at, end_at, subject, for_id, by_id in rows:
            by_room[room_id].append(Busy(pk, room_id, start_at.replace(microsecond=0).astimezone(tz), end_at.replace(microsecond=0).astimezone(tz),
                                          subject, for_id, by_id))
        return by_room
    from_epoch = dt.datetime.fromtimestamp
    with connection.cursor() as cursor:
        cursor.execute(_BUSY_SQL, [[r.pk for r in rooms], list(ACTIVE_STATES), end, start])
        for pk, room_id, start_s, end_s, subject, for_id, by_id in cursor.fetchall():
            by_room[room_id].append(Busy(pk, room_id, from_epoch(start_s, tz), from_epoch(end_s, tz), subject, for_id, by_id))
    return by_room


# Read as named tuples with these attributes (no model instance per reservation: a grid draws many).
_FIELDS = ("id", "room_id", "start", "end", "subject", "requested_for_id", "requested_by_id")


class Viewer(NamedTuple):
    """What ``_label`` reads of the viewer, read once per page: ``request.user`` is a lazy object,
    and a grid asks hundreds of times (each attribute through its proxy)."""

    pk: int | None
    is_staff: bool


def viewer(user: AbstractBaseUser) -> Viewer:
    return Viewer(user.pk, bool(user.is_staff))


def _label(reservation: Reservation, room: Room, user: AbstractBaseUser | Viewer) -> tuple[str, bool, bool]:
    """(what the viewer sees, is it theirs, may they open it)."""
    mine = user.pk in (reservation.requested_for_id, reservation.requested_by_id)
    openable = mine or user.is_staff
    visible = openable or room.show_subjects
    return (reservation.subject or "Reserved") if visible else "Busy", mine, openable


def _clock(moment: dt.datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def day_grid_hours(span: tuple[int, int] = DEFAULT_SPAN) -> list[dict]:
    """The grid's column headers over ``span``: one per hour, as many slots wide as the hour has
    in the span (a day from 06:30 starts with a one-slot "06:30")."""
    start, end = span
    heads = []
    for hour_start in range(start - start % 60, end, 60):
        first, last = max(hour_start, start), min(hour_start + 60, end)
        heads.append({"label": day_hours.clock(first), "span": (last - first) // SLOT_MINUTES})
    return heads


def day_grid_rows(*, rooms: Sequence[Room], day: dt.date, tz: dt.tzinfo, user: AbstractBaseUser,
                  now: dt.datetime | None = None, show_floor: bool = True,
                  span: tuple[int, int] = DEFAULT_SPAN) -> list[dict]:
    """[{room, html (the whole ``<tr>``)}] for ``rooms`` on ``day`` (local to ``tz``, the
    building's zone) over ``span`` (the building's ``day_span``): one query for all rooms'
    reservations. ``show_floor``: each row names its room's floor (the grid shows more than one floor).

    What is the same in every row (a slot's cell around the room's booking URL and name, the
    URLs around an id) is written once per page, not once per cell."""
    if not rooms:
        return []
    user = viewer(user)
    now = now or timezone.now()
    span_start, span_end = span
    slots = (span_end - span_start) // SLOT_MINUTES
    # Wall-clock slots in the building's zone (aware datetimes compare as instants); an end of
    # 24:00 is the next midnight, written "00:00" in the booking link (the form's midnight).
    edges = [wall_clock(day, span_start + i * SLOT_MINUTES, tz) for i in range(slots + 1)]
    bounds = list(zip(edges, edges[1:], strict=False))
    ordered = all(a < b for a, b in bounds)  # else (a clock change inside the span) slot by slot
    by_room = busy_intervals(rooms=rooms, start=edges[0], end=edges[-1])  # in UTC: compared with the edges as instants
    date_query = f"?date={day.isoformat()}"
    # Each slot's cell when free, split around the room's booking URL and its name; when over, whole.
    free_parts = []
    for i in range(slots):
        first = span_start + i * SLOT_MINUTES
        last = first + SLOT_MINUTES
        s, e, shown_end = day_hours.clock(first), day_hours.clock(last % day_hours.DAY_MINUTES), day_hours.clock(last)
        free_parts.append((f'<td class="free" data-slot="{i}" data-start="{s}" data-end="{e}"><a href="',
                           f'&amp;start={s}&amp;end={e}" aria-label="Book ',
                           f', {s}–{shown_end}"><span aria-hidden="true">+</span></a></td>'))
    over = [f'<td class="past" data-slot="{i}"></td>' if e <= now else None for i, (_, e) in enumerate(bounds)]
    book_head, book_tail = id_url_parts("portal:book")
    detail_head, detail_tail = id_url_parts("portal:reservation_detail")
    week_head, week_tail = id_url_parts("portal:room_week")
    week_query = f"?week={day.isoformat()}"
    out = []
    for room in rooms:
        book_base = f"{book_head}{room.pk}{book_tail}{date_query}"
        name = escape(room.name)
        # The row as if free (or over) throughout, then the busy runs put in place of their slots.
        cells: list[str] = [o or f"{p[0]}{book_base}{p[1]}{name}{p[2]}" for o, p in zip(over, free_parts, strict=True)]
        reservations = by_room.get(room.pk)
        if reservations:
            # Each slot's holder: the first reservation (by start) that overlaps it.
            holders: list = [None] * slots
            for r in reservations:
                if ordered:  # the slots r overlaps: edges[k] < r.end and edges[k + 1] > r.start
                    covered = range(max(bisect_right(edges, r.start) - 1, 0), min(bisect_left(edges, r.end), slots))
                else:
                    covered = [k for k in range(slots) if r.start < bounds[k][1] and r.end > bounds[k][0]]
                for k in covered:
                    if holders[k] is None:
                        holders[k] = r
            i = 0
            while i < slots:
                holder = holders[i]
                if holder is None:
                    i += 1
                    continue
                j = i + 1
                while j < slots and holder.start < bounds[j][1] and holder.end > bounds[j][0]:
                    j += 1
                label, mine, openable = _label(holder, room, user)
                when = f"{_clock(holder.start.astimezone(tz))}–{_clock(holder.end.astimezone(tz))}"
                text = escape(label)
                inner = f'<a href="{detail_head}{holder.id}{detail_tail}">{text}</a>' if openable else f"<span>{text}</span>"
                span = j - i
                colspan = f' colspan="{span}"' if span > 1 else ""
                cells[i] = (f'<td class="busy{" mine" if mine else ""}"{colspan} data-slot="{i}" data-span="{span}"'
                            f' title="{text}, {when}">{inner}<span class="sr-only"> {when}</span></td>')
                for k in range(i + 1, j):
                    cells[k] = ""
                i = j
        where = f" · {escape(room.floor.name)}" if show_floor and room.floor_id else ""
        html = (f'<tr data-room="{room.pk}" data-book="{book_base}" data-room-name="{name}">'
                f'<th scope="row" class="room-col"><a href="{week_head}{room.pk}{week_tail}{week_query}" aria-label="{name}\'s week">{name}</a> '
                f'<span class="muted small">{room.capacity}<span class="sr-only"> seats</span>{where}</span></th>{"".join(cells)}</tr>')
        out.append({"room": room, "html": SafeString(html)})  # every value above is escaped or ours
    return out


def week_grid(*, room: Room, monday: dt.date, user: AbstractBaseUser, now: dt.datetime | None = None) -> dict:
    """A room's week over its building's hours: {days, rows: [{hour, label, cells (HTML)}]}, a row
    an hour from the day's start (the last one shorter when the day ends on a half hour); a busy
    cell names what holds it where ``user`` may see it, a free one links to the booking form for
    its hour. One query."""
    building = room.building
    tz = building.tzinfo
    span_start, span_end = building.day_span
    user = viewer(user)
    now = now or timezone.now()
    days = [monday + dt.timedelta(days=n) for n in range(7)]
    week_start = wall_clock(days[0], span_start, tz)
    week_end = wall_clock(days[-1], span_end, tz)
    reservations = list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, start__lt=week_end, end__gt=week_start)
        .order_by("start").values_list(*_FIELDS, named=True)
    )
    book_url = id_url("portal:book", room.pk)
    day_labels = [f"{d:%A} {d.day} {d:%B}" for d in days]
    rows = []
    for first in range(span_start, span_end, 60):
        last = min(first + 60, span_end)
        cells: list[str] = []
        # The booking link's times: an end of 24:00 is "00:00", the booking form's midnight.
        s, e, shown_end = day_hours.clock(first), day_hours.clock(last % day_hours.DAY_MINUTES), day_hours.clock(last)
        for n, day in enumerate(days):
            start, end = wall_clock(day, first, tz), wall_clock(day, last, tz)
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
                    f'aria-label="Book {day_labels[n]}, {s}–{shown_end}"><span aria-hidden="true">+</span></a></td>')
        rows.append({"hour": first // 60, "label": s, "cells": mark_safe("".join(cells))})  # noqa: S308 - escaped above
    return {"days": days, "rows": rows}


class GridRoom(NamedTuple):
    """A room as a grid row draws it (the attributes ``day_grid_rows``, ``building_week.week_rows``
    and ``_label`` read): no model instance per row (Django's costs ~25 µs each, a page has 25)."""

    pk: int
    name: str
    capacity: int
    floor_id: int | None
    show_subjects: bool
    floor: Floor | None


# A page of a building's (or floor's) reservable rooms with their total, by floor and name, in one
# statement written out (the ORM's build and model instances cost more than its run). Plain SQL
# (a window count, LIMIT/OFFSET): PostgreSQL and the embedded default's SQLite alike. Tables and
# columns are the Room and Floor models'; tests/reservations/test_portal_building_week.py checks it
# against the ORM's ordering and count.
_ROOM_PAGE_SQL = (
    'SELECT r."id", r."name", r."capacity", r."floor_id", r."show_subjects", COUNT(*) OVER ()'
    ' FROM "workplace_room" r LEFT OUTER JOIN "workplace_floor" f ON r."floor_id" = f."id"'
    ' WHERE r."building_id" = %s AND r."reservable" = %s{floor}'
    ' ORDER BY f."level", f."name", r."name", r."id" LIMIT %s OFFSET %s'
)
_ROOM_COUNT_SQL = 'SELECT COUNT(*) FROM "workplace_room" r WHERE r."building_id" = %s AND r."reservable" = %s{floor}'


def fetch_page(cursor, statement: str, count_statement: str, params: list, *, per_page: int,
               wanted: int) -> tuple[list[tuple], int, int]:
    """(rows, total, page number) of a hand-written page: ``statement`` ends in ``LIMIT %s OFFSET
    %s`` and its last column is the window count of all its rows; ``count_statement`` counts them.
    One query; past the end (or nothing to show) the count, then the last page (as Paginator.get_page)."""
    cursor.execute(statement, [*params, per_page, (wanted - 1) * per_page])
    rows = cursor.fetchall()
    if rows:
        return rows, rows[0][-1], wanted
    cursor.execute(count_statement, params)
    total = cursor.fetchone()[0]
    last = max(-(-total // per_page), 1)
    if total and wanted > last:
        cursor.execute(statement, [*params, per_page, (last - 1) * per_page])
        return cursor.fetchall(), total, last
    return rows, total, 1


def room_page(*, building_id: int, floor_id: int | None, floors: Sequence[Floor], per_page: int,
              number) -> tuple[Page, list[GridRoom]]:
    """(``Paginator``'s page ``number`` — a bad number is the first, one past the end the last —,
    its rooms with their floors from ``floors``): one query, two for a page past the end."""
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    connection = connections[router.db_for_read(Room)]
    where = ' AND r."floor_id" = %s' if floor_id is not None else ""
    params = [building_id, True] + ([floor_id] if floor_id is not None else [])
    with connection.cursor() as cursor:
        rows, total, wanted = fetch_page(cursor, _ROOM_PAGE_SQL.format(floor=where), _ROOM_COUNT_SQL.format(floor=where),
                                         params, per_page=per_page, wanted=wanted)
    floor_of = {f.pk: f for f in floors}
    missing = {row[3] for row in rows if row[3] is not None and row[3] not in floor_of}
    if missing:  # lists older than the floor (a floor added since): read them
        floor_of.update(Floor.objects.in_bulk(missing))
    rooms = [GridRoom(pk, name, capacity, floor, bool(shows), floor_of.get(floor)) for pk, name, capacity, floor, shows, _ in rows]
    paginator = Paginator(rooms, per_page)
    paginator.count = total  # a cached_property
    return Page(rooms, wanted, paginator), rooms


def empty_page(per_page: int) -> Page:
    """Page 1 of nothing (no building to show, or its choices aren't valid): no query."""
    paginator = Paginator([], per_page)
    return Page([], 1, paginator)
