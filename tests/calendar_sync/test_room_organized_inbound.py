"""The seed's "Calendar Monitoring Actions" table, row by row, for meetings the room organizes
(Strict mode with ``rooms_organize_own_meetings``: the product's meeting *is* the room's
calendar item, so its event id and change key are the room's). Real time goes the whole
delivery path (the emulator notifies the live webhook, the pull reconciles); "not connected"
is Atlas' subscription deleted and the nightly round (``pull_mailbox(full=True, nightly=True)``).

| table row | real time (connected) | nightly |
|---|---|---|
| update on the room calendar, room available → reservation updated, item id and change key | test_realtime_an_update_on_the_room_calendar_to_a_free_slot_updates_the_reservation | test_nightly_an_update_on_the_room_calendar_to_a_free_slot_updates_the_reservation; accepted before → no action: test_nightly_after_real_time_nothing_is_left_to_do |
| update on the room calendar, room not available → meeting cancelled, reservation cancelled, requester told | test_realtime_an_update_onto_a_taken_slot_cancels_meeting_and_reservation | test_nightly_an_update_onto_a_taken_slot_cancels_meeting_and_reservation |
| cancel on the room calendar → reservation cancelled, requester told | test_realtime_a_cancel_on_the_room_calendar_cancels_the_reservation | test_nightly_a_cancel_on_the_room_calendar_cancels_a_reservation_seen_before; the product's own meeting counts as seen: test_nightly_a_cancel_of_a_meeting_no_pull_recorded_still_cancels_the_products_reservation |
| create via the product → item id and change key populated | test_realtime_the_products_create_and_update_record_the_rooms_item_id_and_change_key | test_nightly_after_real_time_nothing_is_left_to_do |
| update via the product → item id and change key updated | (the same test) | (the same test) |
| cancel via the product → deleted meeting without linked reservation: no action | test_realtime_the_products_cancel_needs_no_action | test_nightly_the_products_cancel_needs_no_action |
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from calendar_sync.common.clients import system_client
from calendar_sync.inbound import room_calendar, subscriptions
from calendar_sync.inbound.mailboxes import subscribed_mailboxes
from calendar_sync.inbound.tasks import subscriptions_ensure
from calendar_sync.models import RoomEvent, Subscription, WebhookNotification
from exchange_auth.graph import users_path
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    ORGANIZER,
    echoed,
    graph_time,
    run_nightly,
    settled,
)
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def room_organizes(settings, live_server, provider, mode, atlas):
    """Strict mode, the room organizes its meetings; the webhook is live and Atlas subscribed
    (the organizer mailbox is not listened to: it organizes nothing)."""
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    settings.PUBLIC_BASE_URL = live_server.url
    counts = subscriptions_ensure(provider=provider)
    assert counts["created"] == 1, counts
    assert ORGANIZER not in subscribed_mailboxes(provider)  # the room's calendar is the one monitored
    return provider


def room_booking(alice, atlas, start) -> Reservation:
    r = book(actor=alice, room=atlas, start=start, subject="Room-organized", confirmed=True)
    assert (r.mailbox, r.organizer, r.state) == (ATLAS, ATLAS, State.CONFIRMED)
    return r


def room_item(provider, event_id: str) -> dict | None:
    """The room's calendar item (the meeting itself), read with the app credential."""
    found = system_client(provider).get(users_path(ATLAS, "events", event_id), params={"$select": "id,changeKey,start,end,isCancelled"})
    return found


def edit_on_room_calendar(provider, r: Reservation, start: dt.datetime) -> None:
    """Someone with access to the room's calendar moves the meeting there."""
    system_client(provider).patch(users_path(ATLAS, "events", r.event_id), json={
        "start": graph_time(start), "end": graph_time(start + dt.timedelta(hours=1))})


def cancel_on_room_calendar(provider, r: Reservation) -> None:
    system_client(provider).post(users_path(ATLAS, "events", r.event_id, "cancel"), json={"Comment": "Room closed"})


