"""The building's week to book from (issue 14, item 4) through Django's test client: rooms as
rows, each weekday's working hours as columns — who sees which subject, half-hour precision
inside an hour column, merged busy blocks, free hours as links to the prefilled booking form,
floor and weekend choices, week navigation, bad input, and one query for the busy intervals
of all rooms whatever their number."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import building_week
from reservations.models import ACTIVE_STATES, Reservation
from tests.factories import (
    BERLIN,
    BuildingFactory,
    FloorFactory,
    ReservationFactory,
    RoomFactory,
    UserFactory,
)
from tests.grid_pages import at, cell_at, cells, link_of, next_monday, row_of

pytestmark = pytest.mark.django_db

# Most of these tests were written for a week of 08:00–18:00 hour columns: HQ keeps those hours
# here (Building.day_starts/day_ends); tests/reservations/test_portal_building_hours.py has the
# default 07:00–21:00 and other hours.
WORK = (8 * 60, 18 * 60)


@pytest.fixture
def hq(db):
    return BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin", day_starts=dt.time(8), day_ends=dt.time(18))


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def monday():
    return next_monday()


def get(client, **params) -> str:
    response = client.get("/calendar/week/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_rooms_as_rows_and_the_working_week_as_columns(alice_client, atlas, dojo, monday):
    page = get(alice_client, building="hq", date=(monday + dt.timedelta(days=3)).isoformat())  # a Thursday: its week
    assert "week of " + f"{monday.day} {monday:%b %Y}" in page
    for room in (atlas, dojo):
        row = row_of(page, room)
        assert len(cells(row)) == 5 * 10  # Monday to Friday, 08:00–18:00 in hour columns, all free
        assert all('class="free' in c for c in cells(row))
    friday = monday + dt.timedelta(days=4)
    last = cell_at(row_of(page, dojo), 49)
    assert link_of(last) == f"/rooms/{dojo.pk}/book/?date={friday.isoformat()}&start=17:00&end=18:00"
    assert f'aria-label="Book Dojo, Fri {friday.day} {friday:%b}, 17:00–18:00"' in last
    # Each day's heading opens that day's half-hour grid.
    assert f'href="/calendar/?building=hq&amp;date={monday.isoformat()}"' in page


def test_the_whole_week_with_the_weekend(alice_client, dojo, monday):
    page = get(alice_client, building="hq", date=monday.isoformat(), days="7")
    row = row_of(page, dojo)
    assert len(cells(row)) == 70
    sunday = monday + dt.timedelta(days=6)
    assert link_of(cell_at(row, 60)) == f"/rooms/{dojo.pk}/book/?date={sunday.isoformat()}&start=08:00&end=09:00"
    # The navigation keeps the choice; the filter form carries it along.
    assert f'?building=hq&amp;date={(monday + dt.timedelta(days=7)).isoformat()}&amp;days=7" rel="next"' in page
    assert '<input type="hidden" name="days" value="7">' in page
    assert '>Mon–Sun</a>' in page and 'aria-current="page">Mon–Sun' in page
    assert len(cells(row_of(get(alice_client, building="hq", date=monday.isoformat(), days="x"), dojo))) == 50


def test_who_sees_which_subject(client, alice, bob, admin, atlas, dojo, monday):
    ReservationFactory(room=atlas, requested_by=alice, requested_for=alice, subject="Alice's planning",
                       start=at(monday, 9), end=at(monday, 11))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="Bob's secret",
                       start=at(monday, 14), end=at(monday, 15))
    client.force_login(alice)
    page = get(client, building="hq", date=monday.isoformat())
    mine = cell_at(row_of(page, atlas), 1)
    # Alice's two hours are one block that opens her reservation.
    assert 'class="busy mine" data-slot="1" data-day="0" colspan="2" data-span="2"' in mine
    assert "Alice&#x27;s planning" in mine and "/reservations/" in mine and "09:00–11:00" in mine
    bobs = cell_at(row_of(page, dojo), 6)
    assert "Bob&#x27;s secret" not in page and "<span>Busy</span>" in bobs and "/reservations/" not in bobs
    assert 'aria-label="Book Dojo, ' not in bobs
    # Staff see every subject; a room that shows subjects shows them to everyone.
    client.force_login(admin)
    assert "Bob&#x27;s secret" in get(client, building="hq", date=monday.isoformat())
    dojo.show_subjects = True
    dojo.save()
    client.force_login(UserFactory(username="carol"))
    page = get(client, building="hq", date=monday.isoformat())
    assert "Bob&#x27;s secret" in page and "Alice&#x27;s planning" not in page


def test_half_hours_inside_an_hour_column(alice_client, bob, dojo, monday):
    tuesday = monday + dt.timedelta(days=1)
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="Standup",
                       start=at(tuesday, 9, 30), end=at(tuesday, 10, 30))
    row = row_of(get(alice_client, building="hq", date=monday.isoformat()), dojo)
    nine, ten = cell_at(row, 11), cell_at(row, 12)
    assert 'class="part busy-half open-start"' in nine and 'class="part busy-half open-end"' in ten
    assert link_of(nine) == f"/rooms/{dojo.pk}/book/?date={tuesday.isoformat()}&start=09:00&end=09:30"
    assert link_of(ten) == f"/rooms/{dojo.pk}/book/?date={tuesday.isoformat()}&start=10:30&end=11:00"
    assert 'title="Busy, 09:30–10:30"' in nine and "Standup" not in row
    assert 'class="free' in cell_at(row, 13)


def test_back_to_back_and_overlapping_hours(alice_client, alice, bob, dojo, monday):
    ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject="First",
                       start=at(monday, 13), end=at(monday, 13, 30))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="Second",
                       start=at(monday, 13, 30), end=at(monday, 16))
    row = row_of(get(alice_client, building="hq", date=monday.isoformat()), dojo)
    one = cell_at(row, 5)  # 13:00: two reservations, no free half: a busy cell, the first one named
    assert 'class="busy mine"' in one and "First" in one and "colspan" not in one
    rest = cell_at(row, 6)  # 14:00–16:00: the second one's two full hours merged
    assert 'colspan="2"' in rest and "<span>Busy</span>" in rest and "13:30–16:00" in rest
    assert 'class="free' in cell_at(row, 8)


def test_outside_working_hours_cancelled_and_other_rooms_are_not_drawn(alice_client, bob, atlas, dojo, monday):
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, start=at(monday, 6), end=at(monday, 8))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, start=at(monday, 18), end=at(monday, 20))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, start=at(monday, 10), end=at(monday, 11), state="cancelled")
    ReservationFactory(room=atlas, requested_by=bob, requested_for=bob, start=at(monday, 10), end=at(monday, 11))
    page = get(alice_client, building="hq", date=monday.isoformat())
    assert all('class="free' in c for c in cells(row_of(page, dojo)))
    assert 'class="busy' in cell_at(row_of(page, atlas), 2)


def test_a_reservation_over_several_days(alice_client, bob, dojo, monday):
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, start=at(monday, 16), end=at(monday + dt.timedelta(days=1), 9, 30))
    row = row_of(get(alice_client, building="hq", date=monday.isoformat()), dojo)
    assert 'colspan="2"' in cell_at(row, 8) and "Mon 16:00–Tue 09:30" in cell_at(row, 8)
    assert 'class="busy' in cell_at(row, 10)  # Tuesday 08:00–09:00
    assert 'open-end' in cell_at(row, 11)  # Tuesday 09:30–10:00 free


def test_past_hours_and_the_current_half_hour(alice, atlas):
    """The hours gone are not offered; in the current hour the half still to come is."""
    monday = next_monday()
    now = at(monday, 10, 40)
    rows = building_week.week_rows(rooms=[atlas], days=building_week.week_days(monday, 5), tz=BERLIN, user=alice, now=now,
                                    span=WORK)
    row = str(rows[0]["html"])
    assert 'class="past day-start" data-slot="0" data-day="0" colspan="2" data-span="2"' in row  # 08:00–10:00 over
    ten = cell_at(row, 2)
    assert 'class="part open-end"' in ten and link_of(ten).endswith("start=10:30&end=11:00")
    assert 'class="free' in cell_at(row, 3) and 'class="free day-start' in cell_at(row, 10)


def test_a_week_changing_to_summer_time(alice, bob):
    """Working hours are wall-clock hours in the building's zone, on a DST Sunday too."""
    hq = BuildingFactory(name="DST", code="dst", timezone="Europe/Berlin")
    room = RoomFactory(building=hq, name="Summer")
    monday = dt.date(2027, 3, 22)  # Sunday 28 March 2027: clocks go forward at 02:00
    sunday = monday + dt.timedelta(days=6)
    ReservationFactory(room=room, requested_by=bob, requested_for=bob, start=at(sunday, 9), end=at(sunday, 10))
    row = str(building_week.week_rows(rooms=[room], days=building_week.week_days(monday, 7), tz=BERLIN, user=alice,
                                      now=at(monday, 0), span=WORK)[0]["html"])
    assert 'class="busy' in cell_at(row, 61) and "09:00–10:00" in cell_at(row, 61)
    assert link_of(cell_at(row, 62)).endswith(f"date={sunday.isoformat()}&start=10:00&end=11:00")


