"""A building's (or floor's) week to book from, like Outlook's scheduling grid: rooms as rows,
the week's days (Monday to Friday, or all seven) as column groups, each day's hours (the
building's ``day_span``) as hour columns from the day's start; a day ending on a half hour ends
with a column whose second half is not offered.

An hour column keeps half-hour precision: a fully free hour is a link to the booking form for
that hour; an hour with one free half (a meeting from 9:30, or the half hour already gone)
links to that half; consecutive hours held by one reservation merge into one busy block that
names what holds it only where the viewer may see it (``calendar_grid``'s rule: their own
bookings, any for staff, any in a room with ``Room.show_subjects``; otherwise "Busy").

Every choice is a plain link, so the grid works without JavaScript and from the keyboard;
``portal.js`` (its booking grids, shared with the day grid) adds drag (mouse, pen, touch) and arrow-key ranges within a day, reading
the ``data-`` attributes written here. The cells are built as HTML strings here, not in
template loops (a page draws over a thousand of them), from one query for the busy intervals
of all the page's rooms over the whole week (``busy_intervals``)."""

import datetime as dt
from collections.abc import Sequence
from html import escape  # what django.utils.html.escape calls, without its lazy wrapper

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from reservations.calendar_grid import DEFAULT_SPAN, _label, busy_intervals, viewer, wall_clock
from reservations.links import id_url_parts
from workplace import day_hours
from workplace.models import Room

HALF = 30  # minutes: the precision kept inside an hour column (the hours are on the half hour)
WORK_WEEK, FULL_WEEK = 5, 7


