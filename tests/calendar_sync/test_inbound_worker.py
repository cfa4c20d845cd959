"""Inbound end to end through a real Celery worker subprocess on Redis: notifications
reach the webhook (live_server), pulls run in the worker, and a worker SIGKILLed in
the middle of a batch loses nothing and duplicates nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import RoomEvent, WebhookNotification
from reservations.models import Reservation
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
    room_response,
)
from tests.celery_worker import Worker
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inbound_worker(subscribed, worker_env, celery_not_eager, tmp_path):
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def test_an_outlook_booking_is_picked_up_by_the_worker(inbound_worker, emulator, bob, atlas):
    start = days_ahead(3, 10)
    outlook_meeting(emulator, BOB, [ATLAS], start, subject="Through the worker")
    [r] = wait_for(outlook_reservations, message=lambda: f"reservation {inbound_worker.log_path.read_text()[-3000:]}")
    assert (r.subject, r.start, r.origin) == ("Through the worker", start, "exchange")


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(inbound_worker, emulator, emulator_server, alice, bob, atlas):
    clash_at = days_ahead(5, 8)
    ReservationFactory(room=atlas, start=clash_at, end=clash_at + dt.timedelta(minutes=30), requested_for=alice)
    # Every notification but the last is lost: one pull then carries the whole batch.
    emulator.set_notification_policy(drop=20)
    first = [outlook_meeting(emulator, BOB, [ATLAS], days_ahead(4, 7) + dt.timedelta(minutes=45 * i), hours=0.5, subject=f"A{i}") for i in range(10)]
    clash = outlook_meeting(emulator, BOB, [ATLAS], clash_at, hours=0.5, subject="Clash")
    rest = [outlook_meeting(emulator, BOB, [ATLAS], days_ahead(6, 7) + dt.timedelta(minutes=45 * i), hours=0.5, subject=f"B{i}") for i in range(10)]
    # The room's "no" to the clash takes a while: the worker is inside the batch when it dies.
    emulator.inject_fault(method="POST", path=r"/decline$", count=1, action="delay", seconds=3.0)
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(7, 9), hours=0.5, subject="Trigger")
    wait_for(lambda: len(outlook_reservations()) >= 10, message="first half booked")
    inbound_worker.kill()
    assert len(outlook_reservations()) < 21  # it really died mid-batch

    inbound_worker.start()
    inbound_tasks.sweep_inbox.delay(0)  # the beat sweeper: unanswered notifications get a pull again
    wait_for(lambda: len(outlook_reservations()) == 21, timeout=60, message=lambda: f"all booked: {len(outlook_reservations())}")
    wait_for(lambda: not WebhookNotification.objects.filter(state="received").exists(), timeout=30, message="inbox answered")
    subjects = sorted(r.subject for r in outlook_reservations())
    assert subjects == sorted([f"A{i}" for i in range(10)] + [f"B{i}" for i in range(10)] + ["Trigger"])  # each once
    assert len({r.ical_uid for r in outlook_reservations()}) == 21
    assert room_response(emulator_server, BOB, clash["iCalUId"]) == "declined"
    assert not Reservation.objects.filter(ical_uid=clash["iCalUId"]).exists()
    # Each copy is recorded once, linked to its reservation ("created", or "echo" when the
    # dead worker had created the reservation but not yet recorded the copy).
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, reservation__isnull=False).count() == 21, message="copies recorded")
    assert first and rest
