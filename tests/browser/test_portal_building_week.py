"""Issue 14, item 4 in Chromium: a building's week (rooms as rows, each weekday's working hours
as columns) booked from by click, by a mouse drag across hours, by a touch drag (real touch
input through the DevTools protocol), by the keyboard (arrows, Shift+arrows, Enter), and
without JavaScript through each free hour's own link; at phone width the grid scrolls inside
its box, not the page; axe-core finds no serious or critical violation. The day grid's touch
drag (implemented, only a tap was tested) is tested here too.

Screenshots go to test-artifacts/ (building-week-*.png)."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.browser.conftest import ARTIFACTS, screenshot, sign_in
from tests.browser.test_portal_accessibility import axe_violations
from tests.factories import BERLIN, BuildingFactory, ReservationFactory, days_ahead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hq(db):
    """HQ open 08:00–18:00 (Building.day_starts/day_ends), the hours these tests were written for."""
    return BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin", day_starts=dt.time(8), day_ends=dt.time(18))


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=BERLIN)


@pytest.fixture
def monday(alice, bob, atlas, dojo):
    """Next week in HQ: Alice's planning in Atlas Monday 09:00–11:00, Bob's private meeting in
    Dojo Tuesday 13:00–14:00 and his standup there Wednesday 09:30–10:30."""
    today = dt.datetime.now(BERLIN).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Planning",
                       start=at(monday, 9), end=at(monday, 11))
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    ReservationFactory(room=dojo, requested_for=bob, requested_by=bob, subject="Bob's private",
                       start=at(tuesday, 13), end=at(tuesday, 14))
    ReservationFactory(room=dojo, requested_for=bob, requested_by=bob, subject="Bob's standup",
                       start=at(wednesday, 9, 30), end=at(wednesday, 10, 30))
    return monday


def label(day: dt.date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def slot(pg, room: str, day: dt.date, start: str, end: str):
    return pg.get_by_role("link", name=f"Book {room}, {label(day)}, {start}–{end}", exact=True)


def week_url(monday: dt.date, **extra) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"building": "hq", "date": monday.isoformat(), **extra}.items())
    return f"/calendar/week/?{query}"


def book_it(pg, subject: str, room: str) -> Reservation:
    pg.get_by_label("Subject").fill(subject)
    pg.get_by_role("button", name=f"Book {room}").click()
    pg.wait_for_url("**/my/")
    return Reservation.objects.get(subject=subject)


def assert_form(pg, day: dt.date, start: str, end: str) -> None:
    assert pg.get_by_label("Date", exact=True).input_value() == day.isoformat()
    assert pg.get_by_label("From").input_value() == start
    assert pg.get_by_label("To", exact=True).input_value() == end


def center(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def touch_drag(pg, first, last, steps: int = 10) -> None:
    """A finger put on ``first``, moved to ``last`` and lifted: Chromium's own touch input
    (Input.dispatchTouchEvent), so touch-action, pointer events and implicit capture apply."""
    # Scroll the grid's box so that the first cell sits just right of the sticky room column
    # (Playwright's own scrolling would leave it under that column).
    first.evaluate("""a => { const td = a.closest('td'), box = td.closest('.day-scroll, .week-scroll-box');
                           const col = box.querySelector('thead .room-col');
                           box.scrollLeft = td.offsetLeft - col.offsetWidth - 4; td.scrollIntoView({block: 'center', inline: 'nearest'});
                           box.scrollLeft = td.offsetLeft - col.offsetWidth - 4; }""")
    (x0, y0), (x1, y1) = center(first.bounding_box()), center(last.bounding_box())
    width = pg.viewport_size["width"]
    assert 0 < x0 < width and 0 < x1 < width, "both ends must be on the screen: a finger can't reach further"
    assert pg.evaluate("([x, y]) => !document.elementFromPoint(x, y).closest('th')", [x0, y0]), "the finger lands on a slot"
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for n in range(1, steps + 1):
        x, y = x0 + (x1 - x0) * n / steps, y0 + (y1 - y0) * n / steps
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_click_a_free_hour_from_the_day_grid(page, monday):
    sign_in(page)
    tuesday = monday + dt.timedelta(days=1)
    page.goto(f"/calendar/?building=hq&date={tuesday.isoformat()}")
    page.get_by_role("link", name="Week view").click()
    page.wait_for_url("**/calendar/week/**")
    grid = page.locator("#building-week")
    text = grid.inner_text()
    assert "Planning" in text and "Busy" in text and "Bob's private" not in text
    assert grid.locator("tbody tr").count() == 2 and grid.locator("thead .day-head").count() == 5
    screenshot(page, "building-week-desktop")
    slot(page, "Dojo", tuesday, "15:00", "16:00").click()
    page.wait_for_url("**/book/**")
    assert_form(page, tuesday, "15:00", "16:00")
    booked = book_it(page, "Clicked in the week", "Dojo")
    assert (booked.start, booked.end) == (at(tuesday, 15), at(tuesday, 16))
    page.goto(week_url(monday))
    assert "Clicked in the week" in page.locator("#building-week").inner_text()


def test_a_mouse_drag_across_three_hours(page, monday, dojo):
    sign_in(page)
    page.goto(week_url(monday))
    thursday = monday + dt.timedelta(days=3)
    first, last = slot(page, "Dojo", thursday, "10:00", "11:00"), slot(page, "Dojo", thursday, "12:00", "13:00")
    page.mouse.move(*center(first.bounding_box()))
    page.mouse.down()
    page.mouse.move(*center(last.bounding_box()), steps=8)
    assert page.locator(f"#building-week tr[data-room='{dojo.pk}'] td.selected").count() == 3
    assert page.locator("#week-selection").inner_text() == f"Dojo, {label(thursday)}, 10:00–13:00 selected. Press Enter to book."
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, thursday, "10:00", "13:00")
    booked = book_it(page, "Dragged in the week", "Dojo")
    assert (booked.start, booked.end) == (at(thursday, 10), at(thursday, 13))


def test_a_drag_stops_at_a_busy_hour_and_keeps_a_free_half(page, monday):
    """From 08:00 towards Wednesday's 09:30 standup and beyond: the booking runs to 09:30."""
    sign_in(page)
    page.goto(week_url(monday))
    wednesday = monday + dt.timedelta(days=2)
    first = slot(page, "Dojo", wednesday, "08:00", "09:00")
    beyond = slot(page, "Dojo", wednesday, "11:00", "12:00")
    page.mouse.move(*center(first.bounding_box()))
    page.mouse.down()
    page.mouse.move(*center(beyond.bounding_box()), steps=10)
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, wednesday, "08:00", "09:30")


