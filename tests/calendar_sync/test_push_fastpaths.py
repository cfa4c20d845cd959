"""calendar_sync.outbound.fastpaths (PostgreSQL) against the ORM queries the worker keeps for
other databases: the same events claimed, the same rows written, the same instances read,
the same successors found — scenario by scenario, each run both ways on the same rows."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from calendar_sync.outbound import fastpaths, worker
from reservations.models import Attendee, Reservation, ReservationSeries, SyncEvent
from tests.factories import AttendeeFactory, ReservationFactory, UserFactory, days_ahead
from workplace.models import Profile

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast paths are PostgreSQL's; other databases run the ORM"),
]

NEW, PROCESSING, PROCESSED, ERROR = (SyncEvent.State.NEW, SyncEvent.State.PROCESSING, SyncEvent.State.PROCESSED,
                                     SyncEvent.State.ERROR)


def values(obj) -> dict | None:
    return None if obj is None else {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def table() -> list[dict]:
    return [values(e) for e in SyncEvent.objects.order_by("pk")]


def both_ways(run_orm, run_sql):
    """Each run on the same rows (rolled back after it): (its result, the outbox after it)."""
    out = []
    for run in (run_orm, run_sql):
        with transaction.atomic():
            result = run()
            out.append((result, table()))
            transaction.set_rollback(True)
    return out


def series_of(room, user, **kw) -> ReservationSeries:
    start = days_ahead(3, 9)
    return ReservationSeries.objects.create(room=room, subject="Weekly", frequency="weekly", first_start=start,
                                            first_end=start + dt.timedelta(hours=1), timezone="Europe/Berlin",
                                            requested_by=user, requested_for=user, **kw)


@pytest.fixture
def outbox(alice, atlas, dojo):
    """Events in every state the claim tells apart: due, not yet due, blocked behind an earlier
    one of the same reservation / series / the series split off, live and expired leases,
    errors, and an event that lost its reservation (no scope)."""
    now = timezone.now()
    r1 = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(1, 9))
    r2 = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(1, 11))
    r3 = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 13))
    old, split = series_of(atlas, alice), series_of(dojo, alice)
    occurrence = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(2, 9), series=old)
    later, earlier = now + dt.timedelta(minutes=5), now - dt.timedelta(minutes=5)

    def event(state, *, reservation=None, series=None, due=None, details=None, type_="create"):
        return SyncEvent.objects.create(type=type_, state=state, reservation=reservation, series=series, next_attempt_at=due,
                                        details=details or {"scope": "occurrence"}, attempts=2)

    events = {
        "lost": event(NEW),  # no reservation, no series: waits for every earlier pending event
        "r1 due": event(NEW, reservation=r1),
        "r1 behind": event(NEW, reservation=r1, type_="update"),
        "r2 not yet due": event(NEW, reservation=r2, due=later),
        "r2 due by time": event(NEW, reservation=r2, due=earlier, type_="update"),
        "r3 lease expired": event(PROCESSING, reservation=r3, due=earlier),
        "r3 lease live": event(PROCESSING, reservation=r3, due=later, type_="update"),
        "r3 error": event(ERROR, reservation=r3, type_="update"),
        "r3 processed": event(PROCESSED, reservation=r3, type_="update"),
        "old series": event(NEW, series=old, details={"scope": "series"}),
        "occurrence": event(NEW, reservation=occurrence, series=old, type_="update"),
        "split create": event(NEW, series=split, details={"scope": "series", "after_series_id": old.pk}),
        "split zero": event(NEW, series=split, details={"scope": "series", "after_series_id": 0}, type_="update"),
        "lost later": event(NEW),
        "lost, split off none": event(NEW, details={"scope": "series", "after_series_id": 0}),
    }
    return events, now


@pytest.mark.parametrize("reprocess", [False, True])
def test_the_claim_claims_what_the_orms_claims(outbox, reprocess):
    events, now = outbox
    lease_until = now + dt.timedelta(seconds=60)
    ids = [e.pk for e in events.values()] + [max(e.pk for e in events.values()) + 1000]  # and one that doesn't exist
    claimed = 0
    for event_id in ids:
        (orm, orm_rows), (sql, sql_rows) = both_ways(
            lambda event_id=event_id: values(worker._claim_orm(event_id, now=now, lease_until=lease_until, reprocess=reprocess)),
            lambda event_id=event_id: values(fastpaths.claim(event_id, now=now, lease_until=lease_until, reprocess=reprocess)),
        )
        assert sql == orm, event_id
        assert sql_rows == orm_rows, event_id
        claimed += orm is not None
    assert claimed >= 3  # the scenarios claim some and refuse others


def test_a_claim_with_an_earlier_event_processed_goes_through(outbox):
    """The earlier-pending check looks at pending events only: once the first of r1 is done,
    the one behind it is claimed (both ways)."""
    events, now = outbox
    SyncEvent.objects.filter(pk__in=[events["r1 due"].pk, events["lost"].pk]).update(state=PROCESSED)
    (orm, _), (sql, _) = both_ways(
        lambda: values(worker._claim_orm(events["r1 behind"].pk, now=now, lease_until=now, reprocess=False)),
        lambda: values(fastpaths.claim(events["r1 behind"].pk, now=now, lease_until=now, reprocess=False)),
    )
    assert orm is not None and sql == orm and sql["attempts"] == 3 and sql["state"] == PROCESSING


def test_the_successor_is_the_orms(outbox):
    events, _now = outbox
    SyncEvent.objects.filter(pk=events["lost"].pk).update(state=PROCESSED)
    for name, event in events.items():
        assert fastpaths.next_pending(event) == worker._next_pending_orm(event), name
    assert fastpaths.next_pending(events["r1 due"]) == [events["r1 behind"].pk]
    assert fastpaths.next_pending(events["old series"]) == [events["occurrence"].pk]  # then the split one, by details
    SyncEvent.objects.filter(pk=events["occurrence"].pk).update(state=PROCESSED)
    assert fastpaths.next_pending(events["old series"]) == worker._next_pending_orm(events["old series"]) == [events["split create"].pk]


@pytest.mark.parametrize("others", ["none", "pending", "not processing"])
def test_the_finish_writes_what_the_orm_writes(outbox, others):
    events, now = outbox
    event = events["r3 lease expired"]
    event.request_payload = {"subject": "Planning", "transactionId": "t-1"}
    if others == "none":
        SyncEvent.objects.filter(reservation=event.reservation, state__in=[NEW, PROCESSING]).exclude(pk=event.pk).update(state=PROCESSED)
    if others == "not processing":  # the lease ran out and another run took it over: nothing is written
        SyncEvent.objects.filter(pk=event.pk).update(state=NEW)
    response = {"id": "AAMk=", "room_answer": "pending", "attendees": [{"type": "resource"}]}
    (orm, orm_rows), (sql, sql_rows) = both_ways(
        lambda: worker._finish_orm(event, response=response, now=now),
        lambda: fastpaths.finish(event, response=response, now=now),
    )
    assert sql == orm == (others != "none")
    assert sql_rows == orm_rows
    written = next(row for row in sql_rows if row["id"] == event.pk)
    assert (written["state"] == PROCESSED) == (others != "not processing")


def test_the_finish_writes_sql_null_for_no_payload(outbox):
    """No request payload is SQL NULL (the ORM's update writes None so), not JSON null."""
    events, now = outbox
    event = events["r3 lease expired"]
    event.request_payload = None
    fastpaths.finish(event, response=None, now=now)
    assert SyncEvent.objects.filter(pk=event.pk, request_payload__isnull=True, response__isnull=True).exists()


@pytest.fixture
def booked(alice, bob, atlas):
    """A series occurrence booked by bob for alice, with two attendees."""
    series = series_of(atlas, alice)
    r = ReservationFactory(room=atlas, requested_for=alice, requested_by=bob, start=days_ahead(2, 9), series=series)
    AttendeeFactory(reservation=r, email="b@contoso.example", name="B")
    AttendeeFactory(reservation=r, email="a@contoso.example", name="A", type="optional")
    return r


def loaded(r: Reservation) -> dict:
    """Everything a push reads of the reservation; asserts no query runs for it."""
    for_ = r.requested_for
    return {
        "reservation": values(r), "room": values(r.room), "building": values(r.room.building), "series": values(r.series),
        "requested_by": values(r.requested_by), "requested_for": values(for_),
        "profile": values(getattr(for_, "profile", None)),
        "attendees": [values(a) for a in r.attendees.all()],
        "attendees' reservation": [a.reservation is r for a in r.attendees.all()],
        "profile's user": getattr(getattr(for_, "profile", None), "user", None) is for_ if hasattr(for_, "profile") else None,
    }


def test_the_reservation_read_is_the_orms(booked, django_assert_num_queries):
    with django_assert_num_queries(1):
        fast = fastpaths.reservation_for_push(booked.pk)
    orm = worker._reservation_orm(booked.pk)
    with django_assert_num_queries(0):
        ours = loaded(fast)
    assert ours == loaded(orm)
    assert [a["email"] for a in ours["attendees"]] == ["b@contoso.example", "a@contoso.example"]  # by id, as Attendee.Meta.ordering
    assert ours["series"]["id"] == booked.series_id and ours["profile"] is not None


def test_a_reservation_without_series_attendees_or_profile_reads_as_the_orms(atlas, django_assert_num_queries):
    guest = UserFactory(username="noprofile", profile=None)
    assert not Profile.objects.filter(user=guest).exists()
    r = ReservationFactory(room=atlas, requested_for=guest, start=days_ahead(2, 13))
    fast = fastpaths.reservation_for_push(r.pk)
    with django_assert_num_queries(0):
        ours = loaded(fast)
        assert getattr(fast.requested_for, "profile", None) is None  # cached as missing, as select_related leaves it
    assert ours == loaded(worker._reservation_orm(r.pk))
    assert ours["series"] is None and ours["attendees"] == [] and ours["profile"] is None


def test_a_missing_reservation_is_does_not_exist():
    with pytest.raises(Reservation.DoesNotExist):
        fastpaths.reservation_for_push(987654321)


def test_the_reservation_read_follows_the_user_model(booked):
    """The people come from the configured user model (the join is written from its metadata)."""
    fast = fastpaths.reservation_for_push(booked.pk)
    assert type(fast.requested_by) is get_user_model() and isinstance(fast.attendees.all()[0], Attendee)


@pytest.mark.parametrize("mailbox", ["atlas@contoso.example", "ATLAS@Contoso.Example", "alice@contoso.example", "atlas", ""])
def test_the_delegate_check_is_the_orms(atlas, mailbox):
    """``delegate_of``: a room's mailbox, in any case (the ORM's ``mailbox__iexact``)."""
    from calendar_sync.common.clients import delegate_of
    from workplace.models import Room

    assert delegate_of(mailbox) == (bool(mailbox) and Room.objects.filter(mailbox__iexact=mailbox).exists())
    assert delegate_of(mailbox) == mailbox.lower().startswith("atlas@")
