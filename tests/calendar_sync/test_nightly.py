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


def test_sync_calendars_full_prints_progress_and_a_summary(provider, emulator, bob, atlas, borealis):
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_calendars", "--full", "--room", "Atlas", stdout=out, stderr=err)
    assert "Synced 1/1 room(s)" in out.getvalue() and "created 1" in out.getvalue()
    assert len(outlook_reservations()) == 1
    assert RoomEvent.objects.filter(mailbox=ATLAS).count() == 1