def test_subjects_are_escaped(alice_client, alice, dojo, monday):
    ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject='<script>alert("x")</script>',
                       start=at(monday, 9), end=at(monday, 10))
    page = get(alice_client, building="hq", date=monday.isoformat())
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_control_characters_in_a_subject_or_name_do_not_become_links(alice_client, alice, hq, monday):
    """A row's cells carry marks for the room's booking URL and name until the row is joined
    (reservations/building_week.py): a subject or a room name holding those characters (Outlook
    and imports can send them) shows without them, and only the room's own links are written."""
    from tests.factories import RoomFactory

    odd = RoomFactory(building=hq, name="Odd\x01Room")
    ReservationFactory(room=odd, requested_by=alice, requested_for=alice, subject="Plan\x01ning",
                       start=at(monday, 9), end=at(monday, 10) + dt.timedelta(minutes=30))
    row = row_of(get(alice_client, building="hq", date=monday.isoformat()), odd)
    assert "\x00" not in row and "\x01" not in row
    assert 'title="Planning, 09:00–10:30"' in cell_at(row, 1)
    assert "Planning" in cell_at(row, 2) and link_of(cell_at(row, 2)).endswith(f"date={monday.isoformat()}&start=10:30&end=11:00")
    assert 'aria-label="Book OddRoom, ' in cell_at(row, 3)
    assert link_of(cell_at(row, 3)).startswith(f"/rooms/{odd.pk}/book/")


