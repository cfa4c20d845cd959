"""The room says no (SPEC §4 "Confirmation"): a reservation waiting for the room's answer is
``rejected`` with one reason and one email, whichever reader sees the decline first — the
push's check of the organizer's copy (``confirm``), the room mailbox's own pull (real-time
and nightly, calendar_sync/inbound/room_calendar.py) or the organizer mailbox's pull (organizer_calendar.py). A room
going back on a yes it gave is a meeting gone from its calendar: ``cancelled``, row (c).

A delegate answers for Atlas here (its automatic processing is off), so the reservation
waits; "keep declined" leaves the declined copy on the room's calendar (Outlook's "show
declined events"), otherwise Exchange removes it.

The declines rows of test_room_calendar.py's table: its tests are here, to keep that file readable."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection

from calendar_sync.inbound import (
    delta,
)
from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import (
    RoomEvent,
)
from calendar_sync.outbound import confirm
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    ORGANIZER,
    pushed_types,
    room_copies,
    settled,
)
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


REJECTED_REASON = "Atlas declined the meeting: the room is not available at that time."


REJECTED_MAIL = ([ALICE], "Room not available: Planning")


@pytest.fixture
def delegate_answers(emulator, mode):
    """Normal mode (Alice organizes); Atlas' booking attendant leaves answers to its delegate."""
    mode("Normal")
    emulator.set_auto_accept(ATLAS, False)


def awaiting(actor, room, start) -> Reservation:
    """A portal booking pushed to Exchange, still waiting for the room's answer."""
    r = services.reservation_create(actor=actor, room=room, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="pushed")
    confirm.check_answers()
    r.refresh_from_db()
    assert r.state == State.AWAITING_CONFIRMATION and r.event_id, (r.state, r.event_id)
    return r


def mails() -> list[tuple[list[str], str]]:
    return [(m.to, m.subject) for m in mail.outbox]


def seen_by_the_room(r: Reservation) -> bool:
    return RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists()


def nightly_round() -> dict:
    return dict(delta.pull_mailbox(ATLAS, full=True, nightly=True, wait=30).stats)


# --- the room mailbox, real time ---------------------------------------------------------------------


@pytest.mark.parametrize("keep_declined", [True, False], ids=["copy-kept-declined", "copy-removed"])
def test_realtime_the_room_declining_an_awaiting_reservation_rejects_it(keep_declined, subscribed, delegate_answers, emulator, alice, atlas, alice_api):
    r = awaiting(alice, atlas, days_ahead(3, 10))
    wait_for(lambda: seen_by_the_room(r) and settled(ATLAS), message="the room's copy seen")
    mail.outbox.clear()

    emulator.respond_as(ATLAS, r.ical_uid, "decline", keep_declined=keep_declined)

    wait_for(lambda: Reservation.objects.get(pk=r.pk).state != State.AWAITING_CONFIRMATION, message="the room's pull settles it")
    wait_for(lambda: settled(ATLAS), message="notifications answered")
    resp = alice_api.get(f"/api/v1/reservations/{r.pk}/")
    assert resp.status_code == 200
    assert (resp.json()["state"], resp.json()["state_reason"]) == ("rejected", REJECTED_REASON)
    assert mails() == [REJECTED_MAIL]
    assert RoomEvent.objects.get(mailbox=ATLAS, ical_uid=r.ical_uid).outcome == "rejected"
    assert pushed_types(r) == ["create"]  # nothing went back to Exchange
    # The confirmation checks that run later find nothing left to do: no second email.
    confirm.check_answers()
    confirm.check_room_calendars()
    assert mails() == [REJECTED_MAIL] and Reservation.objects.get(pk=r.pk).state == State.REJECTED


# --- the room mailbox, nightly -----------------------------------------------------------------------


@pytest.mark.parametrize("seen_before", [True, False], ids=["seen-before", "first-seen-declined"])
def test_nightly_a_room_decline_missed_in_real_time_rejects_the_awaiting_reservation(seen_before, provider, delegate_answers, emulator, alice, atlas, alice_api):
    r = awaiting(alice, atlas, days_ahead(4, 10))
    if seen_before:
        assert nightly_round()["echo"] == 1
    mail.outbox.clear()
    emulator.respond_as(ATLAS, r.ical_uid, "decline", keep_declined=True)

    stats = nightly_round()

    assert stats["rejected"] == 1 and "cancelled" not in stats, stats
    body = alice_api.get(f"/api/v1/reservations/{r.pk}/").json()
    assert (body["state"], body["state_reason"]) == ("rejected", REJECTED_REASON)
    assert mails() == [REJECTED_MAIL]
    assert nightly_round() == {"no_action": 1}  # the declined copy again: settled, nothing written, no mail
    assert mails() == [REJECTED_MAIL]


