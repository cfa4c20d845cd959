"""A series-wide time change reaches Exchange (the emulator): a series that has not begun is
rescheduled on its master (occurrences regenerated, exceptions applied again), one that has
begun is split as Outlook's "this and following" does (the old series ends the day before,
a new series holds the moved occurrences). Afterwards the room calendar agrees with the
reservations, so an inbound pull of the room mailbox changes none of them."""

import datetime as dt

import pytest

from calendar_sync.inbound import delta
from calendar_sync.models import RoomEvent
from calendar_sync.outbound import tasks
from graph_emulator.model import instances
from reservations import services
from reservations.models import Reservation, ReservationSeries, State, SyncEvent
from reservations.recurrence import Recurrence
from tests.calendar_sync.test_push_emulator import ALICE, answers, meetings
from tests.factories import BERLIN, days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db

ATLAS = "atlas@contoso.example"
HOUR = dt.timedelta(hours=1)


# --- helpers ------------------------------------------------------------------------------------


def next_monday(days: int, hour: int) -> dt.datetime:
    """The first Monday at least ``days`` days ahead, ``hour`` o'clock in Berlin."""
    start = days_ahead(days, hour)
    return start + dt.timedelta(days=(7 - start.weekday()) % 7)


def book_series(capture, *, actor, room, start, recurrence, subject="Team sync"):
    with capture(execute=True):
        first = services.reservation_create(actor=actor, room=room, start=start, end=start + HOUR, subject=subject, recurrence=recurrence)
    series = ReservationSeries.objects.get(pk=first.series_id)
    if room.is_synced:
        answers(occurrences(series)[0])
    return series


def occurrences(series) -> list[Reservation]:
    return list(Reservation.objects.filter(series_id=series.pk).order_by("start", "id"))


def move_series(capture, reservation, *, actor, by: dt.timedelta):
    with capture(execute=True):
        return services.reservation_update(actor=actor, reservation=reservation, scope="series", start=reservation.start + by, end=reservation.end + by)


def masters(srv, mailbox: str) -> list:
    return [m for m in meetings(srv, mailbox) if m.recurrence is not None]


def starts_in_exchange(master) -> list[dt.datetime]:
    window = (master.start - dt.timedelta(days=1), master.start + dt.timedelta(days=120))
    return [i.start for i in instances(master, *window)]


def room_instances(srv, ical_uid: str) -> list[dt.datetime]:
    """The room calendar's occurrences of the meeting ``ical_uid`` (the room's copy of it)."""
    [copy] = [m for m in meetings(srv, ATLAS) if m.ical_uid == ical_uid]
    return starts_in_exchange(copy)


def series_events(series) -> list[SyncEvent]:
    return list(SyncEvent.objects.filter(series=series, reservation__isnull=True).order_by("pk"))


def assert_all_processed():
    failed = [(e.pk, e.type, e.state, e.error) for e in SyncEvent.objects.exclude(state=SyncEvent.State.PROCESSED)]
    assert failed == []


def reservations_as_they_are() -> list[tuple]:
    return list(Reservation.objects.order_by("pk").values_list("pk", "start", "end", "state", "series_id", "original_start"))


def pull_room() -> dict:
    """What the real-time path does on a notification: pull the room's delta and reconcile."""
    return dict(delta.pull_mailbox(ATLAS).stats)


def assert_pull_changes_nothing():
    """The real-time pull (the room's delta since the last pull), then the nightly full round
    (whose sweep looks for copies seen before that are gone): neither changes a reservation."""
    before = reservations_as_they_are()
    stats = pull_room()
    nightly = dict(delta.pull_mailbox(ATLAS, full=True, nightly=True).stats)
    assert reservations_as_they_are() == before, (stats, nightly)
    for outcome in (stats, nightly):
        assert not {"created", "updated", "cancelled", "cancelled_conflict", "declined", "deferred"} & outcome.keys(), outcome
    return stats


# --- a series that has not begun is rescheduled ---------------------------------------------------


