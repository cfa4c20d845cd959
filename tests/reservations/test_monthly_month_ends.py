"""Issue 16 item 7: a monthly series on day 29-31 follows Outlook's rule (a month too short for
the day gets its last day), and the product's expansion agrees with the emulator's expansion of
the very ``absoluteMonthly`` pattern the product sends to Graph, across February and April."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from types import SimpleNamespace

import pytest

from calendar_sync.outbound.payloads import recurrence_for
from graph_emulator.recurrence import occurrence_dates, validate
from reservations.recurrence import Recurrence, expand

TZ = zoneinfo.ZoneInfo("Europe/Amsterdam")


def product_days(first: dt.date, count: int) -> list[dt.date]:
    start = dt.datetime.combine(first, dt.time(9), tzinfo=TZ)
    slots = expand(Recurrence(frequency="monthly", count=count), start=start, end=start + dt.timedelta(hours=1), tz=TZ, max_occurrences=100)
    return [s.start.astimezone(TZ).date() for s in slots]


def graph_days(first: dt.date, count: int) -> list[dt.date]:
    series = SimpleNamespace(timezone="Europe/Amsterdam", first_start=dt.datetime.combine(first, dt.time(9), tzinfo=TZ),
                             interval=1, frequency="monthly", weekdays=[], until=None, count=count)
    return list(occurrence_dates(validate(recurrence_for(series))))[:count]


def test_day_31_falls_on_the_last_day_of_shorter_months():
    assert product_days(dt.date(2031, 1, 31), 6) == [
        dt.date(2031, 1, 31), dt.date(2031, 2, 28), dt.date(2031, 3, 31), dt.date(2031, 4, 30), dt.date(2031, 5, 31), dt.date(2031, 6, 30),
    ]


def test_day_29_is_february_28_except_in_leap_years():
    assert product_days(dt.date(2031, 1, 29), 2)[1] == dt.date(2031, 2, 28)
    assert product_days(dt.date(2032, 1, 29), 2)[1] == dt.date(2032, 2, 29)


@pytest.mark.parametrize("first", [dt.date(2031, 1, 29), dt.date(2031, 1, 30), dt.date(2031, 1, 31), dt.date(2031, 12, 31),
                                   dt.date(2032, 1, 31), dt.date(2031, 3, 31)])
def test_the_product_and_graph_expand_a_month_end_series_alike(first):
    assert product_days(first, 15) == graph_days(first, 15)
