"""Utilization (issue 15 item 4) on a known data set: hours booked, checked in and released
and the no-show rate per room, floor and building, clipped to the period in each building's zone; the weekday × hour heatmap and the
peak hours; the CSV export; staff only; a bounded number of queries."""

import csv
import datetime as dt
import io
import zoneinfo

import pytest
from django.urls import reverse

from reservations.utilization import utilization
from tests.factories import BuildingFactory, FloorFactory, ReservationFactory, RoomFactory

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
MONDAY = dt.date(2030, 3, 4)  # a Monday, outside any DST change


def at(day: dt.date, hour: int, minute: int = 0, tz=BERLIN) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


@pytest.fixture
def known(alice):
    """HQ (Berlin): Atlas on the 1st floor, Borealis on the 2nd; Harbor (New York): Hudson."""
    hq = BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin")
    harbor = BuildingFactory(name="Harbor", code="harbor", timezone="America/New_York")
    first, second = FloorFactory(building=hq, name="1st", level=1), FloorFactory(building=hq, name="2nd", level=2)
    atlas = RoomFactory(building=hq, floor=first, name="Atlas")
    borealis = RoomFactory(building=hq, floor=second, name="Borealis")
    hudson = RoomFactory(building=harbor, name="Hudson")
    RoomFactory(building=hq, floor=first, name="Empty")

    def res(room, start, end, state="confirmed", **more):
        return ReservationFactory(room=room, requested_for=alice, start=start, end=end, state=state, **more)

    res(atlas, at(MONDAY, 9), at(MONDAY, 11), checked_in_at=at(MONDAY, 9, 2), checked_in_channel="room_panel")  # Mon 09-11: 2 h, checked in
    res(atlas, at(MONDAY, 10, 30) + dt.timedelta(days=1), at(MONDAY, 11, 30) + dt.timedelta(days=1),
        state="released", released_at=at(MONDAY, 10, 45) + dt.timedelta(days=1))  # Tue 10:30-11:30: 1 h booked, 45 min released
    res(atlas, at(MONDAY, 14), at(MONDAY, 15), state="cancelled")  # not booked
    res(atlas, at(MONDAY, 16), at(MONDAY, 17), state="rejected")  # not booked
    res(borealis, at(MONDAY, 9), at(MONDAY, 9, 30), checked_in_at=at(MONDAY, 8, 55), checked_in_channel="portal")  # 0.5 h, checked in
    res(borealis, at(MONDAY - dt.timedelta(days=1), 23), at(MONDAY, 1))  # Sun 23:00 - Mon 01:00: only 1 h in the period
    res(hudson, at(MONDAY, 9, tz=NEW_YORK), at(MONDAY, 12, tz=NEW_YORK))  # 3 h, New York's Monday morning
    res(hudson, at(MONDAY + dt.timedelta(days=7), 9, tz=NEW_YORK), at(MONDAY + dt.timedelta(days=7), 10, tz=NEW_YORK))  # after the period
    return {"hq": hq, "harbor": harbor, "first": first, "atlas": atlas, "borealis": borealis, "hudson": hudson}


def period(**kw):
    return utilization(start=MONDAY, end=MONDAY + dt.timedelta(days=6), **kw)


def test_hours_booked_per_room_floor_building_and_overall(known):
    result = period()
    rooms = {row.name: row.figures for row in result.rooms}
    assert rooms["Atlas"].booked_hours == pytest.approx(3.0) and rooms["Atlas"].reservations == 2
    assert rooms["Borealis"].booked_hours == pytest.approx(1.5)  # the night's first hour is before the period
    assert rooms["Hudson"].booked_hours == pytest.approx(3.0)
    assert rooms["Empty"].booked_hours == 0 and rooms["Empty"].reservations == 0
    buildings = {row.name: row.figures.booked_hours for row in result.buildings}
    assert buildings == {"HQ": pytest.approx(4.5), "Harbor": pytest.approx(3.0)}
    floors = {(row.building, row.name): row.figures.booked_hours for row in result.floors}
    assert floors[("HQ", "1st")] == pytest.approx(3.0) and floors[("HQ", "2nd")] == pytest.approx(1.5)
    assert floors[("Harbor", "(no floor)")] == pytest.approx(3.0)
    assert result.total.booked_hours == pytest.approx(7.5) and result.total.reservations == 5


