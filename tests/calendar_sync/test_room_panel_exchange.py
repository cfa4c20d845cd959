"""The room panel's buttons reach Exchange (issue 15 item 3): book now, extend and end early
go through the portal's services with source ``room_panel``, and the push writes the result
to the emulator over HTTPS with real MSAL — the room's calendar and the organizer's copy show
the new, extended or shortened meeting. A meeting made in Outlook can't be shortened by the
product (SPEC §3): ending it early has the room decline it."""

import datetime as dt

import pytest
from django.utils import timezone

from reservations import services
from reservations.models import Origin, Reservation, Source, State, SyncMailbox
from tests.booking import book
from tests.calendar_sync.test_push_emulator import answers, meetings, on_the_room_calendar
from tests.reservations.test_room_panel import panel_client, post_action
from workplace.panels import room_panel_create

pytestmark = pytest.mark.django_db

ATLAS = "atlas@contoso.example"
ORGANIZER = "reservations@contoso.example"


def minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.fixture
def atlas_panel(atlas):
    panel, token = room_panel_create(room=atlas, name="Atlas door")
    return panel, token


def test_book_now_makes_a_meeting_the_organizer_account_organizes_and_the_room_accepts(provider, mode, emulator, emulator_server, atlas, atlas_panel, client, django_capture_on_commit_callbacks):
    mode("Normal")
    panel, token = atlas_panel
    panel_client(client, token)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, "book", minutes=30)
    assert response.status_code == 200, response.json()
    r = Reservation.objects.get(room=atlas)
    assert (r.source, r.requested_by, r.requested_for) == (Source.ROOM_PANEL, panel.user, panel.user)
    assert r.end - r.start == dt.timedelta(minutes=30) and r.start == minute(r.start)
    # The panel is no person with a mailbox: the organizer account organizes (mailbox "other").
    assert (r.mailbox, r.sync_mailbox) == (ORGANIZER, SyncMailbox.OTHER)
    [organizer_copy] = meetings(emulator_server, ORGANIZER)
    assert organizer_copy.id == r.event_id and organizer_copy.end - organizer_copy.start == dt.timedelta(minutes=30)
    assert answers(r).state == State.CONFIRMED
    [room_copy] = meetings(emulator_server, ATLAS)
    assert room_copy.ical_uid == r.ical_uid and (room_copy.start, room_copy.end) == (r.start, r.end)
    state = response.json()["state"]
    assert state["status"] == "busy" and state["current"]["id"] == r.pk and state["current"]["title"] == "Booked"


def test_extend_moves_the_end_in_exchange_up_to_the_next_booking(provider, mode, emulator, emulator_server, alice, atlas, atlas_panel, client, django_capture_on_commit_callbacks):
    mode("Normal")
    _, token = atlas_panel
    start = minute(timezone.now())
    r = answers(book(actor=alice, room=atlas, start=start, end=start + dt.timedelta(minutes=30), capture_on_commit=django_capture_on_commit_callbacks))
    later = answers(book(actor=alice, room=atlas, start=start + dt.timedelta(minutes=45), hours=0.5, subject="Later",
                         capture_on_commit=django_capture_on_commit_callbacks))
    panel_client(client, token)
    assert client.get("/panel/state/").json()["actions"]["extend"] == [
        {"minutes": 15, "until": timezone.localtime(later.start, atlas.building.tzinfo).strftime("%H:%M")},
    ]  # +30 would run into "Later": the panel offers up to it, once
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, "extend", reservation=r.pk, minutes=30)
    assert response.status_code == 200, response.json()
    r.refresh_from_db()
    assert r.end == later.start  # capped at the next booking
    # Normal mode: alice organizes in her own calendar; her copy and the room's show the new end.
    organizer_copy = next(m for m in meetings(emulator_server, "alice@contoso.example") if m.id == r.event_id)
    assert organizer_copy.end == later.start
    room_copy = next(m for m in meetings(emulator_server, ATLAS) if m.ical_uid == r.ical_uid)
    assert room_copy.end == later.start
    assert r.sync_events.order_by("-pk").first().details["source"] == Source.ROOM_PANEL


