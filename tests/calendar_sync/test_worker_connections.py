"""A worker keeps its database connections between tasks for DATABASE_CONN_MAX_AGE seconds
(workplace/celery.py, settings.CELERY_DB_REUSE_MAX): Celery's Django fixup would close them at
every task, starting a PostgreSQL backend per task. With the default age (0) every task's
connection is still closed after it. Real worker, real PostgreSQL: the connections are read from
pg_stat_activity."""

from __future__ import annotations

import pytest
from django.db import connection

from calendar_sync.outbound import tasks as outbound_tasks
from tests.celery_worker import Worker
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _others() -> set[tuple[int, str]]:
    """(pid, backend start) of the other sessions on this test database: the worker's."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, backend_start::text FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        return set(cursor.fetchall())


def _run_tasks(worker: Worker, count: int) -> None:
    done_before = worker.log_path.read_bytes().count(b"succeeded in")
    for _ in range(count):
        outbound_tasks.check_confirmations.delay()  # reads the awaiting reservations: a query or two
    wait_for(lambda: worker.log_path.read_bytes().count(b"succeeded in") >= done_before + count, timeout=30,
             message=f"{count} tasks done")


@pytest.fixture
def start_worker(worker_env, celery_not_eager, tmp_path):
    started = []

    def start(max_age: str) -> Worker:
        w = Worker({**worker_env, "DATABASE_CONN_MAX_AGE": max_age}, tmp_path / f"worker-{max_age}.log",
                   queues="answers,outbound", pool="threads", concurrency=1)
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def test_a_worker_keeps_its_connection_between_tasks(start_worker, emulator):
    worker = start_worker("60")
    _run_tasks(worker, 3)
    first = _others()
    assert first, "the worker's connection is kept after its tasks"
    _run_tasks(worker, 5)
    # The same session (pid and start time) served the later tasks: no backend started per task.
    assert _others() == first


def test_with_no_age_each_tasks_connection_is_closed(start_worker, emulator):
    worker = start_worker("0")
    _run_tasks(worker, 3)
    wait_for(lambda: not _others(), timeout=10, message="the worker's connections closed after its tasks")
