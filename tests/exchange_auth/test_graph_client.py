"""The Graph client seam on its own: retries, Retry-After, 401 refresh, typed errors,
the per-mailbox cap across processes, $batch and the log line.

The server side here is a scripted requests adapter (no network); the client's
behaviour against the real emulator is covered in test_push_emulator.py."""

import json
import logging
import os
import threading
import time

import pytest
import requests
from requests.adapters import BaseAdapter

from exchange_auth.graph import (
    AccessDenied,
    BatchItem,
    GraphClient,
    GraphError,
    MailboxSemaphore,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
    path_template,
    users_path,
)

REDIS_URL = os.environ["REDIS_URL"]  # this run's Redis db (settings/test.py), one per pytest-xdist worker


class Scripted(BaseAdapter):
    """Answers each request with the next scripted (status, headers, body) or exception."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.requests = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers, body = item
        resp = requests.Response()
        resp.status_code = status
        resp.headers.update({"Content-Type": "application/json", **headers})
        resp._content = json.dumps(body).encode() if body is not None else b""
        resp.request = request
        resp.url = request.url
        return resp

    def close(self):
        pass


def make_client(script, *, semaphore=None, token=None, **kw):
    adapter = Scripted(script)
    session = requests.Session()
    session.mount("https://", adapter)
    sleeps = []
    client = GraphClient(
        token or (lambda force_refresh=False: "tok-refreshed" if force_refresh else "tok-1"),
        base_url="https://graph.test/v1.0", session=session, timeout=5,
        semaphore=semaphore or MailboxSemaphore(None), sleep=sleeps.append, **kw,
    )
    return client, adapter, sleeps


def err(status, code, headers=None):
    return (status, headers or {}, {"error": {"code": code, "message": f"{code} happened"}})


def test_a_429_is_retried_after_the_servers_retry_after():
    client, adapter, sleeps = make_client([err(429, "ApplicationThrottled", {"Retry-After": "3"}), (201, {}, {"id": "E1"})])
    assert client.post(users_path("alice@contoso.example", "events"), json={"subject": "x"}) == {"id": "E1"}
    assert len(adapter.requests) == 2
    assert 3 <= sleeps[0] < 3.3


@pytest.mark.parametrize("status", [503, 504])
def test_service_unavailable_and_gateway_timeout_are_retried_with_backoff(status):
    client, adapter, sleeps = make_client([err(status, "ServiceUnavailable"), err(status, "ServiceUnavailable"), (200, {}, {"ok": 1})])
    assert client.get("/users/alice@contoso.example/events") == {"ok": 1}
    assert len(sleeps) == 2 and all(0 <= s <= 30 for s in sleeps)


def test_connection_errors_are_retried():
    client, adapter, _ = make_client([requests.ConnectionError("reset"), (200, {}, {"ok": 1})])
    assert client.get("/users/a@x/events") == {"ok": 1}


def test_a_storm_longer_than_the_attempts_raises_throttled_with_retry_after():
    client, adapter, sleeps = make_client([err(429, "TooManyRequests", {"Retry-After": "7"})] * 3, max_attempts=3)
    with pytest.raises(Throttled) as info:
        client.get("/users/a@x/events")
    assert info.value.status == 429 and info.value.retry_after == 7 and info.value.transient
    assert len(adapter.requests) == 3


def test_connection_errors_exhausted_raise_unavailable():
    client, _, _ = make_client([requests.Timeout("slow")] * 2, max_attempts=2)
    with pytest.raises(Unavailable):
        client.get("/users/a@x/events")


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "ErrorInvalidRequest", GraphError), (403, "ErrorAccessDenied", AccessDenied),
    (404, "ErrorItemNotFound", NotFound), (412, "ErrorIrresolvableConflict", PreconditionFailed),
    (500, "InternalServerError", GraphError),
])
def test_other_errors_are_not_retried_and_are_typed(status, code, cls):
    client, adapter, sleeps = make_client([err(status, code)])
    with pytest.raises(cls) as info:
        client.get("/users/a@x/events/E1")
    assert (info.value.status, info.value.code) == (status, code)
    assert not info.value.transient
    assert len(adapter.requests) == 1 and sleeps == []


def test_a_401_refreshes_the_token_once():
    client, adapter, _ = make_client([err(401, "InvalidAuthenticationToken"), (200, {}, {"ok": 1})])
    assert client.get("/users/a@x/events") == {"ok": 1}
    assert [r.headers["Authorization"] for r in adapter.requests] == ["Bearer tok-1", "Bearer tok-refreshed"]


def test_a_second_401_is_final():
    client, adapter, _ = make_client([err(401, "InvalidAuthenticationToken")] * 2)
    with pytest.raises(GraphError) as info:
        client.get("/users/a@x/events")
    assert info.value.status == 401 and len(adapter.requests) == 2


def test_the_log_line_names_method_template_mailbox_status_and_attempt_but_no_secret(caplog):
    client, _, _ = make_client([err(429, "TooManyRequests", {"Retry-After": "0"}), (200, {}, {"ok": 1})])
    with caplog.at_level(logging.INFO, logger="exchange_auth.graph"):
        client.get(users_path("alice@contoso.example", "events", "AAMkAGI2TG93AAA=longeventid0123456789"))
    lines = [r.getMessage() for r in caplog.records if r.name == "exchange_auth.graph"]
    assert len(lines) == 2
    assert "method=GET path=/users/{mailbox}/events/{id} mailbox=alice@contoso.example status=429" in lines[0]
    assert "attempt=2" in lines[1] and "status=200" in lines[1]
    assert all("tok-1" not in line and "AAMk" not in line for line in lines)


def test_path_template():
    assert path_template("/users/room@x.example/events/AAMkAGI2TG93AAAbcdefghijkl=/instances?x=1") == "/users/{mailbox}/events/{id}/instances"
    assert path_template("/$batch") == "/$batch"


def test_batch_returns_one_result_per_item_and_retries_throttled_items():
    first = (200, {}, {"responses": [
        {"id": "0", "status": 200, "body": {"id": "A"}},
        {"id": "1", "status": 429, "headers": {"Retry-After": "2"}, "body": {"error": {"code": "TooManyRequests", "message": "slow"}}},
        {"id": "2", "status": 404, "body": {"error": {"code": "ErrorItemNotFound", "message": "gone"}}},
    ]})
    second = (200, {}, {"responses": [{"id": "1", "status": 200, "body": {"id": "B"}}]})
    client, adapter, sleeps = make_client([first, second])
    items = [BatchItem("GET", f"/users/a@x/events/{n}") for n in "ABC"]
    results = client.batch(items)
    assert results[0].body == {"id": "A"} and results[1].body == {"id": "B"}
    assert isinstance(results[2], NotFound)
    sent = json.loads(adapter.requests[1].body)
    assert [r["id"] for r in sent["requests"]] == ["1"]
    assert sleeps and sleeps[0] >= 2


def test_batch_splits_into_twenty_per_request():
    answers = [(200, {}, {"responses": [{"id": str(i), "status": 200, "body": {}} for i in range(lo, min(lo + 20, 45))]}) for lo in (0, 20, 40)]
    client, adapter, _ = make_client(answers)
    # one mailbox per item: the 4-per-mailbox grouping (test_batch_limits.py) doesn't split them further
    assert len(client.batch([BatchItem("GET", f"/users/u{i}@x/events/{i}") for i in range(45)])) == 45
    assert len(adapter.requests) == 3


# --- the per-mailbox cap, shared through Redis ------------------------------------------


@pytest.fixture
def redis_sem():
    import redis

    redis.Redis.from_url(REDIS_URL).delete("test:mbx:room@x")
    return MailboxSemaphore(REDIS_URL, limit=4, lease=5, wait=10, prefix="test:mbx:")


def test_at_most_four_requests_per_mailbox_run_at_once(redis_sem):
    active, peak, lock = [0], [0], threading.Lock()
    four_inside = threading.Barrier(4)  # a slot is held until four requests run at once

    def work():
        release = redis_sem.acquire("room@x")
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        four_inside.wait(timeout=10)
        with lock:
            active[0] -= 1
        release()

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 4
    assert redis_sem.in_use("room@x") == 0


def test_slots_of_a_dead_worker_expire(redis_sem):
    short = MailboxSemaphore(REDIS_URL, limit=2, lease=0.3, wait=5, prefix="test:mbx:")
    short.acquire("room@x")
    short.acquire("room@x")  # never released: the worker "died"
    started = time.monotonic()
    short.acquire("room@x")()
    assert 0.2 < time.monotonic() - started < 3


def test_a_waiter_is_woken_by_the_release_not_by_polling(redis_sem):
    """A taker that finds the mailbox full blocks until a slot is released — in another
    process too (here: another semaphore object, its own Redis connections) — and tries
    once more then: no sleep-polling, no slot left idle while takers wait."""
    import redis

    redis.Redis.from_url(REDIS_URL).delete("test:mbx:room@x:free")
    holder = MailboxSemaphore(REDIS_URL, limit=1, lease=30, wait=60, prefix="test:mbx:", recheck=30)
    waiter = MailboxSemaphore(REDIS_URL, limit=1, lease=30, wait=60, prefix="test:mbx:", recheck=30)
    release = holder.acquire("room@x")
    got = threading.Event()

    def wait_for_slot():
        waiter.acquire("room@x")()
        got.set()

    thread = threading.Thread(target=wait_for_slot)
    thread.start()
    while waiter.waits == 0:  # it found the mailbox full and blocked
        time.sleep(0.01)
    assert not got.wait(0.3)
    release()
    # Woken by the release: well before its 30 s recheck would have looked again.
    assert got.wait(10)
    thread.join()
    assert waiter.waits == 1
    assert waiter.in_use("room@x") == 0


def test_a_release_while_nobody_waits_is_not_lost_and_the_wake_list_stays_bounded(redis_sem):
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.delete("test:mbx:room@x:free")
    for _ in range(10):
        redis_sem.acquire("room@x")()
    assert r.llen("test:mbx:room@x:free") == 4  # at most one token per slot
    assert r.ttl("test:mbx:room@x:free") > 0
    assert redis_sem.in_use("room@x") == 0


def test_a_batch_can_take_one_slot_per_mailbox_at_a_time():
    """``per_mailbox=1``: each HTTP batch carries at most one request per mailbox, so it
    needs one free slot of that mailbox, not four at once (the answer check of a mailbox
    the pushes keep busy)."""
    answers = [(200, {}, {"responses": [{"id": str(i), "status": 200, "body": {"n": i}}]}) for i in range(3)]
    client, adapter, _ = make_client(answers)
    results = client.batch([BatchItem("GET", f"/users/org@x/events/{i}") for i in range(3)], per_mailbox=1)
    assert [r.body for r in results] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len(adapter.requests) == 3
    assert [len(json.loads(r.body)["requests"]) for r in adapter.requests] == [1, 1, 1]


def test_slots_taken_together_are_released_together_each_with_its_wake_up_token(redis_sem):
    """A batch's slots (``acquire(count=3)``) leave the set at once, one wake-up token each."""
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.delete("test:mbx:room@x:free")
    release = redis_sem.acquire("room@x", count=3)
    assert redis_sem.in_use("room@x") == 3
    other = redis_sem.acquire("room@x")
    release()
    assert redis_sem.in_use("room@x") == 1 and r.llen("test:mbx:room@x:free") == 3
    other()
    assert redis_sem.in_use("room@x") == 0 and r.llen("test:mbx:room@x:free") == 4


