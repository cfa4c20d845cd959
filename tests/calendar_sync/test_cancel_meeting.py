""""Also cancel the meeting on people's calendars" (SPEC §3), against the emulator.

Unticked, the meeting stays on people's calendars and only the room is released: the
room leaves the attendees and the location. Meetings the room organizes are cancelled,
and meetings created in Outlook are declined by the room, whatever was chosen (the
portal doesn't offer the choice there)."""

import datetime as dt

import pytest
from django.urls import reverse

from calendar_sync.inbound import delta
from calendar_sync.models import RoomEvent
from graph_emulator.model import instances
from reservations import services
from reservations.models import Origin, Reservation, State, SyncEvent
from reservations.recurrence import Recurrence
from tests.booking import book
from tests.calendar_sync.test_push_emulator import ALICE, answers, meetings, on_the_room_calendar
from tests.calendar_sync.test_series_time_change import (
    assert_pull_changes_nothing,
    book_series,
    occurrences,
    pull_room,
)
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db

ATLAS = "atlas@contoso.example"


def graph_writes(emulator) -> list[str]:
    """The last path segment of each write Graph carried out ("cancel", "decline", an event id...)."""
    return [e["path"].rsplit("/", 1)[-1] for e in emulator.request_log()["entries"]
            if e["method"] in ("POST", "PATCH") and e["status"] < 400 and not e["path"].endswith("/token")]


def without_the_room(meeting) -> bool:
    return (ATLAS not in [a["emailAddress"]["address"] for a in meeting.attendees]
            and not (meeting.location or {}).get("displayName") and not meeting.locations)


def test_unticked_the_meeting_stays_on_peoples_calendars_and_only_the_room_is_released(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 10),
                     attendees=[{"email": "bob@contoso.example"}]))
    assert len(meetings(emulator_server, ATLAS)) == 1
    emulator.clear_request_log()

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=r, cancel_meeting=False)

    r.refresh_from_db()
    event = r.sync_events.order_by("-pk").first()
    assert event.details["cancel_meeting"] is False and event.state == SyncEvent.State.PROCESSED, event.error
    assert r.state == State.CANCELLED
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.id == r.event_id and without_the_room(meeting)
    assert [a["emailAddress"]["address"] for a in meeting.attendees] == ["bob@contoso.example"]
    [bobs] = meetings(emulator_server, "bob@contoso.example")  # still on bob's calendar
    assert not bobs.is_cancelled
    wait_for(lambda: meetings(emulator_server, ATLAS) == [], message="the room free again")  # the room is free again
    assert graph_writes(emulator) == [r.event_id]  # one PATCH, no cancel


def test_ticked_or_by_default_the_meeting_is_cancelled(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 13)))
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=r)
    assert r.sync_events.order_by("-pk").first().details["cancel_meeting"] is True
    assert meetings(emulator_server, ALICE) == []
    assert graph_writes(emulator)[-1] == "cancel"


def test_a_meeting_the_room_organizes_is_cancelled_whatever_was_chosen(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 15))
    assert r.organizer == ATLAS

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=r, cancel_meeting=False)

    assert meetings(emulator_server, ATLAS) == []
    assert graph_writes(emulator)[-1] == "cancel"


def test_a_meeting_created_in_outlook_is_declined_by_the_room_whatever_was_chosen(provider, mode, emulator, emulator_server, alice, bob, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(4, 11)
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    created = emulator.create_event_as("bob@contoso.example", {
        "subject": "Bob's Outlook meeting", "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (utc + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
    })
    [copy] = on_the_room_calendar(emulator_server, ATLAS, created["iCalUId"])
    assert [c.id for c in meetings(emulator_server, ATLAS)] == [copy.id]
    r = services.reservation_create(
        actor=None, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Bob's Outlook meeting",
        requested_for=bob, source="outlook", from_exchange=True,
        exchange=services.ExchangeIds(event_id=copy.id, change_key=copy.change_key, ical_uid=copy.ical_uid, mailbox=ATLAS,
                                      organizer="bob@contoso.example", sync_mailbox="other"),
    )
    assert r.origin == Origin.EXCHANGE

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=bob, reservation=r, cancel_meeting=False)

    assert graph_writes(emulator)[-1] == "decline"
    [organizer_copy] = meetings(emulator_server, "bob@contoso.example")
    assert [a["status"]["response"] for a in organizer_copy.attendees] == ["declined"]