def room_gone(provider, r: Reservation) -> bool:
    try:
        room_item(provider, r.event_id)
    except Exception as exc:  # NotFound
        return getattr(exc, "status", None) == 404
    return False


def not_connected() -> None:
    """The real-time monitor is down: Atlas' subscription is gone, no notification arrives."""
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status="active"))


def pulled() -> bool:
    return settled(ATLAS)


# --- update on the room calendar, room available ---------------------------------------------------


def test_realtime_an_update_on_the_room_calendar_to_a_free_slot_updates_the_reservation(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    moved = days_ahead(3, 15)
    edit_on_room_calendar(room_organizes, r, moved)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).start == moved, message="the reservation follows")
    r.refresh_from_db()
    item = room_item(room_organizes, r.event_id)
    assert (r.state, r.end, r.event_id, r.change_key) == (State.CONFIRMED, moved + dt.timedelta(hours=1), item["id"], item["changeKey"])
    assert list(SyncEvent.objects.filter(reservation=r).values_list("type", flat=True)) == ["create"]  # nothing echoes back


def test_nightly_an_update_on_the_room_calendar_to_a_free_slot_updates_the_reservation(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, event_id=r.event_id).exists() and pulled(), message="seen once")
    not_connected()
    moved = days_ahead(4, 11)
    edit_on_room_calendar(room_organizes, r, moved)
    assert Reservation.objects.get(pk=r.pk).start != moved
    stats = run_nightly()
    assert stats["updated"] == 1, stats
    r.refresh_from_db()
    assert (r.start, r.change_key) == (moved, room_item(room_organizes, r.event_id)["changeKey"])


def test_nightly_after_real_time_nothing_is_left_to_do(room_organizes, alice, atlas):
    """Rows "update accepted" and "create/update via the product" at night: item id and change
    key match between meeting and reservation → no action."""
    r = room_booking(alice, atlas, days_ahead(3, 9))
    services.reservation_update(actor=alice, reservation=r, subject="Renamed in the product")
    edit_on_room_calendar(room_organizes, Reservation.objects.get(pk=r.pk), days_ahead(3, 16))
    wait_for(lambda: Reservation.objects.get(pk=r.pk).start == days_ahead(3, 16) and pulled(), message="real time settled")
    before = Reservation.objects.get(pk=r.pk)
    mail.outbox.clear()
    stats = run_nightly()
    after = Reservation.objects.get(pk=r.pk)
    assert stats.get("updated", 0) == 0 and stats.get("cancelled", 0) == 0 and stats["unchanged"] == 1, stats
    assert (after.start, after.subject, after.change_key, after.updated_at) == (before.start, before.subject, before.change_key, before.updated_at)
    assert mail.outbox == []


# --- update on the room calendar, room not available -----------------------------------------------


def _taken(alice, atlas, start):
    # Booked in the product only (Exchange doesn't know it): the room is not available there.
    return ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=1), requested_for=alice, subject="Taken")


def test_realtime_an_update_onto_a_taken_slot_cancels_meeting_and_reservation(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    taken = days_ahead(3, 14)
    _taken(alice, atlas, taken)
    mail.outbox.clear()
    edit_on_room_calendar(room_organizes, r, taken)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    wait_for(lambda: room_gone(room_organizes, r), message="the room cancels its meeting")
    r.refresh_from_db()
    assert "already booked" in r.state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]


def test_nightly_an_update_onto_a_taken_slot_cancels_meeting_and_reservation(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, event_id=r.event_id).exists() and pulled(), message="seen once")
    not_connected()
    taken = days_ahead(3, 14)
    _taken(alice, atlas, taken)
    edit_on_room_calendar(room_organizes, r, taken)
    mail.outbox.clear()
    stats = run_nightly()
    assert stats["cancelled_conflict"] == 1, stats
    r.refresh_from_db()
    assert r.state == State.CANCELLED and "already booked" in r.state_reason
    assert room_gone(room_organizes, r)
    assert [m.to for m in mail.outbox] == [[ALICE]]


# --- cancel on the room calendar -----------------------------------------------------------------------


