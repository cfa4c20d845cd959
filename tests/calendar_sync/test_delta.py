"""Pull mechanics (calendar_sync/inbound/delta.py) under delivery as Graph really does it:
duplicated (coalesced into one pull), dropped and out-of-order notifications, an expired
delta token (410 → a full round of the sync window), and the deferred re-check when an
Outlook booking races a portal booking for the same slot."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from calendar_sync.inbound import (
    delta,
)
from calendar_sync.models import (
    WebhookNotification,
)
from calendar_sync.outbound import confirm
from reservations.models import (
    ACTIVE_STATES,
    Reservation,
    State,
)
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    full_syncs,
    outlook_cancel,
    outlook_meeting,
    outlook_reservations,
    outlook_update,
    room_response,
)
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def policy(emulator, **values):
    emulator.set_notification_policy(**values)


# --- delivery as Graph does it: duplicated, dropped, out of order ------------------------------------


def test_duplicated_notifications_make_one_reservation_each(subscribed, emulator, bob, atlas):
    policy(emulator, duplicate=4)
    for hour in (9, 11, 13):
        outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, hour), subject=f"At {hour}")
    wait_for(lambda: len(outlook_reservations()) == 3, message="three reservations")
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ATLAS, change_type="created").count() >= 4, message="duplicates received")
    assert sorted(r.subject for r in outlook_reservations()) == ["At 11", "At 13", "At 9"]
    assert Reservation.objects.count() == 3


def test_a_dropped_notification_is_caught_by_the_next_pull(subscribed, emulator, bob, atlas):
    policy(emulator, drop=1)
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="Dropped")
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 12), subject="Delivered")
    wait_for(lambda: len(outlook_reservations()) == 2, message="both reservations")


def test_out_of_order_notifications_end_in_the_latest_state(subscribed, provider, emulator, bob, atlas):
    policy(emulator, reorder=2)
    start, moved = days_ahead(3, 9), days_ahead(3, 15)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], start, subject="First")
    outlook_update(provider, BOB, meeting["id"], start=moved, end=moved + dt.timedelta(hours=1), subject="Second")
    wait_for(lambda: [(r.start, r.subject) for r in outlook_reservations()] == [(moved, "Second")], message="latest state")


# --- an expired delta token (410): a full round ------------------------------------------------------


def test_an_expired_delta_token_falls_back_to_a_full_resync(subscribed, provider, emulator, bob, atlas):
    meeting = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="Seen")
    [seen] = wait_for(outlook_reservations, message="first reservation")
    before = full_syncs(ATLAS)
    # The deletion's notification is lost and the sync state expires meanwhile.
    policy(emulator, drop=1)
    outlook_cancel(provider, BOB, meeting["id"])
    emulator.expire_delta_tokens(ATLAS)
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 14), subject="After expiry")
    wait_for(lambda: Reservation.objects.get(pk=seen.pk).state == State.CANCELLED, message="the sweep cancels the vanished meeting")
    wait_for(lambda: [r.subject for r in outlook_reservations(state__in=ACTIVE_STATES)] == ["After expiry"], message="new one booked")
    # The round's counter is written after its sweep, a moment after the changes it made.
    wait_for(lambda: full_syncs(ATLAS) > before, message="the full round recorded")
    assert full_syncs(ATLAS) == before + 1


# --- deferred re-check: Outlook and the portal book one slot at the same moment ----------------------


def test_outlook_and_portal_booking_the_same_slot_at_once_exactly_one_wins(subscribed, emulator, emulator_server, alice_api, alice, bob, atlas):
    start = days_ahead(4, 10)
    barrier = threading.Barrier(2)
    results = {}

    def portal():
        barrier.wait()
        resp = alice_api.post("/api/v1/reservations/", {
            "room": atlas.pk, "subject": "Portal", "start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat(),
        }, format="json")
        results["portal"] = resp.status_code

    def outlook():
        barrier.wait()
        results["outlook"] = outlook_meeting(emulator, BOB, [ATLAS], start, subject="Outlook")

    threads = [threading.Thread(target=portal), threading.Thread(target=outlook)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ical = results["outlook"]["iCalUId"]

    def settled():
        confirm.check_answers()
        delta.recheck_deferred(ATLAS)  # what the scheduled re-check does in production
        active = list(Reservation.objects.filter(room=atlas, state__in=ACTIVE_STATES))
        answer = room_response(emulator_server, BOB, ical)
        awaiting = any(r.state == State.AWAITING_CONFIRMATION for r in active)
        return len(active) == 1 and not awaiting and answer in ("accepted", "declined") and active

    [winner] = wait_for(settled, timeout=45, message=lambda: f"one winner {list(Reservation.objects.values('subject', 'state', 'source'))}")
    answer = room_response(emulator_server, BOB, ical)
    if winner.source == "outlook":
        # The Outlook booking won: the portal was told (409 or a rejected reservation + email).
        assert answer == "accepted"
        assert results["portal"] == 409 or Reservation.objects.get(subject="Portal").state == State.REJECTED
    else:
        # The portal won: the room declined the Outlook meeting (its organizer is told by Exchange).
        assert results["portal"] == 201 and winner.state == State.CONFIRMED
        assert answer == "declined"
