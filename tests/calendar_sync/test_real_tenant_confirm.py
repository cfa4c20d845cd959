"""The 10-minute room check on Graph v1.0 (issue 18 item 2): it selects only v1.0 properties,
finds a series' occurrences on the room's calendar through ``seriesMasterId`` and the master's
``iCalUId`` (v1.0 has no ``uid``), and a read that fails is logged and counted, not skipped."""

import logging

import pytest

from calendar_sync.outbound import confirm
from reservations.models import State
from tests.booking import book
from tests.calendar_sync.inbound_helpers import room_copies
from tests.calendar_sync.test_series_sync import book_series, occurrences
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
ATLAS = "atlas@contoso.example"


def test_the_room_check_confirms_a_series_from_the_rooms_own_occurrences(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(9, 9), count=2)
    series.refresh_from_db()
    wait_for(lambda: any(e.ical_uid == series.ical_uid for e in room_copies(emulator_server, ATLAS)), message="the attendant accepted on the room's calendar")
    emulator.clear_request_log()

    counts = confirm.check_room_calendars()

    assert counts == {"checked": 2, "confirmed": 2, "rejected": 0, "conflicted": 0, "failed": 0}
    assert {r.state for r in occurrences(series)} == {State.CONFIRMED}
    log = emulator.request_log()["entries"]
    assert all(e["status"] < 400 for e in log)
    # Matched on the room's calendar: the organizer's copy was never needed.
    assert not [e for e in log if e["mailbox"] == ALICE]
    assert [e for e in log if e["mailbox"] == ATLAS and e["endpoint"] == "GET /v1.0/users/{id}/events/{id}"]


def test_a_failed_read_is_logged_and_counted_not_skipped(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks, caplog):
    mode("Normal")
    emulator.set_auto_accept(ATLAS, False)  # nobody answers: the reservation stays awaiting
    r = book(actor=alice, room=atlas, capture_on_commit=django_capture_on_commit_callbacks)
    emulator.inject_fault(method="GET", path="/calendarView", mailbox=ATLAS, status=500, count=1)

    with caplog.at_level(logging.WARNING, logger="calendar_sync"):
        counts = confirm.check_room_calendars()

    r.refresh_from_db()
    assert counts["checked"] == 1 and counts["failed"] == 1 and counts["conflicted"] == 0
    assert r.state == State.AWAITING_CONFIRMATION  # a failed read is not an absence
    assert any("room check" in m and str(r.pk) in m for m in caplog.messages)