def test_nightly_a_declined_copy_exchange_removed_rejects_a_reservation_seen_before(provider, delegate_answers, emulator, emulator_server, alice, atlas):
    r = awaiting(alice, atlas, days_ahead(4, 14))
    nightly_round()
    mail.outbox.clear()
    emulator.respond_as(ATLAS, r.ical_uid, "decline")
    assert room_copies(emulator_server, ATLAS) == []  # Exchange took the declined copy off the room's calendar

    stats = nightly_round()

    assert stats["rejected"] == 1 and "cancelled" not in stats, stats
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.REJECTED, REJECTED_REASON)
    assert mails() == [REJECTED_MAIL]


# --- two readers of one decline ----------------------------------------------------------------------


def _in_thread(fn, barrier: threading.Barrier, errors: list) -> threading.Thread:
    def run():
        try:
            barrier.wait(timeout=10)
            fn()
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.parametrize("order", ["confirm-first", "room-first", "together"])
def test_confirm_and_the_room_pull_both_see_the_decline_one_transition_one_email(order, provider, delegate_answers, emulator, alice, atlas):
    r = awaiting(alice, atlas, days_ahead(5, 10))
    nightly_round()  # the room's copy is known, as after any earlier pull
    mail.outbox.clear()
    emulator.respond_as(ATLAS, r.ical_uid, "decline", keep_declined=True)  # the organizer's copy shows it too

    def room_pull():
        delta.pull_mailbox(ATLAS, wait=30)

    if order == "confirm-first":
        assert confirm.check_answers()["rejected"] == 1
        room_pull()
    elif order == "room-first":
        room_pull()
        assert confirm.check_answers()["checked"] == 0  # nothing awaits any more
    else:
        barrier, errors = threading.Barrier(2), []
        threads = [_in_thread(confirm.check_answers, barrier, errors), _in_thread(room_pull, barrier, errors)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []

    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.REJECTED, REJECTED_REASON)
    assert mails() == [REJECTED_MAIL]
    assert RoomEvent.objects.get(mailbox=ATLAS, ical_uid=r.ical_uid).removed_at is not None


# --- the organizer mailbox ---------------------------------------------------------------------------


def test_strict_mode_the_organizer_mailbox_and_the_room_agree_on_a_decline(settings, live_server, provider, mode, emulator, alice, atlas):
    """The room removes the copy it declines; the organizer's copy shows the decline. Both
    mailboxes are subscribed: whichever pull comes first rejects, the other does nothing."""
    mode("Strict")
    emulator.set_auto_accept(ATLAS, False)
    settings.PUBLIC_BASE_URL = live_server.url
    assert inbound_tasks.subscriptions_ensure(provider=provider)["created"] == 2
    r = awaiting(alice, atlas, days_ahead(3, 15))
    assert r.mailbox == ORGANIZER
    wait_for(lambda: seen_by_the_room(r) and settled(ATLAS, ORGANIZER), message="both copies seen")
    mail.outbox.clear()

    emulator.respond_as(ATLAS, r.ical_uid, "decline")

    wait_for(lambda: Reservation.objects.get(pk=r.pk).state != State.AWAITING_CONFIRMATION, message="settled")
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid, removed_at__isnull=False).exists(), message="room pull")
    wait_for(lambda: settled(ATLAS, ORGANIZER), message="notifications answered")
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.REJECTED, REJECTED_REASON)
    assert mails() == [REJECTED_MAIL]
    assert pushed_types(r) == ["create"]


# --- a room going back on its yes --------------------------------------------------------------------


def test_a_room_declining_a_confirmed_reservation_cancels_it_as_a_meeting_gone_from_its_calendar(subscribed, emulator, mode, alice, atlas, alice_api):
    """Deliberate: ``rejected`` answers a request still open. A room that had accepted and later
    declines (say someone force-booked the slot in Exchange) no longer holds the meeting: SPEC
    §4 row (c), the reservation is cancelled and the requester told why."""
    mode("Normal")
    r = book(actor=alice, room=atlas, start=days_ahead(6, 10), confirmed=True)
    wait_for(lambda: seen_by_the_room(r) and settled(ATLAS), message="the room's copy seen")
    mail.outbox.clear()

    emulator.respond_as(ATLAS, r.ical_uid, "decline", keep_declined=True)

    wait_for(lambda: Reservation.objects.get(pk=r.pk).state != State.CONFIRMED, message="the room's pull settles it")
    wait_for(lambda: settled(ATLAS), message="notifications answered")
    body = alice_api.get(f"/api/v1/reservations/{r.pk}/").json()
    assert body["state"] == "cancelled"
    assert body["state_reason"] == "Atlas declined the meeting in Exchange after accepting it (it is no longer booked on the room's calendar)."
    assert mails() == [([ALICE], "Reservation cancelled: Planning")]
    confirm.check_answers()
    confirm.check_room_calendars()
    assert len(mail.outbox) == 1 and pushed_types(r) == ["create"]
