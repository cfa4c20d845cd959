"""A building's (or floor's) week to book from, like Outlook's scheduling grid: rooms as rows,
the week's days (Monday to Friday, or all seven) as column groups, each day's working hours as
hour columns.

An hour column keeps half-hour precision: a fully free hour is a link to the booking form for
that hour; an hour with one free half (a meeting from 9:30, or the half hour already gone)
links to that half; consecutive hours held by one reservation merge into one busy block that
names what holds it only where the viewer may see it (``calendar_grid``'s rule: their own
bookings, any for staff, any in a room with ``Room.show_subjects``; otherwise "Busy").

Every choice is a plain link, so the grid works without JavaScript and from the keyboard;
``building_week.js`` adds drag (mouse, pen, touch) and arrow-key ranges within a day, reading
the ``data-`` attributes written here. The cells are built as HTML strings here, not in
template loops (a page draws over a thousand of them), from one query for the busy intervals
of all the page's rooms over the whole week (``busy_intervals``)."""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from reservations.calendar_grid import _label
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

# Working hours (building-local) drawn for each day; the day grid shows 07–21 in half hours.
WORK_START_HOUR = 8
WORK_END_HOUR = 18
HOURS = WORK_END_HOUR - WORK_START_HOUR
HALF = 30  # minutes: the precision kept inside an hour column
WORK_WEEK, FULL_WEEK = 5, 7

_FIELDS = ("id", "room_id", "start", "end", "subject", "requested_for_id", "requested_by_id")


def busy_intervals(*, rooms: Sequence[Room], start: dt.datetime, end: dt.datetime) -> dict[int, list]:
    """{room id: [row (id, room_id, start, end, subject, requested_for_id, requested_by_id)]}:
    the active reservations of ``rooms`` overlapping [start, end), by start — one query."""
    by_room: dict[int, list] = defaultdict(list)
    rows = (Reservation.objects.filter(room__in=[r.pk for r in rooms], state__in=ACTIVE_STATES, start__lt=end, end__gt=start)
            .order_by("start").values_list(*_FIELDS, named=True))
    for row in rows:
        by_room[row.room_id].append(row)
    return by_room


def week_days(monday: dt.date, days: int) -> list[dt.date]:
    return [monday + dt.timedelta(days=n) for n in range(days)]


def week_columns(days: Sequence[dt.date]) -> list[dict]:
    """The header: per day {date, hours: ["08", …]}."""
    hours = [f"{h:02d}" for h in range(WORK_START_HOUR, WORK_END_HOUR)]
    return [{"date": day, "hours": hours} for day in days]


def _local_minutes(moment: dt.datetime, tz: dt.tzinfo, day0: dt.date) -> int:
    """Minutes from ``day0`` 00:00 (wall clock in ``tz``) to ``moment``'s wall clock."""
    local = moment.astimezone(tz)
    return (local.date() - day0).days * 1440 + local.hour * 60 + local.minute


def _times(reservation, tz: dt.tzinfo) -> str:
    """"09:30–10:30" local, with the weekdays when it spans midnight."""
    start, end = reservation.start.astimezone(tz), reservation.end.astimezone(tz)
    if start.date() != end.date():
        return f"{start:%a %H:%M}–{end:%a %H:%M}"
    return f"{start:%H:%M}–{end:%H:%M}"


