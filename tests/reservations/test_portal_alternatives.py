"""Issue 14, item 5: a clash comes with its next step — rooms that fit the same time and
the same room's next free slot — in the API's 409 (``extra.alternatives``) and in the
portal as one-click bookings; for a series, per clashing occurrence."""

import pytest

from reservations.models import Reservation
from tests.factories import EquipmentFactory, ReservationFactory, RoomFactory, days_ahead

pytestmark = pytest.mark.django_db

URL = "/api/v1/reservations/"


@pytest.fixture
def rooms(hq, atlas, projector):
    """Atlas (8, projector) plus: Cosmos (12, projector) fits; Borealis (4) is too small;
    Nova (10) lacks the projector; Zenith (10, projector) is booked at the time."""
    cosmos = RoomFactory(building=hq, name="Cosmos", capacity=12, equipment=[projector])
    RoomFactory(building=hq, name="Borealis", capacity=4, equipment=[projector])
    RoomFactory(building=hq, name="Nova", capacity=10, equipment=[EquipmentFactory(slug="whiteboard", name="Whiteboard")])
    zenith = RoomFactory(building=hq, name="Zenith", capacity=10, equipment=[projector])
    ReservationFactory(room=zenith, start=days_ahead(1, 14), end=days_ahead(1, 16))
    ReservationFactory(room=atlas, subject="Taken", start=days_ahead(1, 14), end=days_ahead(1, 15, 30))
    ReservationFactory(room=atlas, subject="Also taken", start=days_ahead(1, 15, 30), end=days_ahead(1, 16))
    return {"atlas": atlas, "cosmos": cosmos}


def test_the_409_lists_rooms_that_fit_and_the_next_free_slot(alice_api, rooms):
    atlas = rooms["atlas"]
    response = alice_api.post(URL, {"room": atlas.pk, "subject": "Review", "start": days_ahead(1, 14, 30).isoformat(),
                                    "end": days_ahead(1, 15, 30).isoformat()}, format="json")
    assert response.status_code == 409
    extra = response.json()["extra"]
    assert [r["name"] for r in extra["alternatives"]["rooms"]] == ["Cosmos"]
    assert extra["alternatives"]["next_free"] == {"start": days_ahead(1, 16).isoformat(), "end": days_ahead(1, 17).isoformat()}
    assert extra["conflicts"][0]["conflicting_start"] == days_ahead(1, 14).isoformat()


def test_a_series_names_each_clashing_occurrence_and_rooms_free_for_it(alice_api, rooms):
    atlas = rooms["atlas"]
    response = alice_api.post(URL, {"room": atlas.pk, "subject": "Daily", "start": days_ahead(1, 14, 30).isoformat(),
                                    "end": days_ahead(1, 15).isoformat(), "recurrence": {"frequency": "daily", "count": 3}}, format="json")
    assert response.status_code == 409
    alternatives = response.json()["extra"]["alternatives"]
    assert [o["occurrence"] for o in alternatives["occurrences"]] == [1]
    assert [r["name"] for r in alternatives["occurrences"][0]["rooms"]] == ["Cosmos"]
    assert [r["name"] for r in alternatives["rooms"]] == ["Cosmos"]


def test_the_portal_offers_them_and_one_click_books_one(client, alice, rooms):
    atlas, cosmos = rooms["atlas"], rooms["cosmos"]
    client.force_login(alice)
    day = days_ahead(1, 9).date().isoformat()
    html = client.post(f"/rooms/{atlas.pk}/book/", {
        "subject": "Review", "date": day, "start_time": "14:30", "end_time": "15:30", "arrangement": atlas.default_arrangement().pk,
    }).content.decode()
    assert "Atlas is already booked" in html and 'id="alternatives"' in html
    assert "Book Cosmos (12 seats) at the same time" in html and "its next free time" in html
    # The alternative's button posts the same booking to Cosmos.
    response = client.post(f"/rooms/{cosmos.pk}/book/", {"subject": "Review", "date": day, "start_time": "14:30", "end_time": "15:30"})
    assert response.status_code == 302
    booked = Reservation.objects.get(subject="Review")
    assert booked.room == cosmos and booked.start == days_ahead(1, 14, 30)


@pytest.fixture
def layouts(rooms, hq, projector):
    """Atlas's U-shape seats 8 (its capacity). Orion has a U-shape for 10: it fits; Vega's U-shape
    seats 6: it doesn't; Cosmos has no U-shape."""
    from workplace.models import Arrangement

    orion = RoomFactory(building=hq, name="Orion", capacity=12, equipment=[projector])
    Arrangement.objects.create(room=orion, name="U-shape", capacity=10)
    vega = RoomFactory(building=hq, name="Vega", capacity=12, equipment=[projector])
    Arrangement.objects.create(room=vega, name="U-shape", capacity=6)
    return {**rooms, "orion": orion, "u_shape": rooms["atlas"].arrangements.get(name="U-shape"),
            "orion_u": orion.arrangements.get(name="U-shape")}


def test_the_409_matches_the_layout_asked_for(alice_api, layouts):
    atlas = layouts["atlas"]
    slot = {"start": days_ahead(1, 14, 30).isoformat(), "end": days_ahead(1, 15, 30).isoformat()}
    asked = alice_api.post(URL, {"room": atlas.pk, "subject": "Workshop", "arrangement": layouts["u_shape"].pk, **slot}, format="json")
    assert asked.status_code == 409
    rooms = asked.json()["extra"]["alternatives"]["rooms"]
    assert rooms == [{"id": layouts["orion"].pk, "name": "Orion", "capacity": 12,
                      "arrangement": {"id": layouts["orion_u"].pk, "name": "U-shape", "seats": 10}}]
    # The default layout asks for no particular one: every room that fits.
    plain = alice_api.post(URL, {"room": atlas.pk, "subject": "Workshop", **slot}, format="json").json()["extra"]["alternatives"]["rooms"]
    assert [r["name"] for r in plain] == ["Cosmos", "Orion", "Vega"] and all(r["arrangement"] is None for r in plain)


def test_the_portal_alternative_books_the_matching_layout(client, alice, layouts):
    atlas, orion = layouts["atlas"], layouts["orion"]
    client.force_login(alice)
    day = days_ahead(1, 9).date().isoformat()
    html = client.post(f"/rooms/{atlas.pk}/book/", {
        "subject": "Workshop", "date": day, "start_time": "14:30", "end_time": "15:30", "arrangement": layouts["u_shape"].pk,
    }).content.decode()
    assert "Book Orion (12 seats, U-shape for 10) at the same time" in html and "Cosmos" not in html.split('id="alternatives"')[1].split("</section>")[0]
    assert f'name="arrangement" value="{layouts["orion_u"].pk}"' in html
    response = client.post(f"/rooms/{orion.pk}/book/", {"subject": "Workshop", "date": day, "start_time": "14:30", "end_time": "15:30",
                                                         "arrangement": layouts["orion_u"].pk})
    assert response.status_code == 302
    assert Reservation.objects.get(subject="Workshop").arrangement == layouts["orion_u"]