def test_checked_in_and_released_hours_and_the_no_show_rate(known):
    result = period()
    rooms = {row.name: row.figures for row in result.rooms}
    atlas = rooms["Atlas"]
    assert atlas.checked_in_hours == pytest.approx(2.0) and atlas.released_hours == pytest.approx(0.75)
    assert (atlas.checked_in, atlas.no_shows, atlas.no_show_rate) == (1, 1, 0.5)
    assert rooms["Borealis"].checked_in_hours == pytest.approx(0.5) and rooms["Borealis"].no_show_rate == 0.0
    assert rooms["Hudson"].no_show_rate is None  # nothing checked in or released there
    hq = next(row.figures for row in result.buildings if row.name == "HQ")
    assert (hq.checked_in_hours, hq.released_hours) == (pytest.approx(2.5), pytest.approx(0.75))
    assert hq.no_show_rate == pytest.approx(1 / 3)
    assert result.total.no_shows == 1 and result.total.checked_in == 2


def test_the_heatmap_cuts_meetings_into_local_clock_hours(known):
    result = period()
    monday, tuesday = result.heatmap[0], result.heatmap[1]
    # Monday 09:00: Atlas (Berlin) 1 h + Borealis 0.5 h + Hudson (New York local) 1 h
    assert monday[9] == pytest.approx(2.5) and monday[10] == pytest.approx(2.0) and monday[11] == pytest.approx(1.0)
    assert monday[0] == pytest.approx(1.0)  # Borealis' 00:00-01:00 inside the period
    assert tuesday[10] == pytest.approx(0.5) and tuesday[11] == pytest.approx(0.5)
    assert result.heatmap[6][23] == 0  # Sunday 23:00 was before the period
    assert result.peak_hours[0] == (1, 9, pytest.approx(2.5))
    assert sum(map(sum, result.heatmap)) == pytest.approx(result.total.booked_hours)


def test_a_building_or_a_floor_narrows_it(known):
    only_hq = period(building=known["hq"])
    assert [r.name for r in only_hq.rooms] == ["Atlas", "Borealis", "Empty"] and only_hq.total.booked_hours == pytest.approx(4.5)
    first = period(floor=known["first"])
    assert [r.name for r in first.rooms] == ["Atlas", "Empty"] and first.total.booked_hours == pytest.approx(3.0)


def test_the_page_is_staff_only(client, alice, admin, known):
    url = reverse("portal:utilization")
    assert client.get(url).status_code == 302  # anonymous: to the sign-in
    client.force_login(alice)
    assert client.get(url).status_code == 302  # an employee: not for them
    client.force_login(admin)
    assert client.get(url).status_code == 200


def test_the_page_draws_the_charts_in_a_bounded_number_of_queries(client, admin, known, django_assert_max_num_queries):
    client.force_login(admin)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("portal:utilization"), {"start": MONDAY.isoformat(), "end": (MONDAY + dt.timedelta(days=6)).isoformat()})
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="heatmap"' in body and body.count('class="cell') == 7 * 24
    assert body.count('class="bar-booked"') == 4  # a bar per room
    assert '<dd id="total-booked">7.5</dd>' in body and '<dd id="total-checked-in">2.5</dd>' in body
    assert '<dd id="total-released">0.8</dd>' in body and '<dd id="total-no-show-rate">33 %</dd>' in body
    assert body.count('class="bar-released"') == 1
    assert "Mon 09:00 (2.5 h)" in body
    # the query count does not grow with rooms
    for i in range(20):
        RoomFactory(building=known["hq"], floor=known["first"], name=f"Extra {i}")
    with django_assert_max_num_queries(12):
        assert client.get(reverse("portal:utilization"), {"start": MONDAY.isoformat(), "end": MONDAY.isoformat()}).status_code == 200