# --- the per-mailbox request rate, shared through Redis ------------------------------------------


@pytest.fixture
def rate_sem():
    """Outlook's 10,000 requests per 10 minutes per app and mailbox, here 5 a minute."""
    import redis

    redis.Redis.from_url(REDIS_URL).delete(*(f"test:rate:{m}{s}" for m in ("org@x", "room@x") for s in ("", ":free", ":rate")))
    return MailboxSemaphore(REDIS_URL, limit=4, lease=5, wait=0.2, prefix="test:rate:", requests=5, window=60, window_margin=0)


def test_a_mailbox_gets_no_more_requests_in_its_window_than_graph_allows(rate_sem):
    """The sixth request of the window is not let through: refused with the time still to wait
    (``MailboxRateLimited``: a push is retried then), its slot given back. A batch's items count
    one each; another mailbox has its own window."""
    for _ in range(3):
        rate_sem.acquire("org@x")()
    rate_sem.acquire("org@x", count=2)()  # a batch carrying two requests for the mailbox
    with pytest.raises(Unavailable) as refused:
        rate_sem.acquire("org@x")
    assert refused.value.code == "MailboxRateLimited"
    assert 55 < refused.value.retry_after <= 61  # until the first of the five leaves the window
    assert rate_sem.in_use("org@x") == 0
    rate_sem.acquire("room@x")()


