"""Reading the portal's calendar grids in tests: a room's row, its cells and their booking
links (server-rendered HTML), wall-clock times in the demo buildings' zone, and the booking
form a free slot opens (Playwright)."""

from __future__ import annotations

import datetime as dt
import html
import re

from tests.factories import BERLIN


def next_monday() -> dt.date:
    today = dt.datetime.now(BERLIN).date()
    return today + dt.timedelta(days=7 - today.weekday())


def at(day: dt.date, hour: int, minute: int = 0, tz=BERLIN) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def row_of(page: str, room) -> str:
    return re.search(rf'<tr data-room="{room.pk}".*?</tr>', page, re.S).group(0)


def cells(row: str) -> list[str]:
    return re.findall(r"<td [^>]*>.*?</td>", row, re.S)


def cell_at(row: str, slot: int) -> str:
    return next(c for c in cells(row) if f'data-slot="{slot}"' in c)


def link_of(cell: str) -> str:
    return html.unescape(re.search(r'<a href="([^"]+)"', cell).group(1))


def assert_form(pg, day: dt.date, start: str, end: str) -> None:
    """The booking form (a Playwright page) opened for ``day`` from ``start`` to ``end``."""
    assert pg.get_by_label("Date", exact=True).input_value() == day.isoformat()
    assert pg.get_by_label("From").input_value() == start
    assert pg.get_by_label("To", exact=True).input_value() == end
