"""Issue 14, item 4 in Chromium: from the finder to a room's week, a free hour chosen with
the keyboard opens the booking form prefilled with that hour, and booking it fills the cell."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.browser.conftest import screenshot, sign_in
from tests.factories import BERLIN, ReservationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_book_from_a_free_hour_of_the_week_view(page, alice, dojo):
    today = dt.datetime.now(BERLIN).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, subject="Planning",
                       start=dt.datetime.combine(monday, dt.time(9), tzinfo=BERLIN), end=dt.datetime.combine(monday, dt.time(10), tzinfo=BERLIN))
    sign_in(page)
    page.goto(f"/?date={monday.isoformat()}")
    page.get_by_role("link", name="Dojo's week").click()
    grid = page.locator("#week-grid")
    assert "Planning" in grid.inner_text()
    screenshot(page, "week-desktop")
    wednesday = monday + dt.timedelta(days=2)
    slot = page.get_by_role("link", name=f"Book {wednesday:%A} {wednesday.day} {wednesday:%B}, 14:00–15:00")
    slot.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    assert page.get_by_label("Date", exact=True).input_value() == wednesday.isoformat()
    assert page.get_by_label("From").input_value() == "14:00" and page.get_by_label("To", exact=True).input_value() == "15:00"
    page.get_by_label("Subject").fill("From the week")
    page.get_by_role("button", name="Book Dojo").click()
    page.wait_for_url("**/my/")
    booked = Reservation.objects.get(subject="From the week")
    assert booked.start == dt.datetime.combine(wednesday, dt.time(14), tzinfo=BERLIN)
    page.goto(f"/rooms/{dojo.pk}/week/?week={monday.isoformat()}")
    assert "From the week" in page.locator("#week-grid").inner_text()