def test_a_batch_that_would_overrun_the_window_is_not_sent(rate_sem):
    """Three requests left in the window: a batch of four items for the mailbox is not sent at
    all (Graph would answer the fourth 429 inside the batch)."""
    for _ in range(2):
        rate_sem.acquire("org@x")()
    client, adapter, _ = make_client([], semaphore=rate_sem)
    with pytest.raises(Unavailable):
        client.batch([BatchItem("GET", f"/users/org@x/events/{i}") for i in range(4)])
    assert adapter.requests == []
    assert rate_sem.in_use("org@x") == 0


def test_a_request_waits_for_the_window_to_make_room_and_then_goes(rate_sem):
    short = MailboxSemaphore(REDIS_URL, limit=4, lease=5, wait=10, prefix="test:rate:", requests=2, window=0.3, window_margin=0)
    for _ in range(3):
        short.acquire("org@x")()
    assert short.rate_waits >= 1  # the third waited for the first to leave the window


def test_without_redis_the_request_rate_holds_in_the_process():
    local = MailboxSemaphore(None, wait=0.1, requests=2, window=60, window_margin=0)
    local.acquire("org@x")()
    local.acquire("org@x")()
    with pytest.raises(Unavailable):
        local.acquire("org@x")


def test_a_batch_is_not_sent_while_its_mailbox_has_fewer_free_slots_than_it_carries(redis_sem):
    """Graph counts each request of a $batch against its mailbox's 4 concurrent requests
    (https://learn.microsoft.com/en-us/graph/json-batching#throttling-and-batching): a batch of 3
    for a mailbox where 2 are in flight waits, unsent, until 3 slots are free, and holds them."""
    import redis

    redis.Redis.from_url(REDIS_URL).delete("test:mbx:room@x:free")
    held = [redis_sem.acquire("room@x"), redis_sem.acquire("room@x")]
    answer = (200, {}, {"responses": [{"id": str(i), "status": 200, "body": {}} for i in range(3)]})
    client, adapter, _ = make_client([answer], semaphore=redis_sem)
    done = threading.Event()

    def send():
        client.batch([BatchItem("GET", f"/users/room@x/events/{i}") for i in range(3)])
        done.set()

    thread = threading.Thread(target=send)
    thread.start()
    while redis_sem.waits == 0:  # found 2 of 4 free and blocked
        time.sleep(0.01)
    assert adapter.requests == [] and redis_sem.in_use("room@x") == 2
    held.pop()()  # 3 free now
    assert done.wait(10)
    thread.join()
    assert len(adapter.requests) == 1 and len(json.loads(adapter.requests[0].body)["requests"]) == 3
    held.pop()()
    assert redis_sem.in_use("room@x") == 0
