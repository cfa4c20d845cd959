"""Issue 14's page-speed work: the room finder, a room's week and a building's day grid cost a
fixed, small number of queries however many rooms, reservations, floors or equipment there
are (no N+1); the filter lists come from the shared cache (workplace/catalogue.py) and follow
every edit of the directory; the one-query pagination behaves like Django's."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations.models import Reservation
from tests.factories import (
    BERLIN,
    BuildingFactory,
    EquipmentFactory,
    FloorFactory,
    ReservationFactory,
    RoomFactory,
    days_ahead,
)
from workplace import catalogue
from workplace.models import Arrangement, Building, Equipment, Floor, Room

pytestmark = pytest.mark.django_db

# What each page costs once the filter lists are cached: the session, the user (with their
# profile), then per page ...
FINDER_QUERIES = 5  # ... the page of rooms with the total, their bookings, the provider
WEEK_QUERIES = 5  # ... the room, its week's reservations, the provider
GRID_QUERIES = 5  # ... the page of rooms with the total, their reservations, the provider


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def warm(alice_client, django_capture_on_commit_callbacks):
    """Draw a page once with its transaction's commit hooks run (the test's transaction never
    commits): the catalogue is then in the shared cache, as on a live site after the first page."""

    def draw(url, params=None):
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.get(url, params or {})
        assert response.status_code == 200
        return response

    return draw


def _rooms(building, count, *, floors=(), equipment=(), day=None, offset=0):
    """``count`` rooms with equipment, two layouts and three bookings on the day viewed
    (``day``, else tomorrow: a test seeding in steps passes the day it views, so a step after
    midnight still books it)."""
    day = day or days_ahead(1, 9).date()
    for index in range(offset, offset + count):
        room = RoomFactory(building=building, floor=floors[index % len(floors)] if floors else None,
                           name=f"{building.code} room {index:03}", capacity=4 + index % 9,
                           equipment=list(equipment), arrangements=["Boardroom"], synced=index % 2 == 0)
        for hour in (9, 11, 15):
            start = dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN)
            ReservationFactory(room=room, start=start, end=start + dt.timedelta(hours=1))


def _queries(client, url, params) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured), text(response)


@pytest.mark.parametrize("params", [
    {},
    {"building": "hq"},
    {"building": "hq", "free_from": "10:00", "free_to": "11:00"},
    {"equipment": ["projector", "screen"], "capacity": "6", "arrangement": "Boardroom"},
    {"page": "3"},
])
def test_the_finder_costs_the_same_few_queries_for_3_rooms_or_80(alice_client, warm, hq, projector, params):
    screen = EquipmentFactory(slug="screen", name="Screen")
    floors = [FloorFactory(building=hq, name=f"Level {n}", level=n) for n in range(4)]
    other = BuildingFactory(name="Annex", code="annex")
    day = days_ahead(1, 9).date()
    _rooms(hq, 3, floors=floors, equipment=[projector, screen], day=day)
    params = {"date": day.isoformat(), **params}
    warm("/", params)
    few, _ = _queries(alice_client, "/", params)

    _rooms(hq, 50, floors=floors, equipment=[projector, screen], offset=3, day=day)
    _rooms(other, 27, equipment=[projector], day=day)
    warm("/", params)  # the directory changed: the lists are read again once
    with CaptureQueriesContext(connection) as captured_many:
        many, page = _queries(alice_client, "/", params)

    assert many <= FINDER_QUERIES, [q["sql"][:150] for q in captured_many]
    if "page" in params:  # 3 rooms have no page 3: the last page is shown, at the cost of a count and its rows
        assert few == FINDER_QUERIES + 2
    else:
        assert few == many
    assert page.count('class="room card"') == 25
    # Every row drawn shows its own bookings, equipment and layouts (the names from the cached catalogue).
    assert page.count('class="block') == 25 * 3
    assert page.count("Layouts:</span> Default, Boardroom") == 25
    assert page.count("Equipment:</span> Projector") == 25


def test_the_week_and_the_day_grid_cost_a_fixed_number_of_queries(alice_client, warm, hq, projector):
    floors = [FloorFactory(building=hq, name=f"Level {n}", level=n) for n in range(3)]
    _rooms(hq, 40, floors=floors, equipment=[projector])
    room = Room.objects.filter(building=hq).order_by("pk").first()
    for day in range(1, 6):
        for hour in (8, 13, 17):
            ReservationFactory(room=room, start=days_ahead(day, hour), end=days_ahead(day, hour + 1))
    day = days_ahead(1, 9).date().isoformat()

    warm(f"/rooms/{room.pk}/week/", {"week": day})
    queries, page = _queries(alice_client, f"/rooms/{room.pk}/week/", {"week": day})
    first = days_ahead(1, 0)
    monday = first - dt.timedelta(days=first.weekday())
    in_week = Reservation.objects.filter(room=room, start__gte=monday, start__lt=monday + dt.timedelta(days=7)).count()
    assert queries <= WEEK_QUERIES and in_week >= 3 and page.count('class="busy') == in_week  # one-hour bookings, one cell each

    for params in ({"building": "hq", "date": day}, {"building": "hq", "date": day, "page": "2"},
                   {"building": "hq", "date": day, "floor": floors[1].pk}):
        warm("/calendar/", params)
        queries, page = _queries(alice_client, "/calendar/", params)
        assert queries <= GRID_QUERIES, params
        expected = 13 if "floor" in params else 15 if "page" in params else 25  # 40 rooms on 3 floors
        assert page.count("<tr data-room=") == expected


def test_the_finders_filter_lists_follow_every_edit_of_the_directory(alice_client, warm, hq, atlas):
    """The lists are cached: an added, renamed or deleted building, floor, equipment or layout
    shows on the next page all the same (the edit's signals move the catalogue's version)."""
    assert "Annex" not in text(warm("/"))
    annex = BuildingFactory(name="Annex", code="annex")
    floor = FloorFactory(building=annex, name="Mezzanine")
    EquipmentFactory(slug="hologram", name="Hologram")
    RoomFactory(building=annex, floor=floor, name="Nook", arrangements=["Standing"])
    page = text(warm("/"))
    assert '<option value="annex">Annex</option>' in page
    assert f'<option value="{floor.pk}">Annex / Mezzanine</option>' in page
    assert 'value="hologram"' in page and '<option value="Standing">Standing</option>' in page
    # The finder filters by what it lists, checked against the same cached lists.
    page = text(warm("/", {"building": "annex", "floor": floor.pk, "equipment": "hologram"}))
    assert "0 rooms" in page and "field-error" not in page
    # A room's equipment and layouts, as its row lists them, follow their edits too.
    nook = Room.objects.get(name="Nook")
    nook.equipment.add(Equipment.objects.get(slug="hologram"))
    Arrangement.objects.create(room=nook, name="Cabaret")
    page = text(warm("/", {"building": "annex"}))
    assert "1 room" in page and "Equipment:</span> Hologram</span>" in page
    assert "Layouts:</span> Default, Cabaret, Standing</span>" in page
    nook.equipment.clear()
    page = text(warm("/", {"building": "annex"}))
    assert "Equipment:" not in page.split('id="rooms"')[1]

    annex.name = "East wing"
    annex.save()
    floor.name = "Attic"
    floor.save()
    empty = FloorFactory(building=annex, name="Basement")
    assert "Annex / Mezzanine" not in text(warm("/")) and "East wing / Basement" in text(warm("/"))
    empty.delete()
    Equipment.objects.get(slug="hologram").delete()
    Arrangement.objects.filter(name="Standing").delete()
    page = text(warm("/"))
    assert "East wing" in page and ">Annex<" not in page
    assert "East wing / Attic" in page and "Basement" not in page
    assert "hologram" not in page and "Standing" not in page
    # A removed choice is a form error, not a 500.
    page = text(alice_client.get("/", {"equipment": "hologram"}))
    assert "field-error" in page or "Check the filters" in page


def test_a_cached_catalogue_read_before_an_edit_commits_is_not_served_after_it(hq, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert [b.code for b in catalogue.catalogue().buildings] == ["hq"]
    stale = catalogue.catalogue()  # served from the cache
    assert [b.code for b in stale.buildings] == ["hq"]
    with django_capture_on_commit_callbacks(execute=True):
        BuildingFactory(name="Annex", code="annex")
        # Read inside the editing transaction, before its commit: not shared.
        inside = catalogue.catalogue()
    assert {b.code for b in inside.buildings} == {"hq", "annex"}
    assert {b.code for b in catalogue.catalogue().buildings} == {"hq", "annex"}


def test_the_day_grid_lists_only_buildings_with_reservable_rooms(alice_client, warm, hq, atlas):
    store = BuildingFactory(name="Storage", code="storage")
    closet = RoomFactory(building=store, name="Closet", reservable=False)
    page = text(warm("/calendar/"))
    assert 'value="storage"' not in page
    closet.reservable = True
    closet.save()
    page = text(warm("/calendar/"))
    assert '<option value="storage">Storage</option>' in page


@pytest.mark.parametrize(("asked", "shown"), [("1", 1), ("2", 2), ("4", 4), ("5", 4), ("999", 4), ("0", 1), ("x", 1), ("", 1)])
def test_finder_pages_as_django_paginates_them(alice_client, warm, hq, asked, shown):
    for index in range(80):
        RoomFactory(building=hq, name=f"Room {index:03}")
    page = text(warm("/", {"building": "hq", "page": asked}))
    assert re.search(r'id="results-title" class="h3">80 rooms', page)
    assert f"Page {shown} of 4" in page
    assert page.count('class="room card"') == (5 if shown == 4 else 25)
    first = 25 * (shown - 1)
    assert f">Room {first:03}</h3>" in page


def test_a_finder_page_beyond_the_rooms_matching_shows_the_empty_state(alice_client, warm, hq):
    page = text(warm("/", {"building": "hq", "page": "3", "capacity": "500"}))
    assert "0 rooms" in page and "No room matches these filters" in page


def test_rooms_added_around_the_signals_still_draw_from_the_database(alice_client, warm, hq, atlas):
    """Lists cached before a building, floor and room were written with bulk_create (no signals):
    the finder and the grid read what the cached lists lack instead of failing."""
    warm("/")
    warm("/calendar/", {"building": "hq"})
    (annex,) = Building.objects.bulk_create([Building(name="Annex", code="annex", timezone="Europe/Berlin")])
    (loft,) = Floor.objects.bulk_create([Floor(building=hq, name="Loft", level=9)])
    Room.objects.bulk_create([Room(building=annex, name="Shed", capacity=3), Room(building=hq, floor=loft, name="Perch", capacity=2)])
    page = text(alice_client.get("/"))
    assert ">Shed</h3>" in page and "Annex" in page and ">Perch</h3>" in page and "HQ · Loft" in page
    page = text(alice_client.get("/calendar/", {"building": "hq"}))
    assert "Perch" in page and "· Loft" in page
