"""The portal's answers to days past the calendar's end: a form error on the page, never a
500 (issue 13, item 3). The portal reads days with the API's parser (reservations.parsing)."""

import pytest

from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2030-02-30"])
def test_the_finder_on_a_day_out_of_range_shows_a_form_error(alice_client, atlas, value):
    response = alice_client.get("/", {"date": value})
    assert response.status_code == 200
    assert response.context["form"].errors["date"]


def test_the_booking_form_prefilled_with_the_year_9999_opens_on_today(alice_client, atlas):
    response = alice_client.get(f"/rooms/{atlas.pk}/book/", {"date": "9999-12-31"})
    assert response.status_code == 200
    assert response.context["form"].initial["date"].year < 9999


def test_booking_on_the_year_9999_is_a_form_error(alice_client, atlas):
    data = {"subject": "Far away", "date": "9999-12-31", "start_time": "09:00", "end_time": "10:00", "attendees": ""}
    response = alice_client.post(f"/rooms/{atlas.pk}/book/", data)
    assert response.status_code == 200
    assert response.context["form"].errors["date"]


def test_the_finder_on_a_normal_day_still_works(alice_client, atlas):
    response = alice_client.get("/", {"date": days_ahead(1, 9).date().isoformat()})
    assert response.status_code == 200
    assert not response.context["form"].errors