def test_floor_filter_and_defaults(alice_client, hq, atlas, dojo):
    # The rooms' rows, not their free cells: this week's cells are all past on a Friday evening.
    def drawn(page, room):
        return f'<tr data-room="{room.pk}"' in page

    page = get(alice_client)
    assert drawn(page, atlas) and drawn(page, dojo)
    page = get(alice_client, building="hq", floor=atlas.floor_id)
    assert drawn(page, atlas) and not drawn(page, dojo)


def test_navigation_between_weeks_and_to_the_day_grid(alice_client, atlas, monday):
    page = get(alice_client, building="hq", floor=atlas.floor_id, date=monday.isoformat())
    previous, following = monday - dt.timedelta(days=7), monday + dt.timedelta(days=7)
    assert f'href="?building=hq&amp;floor={atlas.floor_id}&amp;date={previous.isoformat()}" rel="prev"' in page
    assert f'href="?building=hq&amp;floor={atlas.floor_id}&amp;date={following.isoformat()}" rel="next"' in page
    day_grid = alice_client.get("/calendar/", {"building": "hq", "date": (monday + dt.timedelta(days=2)).isoformat()}).content.decode()
    wednesday = (monday + dt.timedelta(days=2)).isoformat()
    assert f'href="/calendar/week/?building=hq&amp;date={wednesday}" id="week-view-link"' in day_grid


@pytest.mark.parametrize("params", [
    {"building": "nowhere"}, {"date": "2026-02-30"}, {"date": "9999-12-31"}, {"date": "0001-01-01"}, {"floor": "x"},
    {"page": "999"}, {"building": "hq", "floor": "999999"}, {"date": "\x00"}, {"days": "\x00"}, {"page": "-1"},
])
def test_bad_input_is_a_message_not_a_500(alice_client, atlas, params):
    get(alice_client, **params)