def test_unticked_for_a_series_the_series_stays_without_the_room(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(7, 9)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                            recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    series = first.series
    answers(first)
    emulator.clear_request_log()

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=first, scope="series", cancel_meeting=False)

    series.refresh_from_db()
    assert {r.state for r in series.occurrences.all()} == {State.CANCELLED}
    [master] = meetings(emulator_server, ALICE)
    assert master.id == series.event_id and master.recurrence and without_the_room(master)
    assert graph_writes(emulator) == [series.event_id]


def test_unticked_for_one_occurrence_only_that_occurrence_loses_the_room(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(7, 14)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                            recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    series = first.series
    answers(first)
    second = series.occurrences.order_by("start")[1]

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=second, cancel_meeting=False)

    second.refresh_from_db()
    event = second.sync_events.order_by("-pk").first()
    assert event.state == SyncEvent.State.PROCESSED, event.error
    assert "released_room_of_occurrence" in event.response
    [master] = meetings(emulator_server, ALICE)
    assert master.cancelled_dates == []  # the occurrence is still on people's calendars
    [override] = master.exceptions.values()
    assert ATLAS not in [a["emailAddress"]["address"] for a in override["attendees"]]
    assert ATLAS in [a["emailAddress"]["address"] for a in master.attendees]  # the other occurrences keep it
    kept = [r.start for r in series.occurrences.order_by("start") if r.pk != second.pk]
    wait_for(lambda: [start for start, _room in occurrence_views(emulator_server, ATLAS, master.ical_uid)] == kept, timeout=5,
             message="the room's calendar frees that occurrence alone")


# --- through the portal's cancel dialogs -----------------------------------------------------------


@pytest.fixture
def alice_portal(client, alice):
    client.force_login(alice)
    return client


def test_the_portal_dialog_unticked_keeps_the_meeting_and_releases_the_room(provider, mode, emulator, emulator_server, alice, alice_portal, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(5, 10)))
    html = alice_portal.get(reverse("portal:cancel", args=[r.pk])).content.decode()
    assert 'name="cancel_meeting"' in html

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_portal.post(reverse("portal:cancel", args=[r.pk]), {"reason": "Room not needed"})  # box unticked
    assert response.status_code == 302

    r.refresh_from_db()
    assert r.state == State.CANCELLED
    [meeting] = meetings(emulator_server, ALICE)
    assert without_the_room(meeting)


def test_the_portal_multi_select_dialog_passes_the_choice(provider, mode, emulator, emulator_server, alice, alice_portal, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    kept = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(5, 13)))
    also = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(5, 15)))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_portal.post(reverse("portal:cancel_selected"), {"ids": [kept.pk, also.pk], "confirm": "1"})
    assert response.status_code == 302

    assert {r.state for r in Reservation.objects.filter(pk__in=[kept.pk, also.pk])} == {State.CANCELLED}
    remaining = meetings(emulator_server, ALICE)
    assert len(remaining) == 2 and all(without_the_room(m) for m in remaining)


def test_where_the_portal_does_not_offer_the_choice_the_meeting_is_cancelled(provider, mode, emulator, emulator_server, alice, alice_portal, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(5, 16))
    html = alice_portal.get(reverse("portal:cancel", args=[r.pk])).content.decode()
    assert 'name="cancel_meeting"' not in html

    with django_capture_on_commit_callbacks(execute=True):
        alice_portal.post(reverse("portal:cancel", args=[r.pk]), {})

    assert r.sync_events.order_by("-pk").first().details["cancel_meeting"] is True
    assert meetings(emulator_server, ATLAS) == []


# --- the REST API: the same choice, and a clear refusal where it can't be honoured ----------


def test_the_api_cancel_with_cancel_meeting_false_keeps_the_meeting_and_releases_the_room(provider, mode, emulator, emulator_server, alice, alice_api, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(6, 10)))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(f"/api/v1/reservations/{r.pk}/cancel/", {"cancel_meeting": False, "reason": "Room not needed"}, format="json")
    assert response.status_code == 200, response.content
    assert [row["state"] for row in response.json()["cancelled"]] == ["cancelled"]

    event = r.sync_events.order_by("-pk").first()
    assert event.details["cancel_meeting"] is False and event.state == SyncEvent.State.PROCESSED, event.error
    [meeting] = meetings(emulator_server, ALICE)
    assert without_the_room(meeting) and not meeting.is_cancelled


