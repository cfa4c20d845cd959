"""The grids over their building's hours in Chromium (Building.day_starts/day_ends): in a
hospital open around the clock the day grid's keyboard reaches the last half hour and books
up to midnight; in a plant open 06:00–14:00 the week's Home/End stay inside its hours and a
drag stops at its close."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.browser.conftest import sign_in
from tests.factories import BERLIN, BuildingFactory, RoomFactory
from tests.grid_pages import assert_form, at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def focused(pg) -> str:
    return pg.evaluate("() => document.activeElement.getAttribute('aria-label')")


def test_a_hospitals_day_books_up_to_midnight_from_the_keyboard(page, alice):
    ward = RoomFactory(building=BuildingFactory(name="Hospital", code="hospital", day_starts=dt.time(0), day_ends=dt.time(0)),
                       name="Ward")
    day = dt.datetime.now(BERLIN).date() + dt.timedelta(days=1)
    sign_in(page)
    page.goto(f"/calendar/?building=hospital&date={day.isoformat()}")
    page.keyboard.press("Tab")
    while focused(page) != "Book Ward, 00:00–00:30":  # the grid's one tab stop: its first half hour
        page.keyboard.press("Tab")
    page.keyboard.press("End")
    assert focused(page) == "Book Ward, 23:30–24:00"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#grid-selection").inner_text().startswith("Ward, 23:00–00:00 selected")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    assert_form(page, day, "23:00", "00:00")
    page.get_by_label("Subject").fill("Night handover")
    page.get_by_role("button", name="Book Ward").click()
    page.wait_for_url("**/my/")
    booked = Reservation.objects.get(subject="Night handover")
    assert (booked.room_id, booked.start, booked.end) == (ward.pk, at(day, 23), at(day + dt.timedelta(days=1), 0))


def test_a_plants_week_keeps_the_keyboard_and_drags_inside_its_hours(page, alice):
    RoomFactory(building=BuildingFactory(name="Plant", code="plant", day_starts=dt.time(6), day_ends=dt.time(14)), name="Shift")
    today = dt.datetime.now(BERLIN).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    tuesday = monday + dt.timedelta(days=1)
    label = f"{tuesday:%a} {tuesday.day} {tuesday:%b}"
    sign_in(page)
    page.goto(f"/calendar/week/?building=plant&date={monday.isoformat()}")
    page.get_by_role("link", name=f"Book Shift, {label}, 10:00–11:00", exact=True).focus()
    page.keyboard.press("End")
    assert focused(page) == f"Book Shift, {label}, 13:00–14:00"
    page.keyboard.press("Home")
    assert focused(page) == f"Book Shift, {label}, 06:00–07:00"
    first = page.get_by_role("link", name=f"Book Shift, {label}, 12:00–13:00", exact=True).bounding_box()
    wednesday = tuesday + dt.timedelta(days=1)
    beyond = page.get_by_role("link", name=f"Book Shift, {wednesday:%a} {wednesday.day} {wednesday:%b}, 07:00–08:00",
                              exact=True).bounding_box()
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(beyond["x"] + beyond["width"] / 2, beyond["y"] + beyond["height"] / 2, steps=10)
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, tuesday, "12:00", "14:00")
