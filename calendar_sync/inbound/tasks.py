"""Celery tasks of inbound sync: thin, ids (mailboxes) in, idempotent (STYLE 4). The top
of the wing: what the modules below want pulled comes back to these tasks, which queue it.

Coalescing: the webhook asks for a pull of a mailbox with ``request_pull``; a cache key
per mailbox means at most one pull is queued per mailbox at a time (duplicates and
bursts of notifications cost one delta round). The pull itself holds the mailbox
lock (its lease renewed after each page, so a slow round keeps it); a queued pull that
finds the mailbox busy comes back a moment later, holding the queued key meanwhile, so
the notifications that land while a round runs get exactly one more pull after it.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from exchange_auth import properties
from exchange_auth.credentials import CredentialError
from exchange_auth.graph import GraphError
from exchange_auth.providers import active_providers
from observability import metrics
from workplace.models import Building

from .. import conf
from ..models import Subscription, WebhookNotification
from . import delta, nightly, polling, subscriptions

logger = logging.getLogger("calendar_sync.inbound")

QUEUED_PREFIX = "calendar_sync:inbound:queued:"
QUEUED_TTL = 120  # a lost queued task (killed worker) stops blocking new ones after this


def request_pull(mailbox: str, *, full: bool = False) -> bool:
    """Queue a pull of ``mailbox`` unless one is already queued. Returns whether one was queued."""
    mailbox = mailbox.lower()
    if full:
        pull_room_mailbox.delay(mailbox, full=True)
        return True
    if cache.add(QUEUED_PREFIX + mailbox, 1, timeout=QUEUED_TTL):
        pull_room_mailbox.delay(mailbox)
        return True
    return False


def request_pull_many(mailboxes: list[str]) -> list[str]:
    """``request_pull`` of each mailbox, the queued keys taken in one Redis round (a batch of
    Graph's notifications names many mailboxes). Returns the mailboxes a pull was queued for."""
    mailboxes = sorted({m.lower() for m in mailboxes})
    taken = _add_many([QUEUED_PREFIX + m for m in mailboxes], QUEUED_TTL)
    queued = [m for m, ok in zip(mailboxes, taken, strict=True) if ok]
    for mailbox in queued:
        pull_room_mailbox.delay(mailbox)
    return queued


def _add_many(keys: list[str], timeout: int) -> list[bool]:
    """``cache.add`` of each key (value 1), pipelined when the cache is Redis."""
    backend = getattr(cache, "_cache", None)
    if not keys or not hasattr(backend, "get_client") or not hasattr(cache, "make_and_validate_key"):
        return [cache.add(key, 1, timeout=timeout) for key in keys]
    pipe = backend.get_client(write=True).pipeline(transaction=False)
    for key in keys:
        pipe.set(cache.make_and_validate_key(key), 1, nx=True, ex=timeout)  # what cache.add sends, for an int
    return [bool(ok) for ok in pipe.execute()]


def request_pulls(pulls: subscriptions.Pulls) -> None:
    """Queue what a subscription change asked for: full rounds first, then the other pulls."""
    for mailbox in sorted(pulls.full):
        request_pull(mailbox, full=True)
    for mailbox in sorted(pulls.changed - pulls.full):
        request_pull(mailbox)


def subscriptions_ensure(*, provider=None) -> dict:
    """``subscriptions.subscription_ensure_all``, and the pulls it asks for queued."""
    pulls = subscriptions.Pulls()
    counts = subscriptions.subscription_ensure_all(provider=provider, pulls=pulls)
    request_pulls(pulls)
    return counts


def subscription_renew(*, subscription: Subscription) -> Subscription:
    """``subscriptions.subscription_renew``, and the resync a recreated subscription asks for queued."""
    pulls = subscriptions.Pulls()
    try:
        return subscriptions.subscription_renew(subscription=subscription, pulls=pulls)
    finally:
        request_pulls(pulls)


@shared_task(acks_late=True, ignore_result=True)
def pull_room_mailbox(mailbox: str, full: bool = False) -> dict:
    """One delta round of ``mailbox``, a synced room's or the organizer mailbox (full: over
    the whole window, dropping the token). The name stays for queued tasks and deployments."""
    if not full:
        cache.delete(QUEUED_PREFIX + mailbox)  # a notification from now on queues the next pull
    kind = "full" if full else "delta"
    try:
        # Inline (eager) runs can't come back later: they wait for the mailbox instead.
        result = delta.pull_mailbox(mailbox, full=full, wait=30 if conf.tasks_run_eagerly() else 0)
    except delta.MailboxBusy:
        metrics.inc(metrics.PULLS, kind=kind, outcome="busy")
        if conf.tasks_run_eagerly():
            return {"busy": True}
        if not full and not cache.add(QUEUED_PREFIX + mailbox, 1, timeout=QUEUED_TTL):
            # A notification since this task began queued a pull of its own (the key is its):
            # that one comes after the busy round, so this one is not needed too. Else two
            # retries would follow the round, the second pulling nothing new.
            return {"busy": True, "coalesced": True}
        pull_room_mailbox.apply_async((mailbox, full), countdown=conf.get().inbound_busy_retry_seconds)
        return {"busy": True}
    except delta.NoProvider:
        return {"no_provider": True}
    except GraphError as exc:
        metrics.inc(metrics.PULLS, kind=kind, outcome="error")
        logger.warning("inbound pull of %s failed: %s", mailbox, exc)
        if exc.transient and not conf.tasks_run_eagerly():
            pull_room_mailbox.apply_async((mailbox, full), countdown=min(300, exc.retry_after or 10))
        return {"error": str(exc)}
    metrics.inc(metrics.PULLS, kind=kind, outcome="ok")
    if result.deferred and not conf.tasks_run_eagerly():
        recheck_deferred.apply_async((mailbox,), countdown=conf.get().inbound_defer_seconds)
    return result.as_dict()


@shared_task(acks_late=True, ignore_result=True)
def recheck_deferred(mailbox: str) -> dict:
    try:
        stats = delta.recheck_deferred(mailbox)
    except delta.MailboxBusy:
        stats = {"still_deferred": 1}
    if stats.get("still_deferred") and not conf.tasks_run_eagerly():
        recheck_deferred.apply_async((mailbox,), countdown=conf.get().inbound_defer_seconds)
    return dict(stats)


@shared_task(acks_late=True, ignore_result=True)
def handle_lifecycle_notification(notification_id: int) -> str:
    notification = WebhookNotification.objects.select_related("subscription__provider").filter(
        pk=notification_id, state=WebhookNotification.State.RECEIVED,
    ).first()
    if notification is None:
        return "gone"
    pulls = subscriptions.Pulls()
    try:
        return subscriptions.lifecycle_handle(notification=notification, pulls=pulls)
    except (GraphError, CredentialError) as exc:
        return f"failed: {exc}"
    finally:
        request_pulls(pulls)


@shared_task(ignore_result=True)
def ensure_subscriptions() -> dict:
    """Beat (every 15 minutes): create missing subscriptions, renew those expiring soon."""
    return subscriptions_ensure()


@shared_task(ignore_result=True)
def poll_unsubscribed() -> list[str]:
    """Beat (every CALENDAR_SYNC_POLL_SECONDS): a pull of each mailbox that couldn't be
    subscribed (its ``polling`` row): the same coalesced pull a notification queues."""
    mailboxes = sorted({m for provider in active_providers() for m in polling.polled_mailboxes(provider)})
    for mailbox in mailboxes:
        request_pull(mailbox)
    return mailboxes


@shared_task(ignore_result=True)
def run_nightly_reconcile() -> dict:
    """Beat (every 15 minutes): the nightly pass of buildings whose nightly time (02:30 or
    the building's own) just passed — one ``nightly_building`` task each on the ``nightly``
    queue, so several workers share a night's buildings (inline when tasks run eagerly)."""
    if conf.tasks_run_eagerly():
        return nightly.run_due()
    due = nightly.buildings_due()
    for building, local_date in due:
        nightly_building.delay(building.pk, local_date.isoformat())
    return {building.name: "queued" for building, _ in due}


@shared_task(acks_late=True, ignore_result=True)
def nightly_building(building_id: int, local_date: str) -> dict:
    """One building's nightly pass: claimed once per local date, split into ``nightly_chunk``
    tasks of ``CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS`` rooms for the workers to share, and the
    organizer mailboxes' rounds queued (``nightly_mailbox``). A retry of a claimed, unfinished
    night queues its pending chunks again (a chunk runs once: its claim has a lease)."""
    building = Building.objects.filter(pk=building_id).first()
    if building is None:
        return {}
    if conf.tasks_run_eagerly():
        return nightly.run_one(building, dt.date.fromisoformat(local_date))
    return nightly.run_one(building, dt.date.fromisoformat(local_date), queue_chunk=nightly_chunk.delay,
                           queue_mailbox=nightly_mailbox.delay)


@shared_task(acks_late=True, ignore_result=True)
def nightly_chunk(chunk_id: int) -> dict:
    """The full rounds of one chunk of a building's rooms (nothing when it ran already or
    another worker holds it); the last chunk finishes the building's run."""
    return nightly.run_chunk(chunk_id) or {}


@shared_task(acks_late=True, ignore_result=True)
def nightly_mailbox(mailbox: str, local_date: str) -> dict:
    """An organizer mailbox's nightly round (claimed once per local date)."""
    run = nightly.claim_mailbox(mailbox, dt.date.fromisoformat(local_date))
    return nightly.run_mailbox(mailbox, run=run) if run is not None else {}


@shared_task(ignore_result=True)
def sweep_inbox(grace_seconds: float | None = None) -> int:
    """Beat (every minute): notifications still unanswered after a grace period (their
    pull was lost with a killed worker) get a pull again."""
    grace = grace_seconds if grace_seconds is not None else conf.get().inbox_grace_seconds
    mailboxes = polling.unanswered_mailboxes(grace)
    for mailbox in mailboxes:
        pull_room_mailbox.delay(mailbox)
    for pk in polling.unanswered_lifecycle(grace):
        handle_lifecycle_notification.delay(pk)
    return len(mailboxes)


def on_provider_saved(sender, instance, created: bool, **kwargs) -> None:
    """post_save of CalendarProvider (connected in CalendarSyncConfig.ready): an active
    provider gets its subscriptions after commit. Off with CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION=False."""
    if not instance.active or not conf.get().subscribe_on_activation:
        return
    update_fields = kwargs.get("update_fields")
    if not created and update_fields is not None and "active" not in update_fields:
        return  # a token refresh or a field edit, not an activation
    transaction.on_commit(lambda: ensure_subscriptions.delay(), robust=True)


def on_property_saved(sender, instance, **kwargs) -> None:
    """post_save of InstanceProperty (connected in CalendarSyncConfig.ready): a new sync mode
    may need the organizer mailbox subscribed, or no longer need it. Same switch as above."""
    if instance.name != properties.SYNC_INTEGRATION_MODE or not conf.get().subscribe_on_activation:
        return
    transaction.on_commit(lambda: ensure_subscriptions.delay(), robust=True)