def test_end_early_shortens_the_meeting_in_exchange_and_frees_the_room(provider, mode, emulator, emulator_server, alice, atlas, atlas_panel, client, django_capture_on_commit_callbacks):
    mode("Strict")  # the organizer account organizes: mailbox "other", which Strict mode lets the panel change
    _, token = atlas_panel
    start = minute(timezone.now()) - dt.timedelta(minutes=1)
    r = answers(book(actor=alice, room=atlas, start=start + dt.timedelta(minutes=1), hours=1, capture_on_commit=django_capture_on_commit_callbacks))
    panel_client(client, token)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, "end", reservation=r.pk)
    assert response.status_code == 200, response.json()
    r.refresh_from_db()
    assert r.state in (State.CONFIRMED, State.AWAITING_CONFIRMATION) and r.end - r.start == dt.timedelta(minutes=5)  # the minimum length
    organizer_copy = next(m for m in meetings(emulator_server, ORGANIZER) if m.id == r.event_id)
    assert organizer_copy.end == r.end
    room_copy = next(m for m in meetings(emulator_server, ATLAS) if m.ical_uid == r.ical_uid)
    assert room_copy.end == r.end
    # The rest of the hour is free again: someone else can book it at once.
    after = book(actor=alice, room=atlas, start=r.end, end=r.start + dt.timedelta(hours=1), subject="Next")
    assert after.state == State.AWAITING_CONFIRMATION


def test_an_outlook_meeting_can_not_be_shortened_so_ending_it_early_has_the_room_decline_it(provider, mode, emulator, emulator_server, bob, atlas, atlas_panel, client, django_capture_on_commit_callbacks):
    mode("Normal")
    _, token = atlas_panel
    start = minute(timezone.now())
    end = start + dt.timedelta(hours=1)
    created = emulator.create_event_as("bob@contoso.example", {
        "subject": "Bob's Outlook meeting",
        "start": {"dateTime": start.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": end.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
    })
    [copy] = on_the_room_calendar(emulator_server, ATLAS, created["iCalUId"])
    # What inbound sync makes of the room's copy (tests/calendar_sync/test_room_calendar.py covers that part).
    r = services.reservation_create(
        actor=None, room=atlas, start=start, end=end, subject="Bob's Outlook meeting", requested_for=bob, source="outlook",
        from_exchange=True,
        exchange=services.ExchangeIds(event_id=copy.id, change_key=copy.change_key, ical_uid=copy.ical_uid, mailbox=ATLAS,
                                      organizer="bob@contoso.example", sync_mailbox="other"),
    )
    assert r.origin == Origin.EXCHANGE
    panel_client(client, token)
    actions = client.get("/panel/state/").json()["actions"]
    assert actions["extend"] == [] and "created in Outlook" in actions["extend_reason"]
    assert actions["end_early"] is True and "room decline" in actions["end_early_note"]
    response = post_action(client, "extend", reservation=r.pk, minutes=15)
    assert response.status_code == 409 and response.json()["code"] == "outlook_origin_edit"
    r.refresh_from_db()
    assert r.end == start + dt.timedelta(hours=1)  # nothing changed
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, "end", reservation=r.pk)
    assert response.status_code == 200, response.json()
    r.refresh_from_db()
    assert r.state == State.CANCELLED and r.state_reason == "Ended early at the room panel."
    assert r.sync_events.order_by("-pk").first().type == "delete"
    [organizer_copy] = meetings(emulator_server, "bob@contoso.example")
    assert organizer_copy.id == created["id"] and not organizer_copy.is_cancelled  # still on Bob's calendar
    assert [a["status"]["response"] for a in organizer_copy.attendees] == ["declined"]  # the room declined: Bob is told


def test_personal_mode_refuses_changing_a_meeting_in_someones_own_calendar_from_the_panel(provider, mode, emulator, alice, atlas, atlas_panel, client, django_capture_on_commit_callbacks):
    mode("Normal")  # booked in Normal mode: alice's own calendar (mailbox "user")
    _, token = atlas_panel
    start = minute(timezone.now())
    r = answers(book(actor=alice, room=atlas, start=start, hours=1, capture_on_commit=django_capture_on_commit_callbacks))
    assert r.sync_mailbox == SyncMailbox.USER
    mode("Personal")
    panel_client(client, token)
    actions = client.get("/panel/state/").json()["actions"]
    assert actions["extend"] == [] and "at a room panel" in actions["extend_reason"]
    assert actions["end_early"] is False and "at a room panel" in actions["end_early_reason"]
    response = post_action(client, "end", reservation=r.pk)
    assert response.status_code == 403 and response.json()["code"] == "personal_channel"
    r.refresh_from_db()
    assert r.end == start + dt.timedelta(hours=1)