def test_a_drag_does_not_cross_into_the_next_day(page, monday, dojo):
    sign_in(page)
    page.goto(week_url(monday))
    friday = monday + dt.timedelta(days=4)
    thursday = monday + dt.timedelta(days=3)
    first, next_day = slot(page, "Dojo", thursday, "16:00", "17:00"), slot(page, "Dojo", friday, "09:00", "10:00")
    page.mouse.move(*center(first.bounding_box()))
    page.mouse.down()
    page.mouse.move(*center(next_day.bounding_box()), steps=10)
    page.mouse.up()
    page.wait_for_url("**/book/**")
    assert_form(page, thursday, "16:00", "18:00")


def test_the_keyboard_moves_extends_and_books(page, monday):
    sign_in(page)
    page.goto(week_url(monday))
    assert page.locator("#building-week [tabindex='0']").count() == 1  # one tab stop: the first free hour
    friday = monday + dt.timedelta(days=4)
    slot(page, "Atlas", friday, "09:00", "10:00").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")  # Atlas → Dojo, same hour
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#week-selection").inner_text().startswith(f"Dojo, {label(friday)}, 10:00–14:00 selected")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    assert_form(page, friday, "10:00", "13:00")
    booked = book_it(page, "Keyed in the week", "Dojo")
    assert (booked.start, booked.end) == (at(friday, 10), at(friday, 13))


def test_the_keyboard_jumps_a_day_and_books_a_half_hour(page, monday):
    sign_in(page)
    page.goto(week_url(monday))
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    slot(page, "Dojo", tuesday, "10:00", "11:00").focus()
    page.keyboard.press("PageDown")  # Wednesday 10:00: the standup's last half; 10:30–11:00 is free
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == f"Book Dojo, {label(wednesday)}, 10:30–11:00"
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    assert_form(page, wednesday, "10:30", "12:00")


