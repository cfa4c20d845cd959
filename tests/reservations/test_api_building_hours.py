"""A building's calendar hours in the v1 API: read-only on each room, like the rest of its
building (buildings are edited in the admin; the API has no building endpoint to write)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BuildingFactory, RoomFactory
from workplace.models import Building

pytestmark = pytest.mark.django_db


def test_each_room_says_its_buildings_hours(alice_api, atlas):
    ward = RoomFactory(building=BuildingFactory(name="Hospital", code="hospital", day_starts=dt.time(0), day_ends=dt.time(0)),
                       name="Ward")
    plant = RoomFactory(building=BuildingFactory(name="Plant", code="plant", day_starts=dt.time(6, 30), day_ends=dt.time(14)),
                        name="Shift")
    rooms = {r["name"]: r for r in alice_api.get("/api/v1/rooms/").json()["results"]}
    assert (rooms["Atlas"]["day_starts"], rooms["Atlas"]["day_ends"]) == ("07:00", "21:00")  # the default
    assert (rooms["Ward"]["day_starts"], rooms["Ward"]["day_ends"]) == ("00:00", "24:00")  # until midnight
    assert (rooms["Shift"]["day_starts"], rooms["Shift"]["day_ends"]) == ("06:30", "14:00")
    one = alice_api.get(f"/api/v1/rooms/{ward.pk}/").json()
    assert (one["day_starts"], one["day_ends"]) == ("00:00", "24:00")
    assert plant.pk in {r["id"] for r in rooms.values()}


@pytest.mark.parametrize("method", ["put", "patch", "post"])
def test_writing_them_through_the_api_is_refused_and_changes_nothing(admin_api, atlas, method):
    response = getattr(admin_api, method)(f"/api/v1/rooms/{atlas.pk}/", {"day_starts": "25:00", "day_ends": "06:00"}, format="json")
    assert response.status_code == 405 and response["Content-Type"].startswith("application/json")
    assert response.json()["message"]
    hq = Building.objects.get(code="hq")
    assert (hq.day_starts, hq.day_ends) == (dt.time(7), dt.time(21))


def test_the_room_list_costs_the_same_queries_over_several_buildings(alice_api, atlas, dojo):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_api.get("/api/v1/rooms/").status_code == 200
        return len(captured)

    one = count()
    for code in ("north", "south"):
        RoomFactory(building=BuildingFactory(code=code, day_starts=dt.time(6), day_ends=dt.time(0)), name=f"{code} room")
    assert count() == one


def test_the_schema_documents_them(client):
    schema = client.get("/api/schema/?format=json").json()
    room = schema["components"]["schemas"]["Room"]
    assert room["properties"]["day_starts"]["type"] == "string" and room["properties"]["day_starts"]["readOnly"]
    assert "24:00 means until midnight" in room["properties"]["day_ends"]["description"]
    assert {"day_starts", "day_ends"} <= set(room["required"])
