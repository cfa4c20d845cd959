"""fastpaths.update_row writes what QuerySet.update writes: the same rows changed, the same
values stored (each run on the same row, rolled back after), and ``instances`` reads rows back
as the ORM's ``from_db`` builds them."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.models import F

from reservations import fastpaths
from reservations.models import Reservation, State, SyncEvent
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db


def row(model, pk) -> dict:
    obj = model.objects.get(pk=pk)
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


def both_ways(model, pk, values: dict, among: dict | None = None):
    """(rows changed, the row after) by the ORM and by update_row, each rolled back."""
    out = []
    for run in (
        lambda: model.objects.filter(pk=pk, **{f"{k}__in": v for k, v in (among or {}).items()}).update(**values),
        lambda: fastpaths.update_row(model, pk, values, among=among),
    ):
        with transaction.atomic():
            out.append((run(), row(model, pk)))
            transaction.set_rollback(True)
    return out


@pytest.fixture
def booked(alice, dojo):
    return ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(2, 9), state=State.AWAITING_CONFIRMATION)


@pytest.mark.parametrize("among", [None, {"state": [State.AWAITING_CONFIRMATION, State.CONFLICTED]}, {"state": [State.CONFIRMED]}])
def test_a_reservations_update_is_the_orms(booked, among):
    now = dt.datetime.now(dt.UTC)
    values = {"updated_at": now, "event_id": "AAMk=", "change_key": "CK", "state": State.CONFIRMED, "state_reason": "",
              "released_at": None, "online_meeting": True}
    (orm_rows, orm), (ours_rows, ours) = both_ways(Reservation, booked.pk, values, among)
    assert ours_rows == orm_rows == (0 if among == {"state": [State.CONFIRMED]} else 1)
    assert ours == orm


def test_json_values_and_null_are_the_orms(booked):
    event = SyncEvent.objects.create(type="create", reservation=booked, request_payload={"old": True}, response={"a": 1})
    payload = {"subject": "Ünïcode", "attendees": [{"emailAddress": {"address": "a@b"}}], "n": 1, "none": None}
    (orm_rows, orm), (ours_rows, ours) = both_ways(SyncEvent, event.pk, {"request_payload": payload, "response": None})
    assert ours_rows == orm_rows == 1 and ours == orm
    assert ours["request_payload"] == payload and ours["response"] is None
    assert SyncEvent.objects.filter(pk=event.pk, response__isnull=False).exists()  # rolled back: still there
    fastpaths.update_row(SyncEvent, event.pk, {"response": None})
    assert SyncEvent.objects.filter(pk=event.pk, response__isnull=True).exists()  # SQL NULL, not JSON null


def test_an_aware_datetime_in_another_zone_is_stored_as_the_orm_stores_it(booked):
    tokyo = dt.timezone(dt.timedelta(hours=9))
    (_, orm), (_, ours) = both_ways(Reservation, booked.pk, {"released_at": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=tokyo)})
    assert ours == orm and ours["released_at"] == dt.datetime(2030, 1, 1, 18, 4, 5, tzinfo=dt.UTC)


def test_expressions_and_instances_take_the_orm(booked, dojo):
    event = SyncEvent.objects.create(type="create", reservation=booked, attempts=2)
    assert fastpaths.update_row(SyncEvent, event.pk, {"attempts": F("attempts") + 1}) == 1
    assert SyncEvent.objects.get(pk=event.pk).attempts == 3
    assert fastpaths.update_row(Reservation, booked.pk, {"room": dojo}) == 1
    assert Reservation.objects.get(pk=booked.pk).room_id == dojo.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hand-written UPDATE is PostgreSQL's")
def test_on_postgresql_one_statement_written_once(booked, django_assert_num_queries):
    with django_assert_num_queries(1) as ctx:
        fastpaths.update_row(Reservation, booked.pk, {"state_reason": "x"}, among={"state": [State.AWAITING_CONFIRMATION]})
    assert ctx.captured_queries[0]["sql"].startswith(f'UPDATE "{Reservation._meta.db_table}" SET "state_reason" = ')
    assert fastpaths.update_row(Reservation, booked.pk + 1000, {"state_reason": "x"}) == 0  # no such row


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hand-written SELECTs are PostgreSQL's (its backend converts no column)")
def test_instances_are_the_orms(booked):
    sql = (f"SELECT {fastpaths.select_columns(Reservation, 'r')}, {fastpaths.select_columns(SyncEvent, 'e')} "  # noqa: S608
           f'FROM "{Reservation._meta.db_table}" r LEFT JOIN "{SyncEvent._meta.db_table}" e ON e."reservation_id" = r."id" WHERE r."id" = %s')
    SyncEvent.objects.filter(reservation=booked).delete()
    with connection.cursor() as cursor:
        cursor.execute(sql, [booked.pk])
        found = cursor.fetchone()
    reservation, event = fastpaths.instances(found, 0, Reservation, SyncEvent)
    assert event is None  # the LEFT JOIN's far side: no row
    assert {f.attname: getattr(reservation, f.attname) for f in Reservation._meta.concrete_fields} == row(Reservation, booked.pk)
    assert not reservation._state.adding and reservation._state.db == connection.alias
    SyncEvent.objects.create(type="create", reservation=booked, details={"scope": "occurrence"}, request_payload={"k": [1]})
    with connection.cursor() as cursor:
        cursor.execute(sql, [booked.pk])
        found = cursor.fetchone()
    _, event = fastpaths.instances(found, 0, Reservation, SyncEvent)
    assert {f.attname: getattr(event, f.attname) for f in SyncEvent._meta.concrete_fields} == row(SyncEvent, event.pk)
    assert event.request_payload == {"k": [1]}  # JSON decoded by the field's converter


def test_refresh_fields_reads_what_refresh_from_db_reads(booked, django_assert_num_queries):
    Reservation.objects.filter(pk=booked.pk).update(state=State.CONFIRMED, state_reason="Accepted", online_meeting_url="https://t/1")
    ours, orm = Reservation.objects.get(pk=booked.pk), Reservation.objects.get(pk=booked.pk)
    Reservation.objects.filter(pk=booked.pk).update(state=State.REJECTED, state_reason="Declined", online_meeting_url="", subject="Changed")
    with django_assert_num_queries(1):
        fastpaths.refresh_fields(ours, ["state", "state_reason", "online_meeting_url"])
    orm.refresh_from_db(fields=["state", "state_reason", "online_meeting_url"])
    assert {f.attname: getattr(ours, f.attname) for f in Reservation._meta.concrete_fields} == {
        f.attname: getattr(orm, f.attname) for f in Reservation._meta.concrete_fields}
    assert ours.state == State.REJECTED and ours.subject != "Changed"  # only the fields asked for


def test_refresh_fields_of_a_row_gone_is_does_not_exist(booked):
    gone = Reservation.objects.get(pk=booked.pk)
    Reservation.objects.filter(pk=booked.pk).delete()
    with pytest.raises(Reservation.DoesNotExist):
        fastpaths.refresh_fields(gone, ["state"])


def test_refresh_fields_of_a_relation_takes_the_orm(booked, dojo, atlas):
    r = Reservation.objects.select_related("room").get(pk=booked.pk)
    Reservation.objects.filter(pk=booked.pk).update(room=atlas)
    fastpaths.refresh_fields(r, ["room"])
    assert r.room_id == atlas.pk and r.room == atlas  # the cached room dropped, as refresh_from_db does