def test_without_javascript_each_free_hour_is_a_link(browser, portal, monday):
    context = browser.new_context(base_url=portal, java_script_enabled=False, viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto(week_url(monday))
        pg.get_by_role("link", name="Next week →", exact=True).click()
        assert (monday + dt.timedelta(days=7)).isoformat() in pg.url
        pg.get_by_role("link", name="← Previous week", exact=True).click()
        pg.get_by_role("link", name="Mon–Sun").click()
        assert pg.locator("#building-week thead .day-head").count() == 7
        screenshot(pg, "building-week-no-js")
        sunday = monday + dt.timedelta(days=6)
        slot(pg, "Dojo", sunday, "16:00", "17:00").click()
        pg.wait_for_url("**/book/**")
        assert_form(pg, sunday, "16:00", "17:00")
        booked = book_it(pg, "No script week", "Dojo")
        assert booked.start == at(sunday, 16)
        # The free half hour before the standup is a link of its own.
        wednesday = monday + dt.timedelta(days=2)
        pg.goto(week_url(monday))
        slot(pg, "Dojo", wednesday, "09:00", "09:30").click()
        pg.wait_for_url("**/book/**")
        assert_form(pg, wednesday, "09:00", "09:30")
    finally:
        context.close()


def test_phone_the_week_scrolls_inside_its_box_and_a_touch_drag_books(phone, monday, dojo):
    sign_in(phone)
    phone.goto(week_url(monday))
    widths = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    wide = phone.evaluate("() => [...document.querySelectorAll('body *')].filter(e => !e.closest('#week-scroll'))"
                          ".filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert widths[0] <= min(widths[1], 390), (widths, wide)
    box = phone.evaluate("() => { const b = document.getElementById('week-scroll'); return [b.scrollWidth, b.clientWidth]; }")
    assert box[0] > box[1]  # the week is wider than the screen and scrolls in its own box
    screenshot(phone, "building-week-phone")
    tuesday = monday + dt.timedelta(days=1)
    touch_drag(phone, slot(phone, "Dojo", tuesday, "09:00", "10:00"), slot(phone, "Dojo", tuesday, "11:00", "12:00"))
    phone.wait_for_url("**/book/**")
    assert_form(phone, tuesday, "09:00", "12:00")
    booked = book_it(phone, "Touch-dragged week", "Dojo")
    assert (booked.start, booked.end) == (at(tuesday, 9), at(tuesday, 12))
    # The page didn't scroll sideways under the finger, and a tap still books one hour.
    phone.goto(week_url(monday))
    slot(phone, "Dojo", tuesday, "16:00", "17:00").tap()
    phone.wait_for_url("**/book/**")
    assert_form(phone, tuesday, "16:00", "17:00")


def test_the_day_grid_books_a_touch_dragged_range(phone, alice, dojo):
    """The day grid's touch drag (pointer events from a finger): 10:00 to 11:30 across four half hours."""
    ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, subject="Later",
                       start=days_ahead(1, 15), end=days_ahead(1, 16))
    day = days_ahead(1, 9).date()
    sign_in(phone)
    phone.goto(f"/calendar/?building=hq&date={day.isoformat()}")

    def half(start, end):
        return phone.get_by_role("link", name=f"Book Dojo, {start}–{end}", exact=True)

    touch_drag(phone, half("10:00", "10:30"), half("11:30", "12:00"))
    phone.wait_for_url("**/book/**")
    assert_form(phone, day, "10:00", "12:00")
    booked = book_it(phone, "Touch-dragged day", "Dojo")
    assert (booked.start, booked.end) == (at(day, 10), at(day, 12))
    # A finger dragged into the busy block stops before it.
    phone.goto(f"/calendar/?building=hq&date={day.isoformat()}")
    touch_drag(phone, half("13:30", "14:00"), phone.locator("#day-grid td.busy", has_text="Later"))
    phone.wait_for_url("**/book/**")
    assert_form(phone, day, "13:30", "15:00")


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("script", [True, False], ids=["js", "no-js"])
def test_no_serious_axe_violations_and_no_sideways_scroll(browser, portal, monday, size, script):
    phone = size == "phone"
    viewport = {"width": 390, "height": 844} if phone else {"width": 1366, "height": 900}
    context = browser.new_context(base_url=portal, viewport=viewport, is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, java_script_enabled=script)
    pg = context.new_page()
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    found = {}
    try:
        sign_in(pg)
        for name, url in {"building-week": week_url(monday), "building-week-7": week_url(monday, days=7)}.items():
            pg.goto(url)
            pg.wait_for_load_state("networkidle")
            pg.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-{size}{'' if script else '-no-js'}.png"), full_page=True)
            widths = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= min(widths[1], viewport["width"]), (name, widths)
            if script:
                violations = axe_violations(pg)
            else:  # axe runs as a script: run it in a scripted page on the no-script page's HTML
                html = pg.content()
                checker = context.browser.new_context(viewport=viewport, java_script_enabled=True).new_page()
                checker.set_content(html.replace("<script", "<template").replace("</script>", "</template>"))
                violations = axe_violations(checker)
                checker.context.close()
            if violations:
                found[name] = violations
    finally:
        context.close()
    assert not found, found
