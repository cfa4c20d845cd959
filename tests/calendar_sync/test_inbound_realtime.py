"""Inbound sync, real-time path: the emulator notifies the product's webhook (served by
``live_server`` over HTTP), the webhook stores and queues, the pull reconciles — every
row of the SPEC §4 table, through the real delivery path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from calendar_sync.models import MailboxDeltaState, RoomEvent, Subscription, WebhookNotification
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
    outlook_update,
    room_copies,
    room_response,
    subscribed_fixture,
    wait_for,
)
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db(transaction=True)


# --- subscription and webhook -------------------------------------------------------------------


def test_activating_subscribes_each_synced_room_with_a_secret_client_state(subscribed, emulator):
    [sub] = Subscription.objects.filter(status="active")
    assert sub.mailbox == ATLAS and sub.expires_at is not None
    [graph_sub] = emulator.subscriptions()
    assert graph_sub["id"] == sub.graph_id
    assert graph_sub["notificationUrl"].endswith("/sync/webhook/")
    assert graph_sub["lifecycleNotificationUrl"].endswith("/sync/webhook/lifecycle/")
    assert graph_sub["clientState"] and sub.client_state_hash != graph_sub["clientState"]  # only a hash is stored
    assert MailboxDeltaState.objects.get(mailbox=ATLAS).delta_link  # the first full round ran


def test_the_validation_handshake_echoes_the_token_as_plain_text(client):
    resp = client.post("/sync/webhook/?validationToken=Validation%3A+hello+42", data=b"", content_type="text/plain")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    assert resp.content == b"Validation: hello 42"


def test_a_spoofed_notification_gets_202_and_has_no_effect(subscribed, client, caplog):
    sub = Subscription.objects.get(mailbox=ATLAS)
    before = WebhookNotification.objects.count()
    payload = {"value": [{"subscriptionId": sub.graph_id, "clientState": "guess", "changeType": "created",
                          "resource": "Users/x/Events/y", "resourceData": {"id": "y"}}]}
    resp = client.post("/sync/webhook/", data=payload, content_type="application/json")
    assert resp.status_code == 202
    assert WebhookNotification.objects.count() == before
    assert "refused" in caplog.text


# --- (a) meeting created by inviting the room ----------------------------------------------------


def test_row_a_an_outlook_booking_becomes_a_reservation(subscribed, emulator, alice, bob, atlas):
    start = days_ahead(3, 14)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start, subject="Design review", people=(ALICE,))
    [r] = wait_for(outlook_reservations, message="reservation from Outlook")
    assert (r.source, r.origin, r.state, r.requested_for, r.kind) == ("outlook", "exchange", State.CONFIRMED, bob, "standard")
    assert (r.start, r.end, r.subject, r.room) == (start, start + dt.timedelta(hours=1), "Design review", atlas)
    assert r.ical_uid == meeting["iCalUId"] and r.mailbox == ATLAS and r.event_id and r.change_key
    assert [(a.email, a.response) for a in r.attendees.all()] == [(ALICE, "unknown")]
    assert not SyncEvent.objects.filter(reservation=r).exists()  # nothing goes back to Exchange
    assert WebhookNotification.objects.filter(mailbox=ATLAS).exclude(state="processed").count() == 0


def test_row_a_a_slot_taken_in_the_product_makes_the_room_decline(subscribed, emulator, emulator_server, alice, bob, atlas):
    start = days_ahead(3, 9)
    # Booked in the product only (e.g. a non-synced moment): Exchange thinks the room is free.
    ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=2), requested_for=alice)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start + dt.timedelta(minutes=30))
    wait_for(lambda: room_response(emulator_server, BOB, meeting["iCalUId"]) == "declined", message="the room declines")
    assert outlook_reservations() == []
    assert room_copies(emulator_server, ATLAS) == []
    row = RoomEvent.objects.get(ical_uid=meeting["iCalUId"])
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
    note = RoomEvent.objects.get(ical_uid=meeting["iCalUId"]).note
    assert {"not_reservable": "not reservable", "outside_window": "booking window", "too_long": "too long"}[case] in note


# --- (b) the product's meeting updated in Exchange ------------------------------------------------


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


# --- (d) and (e): the product's own changes ------------------------------------------------------------


def test_row_d_the_products_own_create_and_update_echo_back_without_effect(subscribed, emulator, alice, atlas):
    r = book(actor=alice, room=atlas, start=days_ahead(6, 10), subject="Ours", confirmed=True)
    services.reservation_update(actor=alice, reservation=r, subject="Ours, renamed")
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="update pushed")
    wait_for(lambda: RoomEvent.objects.filter(ical_uid=r.ical_uid, subject="Ours, renamed", outcome="echo").exists(), message="echo seen")
    r.refresh_from_db()
    assert r.subject == "Ours, renamed" and r.state == State.CONFIRMED
    assert outlook_reservations() == []  # never a duplicate
    assert list(SyncEvent.objects.filter(reservation=r).order_by("id").values_list("type", flat=True)) == ["create", "update"]


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
