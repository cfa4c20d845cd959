"""The staff utilization page in Chromium, at desktop and phone (390 px) width: the charts from
the rollup, no serious/critical axe-core violation, no sideways scroll; narrowing to a building
offers its rooms, and one room's figures are that room's; the CSV export downloads."""

import datetime as dt
import zoneinfo

import pytest

from tests.browser.conftest import screenshot, sign_in
from tests.browser.test_portal_accessibility import SIZES, axe_violations
from tests.factories import BuildingFactory, FloorFactory, ReservationFactory, RoomFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
MONDAY = dt.date(2030, 3, 4)


@pytest.fixture
def booked(alice, admin):
    hq = BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin")
    first = FloorFactory(building=hq, name="1st", level=1)
    atlas = RoomFactory(building=hq, floor=first, name="Atlas")
    borealis = RoomFactory(building=hq, floor=first, name="Borealis")
    for day in range(5):
        start = dt.datetime.combine(MONDAY + dt.timedelta(days=day), dt.time(9), tzinfo=BERLIN)
        ReservationFactory(room=atlas, requested_for=alice, start=start, end=start + dt.timedelta(hours=2),
                           checked_in_at=start if day % 2 else None)
        ReservationFactory(room=borealis, requested_for=alice, start=start + dt.timedelta(hours=4),
                           end=start + dt.timedelta(hours=5), state="released" if day == 0 else "confirmed",
                           released_at=start + dt.timedelta(hours=4, minutes=15) if day == 0 else None)
    return {"hq": hq, "atlas": atlas}


@pytest.mark.parametrize("size", list(SIZES))
def test_the_utilization_page_in_a_browser(browser, portal, booked, size):
    phone = size == "phone"
    context = browser.new_context(base_url=portal, viewport=SIZES[size], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, ignore_https_errors=True, accept_downloads=True)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    sign_in(pg, "admin")
    period = f"start={MONDAY.isoformat()}&end={(MONDAY + dt.timedelta(days=6)).isoformat()}"
    pg.goto(f"/utilization/?{period}")
    assert pg.locator("#total-booked").inner_text() == "15.0"  # 10 h Atlas + 5 h Borealis
    assert pg.locator("#heatmap rect.cell").count() == 7 * 24 and pg.locator("#room-bars .bar-booked").count() == 2
    assert "Mon 09:00" in pg.locator("#peak-hours").inner_text()
    assert axe_violations(pg) == []
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(pg, f"utilization-{size}")
    # a building offers its rooms; one room's figures
    pg.goto(f"/utilization/?{period}&building={booked['hq'].pk}")
    options = pg.locator("select[name=room] option").all_inner_texts()
    assert options == ["All rooms", "Atlas", "Borealis"]
    pg.locator("select[name=room]").select_option(label="Atlas")
    pg.get_by_role("button", name="Show").click()
    pg.wait_for_url("**room=*")
    assert pg.locator("#total-booked").inner_text() == "10.0" and pg.locator("#total-checked-in").inner_text() == "4.0"
    assert axe_violations(pg) == []
    with pg.expect_download() as download:
        pg.locator("#csv-export").click()
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: PTH123, SIM115
    assert text.splitlines()[0].startswith("building,floor,room") and len(text.splitlines()) == 2 and ",Atlas," in text
    context.close()
