"""Issue 14, accessibility and phones: every main page, at desktop (1366×900) and phone
(390×844) sizes, has no serious or critical axe-core violation, no horizontal scroll,
and leaves a full-page screenshot in test-artifacts/screenshots/."""

from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, sign_in
from tests.factories import AttendeeFactory, ReservationFactory, days_ahead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def axe_violations(pg) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs axe-core with npm (bin/ensure_axe.sh)", pytrace=False)
    pg.add_script_tag(path=str(AXE))
    result = pg.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def pages(alice, bob, atlas, dojo):
    mine = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Quarterly planning with the whole team",
                              start=days_ahead(1, 14), end=days_ahead(1, 15, 30), state="confirmed", sync_state="synced")
    for n in range(3):
        AttendeeFactory(reservation=mine, email=f"a.very.long.attendee.address.{n}@subsidiary.contoso.example")
    ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, subject="1:1", start=days_ahead(2, 9), end=days_ahead(2, 9, 30))
    day = days_ahead(1, 9).date().isoformat()
    return {
        "login": "/accounts/login/",
        "finder": f"/?date={day}",
        "finder-filtered": f"/?building=hq&date={day}&free_from=10:00&free_to=11:00",
        "book": f"/rooms/{atlas.pk}/book/?date={day}&start=10:00&end=11:00",
        "week": f"/rooms/{atlas.pk}/week/?week={day}",
        "day-grid": f"/calendar/?building=hq&date={day}",
        "day-grid-floor": f"/calendar/?building=hq&floor={atlas.floor_id}&date={day}",
        "my-reservations": "/my/",
        "detail": f"/reservations/{mine.pk}/",
        "change": f"/reservations/{mine.pk}/change/",
        "cancel": f"/reservations/{mine.pk}/cancel/",
        "outlook": "/outlook/",
    }


@pytest.mark.parametrize("size", list(SIZES))
def test_main_pages_have_no_serious_axe_violations_and_no_sideways_scroll(browser, portal, provider, mode, pages, size):
    mode("Normal")
    phone = size == "phone"
    context = browser.new_context(base_url=portal, viewport=SIZES[size], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, ignore_https_errors=True)
    pg = context.new_page()
    found, too_wide = {}, {}
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    try:
        for name, url in pages.items():
            if name != "login" and "/accounts/login/" in pg.url:
                sign_in(pg)
            pg.goto(url)
            assert name == "login" or "/accounts/login/" not in pg.url, name
            pg.wait_for_load_state("networkidle")
            pg.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-{size}.png"), full_page=True)
            # A mobile viewport grows to fit a too-wide page (innerWidth with it): compare with the screen's width too.
            widths = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > min(widths[1], SIZES[size]["width"]):
                too_wide[name] = widths
            violations = axe_violations(pg)
            if violations:
                found[name] = violations
    finally:
        context.close()
    assert not too_wide, f"pages wider than the screen (scrollWidth, innerWidth): {too_wide}"
    assert not found, f"serious/critical axe violations: {found}"
