"""Approval inside the product (SPEC §2 approval state, §7 "Approvals"): a room flagged "needs
approval" has approvers (a Django group per room). Its bookings wait ``awaiting_approval`` —
holding the room, nothing written to Exchange — until an approver approves (the meeting is then
written as any booking's, and the room accepts it) or declines (rejected, no meeting ever).

API: ``POST /api/v1/reservations/{id}/approve/`` and ``/decline/``, ``GET /api/v1/approvals/``;
the portal's Approvals page; the admin's list filter and actions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calendar_sync.outbound import confirm
from exchange_auth import properties
from reservations.models import ApprovalState, Reservation, State, SyncEvent
from tests.factories import RoomFactory, UserFactory, days_ahead
from tests.waiting import wait_for

URL = "/api/v1/reservations/"
ALICE = "alice@contoso.example"


@pytest.fixture
def approvers(db):
    return Group.objects.create(name="Approvers of Kiln")


@pytest.fixture
def carol(approvers):
    """Carol approves Kiln's bookings."""
    user = UserFactory(username="carol", first_name="Carol")
    user.groups.add(approvers)
    return user


@pytest.fixture
def carol_api(api_as, carol):
    return api_as(carol)


@pytest.fixture
def kiln(hq, approvers):
    """A room without Exchange whose bookings need approval."""
    return RoomFactory(building=hq, name="Kiln", capacity=6, needs_approval=True, approvers=approvers)


