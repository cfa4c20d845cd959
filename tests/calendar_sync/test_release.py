"""The release of no-shows against the emulator (issue 15, item 2): the reservation becomes
``released``, the room is freed in Exchange the way SPEC §3 gives each kind of meeting, the
people are told once, and the slot can be booked again at once.

Each test runs the release job at a chosen "now" past the check-in window (the services take
``now``); the sync push runs after commit, as the worker would."""

import datetime as dt

import pytest
from django.core import mail

from exchange_auth import properties
from graph_emulator.model import instances
from reservations import services
from reservations.models import Origin, Reservation, State, SyncEvent
from reservations.recurrence import Recurrence
from reservations.services import release
from tests.booking import book
from tests.calendar_sync.test_cancel_meeting import graph_writes
from tests.calendar_sync.test_push_emulator import ALICE, answers, meetings, on_the_room_calendar
from tests.calendar_sync.test_series_time_change import book_series, occurrences, pull_room
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ATLAS = "atlas@contoso.example"
BOB = "bob@contoso.example"
WINDOW_CLOSED = dt.timedelta(minutes=16)


@pytest.fixture(autouse=True)
def checkin_atlas(atlas):
    atlas.checkin_required = True
    atlas.save()
    return atlas


def busy(srv, mailbox: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Subjects of the meetings that hold ``mailbox``'s calendar between start and end (the
    emulator's store: series expanded, cancelled occurrences and meetings left out)."""
    return [inst.event.subject for ev in meetings(srv, mailbox) if not ev.is_cancelled
            for inst in instances(ev, start, end) if inst.event.show_as != "free"]


def run_release(capture, at: dt.datetime) -> list[Reservation]:
    with capture(execute=True):
        released = release.release_due(now=at)
    return released


def outlook_meeting(emulator, emulator_server, start, *, recurrence=None, subject="Bob's Outlook meeting"):
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    body = {
        "subject": subject, "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (utc + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
    }
    if recurrence:
        body["recurrence"] = recurrence
    created = emulator.create_event_as(BOB, body)
    on_the_room_calendar(emulator_server, ATLAS, created["iCalUId"])
    return created


def test_a_product_meeting_is_cancelled_the_room_freed_people_told_once_and_the_slot_rebookable(
    provider, mode, emulator, emulator_server, alice, bob, atlas, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(2, 10)
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=bob, room=atlas, start=start, requested_for=alice))
    assert busy(emulator_server, ATLAS, start, start + dt.timedelta(hours=1)) == ["Planning"]
    emulator.clear_request_log()
    mail.outbox.clear()

    [released] = run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED)

    r.refresh_from_db()
    assert released.pk == r.pk and r.state == State.RELEASED and r.released_at == start + WINDOW_CLOSED
    assert r.state_reason == "Released: nobody checked in by 10:15."
    event = r.sync_events.order_by("-pk").first()
    assert event.type == SyncEvent.Type.DELETE and event.state == SyncEvent.State.PROCESSED, event.error
    assert graph_writes(emulator) == ["cancel"]  # one Graph write per release
    assert busy(emulator_server, ATLAS, start, start + dt.timedelta(hours=1)) == []
    assert meetings(emulator_server, ALICE) == []  # the organizer's copy went with the cancel
    [told] = mail.outbox
    assert sorted(told.to) == [ALICE, BOB] and "nobody checked in by 10:15" in told.body and "cancelled" in told.body
    # Idempotent: running again releases nothing and tells nobody twice.
    assert run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED + dt.timedelta(minutes=1)) == []
    assert len(mail.outbox) == 1
    # The slot is bookable at once by someone else.
    again = book(capture_on_commit=django_capture_on_commit_callbacks, actor=bob, room=atlas, start=start, subject="Bob takes it")
    assert answers(again).state == State.CONFIRMED
    assert busy(emulator_server, ATLAS, start, start + dt.timedelta(hours=1)) == ["Bob takes it"]


def test_a_checked_in_meeting_and_a_room_without_required_check_in_are_kept(
    provider, mode, emulator, emulator_server, alice, atlas, dojo, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(2, 12)
    kept = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start))
    services.check_in(kept, actor=alice, channel="portal", now=start + dt.timedelta(minutes=2))
    free_room = book(actor=alice, room=dojo, start=start)
    assert run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED) == []
    assert {r.state for r in Reservation.objects.filter(pk__in=[kept.pk, free_room.pk])} == {State.CONFIRMED}
    # The instance default switched on: Dojo (no setting of its own) now requires check-in.
    properties.set_value(properties.CHECKIN_REQUIRED_DEFAULT, True)
    assert [r.pk for r in run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED)] == [free_room.pk]


def test_a_teams_meeting_stays_on_peoples_calendars_and_only_the_room_leaves_it(
    provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(2, 14)
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start,
                     online_meeting=True, attendees=[{"email": BOB}]))
    emulator.clear_request_log()
    run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED)
    [meeting] = meetings(emulator_server, ALICE)
    assert ATLAS not in [a["emailAddress"]["address"] for a in meeting.attendees] and not meeting.is_cancelled
    assert graph_writes(emulator) == [r.event_id]  # one PATCH
    assert busy(emulator_server, ATLAS, start, start + dt.timedelta(hours=1)) == []