def test_moving_a_series_that_has_not_begun_by_an_hour_reschedules_its_master(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(10, 9),
                         recurrence=Recurrence("weekly", count=3))
    first_start, master_id = series.first_start, series.event_id
    pull_room()  # the room's copies are known (and linked) before the change
    emulator.clear_request_log()

    moved = move_series(django_capture_on_commit_callbacks, occurrences(series)[1], actor=alice, by=HOUR)

    assert moved.series_id == series.pk  # the same series, rescheduled
    series.refresh_from_db()
    assert (series.first_start, series.first_end) == (first_start + HOUR, first_start + 2 * HOUR)
    rows = occurrences(series)
    assert [r.start for r in rows] == [first_start + HOUR + dt.timedelta(weeks=n) for n in range(3)]
    assert all(r.original_start == r.start for r in rows)
    [event] = series_events(series)[1:]  # the create, then this one push
    assert (event.type, event.state) == ("update", SyncEvent.State.PROCESSED), event.error
    assert_all_processed()
    log = emulator.request_log()["entries"]
    assert [e["method"] for e in log if "/events" in e["path"]] == ["PATCH"]  # one call: the master, no new meeting
    [master] = masters(emulator_server, ALICE)
    assert master.id == master_id and master.start == first_start + HOUR
    assert starts_in_exchange(master) == [r.start for r in rows]
    wait_for(lambda: room_instances(emulator_server, series.ical_uid) == [r.start for r in rows], timeout=5,
             message="the room's copy follows the master")
    assert len(masters(emulator_server, ATLAS)) == 1
    assert {r.state for r in occurrences(series)} == {State.CONFIRMED}

    assert_pull_changes_nothing()


def test_moving_a_weekly_series_by_a_day_moves_its_weekdays(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    monday = next_monday(8, 9)
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=monday,
                         recurrence=Recurrence("weekly", weekdays=(1, 3), until=(monday + dt.timedelta(days=9)).date()))
    assert [r.start.astimezone(BERLIN).strftime("%a") for r in occurrences(series)] == ["Mon", "Wed", "Mon", "Wed"]
    pull_room()

    move_series(django_capture_on_commit_callbacks, occurrences(series)[0], actor=alice, by=dt.timedelta(days=1))

    series.refresh_from_db()
    assert series.weekdays == [2, 4]
    assert series.until == (monday + dt.timedelta(days=10)).date()
    rows = occurrences(series)
    assert [r.start.astimezone(BERLIN).strftime("%a %H:%M") for r in rows] == ["Tue 09:00", "Thu 09:00"] * 2
    assert_all_processed()
    [master] = masters(emulator_server, ALICE)
    assert master.recurrence["pattern"]["daysOfWeek"] == ["tuesday", "thursday"]
    assert master.recurrence["range"]["endDate"] == series.until.isoformat()
    assert starts_in_exchange(master) == [r.start for r in rows]
    wait_for(lambda: room_instances(emulator_server, series.ical_uid) == [r.start for r in rows], timeout=5,
             message="the room's copy follows the master")

    # The room's copies of Monday and Wednesday are gone (new occurrence ids): not cancellations.
    stats = assert_pull_changes_nothing()
    assert stats.get("no_action", 0) >= 1


def test_occurrences_changed_or_cancelled_alone_stay_so_after_the_series_is_rescheduled(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(9, 9),
                         recurrence=Recurrence("weekly", count=4))
    first, second, third, fourth = occurrences(series)
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_update(actor=alice, reservation=second, start=second.start + 2 * HOUR, end=second.end + 2 * HOUR)
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=third, reason="Holiday")
    assert_all_processed()
    pull_room()

    move_series(django_capture_on_commit_callbacks, first, actor=alice, by=HOUR)

    assert_all_processed()
    rows = {r.pk: r for r in occurrences(series)}
    assert rows[second.pk].start == second.start + 3 * HOUR  # still two hours after its slot
    assert rows[second.pk].original_start == second.original_start + HOUR
    assert rows[third.pk].state == State.CANCELLED and rows[third.pk].original_start == third.original_start + HOUR
    # After the master's event, one event per occurrence that deviates, in that order.
    reapplied = SyncEvent.objects.filter(details__reapply=True).order_by("pk")
    assert [(e.reservation_id, e.type) for e in reapplied] == [(second.pk, "update"), (third.pk, "delete")]
    assert reapplied[0].pk > series_events(series)[-1].pk
    active = [r.start for r in sorted(rows.values(), key=lambda r: r.start) if r.state != State.CANCELLED]
    [master] = masters(emulator_server, ALICE)
    assert starts_in_exchange(master) == active  # the cancelled one stays cancelled, the moved one moved
    wait_for(lambda: room_instances(emulator_server, series.ical_uid) == active, timeout=5, message="the room's copy")

    assert_pull_changes_nothing()


