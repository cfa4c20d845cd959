"""Approvals by the room's delegate in Exchange (SPEC §2 external approval state, §7 "Approvals").

Atlas' bookings are approved by a delegate (Bob): Exchange's booking attendant answers the
product's meeting *tentative* and forwards the request to him (Set-CalendarProcessing
-AllBookInPolicy $false -ResourceDelegates, modelled by the emulator's ``booking_delegates``).
The reservation then waits with approval state ``awaiting_approval`` — shown in the API, the
portal and admin — until Bob accepts or declines the room's copy with Graph
(``POST /users/{room}/events/{id}/accept | decline``, a real MSAL token of his), which the
product reads from the room's notification or the nightly round. A pending approval has its own
time limit (``approval_time_limit``); when it runs out — or the room never answers within
``exchange_callback_time_limit`` — the reservation is rejected and the room withdrawn from the
meeting in Exchange."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from calendar_sync.common.answers import DELEGATE_DECLINED
from calendar_sync.inbound import delta
from calendar_sync.outbound import confirm
from exchange_auth import properties
from exchange_auth.http import new_session
from graph_emulator.seed import DEMO_PASSWORD
from reservations import services
from reservations.models import ApprovalState, Reservation, State, SyncEvent
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    room_copies,
    room_response,
    settled,
)
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delegated(emulator, mode):
    """Normal mode (Alice organizes her meetings); Bob approves Atlas' bookings in Exchange."""
    mode("Normal")
    emulator.set_booking_delegates(ATLAS, [BOB])


def delegate_answers(provider, ical_uid: str, action: str, comment: str = "") -> None:
    """Bob signs in (resource-owner password grant at the tenant's token endpoint: delegated
    Calendars.ReadWrite.Shared), finds the room's copy of the meeting and answers it for the room.
    (MSAL's password flow first asks ``/common/userrealm`` on the authority's default port,
    which the emulator on its own port doesn't serve: the grant is posted as MSAL would post it.)
    https://learn.microsoft.com/graph/api/event-accept, https://learn.microsoft.com/graph/api/event-decline"""
    token = new_session().post(f"{provider.authority}/oauth2/v2.0/token", data={
        "grant_type": "password", "client_id": provider.client_id, "client_secret": provider.client_secret,
        "username": BOB, "password": DEMO_PASSWORD, "scope": "https://graph.microsoft.com/Calendars.ReadWrite.Shared",
    }).json()
    assert "access_token" in token, token
    http = new_session()
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = provider.graph_base_url.rstrip("/")
    found = http.get(f"{base}/users/{ATLAS}/events", params={"$filter": f"iCalUId eq '{ical_uid}'", "$select": "id,responseStatus"})
    assert found.status_code == 200, found.text
    [copy] = found.json()["value"]
    assert copy["responseStatus"]["response"] == "tentativelyAccepted"
    answered = http.post(f"{base}/users/{ATLAS}/events/{copy['id']}/{action}", json={"comment": comment, "sendResponse": True})
    assert answered.status_code == 202, answered.text


def pushed(r: Reservation) -> None:
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="pushed")


