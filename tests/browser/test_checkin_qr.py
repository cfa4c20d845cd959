"""The check-in page a room's QR code opens, on a phone (390×844): the employee scans the code
on the door, signs in, is brought back to the page and checks in with one tap. A full-page
screenshot stays in test-artifacts/screenshots/; axe-core finds no serious or critical
violation, before and after the check-in."""

import datetime as dt

import pytest
from django.utils import timezone

from reservations.models import Reservation
from tests.booking import book
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_portal_accessibility import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_checking_in_from_the_qr_url_on_a_phone(phone, alice, dojo):
    dojo.checkin_required = True
    dojo.save()
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=2)
    row = book(actor=alice, room=dojo, start=start + dt.timedelta(hours=2), subject="Design review")
    Reservation.objects.filter(pk=row.pk).update(start=start, end=start + dt.timedelta(hours=1), created_at=start - dt.timedelta(days=1))
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)

    phone.goto(f"/r/{dojo.pk}/")  # what the QR code holds: not signed in yet
    phone.get_by_label("Username").fill("alice")
    phone.get_by_label("Password").fill("demo-password")
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url(f"**/r/{dojo.pk}/")
    button = phone.get_by_role("button", name="Check in now")
    assert button.is_visible()
    box = button.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 300  # a thumb-sized target across the phone
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=str(ARTIFACTS / "screenshots" / "checkin-qr-phone.png"), full_page=True)
    assert axe_violations(phone) == []

    button.click()
    result = phone.locator("#checkin-result")
    result.wait_for()
    assert "Checked in to “Design review”" in result.inner_text()
    phone.screenshot(path=str(ARTIFACTS / "screenshots" / "checkin-qr-phone-done.png"), full_page=True)
    assert axe_violations(phone) == []
    stored = Reservation.objects.get(pk=row.pk)
    assert stored.checked_in_channel == "qr" and stored.checked_in_by_id == alice.pk
