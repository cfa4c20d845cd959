"""Inbound sync, nightly path: no subscription, Exchange changed meanwhile, and the
02:30 pass (or ``sync_calendars --full``) reconciles every row of the SPEC §4 table."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo

import pytest
from django.core import mail
from django.core.management import call_command

from calendar_sync import freebusy
from calendar_sync.inbound import delta, nightly
from calendar_sync.models import NightlyRun, RoomEvent
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    outlook_cancel,
    outlook_meeting,
    outlook_reservations,
    outlook_update,
    room_response,
    wait_for,
)
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db(transaction=True)


def run_nightly() -> dict:
    return delta.pull_mailbox(ATLAS, full=True, nightly=True).stats


def test_row_a_meetings_missed_are_booked_or_declined(provider, emulator, emulator_server, alice, bob, atlas):
    free = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="Missed")
    taken_at = days_ahead(3, 14)
    ReservationFactory(room=atlas, start=taken_at, end=taken_at + dt.timedelta(hours=1), requested_for=alice)
    clash = outlook_meeting(emulator, BOB, [ATLAS], taken_at, subject="Clash")
    stats = run_nightly()
    assert (stats["created"], stats["declined"]) == (1, 1)
    [r] = outlook_reservations()
    assert r.ical_uid == free["iCalUId"] and r.requested_for == bob
    assert room_response(emulator_server, BOB, clash["iCalUId"]) == "declined"


def test_row_b_and_d_equal_change_keys_cost_nothing_changed_ones_update(provider, emulator, alice, bob, atlas):
    ours = book(actor=alice, room=atlas, start=days_ahead(4, 9), subject="Ours", confirmed=True)
    theirs = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(4, 13), subject="Theirs")
    first = run_nightly()
    assert first["created"] == 1 and first["echo"] == 1  # (d): our meeting recognised, recorded
    again = run_nightly()
    assert again == {"unchanged": 2}  # ids and change key equal → no action
    moved = days_ahead(4, 16)
    outlook_update(provider, ALICE, ours.event_id, start=moved, end=moved + dt.timedelta(hours=1))
    outlook_update(provider, BOB, theirs["id"], subject="Theirs, renamed")
    third = run_nightly()
    assert third["updated"] == 2
    assert Reservation.objects.get(pk=ours.pk).start == moved
    assert outlook_reservations()[0].subject == "Theirs, renamed"
    assert list(SyncEvent.objects.filter(reservation=ours).values_list("type", flat=True)) == ["create"]


def test_row_c_only_meetings_seen_before_are_cancelled(provider, emulator, alice, bob, atlas):
    ours = book(actor=alice, room=atlas, start=days_ahead(5, 9), confirmed=True)
    run_nightly()  # seen
    # Created and deleted between two nightly runs: never seen.
    unseen = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(5, 15), subject="Never seen")
    outlook_cancel(provider, BOB, unseen["id"])
    outlook_cancel(provider, ALICE, ours.event_id)
    mail.outbox.clear()
    stats = run_nightly()
    assert stats["cancelled"] == 1
    ours.refresh_from_db()
    assert ours.state == State.CANCELLED and [m.to for m in mail.outbox] == [[ALICE]]
    assert outlook_reservations() == []


def test_row_e_the_products_cancellation_needs_no_action(provider, emulator, alice, atlas):
    ours = book(actor=alice, room=atlas, start=days_ahead(5, 11), confirmed=True)
    run_nightly()
    services.reservation_cancel(actor=alice, reservation=ours, reason="Not needed")
    stats = run_nightly()
    assert stats.get("cancelled", 0) == 0 and stats["no_action"] == 1
    assert Reservation.objects.get(pk=ours.pk).state_reason == "Not needed"


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


def test_free_busy_comes_from_get_schedule_and_is_unknown_without_an_organizer_account(provider, emulator, alice, bob, atlas):
    start = days_ahead(6, 10)
    outlook_meeting(emulator, BOB, [ATLAS], start, subject="Bob busy")
    availability = freebusy.attendee_availability(start=start, end=start + dt.timedelta(hours=1), emails=[BOB, ALICE, "nobody@contoso.example"])
    assert availability == {BOB: "busy", ALICE: "free", "nobody@contoso.example": "unknown"}
    provider.organizer_account = ""
    provider.save(update_fields=["organizer_account"])
    assert set(freebusy.attendee_availability(start=start, end=start + dt.timedelta(hours=1), emails=[BOB]).values()) == {"unknown"}


def test_attendee_responses_for_product_meetings_and_unknown_for_outlook_ones(provider, emulator, emulator_server, alice, bob, atlas, alice_api, bob_api):
    start = days_ahead(6, 14)
    ours = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Ours",
                                       attendees=[{"email": BOB}])
    wait_for(lambda: Reservation.objects.get(pk=ours.pk).event_id, message="pushed")
    resp = alice_api.get(f"/api/v1/reservations/{ours.pk}/attendees/?refresh=1")
    assert resp.status_code == 200
    [bob_row] = resp.json()["attendees"]
    assert bob_row["email"] == BOB and bob_row["response"] == "none" and bob_row["availability"] in ("tentative", "busy")
    assert SyncEvent.objects.filter(reservation=ours, type="retrieve_attendees", state="processed").exists()
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(6, 17), people=(ALICE,))
    run_nightly()
    [theirs] = outlook_reservations()
    resp = bob_api.get(f"/api/v1/reservations/{theirs.pk}/attendees/")
    assert [a["response"] for a in resp.json()["attendees"]] == ["unknown"]
