"""Issue 18 item 7: a retried create never makes a second meeting, whatever Graph answers to a
repeated ``transactionId`` (undocumented: the emulator's ``transaction_dedupe`` off makes a
repeat create a second event). After a POST that may have landed, the product looks the
event up by ``$filter=transactionId eq '…'`` before sending it again, and links what it finds.

Real HTTPS to the emulator, real msal, eager Celery."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from reservations import services
from reservations.models import SyncEvent
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"


def meetings(srv, mailbox: str) -> list:
    def read():
        user = srv.store.find_user(mailbox)
        return [e for e in srv.store.mailboxes[user.id].events.values() if not e.is_cancelled]

    return srv.call(read)


def test_a_create_that_timed_out_but_landed_is_found_not_made_twice(provider, mode, emulator, emulator_server, settings, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    settings.GRAPH_TIMEOUT_SECONDS = 1  # the product gives up on the POST after 1 s ...
    emulator.configure(transaction_dedupe=False)
    # ... and Graph makes the meeting after 1.5 s: the answer never reaches the product.
    emulator.inject_fault(action="delay", seconds=1.5, method="POST", path="/events$", mailbox=ALICE, count=1)
    start = days_ahead(2, 10)
    began = time.monotonic()

    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    r.refresh_from_db()
    time.sleep(max(0.0, 2.0 - (time.monotonic() - began)))  # whatever POST was in flight has landed by now

    made = meetings(emulator_server, ALICE)
    assert len(made) == 1, [m.subject for m in made]  # one meeting, not two
    assert r.event_id == made[0].id and r.ical_uid == made[0].ical_uid
    event = r.sync_events.get(type=SyncEvent.Type.CREATE)
    assert event.state == SyncEvent.State.PROCESSED
    assert event.response["found_by_transaction_id"] == event.request_payload["transactionId"]
    posts = [e for e in emulator.request_log()["entries"] if e["method"] == "POST" and e["path"].endswith("/events")]
    assert len(posts) == 1  # found by the look-up (GET /events?$filter=transactionId eq '…'), not sent again
