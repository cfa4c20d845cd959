"""Celery tasks of outbound sync: thin, idempotent, ids in (STYLE 4). The top of the wing:
the work is in ``worker`` and ``confirm``, which return what to schedule next."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from observability import metrics
from reservations.models import SyncEvent

from .. import conf
from . import confirm, worker

logger = logging.getLogger("calendar_sync")

CONFIRM_KEY = "calendar_sync:confirm-scheduled"  # when the scheduled check is due (epoch seconds)
MIN_CHECK_COUNTDOWN = 0.1  # a check asked for sooner runs this long from now


def enqueue_push(event_id: int) -> None:
    """The outbox listener (registered in ``CalendarSyncConfig.ready``): runs after commit."""
    push_sync_event.delay(event_id)


@shared_task(acks_late=True, ignore_result=True)
def push_sync_event(event_id: int, reprocess: bool = False) -> str:
    """Push one sync event. Safe to run twice: the claim lets one run through."""
    outcome = worker.process_sync_event(event_id, reprocess=reprocess)
    metrics.inc(metrics.PUSHES, outcome=outcome.status)
    if outcome.status == "retry" and not conf.tasks_run_eagerly():
        push_sync_event.apply_async((event_id,), countdown=outcome.delay)
    if outcome.check_answers:
        schedule_confirmation_check()
    if outcome.status in ("processed", "error") and outcome.event is not None:
        # After the event's commit: a change queued meanwhile (its own task skipped behind this one) is seen.
        for next_id in worker.next_pending_for(outcome.event):
            push_sync_event.delay(next_id)
    return outcome.status


def schedule_confirmation_check(countdown: float | None = None) -> None:
    """Read the room's answer shortly: ``countdown`` seconds from now (the confirm delay: a
    push's meeting is due then). Many pushes share one scheduled check; one asked for earlier
    than the check already scheduled is queued too (a check's next, for a meeting due sooner
    than a far one scheduled)."""
    delay = conf.get().confirm_delay_seconds if countdown is None else max(countdown, MIN_CHECK_COUNTDOWN)
    if conf.tasks_run_eagerly():
        return  # tests call confirm.check_answers / check_confirmations themselves
    # One scheduled check at a time (its time in the key); the check drops the key when it
    # starts, so a push after that schedules the next one. The timeout only guards against a
    # lost task.
    at = time.time() + delay
    if not cache.add(CONFIRM_KEY, at, timeout=int(delay) + 60):
        scheduled = cache.get(CONFIRM_KEY)
        if isinstance(scheduled, (int, float)) and scheduled <= at + MIN_CHECK_COUNTDOWN:
            return
        cache.set(CONFIRM_KEY, at, timeout=int(delay) + 60)
    check_confirmations.apply_async(countdown=delay)


@shared_task(acks_late=True, ignore_result=True)
def check_confirmations() -> dict:
    cache.delete(CONFIRM_KEY)
    window = conf.get().confirm_follow_up_seconds
    # A backlog (hundreds of pushes answered at once) is read by rounds side by side: each
    # round of 40 queues the next before it reads (its reads go one by one).
    counts = confirm.check_answers(max_age_seconds=window, spaced=True,
                                   on_more=None if conf.tasks_run_eagerly() else check_confirmations.delay)
    if counts["next_read_in"] is not None:
        # The next check when the next waiting meeting is due (a confirm delay after its push,
        # or its pause after its last read), not a fixed interval.
        schedule_confirmation_check(counts["next_read_in"])
    return counts


@shared_task(ignore_result=True)
def sweep_sync_events(limit: int = 500) -> int:
    """Re-queue what a dead worker left behind: ``new`` events due for a while whose task
    never ran, and ``processing`` ones whose lease ran out. The claim makes a duplicate
    queueing harmless."""
    now = timezone.now()
    grace = now - timedelta(seconds=conf.get().sweep_grace_seconds)
    due = SyncEvent.objects.filter(
        Q(state=SyncEvent.State.NEW, next_attempt_at__isnull=True, created_at__lte=grace)
        | Q(state=SyncEvent.State.NEW, next_attempt_at__lte=grace)
        | Q(state=SyncEvent.State.PROCESSING, next_attempt_at__lt=now)
    ).order_by("pk").values_list("pk", flat=True)[:limit]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A custom plan each time: the worker's long-lived connection prepares the statement
            # after 5 runs (settings/env.py PREPARE_THRESHOLD) and 5 runs later PostgreSQL may
            # take a generic plan, which guesses a quarter of the outbox matches and walks the
            # primary key in order; the sweep matches almost nothing, so it read every row:
            # measured 0.25 ms (custom, the state index) -> ~500 ms (generic) over 390,000 done
            # events. Local to this transaction.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
        ids = list(due)
    for event_id in ids:
        push_sync_event.delay(event_id)
    if ids:
        logger.info("sweeper re-queued %d sync event(s)", len(ids))
    return len(ids)


@shared_task(ignore_result=True)
def check_awaiting_reservations() -> dict:
    """Every 10 minutes (SPEC §4)."""
    return confirm.check_room_calendars()


@shared_task(ignore_result=True)
def clean_up_unanswered_reservations() -> int:
    """Every 10 minutes: no answer from the room in time, or no approval in time → rejected."""
    return confirm.clean_up_unanswered() + confirm.clean_up_unapproved()


def reprocess(event_ids: list[int]) -> int:
    """Admin "re-process": put ``error`` events back through the push (attempts reset)."""
    n = 0
    for event_id in event_ids:
        if SyncEvent.objects.filter(pk=event_id, state__in=[SyncEvent.State.ERROR, SyncEvent.State.NEW]).exists():
            push_sync_event.delay(event_id, reprocess=True)
            n += 1
    return n
