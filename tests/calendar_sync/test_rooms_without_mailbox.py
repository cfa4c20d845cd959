"""Rooms without a mailbox (issue 16 item 2, the Archibus seed "Not using room mailboxes"),
against the emulator over HTTPS with real MSAL: the provider's organizer account organizes
their meetings, the room named in ``location``, the requester an attendee; moving to another
room without a mailbox keeps the meeting, to one with a mailbox follows SPEC §3; the
organizer account's calendar is not watched for them, and portal and API say so."""

import datetime as dt

import pytest
from django.urls import reverse

from calendar_sync.inbound import delta
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import outlook_cancel, outlook_update
from tests.calendar_sync.test_push_emulator import ALICE, ORGANIZER, answers, meetings
from tests.factories import RoomFactory, days_ahead
from tests.waiting import wait_for

ATLAS = "atlas@contoso.example"


@pytest.fixture
def archive(hq):
    """Synced, no mailbox."""
    return RoomFactory(building=hq, name="Archive", capacity=6, sync_enabled=True)


@pytest.fixture
def loft(hq):
    return RoomFactory(building=hq, name="Loft", capacity=10, sync_enabled=True)


def addresses(meeting) -> list[str]:
    return [a["emailAddress"]["address"] for a in meeting.attendees]


def move(r: Reservation, room, capture) -> Reservation:
    with capture(execute=True):
        services.reservation_update(actor=r.requested_by, reservation=r, room=room)
    r.refresh_from_db()
    return r


def check_meeting_in_organizer_account(srv, r: Reservation, room_name: str):
    [meeting] = meetings(srv, ORGANIZER)
    assert meeting.id == r.event_id
    assert meeting.location["displayName"] == room_name and not meeting.location.get("locationEmailAddress")
    assert addresses(meeting) == [ALICE]  # the requester, invited; no room resource
    return meeting


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_the_organizer_accounts_meeting_and_keeps_it_across_rooms_without_a_mailbox(
        provider, mode, emulator, emulator_server, alice, archive, loft, atlas, worker):
    mode("Normal")  # even where employees organize their own meetings
    start = days_ahead(2, 10)
    r = services.reservation_create(actor=alice, room=archive, start=start, end=start + dt.timedelta(hours=1), subject="Archive review")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CONFIRMED and Reservation.objects.get(pk=r.pk).event_id,
             message=lambda: f"the organizer account's meeting {worker.log_path.read_text()[-3000:]}")
    r.refresh_from_db()
    assert (r.organizer, r.mailbox, r.sync_mailbox, r.sync_state) == (ORGANIZER, ORGANIZER, "other", "synced")
    meeting = check_meeting_in_organizer_account(emulator_server, r, "Archive")
    assert meeting.subject == "Archive review"
    [invitation] = meetings(emulator_server, ALICE)  # Alice's copy: she is invited, not the organizer
    assert not invitation.is_organizer and invitation.organizer["address"] == ORGANIZER
    first_id = r.event_id

    services.reservation_update(actor=alice, reservation=r, room=loft)
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="the move pushed")
    r.refresh_from_db()
    assert r.event_id == first_id and r.state == State.CONFIRMED  # the same meeting, its location moved
    check_meeting_in_organizer_account(emulator_server, r, "Loft")

    # To a room with a mailbox, Normal mode: SPEC §3 has Alice organize (the old meeting can't change organizer).
    services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=r.pk), room=atlas)
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CONFIRMED and Reservation.objects.get(pk=r.pk).room_id == atlas.pk
             and not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="the move to Atlas")
    r.refresh_from_db()
    assert meetings(emulator_server, ORGANIZER) == []  # the organizer account's meeting was cancelled
    assert [e.organizer["address"] for e in meetings(emulator_server, ALICE) if not e.is_organizer] == []  # and Alice's copy with it
    [mine] = [e for e in meetings(emulator_server, ALICE) if e.is_organizer]
    assert (mine.id, r.organizer, r.sync_mailbox) == (r.event_id, ALICE, "user") and addresses(mine) == [ATLAS]