def test_an_outlook_meeting_is_declined_by_the_room_and_the_organizer_sees_it(
    provider, mode, emulator, emulator_server, bob, atlas, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(3, 11)
    outlook_meeting(emulator, emulator_server, start)
    pull_room()
    r = Reservation.objects.get(room=atlas, origin=Origin.EXCHANGE, start=start)
    emulator.clear_request_log()
    mail.outbox.clear()

    run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED)

    r.refresh_from_db()
    assert r.state == State.RELEASED
    assert graph_writes(emulator) == ["decline"]
    assert busy(emulator_server, ATLAS, start, start + dt.timedelta(hours=1)) == []
    [organizer_copy] = meetings(emulator_server, BOB)
    assert [a["status"]["response"] for a in organizer_copy.attendees] == ["declined"]
    [told] = mail.outbox
    assert told.to == [BOB] and "declined this occurrence" in told.body


def test_one_occurrence_of_a_product_series_is_released_the_rest_kept(
    provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(7, 9)
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start,
                         recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    first, second, third = occurrences(series)
    emulator.clear_request_log()

    run_release(django_capture_on_commit_callbacks, first.start + WINDOW_CLOSED)

    assert [r.state for r in occurrences(series)] == [State.RELEASED, State.CONFIRMED, State.CONFIRMED]
    assert graph_writes(emulator)[-1] == "cancel"
    week = dt.timedelta(days=7)
    assert busy(emulator_server, ATLAS, first.start, first.end) == []
    assert busy(emulator_server, ATLAS, second.start, third.end) == ["Team sync", "Team sync"]
    [master] = [m for m in meetings(emulator_server, ALICE) if m.recurrence]
    assert [inst.start for inst in instances(master, first.start - week, third.end + week)] == [second.start, third.start]


def test_one_occurrence_of_an_outlook_series_is_declined_by_the_room_that_day_only(
    provider, mode, emulator, emulator_server, bob, atlas, django_capture_on_commit_callbacks,
):
    mode("Normal")
    start = days_ahead(7, 15)
    local = start.astimezone(dt.UTC)
    day = local.strftime("%A").lower()
    outlook_meeting(emulator, emulator_server, start, subject="Bob's weekly", recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day]},
        "range": {"type": "numbered", "startDate": local.date().isoformat(), "numberOfOccurrences": 3, "recurrenceTimeZone": "UTC"},
    })
    pull_room()
    rows = list(Reservation.objects.filter(room=atlas, origin=Origin.EXCHANGE).order_by("start"))
    assert len(rows) == 3 and rows[0].start == start
    emulator.clear_request_log()

    run_release(django_capture_on_commit_callbacks, start + WINDOW_CLOSED)

    assert [r.state for r in Reservation.objects.filter(pk__in=[r.pk for r in rows]).order_by("start")] == [
        State.RELEASED, State.CONFIRMED, State.CONFIRMED]
    assert graph_writes(emulator) == ["decline"]
    assert busy(emulator_server, ATLAS, rows[0].start, rows[0].end) == []
    assert busy(emulator_server, ATLAS, rows[1].start, rows[2].end) == ["Bob's weekly", "Bob's weekly"]
    # The organizer's series: the room declined that day's occurrence only.
    [master] = [m for m in meetings(emulator_server, BOB) if m.recurrence]
    by_day = {inst.start: inst for inst in instances(master, rows[0].start - dt.timedelta(days=1), rows[2].end)}
    answer = {when: [a["status"]["response"] for a in (inst.override or {}).get("attendees", master.attendees)
                     if a["emailAddress"]["address"] == ATLAS] for when, inst in by_day.items()}
    assert answer[rows[0].start] == ["declined"]
    assert answer[rows[1].start] != ["declined"] and answer[rows[2].start] != ["declined"]


def test_the_third_no_show_of_a_series_asks_once_and_unconfirmed_the_rest_is_freed_in_exchange(
    provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks,
):
    """The series rule against the emulator: three released occurrences in a row → one email to
    the organizer asking to confirm; the deadline passes unconfirmed → every occurrence still to
    come is released and the room's calendar is free for them, the organizer's series too."""
    from reservations.models import ReservationSeries

    mode("Normal")
    series = book_series(django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(7, 9),
                         recurrence=Recurrence(frequency="weekly", interval=1, count=5))
    rows = occurrences(series)
    mail.outbox.clear()
    for row in rows[:3]:
        run_release(django_capture_on_commit_callbacks, row.start + WINDOW_CLOSED)

    asked = [m for m in mail.outbox if m.subject.startswith("Still need")]
    assert len(asked) == 1 and asked[0].to == ["alice@contoso.example"] and "/series/" in asked[0].body
    assert [m.subject for m in mail.outbox if m not in asked] == ["Room released: Team sync"] * 3
    assert [r.state for r in occurrences(series)] == [State.RELEASED] * 3 + [State.CONFIRMED] * 2
    assert busy(emulator_server, ATLAS, rows[3].start, rows[4].end) == ["Team sync", "Team sync"]

    deadline = ReservationSeries.objects.get(pk=series.pk).noshow_confirm_by
    with django_capture_on_commit_callbacks(execute=True):
        done = release.release_unconfirmed_series(now=deadline)
    assert [s.pk for s in done] == [series.pk]
    assert [r.state for r in occurrences(series)] == [State.RELEASED] * 5
    assert busy(emulator_server, ATLAS, rows[0].start, rows[4].end) == []
    week = dt.timedelta(days=7)
    left = [inst.start for m in meetings(emulator_server, ALICE) if m.recurrence and not m.is_cancelled
            for inst in instances(m, rows[0].start - week, rows[4].end + week)]
    assert left == []