# --- a series that has begun is split -------------------------------------------------------------


def test_moving_the_rest_of_a_series_that_has_begun_splits_it(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    mode("Normal")
    start = days_ahead(12, 9)
    old = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start,
                      recurrence=Recurrence("daily", count=5), subject="Stand-up")
    rows = occurrences(old)
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=rows[3], reason="Team day")
    pull_room()
    # The first two are over by the time the rest moves; half an hour later overlaps the old
    # slots, so the room accepts the new series only once the old one has ended.
    monkeypatch.setattr(services.clock, "now", lambda: rows[1].end + dt.timedelta(minutes=5))
    shift = dt.timedelta(minutes=30)

    moved = move_series(django_capture_on_commit_callbacks, rows[2], actor=alice, by=shift)

    old.refresh_from_db()
    new = ReservationSeries.objects.exclude(pk=old.pk).get()
    assert moved.series_id == new.pk
    # The database: the old series keeps what is over and ends the day before the first moved one.
    assert [r.pk for r in occurrences(old)] == [rows[0].pk, rows[1].pk]
    assert [r.start for r in occurrences(old)] == [rows[0].start, rows[1].start]
    assert (old.until, old.count) == (rows[1].start.astimezone(BERLIN).date(), None)
    assert (new.frequency, new.interval, new.room, new.subject, new.requested_for) == ("daily", 1, atlas, "Stand-up", alice)
    assert (new.first_start, new.first_end) == (rows[2].start + shift, rows[2].end + shift)
    assert (new.until, new.count) == (rows[4].start.astimezone(BERLIN).date(), None)
    assert [r.pk for r in occurrences(new)] == [rows[2].pk, rows[3].pk, rows[4].pk]
    assert occurrences(new)[1].state == State.CANCELLED
    # Exchange: the old meeting ended, the new one created once (transactionId), the cancelled
    # occurrence cancelled again; all of it through the outbox, in order.
    assert_all_processed()
    events = list(SyncEvent.objects.filter(pk__gt=SyncEvent.objects.filter(series=old, type="create").get().pk,
                                           type__in=["update", "create"]).order_by("pk").values_list("series_id", "type"))
    assert events == [(old.pk, "update"), (new.pk, "create")]
    new.refresh_from_db()
    assert new.event_id and new.ical_uid and new.ical_uid != old.ical_uid
    assert {r.ical_uid for r in occurrences(new)} == {new.ical_uid}
    assert {r.ical_uid for r in occurrences(old)} == {old.ical_uid}
    organizer_masters = {m.id: m for m in masters(emulator_server, ALICE)}
    assert set(organizer_masters) == {old.event_id, new.event_id}
    old_master, new_master = organizer_masters[old.event_id], organizer_masters[new.event_id]
    assert old_master.recurrence["range"]["endDate"] == old.until.isoformat()
    assert starts_in_exchange(old_master) == [rows[0].start, rows[1].start]  # the past is untouched
    assert old_master.start == rows[0].start
    assert new_master.transaction_id
    assert starts_in_exchange(new_master) == [rows[2].start + shift, rows[4].start + shift]
    assert len(masters(emulator_server, ATLAS)) == 2
    wait_for(lambda: room_instances(emulator_server, new.ical_uid) == [rows[2].start + shift, rows[4].start + shift], timeout=5,
             message="the room accepted the new series")
    assert room_instances(emulator_server, old.ical_uid) == [rows[0].start, rows[1].start]
    assert {r.state for r in occurrences(new) if r.pk != rows[3].pk} == {State.CONFIRMED}

    # The old meeting's later occurrences left the room calendar: no reservation is cancelled.
    assert_pull_changes_nothing()
    assert RoomEvent.objects.filter(reservation__series=new).exists()  # the new copies are linked


