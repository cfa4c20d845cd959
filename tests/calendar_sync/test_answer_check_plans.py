"""The answer check's look-ups of a reservation's latest push (outbound/confirm.py:
``_latest_pushes``, ``_awaiting_rows``) are index look-ups whatever PostgreSQL's statistics say.

Found at 10,000 pushes (bench/scale_outbound.py --full, Strict): the statistics, gathered while
the events were still new, held few processed ones, and PostgreSQL ANDed the foreign key's bitmap
with syncevent_state_due's bitmap of every processed event, once per waiting reservation — 11 s
for one round of 1,000 (40 s for the window's filter), several rounds at once. The statistics
here are made stale the same way: analysed while every event is new, then every one processed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from calendar_sync.outbound import confirm
from reservations.models import Reservation, State, SyncEvent

WAITING = 1500


@pytest.fixture
def stale_statistics(atlas, alice):
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=2)
    reservations = Reservation.objects.bulk_create(
        Reservation(room=atlas, requested_for=alice, requested_by=alice, subject=f"Meeting {i}", state=State.AWAITING_CONFIRMATION,
                    start=start + dt.timedelta(hours=i), end=start + dt.timedelta(hours=i, minutes=30), event_id=f"event-{i}")
        for i in range(WAITING)
    )
    SyncEvent.objects.bulk_create(SyncEvent(reservation=r, type=SyncEvent.Type.CREATE) for r in reservations for _ in range(2))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {SyncEvent._meta.db_table}")
        cursor.execute(f"ANALYZE {Reservation._meta.db_table}")
    SyncEvent.objects.update(state=SyncEvent.State.PROCESSED, processed_at=timezone.now())
    return reservations


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _statements(call) -> list[str]:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return [q["sql"] for q in queries.captured_queries if SyncEvent._meta.db_table in q["sql"]]


@pytest.mark.parametrize("window", [None, 600])
def test_the_push_look_ups_use_the_foreign_keys_with_stale_statistics(stale_statistics, window):
    statements = _statements(lambda: confirm._awaiting_rows(window, 1000))
    assert statements  # the sync events are looked up
    for sql in statements:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            nodes = list(_nodes(cursor.fetchone()[0][0]["Plan"]))
        scans = [(n["Node Type"], n.get("Index Name", "")) for n in nodes if "Scan" in n["Node Type"]]
        assert not [n for n in nodes if n["Node Type"] == "BitmapAnd"], scans
        assert "syncevent_state_due" not in {name for _, name in scans}, scans


def test_the_look_ups_find_the_latest_push_and_the_window(stale_statistics):
    latest = timezone.now() + dt.timedelta(seconds=5)
    first, second = stale_statistics[0], stale_statistics[1]
    SyncEvent.objects.create(reservation=first, type=SyncEvent.Type.UPDATE, state=SyncEvent.State.PROCESSED, processed_at=latest)
    SyncEvent.objects.create(reservation=second, type=SyncEvent.Type.UPDATE, state=SyncEvent.State.NEW)  # not pushed yet
    pushed = dict(confirm._awaiting_rows(None, None))
    assert len(pushed) == WAITING and pushed[first.pk] == latest and pushed[second.pk] < latest
    assert [w.pk for w in confirm._awaiting_rows(None, 3)] == [r.pk for r in stale_statistics[:3]]  # the longest waiting first
    assert len(confirm._awaiting_rows(600, None)) == confirm.pending_answers(600) == WAITING
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    SyncEvent.objects.exclude(reservation=first).update(processed_at=an_hour_ago)
    # Pushed an hour ago and never read: still followed up (the window counts from the first read).
    assert len(confirm._awaiting_rows(600, None)) == confirm.pending_answers(600) == WAITING
    at = an_hour_ago.timestamp()
    cache.set_many({confirm.ANSWER_READ_KEY.format(r.pk): (1, at + 2, at, at) for r in stale_statistics if r.pk != first.pk})  # read then
    assert [w.pk for w in confirm._awaiting_rows(600, None)] == [first.pk] and confirm.pending_answers(600) == 1
    assert confirm.pending_answers() == WAITING


def test_a_series_push_counts_for_its_occurrences(stale_statistics, atlas, alice):
    from reservations.models import ReservationSeries

    start = timezone.now() + dt.timedelta(days=1)
    series = ReservationSeries.objects.create(room=atlas, subject="Weekly", frequency="weekly", first_start=start, first_end=start + dt.timedelta(hours=1),
                                              timezone="Europe/Berlin", requested_by=alice, requested_for=alice, event_id="master")
    occurrence = Reservation.objects.create(room=atlas, requested_for=alice, requested_by=alice, subject="Weekly", series=series,
                                            state=State.AWAITING_CONFIRMATION, start=start, end=start + dt.timedelta(hours=1))
    later = timezone.now() + dt.timedelta(seconds=9)
    SyncEvent.objects.create(series=series, type=SyncEvent.Type.CREATE, state=SyncEvent.State.PROCESSED, processed_at=later)
    assert dict(confirm._awaiting_rows(None, None))[occurrence.pk] == later  # its meeting is the series' (no event id of its own)
