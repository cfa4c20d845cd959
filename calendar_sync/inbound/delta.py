"""Delta pulls (calendarView/delta) of the mailboxes we listen to, one mailbox at a time.

1. One worker pulls a mailbox at a time (a lock in the cache, with a lease).
2. With a stored deltaLink only changes come back; without one (first pull, nightly,
   ``full``) a full round over the sync window; an expired token (410, or a 4xx
   ``syncStateNotFound`` / ``syncStateInvalid`` / ``resyncRequired``) restarts a full round.
3. Each page goes to the mailbox's ``Reconciler`` as it arrives; the new deltaLink is
   stored only after the whole round, so a killed worker's round is replayed (idempotent).
4. A full round ends with a sweep: meetings seen in the window that it no longer has
   were deleted; then the reconciler settles what no pull recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from django.core.cache import cache
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.graph import BatchItem, GraphError, GraphResponse, NotFound, users_path
from observability import metrics
from workplace.models import Room

from .. import conf
from ..common.clients import system_client
from ..common.tenancy import provider_for_mailbox
from ..models import MailboxDeltaState, RoomEvent, WebhookNotification
from . import organizer_calendar, room_calendar
from .copies import SERIES_ICAL_UID, SERIES_MASTER, Copy, parse_copy
from .mailboxes import is_organizer_mailbox

logger = logging.getLogger("calendar_sync.inbound")

LOCK_PREFIX = "calendar_sync:inbound:lock:"
PAGE_SIZE = 200
# Graph's signals that a delta token can't be resumed and the round must start over: 410 Gone, or a
# 4xx whose code says the sync state is gone (Outlook answers 400 syncStateNotFound for an expired
# token). https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset and
# https://learn.microsoft.com/en-us/graph/api/event-delta?view=graph-rest-1.0
RESTART_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


def must_restart(exc: GraphError) -> bool:
    """The delta round must start again without a token (see ``RESTART_CODES``)."""
    return exc.status == 410 or (400 <= exc.status < 500 and (exc.code or "").lower() in RESTART_CODES)


class Reconciler(Protocol):
    """What a pull asks of the module that reconciles a mailbox's copies
    (``room_calendar`` for a synced room, ``organizer_calendar`` for the organizer mailbox)."""

    Context: type  # built with provider, client, window_start, window_end, nightly and the scope

    def reconcile_page(self, ctx, raw_events: list[dict]) -> None: ...
    def reconcile_copy(self, ctx, copy: Copy, row: RoomEvent | None) -> str: ...
    def reconcile_notified_deletions(self, ctx, event_ids: list[str]) -> None: ...
    def settle_unrecorded(self, ctx, *, full: bool) -> None: ...
    def sweep_unseen(self, ctx) -> None: ...


class MailboxBusy(Exception):
    """Another worker is pulling this mailbox right now."""


class NoProvider(Exception):
    pass


@dataclass
class PullResult:
    mailbox: str
    full: bool
    pages: int = 0
    events: int = 0
    requests: int = 0
    expired_token: bool = False
    deferred: bool = False
    stats: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"mailbox": self.mailbox, "full": self.full, "pages": self.pages, "events": self.events,
                "requests": self.requests, "expired_token": self.expired_token, "deferred": self.deferred, **dict(self.stats)}


# --- the lock -----------------------------------------------------------------------------


class MailboxLock:
    def __init__(self, mailbox: str, *, wait: float = 0.0):
        self.key = LOCK_PREFIX + mailbox.lower()
        self.token = uuid.uuid4().hex
        self.wait = wait

    def __enter__(self):
        deadline = time.monotonic() + self.wait
        while not cache.add(self.key, self.token, timeout=conf.get().inbound_lock_seconds):
            if time.monotonic() >= deadline:
                raise MailboxBusy(self.key)
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        if cache.get(self.key) == self.token:
            cache.delete(self.key)

    def renew(self) -> None:
        """A new lease from now (called after each page): a round longer than the lease, as
        Graph's real latency makes a large mailbox's, keeps the mailbox to itself."""
        if cache.get(self.key) == self.token:
            cache.touch(self.key, timeout=conf.get().inbound_lock_seconds)


# --- windows ----------------------------------------------------------------------------------


def sync_window(provider, *, nightly: bool = False, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Real-time pulls cover the provider's window; the nightly one goes back
    ``past_sync_period_months`` (at least as far as the provider's window)."""
    now = now or timezone.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    past_days = provider.sync_window_past_days
    if nightly:
        past_days = max(past_days, 31 * int(properties.get(properties.PAST_SYNC_PERIOD_MONTHS)))
    return day - dt.timedelta(days=past_days), day + dt.timedelta(days=provider.sync_window_future_days + 1)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the pull ---------------------------------------------------------------------------------


