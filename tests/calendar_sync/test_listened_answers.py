"""The answer check leaves a listened mailbox's answers to its pull (issue 17, outbound at the
limit; calendar_sync/outbound/confirm.py ``_first_read_delays``, calendar_sync/common/listening.py).

In Strict mode every meeting lives in the organizer account's mailbox, which the product is
subscribed to: its pull applies the room's answer, up to 200 changes a request, where the
answer check read each meeting once. A meeting whose room's mailbox or organizer mailbox is
listened to is first read a listened delay (60 s) after its push, not the confirm delay (2 s):

- one the pull confirmed meanwhile is never read;
- one still waiting then (its notification lost) is read, and followed up as before;
- a subscription that is expired, failed, polled, not heard from lately or whose notifications
  wait unpulled counts for nothing: the meeting is read at the confirm delay;
- a round asks for the listened mailboxes once, whatever the number of reservations.

Graph is the emulator, notifying the webhook served by ``live_server`` (``listening``); the
answer reads are counted from its request log, the time moved on by the tests' clock."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendar_sync.inbound import subscriptions
from calendar_sync.models import MailboxDeltaState, Subscription, WebhookNotification
from calendar_sync.outbound import confirm
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import ATLAS, ORGANIZER, settled
from tests.calendar_sync.test_answer_reads import Clock, answer_reads, spaced_check
from tests.factories import days_ahead
from tests.waiting import wait_for

LISTENED_DELAY = 60


@pytest.fixture
def clock(monkeypatch):
    """``time`` for confirm.py (and the listened mailboxes' "now"), moved on by the test."""
    found = Clock()
    monkeypatch.setattr(confirm, "time", found)
    return found


def state(r: Reservation) -> str:
    return Reservation.objects.get(pk=r.pk).state


def booked_and_pulled(alice, room, hour: int) -> Reservation:
    """A Strict booking pushed (eager, after commit), its notifications answered by the pulls."""
    r = book(actor=alice, room=room, start=days_ahead(4, hour))
    assert (r.state, r.mailbox) == (State.AWAITING_CONFIRMATION, ORGANIZER)
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="the pulls after the push")
    return r


@pytest.mark.django_db(transaction=True)
def test_a_listened_meeting_is_not_read_at_the_confirm_delay_but_after_the_listened_delay(listening, emulator, alice, atlas, clock):
    """The room's answer was lost on the way (the room doesn't answer here): nothing is read at
    the confirm delay; a listened delay after the push the meeting, still waiting, is read — and
    followed up a confirm delay later, as any meeting."""
    emulator.set_auto_accept(ATLAS, False)
    r = booked_and_pulled(alice, atlas, 9)
    emulator.clear_request_log()

    clock.advance(2)
    counts = spaced_check()
    assert counts["checked"] == 0 and answer_reads(emulator) == Counter()
    assert LISTENED_DELAY - 5 < counts["next_read_in"] <= LISTENED_DELAY  # the next check: when it is due
    clock.advance(LISTENED_DELAY - 2)
    counts = spaced_check()
    assert (counts["checked"], counts["unanswered"]) == (1, 1)
    assert 0 < counts["next_read_in"] <= 2  # its follow-ups keep their spacing
    clock.advance(2)
    assert spaced_check()["checked"] == 1
    assert list(answer_reads(emulator).values()) == [2]
    assert state(r) == State.AWAITING_CONFIRMATION


@pytest.mark.django_db(transaction=True)
def test_a_meeting_the_organizer_mailbox_pull_confirmed_is_never_read(listening, emulator, alice, atlas, clock):
    """Only the organizer mailbox is listened to (Atlas' subscription gone): the room accepts after
    the confirm delay has passed, the organizer mailbox's pull confirms the reservation, and the
    answer check never reads the meeting — 0 answer GETs."""
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status=Subscription.Status.ACTIVE))
    emulator.set_auto_accept(ATLAS, False)  # the room answers when the test says
    r = booked_and_pulled(alice, atlas, 10)
    emulator.clear_request_log()
    clock.advance(2)
    assert spaced_check()["checked"] == 0  # the confirm delay is over: not read, it waits for the pull
    pulls = MailboxDeltaState.objects.get(mailbox=ORGANIZER).pulls
    emulator.respond_as(ATLAS, r.ical_uid, "accept")
    wait_for(lambda: state(r) == State.CONFIRMED, message="the organizer mailbox's pull applies the room's answer")
    assert MailboxDeltaState.objects.get(mailbox=ORGANIZER).pulls > pulls
    clock.advance(LISTENED_DELAY)
    counts = spaced_check()
    assert (counts["checked"], counts["next_read_in"]) == (0, None)
    assert answer_reads(emulator) == Counter()