def test_a_change_of_one_occurrence_queued_before_the_split_does_not_touch_the_old_meeting(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    mode("Normal")
    old = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(13, 9),
                      recurrence=Recurrence("daily", count=3))
    rows = occurrences(old)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=5))
    # One occurrence is retitled and, before that reaches Exchange, the series moves.
    with django_capture_on_commit_callbacks(execute=False):
        services.reservation_update(actor=alice, reservation=rows[2], subject="Retro")
    retitled = SyncEvent.objects.filter(reservation=rows[2]).latest("pk")
    moved = move_series(django_capture_on_commit_callbacks, rows[1], actor=alice, by=HOUR)
    assert SyncEvent.objects.filter(state=SyncEvent.State.NEW).count() == 4  # all wait: the retitle first

    tasks.push_sync_event(retitled.pk)  # a worker picks it up; the rest follows in order

    assert_all_processed()
    new = ReservationSeries.objects.get(pk=moved.series_id)
    new_master = [m for m in masters(emulator_server, ALICE) if m.id == new.event_id][0]
    subjects = [i.subject for i in instances(new_master, rows[0].start, rows[2].end + 2 * HOUR)]
    assert subjects == ["Team sync", "Retro"]  # the retitled one re-applied on the new series
    [old_master] = [m for m in masters(emulator_server, ALICE) if m.id == old.event_id]
    assert starts_in_exchange(old_master) == [rows[0].start]


def test_the_new_half_of_a_split_series_waits_for_the_old_half_to_end(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    """Workers may pick the events up in any order: the new series' create waits until the old
    series has ended, or the room would decline the new one where the old one still is."""
    mode("Normal")
    old = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(14, 9),
                      recurrence=Recurrence("daily", count=3))
    rows = occurrences(old)
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):
        services.reservation_update(actor=alice, reservation=rows[1], scope="series",
                                    start=rows[1].start + dt.timedelta(minutes=30), end=rows[1].end + dt.timedelta(minutes=30))
    end_old, create_new = SyncEvent.objects.filter(state=SyncEvent.State.NEW).order_by("pk")
    assert (end_old.series_id, end_old.type, create_new.type) == (old.pk, "update", "create")

    assert tasks.push_sync_event(create_new.pk) == "skipped"
    assert tasks.push_sync_event(end_old.pk) == "processed"  # and the create right after it

    assert_all_processed()
    new = ReservationSeries.objects.get(pk=create_new.series_id)
    wait_for(lambda: room_instances(emulator_server, new.ical_uid) == [r.start + dt.timedelta(minutes=30) for r in rows[1:]],
             timeout=5, message="the room accepted the new series")
    assert {r.state for r in occurrences(new)} == {State.CONFIRMED}


def test_with_rooms_organizing_a_split_series_is_ended_and_created_in_the_rooms_calendar(
        provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    old = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(15, 14),
                      recurrence=Recurrence("weekly", count=4))
    rows = occurrences(old)
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=rows[2])
    pull_room()
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=5))

    move_series(django_capture_on_commit_callbacks, rows[1], actor=alice, by=dt.timedelta(days=1))

    assert_all_processed()
    new = ReservationSeries.objects.exclude(pk=old.pk).get()
    old.refresh_from_db()
    assert (new.mailbox, new.organizer, old.mailbox) == (ATLAS, ATLAS, ATLAS)
    room_masters = {m.id: m for m in masters(emulator_server, ATLAS)}
    assert set(room_masters) == {old.event_id, new.event_id}
    assert starts_in_exchange(room_masters[old.event_id]) == [rows[0].start]
    assert starts_in_exchange(room_masters[new.event_id]) == [rows[1].start + dt.timedelta(days=1), rows[3].start + dt.timedelta(days=1)]
    assert {r.state for r in occurrences(new)} == {State.CONFIRMED, State.CANCELLED}

    assert_pull_changes_nothing()
