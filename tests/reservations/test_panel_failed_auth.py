"""Unknown or revoked room-panel tokens are limited per client address (panel_failed_auth,
PANEL_FAILED_AUTH_PER_MINUTE): beyond the limit every panel token from that address is refused
with 429, Retry-After and the message (JSON for the state and buttons, the signed-out page for
the page) without being looked at; valid devices' requests are never counted, other addresses
are not affected; the count is atomic across threads and processes; X-Forwarded-For only
counts with TRUSTED_PROXIES."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import reverse

from workplace import throttling
from workplace.panels import room_panel_create, room_panel_revoke

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_window")]
ROOT = Path(__file__).resolve().parents[2]
GUESSER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def failed_auth(rates):
    def set_rate(rate: str):
        rates(panel_failed_auth=rate)
    return set_rate


@pytest.fixture
def dojo_panel(dojo):
    return room_panel_create(room=dojo, name="Dojo door")


def state(client, token: str, address: str = GUESSER, **headers):
    return client.get(reverse("portal:panel_state"), HTTP_AUTHORIZATION=f"Panel {token}", REMOTE_ADDR=address, **headers)


def assert_too_many_json(response):
    assert response.status_code == 429, response.content[:300]
    assert response.json()["message"].startswith("Too many requests: at most ")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_guessing_address_is_refused_past_the_limit_even_with_a_valid_token(client, dojo_panel, failed_auth):
    _, token = dojo_panel
    failed_auth("5/min")
    assert [state(client, f"guess-{n}").status_code for n in range(5)] == [401] * 5
    assert_too_many_json(state(client, "guess-5"))
    assert_too_many_json(state(client, token))  # not even looked at: a guess can't be tested
    refused = client.post(reverse("portal:panel_action", args=["book"]), {"minutes": "15"},
                          HTTP_AUTHORIZATION=f"Panel {token}", REMOTE_ADDR=GUESSER, HTTP_ACCEPT="application/json")
    assert_too_many_json(refused)
    page = client.get(reverse("portal:panel") + f"?token={token}", REMOTE_ADDR=GUESSER)
    assert page.status_code == 429 and 1 <= int(page["Retry-After"]) <= 60
    html = page.content.decode()
    assert "Too many requests: at most 5 per minute" in html and '<meta http-equiv="refresh" content="' in html
    assert "room_panel" not in page.cookies  # the tablet's cookie is kept for when the minute ends
    assert state(client, token, ELSEWHERE).status_code == 200  # another address: unaffected


def test_a_valid_devices_requests_are_never_counted(client, dojo_panel, failed_auth):
    _, token = dojo_panel
    failed_auth("3/min")
    assert [state(client, token).status_code for _ in range(12)] == [200] * 12
    assert [state(client, f"guess-{n}").status_code for n in range(3)] == [401] * 3
    assert_too_many_json(state(client, "guess-3"))


def test_a_revoked_tablet_drops_its_cookie_and_stops_counting(client, dojo_panel, failed_auth):
    panel, token = dojo_panel
    failed_auth("3/min")
    assert client.get(reverse("portal:panel") + f"?token={token}", REMOTE_ADDR=GUESSER).status_code == 302
    room_panel_revoke(panel=panel)
    first = client.get(reverse("portal:panel_state"), REMOTE_ADDR=GUESSER)
    assert first.status_code == 401 and first.cookies["room_panel"].value == ""  # the cookie is deleted
    # Its page keeps polling every 10 s, now without a token: signed out, never 429.
    assert [client.get(reverse("portal:panel_state"), REMOTE_ADDR=GUESSER).status_code for _ in range(10)] == [401] * 10
    # The address still has its budget for the two other failures.
    assert [state(client, f"guess-{n}").status_code for n in range(2)] == [401] * 2
    assert_too_many_json(state(client, "guess-2"))


def test_racing_guesses_get_exactly_the_limit_checked(client, failed_auth):
    """Every attempt is counted first with one atomic INCR: 30 guesses at once, 5 looked at."""
    from django.db import connections
    from django.test import Client

    failed_auth("5/min")
    statuses, barrier, lock = [], threading.Barrier(30), threading.Lock()

    def one(n: int):
        guesser = Client()
        barrier.wait()
        try:
            status = state(guesser, f"guess-{n}").status_code
        finally:
            connections.close_all()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * 5 + [429] * 25


def test_the_limit_holds_across_processes(client, settings, failed_auth, one_window):
    failed_auth("4/min")
    assert [state(client, f"guess-{n}").status_code for n in range(4)] == [401] * 4
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.test import RequestFactory\n"
        "from reservations.views.panel import panel_state_view\n"
        "from workplace import throttling\n"
        f"throttling._now = lambda: {one_window!r}  # the same window as this test's\n"
        "settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['panel_failed_auth'] = '4/min'\n"
        f"request = RequestFactory().get('/panel/state/', HTTP_AUTHORIZATION='Panel guess-4', REMOTE_ADDR={GUESSER!r})\n"
        "response = panel_state_view(request)\n"
        "print(response.status_code, response['Retry-After'])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test", "REDIS_URL": settings.REDIS_URL}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    status, retry_after = out.stdout.split()
    assert status == "429" and int(retry_after) >= 1, out.stderr[-2000:]


def test_x_forwarded_for_counts_only_behind_trusted_proxies(client, settings, failed_auth):
    failed_auth("2/min")
    # No trusted proxy: the header is the client's own claim, changing it doesn't give a fresh budget.
    assert [state(client, "g", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(3)] == [401, 401, 429]
    # One proxy (REMOTE_ADDR) appending the address it saw: clients behind it have their own budgets,
    # and what a client wrote before the proxy's entry is ignored.
    settings.TRUSTED_PROXIES = 1
    proxy = "10.0.0.5"
    assert [state(client, "g", proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ELSEWHERE}").status_code for n in range(3)] == [401, 401, 429]
    assert state(client, "g", proxy, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 401


@pytest.mark.parametrize(("meta", "proxies", "expected"), [
    ({"REMOTE_ADDR": "203.0.113.7"}, 0, "203.0.113.7"),
    ({"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, 0, "203.0.113.7"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.2"}, 1, "198.51.100.2"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.2"}, 2, "192.0.2.1"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.2"}, 3, "198.51.100.2"),
    ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, 0, "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "::ffff:203.0.113.7"}, 0, "203.0.113.7"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "not an address"}, 1, "unknown"),
    ({"REMOTE_ADDR": ""}, 0, "unknown"),
])
def test_client_address(settings, meta, proxies, expected):
    settings.TRUSTED_PROXIES = proxies
    assert throttling.client_address(RequestFactory().get("/", **meta)) == expected
