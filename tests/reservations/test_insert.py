"""fastpaths.insert writes what Model.save(force_insert=True) would: the column values it
passes as they are equal Django's own adapting of them, and anything else goes through it."""

import datetime as dt

import pytest
from django.db import connection
from django.utils.translation import gettext_lazy

from reservations import fastpaths
from reservations.models import Reservation
from tests.factories import days_ahead


def _django_values(obj) -> list:
    _sql, readers = fastpaths.insert_statement(Reservation)
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field, *_ in readers]


def _insert_values(obj) -> list:
    _sql, readers = fastpaths.insert_statement(Reservation)
    return [fastpaths.column_value(obj, *reader) for reader in readers]


@pytest.mark.django_db
def test_column_values_are_djangos(alice, dojo):
    row = Reservation(
        room=dojo, subject="Planning", body="Agenda", start=days_ahead(2, 9), end=days_ahead(2, 10),
        requested_by=alice, requested_for=alice, subsource="sn_wsd_rest_api",
    )
    ours = _insert_values(row)
    django = _django_values(row)
    # auto_now(_add) columns are computed on each read: compare everything else exactly
    computed = {i for i, (_f, _a, _t, auto) in enumerate(fastpaths.insert_statement(Reservation)[1]) if auto}
    assert [v for i, v in enumerate(ours) if i not in computed] == [v for i, v in enumerate(django) if i not in computed]
    assert all(isinstance(ours[i], dt.datetime) and ours[i].tzinfo is not None for i in computed)


@pytest.mark.django_db
def test_values_of_other_types_are_adapted_by_django(alice, dojo):
    naive = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(9))  # noqa: DTZ005 (the point of the test)
    row = Reservation(
        room=dojo, subject=gettext_lazy("Lazy subject"), start=days_ahead(3, 9), end=days_ahead(3, 10),
        requested_by=alice, requested_for=alice, original_start=naive,
    )
    _sql, readers = fastpaths.insert_statement(Reservation)
    with pytest.warns(RuntimeWarning, match="naive datetime"):  # Django's own adapting ran
        by_name = {field.name: fastpaths.column_value(row, field, *rest) for field, *rest in readers}

    assert by_name["subject"] == "Lazy subject" and type(by_name["subject"]) is str
    assert by_name["original_start"].tzinfo is not None  # made aware by Django, not passed naive


@pytest.mark.django_db
def test_inserted_row_reads_back_as_saved(alice, dojo):
    row = Reservation(
        room=dojo, subject="Round trip", start=days_ahead(4, 9), end=days_ahead(4, 10), requested_by=alice, requested_for=alice,
    )
    fastpaths.insert(row)

    stored = Reservation.objects.get(pk=row.pk)
    assert (stored.subject, stored.start, stored.end, stored.room_id, stored.requested_for_id) == ("Round trip", row.start, row.end, dojo.pk, alice.pk)
    assert stored.created_at == row.created_at and stored.created_at is not None
