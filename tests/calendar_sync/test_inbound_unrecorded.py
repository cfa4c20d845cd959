"""Inbound sync: the room's copy of the product's meeting that no pull recorded.

The room's booking attendant writes its own copy of the product's meeting (own event id,
same iCalUId); the product records it when a pull of the room sees it. A cancel in
Outlook before that (a quick cancel, a dropped or coalesced notification) removes a copy
whose id maps to no reservation: the pull asks the room calendar by iCalUId about the
product's meetings it never recorded, and settles them as row (c) says — real-time and
nightly — while a copy still there is simply recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from calendar_sync.inbound import nightly
from calendar_sync.models import RoomEvent, WebhookNotification
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (  # noqa: F401 - fixtures
    ALICE,
    ATLAS,
    BOB,
    outlook_cancel,
    outlook_meeting,
    outlook_reservations,
    room_copies,
    subscribed_fixture,
    wait_for,
)
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db(transaction=True)


def drop_next_notifications(emulator, count: int) -> None:
    emulator.set_notification_policy(drop=count)


def dropped(emulator) -> int:
    return sum(1 for d in emulator.notifications().get("deliveries", []) if d.get("dropped"))


def notifications_pulled() -> bool:
    return not WebhookNotification.objects.filter(mailbox=ATLAS, state=WebhookNotification.State.RECEIVED).exists()


def booked_unrecorded(emulator, emulator_server, alice, atlas, start) -> Reservation:
    """A portal booking whose room copy's creation notification is lost: no pull saw the copy."""
    before = dropped(emulator)
    drop_next_notifications(emulator, 1)
    r = book(actor=alice, room=atlas, start=start, confirmed=True)
    wait_for(lambda: dropped(emulator) == before + 1, message="the room copy's creation notification dropped")
    assert [c.ical_uid for c in room_copies(emulator_server, ATLAS)] == [r.ical_uid]
    assert not RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists()
    return r


def test_a_cancel_in_outlook_of_a_meeting_whose_room_copy_was_never_recorded_cancels_the_reservation(
    subscribed, provider, emulator, emulator_server, alice, atlas,
):
    r = booked_unrecorded(emulator, emulator_server, alice, atlas, days_ahead(5, 10))
    mail.outbox.clear()
    outlook_cancel(provider, ALICE, r.event_id)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    wait_for(notifications_pulled, message="the removal's notification pulled")
    assert "cancelled in Outlook" in Reservation.objects.get(pk=r.pk).state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert [e.type for e in SyncEvent.objects.filter(reservation=r)] == ["create"]  # nothing pushed back


def test_the_nightly_pass_cancels_a_meeting_cancelled_in_outlook_when_both_notifications_were_dropped(
    subscribed, provider, emulator, emulator_server, alice, atlas,
):
    r = booked_unrecorded(emulator, emulator_server, alice, atlas, days_ahead(5, 10))
    before = dropped(emulator)
    drop_next_notifications(emulator, 1)
    mail.outbox.clear()
    outlook_cancel(provider, ALICE, r.event_id)
    wait_for(lambda: dropped(emulator) == before + 1, message="the removal's notification dropped")
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED  # nothing told the product yet
    summary = nightly.run_building(atlas.building)
    assert summary["cancelled"] == 1
    r.refresh_from_db()
    assert r.state == State.CANCELLED and "cancelled in Outlook" in r.state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert nightly.run_building(atlas.building).get("cancelled", 0) == 0
    assert [m.to for m in mail.outbox] == [[ALICE]]  # told once
    assert [e.type for e in SyncEvent.objects.filter(reservation=r)] == ["create"]


def test_the_nightly_pass_records_an_unrecorded_copy_that_is_still_there(provider, emulator, emulator_server, alice, atlas):
    # No subscription: nothing pulled the room since the booking.
    r = book(actor=alice, room=atlas, start=days_ahead(5, 14), confirmed=True)
    assert not RoomEvent.objects.filter(mailbox=ATLAS).exists()
    summary = nightly.run_building(atlas.building)
    assert summary.get("cancelled", 0) == 0
    row = RoomEvent.objects.get(mailbox=ATLAS, ical_uid=r.ical_uid)
    assert (row.reservation_id, row.outcome, row.removed_at) == (r.pk, "echo", None)
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED
    again = nightly.run_building(atlas.building)
    assert again.get("unchanged") == 1 and again.get("echo", 0) == 0  # nothing asked twice


def test_an_unrelated_removal_records_an_unrecorded_copy_still_there_instead_of_cancelling(
    subscribed, provider, emulator, emulator_server, alice, bob, atlas,
):
    r = book(actor=alice, room=atlas, start=days_ahead(5, 10), confirmed=True)
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists(), message="room copy recorded")
    wait_for(notifications_pulled, message="the creation's notification pulled")
    # The record of the copy is lost (e.g. its reconcile failed): the delta token knows the
    # copy, so no round carries it again while it is unchanged.
    RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).delete()
    # Bob books the room in Outlook and cancels it before any pull saw it: the only trace
    # is the "deleted" notification of a copy the product never knew.
    before = dropped(emulator)
    drop_next_notifications(emulator, 1)
    theirs = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(5, 15), subject="Gone at once")
    wait_for(lambda: dropped(emulator) == before + 1, message="bob's copy's creation notification dropped")
    received = WebhookNotification.objects.filter(mailbox=ATLAS).count()
    mail.outbox.clear()
    outlook_cancel(provider, BOB, theirs["id"])
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ATLAS).count() > received and notifications_pulled(),
             message="the removal's notification pulled")
    row = wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).first(), message="copy recorded again")
    assert (row.reservation_id, row.outcome, row.removed_at) == (r.pk, "echo", None)
    r.refresh_from_db()
    assert r.state == State.CONFIRMED
    assert mail.outbox == [] and outlook_reservations() == []
    assert [e.type for e in SyncEvent.objects.filter(reservation=r)] == ["create"]


def test_a_cancel_in_outlook_of_a_copy_put_aside_while_the_push_was_in_flight_cancels_the_reservation(
    subscribed, provider, emulator, alice, atlas,
):
    r = book(actor=alice, room=atlas, start=days_ahead(5, 16), confirmed=True)
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists(), message="room copy recorded")
    wait_for(notifications_pulled, message="the creation's notification pulled")
    # What a pull that met the copy while the product's push was still running left: the
    # copy deferred, recorded without its reservation (a re-check would link it later).
    RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).update(reservation=None, outcome="deferred", change_key="")
    mail.outbox.clear()
    outlook_cancel(provider, ALICE, r.event_id)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert [e.type for e in SyncEvent.objects.filter(reservation=r)] == ["create"]


def test_an_awaiting_reservation_whose_room_has_not_answered_yet_is_left_alone(provider, emulator, emulator_server, alice, atlas):
    emulator.configure(attendant_delay_seconds=30)  # the room's attendant has not written its copy yet
    start = days_ahead(5, 9)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Waiting")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).event_id, message="pushed")
    assert room_copies(emulator_server, ATLAS) == []
    summary = nightly.run_building(atlas.building)
    assert summary.get("unrecorded_unanswered") == 1 and summary.get("cancelled", 0) == 0
    r.refresh_from_db()
    assert r.state == State.AWAITING_CONFIRMATION