def hours_per_day(span: tuple[int, int] = DEFAULT_SPAN) -> int:
    """The hour columns of a day over ``span`` (a building's ``day_span``): 06:00–14:30 has 9."""
    return -(-(span[1] - span[0]) // 60)


def week_days(monday: dt.date, days: int) -> list[dt.date]:
    return [monday + dt.timedelta(days=n) for n in range(days)]


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def week_head(*, days: Sequence[dt.date], day_urls: Sequence[str], today: dt.date,
              span: tuple[int, int] = DEFAULT_SPAN) -> str:
    """The header's two rows: each day (a link to its half-hour grid) over its hour columns."""
    top = ['<tr><th scope="col" rowspan="2" class="room-col">Room</th>']
    hours = []
    columns = hours_per_day(span)
    for day, url in zip(days, day_urls, strict=True):
        now = day == today
        top.append(f'<th scope="colgroup" colspan="{columns}" class="day-head{" today" if now else ""}">'
                   f'<a href="{escape(url)}">{day:%a} {day.day} {day:%b}<span class="sr-only">, all rooms by half hour</span></a>'
                   + (' <span class="small">(today)</span>' if now else "") + "</th>")
        for k in range(columns):
            edge = ' class="day-start"' if k == 0 else ""
            hour, minute = divmod(span[0] + k * 60, 60)
            shown = f'{hour:02d}<sup aria-hidden="true">30</sup>' if minute else f"{hour:02d}"  # a day from a half hour
            hours.append(f'<th scope="col"{edge}>{shown}<span class="sr-only">:{minute:02d} {day:%a}</span></th>')
    return mark_safe("".join(top) + '</tr><tr class="hour-head">' + "".join(hours) + "</tr>")  # noqa: S308 - ours, url escaped


# Marks for a room's booking URL and name in a row's cells (characters no escaped value holds:
# ``_text`` takes them out of labels, PostgreSQL's text can't hold NUL, and URLs and room names
# are ours or escaped).
_URL, _NAME = "\x00", "\x01"
_MARKS = {0: None, 1: None}


def _text(label: str) -> str:
    """A label (a reservation's subject) escaped, without the marks."""
    return escape(label).translate(_MARKS)


def week_rows(*, rooms: Sequence[Room], days: Sequence[dt.date], tz: dt.tzinfo, user: AbstractBaseUser,
              now: dt.datetime | None = None, show_floor: bool = True,
              span: tuple[int, int] = DEFAULT_SPAN) -> list[dict]:
    """[{room, html}]: a ``<tr>`` per room of ``rooms`` over ``days`` (local to ``tz``, the
    building's zone) and each day's ``span`` (the building's ``day_span``), its floor named when
    ``show_floor``. One query for all rooms' reservations."""
    if not rooms or not days:
        return []
    user = viewer(user)
    now = now or timezone.now()
    span_start, span_end = span
    hours = hours_per_day(span)
    open_halves = (span_end - span_start) // HALF  # a day's half hours; one fewer than 2 * hours when it ends on a half hour
    halves_per_day = 2 * hours
    n_days = len(days)
    n_halves = n_days * halves_per_day
    total_hours = n_days * hours
    day0 = days[0]
    # Whether each half hour is not to be offered: over, or after the day's end (the second half
    # of a last column from a half hour).
    past = [i % halves_per_day >= open_halves
            or wall_clock(days[i // halves_per_day], span_start + (i % halves_per_day + 1) * HALF, tz) <= now
            for i in range(n_halves)]
    window_start = wall_clock(days[0], span_start, tz)
    window_end = wall_clock(days[-1], span_end, tz)
    by_room = busy_intervals(rooms=rooms, start=window_start, end=window_end, tz=tz)  # times local to tz
    day_labels = [f"{d:%a} {d.day} {d:%b}" for d in days]
    dates = [d.isoformat() for d in days]
    # The booking links' times (an end of 24:00 is "00:00", the booking form's midnight) and the
    # labels' ("24:00"); capped at the day's end.
    edges = [min(span_start + k * HALF, span_end) for k in range(halves_per_day + 1)]
    hhmm = [day_hours.clock(m % day_hours.DAY_MINUTES) for m in edges]
    shown = [day_hours.clock(m) for m in edges]
    book_head, book_tail = id_url_parts("portal:book")
    detail_head, detail_tail = id_url_parts("portal:reservation_detail")
    week_url_head, week_url_tail = id_url_parts("portal:room_week")
    # Each free hour's cell with _URL where the room's booking URL goes and _NAME its name: the
    # same for every room, so a row starts as a copy of this list, and the two marks are replaced
    # in the row's joined string (two C-speed passes rather than a format per cell).
    free_cells = []
    for h in range(total_hours):
        d, k = divmod(h, hours)
        s, e = hhmm[2 * k], hhmm[2 * k + 2]
        free_cells.append(
            f'<td class="free{" day-start" if k == 0 else ""}" data-slot="{h}" data-day="{d}"><a href="{_URL}'
            f'?date={dates[d]}&amp;start={s}&amp;end={e}" aria-label="Book {_NAME}, {day_labels[d]}, {s}–{shown[2 * k + 2]}"></a></td>')
    past_hours = [h for h in range(total_hours) if past[2 * h] or past[2 * h + 1]]  # by hour, ascending
    out = []
    for room in rooms:
        book_url = f"{book_head}{room.pk}{book_tail}"
        name = _text(room.name)
        reservations = by_room.get(room.pk, ())
        # holder[i]: the reservation holding half hour i (the earliest-starting one), or None.
        holder: list = [None] * n_halves
        touched: set[int] = set()  # the hour columns with a half hour held
        times_of: dict[int, str] = {}  # "09:30–10:30" local, with the weekdays when it spans midnight
        for r in reservations:
            start, end = r.start, r.end  # local to tz already (busy_intervals(tz=tz))
            start_day, end_day = start.date(), end.date()
            first = (start_day - day0).days * 1440 + start.hour * 60 + start.minute  # wall-clock minutes from day0
            last = (end_day - day0).days * 1440 + end.hour * 60 + end.minute
            clocks = f"{start.hour:02d}:{start.minute:02d}", f"{end.hour:02d}:{end.minute:02d}"
            times_of[r.id] = (f"{clocks[0]}–{clocks[1]}" if start_day == end_day else
                              f"{_WEEKDAYS[start.weekday()]} {clocks[0]}–{_WEEKDAYS[end.weekday()]} {clocks[1]}")
            for d in range(max(0, first // 1440), min(n_days - 1, (last - 1) // 1440) + 1):
                base = d * halves_per_day
                day_open = d * 1440 + span_start
                lo = max(0, (first - day_open) // HALF)
                hi = min(open_halves, -(-(last - day_open) // HALF))  # clipped to the day's hours
                for k in range(lo, hi):
                    if holder[base + k] is None:
                        holder[base + k] = r
                        touched.add((base + k) // 2)
        # The row as if free throughout, then the hours touched by a reservation or by the clock
        # drawn over it ("" where a cell spans the hours after it): the free hours, most of a
        # week, cost one string each.
        cells = free_cells.copy()
        drawn_to = 0  # the hours before it are drawn (or spanned)
        for h in sorted(touched.union(past_hours)) if touched else past_hours:
            if h < drawn_to:
                continue
            d, k = divmod(h, hours)
            a = 2 * h  # its first half hour
            ha, hb = holder[a], holder[a + 1]
            free_a, free_b = ha is None and not past[a], hb is None and not past[a + 1]
            edge = " day-start" if k == 0 else ""  # a day's first column: its group's left border
            when = day_labels[d]
            if free_a or free_b:
                # One half free: link to it; the other half is busy (named where allowed) or over.
                s, e = (hhmm[2 * k], hhmm[2 * k + 1]) if free_a else (hhmm[2 * k + 1], hhmm[2 * k + 2])
                e_shown = shown[2 * k + 1] if free_a else shown[2 * k + 2]
                other = hb if free_a else ha
                if other is not None:
                    note, css = f"{_text(_label(other, room, user)[0])}, {times_of[other.id]}", "part busy-half"
                else:
                    note, css = "", "part"
                side = "open-start" if free_a else "open-end"
                cells[h] = (
                    f'<td class="{css} {side}{edge}" data-slot="{h}" data-day="{d}"'
                    + (f' title="{note}"' if note else "") + ">"
                    f'<a href="{_URL}?date={dates[d]}&amp;start={s}&amp;end={e}" aria-label="Book {_NAME}, {when}, {s}–{e_shown}"></a>'
                    + (f'<span class="sr-only"> {note}</span>' if note else "") + "</td>")
                drawn_to = h + 1
                continue
            held = ha or hb
            j = h + 1
            day_end = (d + 1) * hours
            if held is None:  # both halves over: one cell for the day's hours gone
                while j < day_end and holder[2 * j] is None and holder[2 * j + 1] is None and past[2 * j] and past[2 * j + 1]:
                    j += 1
                span = j - h
                cells[h] = (f'<td class="past{edge}" data-slot="{h}" data-day="{d}"'
                            + (f' colspan="{span}" data-span="{span}"' if span > 1 else "") + "></td>")
            else:
                # Busy: merge the following hours of the same day held by the same reservation throughout.
                if ha is held and hb is held:
                    while j < day_end and holder[2 * j] is held and holder[2 * j + 1] is held:
                        j += 1
                span = j - h
                label, mine, openable = _label(held, room, user)
                text = _text(label)
                times = times_of[held.id]
                inner = f'<a href="{detail_head}{held.id}{detail_tail}">{text}</a>' if openable else f"<span>{text}</span>"
                cells[h] = (
                    f'<td class="busy{" mine" if mine else ""}{edge}" data-slot="{h}" data-day="{d}"'
                    + (f' colspan="{span}" data-span="{span}"' if span > 1 else "")
                    + f' title="{text}, {times}">{inner}<span class="sr-only"> {when} {times}</span></td>')
            for spanned in range(h + 1, j):
                cells[spanned] = ""
            drawn_to = j
        floor = f" · {escape(room.floor.name)}" if show_floor and room.floor_id else ""
        head = (f'<tr data-room="{room.pk}" data-book="{book_url}" data-room-name="{name}"><th scope="row" class="room-col">'
                f'<a href="{week_url_head}{room.pk}{week_url_tail}?week={dates[0]}" aria-label="{name}&#x27;s week, hour by hour">{name}</a>'
                f' <span class="muted small">{room.capacity}<span class="sr-only"> seats</span>{floor}</span></th>')
        body = "".join(cells).replace(_URL, book_url).replace(_NAME, name)
        out.append({"room": room, "html": SafeString(head + body + "</tr>")})  # escaped above
    return out
