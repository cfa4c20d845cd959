"""Monthly series on a weekday's position ("the 2nd Tuesday", "the last Friday"): expanded as
Graph's relativeMonthly pattern (https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern),
through the API (recurrence.index, backward compatible) and pushed as one relativeMonthly series."""

import datetime as dt
import zoneinfo

import pytest

from calendar_sync.outbound.payloads import recurrence_for
from reservations.exceptions import InvalidReservation
from reservations.models import ReservationSeries
from reservations.recurrence import Recurrence, expand, index_of

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def days(recurrence, first: dt.date) -> list[dt.date]:
    start = dt.datetime.combine(first, dt.time(10), tzinfo=BERLIN)
    return [s.start.astimezone(BERLIN).date() for s in expand(recurrence, start=start, end=start + dt.timedelta(hours=1),
                                                             tz=BERLIN, max_occurrences=500)]


def test_second_tuesday():
    got = days(Recurrence("monthly", index="second", weekdays=(2,), count=4), dt.date(2027, 1, 12))
    assert got == [dt.date(2027, 1, 12), dt.date(2027, 2, 9), dt.date(2027, 3, 9), dt.date(2027, 4, 13)]


def test_last_friday_is_the_4th_or_5th():
    got = days(Recurrence("monthly", index="last", weekdays=(5,), count=4), dt.date(2027, 1, 29))
    assert got == [dt.date(2027, 1, 29), dt.date(2027, 2, 26), dt.date(2027, 3, 26), dt.date(2027, 4, 30)]


def test_first_occurrence_is_the_first_matching_day_on_or_after_the_start_and_interval_counts_months():
    # Graph's rule: startDate need not match; the series begins at the first matching day.
    got = days(Recurrence("monthly", index="first", weekdays=(1,), interval=2, until=dt.date(2027, 7, 31)), dt.date(2027, 1, 15))
    assert got == [dt.date(2027, 3, 1), dt.date(2027, 5, 3), dt.date(2027, 7, 5)]


def test_same_day_of_the_month_is_unchanged():
    got = days(Recurrence("monthly", count=3), dt.date(2027, 1, 31))
    assert got == [dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31)]  # Outlook's last-day rule


def test_index_of():
    assert [index_of(dt.date(2027, 1, d)) for d in (1, 8, 15, 22, 29)] == ["first", "second", "third", "fourth", "last"]


@pytest.mark.parametrize("recurrence, key", [
    (Recurrence("weekly", index="second", count=2), "recurrence.index"),
    (Recurrence("monthly", index="fifth", count=2), "recurrence.index"),
    (Recurrence("monthly", index="second", weekdays=(2, 4), count=2), "recurrence.weekdays"),
    (Recurrence("monthly", weekdays=(2,), count=2), "recurrence.weekdays"),
])
def test_bad_patterns(recurrence, key):
    with pytest.raises(InvalidReservation) as caught:
        days(recurrence, dt.date(2027, 1, 12))
    assert key in caught.value.extra


def test_pushed_as_relative_monthly():
    series = ReservationSeries(frequency="monthly", interval=1, weekdays=[5], index="last", count=6, timezone="Europe/Berlin",
                               first_start=dt.datetime(2027, 1, 29, 9, tzinfo=dt.UTC), first_end=dt.datetime(2027, 1, 29, 10, tzinfo=dt.UTC))
    assert recurrence_for(series)["pattern"] == {"interval": 1, "firstDayOfWeek": "monday", "type": "relativeMonthly",
                                                 "daysOfWeek": ["friday"], "index": "last"}
    series.index, series.weekdays = "", []
    assert recurrence_for(series)["pattern"]["type"] == "absoluteMonthly"


@pytest.mark.django_db
def test_api_books_a_second_tuesday_series_and_old_shape_still_works(alice_api, dojo):
    start = dt.datetime(2027, 1, 12, 10, tzinfo=BERLIN)
    body = {"room": dojo.pk, "subject": "Steering", "start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat(),
            "recurrence": {"frequency": "monthly", "index": "second", "weekdays": [2], "count": 3}}
    response = alice_api.post("/api/v1/reservations/", body, format="json")
    assert response.status_code == 201, response.json()
    series = ReservationSeries.objects.get(subject="Steering")
    assert series.index == "second" and series.weekdays == [2]
    assert [r.start.astimezone(BERLIN).date() for r in series.occurrences.order_by("start")] == [
        dt.date(2027, 1, 12), dt.date(2027, 2, 9), dt.date(2027, 3, 9)]
    assert response.json()["series"]["index"] == "second"
    later = start + dt.timedelta(hours=4)
    body.update(subject="Same day", start=later.isoformat(), end=(later + dt.timedelta(hours=1)).isoformat(),
                recurrence={"frequency": "monthly", "count": 2})
    response = alice_api.post("/api/v1/reservations/", body, format="json")
    assert response.status_code == 201 and response.json()["series"]["index"] is None
    # No weekday given: the first day's (a Tuesday), kept on the series for Outlook's daysOfWeek.
    evening = start + dt.timedelta(hours=8)
    body.update(subject="Last Tuesday", start=evening.isoformat(), end=(evening + dt.timedelta(hours=1)).isoformat(),
                recurrence={"frequency": "monthly", "index": "last", "count": 2})
    assert alice_api.post("/api/v1/reservations/", body, format="json").status_code == 201
    last = ReservationSeries.objects.get(subject="Last Tuesday")
    assert last.weekdays == [2] and [r.start.astimezone(BERLIN).date() for r in last.occurrences.order_by("start")] == [
        dt.date(2027, 1, 26), dt.date(2027, 2, 23)]
    body.update(subject="Bad", recurrence={"frequency": "monthly", "index": "fifth", "count": 2})
    response = alice_api.post("/api/v1/reservations/", body, format="json")
    assert response.status_code == 400 and "recurrence" in str(response.json()["extra"])