def test_the_api_bulk_cancel_passes_the_choice(provider, mode, emulator, emulator_server, alice, alice_api, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    one = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(6, 13)))
    two = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(6, 15)))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post("/api/v1/reservations/cancel/", {"ids": [one.pk, two.pk], "cancel_meeting": False}, format="json")
    assert response.status_code == 200, response.content

    remaining = meetings(emulator_server, ALICE)
    assert len(remaining) == 2 and all(without_the_room(m) for m in remaining)


def test_the_api_refuses_to_keep_a_meeting_the_room_organizes_and_changes_nothing(provider, mode, emulator, emulator_server, alice, alice_api, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(6, 16))
    events_before = r.sync_events.count()

    response = alice_api.post(f"/api/v1/reservations/{r.pk}/cancel/", {"cancel_meeting": False}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert "can't be kept" in body["message"] and "cancel_meeting" in body["extra"]
    r.refresh_from_db()
    assert r.state in (State.CONFIRMED, State.AWAITING_CONFIRMATION) and r.sync_events.count() == events_before
    assert len(meetings(emulator_server, ATLAS)) == 1

    # Sent as true (or left out), the cancel goes through and the meeting is cancelled.
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(f"/api/v1/reservations/{r.pk}/cancel/", {"cancel_meeting": True}, format="json")
    assert response.status_code == 200, response.content
    assert meetings(emulator_server, ATLAS) == []


def test_the_api_rejects_a_cancel_meeting_that_is_not_a_boolean(alice, alice_api, atlas):
    r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(7, 9), end=days_ahead(7, 10), subject="x")
    response = alice_api.post(f"/api/v1/reservations/{r.pk}/cancel/", {"cancel_meeting": "perhaps"}, format="json")
    assert response.status_code == 400 and "cancel_meeting" in response.json()["extra"]
    r.refresh_from_db()
    assert r.state != State.CANCELLED


# --- the rest of a series that has begun: the room leaves only the cancelled occurrences ---------


ORGANIZER = "reservations@contoso.example"


def occurrence_views(emulator_server, mailbox: str, ical_uid: str) -> list[tuple[dt.datetime, bool]]:
    """(start, has the room) of each occurrence of the meeting ``ical_uid`` in ``mailbox``'s
    calendar: the room among the occurrence's own attendees and in its location."""
    [master] = [m for m in meetings(emulator_server, mailbox) if m.ical_uid == ical_uid]
    out = []
    for inst in instances(master, master.start - dt.timedelta(days=1), master.start + dt.timedelta(days=120)):
        override = inst.override or {}
        attendees = [a["emailAddress"]["address"] for a in override.get("attendees", master.attendees)]
        location = override.get("location", master.location) or {}
        in_attendees, in_location = ATLAS in attendees, location.get("displayName") == "Atlas"
        assert in_attendees == in_location, (mailbox, inst.start, attendees, location)
        out.append((inst.start, in_attendees))
    return out


