"""The nightly reconcile (SPEC §4): at 02:30 in each building's time zone, every synced
room of the building gets a full round over the past-sync period and the provider's
future window. Beat calls ``run_due`` every 15 minutes; a ``NightlyRun`` row per
(building, local date) is the claim, so a building runs once a night whatever the
number of beat processes.

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
from django.utils import timezone

from exchange_auth.providers import active_providers
from observability import metrics
from workplace.models import Building, Room

from .. import conf
from ..common.tenancy import provider_for_mailbox
from ..models import NightlyRun
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
    try:
        with transaction.atomic():
            return NightlyRun.objects.create(building=building, local_date=local_date)
    except IntegrityError:
        return None  # another beat/worker took it


def run_building(building: Building, *, run: NightlyRun | None = None, progress=None) -> dict:
    """Full round for each synced room of ``building``; returns the summary."""
    started = time.monotonic()
    totals: Counter = Counter()
    rooms = Room.objects.filter(building=building, sync_enabled=True).exclude(mailbox="").order_by("name")
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
    metrics.observe(metrics.NIGHTLY_SECONDS, summary["seconds"])
    if run is not None:
        NightlyRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), summary=summary)
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


def run_one(building: Building, local_date: dt.date) -> dict:
    """The nightly pass of one building for ``local_date`` (claimed: once, whichever worker
    gets there first), and the organizer mailboxes not yet done that night.
    {building name or organizer mailbox: summary} of what ran."""
    ran = {}
    run = claim(building, local_date)
    if run is None:
        return ran
    ran[building.name] = run_building(building, run=run)
    for mailbox in organizer_mailboxes():
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
