"""The finder's page of rooms is one hand-written statement on PostgreSQL
(``portal_selectors.finder_page``, issue 14's speed target): it must list exactly the rooms the
ORM's ``selectors.room_list_available`` lists, in its order, with Paginator's page numbers and
counts, for every filter and their combinations; elsewhere (SQLite) it runs the ORM's query."""

import datetime as dt
import itertools

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import portal_selectors
from reservations.selectors import room_list_available
from tests.factories import (
    BuildingFactory,
    EquipmentFactory,
    FloorFactory,
    ReservationFactory,
    RoomFactory,
    days_ahead,
)
from workplace import catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture
def rooms():
    """Two buildings (names out of code order), floors, rooms with equipment, layouts (mixed case),
    capacities, a not reservable one, reservations active and cancelled around 10:00–11:00."""
    north, south = BuildingFactory(code="n", name="Zeta North"), BuildingFactory(code="s", name="Alpha South")
    ground, top = FloorFactory(building=north, name="Ground", level=0), FloorFactory(building=north, name="Top", level=4)
    projector, screen, phone = (EquipmentFactory(slug="projector"), EquipmentFactory(slug="screen"),
                                EquipmentFactory(slug="phone"))
    kits = ((), (projector,), (projector, screen), (screen, phone), (projector, screen, phone))
    layouts = ((), ("Boardroom",), ("boardroom", "Theatre"), ("Theatre",))
    made = []
    for index in range(23):
        made.append(RoomFactory(
            building=(north, south)[index % 2], floor=(ground, top, None)[index % 3] if index % 2 == 0 else None,
            name=f"Room {(index * 7) % 23:02d}",  # names out of creation order
            capacity=2 + (index * 5) % 17, equipment=kits[index % len(kits)], arrangements=layouts[index % len(layouts)],
            sync_enabled=index % 4 == 0, mailbox=f"r{index}@contoso.example" if index % 3 == 0 else ""))
    RoomFactory(building=north, name="Closed", reservable=False, equipment=(projector,))
    ten = days_ahead(1, 10)
    for index, room in enumerate(made[:9]):
        start = ten + dt.timedelta(minutes=(-90, -60, -30, 0, 30, 59, 60, 15, 0)[index])
        ReservationFactory(room=room, start=start, end=start + dt.timedelta(minutes=60),
                           state=("confirmed", "awaiting_confirmation", "cancelled", "confirmed", "awaiting_confirmation",
                                  "rejected", "confirmed", "conflicted", "released")[index])
    return {"north": north, "south": south, "ground": ground, "top": top, "ten": ten, "made": made}


def _filter_sets(rooms):
    ten = rooms["ten"]
    values = {
        "building": (None, rooms["north"], rooms["south"]),
        "floor": (None, rooms["ground"]),
        "capacity_min": (None, 8),
        "equipment": ((), ("projector",), ("projector", "screen"), ("screen", "projector", "screen")),
        "arrangement": (None, "BOARDROOM", "theatre"),
        "free": (None, (ten, ten + dt.timedelta(hours=1))),
    }
    for combo in itertools.product(*values.values()):
        filters = dict(zip(values, combo, strict=True))
        free = filters.pop("free")
        filters["free_from"], filters["free_to"] = free or (None, None)
        yield filters


def _expected(filters, per_page, number):
    """Paginator's page (a bad number the first, one past the end the last), below 1 the first (as the grids)."""
    orm = room_list_available(**filters).order_by("building__name", "name", "pk")
    return Paginator(list(orm), per_page).get_page(1 if number == "-1" else number)