@pytest.mark.parametrize("sync_mode", ["Normal", "Strict"])
def test_the_api_cancelling_the_rest_of_a_begun_series_with_cancel_meeting_false_releases_only_the_coming_occurrences(
        sync_mode, provider, mode, emulator, emulator_server, alice, bob, alice_api, atlas, django_capture_on_commit_callbacks, monkeypatch, mailoutbox):
    mode(sync_mode)
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(8, 10),
                         recurrence=Recurrence(frequency="weekly", interval=1, count=4))
    with django_capture_on_commit_callbacks(execute=True):  # bob is invited to the whole series
        services.reservation_update(actor=alice, reservation=occurrences(series)[0], scope="series", attendees=[{"email": "bob@contoso.example"}])
    rows = occurrences(series)
    assert {r.state for r in rows} == {State.CONFIRMED}
    organizer = series.organizer or ALICE
    assert organizer == (ALICE if sync_mode == "Normal" else ORGANIZER)
    pull_room()  # the room's copies are known (and linked) before the cancel
    assert RoomEvent.objects.filter(mailbox=ATLAS, reservation__in=rows[2:]).count() == 2
    # The first two are over when the rest is cancelled.
    monkeypatch.setattr(services.clock, "now", lambda: rows[1].end + dt.timedelta(minutes=5))
    emulator.clear_request_log()
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(f"/api/v1/reservations/{rows[2].pk}/cancel/",
                                  {"scope": "series", "cancel_meeting": False, "reason": "Project over"}, format="json")

    assert response.status_code == 200, response.content
    assert sorted(row["id"] for row in response.json()["cancelled"]) == [rows[2].pk, rows[3].pk]
    # The database: what is over stays, the rest is cancelled by one series event.
    after = {r.pk: r for r in occurrences(series)}
    assert [after[r.pk].state for r in rows] == [State.CONFIRMED, State.CONFIRMED, State.CANCELLED, State.CANCELLED]
    [event] = SyncEvent.objects.filter(type=SyncEvent.Type.DELETE)
    assert (event.series_id, event.reservation_id, event.state) == (series.pk, None, SyncEvent.State.PROCESSED), event.error
    # The meeting stays on people's calendars for every occurrence; the room only on those that are over.
    expected = [(rows[0].start, True), (rows[1].start, True), (rows[2].start, False), (rows[3].start, False)]
    assert occurrence_views(emulator_server, organizer, series.ical_uid) == expected
    for attendee in sorted({ALICE, "bob@contoso.example"} - {organizer}):
        wait_for(lambda who=attendee: occurrence_views(emulator_server, who, series.ical_uid) == expected, timeout=5,
                 message=f"{attendee}'s calendar")
    # The room's calendar: the occurrences that are over, none of the coming ones.
    wait_for(lambda: occurrence_views(emulator_server, ATLAS, series.ical_uid) == expected[:2], timeout=5, message="the room's calendar")

    assert event.details["cancel_meeting"] is False and len(event.response["released_room_of_occurrences"]) == 2
    released = [after[rows[2].pk].event_id, after[rows[3].pk].event_id]
    assert event.response["released_room_of_occurrences"] == released and series.event_id not in released
    assert all(after[r.pk].change_key for r in rows[2:])  # each occurrence's own id and change key are stored
    # Exchange: each cancelled occurrence was patched alone; no cancel, nothing written to the master.
    writes = graph_writes(emulator)
    assert set(writes) == set(released) and "cancel" not in writes and series.event_id not in writes

    # Inbound: the room's pulls take the removed occurrences for the product's own cancel; nothing
    # is cancelled again, re-booked or declined, and no one is told twice.
    before = [(r.pk, r.state, r.cancelled_at) for r in occurrences(series)]
    assert_pull_changes_nothing()
    if sync_mode == "Strict":
        stats = dict(delta.pull_mailbox(ORGANIZER, full=True).stats)
        assert not {"cancelled", "deferred"} & stats.keys(), stats
    assert [(r.pk, r.state, r.cancelled_at) for r in occurrences(series)] == before
    assert Reservation.objects.count() == 4
    assert SyncEvent.objects.filter(type=SyncEvent.Type.DELETE).count() == 1
    assert not [m for m in mailoutbox if "cancelled" in m.subject.lower()]


def test_cancelling_a_series_that_has_not_begun_with_cancel_meeting_false_still_patches_the_master_once(
        provider, mode, emulator, emulator_server, alice, alice_api, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(9, 15),
                         recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    rows = occurrences(series)
    emulator.clear_request_log()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(f"/api/v1/reservations/{rows[1].pk}/cancel/", {"scope": "series", "cancel_meeting": False}, format="json")

    assert response.status_code == 200, response.content
    assert {r.state for r in occurrences(series)} == {State.CANCELLED}
    [event] = SyncEvent.objects.filter(type=SyncEvent.Type.DELETE)
    assert event.state == SyncEvent.State.PROCESSED and event.response["released_room"] == series.event_id, event.error
    assert graph_writes(emulator) == [series.event_id]  # one PATCH of the master
    assert occurrence_views(emulator_server, ALICE, series.ical_uid) == [(r.start, False) for r in rows]
    wait_for(lambda: [m for m in meetings(emulator_server, ATLAS) if m.ical_uid == series.ical_uid] == [], timeout=5,
             message="the room's calendar")
