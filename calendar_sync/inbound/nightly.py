"""The nightly reconcile (SPEC §4): at 02:30 in each building's time zone, every synced
room of the building gets a full round over the past-sync period and the provider's
future window. Beat calls ``run_due`` every 15 minutes; a ``NightlyRun`` row per
(building, local date) is the claim, so a building runs once a night whatever the
number of beat processes. A building's rooms are split into ``NightlyChunk`` rows of
``CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS`` (claimed with the run, in one transaction), one task
each, so many workers share one building's night; a chunk's claim has a lease (a dead
worker's chunk runs again), and the last chunk to finish finishes the run. Each room's
round is one delta round of pages reconciled as they arrive: a worker holds one page at a
time, whatever the size of the mailbox.

The organizer mailboxes belong to no building: each gets its full round once a night, with
the first building pass of that local date (its own ``NightlyRun`` claim). Every round goes
through ``delta.pull_mailbox`` (its lock: never beside a real-time pull of the mailbox);
unchanged copies write nothing."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exchange_auth.providers import active_providers
from observability import metrics
from workplace.models import Building, Room

from .. import conf
from ..common.tenancy import provider_for_mailbox
from ..models import NightlyChunk, NightlyRun
from . import delta, mailboxes

logger = logging.getLogger("calendar_sync.inbound")


def nightly_time() -> dt.time:
    """``CALENDAR_SYNC_NIGHTLY_TIME`` ("HH:MM", building-local; default 02:30)."""
    return conf.get().nightly_time


# A building whose beat missed 02:30 (deploy, outage) still runs if it's within this.
CATCH_UP = dt.timedelta(hours=3)


def buildings_due(now: dt.datetime | None = None) -> list[tuple[Building, dt.date]]:
    now = now or timezone.now()
    default_at = nightly_time()
    due = []
    ids = Room.objects.filter(sync_enabled=True).exclude(mailbox="").values_list("building_id", flat=True).distinct()
    done = set(NightlyRun.objects.filter(building_id__in=ids).values_list("building_id", "local_date"))
    for building in Building.objects.filter(pk__in=ids):
        local = now.astimezone(building.tzinfo)
        at = building.nightly_time or default_at
        scheduled = dt.datetime.combine(local.date(), at, tzinfo=building.tzinfo)
        if scheduled <= local < scheduled + CATCH_UP and (building.pk, local.date()) not in done:
            due.append((building, local.date()))
    return due


def claim(building: Building, local_date: dt.date) -> NightlyRun | None:
    """The building's run of ``local_date``, with its chunks of rooms (one transaction: a run
    never exists without them); None when another beat or worker took it."""
    try:
        with transaction.atomic():
            run = NightlyRun.objects.create(building=building, local_date=local_date)
            size = conf.get().nightly_chunk_rooms
            ids = list(_rooms(building).values_list("pk", flat=True))
            NightlyChunk.objects.bulk_create([NightlyChunk(run=run, index=n, room_ids=ids[at:at + size])
                                              for n, at in enumerate(range(0, len(ids), size))])
            if not ids:
                _finish(run)
            return run
    except IntegrityError:
        return None  # another beat/worker took it


def _rooms(building: Building):
    return Room.objects.filter(building=building, sync_enabled=True).exclude(mailbox="").order_by("name", "pk")


def pending_chunks(run: NightlyRun) -> list[int]:
    """Chunks of ``run`` not finished and not held by a live claim (their lease not run out)."""
    stale = timezone.now() - dt.timedelta(seconds=conf.get().nightly_chunk_lease_seconds)
    return list(NightlyChunk.objects.filter(run=run, finished_at__isnull=True)
                .filter(Q(started_at__isnull=True) | Q(started_at__lt=stale)).values_list("pk", flat=True))


def start(building: Building, local_date: dt.date) -> tuple[NightlyRun, list[int]] | None:
    """Claim the building's night and return (run, the chunk ids to queue). A run claimed
    before but not finished (the task that claimed it died before queueing its chunks, or
    a chunk's worker died) gives its pending chunks again; a finished one gives None."""
    run = claim(building, local_date)
    if run is None:
        run = NightlyRun.objects.filter(building=building, local_date=local_date, finished_at__isnull=True).first()
        if run is None:
            return None
    return run, pending_chunks(run)


def run_chunk(chunk_id: int) -> dict | None:
    """The full rounds of one chunk's rooms; the chunk's summary, or None when it is finished
    or another worker holds it. The last chunk to finish finishes the run (its summary: the
    chunks' summed, its duration from the claim)."""
    lease = dt.timedelta(seconds=conf.get().nightly_chunk_lease_seconds)
    now = timezone.now()
    took = NightlyChunk.objects.filter(pk=chunk_id, finished_at__isnull=True).filter(
        Q(started_at__isnull=True) | Q(started_at__lt=now - lease)).update(started_at=now, attempts=F("attempts") + 1)
    if not took:
        return None
    chunk = NightlyChunk.objects.select_related("run__building").get(pk=chunk_id)
    rooms = Room.objects.filter(pk__in=chunk.room_ids, building=chunk.run.building).order_by("name", "pk")
    summary = _run_rooms(rooms)
    with transaction.atomic():
        run = NightlyRun.objects.select_for_update().get(pk=chunk.run_id)  # the chunks of a run finish one at a time
        NightlyChunk.objects.filter(pk=chunk_id).update(finished_at=timezone.now(), summary=summary)
        if run.finished_at is None and not NightlyChunk.objects.filter(run=run, finished_at__isnull=True).exists():
            _finish(run)
    return summary


def _finish(run: NightlyRun) -> dict:
    totals: Counter = Counter()
    chunks = list(NightlyChunk.objects.filter(run=run).values_list("summary", flat=True))
    for summary in chunks:
        totals.update({k: v for k, v in summary.items() if isinstance(v, int) and k != "seconds"})
    summary = dict(totals)
    summary["chunks"] = len(chunks)
    summary["room_seconds"] = round(sum(chunk.get("seconds", 0) for chunk in chunks), 3)  # the workers' time on the rooms, in all
    finished = timezone.now()
    summary["seconds"] = round((finished - run.started_at).total_seconds(), 3)
    NightlyRun.objects.filter(pk=run.pk).update(finished_at=finished, summary=summary)
    metrics.observe(metrics.NIGHTLY_SECONDS, summary["seconds"])
    logger.info("nightly reconcile of %s: %s", run.building, summary)
    return summary


def _run_rooms(rooms, progress=None) -> dict:
    started = time.monotonic()
    totals: Counter = Counter()
    for room in rooms:
        try:
            result = delta.pull_mailbox(room.mailbox, full=True, nightly=True, wait=60)
        except Exception as exc:  # one room's failure must not stop the others
            metrics.inc(metrics.PULLS, kind="nightly", outcome="error")
            logger.exception("nightly reconcile of %s failed", room.mailbox)
            totals["failed_rooms"] += 1
            totals[f"error:{type(exc).__name__}"] += 1
            continue
        metrics.inc(metrics.PULLS, kind="nightly", outcome="ok")
        totals["rooms"] += 1
        totals["events"] += result.events
        totals["requests"] += result.requests
        totals.update({k: v for k, v in result.stats.items()})
        if progress is not None:
            progress(room, result)
    summary = dict(totals)
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def run_building(building: Building, *, progress=None) -> dict:
    """Full round for each synced room of ``building``, here and now, unclaimed (the first
    round of a new installation, ``sync_calendars``); returns the summary."""
    summary = _run_rooms(_rooms(building), progress=progress)
    metrics.observe(metrics.NIGHTLY_SECONDS, summary["seconds"])
    logger.info("nightly reconcile of %s: %s", building, summary)
    return summary


def organizer_mailboxes() -> list[str]:
    """The organizer mailboxes the nightly pass (and ``sync_calendars``) covers: those subscribed."""
    found = []
    for provider in active_providers():
        found += [m for m in mailboxes.organizer_mailboxes(provider) if m not in found]
    return found


def claim_mailbox(mailbox: str, local_date: dt.date) -> NightlyRun | None:
    try:
        with transaction.atomic():
            return NightlyRun.objects.create(mailbox=mailbox.lower(), local_date=local_date, provider=provider_for_mailbox(mailbox))
    except IntegrityError:
        return None  # done tonight already (another building's pass, or another beat)


def run_mailbox(mailbox: str, *, run: NightlyRun | None = None) -> dict:
    """Full round of one organizer mailbox over the nightly window; returns the summary."""
    totals: Counter = Counter()
    try:
        result = delta.pull_mailbox(mailbox, full=True, nightly=True, wait=60)
    except Exception as exc:  # reported in the summary; the rooms' passes are not affected
        logger.exception("nightly reconcile of organizer mailbox %s failed", mailbox)
        totals["failed_mailboxes"] += 1
        totals[f"error:{type(exc).__name__}"] += 1
    else:
        totals["mailboxes"] += 1
        totals["events"] += result.events
        totals["requests"] += result.requests
        totals.update(dict(result.stats))
    summary = dict(totals)
    if run is not None:
        NightlyRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), summary=summary)
    logger.info("nightly reconcile of organizer mailbox %s: %s", mailbox, summary)
    return summary


