"""Recurring series: expansion in the building's time zone, all-or-nothing booking
with per-occurrence conflicts, and changing or cancelling one occurrence or the series."""

import datetime as dt
import zoneinfo

import pytest

from reservations import services
from reservations.exceptions import InvalidReservation, SlotTaken
from reservations.models import Reservation, ReservationSeries, SyncEvent
from reservations.recurrence import Recurrence, expand
from tests.factories import days_ahead

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def local(*args):
    return dt.datetime(*args, tzinfo=BERLIN)


def slots_of(recurrence, start, end, max_occurrences=200):
    return [(s.start.astimezone(BERLIN), s.end.astimezone(BERLIN)) for s in expand(recurrence, start=start, end=end, tz=BERLIN, max_occurrences=max_occurrences)]


def test_weekly_on_chosen_days_keeps_local_time_across_dst():
    # Monday 2031-03-24 09:00; Berlin moves to summer time on Sunday 2031-03-30.
    slots = slots_of(Recurrence("weekly", weekdays=(1, 3), count=4), local(2031, 3, 24, 9), local(2031, 3, 24, 10))

    assert [s.strftime("%a %d %H:%M%z") for s, _ in slots] == ["Mon 24 09:00+0100", "Wed 26 09:00+0100", "Mon 31 09:00+0200", "Wed 02 09:00+0200"]
    assert all(e - s == dt.timedelta(hours=1) for s, e in slots)


def test_daily_until_is_inclusive_and_interval_skips():
    slots = slots_of(Recurrence("daily", interval=2, until=dt.date(2031, 1, 7)), local(2031, 1, 1, 9), local(2031, 1, 1, 10))
    assert [s.day for s, _ in slots] == [1, 3, 5, 7]


def test_monthly_on_a_day_a_month_lacks_falls_on_its_last_day():
    """Outlook's rule (issue 16 item 7; tests/reservations/test_monthly_month_ends.py)."""
    slots = slots_of(Recurrence("monthly", count=3), local(2031, 1, 31, 9), local(2031, 1, 31, 10))
    assert [(s.month, s.day) for s, _ in slots] == [(1, 31), (2, 28), (3, 31)]


@pytest.mark.parametrize(
    ("recurrence", "field"),
    [
        (Recurrence("hourly", count=2), "recurrence.frequency"),
        (Recurrence("daily"), "recurrence"),
        (Recurrence("daily", count=3, until=dt.date(2031, 1, 9)), "recurrence"),
        (Recurrence("daily", count=0), "recurrence.count"),
        (Recurrence("daily", until=dt.date(2030, 12, 1)), "recurrence.until"),
        (Recurrence("daily", weekdays=(1,), count=2), "recurrence.weekdays"),
        (Recurrence("weekly", weekdays=(8,), count=2), "recurrence.weekdays"),
        (Recurrence("daily", interval=0, count=2), "recurrence.interval"),
        (Recurrence("daily", until=dt.date(2032, 1, 1)), "recurrence.until"),  # more than max occurrences
    ],
)
def test_bad_patterns_are_refused(recurrence, field):
    with pytest.raises(InvalidReservation) as caught:
        slots_of(recurrence, local(2031, 1, 1, 9), local(2031, 1, 1, 10), max_occurrences=50)
    assert field in caught.value.extra


@pytest.mark.django_db
def test_a_series_books_every_occurrence_and_one_outbox_event(alice, atlas):
    first = services.reservation_create(
        actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Stand-up",
        recurrence=Recurrence("daily", count=5), attendees=[{"email": "bob@contoso.example"}],
    )

    series = first.series
    occurrences = list(series.occurrences.order_by("start"))
    assert len(occurrences) == 5 and occurrences[0] == first
    assert all(o.state == "awaiting_confirmation" and o.sync_state == "pending" for o in occurrences)
    assert all(o.attendees.count() == 1 for o in occurrences)
    assert occurrences[-1].start == days_ahead(5, 9)
    event = SyncEvent.objects.get()
    assert (event.type, event.series, event.reservation) == ("create", series, None)
    assert event.details["reservation_ids"] == [o.pk for o in occurrences]


