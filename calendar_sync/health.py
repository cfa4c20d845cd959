"""Sync health at a glance: the figures ``/metrics`` exports as gauges and the admin's
"Sync health" page shows (``figures``), read where they live — the outbox, the inbox,
the subscriptions and nightly runs in the database, the queues in the broker — plus the
counters every process keeps in Redis (``observability.metrics``).

Registered with observability in ``CalendarSyncConfig.ready``: the gauge source and the
mailbox classifier that labels Graph requests room / organizer / user.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from exchange_auth.models import CalendarProvider
from observability import metrics
from reservations.models import Reservation, State, SyncEvent
from workplace.models import Room

from .models import NightlyRun, Subscription, WebhookNotification

QUEUES = tuple(settings.CELERY_TASK_QUEUES)  # every queue a worker serves (settings/base.py)
# kombu's Redis transport keeps a queue's messages of priority 0 under its name and the
# others under "<name>\x06\x16<priority step>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue; None without a Redis broker (the embedded dev default)."""
    url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not url.startswith(("redis://", "rediss://")):
        return {name: None for name in QUEUES}
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    pipe = client.pipeline(transaction=False)
    for name in QUEUES:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(name + suffix)
    lengths = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {name: sum(lengths[i * step:(i + 1) * step]) for i, name in enumerate(QUEUES)}


@dataclass
class Figures:
    queues: dict[str, int | None]
    events: dict[str, int]  # sync events by state: new, processing, error
    oldest_pending_seconds: float | None  # the oldest sync event not yet pushed
    inbox_waiting: int
    oldest_notification_seconds: float | None
    subscriptions: dict[tuple[str, str], int]  # (kind, status): count
    next_expiry_seconds: float | None  # the active subscription that expires first
    awaiting_confirmation: int
    nightly: list[dict] = field(default_factory=list)  # the last run per building
    counters: metrics.Snapshot | None = None


def _age(oldest, now) -> float | None:
    return round((now - oldest).total_seconds(), 3) if oldest else None


def figures() -> Figures:
    now = timezone.now()
    events = dict(SyncEvent.objects.filter(state__in=["new", "processing", "error"]).values_list("state").annotate(n=Count("id")))
    oldest = SyncEvent.objects.filter(state__in=["new", "processing"]).aggregate(at=Min("created_at"))["at"]
    inbox = WebhookNotification.objects.filter(state=WebhookNotification.State.RECEIVED).aggregate(n=Count("id"), at=Min("received_at"))
    subs = {(kind, status): n for kind, status, n in Subscription.objects.values_list("kind", "status").annotate(n=Count("id"))}
    expiry = Subscription.objects.filter(status=Subscription.Status.ACTIVE, expires_at__isnull=False).aggregate(at=Min("expires_at"))["at"]
    runs = []
    seen = set()
    for run in NightlyRun.objects.filter(building__isnull=False, finished_at__isnull=False).select_related("building").order_by("-finished_at")[:200]:
        if run.building_id in seen:
            continue
        seen.add(run.building_id)
        seconds = run.summary.get("seconds") if isinstance(run.summary, dict) else None
        runs.append({"building": run.building.name, "local_date": run.local_date, "finished_at": run.finished_at,
                     "seconds": seconds if seconds is not None else round((run.finished_at - run.started_at).total_seconds(), 3),
                     "rooms": run.summary.get("rooms", 0), "failed_rooms": run.summary.get("failed_rooms", 0)})
    return Figures(
        queues=queue_depths(),
        events={state: events.get(state, 0) for state in ("new", "processing", "error")},
        oldest_pending_seconds=_age(oldest, now),
        inbox_waiting=inbox["n"],
        oldest_notification_seconds=_age(inbox["at"], now),
        subscriptions=subs,
        next_expiry_seconds=round((expiry - now).total_seconds(), 3) if expiry else None,
        awaiting_confirmation=Reservation.objects.filter(state=State.AWAITING_CONFIRMATION).count(),
        nightly=sorted(runs, key=lambda r: r["building"]),
        counters=metrics.snapshot(),
    )


def gauges() -> list[metrics.Gauge]:
    """The scrape's gauges (``observability.metrics.register_gauges``)."""
    f = figures()
    out = [
        metrics.Gauge("workplace_queue_depth", "Messages waiting in each Celery queue.", ("queue",),
                      [((name,), depth) for name, depth in f.queues.items() if depth is not None]),
        metrics.Gauge("workplace_sync_events", "Sync events not processed, by state (new, processing, error).", ("state",),
                      [((state,), n) for state, n in f.events.items()]),
        metrics.Gauge("workplace_sync_event_oldest_pending_age_seconds", "Age of the oldest sync event not yet pushed (0: none).", (),
                      [((), f.oldest_pending_seconds or 0.0)]),
        metrics.Gauge("workplace_webhook_inbox_waiting", "Change notifications stored and not yet pulled.", (), [((), f.inbox_waiting)]),
        metrics.Gauge("workplace_webhook_inbox_oldest_age_seconds", "Age of the oldest notification not yet pulled (0: none).", (),
                      [((), f.oldest_notification_seconds or 0.0)]),
        metrics.Gauge("workplace_subscriptions", "Graph subscriptions by kind and status.", ("kind", "status"),
                      [((kind, status), n) for (kind, status), n in sorted(f.subscriptions.items())]),
        metrics.Gauge("workplace_reservations_awaiting_confirmation", "Reservations waiting for the room's answer.", (),
                      [((), f.awaiting_confirmation)]),
        metrics.Gauge("workplace_nightly_last_duration_seconds", "Duration of each building's last nightly pass.", ("building",),
                      [((r["building"],), r["seconds"]) for r in f.nightly]),
        metrics.Gauge("workplace_nightly_last_finished_timestamp_seconds", "When each building's last nightly pass finished (Unix time).", ("building",),
                      [((r["building"],), r["finished_at"].timestamp()) for r in f.nightly]),
    ]
    if f.next_expiry_seconds is not None:
        out.append(metrics.Gauge("workplace_subscription_next_expiry_seconds", "Seconds until the first active subscription expires.", (),
                                 [((), f.next_expiry_seconds)]))
    return out


# --- the mailbox classes of Graph requests -----------------------------------------------

_CLASSES_TTL = 60.0
_classes: tuple[float, set[str], set[str]] = (0.0, set(), set())


def mailbox_class(mailbox: str) -> str:
    """room (a room's mailbox), organizer (a provider's organizer account or delegated user),
    user (anyone else). The sets are read again after a minute: a label, not a decision."""
    global _classes
    at, rooms, organizers = _classes
    if time.monotonic() - at > _CLASSES_TTL:
        rooms = {m.lower() for m in Room.objects.exclude(mailbox="").values_list("mailbox", flat=True)}
        organizers = set()
        for account, delegated in CalendarProvider.objects.values_list("organizer_account", "delegated_user_email"):
            organizers |= {m.lower() for m in (account, delegated) if m}
        _classes = (time.monotonic(), rooms, organizers)
    mailbox = mailbox.lower()
    if mailbox in rooms:
        return "room"
    if mailbox in organizers:
        return "organizer"
    return "user"
