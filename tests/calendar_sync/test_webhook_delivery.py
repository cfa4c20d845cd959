"""Delivery as Graph really does it: duplicated, dropped and out-of-order notifications,
expired delta tokens, lifecycle notifications, a failing renewal, and an Outlook
booking racing a portal booking for the same slot."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail

from calendar_sync.inbound import delta
from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import MailboxDeltaState, Subscription, WebhookNotification
from calendar_sync.outbound import confirm
from exchange_auth.graph import GraphError
from reservations.models import ACTIVE_STATES, Reservation, State
from tests.calendar_sync.inbound_helpers import (  # noqa: F401 - fixtures
    ATLAS,
    BOB,
    outlook_cancel,
    outlook_meeting,
    outlook_reservations,
    outlook_update,
    room_response,
    subscribed_fixture,
    wait_for,
)
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db(transaction=True)


def policy(emulator, **values):
    emulator.set_notification_policy(**values)


def full_syncs() -> int:
    return MailboxDeltaState.objects.get(mailbox=ATLAS).full_syncs


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


def test_an_expired_delta_token_falls_back_to_a_full_resync(subscribed, provider, emulator, bob, atlas):
    meeting = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="Seen")
    [seen] = wait_for(outlook_reservations, message="first reservation")
    before = full_syncs()
    # The deletion's notification is lost and the sync state expires meanwhile.
    policy(emulator, drop=1)
    outlook_cancel(provider, BOB, meeting["id"])
    emulator.expire_delta_tokens(ATLAS)
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 14), subject="After expiry")
    wait_for(lambda: Reservation.objects.get(pk=seen.pk).state == State.CANCELLED, message="the sweep cancels the vanished meeting")
    wait_for(lambda: [r.subject for r in outlook_reservations(state__in=ACTIVE_STATES)] == ["After expiry"], message="new one booked")
    # The round's counter is written after its sweep, a moment after the changes it made.
    wait_for(lambda: full_syncs() > before, message="the full round recorded")
    assert full_syncs() == before + 1


# --- lifecycle notifications ---------------------------------------------------------------------------


def lifecycle(emulator, sub: Subscription, event: str):
    emulator.trigger_lifecycle(sub.graph_id, event)


def test_missed_triggers_a_full_resync(subscribed, emulator, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    before = full_syncs()
    lifecycle(emulator, sub, "missed")
    wait_for(lambda: full_syncs() == before + 1, message="resync")
    # The notification is marked handled once the resync returned.
    wait_for(lambda: WebhookNotification.objects.get(lifecycle_event="missed").note == "resynced", message="noted")


def test_reauthorization_required_reauthorizes_and_renews(subscribed, emulator, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    lifecycle(emulator, sub, "reauthorizationRequired")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).renewed_at > sub.renewed_at, message="renewed")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).last_lifecycle_event == "reauthorizationRequired", message="noted")
    [graph_sub] = emulator.subscriptions()
    assert not graph_sub.get("_reauthorization_required")


def test_subscription_removed_recreates_and_resyncs(subscribed, emulator, bob, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    before = full_syncs()
    lifecycle(emulator, sub, "subscriptionRemoved")
    wait_for(lambda: Subscription.objects.filter(mailbox=ATLAS, status="active").exclude(pk=sub.pk).exists(), message="recreated")
    wait_for(lambda: full_syncs() == before + 1, message="resync")
    # The new subscription works.
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    wait_for(outlook_reservations, message="reservation through the new subscription")


def test_a_failed_renewal_is_shown_and_alerts_the_admins(subscribed, emulator, admin, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    mail.outbox.clear()
    emulator.inject_fault(method="PATCH", path="/subscriptions/", count=5, status=500)
    with pytest.raises(GraphError):
        inbound_tasks.subscription_renew(subscription=sub)
    sub.refresh_from_db()
    assert sub.status == "failed" and "Renewal failed" in sub.last_error
    assert any(admin.email in m.to for m in mail.outbox)
    emulator.clear_faults()
    counts = inbound_tasks.subscriptions_ensure(provider=sub.provider)  # the beat job heals it
    assert counts["created"] == 1


# --- the race: Outlook and the portal book one slot at the same moment ---------------------------------


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
