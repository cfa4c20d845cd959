"""Issue 14, item 8 in Chromium: the booking form's people picker. Typing "bo" lists Bob (an
account here) and Boris (only in the tenant's directory, found through Graph's /users?$search);
each picked attendee shows their free/busy at the chosen time inline; the booked meeting in the
emulator has them as attendees. Without JavaScript the attendees box still books the same way."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.browser.test_portal_accessibility import SIZES, axe_violations
from tests.calendar_sync.inbound_helpers import room_copies
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BOB, BORIS = "bob@contoso.example", "boris.novak@contoso.example"


def booked_attendees(srv, subject: str) -> set[str]:
    copies = [e for e in room_copies(srv, "atlas@contoso.example") if e.subject == subject]
    return {a["emailAddress"]["address"].lower() for e in copies for a in e.attendees}


def shot(pg, name: str) -> None:
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_pick_bob_and_a_directory_only_person_see_free_busy_and_book(browser, portal, provider, mode, emulator, emulator_server,
                                                                    alice, bob, atlas, worker, size):
    mode("Normal")
    start = days_ahead(3, 10)
    day = start.date().isoformat()
    # Boris (no account here) is busy then in his own calendar.
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    emulator.create_event_as(BORIS, {"subject": "Dentist", "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
                                     "end": {"dateTime": (utc + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"}, "showAs": "busy"})
    phone = size == "phone"
    context = browser.new_context(base_url=portal, viewport=SIZES[size], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    try:
        sign_in(pg)
        local = start.astimezone(atlas.building.tzinfo)
        pg.goto(f"/rooms/{atlas.pk}/book/?date={day}&start={local:%H:%M}&end={local + dt.timedelta(hours=1):%H:%M}")
        subject = f"Picker review {size}"
        pg.get_by_label("Subject").fill(subject)
        search = pg.get_by_role("combobox", name="Find people")
        search.press_sequentially("bo", delay=30)
        options = pg.get_by_role("listbox", name="People found")
        bob_option = options.get_by_role("option").filter(has_text=BOB)
        bob_option.wait_for()
        boris_option = options.get_by_role("option").filter(has_text=BORIS)
        assert "(directory)" in boris_option.inner_text()  # found through Graph, not among our accounts
        assert axe_violations(pg) == []  # with the list open
        shot(pg, f"book-people-picker-open-{size}")
        bob_option.click()
        picked = pg.get_by_role("list", name="Attendees and their availability at the chosen time")
        picked.locator(f"li[data-email='{BOB}'] .availability-free").wait_for()
        assert BOB in pg.get_by_role("textbox", name="Attendees").input_value()
        # Boris by keyboard: type, arrow down to him, Enter.
        search.press_sequentially("nov", delay=30)
        options.get_by_role("option").filter(has_text=BORIS).wait_for()
        search.press("ArrowDown")
        search.press("Enter")
        picked.locator(f"li[data-email='{BORIS}'] .availability-busy").wait_for()
        assert "Busy" in picked.locator(f"li[data-email='{BORIS}']").inner_text()
        widths = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= min(widths[1], SIZES[size]["width"]), widths
        assert axe_violations(pg) == []
        shot(pg, f"book-people-picked-{size}")
        pg.get_by_role("button", name="Book Atlas").click()
        pg.wait_for_url("**/my/")
    finally:
        context.close()
    reservation = Reservation.objects.get(subject=subject)
    assert {a.email for a in reservation.attendees.all()} == {BOB, BORIS}
    wait_for(lambda: {BOB, BORIS} <= booked_attendees(emulator_server, subject), timeout=45, interval=0.5,
             message="the meeting in Exchange with Bob and Boris as attendees")


def test_without_javascript_the_attendees_box_books(browser, portal, provider, mode, emulator, emulator_server, alice, bob, atlas, worker):
    mode("Normal")
    context = browser.new_context(base_url=portal, java_script_enabled=False, ignore_https_errors=True, viewport=SIZES["desktop"])
    context.set_default_timeout(15_000)
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto(f"/rooms/{atlas.pk}/book/?date={days_ahead(4, 9).date().isoformat()}&start=14:00&end=15:00")
        assert not pg.locator("#people-picker").is_visible()  # the picker needs JavaScript; the box doesn't
        pg.get_by_label("Subject").fill("Typed attendees")
        pg.get_by_role("textbox", name="Attendees").fill(f"{BOB}\n{BORIS}")
        shot(pg, "book-attendees-no-js-desktop")
        pg.get_by_role("button", name="Book Atlas").click()
        pg.wait_for_url("**/my/")
    finally:
        context.close()
    wait_for(lambda: {BOB, BORIS} <= booked_attendees(emulator_server, "Typed attendees"), timeout=45, interval=0.5,
             message="the meeting in Exchange with the typed attendees")
