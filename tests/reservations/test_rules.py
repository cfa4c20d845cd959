"""SPEC §3 restrictions, exercised through the reservation services (and the API
where the status code matters): each refusal names its rule and changes nothing."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.models import CalendarProvider, PersonalToken
from reservations import rules, services
from reservations.exceptions import EditNotAllowed, RuleViolation
from reservations.models import Kind, Origin, Reservation, Source
from tests.booking import book
from tests.factories import ReservationFactory, RoomFactory, days_ahead

REST = {"source": Source.REST_API, "subsource": "sn_wsd_rest_api"}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


@pytest.fixture
def unreachable_provider(db):
    """A provider whose hosts don't resolve: these tests never reach Exchange."""
    provider = CalendarProvider(
        name="Contoso", active=True, tenant_id="contoso", client_id="wsd-demo-client",
        authority_host="https://login.example.invalid", graph_base_url="https://graph.example.invalid/v1.0",
        delegated_user_email="reservations@contoso.example", organizer_account="reservations@contoso.example",
    )
    provider.client_secret = "demo-secret"
    provider.save()
    return provider


def connect_outlook(user, provider, *, revoked=False) -> PersonalToken:
    return PersonalToken.objects.create(
        user=user, provider=provider, account_email=user.email, token_cache_encrypted=crypto.encrypt("{}"),
        connected_at=timezone.now(), needs_reconnect=revoked,
    )


def meeting(room, owner, *, sync_mailbox="user", origin=Origin.APP, organizer="", day=2) -> Reservation:
    """A reservation already synced: its meeting is in ``sync_mailbox``."""
    mailbox = owner.email if sync_mailbox == "user" else "reservations@contoso.example"
    return ReservationFactory(
        room=room, requested_for=owner, requested_by=owner, start=days_ahead(day, 14), end=days_ahead(day, 15),
        sync_mailbox=sync_mailbox, mailbox=mailbox, origin=origin, organizer=organizer or mailbox, event_id="AAMk-1",
    )


def refused(rule: str, func, *args, **kwargs) -> RuleViolation:
    with pytest.raises(RuleViolation) as excinfo:
        func(*args, **kwargs)
    assert excinfo.value.rule == rule, excinfo.value.message
    return excinfo.value


# --- Personal mode: creating ------------------------------------------------------------------


def test_personal_on_behalf_refused_for_synced_room(mode, unreachable_provider, alice, bob, atlas):
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    error = refused("personal_on_behalf", book, actor=alice, room=atlas, requested_for=bob)
    assert error.status_code == 403 and "only be made for yourself" in error.message
    assert not Reservation.objects.exists()


def test_personal_on_behalf_allowed_for_room_that_is_not_synced(mode, unreachable_provider, alice, bob, dojo):
    mode("Personal")
    reservation = book(actor=alice, room=dojo, requested_for=bob)
    assert reservation.kind == Kind.ON_BEHALF and reservation.requested_for == bob