def _reconciler(mailbox: str, provider) -> tuple[Reconciler, dict] | None:
    """(reconciler, what its Context needs) for a mailbox we listen to: a synced room or
    the organizer mailbox; None otherwise."""
    room = Room.objects.select_related("building").filter(mailbox__iexact=mailbox).first()
    if room is not None:
        return (room_calendar, {"room": room}) if room.is_synced else None
    if is_organizer_mailbox(provider, mailbox):
        return organizer_calendar, {"mailbox": mailbox}
    return None


def pull_mailbox(mailbox: str, *, full: bool = False, nightly: bool = False, wait: float = 0.0, progress=None) -> PullResult:
    """Pull one subscribed mailbox and reconcile what changed. Raises ``MailboxBusy`` when
    another worker holds the mailbox (the caller retries shortly)."""
    mailbox = mailbox.lower()
    provider = provider_for_mailbox(mailbox)
    if provider is None:
        raise NoProvider("No active calendar provider.")
    target = _reconciler(mailbox, provider)
    if target is None:
        return PullResult(mailbox=mailbox, full=full, stats=Counter(skipped_not_synced=1))
    module, scope = target
    with MailboxLock(mailbox, wait=wait) as lock:
        started = timezone.now()
        # Notifications received up to now are answered by this pull.
        answered = list(WebhookNotification.objects.filter(mailbox=mailbox, state=WebhookNotification.State.RECEIVED,
                                                            received_at__lte=started).values_list("pk", "change_type", "event_id"))
        state, _ = MailboxDeltaState.objects.get_or_create(provider=provider, mailbox=mailbox)
        client = system_client(provider)
        calls_before = client.calls
        window = sync_window(provider, nightly=nightly)
        ctx = module.Context(provider=provider, client=client, window_start=window[0], window_end=window[1], nightly=nightly, **scope)
        result = PullResult(mailbox=mailbox, full=full or nightly or not state.delta_link)
        try:
            def on_page(count: int) -> None:
                lock.renew()
                if progress is not None:
                    progress(count)

            link = _round(ctx, module, state, result, progress=on_page, renew=lock.renew)
            # A meeting created and deleted between two rounds is in neither: its notification names it.
            module.reconcile_notified_deletions(ctx, [event_id for _, change, event_id in answered if change == "deleted"])
            # Copies of the product's meetings no pull recorded: asked of Exchange after a
            # round that met a removal it could not map, and after every full round.
            module.settle_unrecorded(ctx, full=result.full)
        except GraphError as exc:
            MailboxDeltaState.objects.filter(pk=state.pk).update(last_error=str(exc)[:2000], last_pull_at=timezone.now())
            raise
        finally:
            result.requests = client.calls - calls_before  # approximate when other threads share the client
        updates = {"delta_link": link, "last_pull_at": timezone.now(), "last_error": "", "pulls": state.pulls + 1}
        if result.full:
            module.sweep_unseen(ctx)
            updates.update(window_start=ctx.window_start, window_end=ctx.window_end, last_full_sync_at=timezone.now(), full_syncs=state.full_syncs + 1)
        MailboxDeltaState.objects.filter(pk=state.pk).update(**updates)
        if answered:
            done = WebhookNotification.objects.filter(pk__in=[pk for pk, _, _ in answered])
            now = timezone.now()
            received = list(done.values_list("received_at", flat=True))
            done.update(state=WebhookNotification.State.PROCESSED, processed_at=now)
            metrics.observe_many(metrics.NOTIFICATION_LAG, [(now - at).total_seconds() for at in received])
        result.stats.update(ctx.stats)
        result.deferred = ctx.deferred
        return result


