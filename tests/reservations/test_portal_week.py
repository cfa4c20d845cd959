"""Issue 14, item 4 (a room's week) through the test client: busy hours show the subject only
to whom may see it, free hours link to the booking form for that hour, one query for the
week's bookings whatever their number."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BERLIN, ReservationFactory

pytestmark = pytest.mark.django_db


def next_monday() -> dt.date:
    today = dt.datetime.now(BERLIN).date()
    return today + dt.timedelta(days=7 - today.weekday())


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN)


def test_the_week_shows_busy_hours_and_links_free_ones(client, alice, bob, dojo):
    monday = next_monday()
    ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, subject="Alice's planning", start=at(monday, 9), end=at(monday, 11))
    ReservationFactory(room=dojo, requested_for=bob, requested_by=bob, subject="Bob's secret", start=at(monday, 14), end=at(monday, 15))
    client.force_login(alice)
    html = client.get(f"/rooms/{dojo.pk}/week/?week={(monday + dt.timedelta(days=3)).isoformat()}").content.decode()
    assert html.count("Alice&#x27;s planning") == 2  # 09:00 and 10:00
    assert "Bob&#x27;s secret" not in html and ">Busy<" in html
    assert f'href="/rooms/{dojo.pk}/book/?date={monday.isoformat()}&amp;start=11:00&amp;end=12:00"' in html
    assert f"?week={(monday - dt.timedelta(days=7)).isoformat()}" in html


def test_the_week_costs_the_same_queries_however_many_bookings(client, alice, dojo):
    monday = next_monday()
    client.force_login(alice)
    url = f"/rooms/{dojo.pk}/week/?week={monday.isoformat()}"
    client.get(url)
    with CaptureQueriesContext(connection) as empty:
        client.get(url)
    for n in range(6):
        ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, start=at(monday + dt.timedelta(days=n), 8),
                           end=at(monday + dt.timedelta(days=n), 9))
    with CaptureQueriesContext(connection) as full:
        response = client.get(url)
    assert response.status_code == 200 and len(full) == len(empty)


def test_an_unknown_room_is_404(client, alice):
    client.force_login(alice)
    assert client.get("/rooms/999999/week/").status_code == 404
