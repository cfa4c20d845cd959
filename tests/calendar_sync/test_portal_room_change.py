"""Moving a reservation to another room from the portal's Change form, against the emulator
(SPEC §3): the meeting is kept and its room swapped, or, where rooms organize their own
meetings, the old room's meeting is cancelled and the new room organizes a new one."""


import pytest
from django.urls import reverse

from reservations.models import State
from tests.booking import book
from tests.calendar_sync.test_push_emulator import ALICE, ORGANIZER, answers, meetings
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_portal(client, alice):
    client.force_login(alice)
    return client


def move(portal, capture, r, room):
    start = r.start.astimezone(room.building.tzinfo)
    data = {"subject": r.subject, "date": start.date().isoformat(), "start_time": start.strftime("%H:%M"),
            "end_time": r.end.astimezone(room.building.tzinfo).strftime("%H:%M"), "room": room.pk}
    with capture(execute=True):
        response = portal.post(reverse("portal:change", args=[r.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    r.refresh_from_db()
    return r


def test_moving_keeps_the_organizers_meeting_and_swaps_the_room(provider, mode, emulator, emulator_server, alice, alice_portal, atlas, borealis, django_capture_on_commit_callbacks):
    mode("Strict")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 10)))
    event_id = r.event_id

    r = answers(move(alice_portal, django_capture_on_commit_callbacks, r, borealis))

    assert r.room == borealis and r.event_id == event_id and r.state == State.CONFIRMED
    [meeting] = meetings(emulator_server, ORGANIZER)
    assert {a["emailAddress"]["address"] for a in meeting.attendees} == {"borealis@contoso.example", ALICE}
    assert meetings(emulator_server, "atlas@contoso.example") == []


def test_where_rooms_organize_moving_recreates_the_meeting_in_the_new_room(provider, mode, emulator, emulator_server, alice, alice_portal, atlas, borealis, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 14))
    old_id = r.event_id
    html = alice_portal.get(reverse("portal:change", args=[r.pk])).content.decode()
    assert "cancels this meeting and that room sends everyone a new invitation" in html

    r = move(alice_portal, django_capture_on_commit_callbacks, r, borealis)

    assert r.event_id != old_id and r.organizer == "borealis@contoso.example" and r.state == State.CONFIRMED
    assert meetings(emulator_server, "atlas@contoso.example") == []
    [new] = meetings(emulator_server, "borealis@contoso.example")
    assert new.id == r.event_id