def week_rows(*, rooms: Sequence[Room], days: Sequence[dt.date], tz: dt.tzinfo, user: AbstractBaseUser,
              now: dt.datetime | None = None) -> list[dict]:
    """[{room, book_url, week_url, cells (HTML)}] for ``rooms`` over ``days`` (local to ``tz``,
    the building's zone). One query for all rooms' reservations."""
    if not rooms or not days:
        return []
    now = now or timezone.now()
    halves_per_day = HOURS * 60 // HALF
    n_halves = len(days) * halves_per_day
    day0 = days[0]
    # Whether each half hour is over.
    past = [dt.datetime.combine(days[i // halves_per_day], dt.time(WORK_START_HOUR), tzinfo=tz)
            + dt.timedelta(minutes=(i % halves_per_day + 1) * HALF) <= now for i in range(n_halves)]
    window_start = dt.datetime.combine(days[0], dt.time(WORK_START_HOUR), tzinfo=tz)
    window_end = dt.datetime.combine(days[-1], dt.time(WORK_END_HOUR), tzinfo=tz)
    by_room = busy_intervals(rooms=rooms, start=window_start, end=window_end)
    day_labels = [f"{d:%a} {d.day} {d:%b}" for d in days]
    dates = [d.isoformat() for d in days]
    hhmm = [f"{(WORK_START_HOUR * 60 + k * HALF) // 60:02d}:{(WORK_START_HOUR * 60 + k * HALF) % 60:02d}"
            for k in range(halves_per_day + 1)]
    out = []
    for room in rooms:
        # holder[i]: the reservation holding half hour i (the earliest-starting one), or None.
        holder: list = [None] * n_halves
        for r in by_room.get(room.pk, ()):
            first, last = _local_minutes(r.start, tz, day0), _local_minutes(r.end, tz, day0)
            for d in range(len(days)):
                base = d * halves_per_day
                day_open = d * 1440 + WORK_START_HOUR * 60
                lo = max(0, (first - day_open) // HALF)
                hi = min(halves_per_day, -(-(last - day_open) // HALF))
                for k in range(lo, hi):
                    if holder[base + k] is None:
                        holder[base + k] = r
        book_url = reverse("portal:book", args=[room.pk])
        name = escape(room.name)
        cells: list[str] = []
        h = 0  # hour column index within the row
        total_hours = len(days) * HOURS
        while h < total_hours:
            d, k = divmod(h, HOURS)
            a, b = d * halves_per_day + 2 * k, d * halves_per_day + 2 * k + 1
            ha, hb = holder[a], holder[b]
            free_a, free_b = ha is None and not past[a], hb is None and not past[b]
            when = day_labels[d]
            edge = " day-start" if k == 0 else ""  # a day's first column: its group's left border
            if free_a and free_b:
                s, e = hhmm[2 * k], hhmm[2 * k + 2]
                cells.append(
                    f'<td class="free{edge}" data-slot="{h}" data-day="{d}">'
                    f'<a href="{book_url}?date={dates[d]}&amp;start={s}&amp;end={e}" aria-label="Book {name}, {when}, {s}–{e}"></a></td>')
                h += 1
                continue
            if free_a or free_b:
                # One half free: link to it; the other half is busy (named where allowed) or over.
                s, e = (hhmm[2 * k], hhmm[2 * k + 1]) if free_a else (hhmm[2 * k + 1], hhmm[2 * k + 2])
                other = hb if free_a else ha
                if other is not None:
                    note, css = f"{escape(_label(other, room, user)[0])}, {_times(other, tz)}", "part busy-half"
                else:
                    note, css = "", "part"
                side = "open-start" if free_a else "open-end"
                cells.append(
                    f'<td class="{css} {side}{edge}" data-slot="{h}" data-day="{d}"'
                    + (f' title="{note}"' if note else "") + ">"
                    f'<a href="{book_url}?date={dates[d]}&amp;start={s}&amp;end={e}" aria-label="Book {name}, {when}, {s}–{e}"></a>'
                    + (f'<span class="sr-only"> {note}</span>' if note else "") + "</td>")
                h += 1
                continue
            held = ha or hb
            if held is None:  # both halves over
                j = h + 1
                while j < total_hours and j // HOURS == d:
                    ja, jb = d * halves_per_day + 2 * (j % HOURS), d * halves_per_day + 2 * (j % HOURS) + 1
                    if holder[ja] is not None or holder[jb] is not None or not (past[ja] and past[jb]):
                        break
                    j += 1
                span = j - h
                cells.append(f'<td class="past{edge}" data-slot="{h}" data-day="{d}"'
                             + (f' colspan="{span}" data-span="{span}"' if span > 1 else "") + "></td>")
                h = j
                continue
            # Busy: merge the following hours of the same day held by the same reservation throughout.
            j = h + 1
            if ha is held and hb is held:
                while j < total_hours and j // HOURS == d:
                    ja = d * halves_per_day + 2 * (j % HOURS)
                    if holder[ja] is not held or holder[ja + 1] is not held:
                        break
                    j += 1
            span = j - h
            label, mine, openable = _label(held, room, user)
            text = escape(label)
            times = _times(held, tz)
            inner = (f'<a href="{reverse("portal:reservation_detail", args=[held.id])}">{text}</a>'
                     if openable else f"<span>{text}</span>")
            cells.append(
                f'<td class="busy{" mine" if mine else ""}{edge}" data-slot="{h}" data-day="{d}"'
                + (f' colspan="{span}" data-span="{span}"' if span > 1 else "")
                + f' title="{text}, {times}">{inner}<span class="sr-only"> {when} {times}</span></td>')
            h = j
        out.append({
            "room": room,
            "book_url": book_url,
            "week_url": f'{reverse("portal:room_week", args=[room.pk])}?week={dates[0]}',
            "cells": mark_safe("".join(cells)),  # noqa: S308 - every value above is escaped or ours
        })
    return out