def test_a_floor_of_another_building_is_refused(alice_client, atlas):
    other = FloorFactory(name="Elsewhere")
    page = get(alice_client, building="hq", floor=other.pk)
    assert "Check the choices above" in page and "Book Atlas" not in page


def test_signed_out_people_are_sent_to_sign_in(client, atlas):
    response = client.get("/calendar/week/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post("/calendar/week/").status_code in (302, 405)


def _queries(client, params, capture_on_commit) -> list[str]:
    """The queries of drawing the page, the shared cache warm (the building and floor lists,
    workplace.catalogue, cached once the first page's commit hooks run, as on a live site)."""
    with capture_on_commit(execute=True):
        assert client.get("/calendar/week/", params).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/calendar/week/", params).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_one_query_for_the_busy_intervals_of_all_rooms(alice_client, hq, monday, django_capture_on_commit_callbacks):
    floor = FloorFactory(building=hq, name="2nd", level=2)
    rooms = [RoomFactory(building=hq, floor=floor, name=f"Room {index:02}") for index in range(3)]
    for room in rooms:
        ReservationFactory(room=room, start=at(monday, 9), end=at(monday, 10))
    params = {"building": "hq", "date": monday.isoformat(), "days": "7"}
    few = _queries(alice_client, params, django_capture_on_commit_callbacks)
    bob = UserFactory(username="bob")
    more = [RoomFactory(building=hq, floor=floor, name=f"Room {index:02}") for index in range(3, 30)]
    Reservation.objects.bulk_create([
        Reservation(room=room, subject="Half hour", requested_by=bob, requested_for=bob, state="confirmed",
                    start=at(monday + dt.timedelta(days=n), hour), end=at(monday + dt.timedelta(days=n), hour, 30))
        for room in more for n in range(7) for hour in (9, 11, 15)
    ])
    many = _queries(alice_client, params, django_capture_on_commit_callbacks)
    page = alice_client.get("/calendar/week/", params).content.decode()
    # session, user, the page's rooms with their count, one for all reservations, and the header's
    # default provider (base.html; cached too outside a test's transaction); buildings and floors
    # come from the cached catalogue
    assert len(many) == len(few) == 5, "\n".join(many)
    assert sum('"reservations_reservation"' in sql for sql in many) == 1
    assert page.count("<tr data-room=") == 25 and page.count('class="part busy-half open-end') == 22 * 7 * 3 and page.count('<td class="busy') == 3


def test_the_busy_query_agrees_with_the_orm(alice, bob, atlas, dojo, monday):
    """busy_intervals writes its SQL by hand: it must return what the ORM would, states included."""
    tuesday = monday + dt.timedelta(days=1)
    keep = [
        ReservationFactory(room=atlas, requested_by=alice, requested_for=bob, subject="A", start=at(monday, 7), end=at(monday, 8, 30)),
        ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="B", start=at(tuesday, 17, 45), end=at(tuesday, 19),
                           state="awaiting_confirmation"),
    ]
    ReservationFactory(room=dojo, start=at(tuesday, 10), end=at(tuesday, 11), state="cancelled")
    ReservationFactory(room=dojo, start=at(monday, 6), end=at(monday, 8))  # ends as the window opens
    start, end = at(monday, 8), at(monday + dt.timedelta(days=4), 18)
    got = building_week.busy_intervals(rooms=[atlas, dojo], start=start, end=end)
    expected = Reservation.objects.filter(room__in=[atlas, dojo], state__in=ACTIVE_STATES, start__lt=end, end__gt=start)
    assert sorted(b.id for rows in got.values() for b in rows) == sorted(expected.values_list("id", flat=True)) == sorted(r.pk for r in keep)
    a = got[atlas.pk][0]
    assert (a.start, a.end, a.subject, a.requested_by_id, a.requested_for_id) == (keep[0].start, keep[0].end, "A", alice.pk, bob.pk)


