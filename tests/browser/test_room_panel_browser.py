"""The room panel in Chromium at tablet size (1024×768 landscape, touch), issue 15 item 3:
signing in with the admin's URL, book now, a booking made in Outlook appearing without a
reload (Outlook invite to the room in the emulator → change notification to the live webhook
→ the worker's pull → the panel's next poll), the offline state when requests fail, the
signed-out state once the token is revoked, and no serious/critical axe-core violation.
Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.utils import timezone

from calendar_sync.inbound import tasks as inbound_tasks
from reservations.models import Reservation, Source
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_portal_accessibility import axe_violations
from tests.calendar_sync.inbound_helpers import ATLAS, BOB, outlook_meeting
from tests.celery_worker import Worker
from tests.factories import ReservationFactory
from tests.waiting import wait_for
from workplace.panels import room_panel_create, room_panel_revoke

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 1024, "height": 768}
# The module (``reservations.views.panel`` is also the name of its view, re-exported by the package).
panel_views = importlib.import_module("reservations.views.panel")


@pytest.fixture
def tablet(browser, portal, monkeypatch, settings):
    monkeypatch.setattr(panel_views, "POLL_SECONDS", 1)  # the live server runs in this process
    # Polling ten times as often as a real panel: its rate limit rises to match.
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "panel_state": "600/min"}
    settings.REST_FRAMEWORK = rest
    context = browser.new_context(base_url=portal, viewport=TABLET, has_touch=True, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(pg, name: str) -> None:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(folder / f"{name}.png"))


def open_panel(pg, token: str) -> None:
    pg.goto(f"/panel/?token={token}")
    pg.wait_for_url("**/panel/")
    assert "token" not in pg.url  # the token left the address bar for a cookie


def no_serious_axe_violations(pg) -> None:
    found = axe_violations(pg)
    assert not found, f"serious/critical axe violations: {found}"


def fits_the_screen(pg) -> None:
    width, height = pg.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert width <= TABLET["width"] and height <= TABLET["height"], (width, height)


def test_book_now_at_the_door_then_offline_then_signed_out(tablet, dojo, alice):
    panel, token = room_panel_create(room=dojo, name="Dojo door")
    now = timezone.now().replace(second=0, microsecond=0)
    ReservationFactory(room=dojo, requested_for=alice, subject="Later", start=now + dt.timedelta(hours=2), end=now + dt.timedelta(hours=3))
    open_panel(tablet, token)
    body = tablet.locator("body")
    assert body.get_attribute("data-status") == "free"
    tz = dojo.building.tzinfo
    # "Free until" the later meeting when it is still today where the room is (after 22:00 it is tomorrow's).
    today = timezone.localtime(now + dt.timedelta(hours=2), tz).date() == timezone.localtime(now, tz).date()
    assert ("Free until" if today else "Free for the rest of the day") in tablet.locator("#status-label").inner_text()
    assert tablet.locator("#next-title").inner_text() == "Booked"  # subjects hidden by default
    fits_the_screen(tablet)
    no_serious_axe_violations(tablet)
    shot(tablet, "panel-free-tablet")

    tablet.get_by_role("button", name="30 min").tap()
    tablet.locator("body[data-status=busy]").wait_for()
    assert "Busy until" in tablet.locator("#status-label").inner_text()
    assert tablet.locator("#action-result").inner_text() == "Booked."
    r = Reservation.objects.get(source=Source.ROOM_PANEL)
    assert r.requested_by == panel.user and r.end - r.start == dt.timedelta(minutes=30)
    assert tablet.get_by_role("button", name="+15 min").is_visible() and tablet.get_by_role("button", name="End early").is_visible()
    no_serious_axe_violations(tablet)
    shot(tablet, "panel-busy-tablet")

    # The server can't be reached: the panel says so and turns its buttons off.
    tablet.route("**/panel/state/", lambda route: route.abort("connectionrefused"))
    tablet.locator("body[data-connection=offline]").wait_for()
    assert tablet.locator("#offline-banner").is_visible() and "Offline" in tablet.locator("#offline-banner").inner_text()
    assert tablet.get_by_role("button", name="End early").is_disabled()
    no_serious_axe_violations(tablet)
    shot(tablet, "panel-offline-tablet")
    tablet.unroute("**/panel/state/")
    tablet.locator("body[data-connection=online]").wait_for()
    assert not tablet.locator("#offline-banner").is_visible() and tablet.get_by_role("button", name="End early").is_enabled()

    # Ending early: a second tap confirms.
    tablet.get_by_role("button", name="End early").tap()
    tablet.get_by_role("button", name="Tap again to end").tap()
    tablet.locator("#action-result", has_text="Ended early").wait_for()
    r.refresh_from_db()
    assert r.end - r.start == dt.timedelta(minutes=5)  # the shortest a reservation can be; free from then
    end = timezone.localtime(r.end, dojo.building.tzinfo).strftime("%H:%M")
    assert tablet.locator("#status-label").inner_text() == f"Busy until {end}"
    assert f"free from {end}" in tablet.locator("#action-result").inner_text()

    # The admin revokes the tablet: its next poll shows it signed out.
    room_panel_revoke(panel=panel)
    tablet.locator("body[data-connection=signed-out]").wait_for()
    assert "Signed out" in tablet.locator("#signed-out-banner").inner_text()
    shot(tablet, "panel-signed-out-tablet")
    tablet.reload()
    assert "This panel is signed out" in tablet.content()


@pytest.fixture
def inbound_worker(worker_env, celery_not_eager, tmp_path):
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def test_a_booking_made_in_outlook_appears_on_the_panel_without_a_reload(tablet, portal, provider, mode, emulator, bob, atlas, inbound_worker):
    mode("Normal")
    counts = inbound_tasks.subscriptions_ensure(provider=provider)  # the webhook is the live server (portal fixture)
    assert counts["created"] >= 1, counts
    atlas.show_subjects = True
    atlas.save(update_fields=["show_subjects"])
    _, token = room_panel_create(room=atlas, name="Atlas door")
    open_panel(tablet, token)
    assert tablet.locator("#next-title").inner_text() == "Nothing booked"
    tablet.evaluate("window.__notReloaded = true")

    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=30)
    outlook_meeting(emulator, BOB, [ATLAS], start, subject="Bob's Outlook meeting")
    wait_for(lambda: Reservation.objects.filter(room=atlas, origin="exchange").exists(),
             message=lambda: f"the worker's pull: {inbound_worker.log_path.read_text()[-3000:]}")
    tablet.locator("#next-title", has_text="Bob's Outlook meeting").wait_for(timeout=30_000)
    assert tablet.evaluate("window.__notReloaded") is True, "the panel must not have reloaded"
    local = timezone.localtime(start, atlas.building.tzinfo)
    assert tablet.locator("#next-time").inner_text().startswith(local.strftime("%H:%M"))
    assert "Free until " + local.strftime("%H:%M") in tablet.locator("#status-label").inner_text()
    assert tablet.locator(".timeline .slot", has_text="Bob's Outlook meeting").count() == 1
    no_serious_axe_violations(tablet)
    shot(tablet, "panel-outlook-booking-tablet")


def test_rate_limited_the_panel_keeps_its_state_and_shows_the_message(tablet, dojo, alice, settings, monkeypatch):
    """Beyond its rates the server answers 429: a refused poll leaves the panel as it was (not
    offline, not blank) and a refused button says why; nothing is booked."""
    from workplace import throttling

    moment = throttling._now()
    monkeypatch.setattr(throttling, "_now", lambda: moment)  # one rate window for the whole test
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "panel_state": "2/min", "panel_actions": "1/min"}
    settings.REST_FRAMEWORK = rest  # the live server runs in this process
    _, token = room_panel_create(room=dojo, name="Dojo door")
    open_panel(tablet, token)
    tablet.wait_for_event("response", lambda r: r.url.endswith("/panel/state/") and r.status == 429)
    tablet.wait_for_timeout(1500)  # a poll or two more after the refusal
    body = tablet.locator("body")
    assert body.get_attribute("data-connection") == "online" and body.get_attribute("data-status") == "free"
    assert "Free" in tablet.locator("#status-label").inner_text()

    tablet.get_by_role("button", name="15 min").tap()
    tablet.locator("body[data-status=busy]").wait_for()
    tablet.get_by_role("button", name="+15 min").tap()
    tablet.locator("#action-result", has_text="Too many requests: at most 1 per minute").wait_for()
    assert Reservation.objects.get(room=dojo).end - Reservation.objects.get(room=dojo).start == dt.timedelta(minutes=15)
    no_serious_axe_violations(tablet)
    shot(tablet, "panel-rate-limited-tablet")