def test_realtime_a_cancel_on_the_room_calendar_cancels_the_reservation(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    mail.outbox.clear()
    cancel_on_room_calendar(room_organizes, r)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    wait_for(pulled, message="notifications answered")
    r.refresh_from_db()
    assert r.state_reason == room_calendar.CANCELLED_IN_OUTLOOK
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert list(SyncEvent.objects.filter(reservation=r).values_list("type", flat=True)) == ["create"]


def test_nightly_a_cancel_on_the_room_calendar_cancels_a_reservation_seen_before(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, event_id=r.event_id).exists() and pulled(), message="seen once")
    not_connected()
    cancel_on_room_calendar(room_organizes, r)
    mail.outbox.clear()
    stats = run_nightly()
    assert stats["cancelled"] == 1, stats
    assert Reservation.objects.get(pk=r.pk).state == State.CANCELLED
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert run_nightly().get("cancelled", 0) == 0  # once


def test_nightly_a_cancel_of_a_meeting_no_pull_recorded_still_cancels_the_products_reservation(room_organizes, emulator, alice, atlas):
    """"Otherwise no action" is for meetings never seen; the product's own meeting was seen
    when it wrote it (it holds its item id), so the nightly round settles it too."""
    not_connected()
    r = room_booking(alice, atlas, days_ahead(3, 9))
    assert not RoomEvent.objects.filter(mailbox=ATLAS).exists()
    cancel_on_room_calendar(room_organizes, r)
    mail.outbox.clear()
    stats = run_nightly()
    assert stats["cancelled"] == 1, stats
    assert Reservation.objects.get(pk=r.pk).state == State.CANCELLED and [m.to for m in mail.outbox] == [[ALICE]]


# --- create / update / cancel via the product --------------------------------------------------------


def test_realtime_the_products_create_and_update_record_the_rooms_item_id_and_change_key(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    item = room_item(room_organizes, r.event_id)
    wait_for(lambda: echoed(ATLAS, event_id=r.event_id), message="the echo recorded")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).change_key == room_item(room_organizes, r.event_id)["changeKey"], message="change key")
    assert Reservation.objects.get(pk=r.pk).event_id == item["id"]
    services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=r.pk), subject="Renamed in the product")
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="update pushed")
    wait_for(lambda: echoed(ATLAS, event_id=r.event_id, subject="Renamed in the product"), message="the update's echo")
    wait_for(pulled, message="notifications answered")
    r.refresh_from_db()
    item = room_item(room_organizes, r.event_id)
    assert (r.event_id, r.change_key, r.subject, r.state) == (item["id"], item["changeKey"], "Renamed in the product", State.CONFIRMED)
    assert Reservation.objects.filter(source="outlook").count() == 0  # never a duplicate


def test_realtime_the_products_cancel_needs_no_action(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    before = WebhookNotification.objects.filter(mailbox=ATLAS).order_by("-id").values_list("id", flat=True).first() or 0
    mail.outbox.clear()
    services.reservation_cancel(actor=alice, reservation=r, reason="Not needed")
    wait_for(lambda: room_gone(room_organizes, r), message="the product cancels the room's meeting")
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ATLAS, id__gt=before).exists() and pulled(), message="the removal pulled")
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, "Not needed")
    assert not RoomEvent.objects.filter(mailbox=ATLAS, event_id=r.event_id, removed_at__isnull=True).exists()
    assert Reservation.objects.filter(source="outlook").count() == 0


def test_nightly_the_products_cancel_needs_no_action(room_organizes, alice, atlas):
    r = room_booking(alice, atlas, days_ahead(3, 9))
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, event_id=r.event_id).exists() and pulled(), message="seen once")
    not_connected()
    services.reservation_cancel(actor=alice, reservation=r, reason="Not needed")
    wait_for(lambda: room_gone(room_organizes, r), message="the product cancels the room's meeting")
    mail.outbox.clear()
    stats = run_nightly()
    assert stats.get("cancelled", 0) == 0 and stats.get("created", 0) == 0, stats
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, "Not needed") and mail.outbox == []
