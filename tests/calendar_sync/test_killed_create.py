"""Issue 16 item 8: a push interrupted after Graph made the meeting never loses the booking.

A real Celery worker (tests/celery_worker.py) is SIGKILLed while Graph holds its create (the
emulator's slow-create fault, after a 429 and a 503): Graph makes the meeting, no one links
it. The room's copy reaches the webhook as a meeting no reservation points at; the worker
started again re-checks it (deferrals) while the dead worker's lease holds the push. The
copy is recognised as the product's own from what the product wrote into the organizer's
event (the extended property naming the reservation, else the create's transactionId) and
linked: never declined, never made twice. The sweeper's re-queued push then finds it linked.

Real HTTPS to the emulator, real msal, PostgreSQL, Redis, the live webhook."""

from __future__ import annotations

import datetime as dt

import pytest

from calendar_sync import conf
from calendar_sync.common import own_meetings
from calendar_sync.models import RoomEvent
from calendar_sync.outbound import tasks as outbound_tasks
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.calendar_sync.inbound_helpers import ALICE, ATLAS, room_copies, room_response
from tests.calendar_sync.test_push_emulator import meetings
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inbound_worker(subscribed, worker_env, celery_not_eager, tmp_path):
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def creates(emulator) -> list:
    return [e for e in emulator.request_log()["entries"] if e["method"] == "POST" and e["path"].endswith(f"/users/{ALICE}/events")]


def test_a_worker_killed_between_graphs_201_and_the_link_loses_no_booking(mode, emulator, emulator_server, alice, atlas, inbound_worker):
    mode("Normal")
    # Faults combined: a 429, a 503, then Graph takes its time over the create (it makes the
    # meeting after 2 s, by which time the worker that asked is dead).
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, status=429, retry_after=0)
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, status=503, retry_after=0)
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, action="delay", seconds=2.0)
    start = days_ahead(3, 10)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Board prep")
    create = SyncEvent.objects.get(reservation=r, type="create")
    wait_for(lambda: emulator.faults() == [], timeout=30, message="Graph holding the create")
    inbound_worker.kill()
    # Graph's 201 goes to a dead socket: the meeting is made, the room's attendant accepts it.
    [meeting] = wait_for(lambda: meetings(emulator_server, ALICE), message="the emulator finishing the create")
    assert room_response(emulator_server, ALICE, meeting.ical_uid) == "accepted"
    assert Reservation.objects.get(pk=r.pk).event_id == ""  # never linked
    assert SyncEvent.objects.get(pk=create.pk).state == SyncEvent.State.PROCESSING  # the dead worker's lease

    inbound_worker.start()  # the copy's notification is pulled; no sweeper has run
    # The link is committed first, the copy's record right after it (the pull is not one transaction).
    wait_for(lambda: Reservation.objects.get(pk=r.pk).event_id and RoomEvent.objects.filter(mailbox=ATLAS, outcome="echo").exists(), timeout=60,
             message=lambda: f"copy recognised {list(RoomEvent.objects.values('outcome', 'deferrals', 'note'))} {inbound_worker.log_path.read_text()[-3000:]}")
    r.refresh_from_db()
    assert (r.event_id, r.ical_uid, r.mailbox) == (meeting.id, meeting.ical_uid, ALICE)
    assert r.state == State.CONFIRMED
    [copy] = room_copies(emulator_server, ATLAS)
    row = RoomEvent.objects.get(mailbox=ATLAS, event_id=copy.id)
    assert (row.outcome, row.reservation_id) == ("echo", r.pk)
    # Only now does the sweeper take back the dead worker's push: the meeting is already linked.
    wait_for(lambda: SyncEvent.objects.get(pk=create.pk).next_attempt_at < dt.datetime.now(dt.UTC), message="lease expired")

    def swept():
        if SyncEvent.objects.get(pk=create.pk).state == SyncEvent.State.PROCESSED:
            return True
        outbound_tasks.sweep_sync_events.delay()
        return False

    wait_for(swept, timeout=30, interval=1, message="the push re-queued and finished")
    assert SyncEvent.objects.get(pk=create.pk).response["note"] == "already linked"
    r.refresh_from_db()
    assert (r.state, r.sync_state, r.event_id) == (State.CONFIRMED, "synced", meeting.id)
    assert len(meetings(emulator_server, ALICE)) == 1 and len(room_copies(emulator_server, ATLAS)) == 1  # one meeting, never declined
    assert room_response(emulator_server, ALICE, meeting.ical_uid) == "accepted"
    assert len([e for e in creates(emulator) if e["status"] in (200, 201)]) == 1
    assert not RoomEvent.objects.filter(outcome="declined").exists()


def test_the_product_marks_every_meeting_it_creates(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    """What own_copies reads: the organizer's event carries the mark and the transactionId; the
    room's copy (same iCalUId) carries neither (Graph keeps both on the item they were written to)."""
    mode("Normal")
    start = days_ahead(2, 9)
    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Marked")
    r.refresh_from_db()
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.extended_properties == own_meetings.mark(reservation_id=r.pk)
    assert meeting.transaction_id == r.sync_events.get(type="create").request_payload["transactionId"]
    [copy] = room_copies(emulator_server, ATLAS)
    assert copy.ical_uid == meeting.ical_uid and copy.transaction_id is None and copy.extended_properties == []


def test_the_lease_never_outlives_the_deferral_window(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.CALENDAR_SYNC_INBOUND_DEFER_SECONDS = 3
    settings.CALENDAR_SYNC_LEASE_SECONDS = 61
    with pytest.raises(ImproperlyConfigured, match="deferral window"):
        conf.get()
    settings.CALENDAR_SYNC_LEASE_SECONDS = 60
    assert conf.get().lease_seconds <= conf.get().deferral_window_seconds


def test_a_request_never_outwaits_the_push_claim(settings):
    """Start-up refuses a slot wait + request timeout at or over the lease (a push still waiting on
    Graph when its claim lapses could be claimed and pushed again by another worker)."""
    from django.core.exceptions import ImproperlyConfigured

    settings.CALENDAR_SYNC_LEASE_SECONDS = 35
    settings.GRAPH_SLOT_WAIT_SECONDS = 20
    settings.GRAPH_TIMEOUT_SECONDS = 15
    with pytest.raises(ImproperlyConfigured, match="GRAPH_SLOT_WAIT_SECONDS .20. \\+ GRAPH_TIMEOUT_SECONDS .15."):
        conf.get()
    settings.GRAPH_TIMEOUT_SECONDS = 14
    assert conf.get().lease_seconds == 35
    settings.CALENDAR_SYNC_LEASE_SECONDS = 60
    settings.GRAPH_TIMEOUT_SECONDS = 15
    assert conf.get().lease_seconds == 60