@pytest.mark.django_db
def test_a_series_with_conflicting_occurrences_is_refused_listing_each(alice, bob, dojo):
    services.reservation_create(actor=bob, room=dojo, start=days_ahead(3, 9, 30), end=days_ahead(3, 10, 30), subject="Bob's")
    services.reservation_create(actor=bob, room=dojo, start=days_ahead(5, 8), end=days_ahead(5, 9, 15), subject="Bob's early")

    with pytest.raises(SlotTaken) as caught:
        services.reservation_create(
            actor=alice, room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Daily",
            recurrence=Recurrence("daily", count=7),
        )

    conflicts = caught.value.extra["conflicts"]
    assert [c["occurrence"] for c in conflicts] == [3, 5]
    assert conflicts[0]["conflicting_start"] == days_ahead(3, 9, 30).isoformat()  # the building's zone, with its offset
    assert "2 of 7 occurrences conflict" in caught.value.message
    assert not ReservationSeries.objects.exists()
    assert Reservation.objects.count() == 2


@pytest.mark.django_db
def test_one_occurrence_or_the_whole_series_can_change(alice, dojo):
    first = services.reservation_create(
        actor=alice, room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Weekly",
        recurrence=Recurrence("daily", count=3),
    )
    second = first.series.occurrences.order_by("start")[1]

    services.reservation_update(actor=alice, reservation=second, subject="Just this one")
    services.reservation_update(actor=alice, reservation=first, scope="series", start=days_ahead(1, 14), end=days_ahead(1, 15, 30))

    rows = list(first.series.occurrences.order_by("start"))
    assert [r.start for r in rows] == [days_ahead(d, 14) for d in (1, 2, 3)]
    assert all(r.end - r.start == dt.timedelta(minutes=90) for r in rows)
    assert [r.subject for r in rows] == ["Weekly", "Just this one", "Weekly"]


@pytest.mark.django_db
def test_cancel_one_occurrence_then_the_series(alice, atlas):
    first = services.reservation_create(
        actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Weekly",
        recurrence=Recurrence("weekly", count=3),
    )
    last = first.series.occurrences.order_by("start").last()

    services.reservation_cancel(actor=alice, reservation=last)
    cancelled = services.reservation_cancel(actor=alice, reservation=first, scope="series")

    assert len(cancelled) == 2
    assert set(first.series.occurrences.values_list("state", flat=True)) == {"cancelled"}
    deletes = SyncEvent.objects.filter(type="delete")
    assert sorted(e.details["scope"] for e in deletes) == ["occurrence", "series"]


@pytest.mark.django_db
def test_series_scope_needs_a_series(alice, dojo):
    single = services.reservation_create(actor=alice, room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="One")
    with pytest.raises(InvalidReservation):
        services.reservation_cancel(actor=alice, reservation=single, scope="series")


@pytest.mark.django_db
def test_moving_a_series_by_its_own_interval_does_not_collide_with_itself(alice, dojo):
    first = services.reservation_create(
        actor=alice, room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Daily",
        recurrence=Recurrence("daily", count=4),
    )
    services.reservation_update(actor=alice, reservation=first, scope="series", start=days_ahead(2, 9), end=days_ahead(2, 10))
    assert [r.start for r in first.series.occurrences.order_by("start")] == [days_ahead(d, 9) for d in (2, 3, 4, 5)]

    services.reservation_update(actor=alice, reservation=first, scope="series", start=days_ahead(1, 9), end=days_ahead(1, 10))
    assert [r.start for r in first.series.occurrences.order_by("start")] == [days_ahead(d, 9) for d in (1, 2, 3, 4)]
