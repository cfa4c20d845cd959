"""Issue 14, item 5 in Chromium (JavaScript on and off): booking a taken slot shows rooms
free at that time and the room's next free slot; one click books the alternative."""

import pytest

from reservations.models import Reservation
from tests.browser.conftest import screenshot, sign_in
from tests.factories import ReservationFactory, RoomFactory, days_ahead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_clash_offers_alternatives_and_books_one(browser, portal, hq, dojo, alice, bob, javascript):
    cosmos = RoomFactory(building=hq, name="Cosmos", capacity=12)
    ReservationFactory(room=dojo, requested_for=bob, requested_by=bob, subject="Bob's workshop",
                       start=days_ahead(1, 14), end=days_ahead(1, 15, 30))
    context = browser.new_context(base_url=portal, java_script_enabled=javascript, viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto(f"/rooms/{dojo.pk}/book/?date={days_ahead(1, 9).date().isoformat()}&start=14:30&end=15:30")
        pg.get_by_label("Subject").fill("Design review")
        pg.get_by_role("button", name="Book Dojo").click()
        assert "Dojo is already booked" in pg.locator("#form-errors").inner_text()
        alternatives = pg.locator("#alternatives")
        assert "its next free time" in alternatives.inner_text()
        screenshot(pg, f"clash-alternatives-{'js' if javascript else 'nojs'}")
        alternatives.get_by_role("button", name="Book Cosmos (12 seats) at the same time").click()
        pg.wait_for_url("**/my/")
        assert "Booked “Design review” in Cosmos" in pg.locator(".messages").inner_text()
    finally:
        context.close()
    booked = Reservation.objects.get(subject="Design review")
    assert booked.room == cosmos and booked.start == days_ahead(1, 14, 30) and booked.end == days_ahead(1, 15, 30)
