"""The Exchange lookups' rate limits (free/busy and attendees' answers: ``exchange_lookups``;
the attendee picker's search: ``people_search``) are counted in the shared cache with one
atomic INCR (workplace.throttling.SharedScopedRateThrottle), not DRF's get-then-set: threads
racing for the last slots and another process on the same Redis can't get past them."""

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.factories import days_ahead

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_window")


def freebusy_params() -> dict:
    start = days_ahead(6, 10)
    return {"emails": "bob@contoso.example", "start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat()}


def race(api_for, url: str, params: dict, threads: int = 30) -> list:
    """``threads`` requests released at once, each from its own client; their responses."""
    from django.db import connections

    responses, barrier, lock = [], threading.Barrier(threads), threading.Lock()

    def one():
        client = api_for()
        barrier.wait()
        try:
            response = client.get(url, params)
        finally:
            connections.close_all()
        with lock:
            responses.append(response)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return responses


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content[:300]
    assert set(response.json()) == {"message", "extra"} and response.json()["message"].startswith("Request was throttled.")
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("scope", "url", "params"), [
    ("people_search", "/api/v1/people/", {"search": "bo"}),
    ("exchange_lookups", "/api/v1/freebusy/", None),
])
def test_racing_requests_get_exactly_the_limit_through(api_as, alice, bob, rates, scope, url, params):
    rates(**{scope: "5/min"})
    params = params or freebusy_params()
    responses = race(lambda: api_as(alice), url, params)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 25
    for refused in (r for r in responses if r.status_code == 429):
        assert_throttled(refused)
    assert api_as(bob).get(url, params).status_code == 200  # per user: bob has his own budget


@pytest.mark.django_db
def test_the_lookup_limits_hold_across_processes(settings, rates, alice_api, alice, bob, one_window):
    """The count is Redis's: another web process (or host) refuses alice's next search, not bob's."""
    rates(people_search="3/min")
    assert [alice_api.get("/api/v1/people/", {"search": "bo"}).status_code for _ in range(3)] == [200] * 3
    code = (
        "import django; django.setup()\n"
        "from rest_framework.test import APIRequestFactory, force_authenticate\n"
        "from django.conf import settings\n"
        "from django.contrib.auth import get_user_model\n"
        "from calendar_sync.api import PeopleView\n"
        "from workplace import throttling\n"
        f"throttling._now = lambda: {one_window!r}  # the same window as this test's\n"
        "settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['people_search'] = '3/min'\n"
        "view, out = PeopleView(), []\n"
        f"for pk in ({alice.pk}, {bob.pk}):\n"
        "    request = APIRequestFactory().get('/api/v1/people/', {'search': 'bo'})\n"
        "    force_authenticate(request, user=get_user_model()(pk=pk))\n"
        "    request = view.initialize_request(request)\n"
        "    throttle = view.get_throttles()[0]\n"
        "    allowed = throttle.allow_request(request, view)\n"
        "    out.append(f'{allowed}:{throttle.wait()}')\n"
        "print(*out)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test", "REDIS_URL": settings.REDIS_URL}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    alice_there, bob_there = out.stdout.split()
    assert alice_there.startswith("False:") and int(alice_there.split(":")[1]) >= 1, out.stderr[-2000:]
    assert bob_there == "True:None", out.stderr[-2000:]
    assert_throttled(alice_api.get("/api/v1/people/", {"search": "bo"}))
