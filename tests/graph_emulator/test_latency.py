"""Realism knobs for benches (issue 17): latency per kind of request, seeded; request counts
per mailbox and kind. Microsoft publishes no latency figures; the ranges are configuration."""

from __future__ import annotations

import pytest

from graph_emulator.__main__ import parse_latency
from tests.graph_emulator.helpers import ATLAS, meeting


def durations(emulator_control, endpoint: str) -> list[float]:
    return [e["duration_ms"] for e in emulator_control.request_log()["entries"] if e["endpoint"] == endpoint]


def test_reads_and_writes_take_their_own_latency(app_graph, emulator_control):
    emulator_control.configure(latency={"read": [0, 0], "write": [120, 140]}, latency_seed=7)
    emulator_control.clear_request_log()
    for _ in range(3):
        assert app_graph.post(f"/users/{ATLAS}/events", meeting()).status_code == 201
        assert app_graph.get(f"/users/{ATLAS}/events").status_code == 200
    writes = durations(emulator_control, "POST /v1.0/users/{id}/events")
    reads = durations(emulator_control, "GET /v1.0/users/{id}/events")
    assert len(writes) == 3 and all(d >= 120 for d in writes)
    assert len(reads) == 3 and all(d < 120 for d in reads)
    counts = emulator_control.request_log()["counts"]["by_mailbox_kind"]
    assert counts[f"{ATLAS} write"] == 3 and counts[f"{ATLAS} read"] == 3


def test_batch_items_each_take_their_latency_and_the_envelope_none(app_graph, emulator_control):
    emulator_control.configure(latency={"read": [100, 100]})
    emulator_control.clear_request_log()
    body = {"requests": [{"id": str(i), "method": "GET", "url": f"/users/{ATLAS}/events"} for i in range(1, 5)]}
    assert app_graph.post("/$batch", body).status_code == 200
    items = [e for e in emulator_control.request_log()["entries"] if e["batch"]]
    assert len(items) == 4 and all(e["duration_ms"] >= 100 for e in items)
    envelope = durations(emulator_control, "POST /v1.0/$batch")
    assert envelope and envelope[0] < 400 * 4  # items run concurrently, as Graph's do


def test_a_bad_latency_config_is_refused(emulator_control):
    with pytest.raises(RuntimeError, match="400"):
        emulator_control.configure(latency={"read": [150, 50]})
    with pytest.raises(RuntimeError, match="400"):
        emulator_control.configure(latency={"slow": [1, 2]})


def test_the_command_line_reads_latency_ranges():
    assert parse_latency("read=50-150,write=150-400") == {"read": [50.0, 150.0], "write": [150.0, 400.0]}
    assert parse_latency("write=200") == {"write": [200.0, 200.0]}
    with pytest.raises(SystemExit):
        parse_latency("fast=1-2")
