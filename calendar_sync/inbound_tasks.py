"""Celery tasks of inbound sync: thin, ids (mailboxes) in, idempotent (STYLE 4).

Coalescing: the webhook asks for a pull of a mailbox with ``request_pull``; a cache key
per mailbox means at most one pull is queued per mailbox at a time (duplicates and
bursts of notifications cost one delta round). The pull itself holds the mailbox
lock; a queued pull that finds the mailbox busy comes back a moment later, so a
change notified while a round runs is never lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from exchange_auth.credentials import CredentialError
from exchange_auth.graph import GraphError

from . import delta, nightly, subscriptions
from .models import Subscription, WebhookNotification

logger = logging.getLogger("calendar_sync.inbound")

QUEUED_PREFIX = "calendar_sync:inbound:queued:"
QUEUED_TTL = 120  # a lost queued task (killed worker) stops blocking new ones after this


def _eager() -> bool:
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def _busy_retry_seconds() -> float:
    return float(getattr(settings, "CALENDAR_SYNC_INBOUND_BUSY_RETRY_SECONDS", 0.5))


def _defer_seconds() -> float:
    return float(getattr(settings, "CALENDAR_SYNC_INBOUND_DEFER_SECONDS", 3))


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


@shared_task(acks_late=True, ignore_result=True)
def pull_room_mailbox(mailbox: str, full: bool = False) -> dict:
    """One delta round of ``mailbox``, a synced room's or the organizer mailbox (full: over
    the whole window, dropping the token). The name stays for queued tasks and deployments."""
    if not full:
        cache.delete(QUEUED_PREFIX + mailbox)  # a notification from now on queues the next pull
    try:
        # Inline (eager) runs can't come back later: they wait for the mailbox instead.
        result = delta.pull_mailbox(mailbox, full=full, wait=30 if _eager() else 0)
    except delta.MailboxBusy:
        if _eager():
            return {"busy": True}
        if not full:
            cache.set(QUEUED_PREFIX + mailbox, 1, timeout=QUEUED_TTL)
        pull_room_mailbox.apply_async((mailbox, full), countdown=_busy_retry_seconds())
        return {"busy": True}
    except delta.NoProvider:
        return {"no_provider": True}
    except GraphError as exc:
        logger.warning("inbound pull of %s failed: %s", mailbox, exc)
        if exc.transient and not _eager():
            pull_room_mailbox.apply_async((mailbox, full), countdown=min(300, exc.retry_after or 10))
        return {"error": str(exc)}
    if result.deferred and not _eager():
        recheck_deferred.apply_async((mailbox,), countdown=_defer_seconds())
    return result.as_dict()


@shared_task(acks_late=True, ignore_result=True)
def recheck_deferred(mailbox: str) -> dict:
    try:
        stats = delta.recheck_deferred(mailbox)
    except delta.MailboxBusy:
        stats = {"still_deferred": 1}
    if stats.get("still_deferred") and not _eager():
        recheck_deferred.apply_async((mailbox,), countdown=_defer_seconds())
    return dict(stats)


@shared_task(acks_late=True, ignore_result=True)
def handle_lifecycle_notification(notification_id: int) -> str:
    notification = WebhookNotification.objects.select_related("subscription__provider").filter(
        pk=notification_id, state=WebhookNotification.State.RECEIVED,
    ).first()
    if notification is None:
        return "gone"
    try:
        return subscriptions.lifecycle_handle(notification=notification)
    except (GraphError, CredentialError) as exc:
        return f"failed: {exc}"


@shared_task(ignore_result=True)
def ensure_subscriptions() -> dict:
    """Beat (every 15 minutes): create missing subscriptions, renew those expiring soon."""
    return subscriptions.subscription_ensure_all()


@shared_task(ignore_result=True)
def poll_unsubscribed() -> list[str]:
    """Beat (every CALENDAR_SYNC_POLL_SECONDS): a pull of each mailbox that couldn't be
    subscribed (its ``polling`` row): the same coalesced pull a notification queues."""
    from exchange_auth.providers import active_provider

    provider = active_provider()
    if provider is None or not provider.active:
        return []
    mailboxes = sorted(set(Subscription.objects.filter(provider=provider, status=Subscription.Status.POLLING).values_list("mailbox", flat=True)))
    for mailbox in mailboxes:
        request_pull(mailbox)
    return mailboxes


@shared_task(ignore_result=True)
def run_nightly_reconcile() -> dict:
    """Beat (every 15 minutes): the nightly pass of buildings whose 02:30 just passed."""
    return nightly.run_due()


@shared_task(ignore_result=True)
def sweep_inbox(grace_seconds: float | None = None) -> int:
    """Beat (every minute): notifications still unanswered after a grace period (their
    pull was lost with a killed worker) get a pull again."""
    grace = grace_seconds if grace_seconds is not None else float(getattr(settings, "CALENDAR_SYNC_INBOX_GRACE_SECONDS", 60))
    stale = (
        WebhookNotification.objects.filter(
            kind=WebhookNotification.Kind.CHANGE, state=WebhookNotification.State.RECEIVED,
            received_at__lte=timezone.now() - timedelta(seconds=grace),
        ).values_list("mailbox", flat=True).distinct()
    )
    mailboxes = sorted(set(stale))
    for mailbox in mailboxes:
        pull_room_mailbox.delay(mailbox)
    lifecycle = WebhookNotification.objects.filter(
        kind=WebhookNotification.Kind.LIFECYCLE, state=WebhookNotification.State.RECEIVED,
        received_at__lte=timezone.now() - timedelta(seconds=grace),
    ).values_list("pk", flat=True)
    for pk in lifecycle:
        handle_lifecycle_notification.delay(pk)
    return len(mailboxes)


def on_provider_saved(sender, instance, created: bool, **kwargs) -> None:
    """post_save of CalendarProvider (connected in CalendarSyncConfig.ready): an active
    provider gets its subscriptions after commit. Off with CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION=False."""
    if not instance.active or not getattr(settings, "CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION", True):
        return
    update_fields = kwargs.get("update_fields")
    if not created and update_fields is not None and "active" not in update_fields:
        return  # a token refresh or a field edit, not an activation
    from django.db import transaction

    transaction.on_commit(lambda: ensure_subscriptions.delay(), robust=True)


def on_property_saved(sender, instance, **kwargs) -> None:
    """post_save of InstanceProperty (connected in CalendarSyncConfig.ready): a new sync mode
    may need the organizer mailbox subscribed, or no longer need it. Same switch as above."""
    from exchange_auth import properties

    if instance.name != properties.SYNC_INTEGRATION_MODE or not getattr(settings, "CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION", True):
        return
    from django.db import transaction

    transaction.on_commit(lambda: ensure_subscriptions.delay(), robust=True)