def book_awaiting_approval(actor, room, start) -> Reservation:
    """A portal booking pushed to Exchange, its room's answer read: tentative."""
    r = services.reservation_create(actor=actor, room=room, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    pushed(r)
    confirm.check_answers()
    r.refresh_from_db()
    assert (r.state, r.approval_state) == (State.AWAITING_CONFIRMATION, ApprovalState.AWAITING_APPROVAL), (r.state, r.approval_state)
    assert r.approval_requested_at is not None and r.event_id
    return r


def nightly_round() -> dict:
    return dict(delta.pull_mailbox(ATLAS, full=True, nightly=True, wait=30).stats)


def state_of(pk: int) -> tuple[str, str]:
    r = Reservation.objects.get(pk=pk)
    return r.state, r.approval_state


# --- tentative: awaiting approval, shown everywhere ----------------------------------------------------


def test_a_tentative_room_answer_is_awaiting_approval_in_api_portal_and_admin(provider, delegated, emulator_server, alice, atlas, alice_api, client, admin):
    r = book_awaiting_approval(alice, atlas, days_ahead(3, 10))
    assert room_response(emulator_server, ALICE, r.ical_uid) == "tentativelyAccepted"
    [copy] = [c for c in room_copies(emulator_server, ATLAS) if c.ical_uid == r.ical_uid]
    assert (copy.response["response"], copy.show_as) == ("tentativelyAccepted", "tentative")  # the slot is held in Exchange too

    body = alice_api.get(f"/api/v1/reservations/{r.pk}/").json()
    assert (body["state"], body["approval_state"]) == ("awaiting_confirmation", "awaiting_approval")

    client.force_login(alice)
    page = client.get("/my/")
    assert page.status_code == 200 and "Awaiting approval" in page.content.decode()

    client.force_login(admin)
    listed = client.get("/admin/reservations/reservation/", {"approval_state__exact": "awaiting_approval"})
    assert listed.status_code == 200 and "Planning" in listed.content.decode()
    assert "Awaiting approval" in listed.content.decode()
    # The callback time limit no longer applies: the delegate has the request.
    Reservation.objects.filter(pk=r.pk).update(created_at=r.created_at - dt.timedelta(hours=6))
    assert confirm.clean_up_unanswered() == 0
    assert state_of(r.pk) == ("awaiting_confirmation", "awaiting_approval")


# --- the delegate answers ------------------------------------------------------------------------------


@pytest.fixture
def inbound_worker(subscribed, worker_env, celery_not_eager, tmp_path):
    """The room's notifications reach the webhook; pushes and pulls run in a real Celery worker."""
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


@pytest.mark.worker
def test_the_delegate_accepting_confirms_through_the_rooms_notification(inbound_worker, delegated, provider, emulator_server, alice, atlas, alice_api):
    start = days_ahead(3, 11)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    wait_for(lambda: state_of(r.pk) == ("awaiting_confirmation", "awaiting_approval"),
             message=lambda: f"awaiting approval: {state_of(r.pk)} {inbound_worker.log_path.read_text()[-2000:]}")
    r.refresh_from_db()
    mail.outbox.clear()

    delegate_answers(provider, r.ical_uid, "accept")

    wait_for(lambda: state_of(r.pk) == ("confirmed", "accepted"), message=lambda: f"confirmed: {state_of(r.pk)}")
    body = alice_api.get(f"/api/v1/reservations/{r.pk}/").json()
    assert (body["state"], body["approval_state"]) == ("confirmed", "accepted")
    assert room_response(emulator_server, ALICE, r.ical_uid) == "accepted"
    assert list(SyncEvent.objects.filter(reservation=r).values_list("type", flat=True)) == ["create"]  # nothing written back


def test_the_delegate_accepting_is_read_by_the_nightly_round(provider, delegated, alice, atlas):
    r = book_awaiting_approval(alice, atlas, days_ahead(4, 10))
    assert nightly_round().get("echo") == 1  # the tentative copy: still awaiting
    assert state_of(r.pk) == ("awaiting_confirmation", "awaiting_approval")

    delegate_answers(provider, r.ical_uid, "accept")
    nightly_round()

    assert state_of(r.pk) == ("confirmed", "accepted")


def test_the_delegate_declining_rejects_with_a_plain_sentence(subscribed, delegated, provider, emulator_server, alice, atlas, alice_api):
    r = book_awaiting_approval(alice, atlas, days_ahead(3, 14))
    wait_for(lambda: settled(ATLAS), message="the room's copy seen")
    mail.outbox.clear()

    delegate_answers(provider, r.ical_uid, "decline", comment="Reserved for the board")

    wait_for(lambda: state_of(r.pk)[0] != "awaiting_confirmation", message="the room's pull settles it")
    body = alice_api.get(f"/api/v1/reservations/{r.pk}/").json()
    assert (body["state"], body["approval_state"]) == ("rejected", "declined")
    assert body["state_reason"] == DELEGATE_DECLINED.format(room="Atlas") == "Atlas's booking delegate declined the request in Exchange."
    assert [(m.to, m.subject) for m in mail.outbox] == [([ALICE], "Room not available: Planning")]
    assert room_response(emulator_server, ALICE, r.ical_uid) == "declined"


# --- time limits: rejected, and the room withdrawn from the meeting ------------------------------------------


def room_is_on_the_meeting(emulator_server, ical_uid: str) -> tuple[bool, bool]:
    """(the organizer's copy lists Atlas, Atlas' calendar holds the meeting)."""
    listed = room_response(emulator_server, ALICE, ical_uid) != "gone"
    held = any(c.ical_uid == ical_uid for c in room_copies(emulator_server, ATLAS))
    return listed, held


def organizer_copy(emulator_server, ical_uid: str):
    def read():
        user = emulator_server.store.find_user(ALICE)
        return emulator_server.store.find_by_ical(user.id, ical_uid)

    return emulator_server.call(read)


def test_an_approval_not_given_in_time_rejects_and_withdraws_the_room(provider, delegated, emulator_server, alice, atlas):
    properties.set_value(properties.APPROVAL_TIME_LIMIT, 3600)
    r = book_awaiting_approval(alice, atlas, days_ahead(5, 10))
    assert room_is_on_the_meeting(emulator_server, r.ical_uid) == (True, True)
    assert confirm.clean_up_unapproved() == 0  # not yet
    Reservation.objects.filter(pk=r.pk).update(approval_requested_at=r.approval_requested_at - dt.timedelta(hours=2))
    mail.outbox.clear()

    assert confirm.clean_up_unapproved() == 1

    r.refresh_from_db()
    assert (r.state, r.approval_state) == (State.REJECTED, ApprovalState.DECLINED)
    assert r.state_reason == "Atlas's booking was not approved within 1 hour."
    assert [m.subject for m in mail.outbox] == ["Room not available: Planning"]
    wait_for(lambda: room_is_on_the_meeting(emulator_server, r.ical_uid) == (False, False), message="the room withdrawn")
    meeting = organizer_copy(emulator_server, r.ical_uid)
    assert meeting is not None and not meeting.is_cancelled  # Alice's meeting stays, without the room
    assert all(loc.get("locationEmailAddress", "").lower() != ATLAS for loc in meeting.locations)
    assert confirm.clean_up_unapproved() == 0  # once


def test_no_answer_within_the_callback_limit_rejects_and_withdraws_the_room(provider, mode, emulator, emulator_server, alice, atlas):
    mode("Normal")
    emulator.set_auto_accept(ATLAS, False)  # the room never answers
    start = days_ahead(5, 14)
    r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    pushed(r)
    r.refresh_from_db()
    assert r.state == State.AWAITING_CONFIRMATION and r.approval_state == ApprovalState.NOT_REQUIRED
    wait_for(lambda: room_is_on_the_meeting(emulator_server, r.ical_uid) == (True, True), message="the room invited")
    Reservation.objects.filter(pk=r.pk).update(created_at=r.created_at - dt.timedelta(hours=6))

    assert confirm.clean_up_unanswered() == 1

    r.refresh_from_db()
    assert r.state == State.REJECTED and r.state_reason == "Atlas did not answer within 5 hours."
    wait_for(lambda: room_is_on_the_meeting(emulator_server, r.ical_uid) == (False, False), message="the room withdrawn")
    assert organizer_copy(emulator_server, r.ical_uid) is not None


def test_a_room_that_declined_is_not_patched_off_the_meeting(provider, mode, emulator, emulator_server, alice, atlas, bob):
    """A decline is Exchange's own record of the room's answer: the product changes nothing."""
    mode("Normal")
    blocker = days_ahead(6, 10)
    emulator.create_event_as(BOB, {
        "subject": "Taken", "start": {"dateTime": blocker.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (blocker + dt.timedelta(hours=1)).astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
    })
    r = services.reservation_create(actor=alice, room=atlas, start=blocker, end=blocker + dt.timedelta(hours=1), subject="Planning")
    pushed(r)
    confirm.check_answers()
    r.refresh_from_db()
    assert r.state == State.REJECTED
    assert room_response(emulator_server, ALICE, r.ical_uid) == "declined"
