"""Queues (README "Workers and queues"): pushes, pulls and the nightly pass go to their own
queues, so a worker pool of its own can serve each and a nightly round never delays a push."""

import datetime as dt

import pytest
import redis
from django.conf import settings

from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.outbound import tasks as outbound_tasks
from reservations import services
from reservations.models import Reservation, State
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for
from workplace import tasks as workplace_tasks
from workplace.celery import app


def queue_of(task) -> str:
    return app.amqp.router.route({}, task.name)["queue"].name


def test_every_task_has_its_queue():
    app.loader.import_default_modules()
    assert queue_of(outbound_tasks.push_sync_event) == "outbound"
    assert queue_of(outbound_tasks.sweep_sync_events) == "outbound"
    assert queue_of(outbound_tasks.check_confirmations) == "answers"
    assert queue_of(outbound_tasks.check_awaiting_reservations) == "answers"
    assert queue_of(outbound_tasks.clean_up_unanswered_reservations) == "answers"
    assert queue_of(inbound_tasks.pull_room_mailbox) == "inbound"
    assert queue_of(inbound_tasks.recheck_deferred) == "inbound"
    assert queue_of(inbound_tasks.handle_lifecycle_notification) == "inbound"
    assert queue_of(inbound_tasks.run_nightly_reconcile) == "nightly"
    assert queue_of(inbound_tasks.nightly_building) == "nightly"
    assert queue_of(workplace_tasks.deliver_email) == "default"
    # A worker started without -Q consumes all five (make run, the tests' worker).
    assert sorted(app.amqp.queues) == ["answers", "default", "inbound", "nightly", "outbound"]
    # Every product task lands on a queue some worker consumes.
    ours = [name for name in app.tasks if name.split(".")[0] in {"calendar_sync", "reservations", "workplace", "exchange_auth"}]
    assert ours and all(app.amqp.router.route({}, name)["queue"].name in app.amqp.queues for name in ours)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_push_is_served_while_the_nightly_queue_waits(provider, mode, emulator, alice, atlas, worker_env, celery_not_eager, tmp_path):
    """The product's outbound worker (answers,outbound) confirms a booking while a nightly round
    waits on its own queue, untouched: nightly work can't hold up a booking's push."""
    mode("Normal")
    broker = redis.Redis.from_url(settings.REDIS_URL)
    inbound_tasks.run_nightly_reconcile.delay()
    assert broker.llen("nightly") == 1
    worker = Worker(worker_env, tmp_path / "worker.log", queues="answers,outbound")
    worker.start()
    try:
        start = days_ahead(2, 10)
        r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Past the nightly queue")
        wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CONFIRMED,
                 message=lambda: f"confirmation {worker.log_path.read_text()[-3000:]}")
        assert broker.llen("nightly") == 1  # still there: no outbound worker took it
    finally:
        worker.stop()


def test_the_compose_file_serves_every_queue_and_scales_its_workers():
    import yaml

    from tests.celery_worker import ROOT

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumed = set()
    for name, service in services.items():
        command = service.get("command", "")
        if "celery" in command and " worker" in command:
            consumed |= set(command.split("-Q", 1)[1].split()[0].split(","))
            assert "container_name" not in service and "ports" not in service, f"{name} could not be scaled"
    assert consumed == set(app.amqp.queues)
    assert sum(" beat" in s.get("command", "") for s in services.values()) == 1
