"""End to end through a real Celery worker subprocess on Redis (not eager): the
reservation services commit, the outbox listener queues the push, the worker
talks to the emulator, and the room's answer confirms the reservation."""

import datetime as dt

import pytest

from calendar_sync.outbound import tasks
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.calendar_sync.test_push_emulator import ALICE, ORGANIZER, meetings
from tests.celery_worker import Worker
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


def test_the_threads_pool_pushes_many_bookings_into_one_mailbox_at_once_each_exactly_once(
        provider, mode, emulator, emulator_server, alice, atlas, borealis, worker_env, celery_not_eager, tmp_path):
    """The product's outbound worker (docker-compose.yml: ``--pool threads --concurrency 8``) in
    Strict mode, every meeting in the organizer account: one process runs several pushes at
    once, the mailbox never sees more than Outlook's 4 in flight nor a 429, and each booking
    is one Graph POST and one meeting."""
    mode("Strict")
    emulator.configure(latency={"write": [100, 200], "read": [20, 50]}, latency_seed=3)
    start = days_ahead(4, 7)
    booked = []
    for n in range(24):
        room = (atlas, borealis)[n % 2]
        at = start + dt.timedelta(hours=n // 2)
        booked.append(services.reservation_create(actor=alice, room=room, start=at, end=at + dt.timedelta(minutes=50), subject=f"Load {n:02d}"))
    emulator.clear_request_log()
    worker = Worker(worker_env, tmp_path / "worker.log", queues="answers,outbound", pool="threads", concurrency=8)
    worker.start()
    try:
        wait_for(lambda: not SyncEvent.objects.filter(state__in=["new", "processing"]).exists(), timeout=120,
                 message=lambda: f"pushes {worker.log_path.read_text()[-3000:]}")
    finally:
        worker.stop()
    log = emulator.request_log(limit=5000)
    posts = [e for e in log["entries"] if e["method"] == "POST" and e["path"].endswith("/events") and not e["batch"]]
    assert len(posts) == 24  # one request per change: no retry, no duplicate
    assert {e["mailbox"] for e in posts} == {ORGANIZER}
    assert log["counts"]["by_status"].get("429", 0) == 0
    in_flight = max(log["max_concurrency"].values())
    assert 2 <= in_flight <= 4  # several at once from one worker process, never over Outlook's limit
    assert sorted(m.subject for m in meetings(emulator_server, ORGANIZER)) == sorted(f"Load {n:02d}" for n in range(24))
    assert SyncEvent.objects.filter(state="processed", type="create").count() == 24
    assert set(SyncEvent.objects.filter(type="create").values_list("attempts", flat=True)) == {1}
    for r in booked:
        r.refresh_from_db()
        assert r.event_id
