"""The nightly pass (calendar_sync/inbound/nightly.py): due at 02:30 building-local once a
day, and ``sync_calendars --full``. What each round reconciles is in test_room_calendar.py
and test_organizer_calendar.py."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo

import pytest
from django.core.management import call_command

from calendar_sync.inbound import nightly
from calendar_sync.models import (
    NightlyRun,
    RoomEvent,
)
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
)
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_nightly_pass_runs_at_0230_building_local_once_a_day(provider, emulator, bob, atlas, settings):
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    today = dt.datetime.now(berlin).date()
    before = dt.datetime.combine(today, dt.time(2, 20), tzinfo=berlin)
    after = dt.datetime.combine(today, dt.time(2, 35), tzinfo=berlin)
    assert nightly.run_due(before) == {}
    ran = nightly.run_due(after)
    assert ran["HQ"]["rooms"] == 1 and ran["HQ"]["created"] == 1
    assert nightly.run_due(after + dt.timedelta(minutes=15)) == {}  # once per local day
    assert NightlyRun.objects.get().finished_at is not None
    settings.CALENDAR_SYNC_NIGHTLY_TIME = "03:00"
    assert nightly.buildings_due(after) == []


def test_a_building_can_have_its_own_nightly_time(provider, emulator, atlas):
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    today = dt.datetime.now(berlin).date()
    hq = atlas.building
    hq.nightly_time = dt.time(4, 0)
    hq.save()
    assert nightly.buildings_due(dt.datetime.combine(today, dt.time(2, 35), tzinfo=berlin)) == []
    assert nightly.buildings_due(dt.datetime.combine(today, dt.time(4, 5), tzinfo=berlin)) == [(hq, today)]


def test_the_beat_task_queues_one_nightly_task_per_due_building(provider, emulator, bob, atlas, celery_not_eager, monkeypatch):
    """Not eager (a real deployment): the 15-minute beat task only queues each due building's
    pass on the nightly queue, so several workers share a night; each pass claims its building."""
    from calendar_sync.inbound import tasks

    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    at = dt.datetime.combine(dt.datetime.now(berlin).date(), dt.time(2, 35), tzinfo=berlin)
    due_then = nightly.buildings_due
    monkeypatch.setattr(tasks.nightly, "buildings_due", lambda now=None: due_then(at))  # beat at 02:35 Berlin
    queued = []
    monkeypatch.setattr(tasks.nightly_building, "delay", lambda *args: queued.append(args))
    assert tasks.run_nightly_reconcile() == {"HQ": "queued"}
    [(building_id, local_date)] = queued
    assert building_id == atlas.building_id and local_date == at.date().isoformat()
    chunks = []
    monkeypatch.setattr(tasks.nightly_chunk, "delay", lambda chunk_id: chunks.append(chunk_id))
    assert tasks.nightly_building(building_id, local_date) == {"HQ": {"queued_chunks": 1}}  # its rooms, in chunks
    [chunk_id] = chunks
    assert tasks.nightly_chunk(chunk_id)["created"] == 1
    assert NightlyRun.objects.get(building_id=building_id).summary["created"] == 1
    assert tasks.nightly_building(building_id, local_date) == {}  # claimed once per local date


def test_sync_calendars_full_prints_progress_and_a_summary(provider, emulator, bob, atlas, borealis):
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_calendars", "--full", "--room", "Atlas", stdout=out, stderr=err)
    assert "Synced 1/1 room(s)" in out.getvalue() and "created 1" in out.getvalue()
    assert len(outlook_reservations()) == 1
    assert RoomEvent.objects.filter(mailbox=ATLAS).count() == 1