def _round(ctx, module, state: MailboxDeltaState, result: PullResult, *, progress=None, renew=None) -> str:
    """One delta round (all pages up to the deltaLink); returns the new deltaLink. ``renew``
    (the lock's) runs before each page is asked for and when it arrives: a slow answer from Graph
    must not leave the page's reconciling without a lease (another worker would pull the
    mailbox meanwhile and judge the same copies twice)."""
    client = ctx.client
    headers = {"Prefer": f'outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}'}
    if result.full:
        path, params = _fresh(ctx)
    else:
        path, params = client.relative(state.delta_link), None
    restarted = False
    masters: dict[str, dict] = {}  # series master id → what it says of the series, read once per round
    while True:
        if renew is not None:
            renew()
        try:
            body = client.request("GET", path, params=params, headers=headers, mailbox=ctx.mailbox).body or {}
        except GraphError as exc:
            if not must_restart(exc) or restarted:
                raise
            # 1. The sync state expired: drop the token and reconcile the whole window.
            logger.info("inbound: delta token of %s expired (%s %s); full resync", ctx.mailbox, exc.status, exc.code)
            restarted = result.full = result.expired_token = True
            ctx.seen.clear()
            path, params = _fresh(ctx)
            continue
        if renew is not None:
            renew()
        page = body.get("value") or []
        with_series_ical_uids(client, ctx.mailbox, page, masters)
        result.pages += 1
        result.events += len(page)
        module.reconcile_page(ctx, page)
        if progress is not None:
            progress(len(page))
        if body.get("@odata.nextLink"):
            path, params = client.relative(body["@odata.nextLink"]), None
            continue
        return body.get("@odata.deltaLink") or ""


def with_series_ical_uids(client, mailbox: str, raw_events: list[dict], masters: dict[str, dict]) -> None:
    """Put each occurrence's series iCalUId on it (``SERIES_ICAL_UID``), and what its master says
    of the series (``SERIES_MASTER``: pattern, first slot, subject): v1.0 names the series only by
    ``seriesMasterId``, so each master not met before is read once (``$batch``), kept in ``masters``.
    A master gone meanwhile leaves the occurrence to its own iCalUId and id."""
    wanted = sorted({e["seriesMasterId"] for e in raw_events
                     if "@removed" not in e and e.get("seriesMasterId") and e["seriesMasterId"] not in masters})
    if wanted:
        answers = client.batch([BatchItem("GET", users_path(mailbox, "events", master_id) + "?$select=" + MASTER_SELECT,
                                          headers={"Prefer": 'outlook.timezone="UTC"'}) for master_id in wanted])
        for master_id, answer in zip(wanted, answers, strict=True):
            if isinstance(answer, GraphResponse):
                masters[master_id] = answer.body or {}
            elif isinstance(answer, NotFound):
                masters[master_id] = {}
            else:
                raise answer  # the pull fails and is retried rather than reconciling half-known copies
    for e in raw_events:
        master = masters.get(e.get("seriesMasterId") or "") or {}
        if master.get("iCalUId"):
            e[SERIES_ICAL_UID] = master["iCalUId"]
            e[SERIES_MASTER] = {key: master.get(key) for key in ("recurrence", "start", "end", "subject")}


MASTER_SELECT = "id,iCalUId,recurrence,start,end,subject"


def _fresh(ctx) -> tuple[str, dict]:
    return users_path(ctx.mailbox, "calendarView", "delta"), {"startDateTime": _iso(ctx.window_start), "endDateTime": _iso(ctx.window_end)}


# --- deferred copies -------------------------------------------------------------------------


def recheck_deferred(mailbox: str) -> Counter:
    """Copies put aside because the product's own push was in flight: read each again."""
    mailbox = mailbox.lower()
    provider = provider_for_mailbox(mailbox)
    stats: Counter = Counter()
    target = _reconciler(mailbox, provider) if provider is not None else None
    if target is None:
        return stats
    module, scope = target
    rows = list(RoomEvent.objects.filter(mailbox=mailbox, outcome="deferred", removed_at__isnull=True))
    if not rows:
        return stats
    with MailboxLock(mailbox, wait=5):
        client = system_client(provider)
        window = sync_window(provider)
        ctx = module.Context(provider=provider, client=client, window_start=window[0], window_end=window[1], **scope)
        for row in rows:
            try:
                raw = client.get(users_path(mailbox, "events", row.event_id), headers={"Prefer": 'outlook.timezone="UTC"'})
            except NotFound:
                raw = {"id": row.event_id, "@removed": {"reason": "deleted"}}
            with_series_ical_uids(client, mailbox, [raw], {})
            outcome = module.reconcile_copy(ctx, parse_copy(raw), row)
            stats[outcome] += 1
        stats["still_deferred"] = int(ctx.deferred)
    return stats