@pytest.mark.django_db
def test_strict_mode_moving_to_a_mailbox_room_keeps_the_organizer_accounts_meeting_and_invites_the_room(
        provider, mode, emulator, emulator_server, alice, archive, atlas, django_capture_on_commit_callbacks):
    mode("Strict")  # the organizer account organizes mailbox rooms too: the meeting is kept, the room asked
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=archive, start=days_ahead(3, 9))
    assert r.state == State.CONFIRMED and r.organizer == ORGANIZER
    old_id = r.event_id
    r = answers(move(r, atlas, django_capture_on_commit_callbacks))
    assert (r.event_id, r.state) == (old_id, State.CONFIRMED)
    [meeting] = meetings(emulator_server, ORGANIZER)
    assert set(addresses(meeting)) == {ATLAS, ALICE} and meeting.location["locationEmailAddress"] == ATLAS


@pytest.mark.django_db
def test_where_rooms_organize_moving_to_a_mailbox_room_makes_the_rooms_own_meeting(
        provider, mode, emulator, emulator_server, alice, archive, loft, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=archive, start=days_ahead(3, 14))
    assert r.organizer == ORGANIZER and r.state == State.CONFIRMED  # no mailbox: the organizer account, not the room
    first_id = r.event_id
    r = move(r, loft, django_capture_on_commit_callbacks)
    assert r.event_id == first_id
    check_meeting_in_organizer_account(emulator_server, r, "Loft")

    r = move(r, atlas, django_capture_on_commit_callbacks)
    assert r.organizer == ATLAS and r.event_id != first_id and r.state == State.CONFIRMED
    assert meetings(emulator_server, ORGANIZER) == []
    [new] = meetings(emulator_server, ATLAS)
    assert new.id == r.event_id and addresses(new) == [ALICE]


@pytest.mark.django_db
def test_the_organizer_accounts_calendar_is_not_watched_for_rooms_without_a_mailbox(
        provider, mode, emulator, emulator_server, alice, archive, django_capture_on_commit_callbacks, client):
    mode("Strict")  # the mode whose organizer mailbox inbound sync pulls
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=archive, start=days_ahead(4, 11))
    first = delta.pull_mailbox(ORGANIZER, full=True, nightly=True, wait=30)  # the pull sees the meeting ...
    assert first.events == 1
    outlook_update(provider, ORGANIZER, r.event_id, subject="Renamed in Outlook")
    delta.pull_mailbox(ORGANIZER, wait=30)
    outlook_cancel(provider, ORGANIZER, r.event_id)
    for full in (False, True):  # ... and, real time and nightly, leaves the reservation alone
        result = delta.pull_mailbox(ORGANIZER, full=full, nightly=full, wait=30)
        assert result.stats.get("cancelled", 0) == 0
    r.refresh_from_db()
    assert (r.state, r.subject) == (State.CONFIRMED, "Planning")  # Outlook's changes don't reach the product

    client.force_login(alice)
    page = client.get(reverse("portal:reservation_detail", args=[r.pk])).content.decode()
    assert "Archive has no Exchange mailbox" in page and "Change or cancel this reservation here" in page
    room = client.get(f"/api/v1/rooms/{archive.pk}/").json()
    assert (room["synced"], room["outlook_changes_synced"], room["mailbox"]) == (True, False, "")


@pytest.mark.django_db
def test_a_room_without_a_mailbox_can_be_synced(hq):
    room = RoomFactory.build(building=hq, name="Studio", capacity=4, sync_enabled=True)
    room.full_clean(exclude=["equipment"])
    assert room.is_synced and not room.is_monitored


@pytest.mark.django_db
def test_a_recurring_reservation_on_a_room_without_a_mailbox_is_the_organizer_accounts_series(
        provider, mode, emulator, emulator_server, alice, archive, django_capture_on_commit_callbacks):
    from reservations.recurrence import Recurrence

    mode("Normal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=archive, start=days_ahead(5, 9),
             recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    series = r.series
    series.refresh_from_db()
    assert series.event_id and series.mailbox == ORGANIZER
    [master] = [e for e in meetings(emulator_server, ORGANIZER) if e.recurrence]
    assert master.id == series.event_id and master.location["displayName"] == "Archive" and addresses(master) == [ALICE]
    assert set(series.occurrences.values_list("state", flat=True)) == {State.CONFIRMED}
