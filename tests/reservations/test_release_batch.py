"""The release job's batch writes (issue 15, bench/release.py): one delete event per released
row, as a one-by-one cancel records them (the reason, whether the meeting goes: a Teams meeting
keeps its place, only the room leaves it), pushed after commit, with the rows pending sync, in
a number of queries that doesn't grow with the batch."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import outbox
from reservations.models import Reservation, State, SyncEvent, SyncState
from reservations.outbox import SyncEventDetails
from reservations.services import release
from tests.booking import book
from tests.factories import RoomFactory, days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def rooms(hq):
    made = [RoomFactory(building=hq, name=f"Synced {n}", synced=True) for n in range(3)]
    Reservation.objects.filter(room__in=made).delete()
    for room in made:
        room.checkin_required = True
        room.save(update_fields=["checkin_required"])
    return made


def seed(actor, rooms, per_room: int, *, day: int) -> list[Reservation]:
    rows = []
    for k in range(per_room):
        for room in rooms:
            rows.append(book(actor=actor, room=room, start=days_ahead(day, 8) + dt.timedelta(minutes=30 * k), hours=0.25))
    SyncEvent.objects.all().delete()  # the creates' events
    return rows


def test_each_released_row_gets_its_own_delete_event_pushed_after_commit(alice, rooms, monkeypatch, django_capture_on_commit_callbacks):
    ordinary, teams = seed(alice, rooms[:2], 1, day=2)
    Reservation.objects.filter(pk=teams.pk).update(online_meeting=True)
    pushed = []
    monkeypatch.setattr(outbox, "_listeners", [pushed.append])

    with django_capture_on_commit_callbacks(execute=True):
        released = release.release_due(now=ordinary.start + dt.timedelta(minutes=16))

    assert {r.pk for r in released} == {ordinary.pk, teams.pk}
    events = {e.reservation_id: e for e in SyncEvent.objects.filter(type=SyncEvent.Type.DELETE)}
    assert set(events) == {ordinary.pk, teams.pk} and sorted(pushed) == sorted(e.pk for e in events.values())
    for row in Reservation.objects.filter(pk__in=events):
        details = SyncEventDetails.of(events[row.pk])
        assert row.state == State.RELEASED and row.sync_state == SyncState.PENDING
        assert details.scope == "occurrence" and details.reason == row.state_reason and details.system
        assert details.cancel_meeting is (row.pk == ordinary.pk)  # the Teams meeting stays; only the room leaves it


def test_the_queries_of_a_batch_grow_with_its_closing_times_not_its_rows(alice, rooms, hq):
    """One UPDATE per minute at which windows closed (the rows' reason), whatever the rows."""
    few = seed(alice, rooms, 1, day=2)
    with CaptureQueriesContext(connection) as small:
        assert len(release.release_due(now=few[-1].start + dt.timedelta(minutes=16))) == 3
    more_rooms = [*rooms, *(RoomFactory(building=hq, name=f"More {n}", synced=True, checkin_required=True) for n in range(27))]
    many = seed(alice, more_rooms, 1, day=3)
    with CaptureQueriesContext(connection) as large:
        assert len(release.release_due(now=many[-1].start + dt.timedelta(minutes=16))) == 30
    assert len(large) == len(small), [q["sql"][:100] for q in large.captured_queries]
    two_times = seed(alice, more_rooms, 2, day=4)
    with CaptureQueriesContext(connection) as later:
        assert len(release.release_due(now=two_times[-1].start + dt.timedelta(minutes=16))) == 60
    assert len(later) == len(small) + 1
