"""Issue 18 item 8: ``$batch`` is throttled per request inside the batch, against each
mailbox's limits (4 concurrent requests per app per mailbox). The Graph client groups
same-mailbox items so one batch never carries more than 4 requests for one mailbox, and
retries per-item 429s after their ``Retry-After``.

Against the emulator over HTTPS, with the provider's app-only token from real MSAL."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

from calendar_sync.common.clients import system_client
from exchange_auth.graph import BatchItem, GraphResponse, users_path

ATLAS = "atlas@contoso.example"
BOREALIS = "borealis@contoso.example"


def _meetings(emulator, organizer: str, room: str, n: int) -> list[str]:
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(hour=6, minute=0, second=0, microsecond=0)
    ids = []
    for i in range(n):
        s = start + dt.timedelta(minutes=30 * i)
        made = emulator.create_event_as(organizer, {
            "subject": f"Batch {i}",
            "start": {"dateTime": s.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (s + dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
        })
        ids.append(made["id"])
    return ids


def _batches(log: dict) -> list[Counter]:
    """Each ``POST /$batch`` of the request log as the count of its items per mailbox (the
    emulator logs a batch's items, then the batch itself)."""
    batches, current = [], Counter()
    for entry in log["entries"]:
        if entry["batch"]:
            current[entry["mailbox"]] += 1
        elif entry["endpoint"] == "POST /v1.0/$batch":
            batches.append(current)
            current = Counter()
    return batches


def test_one_batch_never_carries_more_than_four_requests_for_one_mailbox(provider, emulator):
    ids = _meetings(emulator, "alice@contoso.example", ATLAS, 11) + _meetings(emulator, "bob@contoso.example", BOREALIS, 3)
    owners = ["alice@contoso.example"] * 11 + ["bob@contoso.example"] * 3
    client = system_client(provider)
    emulator.clear_request_log()

    results = client.batch([BatchItem("GET", users_path(owner, "events", i) + "?$select=id,subject") for owner, i in zip(owners, ids, strict=True)])

    assert all(isinstance(r, GraphResponse) and r.status == 200 for r in results), results
    assert [r.body["id"] for r in results] == ids  # one answer per item, in order
    batches = _batches(emulator.request_log())
    assert sum(sum(b.values()) for b in batches) == len(ids)
    assert max(max(b.values()) for b in batches) <= 4, batches
    assert len(batches) == 3  # 11 of alice's need three batches; bob's 3 ride along


def test_per_item_throttling_is_retried_after_retry_after(provider, emulator):
    ids = _meetings(emulator, "alice@contoso.example", ATLAS, 8)
    client = system_client(provider)
    # The emulator's per-mailbox request rate: 5 requests per 2 s for this app and mailbox.
    emulator.configure(throttle_requests=5, throttle_window_seconds=2)
    emulator.clear_request_log()
    started = time.monotonic()

    results = client.batch([BatchItem("GET", users_path("alice@contoso.example", "events", i) + "?$select=id") for i in ids])

    assert all(isinstance(r, GraphResponse) and r.status == 200 for r in results), results
    log = emulator.request_log()
    throttled = [e for e in log["entries"] if e["batch"] and e["status"] == 429]
    assert throttled, "the emulator's rate limit answered some items 429"
    assert time.monotonic() - started >= 1.0  # the client waited for Retry-After before sending them again
    assert max(max(b.values()) for b in _batches(log)) <= 4


def test_the_client_keeps_within_the_mailboxs_request_rate_and_earns_no_429(provider, emulator, monkeypatch):
    """Outlook's 10,000 requests per 10 minutes per app and mailbox, here 6 a minute on both
    sides: single requests and a batch's items count alike, and once the window is spent the
    client sends nothing more to the mailbox (MailboxRateLimited, retried later) — Graph never
    answers 429 (the answer reads and the pushes of Strict mode share one organizer mailbox)."""
    from django.conf import settings

    from exchange_auth.graph import MailboxSemaphore, Unavailable

    ids = _meetings(emulator, "alice@contoso.example", ATLAS, 7)
    emulator.configure(throttle_requests=6, throttle_window_seconds=60)
    client = system_client(provider)
    monkeypatch.setattr(client, "semaphore", MailboxSemaphore(settings.REDIS_URL, wait=0.5, prefix="test:batch-rate:",
                                                              requests=6, window=60, window_margin=0))
    emulator.clear_request_log()
    for i in ids[:4]:
        client.get(users_path("alice@contoso.example", "events", i), params={"$select": "id"})
    results = client.batch([BatchItem("GET", users_path("alice@contoso.example", "events", i) + "?$select=id") for i in ids[4:6]])
    assert all(isinstance(r, GraphResponse) and r.status == 200 for r in results), results
    try:
        client.get(users_path("alice@contoso.example", "events", ids[6]), params={"$select": "id"})
    except Unavailable as exc:
        assert exc.code == "MailboxRateLimited" and exc.retry_after > 0
    else:
        raise AssertionError("a seventh request in the window was sent")
    log = emulator.request_log()
    assert [e for e in log["entries"] if e["status"] == 429] == []
    assert sum(1 for e in log["entries"] if e["mailbox"] == "alice@contoso.example") == 6
