"""reservation_create / update / cancel and the sync worker's services."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from reservations import rules, services
from reservations.exceptions import (
    InvalidReservation,
    NotActive,
    NotPermitted,
    RuleViolation,
    SlotTaken,
)
from reservations.models import Attendee, Reservation, SyncEvent
from tests.booking import book
from tests.factories import ReservationFactory, RoomFactory, days_ahead

pytestmark = pytest.mark.django_db


# --- create -----------------------------------------------------------------------------


def test_room_without_mailbox_is_confirmed_and_not_synced(alice, dojo):
    reservation = book(actor=alice, room=dojo)

    assert reservation.state == "confirmed"
    assert reservation.sync_state == "not_synced"
    assert reservation.requested_by == alice and reservation.requested_for == alice
    assert reservation.kind == "standard" and reservation.origin == "app"
    assert reservation.arrangement.is_default
    assert not SyncEvent.objects.exists()


def test_synced_room_awaits_the_rooms_answer_and_queues_a_create(alice, atlas):
    reservation = book(actor=alice, room=atlas, attendees=[{"email": "Bob@Contoso.example", "name": "Bob"}])

    assert reservation.state == "awaiting_confirmation"
    assert reservation.sync_state == "pending"
    event = SyncEvent.objects.get()
    assert (event.type, event.reservation, event.state) == ("create", reservation, "new")
    assert list(reservation.attendees.values_list("email", flat=True)) == ["bob@contoso.example"]


def test_booking_for_someone_else_is_on_behalf(alice, bob, dojo):
    reservation = book(actor=alice, room=dojo, requested_for=bob)

    assert reservation.kind == "on_behalf"
    assert (reservation.requested_by, reservation.requested_for) == (alice, bob)


def test_outlook_inbound_stores_the_meeting_and_echoes_nothing(bob, atlas):
    ids = services.ExchangeIds(event_id="AAMk1", change_key="ck1", ical_uid="uid1", mailbox="atlas@contoso.example", organizer="bob@contoso.example", sync_mailbox="other")
    start = days_ahead(-1, 9)  # inbound may record meetings in the past

    reservation = book(actor=None, room=atlas, start=start, requested_for=bob, source="outlook", from_exchange=True, exchange=ids)

    assert (reservation.state, reservation.sync_state, reservation.origin) == ("confirmed", "synced", "exchange")
    assert (reservation.event_id, reservation.change_key, reservation.ical_uid) == ("AAMk1", "ck1", "uid1")
    assert reservation.requested_by == bob
    assert not SyncEvent.objects.exists()


def test_a_taken_slot_is_refused_naming_it(alice, bob, dojo):
    book(actor=alice, room=dojo, start=days_ahead(1, 9))

    with pytest.raises(SlotTaken) as caught:
        book(actor=bob, room=dojo, start=days_ahead(1, 9, 30))

    assert "Dojo is already booked" in caught.value.message and "09:00–10:00" in caught.value.message
    assert caught.value.status_code == 409
    [conflict] = caught.value.extra["conflicts"]
    assert conflict["conflicting_start"] == days_ahead(1, 9).isoformat()  # the building's zone, with its offset
    assert Reservation.objects.count() == 1


def test_back_to_back_bookings_and_cancelled_slots_are_free(alice, bob, dojo):
    first = book(actor=alice, room=dojo, start=days_ahead(1, 9))
    book(actor=bob, room=dojo, start=days_ahead(1, 10))  # starts when the first ends
    services.reservation_cancel(actor=alice, reservation=first)

    book(actor=bob, room=dojo, start=days_ahead(1, 9))

    assert Reservation.objects.filter(state="confirmed").count() == 2


def test_the_database_refuses_an_overlap_the_code_did_not_check(alice, dojo):
    ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9))

    with pytest.raises(IntegrityError), transaction.atomic():
        ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9, 30))


def test_losing_the_race_at_the_constraint_is_slot_taken(alice, bob, dojo, monkeypatch):
    book(actor=alice, room=dojo, start=days_ahead(1, 9))
    monkeypatch.setattr(services.conflicts, "find_conflicts", lambda **kwargs: [])  # as if the other insert was not yet visible

    with pytest.raises(SlotTaken, match="booked by someone else"):
        book(actor=bob, room=dojo, start=days_ahead(1, 9))


INVALID = [
    ("naive start", {"start": dt.datetime(2031, 1, 1, 9), "end": dt.datetime(2031, 1, 1, 10)}, "start"),
    ("end before start", {"start": days_ahead(1, 10), "end": days_ahead(1, 9)}, "end"),
    ("end equals start", {"start": days_ahead(1, 10), "end": days_ahead(1, 10)}, "end"),
    ("too short", {"start": days_ahead(1, 10), "end": days_ahead(1, 10, 2)}, "end"),
    ("too long", {"start": days_ahead(1, 6), "end": days_ahead(1, 19)}, "end"),
    ("in the past", {"start": days_ahead(-1, 9), "end": days_ahead(-1, 10)}, "start"),
    ("beyond the horizon", {"start": days_ahead(400, 9), "end": days_ahead(400, 10)}, "start"),
    ("empty subject", {"subject": "  "}, "subject"),
    ("subject too long", {"subject": "x" * 256}, "subject"),
    ("body too long", {"body": "x" * 10_001}, "body"),
    ("too many people", {"attendees": [{"email": f"p{i}@contoso.example"} for i in range(6)]}, "attendees"),
    ("bad attendee email", {"attendees": [{"email": "not-an-address"}]}, "attendees[0]"),
    ("blocker by an employee", {"kind": "blocker"}, "kind"),
    ("group not enabled", {"kind": "group"}, "kind"),
    ("unknown kind", {"kind": "party"}, "kind"),
]


@pytest.mark.parametrize(("case", "changes", "field"), INVALID, ids=[case for case, _, _ in INVALID])
def test_invalid_input_is_refused_and_changes_nothing(alice, dojo, case, changes, field):
    with pytest.raises(InvalidReservation) as caught:
        book(actor=alice, room=dojo, **changes)

    assert field in caught.value.extra
    assert caught.value.message
    assert not Reservation.objects.exists() and not Attendee.objects.exists()


def test_rooms_that_cant_be_reserved_and_foreign_arrangements_are_refused(alice, dojo, atlas):
    closed = RoomFactory(building=dojo.building, name="Closed", reservable=False)
    with pytest.raises(InvalidReservation, match="can't be reserved"):
        book(actor=alice, room=closed)
    with pytest.raises(InvalidReservation) as caught:
        book(actor=alice, room=dojo, arrangement=atlas.arrangements.first())
    assert "arrangement" in caught.value.extra


def test_admins_create_blockers(admin, dojo):
    assert book(actor=admin, room=dojo, kind="blocker").kind == "blocker"


def test_a_sync_mode_rule_refuses_before_anything_is_written(alice, atlas, monkeypatch):
    def refuse(**kwargs):
        raise RuleViolation("personal_on_behalf", "Not in Personal mode.")

    monkeypatch.setattr(rules, "check_create", refuse)

    with pytest.raises(RuleViolation):
        book(actor=alice, room=atlas)
    assert not Reservation.objects.exists() and not SyncEvent.objects.exists()


# --- update -----------------------------------------------------------------------------


def test_update_moves_the_reservation_and_queues_an_update(alice, atlas, dojo):
    reservation = book(actor=alice, room=atlas, start=days_ahead(1, 9))
    SyncEvent.objects.all().delete()

    updated = services.reservation_update(actor=alice, reservation=reservation, start=days_ahead(1, 14), end=days_ahead(1, 15), subject="Moved")

    assert (updated.start, updated.subject) == (days_ahead(1, 14), "Moved")
    event = SyncEvent.objects.get()
    assert event.type == "update" and set(event.details["fields"]) == {"start", "end", "subject"}


def test_moving_to_a_room_without_mailbox_tells_exchange_about_the_old_room(alice, atlas, dojo):
    reservation = book(actor=alice, room=atlas)
    SyncEvent.objects.all().delete()

    updated = services.reservation_update(actor=alice, reservation=reservation, room=dojo)

    assert updated.room == dojo and updated.state == "confirmed"
    assert updated.arrangement.room == dojo
    event = SyncEvent.objects.get()
    assert event.details["previous_room_id"] == atlas.pk


def test_update_into_a_taken_slot_is_refused(alice, bob, dojo):
    book(actor=bob, room=dojo, start=days_ahead(1, 14))
    reservation = book(actor=alice, room=dojo, start=days_ahead(1, 9))

    with pytest.raises(SlotTaken):
        services.reservation_update(actor=alice, reservation=reservation, start=days_ahead(1, 14, 30), end=days_ahead(1, 15, 30))
    reservation.refresh_from_db()
    assert reservation.start == days_ahead(1, 9)


def test_update_without_changes_writes_nothing(alice, atlas):
    reservation = book(actor=alice, room=atlas)
    before = SyncEvent.objects.count()

    services.reservation_update(actor=alice, reservation=reservation, subject=reservation.subject)

    assert SyncEvent.objects.count() == before


def test_attendees_are_replaced(alice, dojo):
    reservation = book(actor=alice, room=dojo, attendees=[{"email": "a@contoso.example"}])

    services.reservation_update(actor=alice, reservation=reservation, attendees=[{"email": "b@contoso.example", "type": "optional"}])

    assert list(reservation.attendees.values_list("email", "type")) == [("b@contoso.example", "optional")]


def test_alice_cant_change_bobs_reservation_but_staff_can(alice, bob, admin, dojo):
    reservation = book(actor=bob, room=dojo)

    with pytest.raises(NotPermitted):
        services.reservation_update(actor=alice, reservation=reservation, subject="Mine now")
    with pytest.raises(NotPermitted):
        services.reservation_cancel(actor=alice, reservation=reservation)
    services.reservation_update(actor=admin, reservation=reservation, subject="Fixed by admin")
    reservation.refresh_from_db()
    assert reservation.subject == "Fixed by admin" and reservation.state == "confirmed"


def test_the_person_it_is_for_may_change_it(alice, bob, dojo):
    reservation = book(actor=alice, room=dojo, requested_for=bob)
    assert services.reservation_update(actor=bob, reservation=reservation, subject="Bob's now").subject == "Bob's now"


def test_cancelled_reservations_cant_be_changed(alice, dojo):
    reservation = book(actor=alice, room=dojo)
    services.reservation_cancel(actor=alice, reservation=reservation)

    with pytest.raises(NotActive):
        services.reservation_update(actor=alice, reservation=reservation, subject="Again")


# --- cancel -----------------------------------------------------------------------------


def test_cancel_frees_the_room_and_queues_a_delete(alice, atlas):
    reservation = book(actor=alice, room=atlas)

    [cancelled] = services.reservation_cancel(actor=alice, reservation=reservation, reason="Not needed")

    assert cancelled.state == "cancelled" and cancelled.state_reason == "Not needed"
    assert SyncEvent.objects.filter(type="delete", reservation=reservation).count() == 1
    assert services.reservation_cancel(actor=alice, reservation=reservation) == []  # retry is harmless
    assert SyncEvent.objects.filter(type="delete").count() == 1


def test_cancel_many_is_all_or_nothing(alice, bob, dojo):
    mine = book(actor=alice, room=dojo, start=days_ahead(1, 9))
    theirs = book(actor=bob, room=dojo, start=days_ahead(1, 11))

    with pytest.raises(NotPermitted):
        services.reservation_cancel_many(actor=alice, reservations=[mine, theirs])
    assert Reservation.objects.filter(state="cancelled").count() == 0

    other = book(actor=alice, room=dojo, start=days_ahead(2, 9))
    cancelled = services.reservation_cancel_many(actor=alice, reservations=[mine, other])
    assert {r.pk for r in cancelled} == {mine.pk, other.pk}


def test_rejected_reservations_cant_be_cancelled(alice, atlas):
    reservation = book(actor=alice, room=atlas)
    services.reservation_mark_rejected(reservation=reservation, reason="Declined by the room")

    with pytest.raises(NotActive):
        services.reservation_cancel(actor=alice, reservation=reservation)


# --- the sync worker's services ----------------------------------------------------------------


def test_worker_services_are_conditional(alice, atlas):
    reservation = book(actor=alice, room=atlas)

    assert services.reservation_link_exchange(reservation=reservation, event_id="AAMk9", change_key="ck9", ical_uid="uid9", mailbox="alice@contoso.example", organizer="alice@contoso.example", sync_mailbox="user")
    assert services.reservation_set_sync_state(reservation=reservation, state="synced")
    assert services.reservation_mark_confirmed(reservation=reservation)
    assert not services.reservation_mark_confirmed(reservation=reservation)  # redelivered: nothing to do
    assert services.reservation_mark_conflicted(reservation=reservation, reason="Meeting missing")
    assert services.reservation_mark_rejected(reservation=reservation, reason="Declined")
    assert not services.reservation_mark_conflicted(reservation=reservation, reason="late")

    reservation.refresh_from_db()
    assert (reservation.state, reservation.state_reason, reservation.sync_state) == ("rejected", "Declined", "synced")
    assert (reservation.event_id, reservation.change_key, reservation.sync_mailbox) == ("AAMk9", "ck9", "user")
    book(actor=alice, room=atlas)  # a rejected reservation no longer holds the room


def test_sync_error_is_recorded(alice, atlas):
    reservation = book(actor=alice, room=atlas)
    services.reservation_set_sync_state(reservation=reservation, state="error", error="ErrorAccessDenied")
    reservation.refresh_from_db()
    assert (reservation.sync_state, reservation.sync_error) == ("error", "ErrorAccessDenied")


def test_without_the_database_constraint_the_service_checks_first(alice, bob, dojo, monkeypatch):
    """SQLite's path: no exclusion constraint, so the service checks before writing."""
    book(actor=alice, room=dojo, start=days_ahead(1, 9))
    monkeypatch.setattr(services.conflicts, "database_enforces_no_overlap", lambda: False)

    with pytest.raises(SlotTaken, match="Dojo is already booked"):
        book(actor=bob, room=dojo, start=days_ahead(1, 9, 30))
    reservation = book(actor=bob, room=dojo, start=days_ahead(1, 11))
    with pytest.raises(SlotTaken):
        services.reservation_update(actor=bob, reservation=reservation, start=days_ahead(1, 9, 45), end=days_ahead(1, 10, 15))
