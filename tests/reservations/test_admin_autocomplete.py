"""The change forms of reservations, series and feeds at scale (issue 17): their room, people and
series are autocomplete boxes (the selected one the only <option>, the rest found as the admin
types), the arrangement one of the room's, and the page's queries don't grow with the rooms."""


import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import feeds
from reservations.models import ReservationSeries
from tests.admin_html import options, select
from tests.factories import (
    BuildingFactory,
    ReservationFactory,
    RoomFactory,
    UserFactory,
    days_ahead,
)

pytestmark = pytest.mark.django_db


def more_rooms_and_people(n: int) -> None:
    building = BuildingFactory(name="Tower", code="tower")
    for i in range(n):
        RoomFactory(building=building, name=f"Tower room {i:03}", arrangements=["Theatre"])
        UserFactory(username=f"person{i:03}")


@pytest.fixture
def reservation(alice, atlas):
    return ReservationFactory(room=atlas, requested_for=alice, subject="Stand-up", start=days_ahead(1, 9))


def test_a_reservations_change_form_renders_no_option_per_room_person_or_series(client, admin, reservation):
    more_rooms_and_people(40)
    client.force_login(admin)
    html = client.get(f"/admin/reservations/reservation/{reservation.pk}/change/").content.decode()
    assert "Tower room" not in html and "person0" not in html
    assert options(html, "room") == ["Atlas (HQ)"] and "admin-autocomplete" in select(html, "room")
    assert 'data-field-name="room"' in select(html, "room")
    for name in ("requested_by", "requested_for"):
        assert options(html, name) == ["alice"] and "admin-autocomplete" in select(html, name)
    assert options(html, "series") == [""]
    # The arrangement: one of Atlas's layouts, not all 80 of the Tower's.
    assert options(html, "arrangement") == ["---------", "Atlas: Default", "Atlas: U-shape"]


def test_a_reservations_change_form_costs_the_same_queries_with_5_and_45_rooms(client, admin, reservation):
    client.force_login(admin)
    url = f"/admin/reservations/reservation/{reservation.pk}/change/"
    more_rooms_and_people(5)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    annex = BuildingFactory(name="Annex", code="annex")
    for i in range(40):
        RoomFactory(building=annex, name=f"Annex room {i:03}")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)


def test_the_room_box_finds_rooms_as_the_admin_types(client, admin, reservation):
    more_rooms_and_people(12)
    client.force_login(admin)
    found = client.get("/admin/autocomplete/", {"app_label": "reservations", "model_name": "reservation", "field_name": "room",
                                                "term": "room 011"}).json()
    assert [r["text"] for r in found["results"]] == ["Tower room 011 (Tower)"]
    people = client.get("/admin/autocomplete/", {"app_label": "reservations", "model_name": "reservation", "field_name": "requested_for",
                                                 "term": "ali"}).json()
    assert [r["text"] for r in people["results"]] == ["alice"]


def test_a_new_reservation_offers_no_arrangement_until_it_has_its_room(client, admin, reservation):
    client.force_login(admin)
    html = client.get("/admin/reservations/reservation/add/").content.decode()
    assert options(html, "arrangement") == ["---------"]
    assert options(html, "room") == []  # required: not even an empty one


def test_a_series_change_form_renders_no_option_per_room_or_person(client, admin, alice, atlas):
    start = days_ahead(2, 9)
    series = ReservationSeries.objects.create(room=atlas, subject="Weekly", frequency="weekly", count=3, first_start=start,
                                              first_end=start.replace(hour=10), timezone="Europe/Berlin", requested_by=alice, requested_for=alice)
    more_rooms_and_people(30)
    client.force_login(admin)
    html = client.get(f"/admin/reservations/reservationseries/{series.pk}/change/").content.decode()
    assert "Tower room" not in html and "person0" not in html
    assert options(html, "room") == ["Atlas (HQ)"] and options(html, "requested_for") == ["alice"]


def test_a_new_room_feed_is_an_autocomplete_and_a_room_with_its_feed_is_refused(client, admin, atlas, hq):
    more_rooms_and_people(30)
    feeds.calendar_feed_rotate(room=atlas)
    client.force_login(admin)
    html = client.get("/admin/reservations/calendarfeed/add/").content.decode()
    assert "Tower room" not in html and options(html, "room") == [""]
    refused = client.post("/admin/reservations/calendarfeed/add/", {"room": atlas.pk})
    assert refused.status_code == 200 and "This room has its feed already" in refused.content.decode()