def test_the_page_of_rooms_agrees_with_the_orm(rooms):
    listed = catalogue.catalogue()
    checked = 0
    nonempty = 0
    for filters in _filter_sets(rooms):
        for number in ("1", "2", None, "x", "-1", "99"):
            expected = _expected(filters, 4, number)
            page, got = portal_selectors.finder_page(listed=listed, per_page=4, number=number, **filters)
            assert (page.number, page.paginator.count, page.paginator.num_pages) == (
                expected.number, expected.paginator.count, expected.paginator.num_pages), (filters, number)
            assert [r.pk for r in got] == [r.pk for r in expected.object_list], (filters, number)
            for mine, theirs in zip(got, expected.object_list, strict=True):
                assert (mine.name, mine.capacity, mine.building_id, mine.floor_id, mine.is_synced, mine.mailbox) == (
                    theirs.name, theirs.capacity, theirs.building_id, theirs.floor_id, theirs.is_synced, theirs.mailbox)
                assert mine.building.pk == theirs.building_id
                assert (mine.floor.pk if mine.floor else None) == theirs.floor_id
            checked += 1
            nonempty += bool(got)
    # The filter sets really narrow and really list (a set matching nothing everywhere would agree trivially).
    assert checked == 3 * 2 * 2 * 4 * 3 * 2 * 6
    assert nonempty > checked // 3


def test_free_between_leaves_out_only_rooms_with_an_active_overlap(rooms):
    ten = rooms["ten"]
    page, got = portal_selectors.finder_page(listed=catalogue.catalogue(), per_page=100, number=1,
                                             free_from=ten, free_to=ten + dt.timedelta(hours=1))
    all_page, everything = portal_selectors.finder_page(listed=catalogue.catalogue(), per_page=100, number=1)
    assert all_page.paginator.count == 23
    # 10:00–11:00 overlaps rooms 0–8's reservations at 08:30, 09:00 (ends 10:00: touching), 09:30
    # (cancelled), 10:00, 10:30 (awaiting), 10:59 (rejected), 11:00 (touching), 10:15 (conflicted),
    # 10:00 (released): busy are the confirmed, awaiting and conflicted overlaps.
    busy = {rooms["made"][i].pk for i in (3, 4, 7)}
    assert {r.pk for r in everything} - {r.pk for r in got} == busy
    assert page.paginator.count == 20


def test_one_query_for_a_page_and_three_past_the_end(rooms, django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("the hand-written statement runs on PostgreSQL; the ORM's elsewhere")
    listed = catalogue.catalogue()
    with CaptureQueriesContext(connection) as one:
        portal_selectors.finder_page(listed=listed, per_page=4, number="2", building=rooms["north"], equipment=["projector"])
    assert len(one) == 1
    with CaptureQueriesContext(connection) as past:
        page, got = portal_selectors.finder_page(listed=listed, per_page=4, number="99")
    assert len(past) == 3 and page.number == page.paginator.num_pages and got
    with CaptureQueriesContext(connection) as none:
        page, got = portal_selectors.finder_page(listed=listed, per_page=4, number="1", capacity_min=1000)
    assert len(none) == 2 and (page.number, page.paginator.count, got) == (1, 0, [])


def test_without_postgresql_the_orm_gives_the_same_page(rooms, monkeypatch):
    listed = catalogue.catalogue()
    filters = {"building": rooms["north"], "equipment": ["projector"], "free_from": rooms["ten"],
               "free_to": rooms["ten"] + dt.timedelta(hours=1)}
    sql_page, sql_rooms = portal_selectors.finder_page(listed=listed, per_page=2, number="2", **filters)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    orm_page, orm_rooms = portal_selectors.finder_page(listed=listed, per_page=2, number="2", **filters)
    assert sql_rooms == orm_rooms
    assert (sql_page.number, sql_page.paginator.count) == (orm_page.number, orm_page.paginator.count)


def test_a_building_added_after_the_lists_were_read_is_read_from_the_database(rooms):
    listed = catalogue.catalogue()
    late = BuildingFactory(code="late", name="Late")
    room = RoomFactory(building=late, name="New")
    page, got = portal_selectors.finder_page(listed=listed, per_page=50, number=1, building=late)
    assert [(r.pk, r.building.name) for r in got] == [(room.pk, "Late")]
