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
                             interval=1, frequency="monthly", weekdays=[], until=None, count=count, index="")
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


# --- a monthly series moved across month ends, through the push to the emulator -------------------


@pytest.mark.django_db
def test_a_day_31_series_moved_back_a_day_follows_outlooks_rule_in_the_product_and_in_exchange(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    from graph_emulator.model import instances
    from reservations import services
    from reservations.models import Reservation, SyncEvent
    from tests.calendar_sync.test_push_emulator import ALICE, meetings

    mode("Normal")
    tz = atlas.building.tzinfo
    today = dt.datetime.now(tz).date()
    first_day = next(dt.date(y, 1, 31) for y in (today.year, today.year + 1) if dt.date(y, 1, 31) > today + dt.timedelta(days=2))
    start = dt.datetime.combine(first_day, dt.time(9), tzinfo=tz)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Month end",
                                            recurrence=Recurrence("monthly", count=4))
    rows = list(Reservation.objects.filter(series_id=first.series_id).order_by("start"))
    assert [r.start.astimezone(tz).date().day for r in rows] == [31, 28 + (first_day.year % 4 == 0), 31, 30]

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_update(actor=alice, reservation=rows[0], scope="series",
                                    start=rows[0].start - dt.timedelta(days=1), end=rows[0].end - dt.timedelta(days=1))

    moved = [r.start.astimezone(tz) for r in Reservation.objects.filter(series_id=first.series_id).order_by("start")]
    feb_last = 28 + (first_day.year % 4 == 0)
    assert [(d.month, d.day, d.hour) for d in moved] == [(1, 30, 9), (2, min(30, feb_last), 9), (3, 30, 9), (4, 30, 9)]
    # No occurrence deviates from the new pattern: nothing re-applied as an exception ...
    assert not SyncEvent.objects.filter(reservation__series_id=first.series_id, details__reapply=True).exists()
    assert not SyncEvent.objects.exclude(state=SyncEvent.State.PROCESSED).exists()
    # ... and Exchange expands the pattern the product sent to the same slots.
    [master] = [m for m in meetings(emulator_server, ALICE) if m.recurrence is not None]
    assert master.recurrence["pattern"]["dayOfMonth"] == 30
    window = (moved[0] - dt.timedelta(days=1), moved[-1] + dt.timedelta(days=1))
    assert [i.start for i in instances(master, *window)] == [d.astimezone(dt.UTC) for d in moved]
