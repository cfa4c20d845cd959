"""The reconcilers' matching statements read the reservations through indexes (issue 17 item
4): the nightly round of a room whose Outlook meetings changed asks which reservations the
changed copies name (event id, iCalUId, their series' iCalUId, a recorded row's reservation).
Written as one OR over the series join's column, PostgreSQL read the whole table for it:
~0.7 s a statement at 400,000 reservations, twice a changed room (12 minutes for a night with
1% of 400,000 meetings changed, against 1.7 unchanged; bench/nightly_scale.py).

No timing here: with other rooms' reservations in the table (planner statistics taken) and
sequential scans off, each statement of such a round is run under EXPLAIN ANALYZE and the
rows it reads from the reservations tables are counted; a statement no index serves reads
them all, whatever the plan's shape."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from calendar_sync.inbound import delta
from calendar_sync.inbound.copies import of_series_named
from reservations.models import Origin, Reservation, ReservationSeries, Source
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
    outlook_update,
    run_nightly,
)
from tests.factories import ReservationFactory, RoomFactory, days_ahead

TABLES = ("reservations_reservation", "reservations_reservationseries")
OTHERS = 2000  # other rooms' reservations (and a tenth as many series): what a statement that scans the table would read


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def rows_read(sql: str) -> int:
    """The rows of ``TABLES`` that running ``sql`` reads (every loop of every scan: the rows
    it keeps and those its filter or recheck drops), sequential scans disabled."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)) * node["Actual Loops"]
        for node in _nodes(plan[0]["Plan"]) if node.get("Relation Name") in TABLES
    )


def other_rooms_reservations(bob, count: int) -> None:
    """``count`` Outlook meetings' reservations in other rooms and a tenth as many series, each
    with its own ids (as a big installation's tables hold them), and the planner's statistics."""
    rooms = [RoomFactory(name=f"Other {n}", synced=True) for n in range(4)]
    first = days_ahead(1, 0)
    ReservationSeries.objects.bulk_create(
        ReservationSeries(room=rooms[n % 4], subject=f"Other weekly #{n}", frequency="weekly", count=4, first_start=first,
                          first_end=first + dt.timedelta(hours=1), timezone="Europe/Berlin", requested_by=bob, requested_for=bob,
                          origin=Origin.EXCHANGE, event_id=f"OTHER-MASTER-{n}", ical_uid=f"OTHER-SERIES-UID-{n}")
        for n in range(count // 10)
    )
    Reservation.objects.bulk_create(
        Reservation(room=rooms[n % 4], subject=f"Other #{n}", start=first + dt.timedelta(hours=n), end=first + dt.timedelta(hours=n, minutes=45),
                    requested_by=bob, requested_for=bob, source=Source.OUTLOOK, origin=Origin.EXCHANGE, event_id=f"OTHER-EVENT-{n}",
                    ical_uid=f"OTHER-UID-{n}", mailbox=f"other-{n % 4}@contoso.example")
        for n in range(count)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reservations_reservation")
        cursor.execute("ANALYZE reservations_reservationseries")


@pytest.mark.django_db(transaction=True)
def test_applying_changed_meetings_in_a_nightly_round_reads_reservations_through_indexes(provider, emulator, bob, atlas):
    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    made = [outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2 + k, 9), subject=f"Planning #{k}") for k in range(4)]
    assert run_nightly()["created"] == 4  # the first night records them
    other_rooms_reservations(bob, OTHERS)
    for meeting in made[:2]:  # two in one room: the page's read, then (the first update spoils it) the copy's own
        outlook_update(provider, BOB, meeting["id"], subject="Planning, moved on")
    with CaptureQueriesContext(connection) as queries:
        result = delta.pull_mailbox(ATLAS, full=True, nightly=True)
    assert result.stats["updated"] == 2 and result.stats["unchanged"] == 2
    assert sorted(r.subject for r in outlook_reservations(room=atlas)) == ["Planning #2", "Planning #3", "Planning, moved on", "Planning, moved on"]
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and '"reservations_reservation"' in q["sql"]]
    matching = [sql for sql in reads if '"reservations_reservation"."event_id" IN' in sql or '"reservations_reservation"."event_id" =' in sql]
    assert len(matching) >= 2, reads  # the statements this guards were run
    read = {sql[sql.index(" FROM "):]: rows_read(sql) for sql in reads}
    assert {sql: n for sql, n in read.items() if n >= 50} == {}


@pytest.mark.django_db
@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_of_series_named_finds_what_the_series_join_found(atlas, bob, vendor, monkeypatch):
    """The condition on ``series_id`` (``= ANY(ARRAY(subquery))`` on PostgreSQL, ``IN
    (subquery)`` elsewhere) matches the rows ``series__ical_uid__in`` did, ORed as the
    reconcilers use it."""
    start = days_ahead(3, 9)

    def series(uid: str) -> ReservationSeries:
        return ReservationSeries.objects.create(
            room=atlas, subject=uid, frequency="daily", count=2, first_start=start, first_end=start + dt.timedelta(hours=1),
            timezone="Europe/Berlin", requested_by=bob, requested_for=bob, ical_uid=uid,
        )

    weekly, other = series("UID-WEEKLY"), series("UID-OTHER")
    rows = [ReservationFactory(room=atlas, requested_for=bob, series=s, start=start + dt.timedelta(days=d, hours=2 * n), ical_uid=uid)
            for n, s in enumerate((weekly, other)) for d, uid in ((0, ""), (1, "UID-OWN"))]
    single = ReservationFactory(room=atlas, requested_for=bob, start=start + dt.timedelta(days=5), event_id="EV-1")
    if vendor != connection.vendor:
        monkeypatch.setattr(connection, "vendor", vendor)  # the generic SQL, on the test's database
    for uids, pks in ((["UID-WEEKLY"], []), (["UID-WEEKLY", "UID-OTHER"], []), (["UID-OWN"], [single.pk]), (["NONE"], [])):
        query = Q(event_id="EV-1") | Q(pk__in=pks) | Q(ical_uid__in=uids)
        new = set(Reservation.objects.filter(query | of_series_named(uids)).values_list("pk", flat=True))
        old = set(Reservation.objects.filter(query | Q(series__ical_uid__in=uids)).values_list("pk", flat=True))
        assert new == old, uids
    assert set(Reservation.objects.filter(of_series_named(["UID-WEEKLY"])).values_list("pk", flat=True)) == {rows[0].pk, rows[1].pk}
