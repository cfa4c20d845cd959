"""Inbound sync's services: an Outlook meeting becomes, changes and cancels a reservation,
recorded as Exchange has it and with no outbox event (nothing echoes back)."""

import datetime as dt

import pytest

from reservations import services
from reservations.exceptions import SlotTaken
from reservations.models import Reservation, SyncEvent
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

COPY = services.ExchangeIds(event_id="AAMk1", change_key="ck1", ical_uid="uid1", mailbox="atlas@contoso.example",
                            organizer="bob@contoso.example", sync_mailbox="other")


def outlook_meeting(bob, atlas, start=None, hours=1):
    start = start or days_ahead(-1, 9)  # a meeting in the past is recorded as it is
    return services.reservation_create_from_exchange(
        room=atlas, start=start, end=start + dt.timedelta(hours=hours), subject="Bob's meeting", requested_for=bob,
        exchange=COPY, attendees=[{"email": "alice@contoso.example"}],
    )


def test_an_outlook_meeting_becomes_a_confirmed_synced_reservation(bob, atlas):
    r = outlook_meeting(bob, atlas)

    assert (r.state, r.sync_state, r.origin, r.source) == ("confirmed", "synced", "exchange", "outlook")
    assert (r.event_id, r.change_key, r.ical_uid, r.organizer) == ("AAMk1", "ck1", "uid1", "bob@contoso.example")
    assert r.requested_by == bob and [a.email for a in r.attendees.all()] == ["alice@contoso.example"]
    assert not SyncEvent.objects.exists()


def test_a_change_in_outlook_is_followed_and_a_taken_slot_refused(alice, bob, atlas):
    r = outlook_meeting(bob, atlas, start=days_ahead(2, 9))
    services.reservation_create(actor=alice, room=atlas, start=days_ahead(2, 14), end=days_ahead(2, 15), subject="Alice's")

    moved = services.reservation_update_from_exchange(
        reservation=r, exchange=services.ExchangeIds(change_key="ck2"), subject="Renamed", start=days_ahead(2, 10), end=days_ahead(2, 11),
    )
    with pytest.raises(SlotTaken):
        services.reservation_update_from_exchange(reservation=moved, start=days_ahead(2, 14), end=days_ahead(2, 15))

    stored = Reservation.objects.get(pk=r.pk)
    assert (stored.subject, stored.start, stored.change_key, stored.event_id) == ("Renamed", days_ahead(2, 10), "ck2", "AAMk1")
    assert not SyncEvent.objects.filter(reservation=r).exists()


def test_a_meeting_gone_from_exchange_cancels_the_reservation_once(bob, atlas):
    r = outlook_meeting(bob, atlas, start=days_ahead(3, 9))

    [cancelled] = services.reservation_cancel_from_exchange(reservation=r, reason="x" * 600)
    again = services.reservation_cancel_from_exchange(reservation=r, reason="Cancelled in Outlook")

    assert cancelled.pk == r.pk and again == []
    stored = Reservation.objects.get(pk=r.pk)
    assert stored.state == "cancelled" and len(stored.state_reason) == 500  # Exchange's text, cut to fit
    assert not SyncEvent.objects.exists()
