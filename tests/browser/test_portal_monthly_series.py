"""Issue 14, item 1 (rest) in Chromium: a monthly series "on the 2nd Tuesday" (JavaScript on
and off) and one "on the last Friday", booked in the portal, land in Exchange as one
relativeMonthly series whose instances (expanded by the emulator as Exchange does) fall on
the same days as the portal's occurrences."""

import datetime as dt

import pytest

from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from graph_emulator.testing import app_token, make_session
from reservations.models import Reservation, ReservationSeries, SyncState
from tests.browser.conftest import screenshot, sign_in
from tests.factories import BERLIN
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def graph_get(emulator, path: str, **params) -> dict:
    token = app_token(emulator.base_url, emulator.ca_path, "contoso", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)["access_token"]
    session = make_session(emulator.ca_path)
    try:
        response = session.get(f"{emulator.base_url}/v1.0/{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=15)
        response.raise_for_status()
        return response.json()
    finally:
        session.close()


def nth_weekday(year: int, month: int, weekday: int, index: str) -> dt.date:
    """ISO ``weekday``: the first .. fourth or last of the month (written out independently of the product)."""
    days = [dt.date(year, month, d) for d in range(1, 32) if _valid(year, month, d) and dt.date(year, month, d).isoweekday() == weekday]
    return days[-1] if index == "last" else days[["first", "second", "third", "fourth"].index(index)]


def _valid(year, month, day) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def months_from(day: dt.date, n: int) -> list[tuple[int, int]]:
    out, year, month = [], day.year, day.month
    for _ in range(n):
        out.append((year, month))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


CASES = {
    "second-tuesday-js": ("second", 2, True),
    "second-tuesday-no-js": ("second", 2, False),
    "last-friday-js": ("last", 5, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_monthly_on_a_weekday_from_the_portal_is_one_series_in_exchange(
        browser, portal, provider, mode, emulator_server, alice, atlas, worker, case):
    index, weekday, javascript = CASES[case]
    mode("Normal")
    today = dt.datetime.now(BERLIN).date()
    # The first such day at least a week away, so its 09:00 is in the future.
    months = months_from(today, 3)
    first = next(d for d in (nth_weekday(y, m, weekday, index) for y, m in months) if d > today + dt.timedelta(days=7))
    expected = [nth_weekday(y, m, weekday, index) for y, m in months_from(first, 4)]
    subject = f"Steering ({case})"
    context = browser.new_context(base_url=portal, java_script_enabled=javascript, viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto(f"/rooms/{atlas.pk}/book/?date={first.isoformat()}&start=09:00&end=10:00")
        if javascript:
            assert not pg.locator("#month-weekday").is_visible()
        pg.get_by_label("Subject").fill(subject)
        pg.get_by_label("Repeat").select_option("monthly_weekday")
        month_weekday = pg.locator("#month-weekday")
        assert month_weekday.is_visible()
        if javascript:
            assert not pg.locator("#weekdays").is_visible()
        month_weekday.get_by_label("Which").select_option(index)
        month_weekday.get_by_label("Weekday").select_option(str(weekday))
        pg.get_by_label("After").check()
        pg.get_by_label("Occurrences").fill("4")
        screenshot(pg, f"book-monthly-{case}")
        pg.get_by_role("button", name=f"Book {atlas.name}").click()
        pg.wait_for_url("**/my/")
        assert "4 occurrences" in pg.locator(".messages").inner_text()
    finally:
        context.close()

    rows = list(Reservation.objects.filter(subject=subject).order_by("start"))
    assert [r.start.astimezone(BERLIN).date() for r in rows] == expected
    series = ReservationSeries.objects.get(subject=subject)
    assert (series.index, series.weekdays) == (index, [weekday])

    def pushed():
        series.refresh_from_db()
        return bool(series.event_id) and not Reservation.objects.filter(series=series).exclude(sync_state=SyncState.SYNCED).exists()

    wait_for(pushed, timeout=45, interval=0.5, message="the series pushed to Exchange")
    masters = [e for e in graph_get(emulator_server, f"users/{series.mailbox}/events")["value"] if e["subject"] == subject]
    assert len(masters) == 1 and masters[0]["type"] == "seriesMaster"
    pattern = masters[0]["recurrence"]["pattern"]
    assert pattern["type"] == "relativeMonthly" and pattern["index"] == index
    assert pattern["daysOfWeek"] == [["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][weekday - 1]]
    window = {"startDateTime": f"{first.isoformat()}T00:00:00", "endDateTime": f"{(expected[-1] + dt.timedelta(days=40)).isoformat()}T00:00:00"}
    instances = graph_get(emulator_server, f"users/{series.mailbox}/events/{series.event_id}/instances", **window)["value"]
    got = sorted(dt.datetime.fromisoformat(i["start"]["dateTime"][:19]).replace(tzinfo=dt.UTC).astimezone(BERLIN).date() for i in instances)
    assert got == expected