def _expired(sub):
    Subscription.objects.filter(pk=sub.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))


def _failed(sub):
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.FAILED, last_error="Renewal failed: 503")


def _polled(sub):
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.POLLING, graph_id="")


def _not_heard_from(sub):
    long_ago = timezone.now() - dt.timedelta(minutes=30)
    Subscription.objects.filter(pk=sub.pk).update(last_notification_at=long_ago)
    Subscription.objects.filter(pk=sub.pk).update(created_at=long_ago)


def _notifications_unpulled(sub):
    WebhookNotification.objects.create(subscription=sub, subscription_graph_id=sub.graph_id, mailbox=sub.mailbox, change_type="updated",
                                       state=WebhookNotification.State.RECEIVED)
    WebhookNotification.objects.filter(mailbox=sub.mailbox).update(received_at=timezone.now() - dt.timedelta(minutes=5))


@pytest.mark.parametrize("unhealthy", [_expired, _failed, _polled, _not_heard_from, _notifications_unpulled])
@pytest.mark.django_db(transaction=True)
def test_a_subscription_that_is_not_live_leaves_the_meeting_to_the_confirm_delay(unhealthy, listening, emulator, alice, atlas, clock):
    """Neither Atlas' nor the organizer mailbox's subscription is live — expired, failed, polled,
    unheard from for longer than 10 minutes, or with a notification left unpulled for longer than
    the listened delay: the meeting is read at the confirm delay, as without listening."""
    emulator.set_auto_accept(ATLAS, False)  # the room doesn't answer: only a read tells
    r = booked_and_pulled(alice, atlas, 11)
    for sub in Subscription.objects.filter(mailbox__in=[ATLAS, ORGANIZER], status=Subscription.Status.ACTIVE):
        unhealthy(sub)
    emulator.clear_request_log()
    clock.advance(2)
    counts = spaced_check()
    assert (counts["checked"], counts["unanswered"]) == (1, 1)
    assert list(answer_reads(emulator).values()) == [1]
    assert state(r) == State.AWAITING_CONFIRMATION


@pytest.mark.django_db
@pytest.mark.parametrize("listened", [True, False])
def test_a_rounds_queries_do_not_grow_with_the_reservations(listened, provider, mode, atlas, alice):
    """A round over 3 or 30 fresh meetings of a listened mailbox (none due: each waits for its
    pull) asks the same queries: the listened mailboxes once, the reservations' mailboxes once.
    Unlistened, nothing more than before is asked (the round reads them; no Graph here: none due yet)."""
    mode("Strict")
    now = timezone.now()
    if listened:
        Subscription.objects.create(provider=provider, mailbox=ORGANIZER, kind=Subscription.Kind.ORGANIZER, graph_id="sub-organizer",
                                    resource=f"users/{ORGANIZER}/events", client_state_hash="x", expires_at=now + dt.timedelta(days=2),
                                    last_notification_at=now)
    start = now.replace(microsecond=0) + dt.timedelta(days=3)
    counted = []
    for n in (3, 30):
        Reservation.objects.all().delete()
        made = Reservation.objects.bulk_create(
            Reservation(room=atlas, requested_for=alice, requested_by=alice, subject=f"Fresh {i}", state=State.AWAITING_CONFIRMATION,
                        start=start + dt.timedelta(hours=i), end=start + dt.timedelta(hours=i, minutes=30), event_id=f"fresh-{n}-{i}",
                        mailbox=ORGANIZER)
            for i in range(n))
        SyncEvent.objects.bulk_create(SyncEvent(reservation=r, type=SyncEvent.Type.CREATE, state=SyncEvent.State.PROCESSED,
                                                processed_at=now - dt.timedelta(seconds=0.2)) for r in made)
        confirm.check_answers(max_age_seconds=300, spaced=True)  # warm: the default provider's id in the cache
        with CaptureQueriesContext(connection) as queries:
            counts = confirm.check_answers(max_age_seconds=300, spaced=True)
        assert counts["checked"] == 0
        assert counts["next_read_in"] > (LISTENED_DELAY - 5 if listened else 0)
        counted.append(len(queries.captured_queries))
        assert sum(Subscription._meta.db_table in q["sql"] for q in queries.captured_queries) == 1
    assert counted[0] == counted[1], counted
