"""Rate limits on check-in and the room panel (workplace.throttling), counted in the shared
Redis cache: one budget per employee whatever the channel (REST API, the portal's button,
the QR code / short URL), one per panel device for its buttons and one for its polling. Beyond
it: 429, ``Retry-After`` and a JSON message (a form error on the portal's pages), and nothing
changes. The counter is atomic and shared: threads and another process can't get past it."""

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from reservations.models import Reservation
from tests.booking import book
from workplace import throttling
from workplace.panels import room_panel_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_window")]
ROOT = Path(__file__).resolve().parents[2]


def meeting_now(actor, room, hour: int, **fields) -> Reservation:
    """A reservation of ``actor`` under way since 3 minutes (its check-in window is open)."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=3)
    row = book(actor=actor, room=room, start=start + dt.timedelta(days=1, hours=hour), hours=0.5, **fields)
    Reservation.objects.filter(pk=row.pk).update(start=start + dt.timedelta(hours=hour), end=start + dt.timedelta(hours=hour, minutes=30),
                                                 created_at=start - dt.timedelta(days=1))
    return Reservation.objects.get(pk=row.pk)


@pytest.fixture
def three(alice, dojo, hq):
    from tests.factories import RoomFactory

    rooms = [dojo, RoomFactory(building=hq, name="Loft"), RoomFactory(building=hq, name="Nook")]
    return [meeting_now(alice, room, 0) for room in rooms]


def check_in_api(api, reservation):
    return api.post(f"/api/v1/reservations/{reservation.pk}/check_in/")


def assert_throttled_json(response, *, window: int = 60):
    assert response.status_code == 429, response.content[:300]
    body = response.json()
    assert set(body) >= {"message", "extra"} and body["message"].startswith("Too many requests: at most ")
    assert 1 <= int(response["Retry-After"]) <= window


def test_the_api_refuses_check_ins_beyond_the_rate_with_429_and_retry_after(alice_api, bob_api, bob, hq, three, rates):
    from tests.factories import RoomFactory

    rates(check_in="3/min")
    first, second, third = three
    for _ in range(3):  # checking in twice is harmless, and counts
        assert check_in_api(alice_api, first).status_code == 200
    refused = check_in_api(alice_api, second)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert set(refused.json()) == {"message", "extra"} and "throttled" in refused.json()["message"]
    assert Reservation.objects.get(pk=second.pk).checked_in_at is None  # nothing changed
    # Another employee has a budget of their own.
    theirs = meeting_now(bob, RoomFactory(building=hq, name="Den"), 0)
    assert check_in_api(bob_api, theirs).status_code == 200


def test_one_budget_per_employee_across_the_api_the_portal_and_the_qr_code(client, alice, alice_api, three, rates):
    rates(check_in="2/min")
    first, second, third = three
    client.force_login(alice)
    assert check_in_api(alice_api, first).status_code == 200
    assert client.post(reverse("portal:check_in", args=[second.pk]), {"next": "/my/"}).status_code == 302

    # The QR code's page: the page again with the message as its error, 429 and Retry-After.
    qr = client.post(reverse("portal:room_check_in", args=[third.room_id]), {"reservation": third.pk})
    assert qr.status_code == 429 and 1 <= int(qr["Retry-After"]) <= 60
    page = qr.content.decode()
    assert 'id="checkin-error"' in page and "Too many requests: at most 2 per minute" in page
    assert f'id="checkin-button-{third.pk}"' in page  # the button is still there, for later
    # The portal's button: a page saying so, with the way back.
    button = client.post(reverse("portal:check_in", args=[third.pk]), {"next": "/my/"})
    assert button.status_code == 429 and 'id="rate-limited"' in button.content.decode() and 'href="/my/"' in button.content.decode()
    # A script asking for JSON gets the API's shape.
    scripted = client.post(reverse("portal:room_check_in", args=[third.room_id]), {"reservation": third.pk}, HTTP_ACCEPT="application/json")
    assert_throttled_json(scripted)
    assert scripted.json()["code"] == "throttled" and f"Try again in {scripted['Retry-After']} s." in scripted.json()["message"]
    assert check_in_api(alice_api, third).status_code == 429
    assert Reservation.objects.get(pk=third.pk).checked_in_at is None
    # Reading the QR page isn't counted.
    assert client.get(reverse("portal:room_check_in", args=[third.room_id])).status_code == 200


def test_a_panels_buttons_and_polling_are_limited_per_device(client, dojo, hq, rates):
    from tests.factories import RoomFactory

    rates(panel_actions="2/min", panel_state="3/min")
    _, token = room_panel_create(room=dojo, name="Dojo door")
    _, other_token = room_panel_create(room=RoomFactory(building=hq, name="Loft"), name="Loft door")
    tablet, other = client.__class__(), client.__class__()
    for device, key in ((tablet, token), (other, other_token)):
        assert device.get(reverse("portal:panel") + f"?token={key}").status_code == 302
    act = reverse("portal:panel_action", args=["book"])

    assert tablet.post(act, {"minutes": "15"}).status_code == 200
    assert tablet.post(act, {"minutes": "abc"}).status_code == 400  # a refused action counts too
    refused = tablet.post(act, {"minutes": "30"})
    assert_throttled_json(refused)
    assert Reservation.objects.filter(room=dojo).count() == 1  # the third booking wasn't made
    assert other.post(act, {"minutes": "15"}).status_code == 200  # another tablet isn't held back

    state = reverse("portal:panel_state")
    assert [tablet.get(state).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert_throttled_json(tablet.get(state))


def test_a_refused_request_does_not_count_and_the_next_window_starts_afresh():
    rate = "2/min"
    start = 1_800_000_000.0  # a window boundary (a multiple of 60)
    assert throttling.hit("t", "x", rate=rate, now=start + 1) is None
    assert throttling.hit("t", "x", rate=rate, now=start + 2) is None
    refused = throttling.hit("t", "x", rate=rate, now=start + 20)
    assert refused is not None and refused.retry_after == 40 and refused.limit == 2
    assert [throttling.hit("t", "x", rate=rate, now=start + 30 + i) is not None for i in range(5)] == [True] * 5
    assert throttling.hit("t", "x", rate=rate, now=start + 60) is None  # retry after 40 s: allowed
    assert throttling.hit("t", "x", rate=rate, now=start + 61) is None
    assert throttling.hit("t", "x", rate=rate, now=start + 62) is not None


def test_concurrent_requests_cant_get_past_the_limit():
    """Redis INCR is atomic: 40 threads at a limit of 10 get exactly 10 through."""
    from django.db import connections

    allowed, barrier, lock = [], threading.Barrier(40), threading.Lock()

    def one():
        barrier.wait()
        ok = throttling.hit("race", "alice", rate="10/min") is None
        with lock:
            allowed.append(ok)
        connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 10 and len(allowed) == 40


def test_the_limit_holds_across_processes(settings, one_window):
    """Another process (another web worker or host on the same Redis) sees the same count."""
    for _ in range(5):
        assert throttling.hit("shared", "alice", rate="5/min") is None
    code = (
        "import django; django.setup()\n"
        "from workplace import throttling\n"
        f"at = {one_window!r}  # the same window as this test's\n"
        "print(throttling.hit('shared', 'alice', rate='5/min', now=at) is not None, throttling.hit('shared', 'bob', rate='5/min', now=at) is None)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test", "REDIS_URL": settings.REDIS_URL}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_when_the_cache_is_down_check_in_is_let_through(alice_api, three, rates, monkeypatch, caplog):
    rates(check_in="1/min")

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(throttling.cache, "incr", down)
    assert [check_in_api(alice_api, r).status_code for r in three[:2]] == [200, 200]
    assert "can't be reached" in caplog.text