def run_one(building: Building, local_date: dt.date, *, queue_chunk=None, queue_mailbox=None) -> dict:
    """The nightly pass of one building for ``local_date`` (claimed: once, whichever worker
    gets there first), and the organizer mailboxes not yet done that night. With
    ``queue_chunk`` / ``queue_mailbox`` (the tasks' ``delay``) the chunks and the organizer
    mailboxes are queued, for several workers to share; without, they run here.
    {building name or organizer mailbox: summary, or "queued"} of what ran."""
    ran = {}
    started = start(building, local_date)
    if started is None:
        return ran
    run, chunk_ids = started
    for chunk_id in chunk_ids:
        if queue_chunk is not None:
            queue_chunk(chunk_id)
        else:
            run_chunk(chunk_id)
    if queue_chunk is not None:
        ran[building.name] = {"queued_chunks": len(chunk_ids)}
    else:
        ran[building.name] = NightlyRun.objects.get(pk=run.pk).summary
    for mailbox in organizer_mailboxes():
        if queue_mailbox is not None:
            if not NightlyRun.objects.filter(mailbox=mailbox.lower(), local_date=local_date).exists():
                queue_mailbox(mailbox, local_date.isoformat())
                ran[mailbox] = "queued"
            continue
        mailbox_run = claim_mailbox(mailbox, local_date)
        if mailbox_run is not None:
            ran[mailbox] = run_mailbox(mailbox, run=mailbox_run)
    return ran


def run_due(now: dt.datetime | None = None) -> dict:
    """{building name or organizer mailbox: summary} of what ran (all due buildings, here)."""
    ran = {}
    for building, local_date in buildings_due(now):
        ran.update(run_one(building, local_date))
    return ran
