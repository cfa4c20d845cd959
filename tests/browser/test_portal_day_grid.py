"""Issue 14, item 4 in Chromium: booking from a building's day grid (rooms as rows, half hours
as columns) by click, by a 2-hour drag, by the keyboard (arrows, Shift+arrows, Enter), and
without JavaScript through the free slot's own link; the phone width scrolls the grid inside
its box, not the page."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.browser.conftest import screenshot, sign_in
from tests.factories import ReservationFactory, days_ahead
from tests.grid_pages import assert_form, at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def day(alice, bob, atlas, dojo):
    """Tomorrow in HQ: Alice's planning in Atlas 09:00–10:00, Bob's private meeting in Dojo 13:00–14:00."""
    ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Planning",
                       start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=dojo, requested_for=bob, requested_by=bob, subject="Bob's private",
                       start=days_ahead(1, 13), end=days_ahead(1, 14))
    return days_ahead(1, 9).date()


def slot(pg, room: str, start: str, end: str):
    return pg.get_by_role("link", name=f"Book {room}, {start}–{end}", exact=True)


def book_it(pg, subject: str, room: str) -> Reservation:
    pg.get_by_label("Subject").fill(subject)
    pg.get_by_role("button", name=f"Book {room}").click()
    pg.wait_for_url("**/my/")
    return Reservation.objects.get(subject=subject)


def test_click_a_free_slot_from_the_finder(page, day):
    sign_in(page)
    page.goto(f"/?date={day.isoformat()}&building=hq")
    page.get_by_role("link", name="All rooms of a building by day").click()
    page.wait_for_url("**/calendar/**")
    grid = page.locator("#day-grid")
    assert "Planning" in grid.inner_text() and "Busy" in grid.inner_text() and "Bob's private" not in grid.inner_text()
    screenshot(page, "day-grid-desktop")
    slot(page, "Dojo", "15:00", "15:30").click()
    page.wait_for_url("**/book/**")
    assert_form(page, day, "15:00", "15:30")
    booked = book_it(page, "Clicked", "Dojo")
    assert (booked.start, booked.end) == (at(day, 15), at(day, 15, 30))


def test_a_two_hour_drag_opens_a_two_hour_booking_form(page, day, dojo):
    sign_in(page)
    page.goto(f"/calendar/?building=hq&date={day.isoformat()}")
    first, last = slot(page, "Dojo", "10:00", "10:30").bounding_box(), slot(page, "Dojo", "11:30", "12:00").bounding_box()
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(last["x"] + last["width"] / 2, last["y"] + last["height"] / 2, steps=8)
    assert page.locator(f"#day-grid tr[data-room='{dojo.pk}'] td.selected").count() == 4
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, day, "10:00", "12:00")
    booked = book_it(page, "Dragged", "Dojo")
    assert booked.end - booked.start == dt.timedelta(hours=2) and booked.start == at(day, 10)


def test_a_drag_stops_at_a_busy_block(page, day, dojo):
    sign_in(page)
    page.goto(f"/calendar/?building=hq&date={day.isoformat()}")
    first, busy = slot(page, "Dojo", "12:00", "12:30").bounding_box(), page.locator("#day-grid td.busy", has_text="Busy").bounding_box()
    page.mouse.move(first["x"] + 5, first["y"] + 5)
    page.mouse.down()
    page.mouse.move(busy["x"] + busy["width"] - 5, busy["y"] + 5, steps=8)
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, day, "12:00", "13:00")


def test_the_keyboard_moves_extends_and_books(page, day):
    sign_in(page)
    page.goto(f"/calendar/?building=hq&date={day.isoformat()}")
    # One tab stop for the grid (the first free slot); arrows move from there.
    assert page.locator("#day-grid [tabindex='0']").count() == 1
    slot(page, "Atlas", "10:00", "10:30").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")  # Atlas → Dojo, same half hour
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#grid-selection").inner_text().startswith("Dojo, 10:30–12:30 selected")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    assert_form(page, day, "10:30", "12:00")
    booked = book_it(page, "Keyed", "Dojo")
    assert (booked.start, booked.end) == (at(day, 10, 30), at(day, 12))


def test_without_javascript_each_free_slot_is_a_link(browser, portal, day):
    context = browser.new_context(base_url=portal, java_script_enabled=False, viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto(f"/calendar/?building=hq&date={day.isoformat()}")
        pg.get_by_role("link", name="Next day →").click()
        assert (day + dt.timedelta(days=1)).isoformat() in pg.url
        pg.get_by_role("link", name="← Previous day").click()
        slot(pg, "Dojo", "16:00", "16:30").click()
        pg.wait_for_url("**/book/**")
        assert_form(pg, day, "16:00", "16:30")
        booked = book_it(pg, "No script", "Dojo")
        assert booked.start == at(day, 16)
    finally:
        context.close()


def test_phone_the_grid_scrolls_inside_its_box(phone, day):
    sign_in(phone)
    phone.goto(f"/calendar/?building=hq&date={day.isoformat()}")
    widths = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    wide = phone.evaluate("() => [...document.querySelectorAll('body *')].filter(e => !e.closest('#day-scroll'))"
                          ".filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert widths[0] <= min(widths[1], 390), (widths, wide)
    box = phone.evaluate("() => { const b = document.getElementById('day-scroll'); return [b.scrollWidth, b.clientWidth]; }")
    assert box[0] > box[1]  # the grid is wider than the screen and scrolls in its own box
    screenshot(phone, "day-grid-phone")
    slot(phone, "Dojo", "17:00", "17:30").tap()
    phone.wait_for_url("**/book/**")
    assert_form(phone, day, "17:00", "17:30")
