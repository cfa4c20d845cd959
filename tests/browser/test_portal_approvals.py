"""Approvals in Chromium: Alice books a room that needs approval in the portal (it waits,
"Awaiting approval", nothing in Outlook); Carol, its approver, opens Approvals from the nav,
declines one booking with a reason and approves the other — whose meeting the real worker
then writes to Exchange (the emulator), where the room accepts it."""

import pytest
from django.contrib.auth.models import Group

from reservations.models import Reservation
from tests.browser.conftest import screenshot, sign_in
from tests.browser.test_portal_accessibility import axe_violations
from tests.factories import UserFactory, days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def book_in_portal(page, room, day: int, subject: str) -> Reservation:
    page.goto(f"/rooms/{room.pk}/book/?date={days_ahead(day, 9).date().isoformat()}&start=10:00&end=11:00")
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("button", name=f"Book {room.name}").click()
    page.wait_for_url("**/my/")
    return Reservation.objects.get(subject=subject)


def test_an_approver_declines_and_approves_in_the_portal(browser, page, portal, provider, mode, emulator, worker, alice, atlas):
    mode("Normal")
    approvers = Group.objects.create(name="Approvers of Atlas")
    UserFactory(username="carol", first_name="Carol").groups.add(approvers)
    atlas.needs_approval, atlas.approvers = True, approvers
    atlas.save()

    sign_in(page)
    first = book_in_portal(page, atlas, 2, "Strategy offsite")
    second = book_in_portal(page, atlas, 3, "Budget review")
    assert page.locator(f'[data-rsv="{first.pk}"] [data-approval="awaiting_approval"]').first.is_visible()
    assert page.get_by_role("link", name="Approvals").count() == 0  # Alice approves nothing
    assert (first.approval_state, first.event_id) == ("awaiting_approval", "")

    context = browser.new_context(base_url=portal, viewport={"width": 1280, "height": 900})
    carol = context.new_page()
    try:
        sign_in(carol, "carol")
        carol.get_by_role("link", name="Approvals").click()
        carol.wait_for_url("**/approvals/")
        assert carol.locator("#approvals tbody tr").count() == 2
        assert axe_violations(carol) == []
        screenshot(carol, "approvals-desktop")

        carol.locator(f'tr[data-rsv="{first.pk}"]').get_by_label("Reason (optional, for a decline)").fill("The offsite moved to Hamburg.")
        carol.locator(f"#decline-{first.pk}").click()
        carol.get_by_text("Declined “Strategy offsite”").wait_for()
        carol.locator(f"#approve-{second.pk}").click()
        carol.get_by_text("Approved “Budget review”").wait_for()
        assert carol.get_by_text("Nothing is waiting for your approval.").is_visible()
    finally:
        context.close()

    first.refresh_from_db()
    assert (first.state, first.approval_state, first.event_id) == ("rejected", "declined", "")
    assert first.state_reason == "Atlas's approver declined the request. The offsite moved to Hamburg."

    def confirmed() -> bool:
        second.refresh_from_db()
        return second.state == "confirmed"

    wait_for(confirmed, timeout=45, interval=0.5, message="the approved booking's meeting accepted by the room")
    assert second.approval_state == "accepted" and second.event_id
    page.goto(f"/reservations/{first.pk}/")
    assert "The offsite moved to Hamburg." in page.locator("#state-reason").inner_text()