def test_personal_on_behalf_refused_through_the_api_too(mode, unreachable_provider, alice_api, bob, atlas):
    mode("Personal")
    response = alice_api.post("/api/v1/reservations/", {
        "room": atlas.pk, "subject": "For Bob", "start": days_ahead(1, 9).isoformat(),
        "end": days_ahead(1, 10).isoformat(), "requested_for": bob.email,
    }, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "personal_on_behalf"
    assert "for yourself" in response.json()["message"]


def test_personal_group_refused_for_synced_room_even_when_room_enables_groups(mode, unreachable_provider, alice, atlas):
    atlas.group_reservations_enabled = True
    atlas.save()
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    refused("personal_group", book, actor=alice, room=atlas, kind=Kind.GROUP)


def test_personal_group_allowed_for_room_that_is_not_synced(mode, unreachable_provider, alice, hq):
    lounge = RoomFactory(building=hq, name="Lounge", group_reservations_enabled=True)
    mode("Personal")
    assert book(actor=alice, room=lounge, kind=Kind.GROUP).kind == Kind.GROUP


def test_personal_booking_in_person_needs_outlook_connected(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    error = refused("personal_outlook_not_connected", book, actor=alice, room=atlas)
    assert "Connect your Outlook account" in error.message
    connect_outlook(alice, unreachable_provider)
    assert book(actor=alice, room=atlas).pk


def test_personal_revoked_connection_asks_to_reconnect(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    connect_outlook(alice, unreachable_provider, revoked=True)
    error = refused("personal_outlook_not_connected", book, actor=alice, room=atlas)
    assert "reconnect Outlook" in error.message and error.extra == {"reconnect_outlook": True}


def test_personal_rest_api_booking_uses_system_credential_so_needs_no_token(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    assert book(actor=alice, room=atlas, **REST).subsource == "sn_wsd_rest_api"


def test_personal_admin_blocker_allowed(mode, unreachable_provider, admin, bob, atlas):
    mode("Personal")
    assert book(actor=admin, room=atlas, requested_for=bob, kind=Kind.BLOCKER).kind == Kind.BLOCKER


# --- Personal mode: changing and cancelling ------------------------------------------------------------


def test_personal_owner_with_token_changes_and_cancels_own_meeting(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    reservation = meeting(atlas, alice)
    assert services.reservation_update(actor=alice, reservation=reservation, subject="Renamed").subject == "Renamed"
    services.reservation_cancel(actor=alice, reservation=reservation)


def test_personal_someone_else_may_not_change_user_mailbox_meeting(mode, unreachable_provider, alice, admin, atlas):
    mode("Personal")
    connect_outlook(admin, unreachable_provider)
    reservation = meeting(atlas, alice)
    error = refused("personal_not_requested_for", services.reservation_update, actor=admin, reservation=reservation, subject="Mine now")
    assert "only they can change it" in error.message
    refused("personal_not_requested_for", services.reservation_cancel, actor=admin, reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.subject != "Mine now" and reservation.is_active


def test_personal_owner_without_token_may_not_change_user_mailbox_meeting(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    reservation = meeting(atlas, alice)
    refused("personal_outlook_not_connected", services.reservation_update, actor=alice, reservation=reservation, subject="x")
    refused("personal_outlook_not_connected", services.reservation_cancel, actor=alice, reservation=reservation)


def test_personal_rest_api_may_not_change_user_mailbox_meeting(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    reservation = meeting(atlas, alice)
    error = refused("personal_channel", services.reservation_update, actor=alice, reservation=reservation, subject="x", **REST)
    assert "not through the API" in error.message
    refused("personal_channel", services.reservation_cancel, actor=alice, reservation=reservation, **REST)


def test_personal_rest_api_refusal_is_a_403(mode, unreachable_provider, alice, alice_api, atlas):
    mode("Personal")
    reservation = meeting(atlas, alice)
    response = alice_api.post(f"/api/v1/reservations/{reservation.pk}/cancel/", {}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "personal_channel"


def test_personal_other_mailbox_meetings_can_be_changed_and_cancelled(mode, unreachable_provider, alice, admin, atlas):
    mode("Personal")
    reservation = meeting(atlas, alice, sync_mailbox="other")
    services.reservation_update(actor=admin, reservation=reservation, subject="Moved by admin", **REST)
    services.reservation_update(actor=alice, reservation=reservation, subject="And by Alice")
    services.reservation_cancel(actor=alice, reservation=reservation, **REST)


def test_personal_pending_reservation_is_judged_by_where_the_mode_puts_it(mode, unreachable_provider, alice, admin, atlas):
    """Not synced yet (no sync mailbox stored): Personal puts it in Alice's calendar."""
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    reservation = book(actor=alice, room=atlas)
    assert reservation.sync_mailbox == ""
    refused("personal_not_requested_for", services.reservation_update, actor=admin, reservation=reservation, subject="x")


# --- Strict mode ----------------------------------------------------------------------------------------


def test_strict_user_mailbox_meetings_can_not_be_changed_or_cancelled(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    reservation = meeting(atlas, alice, sync_mailbox="user")
    error = refused("strict_user_mailbox", services.reservation_update, actor=alice, reservation=reservation, subject="x")
    assert "Strict mode" in error.message
    refused("strict_user_mailbox", services.reservation_cancel, actor=alice, reservation=reservation)


def test_strict_other_mailbox_meetings_can_be_changed_and_cancelled(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    reservation = meeting(atlas, alice, sync_mailbox="other")
    services.reservation_update(actor=alice, reservation=reservation, subject="Renamed")
    services.reservation_cancel(actor=alice, reservation=reservation)


def test_strict_new_reservations_are_in_other_mailbox_so_editable(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    reservation = book(actor=alice, room=atlas)
    assert rules.effective_sync_mailbox(reservation) == "other"
    services.reservation_update(actor=alice, reservation=reservation, subject="Renamed")


def test_strict_rooms_organizing_refuse_multi_room(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    unreachable_provider.rooms_organize_own_meetings = True
    unreachable_provider.save()
    error = refused(
        "room_organizer_multi_room", rules.check_create, actor=alice, requested_for=alice, room=atlas,
        kind=Kind.STANDARD, source="portal", subsource="", rooms_count=2,
    )
    assert "Book each room separately" in error.message


def test_multi_room_allowed_when_rooms_do_not_organize(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    rules.check_create(actor=alice, requested_for=alice, room=atlas, kind=Kind.STANDARD, source="portal", subsource="", rooms_count=2)


# --- All modes: meetings created in Outlook -------------------------------------------------------------


@pytest.mark.parametrize("sync_mode", ["Normal", "Strict", "Personal"])
def test_outlook_meeting_edit_refused_listing_each_difference(mode, unreachable_provider, sync_mode, alice, hq, atlas):
    mode(sync_mode)
    connect_outlook(alice, unreachable_provider)
    cosmos = RoomFactory(building=hq, name="Cosmos", synced=True)
    reservation = meeting(atlas, alice, sync_mailbox="other", origin=Origin.EXCHANGE, organizer=alice.email)
    before = (reservation.subject, reservation.start, reservation.room_id)
    with pytest.raises(EditNotAllowed) as excinfo:
        services.reservation_update(
            actor=alice, reservation=reservation, subject="New subject", body="New body", room=cosmos,
            start=reservation.start + dt.timedelta(hours=1), end=reservation.end + dt.timedelta(hours=1),
            attendees=[{"email": "bob@contoso.example"}],
        )
    error = excinfo.value
    assert error.status_code == 409 and error.rule == "outlook_origin_edit"
    assert set(error.differences) == {"time", "subject", "location", "body", "attendees"}
    assert error.differences["location"] == {"current": "Atlas", "requested": "Cosmos"}
    assert "created in Outlook" in error.message
    reservation.refresh_from_db()
    assert (reservation.subject, reservation.start, reservation.room_id) == before


def test_outlook_meeting_edit_refused_with_409_in_the_api(mode, unreachable_provider, alice, alice_api, atlas):
    mode("Normal")
    reservation = meeting(atlas, alice, sync_mailbox="other", origin=Origin.EXCHANGE, organizer=alice.email)
    response = alice_api.patch(f"/api/v1/reservations/{reservation.pk}/", {"subject": "Renamed"}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "outlook_origin_edit"
    assert body["extra"]["differences"]["subject"]["requested"] == "Renamed"


def test_outlook_meeting_can_always_be_cancelled(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    reservation = meeting(atlas, alice, sync_mailbox="user", origin=Origin.EXCHANGE, organizer=alice.email)
    services.reservation_cancel(actor=alice, reservation=reservation, **REST)
    reservation.refresh_from_db()
    assert not reservation.is_active


def test_normal_mode_has_no_mailbox_restrictions(mode, unreachable_provider, alice, admin, atlas):
    mode("Normal")
    reservation = meeting(atlas, alice, sync_mailbox="user")
    services.reservation_update(actor=admin, reservation=reservation, subject="By admin", **REST)
    services.reservation_cancel(actor=alice, reservation=reservation, **REST)


def test_system_jobs_are_never_restricted(mode, unreachable_provider, alice, atlas):
    mode("Personal")
    reservation = meeting(atlas, alice)
    rules.check_update(actor=None, reservation=reservation, source="outlook", subsource="", changes={"subject": ("a", "b")})
    rules.check_cancel(actor=None, reservation=reservation, source="outlook", subsource="")


# --- What the portal shows before the user acts -----------------------------------------------------------


def test_ui_personal_mode_hides_on_behalf_and_group_for_synced_rooms(mode, unreachable_provider, alice, atlas, dojo):
    atlas.group_reservations_enabled = True
    atlas.save()
    mode("Personal")
    caps = rules.ui_capabilities(alice, room=atlas)
    assert caps["can_book_on_behalf"] is False and "for yourself" in caps["on_behalf_reason"]
    assert caps["can_group"] is False and "Personal mode" in caps["group_reason"]
    assert caps["outlook_connection_required"] is True
    caps = rules.ui_capabilities(alice, room=dojo)
    assert caps["can_book_on_behalf"] is True and caps["outlook_connection_required"] is False


def test_ui_normal_mode_offers_everything(mode, unreachable_provider, alice, atlas):
    mode("Normal")
    atlas.group_reservations_enabled = True
    atlas.save()
    caps = rules.ui_capabilities(alice, room=atlas)
    assert caps["can_book_on_behalf"] and caps["can_group"] and not caps["outlook_connection_required"]


def test_ui_edit_and_cancel_reasons(mode, unreachable_provider, alice, admin, atlas):
    mode("Strict")
    reservation = meeting(atlas, alice, sync_mailbox="user")
    caps = rules.ui_capabilities(alice, reservation=reservation)
    assert caps["can_edit"] is False and "Strict mode" in caps["edit_reason"]
    assert caps["can_cancel"] is False
    outlook = meeting(atlas, alice, sync_mailbox="other", origin=Origin.EXCHANGE, day=3)
    caps = rules.ui_capabilities(alice, reservation=outlook)
    assert caps["can_edit"] is False and "created in Outlook" in caps["edit_reason"]
    assert caps["can_cancel"] is True


def test_ui_cancel_meeting_choice_not_offered_for_room_organizer_meetings(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    room_meeting = meeting(atlas, alice, sync_mailbox="other", organizer=atlas.mailbox)
    assert rules.ui_capabilities(alice, reservation=room_meeting)["offer_cancel_meeting_choice"] is False
    mode("Normal")
    own_meeting = meeting(atlas, alice, sync_mailbox="user", day=4)
    assert rules.ui_capabilities(alice, reservation=own_meeting)["offer_cancel_meeting_choice"] is True
    assert rules.offer_cancel_meeting_choice([own_meeting, room_meeting]) is False  # multi-select dialog
    outlook = meeting(atlas, alice, sync_mailbox="other", origin=Origin.EXCHANGE, day=5)
    assert rules.ui_capabilities(alice, reservation=outlook)["offer_cancel_meeting_choice"] is False


def test_ui_cancel_choice_before_sync_follows_the_provider(mode, unreachable_provider, alice, atlas):
    mode("Strict")
    unreachable_provider.rooms_organize_own_meetings = True
    unreachable_provider.save()
    assert rules.ui_capabilities(alice, room=atlas)["offer_cancel_meeting_choice"] is False
    reservation = book(actor=alice, room=atlas)
    assert rules.ui_capabilities(alice, reservation=reservation)["offer_cancel_meeting_choice"] is False
