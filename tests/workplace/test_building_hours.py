"""A building's calendar hours (``Building.day_starts`` / ``day_ends``, workplace.day_hours):
what is valid, what the admin says about what isn't, and what the database refuses."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.factories import BuildingFactory
from workplace import day_hours
from workplace.models import Building

pytestmark = pytest.mark.django_db

T = dt.time


@pytest.mark.parametrize(("starts", "ends", "span"), [
    (T(7), T(21), (420, 1260)),  # the default: the grids' hours before buildings had theirs
    (T(6), T(14), (360, 840)),
    (T(6, 30), T(14, 30), (390, 870)),
    (T(0), T(0), (0, 1440)),  # 00:00–24:00: a 24-hour site
    (T(22), T(0), (1320, 1440)),  # until midnight
    (T(23, 30), T(0), (1410, 1440)),  # one slot
])
def test_valid_hours_and_their_span(starts, ends, span):
    assert day_hours.errors(starts, ends) == {}
    building = BuildingFactory(code="site", day_starts=starts, day_ends=ends)
    building.full_clean()
    assert building.day_span == span


@pytest.mark.parametrize(("starts", "ends", "field", "message"), [
    (T(14), T(6), "day_ends", "must end after it starts"),
    (T(9), T(9), "day_ends", "must end after it starts"),
    (T(6, 15), T(14), "day_starts", "whole or half hour"),
    (T(6), T(14, 45), "day_ends", "whole or half hour"),
    (T(6, 0, 30), T(14), "day_starts", "whole or half hour"),
    (T(0, 30), T(0, 30), "day_ends", "must end after it starts"),  # 00:30 is not midnight
])
def test_invalid_hours_are_refused_with_the_field_named(starts, ends, field, message):
    assert field in day_hours.errors(starts, ends)
    building = Building(name="Site", code="site", timezone="Europe/Berlin", day_starts=starts, day_ends=ends)
    with pytest.raises(ValidationError) as refused:
        building.full_clean()
    assert message in " ".join(refused.value.message_dict[field])


def test_new_and_existing_buildings_keep_todays_grid():
    building = Building.objects.create(name="Plain", code="plain")
    building.refresh_from_db()
    assert (building.day_starts, building.day_ends, building.day_span) == (T(7), T(21), (420, 1260))


def test_the_database_refuses_a_day_that_ends_before_it_starts():
    """Writes that skip clean() (``QuerySet.update``, SQL) meet the check constraint."""
    building = BuildingFactory(code="site")
    with pytest.raises(IntegrityError), transaction.atomic():
        Building.objects.filter(pk=building.pk).update(day_starts=T(21), day_ends=T(7))
    Building.objects.filter(pk=building.pk).update(day_starts=T(22), day_ends=T(0))  # until midnight: fine


def test_hours_off_the_half_hour_written_past_clean_draw_the_default_grid():
    building = BuildingFactory(code="site")
    Building.objects.filter(pk=building.pk).update(day_starts=T(6, 15), day_ends=T(14))
    building.refresh_from_db()
    assert building.day_span == (420, 1260)


def _change(client, building, **fields):
    data = {"name": building.name, "code": building.code, "address": "", "timezone": building.timezone,
            "calendar_provider": "", "nightly_time": "", "day_starts": "07:00", "day_ends": "21:00",
            "floors-TOTAL_FORMS": "0", "floors-INITIAL_FORMS": "0", "floors-MIN_NUM_FORMS": "0", "floors-MAX_NUM_FORMS": "1000",
            **fields}
    return client.post(f"/admin/workplace/building/{building.pk}/change/", data)


def test_the_admin_form_shows_the_hours_with_help_and_explains_a_bad_pair(client, admin):
    building = BuildingFactory(name="Plant", code="plant")
    client.force_login(admin)
    page = client.get(f"/admin/workplace/building/{building.pk}/change/").content.decode()
    assert 'name="day_starts" value="07:00:00"' in page and 'name="day_ends" value="21:00:00"' in page
    assert "00:00 means until midnight (24:00)" in page

    response = _change(client, building, day_starts="14:00", day_ends="06:00")
    assert response.status_code == 200  # the form again, with the error
    assert "The day must end after it starts (00:00 means until midnight)." in response.content.decode()
    response = _change(client, building, day_starts="06:10", day_ends="14:00")
    assert response.status_code == 200 and "Use a whole or half hour" in response.content.decode()
    building.refresh_from_db()
    assert (building.day_starts, building.day_ends) == (T(7), T(21))  # nothing changed

    assert _change(client, building, day_starts="00:00", day_ends="00:00").status_code == 302
    building.refresh_from_db()
    assert building.day_span == (0, 1440)
    listing = client.get("/admin/workplace/building/").content.decode()
    assert "00:00–24:00" in listing
