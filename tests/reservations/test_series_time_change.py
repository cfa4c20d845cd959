"""A series-wide time change moves the series' pattern with its occurrences: the series
record describes its occurrences afterwards (first slot, weekdays, end date, each
occurrence's pattern slot), and one that has begun is split in two. Rooms without sync:
the database only, no outbox event. (Exchange's side: tests/calendar_sync/test_series_time_change.py.)"""

import datetime as dt

import pytest

from calendar_sync.outbound import payloads
from reservations import services
from reservations.exceptions import SlotTaken
from reservations.models import Reservation, ReservationSeries, State, SyncEvent
from reservations.recurrence import Recurrence, expand
from tests.booking import book
from tests.factories import BERLIN, ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def next_weekday(days: int, hour: int, weekday: int) -> dt.datetime:
    """The first ``weekday`` (0 = Monday) at least ``days`` days ahead, ``hour`` o'clock in Berlin."""
    start = days_ahead(days, hour)
    return start + dt.timedelta(days=(weekday - start.weekday()) % 7)


def occurrences(series) -> list[Reservation]:
    return list(Reservation.objects.filter(series_id=series.pk).order_by("start", "id"))


def pattern_slots(series) -> list[dt.datetime]:
    """The slots the series record produces (what Exchange makes of it)."""
    recurrence = Recurrence(series.frequency, series.interval, tuple(series.weekdays), series.until, series.count)
    return [s.start for s in expand(recurrence, start=series.first_start, end=series.first_end, tz=BERLIN, max_occurrences=500)]


def local(moments) -> list[str]:
    return [m.astimezone(BERLIN).strftime("%a %d %H:%M") for m in moments]


# --- not begun: the series moves as a whole -----------------------------------------------------


def test_a_series_that_has_not_begun_moves_its_first_slot_weekdays_and_end(alice, dojo):
    monday = next_weekday(8, 9, 0)
    series = book(actor=alice, room=dojo, start=monday, recurrence=Recurrence("weekly", weekdays=(1, 3), until=(monday + 9 * DAY).date()), subject="Team sync").series
    rows = occurrences(series)

    services.reservation_update(actor=alice, reservation=rows[1], scope="series", start=rows[1].start + DAY + HOUR, end=rows[1].end + DAY + HOUR)

    series.refresh_from_db()
    assert (series.first_start, series.first_end) == (monday + DAY + HOUR, monday + DAY + 2 * HOUR)
    assert (series.weekdays, series.until, series.count) == ([2, 4], (monday + 10 * DAY).date(), None)
    moved = occurrences(series)
    assert local(r.start for r in moved) == local(r.start + DAY + HOUR for r in rows)
    assert [r.original_start for r in moved] == [r.start for r in moved] == pattern_slots(series)
    assert not SyncEvent.objects.exists()  # Dojo doesn't sync


def test_a_sunday_series_moved_a_day_later_runs_on_mondays_and_a_count_is_kept(alice, dojo):
    sunday = next_weekday(8, 18, 6)
    series = book(actor=alice, room=dojo, start=sunday, recurrence=Recurrence("weekly", weekdays=(7,), count=3), subject="Team sync").series

    services.reservation_update(actor=alice, reservation=occurrences(series)[0], scope="series", start=sunday + DAY, end=sunday + DAY + HOUR)

    series.refresh_from_db()
    assert (series.weekdays, series.count, series.until) == ([1], 3, None)
    assert [r.start for r in occurrences(series)] == pattern_slots(series)


def test_a_monthly_series_follows_its_first_slot_to_another_day_of_the_month(alice, dojo):
    start = days_ahead(3, 9)
    series = book(actor=alice, room=dojo, start=start, recurrence=Recurrence("monthly", count=3), subject="Team sync").series
    if start.day > 26:
        pytest.skip("late in the month: the moved day may not exist in every month")

    services.reservation_update(actor=alice, reservation=occurrences(series)[0], scope="series", start=start + 2 * DAY, end=start + 2 * DAY + HOUR)

    series.refresh_from_db()
    assert series.first_start == start + 2 * DAY
    assert payloads.recurrence_for(series)["pattern"]["dayOfMonth"] == (start + 2 * DAY).day
    assert [r.start for r in occurrences(series)] == pattern_slots(series)


def test_occurrences_cancelled_alone_keep_their_place_in_the_moved_pattern(alice, dojo):
    series = book(actor=alice, room=dojo, start=days_ahead(5, 9), recurrence=Recurrence("daily", count=3), subject="Team sync").series
    first, second, third = occurrences(series)
    services.reservation_cancel(actor=alice, reservation=second)

    services.reservation_update(actor=alice, reservation=first, scope="series", start=first.start + HOUR, end=first.end + HOUR)

    second.refresh_from_db()
    series.refresh_from_db()
    assert second.state == State.CANCELLED and second.start == first.start + DAY  # what was booked stays as it was
    assert second.original_start == first.start + DAY + HOUR
    assert sorted(r.original_start for r in occurrences(series)) == pattern_slots(series)


# --- begun: the series is split --------------------------------------------------------------------


