"""Issue 14, items 6, 7 and 10 in Chromium: the admin pages touched — reservations, series,
sync events, subscriptions (a wide table), the provider's page with Test connection — and the
Outlook page, at desktop (1366×900) and phone (390×844): no horizontal page scroll (a wide
table scrolls inside its own box), zero serious/critical axe-core violations, times in the
building's zone with the zone named; screenshots in test-artifacts/screenshots/."""

import pytest

from calendar_sync.models import Subscription
from reservations.models import SyncEvent
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_portal_accessibility import SIZES, axe_violations
from tests.factories import ReservationFactory, days_ahead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def admin_sign_in(pg) -> None:
    pg.goto("/admin/login/")
    pg.get_by_label("Username").fill("admin")
    pg.get_by_label("Password").fill("demo-password")
    pg.get_by_role("button", name="Log in").click()
    pg.wait_for_url("**/admin/")

@pytest.mark.parametrize("size", list(SIZES))
def test_admin_pages_fit_the_screen_and_pass_axe(browser, portal, provider, admin, alice, atlas, size):
    r = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Quarterly planning with the whole team",
                           start=days_ahead(1, 14), end=days_ahead(1, 15))
    SyncEvent.objects.create(type=SyncEvent.Type.CREATE, reservation=r, state=SyncEvent.State.ERROR, error="403 ErrorAccessDenied " * 5)
    for n in range(3):
        Subscription.objects.create(provider=provider, mailbox=f"a.rather.long.room.mailbox.{n}@subsidiary.contoso.example",
                                    resource=f"/users/room{n}/events", expires_at=days_ahead(2, 9), last_notification_at=days_ahead(0, 8),
                                    last_error="Subscription validation request failed. Notification endpoint must respond with 200 OK.")
    pages = {
        "admin-reservations": "/admin/reservations/reservation/",
        "admin-series": "/admin/reservations/reservationseries/",
        "admin-sync-events": "/admin/reservations/syncevent/",
        "admin-subscriptions": "/admin/calendar_sync/subscription/",
        "admin-provider": f"/admin/exchange_auth/calendarprovider/{provider.pk}/change/",
        "admin-outlook": "/outlook/",
    }
    phone = size == "phone"
    context = browser.new_context(base_url=portal, viewport=SIZES[size], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, ignore_https_errors=True)
    pg = context.new_page()
    too_wide, found = {}, {}
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    try:
        admin_sign_in(pg)
        for name, url in pages.items():
            pg.goto(url)
            pg.wait_for_load_state("load")
            pg.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-{size}.png"), full_page=True)
            widths = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > min(widths[1], SIZES[size]["width"]):
                too_wide[name] = widths
            violations = axe_violations(pg)
            if violations:
                found[name] = violations
        pg.goto(pages["admin-reservations"])
        assert "CET (Europe/Berlin)" in pg.content() or "CEST (Europe/Berlin)" in pg.content()
        pg.goto(pages["admin-provider"])
        pg.get_by_role("button", name="Test connection").click()
        pg.wait_for_url(f"**{pages['admin-provider']}")
        assert pg.locator(".messagelist .success").filter(has_text=provider.name).count() == 1
    finally:
        context.close()
    assert not too_wide, f"pages wider than the screen (scrollWidth, innerWidth): {too_wide}"
    assert not found, f"serious/critical axe violations: {found}"
