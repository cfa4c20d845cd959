"""The calendars to book from (issue 14, item 4) through Django's test client: a building's
day grid (rooms as rows, half hours as columns) and a room's week — who sees which subject,
free slots as links to the prefilled booking form, floor filter, bad input, and query counts
that don't grow with the number of rooms or reservations."""

import datetime as dt
import html
import re

import pytest

from tests.factories import BERLIN, FloorFactory, ReservationFactory, RoomFactory, days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def text(response) -> str:
    return response.content.decode()


def test_day_grid_busy_blocks_and_free_links(alice_client, alice, bob, atlas, dojo):
    day = days_ahead(2, 9).date()
    ReservationFactory(room=atlas, requested_by=alice, requested_for=alice, subject="Alice's planning",
                       start=days_ahead(2, 9), end=days_ahead(2, 10, 30))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="Bob's secret",
                       start=days_ahead(2, 14), end=days_ahead(2, 15))
    response = alice_client.get("/calendar/", {"building": "hq", "date": day.isoformat()})
    page = text(response)
    assert response.status_code == 200
    assert "Alice&#x27;s planning" in page and "Bob&#x27;s secret" not in page and ">Busy<" in page
    # Alice's block spans three half hours and opens her reservation.
    assert re.search(r'<td class="busy mine" colspan="3" data-slot="4"', page)
    # A free slot is a link to the booking form for that half hour.
    link = html.unescape(re.search(r'href="([^"]+)" aria-label="Book Atlas, 11:00–11:30"', page).group(1))
    assert link == f"/rooms/{atlas.pk}/book/?date={day.isoformat()}&start=11:00&end=11:30"
    assert 'aria-label="Book Dojo, 14:00–14:30"' not in page


def test_a_room_that_shows_subjects_shows_them_to_everyone(alice_client, bob, dojo):
    dojo.show_subjects = True
    dojo.save()
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="Open offsite",
                       start=days_ahead(2, 14), end=days_ahead(2, 15))
    day = days_ahead(2, 9).date().isoformat()
    assert "Open offsite" in text(alice_client.get("/calendar/", {"building": "hq", "date": day}))
    assert "Open offsite" in text(alice_client.get(f"/rooms/{dojo.pk}/week/", {"week": day}))


def test_the_booking_form_opens_with_the_slot(alice_client, atlas):
    day = days_ahead(2, 9).date().isoformat()
    page = text(alice_client.get(f"/rooms/{atlas.pk}/book/", {"date": day, "start": "11:00", "end": "13:00"}))
    assert 'value="11:00"' in page and 'value="13:00"' in page and f'value="{day}"' in page


def test_day_grid_floor_filter_and_defaults(alice_client, hq, atlas, dojo):
    response = alice_client.get("/calendar/")
    assert response.status_code == 200 and "Atlas" in text(response) and "Dojo" in text(response)
    ground = atlas.floor
    page = text(alice_client.get("/calendar/", {"building": "hq", "floor": ground.pk}))
    # The rooms' rows, not their free cells: today's are all past in the evening.
    assert f'<tr data-room="{atlas.pk}"' in page and f'<tr data-room="{dojo.pk}"' not in page


@pytest.mark.parametrize("params", [
    {"building": "nowhere"}, {"date": "2026-02-30"}, {"date": "9999-12-31"}, {"floor": "x"}, {"page": "999"},
    {"building": "hq", "floor": "999999"}, {"date": "\x00"},
])
def test_day_grid_bad_input_is_a_message_not_a_500(alice_client, atlas, params):
    response = alice_client.get("/calendar/", params)
    assert response.status_code == 200


def test_a_floor_of_another_building_is_refused(alice_client, atlas):
    other = FloorFactory(name="Elsewhere")
    page = text(alice_client.get("/calendar/", {"building": "hq", "floor": other.pk}))
    assert "Check the choices above" in page and "Book Atlas" not in page


def test_day_grid_queries_do_not_grow_with_rooms(alice_client, hq, django_assert_max_num_queries, django_capture_on_commit_callbacks):
    floor = FloorFactory(building=hq, name="2nd", level=2)
    for index in range(30):
        room = RoomFactory(building=hq, floor=floor, name=f"Room {index:02}")
        for hour in (9, 11, 15):
            ReservationFactory(room=room, start=days_ahead(1, hour), end=days_ahead(1, hour + 1))
    day = days_ahead(1, 9).date().isoformat()
    with django_capture_on_commit_callbacks(execute=True):  # a first page caches the building and floor lists
        alice_client.get("/calendar/", {"building": "hq", "date": day})
    with django_assert_max_num_queries(5):
        response = alice_client.get("/calendar/", {"building": "hq", "date": day})
    assert text(response).count('class="busy') == 25 * 3  # the first page of 25 rooms


def test_week_queries_do_not_grow_with_reservations(alice_client, dojo, django_assert_max_num_queries):
    for n in range(7):
        for hour in (8, 10, 13, 16):
            ReservationFactory(room=dojo, start=days_ahead(n + 1, hour), end=days_ahead(n + 1, hour + 1))
    with django_assert_max_num_queries(5):
        response = alice_client.get(f"/rooms/{dojo.pk}/week/", {"week": days_ahead(1, 9).date().isoformat()})
    assert response.status_code == 200 and text(response).count('class="busy') >= 4


def test_the_finder_links_to_the_day_grid(alice_client, atlas):
    day = dt.datetime.now(BERLIN).date().isoformat()
    page = text(alice_client.get("/", {"date": day, "building": "hq"}))
    assert f'href="/calendar/?date={day}&amp;building=hq"' in page