def test_a_series_that_has_begun_is_split_and_both_halves_describe_their_occurrences(alice, bob, dojo, monkeypatch):
    series = book(actor=alice, room=dojo, start=days_ahead(6, 9), recurrence=Recurrence("daily", count=5), subject="Team sync").series
    rows = occurrences(series)
    monkeypatch.setattr(services.clock, "now", lambda: rows[1].end + dt.timedelta(minutes=1))

    moved = services.reservation_update(
        actor=alice, reservation=rows[3], scope="series", start=rows[3].start + HOUR, end=rows[3].end + 2 * HOUR,
        subject="Longer sync", requested_for=bob,
    )

    series.refresh_from_db()
    new = ReservationSeries.objects.exclude(pk=series.pk).get()
    assert moved.pk == rows[3].pk and moved.series_id == new.pk
    assert [r.pk for r in occurrences(series)] == [rows[0].pk, rows[1].pk]
    assert (series.subject, series.requested_for, series.count, series.until) == ("Team sync", alice, None, rows[1].start.astimezone(BERLIN).date())
    assert [r.start for r in occurrences(series)] == pattern_slots(series)
    assert [r.pk for r in occurrences(new)] == [r.pk for r in rows[2:]]
    assert (new.subject, new.requested_for, new.requested_by, new.room, new.timezone) == ("Longer sync", bob, alice, dojo, series.timezone)
    assert (new.first_start, new.first_end) == (rows[2].start + HOUR, rows[2].start + 3 * HOUR)
    assert [r.start for r in occurrences(new)] == [r.original_start for r in occurrences(new)] == pattern_slots(new)
    assert all(r.end - r.start == 2 * HOUR for r in occurrences(new))
    assert not SyncEvent.objects.exists()


def test_a_conflict_refuses_the_whole_change_and_nothing_is_split(alice, bob, dojo, monkeypatch):
    series = book(actor=alice, room=dojo, start=days_ahead(6, 9), recurrence=Recurrence("daily", count=4), subject="Team sync").series
    rows = occurrences(series)
    ReservationFactory(room=dojo, start=rows[3].start + HOUR, end=rows[3].end + HOUR, requested_for=bob)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=1))
    before = list(Reservation.objects.order_by("pk").values_list("pk", "start", "end", "series_id", "original_start"))
    first_start, until, count = series.first_start, series.until, series.count

    with pytest.raises(SlotTaken) as caught:
        services.reservation_update(actor=alice, reservation=rows[1], scope="series", start=rows[1].start + HOUR, end=rows[1].end + HOUR)

    assert [c["start"] for c in caught.value.extra["conflicts"]] == [(rows[3].start + HOUR).astimezone(BERLIN).isoformat()]
    assert list(Reservation.objects.order_by("pk").values_list("pk", "start", "end", "series_id", "original_start")) == before
    assert list(ReservationSeries.objects.values_list("pk", "first_start", "until", "count")) == [(series.pk, first_start, until, count)]


def test_splitting_a_series_that_never_reached_exchange_only_creates_the_new_half(alice, atlas, monkeypatch):
    """No meeting to end: the old series' own create (still queued, or re-processed after an
    error) reads its shortened pattern; the new half's create waits for it."""
    series = book(actor=alice, room=atlas, start=days_ahead(6, 9), recurrence=Recurrence("daily", count=3), subject="Team sync").series
    rows = occurrences(series)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=1))

    moved = services.reservation_update(actor=alice, reservation=rows[1], scope="series", start=rows[1].start + HOUR, end=rows[1].end + HOUR)

    events = list(SyncEvent.objects.order_by("pk").values_list("series_id", "reservation_id", "type", "details__after_series_id"))
    assert events == [(series.pk, None, "create", None), (moved.series_id, None, "create", series.pk)]
    assert {r.sync_state for r in occurrences(moved.series)} == {"pending"}


# --- the REST API ---------------------------------------------------------------------------------


def test_the_api_answers_with_the_moved_occurrence_and_its_new_series(alice, alice_api, bob, dojo, monkeypatch):
    series = book(actor=alice, room=dojo, start=days_ahead(6, 9), recurrence=Recurrence("daily", count=3), subject="Team sync").series
    rows = occurrences(series)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=1))
    new_start = rows[1].start + HOUR

    response = alice_api.patch(f"/api/v1/reservations/{rows[1].pk}/", {
        "scope": "series", "start": new_start.isoformat(), "end": (new_start + HOUR).isoformat(),
    }, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    new = ReservationSeries.objects.exclude(pk=series.pk).get()
    assert (body["id"], body["start"], body["series"]["id"]) == (rows[1].pk, new_start.astimezone(BERLIN).isoformat(), new.pk)
    assert (body["series"]["until"], body["series"]["count"]) == (rows[2].start.astimezone(BERLIN).date().isoformat(), None)

    ReservationFactory(room=dojo, start=rows[2].start + 3 * HOUR, end=rows[2].end + 3 * HOUR, requested_for=bob)
    refused = alice_api.patch(f"/api/v1/reservations/{rows[1].pk}/", {
        "scope": "series", "start": (new_start + 2 * HOUR).isoformat(), "end": (new_start + 3 * HOUR).isoformat(),
    }, format="json")
    assert refused.status_code == 409 and refused["Content-Type"].startswith("application/json")
    assert refused.json()["extra"]["conflicts"] and ReservationSeries.objects.count() == 2


# --- the portal ---------------------------------------------------------------------------------


def test_the_portal_moves_the_rest_of_a_series_that_has_begun(client, alice, dojo, monkeypatch):
    series = book(actor=alice, room=dojo, start=days_ahead(6, 9), recurrence=Recurrence("daily", count=3), subject="Team sync").series
    rows = occurrences(series)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=1))
    client.force_login(alice)

    response = client.post(f"/reservations/{rows[1].pk}/change/", {
        "subject": "Team sync", "date": rows[1].start.astimezone(BERLIN).date().isoformat(), "start_time": "10:30",
        "end_time": "11:00", "scope": "series",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    new = ReservationSeries.objects.exclude(pk=series.pk).get()
    assert local(r.start for r in occurrences(new)) == local(r.start + 90 * dt.timedelta(minutes=1) for r in rows[1:])
    assert all(r.end - r.start == dt.timedelta(minutes=30) for r in occurrences(new))
    assert [r.pk for r in occurrences(series)] == [rows[0].pk]
