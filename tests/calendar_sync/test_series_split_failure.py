"""Issue 16 item 7: a series split ("this and following") whose "end the old series" push fails
for good never leaves two live series: the new series' create is blocked (``error``, to
re-process after the old one) and the admins are told.

Real HTTPS to the emulator (refusing the old master's PATCH for good through its fault
injection), real msal, eager Celery."""

from __future__ import annotations

import datetime as dt

import pytest

from calendar_sync.outbound import tasks
from reservations import services
from reservations.models import ReservationSeries, SyncEvent
from reservations.recurrence import Recurrence
from tests.calendar_sync.test_push_emulator import ALICE
from tests.calendar_sync.test_series_time_change import book_series, masters, occurrences
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


def test_a_split_whose_old_series_cannot_be_ended_creates_no_second_series_and_tells_the_admins(
        provider, mode, emulator, emulator_server, alice, atlas, admin_user, django_capture_on_commit_callbacks, monkeypatch, mailoutbox):
    mode("Normal")
    old = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(14, 9), recurrence=Recurrence("daily", count=3))
    rows = occurrences(old)
    assert len(masters(emulator_server, ALICE)) == 1
    monkeypatch.setattr(services.clock, "now", lambda: rows[0].end + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):
        services.reservation_update(actor=alice, reservation=rows[1], scope="series",
                                    start=rows[1].start + dt.timedelta(minutes=30), end=rows[1].end + dt.timedelta(minutes=30))
    end_old, create_new = SyncEvent.objects.filter(state=SyncEvent.State.NEW).order_by("pk")
    assert (end_old.series_id, end_old.type, create_new.type) == (old.pk, "update", "create")
    # Exchange refuses to end the old series, for good.
    emulator.inject_fault(method="PATCH", path=r"/events/[^/]+$", status=400, code="ErrorInvalidRequest", count=None)
    mailoutbox.clear()
    emulator.clear_request_log()

    assert tasks.push_sync_event(end_old.pk) == "error"  # the create waiting behind it is tried next, and blocked
    assert tasks.push_sync_event(create_new.pk) == "skipped"  # ... for good: no worker claims it again

    create_new.refresh_from_db()
    assert create_new.state == SyncEvent.State.ERROR and f"split off series {old.pk}" in create_new.error
    new = ReservationSeries.objects.get(pk=create_new.series_id)
    assert new.event_id == ""
    assert len(masters(emulator_server, ALICE)) == 1  # the old series only: never two live series
    assert not [e for e in emulator.request_log()["entries"] if e["method"] == "POST" and e["path"].endswith(f"/users/{ALICE}/events")]
    told = [m for m in mailoutbox if "A moved series is not in Outlook" in m.subject]
    assert told and f"Re-process sync event {end_old.pk}" in told[0].body

    # Once Exchange takes the change again, re-processing both (in order) ends the old one and makes the new.
    emulator.clear_faults()
    assert tasks.reprocess([end_old.pk]) == 1
    assert SyncEvent.objects.get(pk=end_old.pk).state == SyncEvent.State.PROCESSED
    assert tasks.reprocess([create_new.pk]) == 1
    assert SyncEvent.objects.get(pk=create_new.pk).state == SyncEvent.State.PROCESSED
    assert len(masters(emulator_server, ALICE)) == 2
