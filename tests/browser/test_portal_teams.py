"""Issue 14, item 9 in Chromium: a Teams booking from the portal goes to Exchange as an
online meeting; the emulator makes the join URL as Graph does and the detail page shows it."""

import pytest

from reservations.models import Reservation
from tests.browser.conftest import screenshot, sign_in
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_teams_booking_shows_its_join_link(page, provider, mode, emulator, alice, atlas, worker):
    mode("Normal")
    sign_in(page)
    page.goto(f"/rooms/{atlas.pk}/book/?date={days_ahead(2, 9).date().isoformat()}&start=11:00&end=12:00")
    page.get_by_label("Subject").fill("Remote design review")
    page.get_by_label("Teams meeting").check()
    page.get_by_role("button", name="Book Atlas").click()
    page.wait_for_url("**/my/")
    reservation = Reservation.objects.get(subject="Remote design review")
    assert reservation.online_meeting

    def linked():
        reservation.refresh_from_db()
        return bool(reservation.online_meeting_url)

    wait_for(linked, timeout=45, interval=0.5, message="the Teams join link from Exchange")
    assert reservation.online_meeting_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    page.goto(f"/reservations/{reservation.pk}/")
    link = page.get_by_role("link", name="Join the Teams meeting")
    assert link.get_attribute("href") == reservation.online_meeting_url
    screenshot(page, "detail-teams-desktop")
