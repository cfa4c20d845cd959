"""The portal's calendar grids over their building's hours (``Building.day_starts`` /
``day_ends``): the day grid, a room's week and the building's week of a plant open 06:00–14:00,
a hospital open around the clock (00:00–24:00, written 00:00–00:00) and days from or to a half
hour — headings, slots, the booking links of the first and last slot, busy runs clipped to the
day, and queries that don't grow with the hours."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BuildingFactory, ReservationFactory, RoomFactory
from tests.grid_pages import at, cell_at, cells, link_of, next_monday, row_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def monday():
    return next_monday()


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def _room(code: str, starts: dt.time, ends: dt.time, name: str):
    building = BuildingFactory(name=code.title(), code=code, timezone="Europe/Berlin", day_starts=starts, day_ends=ends)
    return RoomFactory(building=building, name=name)


@pytest.fixture
def shift():
    """A room of a plant open 06:00–14:00."""
    return _room("plant", dt.time(6), dt.time(14), "Shift")


@pytest.fixture
def ward():
    """A room of a hospital open around the clock."""
    return _room("hospital", dt.time(0), dt.time(0), "Ward")


def get(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def headings(page: str) -> list[tuple[str, int]]:
    head = re.search(r"<thead>.*?</thead>", page, re.S).group(0)
    return [(label, int(span or 1)) for span, label in re.findall(r'<th scope="col"(?: colspan="(\d+)")?>([^<]+)</th>', head)]


# --- the day grid ----------------------------------------------------------------------------


def test_the_day_grid_of_a_plant_open_6_to_14(alice_client, bob, shift, monday):
    ReservationFactory(room=shift, requested_by=bob, requested_for=bob, start=at(monday, 5), end=at(monday, 7))  # from before the opening
    ReservationFactory(room=shift, requested_by=bob, requested_for=bob, start=at(monday, 13, 30), end=at(monday, 15))  # past the close
    page = get(alice_client, "/calendar/", building="plant", date=monday.isoformat())
    assert headings(page) == [(f"{h:02d}:00", 2) for h in range(6, 14)]
    row = row_of(page, shift)
    assert len(re.findall(r'data-slot="\d+"', row)) == 16 - 2 - 1 + 2  # 16 half hours, the runs one cell each
    first, last = cell_at(row, 0), cell_at(row, 15)
    assert 'class="busy" colspan="2" data-slot="0" data-span="2"' in first and "05:00–07:00" in first  # clipped to the day
    assert 'class="busy" data-slot="15" data-span="1"' in last and "13:30–15:00" in last
    assert link_of(cell_at(row, 2)) == f"/rooms/{shift.pk}/book/?date={monday.isoformat()}&start=07:00&end=07:30"
    assert link_of(cell_at(row, 14)) == f"/rooms/{shift.pk}/book/?date={monday.isoformat()}&start=13:00&end=13:30"
    assert "14:00–14:30" not in page and "05:30–06:00" not in page


def test_the_day_grid_of_a_hospital_open_around_the_clock(alice_client, bob, ward, monday):
    ReservationFactory(room=ward, requested_by=bob, requested_for=bob, start=at(monday, 23) - dt.timedelta(days=1),
                       end=at(monday, 1))  # over the night before
    page = get(alice_client, "/calendar/", building="hospital", date=monday.isoformat())
    assert headings(page) == [(f"{h:02d}:00", 2) for h in range(24)]
    row = row_of(page, ward)
    assert 'class="busy" colspan="2" data-slot="0" data-span="2"' in cell_at(row, 0)
    first, last = cell_at(row, 2), cell_at(row, 47)
    assert link_of(first) == f"/rooms/{ward.pk}/book/?date={monday.isoformat()}&start=01:00&end=01:30"
    # The last slot ends at midnight: "00:00" in the link (the booking form's midnight), 24:00 said.
    assert link_of(last) == f"/rooms/{ward.pk}/book/?date={monday.isoformat()}&start=23:30&end=00:00"
    assert 'aria-label="Book Ward, 23:30–24:00"' in last and 'data-start="23:30" data-end="00:00"' in last
    form = get(alice_client, link_of(last).split("?")[0], date=monday.isoformat(), start="23:30", end="00:00")
    assert 'value="23:30"' in form and 'value="00:00"' in form


def test_the_day_grid_of_a_day_from_and_to_a_half_hour(alice_client, monday):
    room = _room("halves", dt.time(6, 30), dt.time(14, 30), "Halves")
    page = get(alice_client, "/calendar/", building="halves", date=monday.isoformat())
    assert headings(page) == [("06:30", 1)] + [(f"{h:02d}:00", 2) for h in range(7, 14)] + [("14:00", 1)]
    row = row_of(page, room)
    assert len(cells(row)) == 16
    assert link_of(cell_at(row, 0)).endswith("start=06:30&end=07:00")
    assert link_of(cell_at(row, 15)).endswith("start=14:00&end=14:30")


def test_the_default_hours_are_todays_grid(alice_client, dojo, monday):
    page = get(alice_client, "/calendar/", building="hq", date=monday.isoformat())
    assert headings(page) == [(f"{h:02d}:00", 2) for h in range(7, 21)]
    row = row_of(page, dojo)
    assert len(cells(row)) == 28 and link_of(cell_at(row, 27)).endswith("start=20:30&end=21:00")


# --- a room's week ---------------------------------------------------------------------------


def week_rows(page: str) -> list[tuple[str, str]]:
    """[(the row's heading, its cells)] of a room's week."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    return re.findall(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', body, re.S)


def test_a_rooms_week_in_a_plant_open_6_to_14(alice_client, bob, shift, monday):
    ReservationFactory(room=shift, requested_by=bob, requested_for=bob, start=at(monday, 4), end=at(monday, 6, 30))
    rows = week_rows(get(alice_client, f"/rooms/{shift.pk}/week/", week=monday.isoformat()))
    assert [label for label, _ in rows] == [f"{h:02d}:00" for h in range(6, 14)]
    first_row, last_row = cells(rows[0][1]), cells(rows[-1][1])
    assert 'class="busy' in first_row[0]  # Monday 06:00–07:00, held from 04:00
    tuesday = (monday + dt.timedelta(days=1)).isoformat()
    assert link_of(first_row[1]) == f"/rooms/{shift.pk}/book/?date={tuesday}&start=06:00&end=07:00"
    sunday = (monday + dt.timedelta(days=6)).isoformat()
    assert link_of(last_row[6]) == f"/rooms/{shift.pk}/book/?date={sunday}&start=13:00&end=14:00"


def test_a_rooms_week_in_a_hospital_and_to_a_half_hour(alice_client, ward, monday):
    rows = week_rows(get(alice_client, f"/rooms/{ward.pk}/week/", week=monday.isoformat()))
    assert [label for label, _ in rows] == [f"{h:02d}:00" for h in range(24)]
    assert link_of(cells(rows[0][1])[0]) == f"/rooms/{ward.pk}/book/?date={monday.isoformat()}&start=00:00&end=01:00"
    last = cells(rows[-1][1])[0]
    assert link_of(last) == f"/rooms/{ward.pk}/book/?date={monday.isoformat()}&start=23:00&end=00:00"
    assert "23:00–24:00" in last

    room = _room("halves", dt.time(6), dt.time(14, 30), "Halves")
    rows = week_rows(get(alice_client, f"/rooms/{room.pk}/week/", week=monday.isoformat()))
    assert rows[-1][0] == "14:00" and link_of(cells(rows[-1][1])[0]).endswith("start=14:00&end=14:30")


# --- the building's week ---------------------------------------------------------------------


def test_the_buildings_week_of_a_plant_open_6_to_14(alice_client, bob, shift, monday):
    ReservationFactory(room=shift, requested_by=bob, requested_for=bob, start=at(monday, 13, 30), end=at(monday, 16))
    page = get(alice_client, "/calendar/week/", building="plant", date=monday.isoformat())
    assert "hours 06:00–14:00" in page and 'style="--hour-columns: 40"' in page and 'colspan="8" class="day-head' in page
    row = row_of(page, shift)
    assert len(cells(row)) == 5 * 8
    assert link_of(cell_at(row, 0)) == f"/rooms/{shift.pk}/book/?date={monday.isoformat()}&start=06:00&end=07:00"
    last_monday = cell_at(row, 7)  # 13:00: its first half free, the second held (to 16:00, past the close)
    assert 'class="part busy-half open-start' in last_monday and link_of(last_monday).endswith("start=13:00&end=13:30")
    friday = (monday + dt.timedelta(days=4)).isoformat()
    assert link_of(cell_at(row, 39)) == f"/rooms/{shift.pk}/book/?date={friday}&start=13:00&end=14:00"
    assert 'class="free day-start" data-slot="8" data-day="1"' in cell_at(row, 8)


def test_the_buildings_week_of_a_hospital(alice_client, ward, monday):
    page = get(alice_client, "/calendar/week/", building="hospital", date=monday.isoformat(), days="7")
    row = row_of(page, ward)
    assert len(cells(row)) == 7 * 24 and "hours 00:00–24:00" in page
    assert link_of(cell_at(row, 0)) == f"/rooms/{ward.pk}/book/?date={monday.isoformat()}&start=00:00&end=01:00"
    sunday = (monday + dt.timedelta(days=6)).isoformat()
    last = cell_at(row, 167)
    assert link_of(last) == f"/rooms/{ward.pk}/book/?date={sunday}&start=23:00&end=00:00" and "23:00–24:00" in last


def test_the_buildings_week_to_a_half_hour(alice_client, bob, monday):
    """A day ending at 14:30 ends with a 14:00 column whose second half is not offered."""
    room = _room("halves", dt.time(6), dt.time(14, 30), "Halves")
    tuesday = monday + dt.timedelta(days=1)
    ReservationFactory(room=room, requested_by=bob, requested_for=bob, start=at(tuesday, 14), end=at(tuesday, 15))
    page = get(alice_client, "/calendar/week/", building="halves", date=monday.isoformat())
    row = row_of(page, room)
    assert len(cells(row)) == 5 * 9
    monday_last = cell_at(row, 8)
    assert 'class="part open-start"' in monday_last and link_of(monday_last).endswith("start=14:00&end=14:30")
    assert 'class="busy"' in cell_at(row, 17) and "Book" not in cell_at(row, 17)  # Tuesday's 14:00 held
    assert 'class="free day-start" data-slot="18" data-day="2"' in cell_at(row, 18)


def test_the_buildings_week_from_a_half_hour(alice_client, monday):
    room = _room("halves", dt.time(6, 30), dt.time(14, 30), "Halves")
    page = get(alice_client, "/calendar/week/", building="halves", date=monday.isoformat())
    assert '06<sup aria-hidden="true">30</sup><span class="sr-only">:30 Mon</span>' in page
    row = row_of(page, room)
    assert len(cells(row)) == 5 * 8
    assert link_of(cell_at(row, 0)).endswith("start=06:30&end=07:30") and link_of(cell_at(row, 7)).endswith("start=13:30&end=14:30")


def test_the_buildings_week_with_the_default_hours(alice_client, dojo, monday):
    page = get(alice_client, "/calendar/week/", building="hq", date=monday.isoformat())
    row = row_of(page, dojo)
    assert len(cells(row)) == 5 * 14 and "hours 07:00–21:00" in page
    assert link_of(cell_at(row, 0)).endswith("start=07:00&end=08:00") and link_of(cell_at(row, 69)).endswith("start=20:00&end=21:00")


# --- queries ---------------------------------------------------------------------------------


def _queries(client, url, params, capture_on_commit) -> int:
    with capture_on_commit(execute=True):  # the cached catalogue warm, as on a live site
        assert client.get(url, params).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


def test_the_grids_cost_the_same_queries_whatever_the_hours(alice_client, bob, dojo, ward, monday,
                                                            django_capture_on_commit_callbacks):
    for room in (dojo, ward):
        for n in range(5):
            ReservationFactory(room=room, requested_by=bob, requested_for=bob, start=at(monday + dt.timedelta(days=n), 9),
                               end=at(monday + dt.timedelta(days=n), 10))
    day = monday.isoformat()
    for url, default, around_the_clock in (
        ("/calendar/", {"building": "hq", "date": day}, {"building": "hospital", "date": day}),
        ("/calendar/week/", {"building": "hq", "date": day, "days": "7"}, {"building": "hospital", "date": day, "days": "7"}),
        (f"/rooms/{dojo.pk}/week/", {"week": day}, None),
    ):
        few = _queries(alice_client, url, default, django_capture_on_commit_callbacks)
        if around_the_clock is None:
            more = _queries(alice_client, f"/rooms/{ward.pk}/week/", {"week": day}, django_capture_on_commit_callbacks)
        else:
            more = _queries(alice_client, url, around_the_clock, django_capture_on_commit_callbacks)
        assert few == more, url