def payload(room, start=None, **more) -> dict:
    start = start or days_ahead(2, 10)
    return {"room": room.pk, "subject": "Kiln firing", "start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat(), **more}


def booked(api, room, **more) -> dict:
    response = api.post(URL, payload(room, **more), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_booking_waits_for_approval_and_holds_the_room(alice_api, bob_api, kiln):
    body = booked(alice_api, kiln)
    assert (body["state"], body["approval_state"]) == ("awaiting_confirmation", "awaiting_approval")
    assert body["sync"]["state"] == "not_synced"
    # A pending approval holds the room: nobody else books the slot meanwhile.
    clash = bob_api.post(URL, payload(kiln), format="json")
    assert clash.status_code == 409 and clash.json()["message"]


def test_an_approver_lists_and_approves_and_the_requester_is_told(alice_api, carol_api, kiln, alice):
    body = booked(alice_api, kiln)
    listed = carol_api.get("/api/v1/approvals/").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    assert alice_api.get("/api/v1/approvals/").json()["results"] == []  # Alice approves nothing
    mail.outbox.clear()

    approved = carol_api.post(f"{URL}{body['id']}/approve/")

    assert approved.status_code == 200, approved.content
    assert (approved.json()["state"], approved.json()["approval_state"]) == ("confirmed", "accepted")
    assert Reservation.objects.get(pk=body["id"]).approval_decided_by.username == "carol"
    assert [(m.to, m.subject) for m in mail.outbox] == [([ALICE], "Reservation approved: Kiln firing")]
    again = carol_api.post(f"{URL}{body['id']}/approve/")
    assert again.status_code == 409 and set(again.json()) >= {"message", "extra"}


def test_an_approver_declines_with_a_reason_and_the_room_is_free_again(alice_api, bob_api, carol_api, kiln):
    body = booked(alice_api, kiln)
    mail.outbox.clear()

    declined = carol_api.post(f"{URL}{body['id']}/decline/", {"reason": "The kiln is being serviced."}, format="json")

    assert declined.status_code == 200, declined.content
    out = declined.json()
    assert (out["state"], out["approval_state"]) == ("rejected", "declined")
    assert out["state_reason"] == "Kiln's approver declined the request. The kiln is being serviced."
    assert [m.subject for m in mail.outbox] == ["Reservation declined: Kiln firing"]
    assert "The kiln is being serviced." in mail.outbox[0].body
    assert bob_api.post(URL, payload(kiln), format="json").status_code == 201


def test_who_may_decide_and_bad_input(alice_api, bob_api, carol_api, admin_api, kiln, dojo):
    body = booked(alice_api, kiln)
    # The requester is no approver: 403, nothing changed. Someone unrelated doesn't see it: 404.
    own = alice_api.post(f"{URL}{body['id']}/approve/")
    assert own.status_code == 403 and set(own.json()) >= {"message", "extra"}
    assert bob_api.post(f"{URL}{body['id']}/decline/").status_code == 404
    too_long = carol_api.post(f"{URL}{body['id']}/decline/", {"reason": "x" * 401}, format="json")
    assert too_long.status_code == 400 and "reason" in too_long.json()["extra"]
    assert carol_api.post(f"{URL}{body['id']}/decline/", {"reason": ["a"]}, format="json").status_code == 400
    assert Reservation.objects.get(pk=body["id"]).approval_state == ApprovalState.AWAITING_APPROVAL
    # A room that needs no approval has nothing to approve.
    other = booked(alice_api, dojo)
    assert other["approval_state"] == "not_required"
    assert admin_api.post(f"{URL}{other['id']}/approve/").status_code == 409
    assert carol_api.post(f"{URL}999999/approve/").status_code == 404
    # An admin approves any room's bookings.
    assert admin_api.post(f"{URL}{body['id']}/approve/").json()["approval_state"] == "accepted"


def test_a_series_is_approved_as_a_whole(alice_api, carol_api, kiln):
    body = booked(alice_api, kiln, recurrence={"frequency": "daily", "count": 3})
    rows = Reservation.objects.filter(series_id=body["series"]["id"])
    assert rows.count() == 3 and {r.approval_state for r in rows} == {"awaiting_approval"}

    assert carol_api.post(f"{URL}{body['id']}/approve/").status_code == 200

    assert {(r.state, r.approval_state) for r in rows.all()} == {("confirmed", "accepted")}


def test_an_approval_not_given_in_time_is_rejected(alice_api, kiln):
    properties.set_value(properties.APPROVAL_TIME_LIMIT, 86400)
    body = booked(alice_api, kiln)
    r = Reservation.objects.get(pk=body["id"])
    Reservation.objects.filter(pk=r.pk).update(approval_requested_at=r.approval_requested_at - dt.timedelta(days=2))
    mail.outbox.clear()

    assert confirm.clean_up_unapproved() == 1

    r.refresh_from_db()
    assert (r.state, r.approval_state, r.state_reason) == (State.REJECTED, ApprovalState.DECLINED, "Kiln's booking was not approved within 1 day.")
    assert [m.subject for m in mail.outbox] == ["Room not available: Kiln firing"]


# --- the portal's Approvals page ---------------------------------------------------------------------------


def test_the_approvals_page_lists_pending_requests_without_a_query_per_row(client, alice, carol, kiln, hq, approvers):
    from reservations import services

    services.reservation_create(actor=alice, room=kiln, start=days_ahead(2, 9), end=days_ahead(2, 10), subject="First")
    client.force_login(carol)
    with CaptureQueriesContext(connection) as few:
        page = client.get("/approvals/").content.decode()
    assert "First" in page and 'href="/approvals/"' in page  # the nav link, for approvers
    other = RoomFactory(building=hq, name="Forge", capacity=4, needs_approval=True, approvers=approvers)
    for day in range(3, 9):
        services.reservation_create(actor=alice, room=other if day % 2 else kiln, start=days_ahead(day, 9), end=days_ahead(day, 10), subject=f"Day {day}")
    with CaptureQueriesContext(connection) as many:
        page = client.get("/approvals/").content.decode()
    assert page.count('id="approve-') == 7
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]

    client.force_login(alice)
    assert 'href="/approvals/"' not in client.get("/my/").content.decode()
    assert "Nothing is waiting for your approval." in client.get("/approvals/").content.decode()


def test_the_portal_declines_with_a_reason(client, alice, carol, kiln):
    from reservations import services

    r = services.reservation_create(actor=alice, room=kiln, start=days_ahead(2, 9), end=days_ahead(2, 10), subject="Glaze")
    client.force_login(carol)
    response = client.post(f"/approvals/{r.pk}/", {f"r{r.pk}-decision": "decline", f"r{r.pk}-reason": "Fully booked by the course."}, follow=True)
    assert response.status_code == 200 and "Declined “Glaze”" in response.content.decode()
    r.refresh_from_db()
    assert (r.state, r.approval_state) == ("rejected", "declined") and r.state_reason.endswith("Fully booked by the course.")
    # A bad decision value is a message, not an error page; nothing changes.
    r2 = services.reservation_create(actor=alice, room=kiln, start=days_ahead(3, 9), end=days_ahead(3, 10), subject="Bisque")
    bad = client.post(f"/approvals/{r2.pk}/", {f"r{r2.pk}-decision": "maybe"}, follow=True)
    assert bad.status_code == 200 and "Choose approve or decline" in bad.content.decode()
    assert Reservation.objects.get(pk=r2.pk).approval_state == "awaiting_approval"
    client.force_login(alice)
    assert client.get(f"/reservations/{r2.pk}/").content.decode().count("Awaiting approval") >= 1


# --- admin ---------------------------------------------------------------------------------------------


def test_admin_filters_and_approves_and_edits_a_rooms_approvers(client, admin, alice, kiln, hq, carol):
    from reservations import services

    r = services.reservation_create(actor=alice, room=kiln, start=days_ahead(2, 9), end=days_ahead(2, 10), subject="Raku")
    client.force_login(admin)
    listed = client.get("/admin/reservations/reservation/", {"approval_state__exact": "awaiting_approval"}).content.decode()
    assert "Raku" in listed and "Awaiting approval" in listed
    done = client.post("/admin/reservations/reservation/", {"action": "approve_selected", "_selected_action": [r.pk]}, follow=True)
    assert done.status_code == 200
    assert Reservation.objects.get(pk=r.pk).approval_state == "accepted"

    # The room's approvers are edited on the room; a room needing approval without any is refused.
    page = client.get(f"/admin/workplace/room/{kiln.pk}/change/").content.decode()
    assert 'name="approver_users"' in page and 'name="needs_approval"' in page
    dave = UserFactory(username="dave", first_name="Dave")
    form = {
        "building": hq.pk, "name": "Annex", "capacity": 4, "reservable": "on", "needs_approval": "on", "booking_type": "standard",
        "arrangements-TOTAL_FORMS": 0, "arrangements-INITIAL_FORMS": 0,
    }
    refused = client.post("/admin/workplace/room/add/", form)
    assert refused.status_code == 200 and "needs at least one approver" in refused.content.decode()
    added = client.post("/admin/workplace/room/add/", {**form, "approver_users": [dave.pk]})
    assert added.status_code == 302, added.content.decode()[:3000]
    from workplace.models import Room

    annex = Room.objects.get(name="Annex")
    assert annex.needs_approval and list(annex.approvers.user_set.values_list("username", flat=True)) == ["dave"]


# --- a synced room, end to end with the emulator and a real worker ---------------------------------------------


@pytest.fixture
def atlas_needs_approval(atlas, approvers):
    atlas.needs_approval, atlas.approvers = True, approvers
    atlas.save()
    return atlas


def meetings_in(emulator_server, mailbox: str) -> list:
    def read():
        user = emulator_server.store.find_user(mailbox)
        return [e for e in emulator_server.store.mailboxes[user.id].events.values() if not e.is_cancelled]

    return emulator_server.call(read)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_approved_the_meeting_is_written_and_the_room_accepts(worker, provider, mode, emulator, emulator_server, atlas_needs_approval, alice_api, carol_api):
    mode("Normal")
    body = booked(alice_api, atlas_needs_approval, subject="Board prep")
    assert (body["state"], body["approval_state"], body["sync"]["state"]) == ("awaiting_confirmation", "awaiting_approval", "not_synced")
    assert not SyncEvent.objects.filter(reservation_id=body["id"]).exists()
    assert meetings_in(emulator_server, ALICE) == [] and meetings_in(emulator_server, "atlas@contoso.example") == []

    approved = carol_api.post(f"{URL}{body['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["approval_state"] == "accepted"

    def confirmed() -> bool:
        return Reservation.objects.get(pk=body["id"]).state == State.CONFIRMED

    wait_for(confirmed, timeout=30, message=lambda: f"the room accepted: {worker.log_path.read_text()[-2000:]}")
    r = Reservation.objects.get(pk=body["id"])
    assert r.event_id and r.approval_state == "accepted"
    assert [e.subject for e in meetings_in(emulator_server, ALICE)] == ["Board prep"]  # Alice organizes (Normal mode)
    assert [e.response["response"] for e in meetings_in(emulator_server, "atlas@contoso.example")] == ["accepted"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_declined_no_meeting_is_ever_written(worker, provider, mode, emulator, emulator_server, atlas_needs_approval, alice_api, carol_api):
    mode("Normal")
    emulator.clear_request_log()
    body = booked(alice_api, atlas_needs_approval, subject="Board prep")

    declined = carol_api.post(f"{URL}{body['id']}/decline/", {"reason": "Board only."}, format="json")

    assert declined.status_code == 200 and declined.json()["state"] == "rejected"
    # Cancelling the rejected booking afterwards writes nothing either.
    assert not SyncEvent.objects.filter(reservation_id=body["id"]).exists()
    assert meetings_in(emulator_server, ALICE) == [] and meetings_in(emulator_server, "atlas@contoso.example") == []
    assert not [e for e in emulator.request_log()["entries"] if e["endpoint"].startswith("POST") and "events" in e["endpoint"]]