def test_csv_export_has_a_row_per_room(client, admin, known):
    client.force_login(admin)
    response = client.get(reverse("portal:utilization"), {
        "start": MONDAY.isoformat(), "end": (MONDAY + dt.timedelta(days=6)).isoformat(), "format": "csv",
    })
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_room = {row["room"]: row for row in rows}
    assert set(by_room) == {"Atlas", "Borealis", "Hudson", "Empty"}
    assert by_room["Atlas"]["booked_hours"] == "3.00" and by_room["Atlas"]["floor"] == "1st" and by_room["Atlas"]["building"] == "HQ"
    assert by_room["Atlas"]["checked_in_hours"] == "2.00" and by_room["Atlas"]["released_hours"] == "0.75"
    assert by_room["Atlas"]["no_shows"] == "1" and by_room["Atlas"]["no_show_rate"] == "0.500"
    assert by_room["Hudson"]["booked_hours"] == "3.00" and by_room["Empty"]["no_show_rate"] == ""


@pytest.mark.parametrize("params", [
    {"start": "2030-03-10", "end": "2030-03-01"}, {"start": "2030-02-30", "end": "2030-03-01"},
    {"start": "2020-01-01", "end": "2030-01-01"}, {"start": "x", "end": "y"}, {"start": "2030-03-01", "end": "2030-03-02", "building": "999"},
])
def test_bad_periods_are_form_errors_not_server_errors(client, admin, known, params):
    client.force_login(admin)
    response = client.get(reverse("portal:utilization"), params)
    assert response.status_code == 400 and b"field-error" in response.content


def test_a_period_without_reservations_is_all_zeros(client, admin, known):
    result = utilization(start=dt.date(2031, 1, 6), end=dt.date(2031, 1, 12))
    assert result.total.booked_hours == 0 and result.total.no_show_rate is None and result.peak_hours == []
    assert len(result.rooms) == 4 and all(row.figures.reservations == 0 for row in result.rooms)
    client.force_login(admin)
    assert client.get(reverse("portal:utilization"), {"start": "2031-01-06", "end": "2031-01-12"}).status_code == 200


def test_the_charts_hours_are_the_floatformat_filters():
    """The page formats its ~400 hours in Python (reservations.views.utilization._hours), not by
    the template filter: the same text for every value, halves rounded up as the filter does."""
    import random

    from django.template.defaultfilters import floatformat

    from reservations.views.utilization import _hours

    rng = random.Random(15)
    values = [0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 2.25, 2.75, 1.05, 7.5, 0.8333333333333334, 1e-9, 12345.65, 99999.95, -0.04, -2.25]
    values += [rng.uniform(0, 20000) for _ in range(3000)] + [round(rng.uniform(0, 500), 2) + 0.05 for _ in range(3000)]
    values += [i / 3600 for i in range(0, 40000, 7)]  # whole seconds as hours, as the rollup gives them
    assert [_hours(v) for v in values] == [str(floatformat(v, 1)) for v in values]


def test_room_and_floor_names_in_the_bars_and_table_are_escaped(client, admin, known):
    odd = FloorFactory(building=known["hq"], name="<i>Odd</i>", level=9)
    lab = RoomFactory(building=known["hq"], floor=odd, name='<b>"Lab"</b> & co')
    ReservationFactory(room=lab, start=at(MONDAY, 8), end=at(MONDAY, 9), state="confirmed")
    client.force_login(admin)
    body = client.get(reverse("portal:utilization"), {"start": MONDAY.isoformat(), "end": MONDAY.isoformat()}).content.decode()
    assert "<b>&quot;Lab" not in body and "<b>" not in body.split('id="room-bars"')[1].split("</svg>")[0]
    assert "&lt;b&gt;&quot;Lab&quot;&lt;/b&gt; &amp; co (HQ): 1.0 h booked" in body
    assert '<th scope="row">HQ · &lt;i&gt;Odd&lt;/i&gt;</th><td>1.0</td>' in body and "<i>" not in body
