"""A check-in racing the release job, each on its own thread and database connection: the
one that locks the row first wins (SELECT … FOR UPDATE in the check-in, FOR UPDATE SKIP
LOCKED in the release), and the loser is told clearly."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from reservations.exceptions import CheckInRefused
from reservations.models import Reservation, State
from reservations.services import checkin, release
from tests.booking import book
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def meeting(alice, dojo):
    dojo.checkin_required = True
    dojo.save()
    return book(actor=alice, room=dojo, start=days_ahead(1, 9))


def lock_waiters() -> int:
    """Backends of this database waiting for a row lock right now."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target()
        except Exception as exc:  # the test reads it
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_check_in_holding_the_row_wins_and_the_release_passes_it_by(meeting, alice, monkeypatch):
    assert connection.vendor == "postgresql"
    locked, go_on = threading.Event(), threading.Event()
    real_window = checkin.checkin_window

    def slow_window(row):  # called by check_in with the row locked
        locked.set()
        assert go_on.wait(30)
        return real_window(row)

    monkeypatch.setattr(checkin, "checkin_window", slow_window)
    last_minute = meeting.start + dt.timedelta(minutes=14, seconds=59)
    checking_in, result = in_thread(lambda: checkin.check_in(meeting, actor=alice, channel="portal", now=last_minute))
    assert locked.wait(30)

    # Meanwhile the release job runs (its window closed a moment later): it skips the locked row.
    releasing, released = in_thread(lambda: release.release_due(now=meeting.start + dt.timedelta(minutes=15)))
    releasing.join(30)
    assert released == {"value": []}

    go_on.set()
    checking_in.join(30)
    assert "error" not in result and result["value"].checked_in_at == last_minute
    # The next run finds it checked in: nothing to release.
    assert release.release_due(now=meeting.start + dt.timedelta(minutes=16)) == []
    assert Reservation.objects.get(pk=meeting.pk).state == State.CONFIRMED


def test_a_release_holding_the_row_wins_and_the_check_in_is_told(meeting, alice, monkeypatch):
    holding, go_on = threading.Event(), threading.Event()
    real_ask = release._ask_series_after_noshows

    def slow_ask(series_ids, now):  # called by release_due with the rows locked and updated
        holding.set()
        assert go_on.wait(30)
        return real_ask(series_ids, now)

    monkeypatch.setattr(release, "_ask_series_after_noshows", slow_ask)
    closes = meeting.start + dt.timedelta(minutes=15)
    releasing, released = in_thread(lambda: release.release_due(now=closes))
    assert holding.wait(30)

    # A check-in arrives (its clock a moment before the window closed): it waits for the row...
    checking_in, result = in_thread(lambda: checkin.check_in(meeting, actor=alice, channel="qr", now=closes - dt.timedelta(seconds=1)))
    wait_for(lambda: lock_waiters() >= 1, message="the check-in waiting for the row's lock")
    go_on.set()
    releasing.join(30)
    checking_in.join(30)

    assert [r.pk for r in released["value"]] == [meeting.pk]
    # ...and, the release having been first, is refused with what happened.
    error = result.get("error")
    assert isinstance(error, CheckInRefused) and error.code == "released" and "released at 09:15" in error.message
    row = Reservation.objects.get(pk=meeting.pk)
    assert row.state == State.RELEASED and row.checked_in_at is None


def test_several_release_workers_release_each_row_once(alice, dojo):
    dojo.checkin_required = True
    dojo.save()
    start = days_ahead(1, 9)
    rows = [book(actor=alice, room=dojo, start=start + dt.timedelta(hours=i), hours=0.5) for i in range(12)]
    now = rows[-1].start + dt.timedelta(minutes=16)
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait(30)
        return [r.pk for r in release.release_due(now=now, limit=3)] + [r.pk for r in release.release_due(now=now, limit=3)] \
            + [r.pk for r in release.release_due(now=now)]

    runs = [in_thread(worker) for _ in range(4)]
    for thread, _ in runs:
        thread.join(60)
    released = [pk for _, outcome in runs for pk in outcome["value"]]
    assert sorted(released) == sorted(r.pk for r in rows)  # each exactly once
    assert set(Reservation.objects.filter(room=dojo).values_list("state", flat=True)) == {State.RELEASED}
