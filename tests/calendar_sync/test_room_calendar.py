"""The room-calendar reconciler (calendar_sync/inbound/room_calendar.py), row by row of the
SPEC §4 inbound table, in its order. Real time goes the whole delivery path (the emulator
notifies the webhook served by ``live_server``, the webhook stores and queues, the pull
reconciles); nightly is the 02:30 pass's full round (``pull_mailbox(full=True, nightly=True)``
or ``nightly.run_building``).

| row | real time | nightly |
|---|---|---|
| (a) meeting created by inviting the room | test_row_a_an_outlook_booking_becomes_a_reservation, test_row_a_a_slot_taken_in_the_product_makes_the_room_decline, test_row_a_a_meeting_that_breaks_the_rules_is_declined_with_the_reason | test_nightly_row_a_meetings_missed_are_booked_or_declined |
| (b) product's meeting updated on the room calendar | test_row_b_a_move_in_outlook_to_a_free_slot_updates_the_reservation, test_row_b_a_move_onto_a_slot_taken_in_the_product_cancels_meeting_and_reservation | test_nightly_row_b_and_d_equal_change_keys_cost_nothing_changed_ones_update |
| (c) meeting cancelled on the room calendar | test_row_c_the_organizer_cancels_the_products_meeting_in_outlook, test_row_c_an_outlook_meeting_cancelled_in_outlook_cancels_its_reservation; a copy no pull recorded: test_row_c_a_cancel_in_outlook_of_a_meeting_whose_room_copy_was_never_recorded_cancels_the_reservation, test_row_c_an_unrelated_removal_records_an_unrecorded_copy_still_there_instead_of_cancelling, test_row_c_a_cancel_in_outlook_of_a_copy_put_aside_while_the_push_was_in_flight_cancels_the_reservation | test_nightly_row_c_only_meetings_seen_before_are_cancelled, test_nightly_row_c_cancels_a_meeting_cancelled_in_outlook_when_both_notifications_were_dropped, test_nightly_row_c_records_an_unrecorded_copy_that_is_still_there, test_nightly_row_c_leaves_an_awaiting_reservation_whose_room_has_not_answered_yet_alone |
| (d) product created/updated the meeting itself | test_row_d_the_products_own_create_and_update_echo_back_without_effect | test_nightly_row_b_and_d_... (above) |
| (e) product cancelled the meeting | test_row_e_the_product_cancels_its_meeting_and_nothing_else_happens | test_nightly_row_e_the_products_cancellation_needs_no_action |
| declines (the room says no) | test_room_calendar_declines.py: test_realtime_* | test_room_calendar_declines.py: test_nightly_* |

A copy no pull recorded (row c): the room's attendant writes its own copy of the product's
meeting (own event id, same iCalUId); a cancel before any pull saw it removes a copy whose id
maps to no reservation, so the pull asks the room calendar by iCalUId about the product's
meetings it never recorded, and settles them as row (c) says, while a copy still there is
simply recorded.

Elsewhere: the webhook itself in test_webhook.py, subscriptions in test_subscriptions.py,
pull mechanics (delivery order, 410, coalescing, deferred re-check) in test_delta.py, the
organizer mailbox in test_organizer_calendar.py, the nightly schedule in test_nightly.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from calendar_sync.inbound import nightly
from calendar_sync.models import (
    RoomEvent,
    WebhookNotification,
)
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    echoed,
    outlook_cancel,
    outlook_meeting,
    outlook_reservations,
    outlook_update,
    room_copies,
    room_response,
    run_nightly,
)
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for

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


# --- (a) meeting created by inviting the room --------------------------------------------------------


def test_row_a_an_outlook_booking_becomes_a_reservation(subscribed, emulator, alice, bob, atlas):
    start = days_ahead(3, 14)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start, subject="Design review", people=(ALICE,))
    [r] = wait_for(outlook_reservations, message="reservation from Outlook")
    assert (r.source, r.origin, r.state, r.requested_for, r.kind) == ("outlook", "exchange", State.CONFIRMED, bob, "standard")
    assert (r.start, r.end, r.subject, r.room) == (start, start + dt.timedelta(hours=1), "Design review", atlas)
    assert r.ical_uid == meeting["iCalUId"] and r.mailbox == ATLAS and r.event_id and r.change_key
    assert [(a.email, a.response) for a in r.attendees.all()] == [(ALICE, "unknown")]
    assert not SyncEvent.objects.filter(reservation=r).exists()  # nothing goes back to Exchange
    # The room's own answer (its accept updates the copy) notifies again, possibly after the pull
    # that made the reservation: every notification is processed in the end, none left behind.
    wait_for(lambda: not WebhookNotification.objects.filter(mailbox=ATLAS).exclude(state="processed").exists(),
             message="every notification of the room processed")
    assert not SyncEvent.objects.filter(reservation=r).exists()


def test_row_a_a_slot_taken_in_the_product_makes_the_room_decline(subscribed, emulator, emulator_server, alice, bob, atlas):
    start = days_ahead(3, 9)
    # Booked in the product only (e.g. a non-synced moment): Exchange thinks the room is free.
    ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=2), requested_for=alice)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start + dt.timedelta(minutes=30))
    wait_for(lambda: room_response(emulator_server, BOB, meeting["iCalUId"]) == "declined", message="the room declines")
    assert outlook_reservations() == []
    assert room_copies(emulator_server, ATLAS) == []
    # The room's answer is sent before the pull records what it did: wait for the record too.
    row = wait_for(lambda: RoomEvent.objects.filter(ical_uid=meeting["iCalUId"]).first(), message="the decline recorded")
    assert row.outcome == "declined" and "already booked" in row.note


@pytest.mark.parametrize("case", ["not_reservable", "outside_window", "too_long"])
def test_row_a_a_meeting_that_breaks_the_rules_is_declined_with_the_reason(case, subscribed, emulator, emulator_server, bob, atlas, settings):
    start, hours = days_ahead(3, 9), 1
    if case == "not_reservable":
        atlas.reservable = False
        atlas.save(update_fields=["reservable"])
    elif case == "outside_window":
        settings.RESERVATION_BOOKING_HORIZON_DAYS = 2
    else:
        hours = settings.RESERVATION_MAX_DURATION_MINUTES / 60 + 1
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start, hours=hours)
    wait_for(lambda: room_response(emulator_server, BOB, meeting["iCalUId"]) == "declined", message="the room declines")
    assert outlook_reservations() == []
    note = wait_for(lambda: RoomEvent.objects.filter(ical_uid=meeting["iCalUId"]).first(), message="the decline recorded").note
    assert {"not_reservable": "not reservable", "outside_window": "booking window", "too_long": "too long"}[case] in note


def test_nightly_row_a_meetings_missed_are_booked_or_declined(provider, emulator, emulator_server, alice, bob, atlas):
    free = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="Missed")
    taken_at = days_ahead(3, 14)
    ReservationFactory(room=atlas, start=taken_at, end=taken_at + dt.timedelta(hours=1), requested_for=alice)
    clash = outlook_meeting(emulator, BOB, [ATLAS], taken_at, subject="Clash")
    stats = run_nightly()
    assert (stats["created"], stats["declined"]) == (1, 1)
    [r] = outlook_reservations()
    assert r.ical_uid == free["iCalUId"] and r.requested_for == bob
    assert room_response(emulator_server, BOB, clash["iCalUId"]) == "declined"


# --- (b) the product's meeting updated in Exchange ---------------------------------------------------


def test_row_b_a_move_in_outlook_to_a_free_slot_updates_the_reservation(subscribed, provider, emulator, alice, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(4, 10), confirmed=True)
    new_start = days_ahead(4, 15)
    outlook_update(provider, ALICE, r.event_id, start=new_start, end=new_start + dt.timedelta(hours=1), subject="Moved in Outlook")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).start == new_start, message="reservation moved")
    r.refresh_from_db()
    assert (r.state, r.subject, r.origin) == (State.CONFIRMED, "Moved in Outlook", "app")
    # No loop: the inbound change wrote no outbox event.
    assert list(SyncEvent.objects.filter(reservation=r).values_list("type", flat=True)) == ["create"]


def test_row_b_a_move_onto_a_slot_taken_in_the_product_cancels_meeting_and_reservation(subscribed, provider, emulator, emulator_server, alice, bob, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(4, 10), confirmed=True)
    taken = days_ahead(4, 16)
    ReservationFactory(room=atlas, start=taken, end=taken + dt.timedelta(hours=1), requested_for=bob)
    mail.outbox.clear()
    outlook_update(provider, ALICE, r.event_id, start=taken, end=taken + dt.timedelta(hours=1))
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    r.refresh_from_db()
    assert "already booked" in r.state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]] and "cancelled" in mail.outbox[0].subject.lower()
    wait_for(lambda: room_response(emulator_server, ALICE, r.ical_uid) == "gone", message="meeting cancelled in Exchange")


def test_nightly_row_b_and_d_equal_change_keys_cost_nothing_changed_ones_update(provider, emulator, alice, bob, atlas):
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


# --- (c) meeting cancelled on the room calendar ------------------------------------------------------


def test_row_c_the_organizer_cancels_the_products_meeting_in_outlook(subscribed, provider, emulator, alice, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(5, 10), confirmed=True)
    mail.outbox.clear()
    outlook_cancel(provider, ALICE, r.event_id)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    # The email follows the state change (same pull, another thread): wait for it, and for
    # every notification to be pulled, so a late pull could not mail a second time unseen.
    wait_for(lambda: mail.outbox, message="requester emailed")
    wait_for(lambda: not WebhookNotification.objects.filter(mailbox=ATLAS, state=WebhookNotification.State.RECEIVED).exists(),
             message="notifications pulled")
    assert "cancelled in Outlook" in Reservation.objects.get(pk=r.pk).state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert [e.type for e in SyncEvent.objects.filter(reservation=r)] == ["create"]  # nothing pushed back


def test_row_c_an_outlook_meeting_cancelled_in_outlook_cancels_its_reservation(subscribed, provider, emulator, bob, atlas):
    meeting = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(5, 12))
    [r] = wait_for(outlook_reservations, message="reservation from Outlook")
    outlook_cancel(provider, BOB, meeting["id"])
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")


def test_row_c_a_cancel_in_outlook_of_a_meeting_whose_room_copy_was_never_recorded_cancels_the_reservation(
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


def test_row_c_an_unrelated_removal_records_an_unrecorded_copy_still_there_instead_of_cancelling(
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


def test_row_c_a_cancel_in_outlook_of_a_copy_put_aside_while_the_push_was_in_flight_cancels_the_reservation(
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


def test_nightly_row_c_only_meetings_seen_before_are_cancelled(provider, emulator, alice, bob, atlas):
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


def test_nightly_row_c_cancels_a_meeting_cancelled_in_outlook_when_both_notifications_were_dropped(
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


def test_nightly_row_c_records_an_unrecorded_copy_that_is_still_there(provider, emulator, emulator_server, alice, atlas):
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


def test_nightly_row_c_leaves_an_awaiting_reservation_whose_room_has_not_answered_yet_alone(provider, emulator, emulator_server, alice, atlas):
    emulator.configure(attendant_delay_seconds=30)  # the room's attendant has not written its copy yet
    start = days_ahead(5, 9)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Waiting")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).event_id, message="pushed")
    assert room_copies(emulator_server, ATLAS) == []
    summary = nightly.run_building(atlas.building)
    assert summary.get("unrecorded_unanswered") == 1 and summary.get("cancelled", 0) == 0
    r.refresh_from_db()
    assert r.state == State.AWAITING_CONFIRMATION


# --- (d) the product's own create and update ---------------------------------------------------------


def test_row_d_the_products_own_create_and_update_echo_back_without_effect(subscribed, emulator, alice, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(6, 10), subject="Ours", confirmed=True)
    services.reservation_update(actor=alice, reservation=r, subject="Ours, renamed")
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="update pushed")
    wait_for(lambda: echoed(ATLAS, ical_uid=r.ical_uid, subject="Ours, renamed"), message="echo seen")
    r.refresh_from_db()
    assert r.subject == "Ours, renamed" and r.state == State.CONFIRMED
    assert outlook_reservations() == []  # never a duplicate
    assert list(SyncEvent.objects.filter(reservation=r).order_by("id").values_list("type", flat=True)) == ["create", "update"]


# --- (e) the product cancels its meeting -------------------------------------------------------------


def test_row_e_the_product_cancels_its_meeting_and_nothing_else_happens(subscribed, emulator, emulator_server, alice, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(6, 14), confirmed=True)
    before = WebhookNotification.objects.filter(mailbox=ATLAS).order_by("-id").values_list("id", flat=True).first() or 0
    services.reservation_cancel(actor=alice, reservation=r, reason="Not needed")
    wait_for(lambda: room_copies(emulator_server, ATLAS) == [], message="room copy gone")

    def removal_pulled():
        mine = WebhookNotification.objects.filter(mailbox=ATLAS)
        return mine.filter(id__gt=before).exists() and not mine.filter(state=WebhookNotification.State.RECEIVED).exists()

    # The copy's creation and removal may reach one delta round (then it only shows as
    # @removed and was never recorded): either way no live copy is left on record.
    wait_for(removal_pulled, message="the removal's notification pulled")
    assert not RoomEvent.objects.filter(ical_uid=r.ical_uid, removed_at__isnull=True).exists()
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, "Not needed")
    assert outlook_reservations() == []


def test_nightly_row_e_the_products_cancellation_needs_no_action(provider, emulator, alice, atlas):
    ours = book(actor=alice, room=atlas, start=days_ahead(5, 11), confirmed=True)
    run_nightly()
    services.reservation_cancel(actor=alice, reservation=ours, reason="Not needed")
    stats = run_nightly()
    assert stats.get("cancelled", 0) == 0 and stats["no_action"] == 1
    assert Reservation.objects.get(pk=ours.pk).state_reason == "Not needed"