def test_the_busy_intervals_without_postgresql_are_the_same(alice, bob, atlas, dojo, monday, monkeypatch):
    """The embedded default (`make run`) is SQLite, which has neither ANY(array) nor EXTRACT(EPOCH):
    busy_intervals reads the same rows through the ORM there (the finder, the day grid and the
    building week all draw from it)."""
    from django.db import connections

    tuesday = monday + dt.timedelta(days=1)
    ReservationFactory(room=atlas, requested_by=alice, requested_for=bob, subject="A", start=at(monday, 7), end=at(monday, 8, 30))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, subject="B", start=at(tuesday, 17, 45), end=at(tuesday, 19),
                       state="awaiting_confirmation")
    ReservationFactory(room=dojo, start=at(tuesday, 10), end=at(tuesday, 11), state="cancelled")
    start, end = at(monday, 8), at(monday + dt.timedelta(days=4), 18)
    on_postgresql = building_week.busy_intervals(rooms=[atlas, dojo], start=start, end=end)
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")
    elsewhere = building_week.busy_intervals(rooms=[atlas, dojo], start=start, end=end)
    assert dict(elsewhere) == dict(on_postgresql) and sum(map(len, elsewhere.values())) == 2


def test_the_busy_intervals_in_a_grids_zone_are_the_same_instants(alice, atlas, monday):
    """The week asks for its busy intervals in the building's zone (no conversion per cell)."""
    ReservationFactory(room=atlas, requested_by=alice, requested_for=alice, start=at(monday, 9, 30), end=at(monday, 11))
    start, end = at(monday, 8), at(monday, 18)
    in_utc = building_week.busy_intervals(rooms=[atlas], start=start, end=end)[atlas.pk]
    local = building_week.busy_intervals(rooms=[atlas], start=start, end=end, tz=BERLIN)[atlas.pk]
    assert [(b.start, b.end) for b in local] == [(b.start, b.end) for b in in_utc] == [(at(monday, 9, 30), at(monday, 11))]
    assert local[0].start.tzinfo is BERLIN and (local[0].start.hour, local[0].start.minute) == (9, 30)


def test_the_page_of_rooms_agrees_with_the_orm(hq):
    """The grids' page of rooms is one hand-written statement (plain SQL: the embedded default's
    SQLite runs it too, tests/workplace/test_embedded_default_pages.py): the ORM's rooms
    (reservable, of the building, of the floor when one is chosen) in its order (floor level,
    floor name, name), its count, Paginator's pages (a bad number the first, one past the end the last)."""
    from django.core.paginator import Paginator

    from reservations.calendar_grid import room_page
    from workplace.models import Room

    top, ground, annex = (FloorFactory(building=hq, name="Top", level=3), FloorFactory(building=hq, name="Ground", level=0),
                          FloorFactory(building=hq, name="Annex", level=0))
    for index in range(7):
        RoomFactory(building=hq, floor=(top, ground, annex)[index % 3], name=f"Room {6 - index}")
    RoomFactory(building=hq, floor=None, name="Floorless")
    RoomFactory(building=hq, floor=ground, name="Closed", reservable=False)
    RoomFactory(building=BuildingFactory(code="elsewhere"), name="Elsewhere")
    floors = [ground, annex, top]
    for floor in (None, ground):
        rooms = Room.objects.filter(building=hq, reservable=True).order_by("floor__level", "floor__name", "name", "pk")
        if floor is not None:
            rooms = rooms.filter(floor=floor)
        for number, shown in (("1", 1), ("2", 2), (None, 1), ("x", 1), ("-3", 1), ("99", None)):
            expected = Paginator(rooms, 3).get_page(shown or 99)
            page, got = room_page(building_id=hq.pk, floor_id=floor.pk if floor else None, floors=floors, per_page=3, number=number)
            assert (page.number, page.paginator.count, page.paginator.num_pages) == (expected.number, expected.paginator.count,
                                                                                      expected.paginator.num_pages)
            assert [(r.pk, r.name, r.capacity, r.floor_id, r.show_subjects) for r in got] == [
                (r.pk, r.name, r.capacity, r.floor_id, r.show_subjects) for r in expected.object_list]
            assert all(r.floor is (floors[[f.pk for f in floors].index(r.floor_id)] if r.floor_id else None) for r in got)
    page, got = room_page(building_id=BuildingFactory(code="empty").pk, floor_id=None, floors=[], per_page=3, number="2")
    assert (page.number, page.paginator.count, got) == (1, 0, [])
