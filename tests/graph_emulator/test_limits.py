"""Throttling, fault injection and the request log."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from graph_emulator.testing import make_session
from tests.graph_emulator.helpers import ALICE, ATLAS, BOB, meeting


def test_rate_limit_per_app_per_mailbox(app_graph, emulator_control):
    emulator_control.configure(throttle_requests=5, throttle_window_seconds=30)
    statuses = [app_graph.get(f"/users/{ATLAS}/events").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    r = app_graph.get(f"/users/{ATLAS}/events")
    assert r.json()["error"]["code"] == "ApplicationThrottled" and int(r.headers["Retry-After"]) >= 1
    assert app_graph.get(f"/users/{BOB}/events").status_code == 200  # another mailbox has its own budget


def test_concurrency_limit(emulator_server, emulator_control, tokens):
    token = tokens("app")
    sessions = [make_session(emulator_server.ca_path) for _ in range(8)]
    for s in sessions:  # connect (TLS) first, so the 8 requests really overlap
        s.get(f"{emulator_server.base_url}/_emulator/health", timeout=10)
    emulator_control.configure(latency_ms=800)
    barrier = threading.Barrier(8)

    def call(s):
        barrier.wait()
        return s.get(f"{emulator_server.base_url}/v1.0/users/{ATLAS}/events", headers={"Authorization": f"Bearer {token}"}, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, sessions))
    for s in sessions:
        s.close()
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 4 and codes.count(429) == 4
    throttled = next(r for r in results if r.status_code == 429)
    assert "MailboxConcurrency" in throttled.json()["error"]["message"] and throttled.headers["Retry-After"]
    log = emulator_control.request_log()
    assert max(log["max_concurrency"].values()) == 4


def test_fault_status_codes(app_graph, emulator_control):
    emulator_control.inject_fault(method="POST", path="/events$", mailbox=ATLAS, count=2, status=503, retry_after=2)
    codes = [app_graph.post(f"/users/{ATLAS}/events", meeting()).status_code for _ in range(3)]
    assert codes == [503, 503, 201]
    emulator_control.inject_fault(path="/users/", count=1, status=429, retry_after=7)
    r = app_graph.get(f"/users/{ALICE}/events")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.json()["error"]["code"] == "TooManyRequests"
    assert app_graph.get(f"/users/{ALICE}/events").status_code == 200


def test_fault_delay_and_drop(app_graph, emulator_control, emulator_server, tokens):
    emulator_control.inject_fault(action="delay", seconds=1.5, path="/events$", count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        app_graph.s.get(f"{emulator_server.base_url}/v1.0/users/{ALICE}/events",
                        headers={"Authorization": f"Bearer {tokens('app')}"}, timeout=0.5)
    emulator_control.inject_fault(action="drop", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        app_graph.get(f"/users/{ALICE}/events")
    assert app_graph.get(f"/users/{ALICE}/events").status_code == 200
    emulator_control.inject_fault(action="drop", count=None, path="/token")
    emulator_control.clear_faults()
    assert emulator_control.faults() == []


def test_request_log_counts(app_graph, emulator_control):
    emulator_control.clear_request_log()
    app_graph.get(f"/users/{ATLAS}/events")
    app_graph.get(f"/users/{ATLAS}/events")
    app_graph.post(f"/users/{BOB}/events", meeting())
    log = emulator_control.request_log()
    by_endpoint = log["counts"]["by_endpoint"]
    assert by_endpoint["GET /v1.0/users/{id}/events"] == 2 and by_endpoint["POST /v1.0/users/{id}/events"] == 1
    assert log["counts"]["by_mailbox"][ATLAS] == 2 and log["counts"]["by_app"]["wsd-demo-client"] == 3
    since = log["last_seq"]
    app_graph.get(f"/users/{ATLAS}/events")
    assert emulator_control.request_log(since=since)["total"] == 1


def test_control_api_state_seed_and_snapshot(app_graph, emulator_control):
    emulator_control.seed({"users": [{"upn": "carol@contoso.example", "displayName": "Carol Chen"}],
                  "rooms": [{"upn": "dune@contoso.example", "displayName": "Dune", "capacity": 6}]})
    assert app_graph.get("/users/carol@contoso.example").json()["displayName"] == "Carol Chen"
    app_graph.post("/users/carol@contoso.example/events", meeting(rooms=["dune@contoso.example"]))
    state = emulator_control.state()
    assert state["mailboxes"]["dune@contoso.example"]["events"] == 1
    snap = emulator_control.snapshot()
    emulator_control.reset()
    assert app_graph.get("/users/carol@contoso.example").status_code == 404
    emulator_control.load_snapshot(snap)
    assert len(app_graph.get("/users/carol@contoso.example/events").json()["value"]) == 1
    made = emulator_control.create_event_as(ALICE, meeting("From Outlook"))
    assert made["organizer"]["emailAddress"]["address"] == ALICE


def test_control_api_errors_are_json(emulator_control, http, emulator_server):
    r = http.post(f"{emulator_server.base_url}/_emulator/faults", data=b"{oops")
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    r = http.post(f"{emulator_server.base_url}/_emulator/config", json={"no_such_key": 1})
    assert r.status_code == 400
