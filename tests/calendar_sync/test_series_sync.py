"""Recurring reservations against the emulator: the room's answer to the series reaches
every occurrence, a series change carries its attendees, and cancelling the rest of a
series that has already begun ends the Outlook series instead of wiping its past."""

import datetime as dt

import pytest

from calendar_sync.outbound import confirm
from graph_emulator.model import instances
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from reservations.recurrence import Recurrence
from tests.calendar_sync.test_push_emulator import (
    ALICE,
    answers,
    meetings,
    on_the_room_calendar,
    remove_everywhere,
)
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ATLAS = "atlas@contoso.example"


def book_series(capture, *, actor, room, start, count=3, subject="Weekly", **kw):
    with capture(execute=True):
        first = services.reservation_create(
            actor=actor, room=room, start=start, end=start + dt.timedelta(hours=1), subject=subject,
            recurrence=Recurrence(frequency="weekly", interval=1, count=count), **kw,
        )
    series = first.series
    series.refresh_from_db()
    return series


def occurrences(series):
    return list(series.occurrences.order_by("start"))


def outlook_booking(emulator, emulator_server, who: str, start: dt.datetime, room: str = ATLAS):
    """Someone books ``room`` in Outlook (the room has its copy) and the product hasn't heard of it yet."""
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    created = emulator.create_event_as(who, {
        "subject": "Outlook booking",
        "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (utc + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
    })
    on_the_room_calendar(emulator_server, room, created["iCalUId"])


# --- 1. the room's answer to a series confirms or rejects its occurrences ---------------------------


def test_the_rooms_acceptance_of_the_series_confirms_every_occurrence(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(7, 9))
    rows = occurrences(series)
    assert {r.state for r in rows} == {State.AWAITING_CONFIRMATION}
    assert not any(r.event_id for r in rows)  # occurrences carry no id of their own: the master has it
    assert confirm.pending_answers() == 3

    answers(rows[0])

    assert {r.state for r in occurrences(series)} == {State.CONFIRMED}
    assert confirm.pending_answers() == 0


def test_the_rooms_refusal_of_the_series_rejects_every_occurrence(provider, mode, emulator, emulator_server, alice, bob, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(8, 9)
    outlook_booking(emulator, emulator_server, "bob@contoso.example", start + dt.timedelta(days=7))  # the second week is taken
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start)

    answers(occurrences(series)[0])

    rows = occurrences(series)
    assert {r.state for r in rows} == {State.REJECTED}
    assert all("declined" in r.state_reason for r in rows)


def test_the_ten_minute_check_finds_a_series_on_the_room_calendar(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(9, 9), count=2)
    on_the_room_calendar(emulator_server, ATLAS, series.ical_uid)  # the attendant has answered on the room's calendar

    counts = confirm.check_room_calendars()

    assert counts["checked"] == 2 and counts["conflicted"] == 0
    assert {r.state for r in occurrences(series)} == {State.CONFIRMED}


def test_the_ten_minute_check_marks_the_occurrences_of_a_vanished_series_conflicted(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.set_auto_accept(ATLAS, False)  # the room doesn't answer
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(9, 11), count=2)

    remove_everywhere(emulator_server, series.ical_uid)
    counts = confirm.check_room_calendars()

    assert counts["conflicted"] == 2
    assert {r.state for r in occurrences(series)} == {State.CONFLICTED}


def last_series_event(series) -> SyncEvent:
    return SyncEvent.objects.filter(series=series).order_by("-pk").first()


def master_of(srv, series):
    [master] = [m for m in meetings(srv, series.mailbox) if m.id == series.event_id]
    return master


# --- 2. series changes and cancels ---------------------------------------------------------------


def test_a_series_wide_attendee_change_reaches_the_series_master(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(10, 9),
                         attendees=[{"email": "bob@contoso.example"}])
    answers(occurrences(series)[0])
    first = occurrences(series)[0]

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_update(actor=alice, reservation=first, scope="series",
                                    attendees=[{"email": "carol@contoso.example"}], body="New agenda")

    assert last_series_event(series).state == SyncEvent.State.PROCESSED, last_series_event(series).error
    series.refresh_from_db()
    master = master_of(emulator_server, series)
    invited = {(a["emailAddress"]["address"], a["type"]) for a in master.attendees}
    assert invited == {(ATLAS, "resource"), ("carol@contoso.example", "required")}
    assert "New agenda" in master.body["content"]
    assert master.organizer["address"] == ALICE


def test_cancelling_a_series_that_has_not_begun_cancels_the_meeting(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(11, 9))
    answers(occurrences(series)[0])

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=occurrences(series)[0], scope="series", reason="Project ended")

    assert last_series_event(series).state == SyncEvent.State.PROCESSED
    assert [e["path"].rsplit("/", 1)[-1] for e in emulator.request_log()["entries"] if e["method"] == "POST"][-1] == "cancel"
    assert meetings(emulator_server, ALICE) == []
    assert meetings(emulator_server, ATLAS) == []


def test_cancelling_the_rest_of_a_series_that_has_begun_ends_it_and_keeps_its_past(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    mode("Normal")
    start = days_ahead(12, 9)
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_create(
            actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Daily stand-up",
            recurrence=Recurrence(frequency="daily", interval=1, count=4),
        )
    series = Reservation.objects.get(start=start).series
    answers(occurrences(series)[0])
    # The first two have happened by the time the series is cancelled.
    rows = occurrences(series)
    monkeypatch.setattr(services.clock, "now", lambda: rows[1].end + dt.timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = services.reservation_cancel(actor=alice, reservation=rows[3], scope="series")

    assert sorted(r.pk for r in cancelled) == [rows[2].pk, rows[3].pk]
    event = last_series_event(series)
    assert event.state == SyncEvent.State.PROCESSED, event.error
    log = emulator.request_log()["entries"]
    assert not [e for e in log if e["method"] == "POST" and e["path"].endswith("/cancel")]
    series.refresh_from_db()
    master = master_of(emulator_server, series)  # still there: the past stays on people's calendars
    local_day_of_second = rows[1].start.astimezone(atlas.building.tzinfo).date()
    assert master.recurrence["range"]["type"] == "endDate"
    assert master.recurrence["range"]["endDate"] == local_day_of_second.isoformat()
    assert master.recurrence["pattern"]["type"] == "daily"
    window = (rows[0].start - dt.timedelta(days=1), rows[3].end + dt.timedelta(days=1))
    assert [i.start for i in instances(master, *window)] == [rows[0].start, rows[1].start]
