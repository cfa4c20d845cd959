"""End to end through a real Celery worker subprocess on Redis (not eager): the
reservation services commit, the outbox listener queues the push, the worker
talks to the emulator, and the room's answer confirms the reservation."""

import datetime as dt

import pytest

from calendar_sync.outbound import tasks
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.calendar_sync.test_push_emulator import ALICE, meetings
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def state_of(pk):
    return Reservation.objects.get(pk=pk).state


def test_a_booking_reaches_exchange_and_is_confirmed_by_the_worker(provider, mode, emulator, emulator_server, alice, atlas, borealis, worker):
    mode("Normal")
    start = days_ahead(2, 10)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Worker booking")
    wait_for(lambda: state_of(r.pk) == State.CONFIRMED, message="confirmation")
    r.refresh_from_db()
    assert r.event_id and r.sync_state == "synced"

    services.reservation_update(actor=alice, reservation=r, subject="Worker booking v2", room=borealis)
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="update pushed")
    wait_for(lambda: state_of(r.pk) == State.CONFIRMED, message=lambda: f"new room answer {list(Reservation.objects.filter(pk=r.pk).values('state', 'state_reason', 'sync_state', 'sync_error'))} {worker.log_path.read_text()[-4000:]}")
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.subject == "Worker booking v2"
    assert [a["emailAddress"]["address"] for a in meeting.attendees] == ["borealis@contoso.example"]

    services.reservation_cancel(actor=alice, reservation=Reservation.objects.get(pk=r.pk))
    wait_for(lambda: meetings(emulator_server, ALICE) == [], message="meeting cancelled")


def test_a_worker_killed_mid_push_leaves_no_duplicate_and_loses_no_change(provider, mode, emulator, emulator_server, alice, atlas, worker):
    mode("Normal")
    # Graph takes its time over the create: the worker is inside the request when it dies.
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, action="delay", seconds=2.0)
    start = days_ahead(3, 10)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Before the crash")
    create = SyncEvent.objects.get(reservation=r, type="create")
    wait_for(lambda: SyncEvent.objects.get(pk=create.pk).state == "processing", message="push started")
    # The delay rule is used up when Graph takes the request: the create is in flight.
    wait_for(lambda: emulator.faults() == [], message="Graph holding the create")
    worker.kill()

    # While no worker runs, the employee changes the reservation.
    r.refresh_from_db()
    services.reservation_update(actor=alice, reservation=r, subject="After the crash")
    wait_for(lambda: meetings(emulator_server, ALICE), message="the emulator finishing the create the dead worker asked for")

    worker.start()
    # The beat sweeper takes back the expired lease and the waiting update.
    def swept():
        if not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists():
            return True
        tasks.sweep_sync_events.delay()  # what beat does; the next look comes a second later
        return False

    wait_for(swept, timeout=60, interval=1, message="events re-pushed after restart")
    assert list(SyncEvent.objects.filter(reservation=r).values_list("state", flat=True)) == ["processed", "processed"]
    [meeting] = meetings(emulator_server, ALICE)  # no duplicate meeting
    assert meeting.subject == "After the crash"  # no lost change
    r.refresh_from_db()
    assert r.event_id == meeting.id
    wait_for(lambda: state_of(r.pk) == State.CONFIRMED, message="confirmation after restart")
