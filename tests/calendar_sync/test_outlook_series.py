"""Series made in Outlook become a reservation series (calendar_sync/inbound/outlook_series.py),
against the emulator over HTTPS with real MSAL: the webhook is live (``subscribed``), each pull
reads the room's copies and their masters.

- a weekly series invited from Outlook → one ``ReservationSeries``, an occurrence per meeting,
  shown as a series in the API;
- one occurrence moved / cancelled in Outlook → that reservation alone follows;
- the whole series changed (subject, then the pattern) → the series and every occurrence;
- "this and following" (Outlook ends the series and makes a new one) → the old series ends,
  the new one is a series of its own;
- an occurrence colliding in the product → the room declines that occurrence alone, the rest
  are booked; one colliding in Exchange within the room's conflict allowance → the attendant
  declines it alone (beyond the allowance: the whole series);
- nightly: a series missed by every notification is booked as a series.

The emulator's side of it (per-occurrence answers, time proposals) is in
tests/graph_emulator/test_occurrence_answers.py."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calendar_sync.common.clients import system_client
from exchange_auth.graph import users_path
from reservations import services
from reservations.models import Reservation, ReservationSeries, State, SyncEvent
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    outlook_cancel,
    outlook_meeting,
    room_copies,
    room_response,
    run_nightly,
)
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = "Europe/Berlin"
GRAPH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def local(moment: dt.datetime) -> dict:
    return {"dateTime": moment.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": BERLIN}


def weekly(start: dt.datetime, *, count: int | None = None, until: dt.date | None = None) -> dict:
    rng = {"startDate": start.date().isoformat(), "recurrenceTimeZone": BERLIN}
    rng.update({"type": "numbered", "numberOfOccurrences": count} if count else {"type": "endDate", "endDate": until.isoformat()})
    return {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [GRAPH_DAYS[start.weekday()]], "firstDayOfWeek": "monday"},
            "range": rng}


def outlook_series(emulator, organizer: str, start: dt.datetime, *, count: int = 4, subject: str = "Weekly sync",
                   people: tuple[str, ...] = (ALICE,), rooms: tuple[str, ...] = (ATLAS,)) -> dict:
    """``organizer`` makes a weekly series in Outlook (Berlin time), the rooms invited."""
    attendees = [{"emailAddress": {"address": r}, "type": "resource"} for r in rooms]
    attendees += [{"emailAddress": {"address": p}, "type": "required"} for p in people]
    return emulator.create_event_as(organizer, {
        "subject": subject, "start": local(start), "end": local(start + dt.timedelta(hours=1)), "attendees": attendees,
        "recurrence": weekly(start, count=count),
    })


def occurrences(client, mailbox: str, master_id: str, start: dt.datetime, weeks: int = 10) -> list[dict]:
    """The series' occurrences in ``mailbox`` ("Get an event's instances")."""
    return client.collect(users_path(mailbox, "events", master_id, "instances"), headers={"Prefer": 'outlook.timezone="UTC"'}, params={
        "startDateTime": (start - dt.timedelta(days=1)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (start + dt.timedelta(weeks=weeks)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})


def booked(series: ReservationSeries | None = None, **filters) -> list[Reservation]:
    query = Reservation.objects.filter(source="outlook", state__in=[State.CONFIRMED], **filters)
    if series is not None:
        query = query.filter(series=series)
    return list(query.order_by("start"))


def a_series(count: int) -> ReservationSeries | None:
    for series in ReservationSeries.objects.filter(origin="exchange"):
        if len(booked(series)) == count:
            return series
    return None


def test_a_weekly_series_invited_from_outlook_becomes_one_reservation_series(subscribed, emulator, emulator_server, client, bob, alice, atlas):
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=4)
    series = wait_for(lambda: a_series(4), message="one series of four occurrences")
    assert ReservationSeries.objects.count() == 1
    assert (series.frequency, series.interval, series.weekdays, series.count, series.until) == ("weekly", 1, [start.isoweekday()], 4, None)
    assert (series.first_start, series.first_end, series.timezone, series.subject) == (start, start + dt.timedelta(hours=1), BERLIN, "Weekly sync")
    assert (series.ical_uid, series.event_id, series.mailbox, series.origin) == (master["iCalUId"], room_master_id(emulator_server, master), ATLAS, "exchange")
    rows = booked(series)
    assert [r.start for r in rows] == [start + dt.timedelta(weeks=i) for i in range(4)]
    assert [r.original_start for r in rows] == [r.start for r in rows]
    assert {(r.requested_for, r.room, r.subject) for r in rows} == {(bob, atlas, "Weekly sync")}
    assert all(r.event_id and r.event_id != series.event_id for r in rows)  # each occurrence's own copy
    assert [a.email for a in rows[0].attendees.all()] == [ALICE]
    # The API shows them as a series (the same shape as the product's own series).
    client.force_login(bob)
    body = client.get(f"/api/v1/reservations/{rows[1].pk}/").json()
    assert body["series"] == {"id": series.pk, "frequency": "weekly", "interval": 1, "weekdays": [start.isoweekday()], "until": None, "count": 4, "index": None}
    # ... and the portal's detail page.
    page = client.get(f"/reservations/{rows[1].pk}/").content.decode()
    assert "Recurring reservation" in page and "occurrence 2 of 4" in page


def test_a_monthly_series_on_the_second_tuesday_becomes_one_reservation_series(subscribed, emulator, client, bob, atlas):
    """relativeMonthly (the 2nd Tuesday) is the product's monthly series on a weekday's position."""
    first = dt.date.today().replace(day=1) + dt.timedelta(days=32)
    first = first.replace(day=1)
    tuesday = first + dt.timedelta(days=(1 - first.weekday()) % 7 + 7)  # the 2nd Tuesday of next month
    start = dt.datetime(tuesday.year, tuesday.month, tuesday.day, 10, tzinfo=ZoneInfo(BERLIN))
    emulator.create_event_as(BOB, {
        "subject": "Monthly review", "start": local(start), "end": local(start + dt.timedelta(hours=1)),
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
        "recurrence": {"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
                       "range": {"type": "numbered", "numberOfOccurrences": 3, "startDate": tuesday.isoformat(), "recurrenceTimeZone": BERLIN}},
    })
    series = wait_for(lambda: a_series(3), message="one monthly series of three occurrences")
    assert (series.frequency, series.index, series.weekdays, series.count) == ("monthly", "second", [2], 3)
    rows = booked(series)
    assert all(r.start.astimezone(ZoneInfo(BERLIN)).weekday() == 1 for r in rows)
    assert all(8 <= r.start.astimezone(ZoneInfo(BERLIN)).day <= 14 for r in rows)  # the 2nd one of its month
    client.force_login(bob)
    assert client.get(f"/api/v1/reservations/{rows[0].pk}/").json()["series"]["index"] == "second"


def room_master_id(emulator_server, master) -> str:
    """The id of the room's copy of the series (its master in the room's calendar)."""
    [copy] = [c for c in room_copies(emulator_server, ATLAS) if c.ical_uid == master["iCalUId"]]
    return copy.id


def test_one_occurrence_moved_or_cancelled_in_outlook_changes_that_reservation_alone(subscribed, emulator, provider, bob, atlas):
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=4)
    series = wait_for(lambda: a_series(4), message="the series booked")
    graph = system_client(provider)
    second, third = occurrences(graph, BOB, master["id"], start)[1:3]
    moved_to = start + dt.timedelta(weeks=1, hours=3)
    graph.patch(users_path(BOB, "events", second["id"]), json={"start": local(moved_to), "end": local(moved_to + dt.timedelta(hours=1))})
    graph.post(users_path(BOB, "events", third["id"], "cancel"), json={"Comment": "Holiday"})

    def settled():
        rows = booked(series)
        return rows if [r.start for r in rows] == [start, moved_to, start + dt.timedelta(weeks=3)] else None

    rows = wait_for(settled, message="the moved occurrence follows, the cancelled one is cancelled")
    assert rows[1].original_start == start + dt.timedelta(weeks=1)  # still the pattern's second slot
    cancelled = Reservation.objects.get(series=series, original_start=start + dt.timedelta(weeks=2))
    assert cancelled.state == State.CANCELLED and "cancelled in Outlook" in cancelled.state_reason
    assert ReservationSeries.objects.count() == 1 and series.occurrences.count() == 4


def test_the_whole_series_changed_in_outlook_changes_the_series_and_each_occurrence(subscribed, emulator, provider, bob, atlas):
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=3)
    series = wait_for(lambda: a_series(3), message="the series booked")
    graph = system_client(provider)
    graph.patch(users_path(BOB, "events", master["id"]), json={"subject": "Weekly sync (new name)"})
    wait_for(lambda: {r.subject for r in booked(series)} == {"Weekly sync (new name)"}, message="every occurrence renamed")
    series.refresh_from_db()
    assert series.subject == "Weekly sync (new name)"
    # A time change of the whole series: Exchange regenerates the occurrences an hour later.
    later = start + dt.timedelta(hours=1)
    graph.patch(users_path(BOB, "events", master["id"]), json={"start": local(later), "end": local(later + dt.timedelta(hours=1)),
                                                               "recurrence": weekly(later, count=3)})
    wait_for(lambda: [r.start for r in booked(series)] == [later + dt.timedelta(weeks=i) for i in range(3)], message="the occurrences moved")
    series.refresh_from_db()
    assert (series.first_start, series.count) == (later, 3)
    assert ReservationSeries.objects.count() == 1


def test_this_and_following_ends_the_series_and_makes_a_new_one(subscribed, emulator, provider, bob, atlas):
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=4)
    old = wait_for(lambda: a_series(4), message="the series booked")
    graph = system_client(provider)
    # Outlook's "this and following" from the third occurrence on: the old series ends the day
    # before it, a new series (the new time) starts on it.
    split = start + dt.timedelta(weeks=2)
    graph.patch(users_path(BOB, "events", master["id"]), json={"recurrence": weekly(start, until=(split - dt.timedelta(days=1)).date())})
    new_start = split + dt.timedelta(hours=2)
    outlook_series(emulator, BOB, new_start, count=2, subject="Weekly sync (afternoon)")
    new = wait_for(lambda: ReservationSeries.objects.exclude(pk=old.pk).first() if booked(ReservationSeries.objects.exclude(pk=old.pk).first()) else None,
                   message="the new series booked")
    wait_for(lambda: len(booked(new)) == 2 and len(booked(old)) == 2, message="old series ends, new one booked")
    old.refresh_from_db()
    assert old.until == (split - dt.timedelta(days=1)).date() and old.count is None
    assert [r.start for r in booked(old)] == [start, start + dt.timedelta(weeks=1)]
    assert [r.start for r in booked(new)] == [new_start, new_start + dt.timedelta(weeks=1)]
    assert new.subject == "Weekly sync (afternoon)" and new.count == 2
    assert {r.state for r in old.occurrences.filter(start__gte=split)} == {State.CANCELLED}


def test_an_occurrence_taken_in_the_product_is_declined_alone_the_rest_are_booked(subscribed, emulator, emulator_server, provider, alice, bob, atlas):
    start = days_ahead(3, 10)
    taken = start + dt.timedelta(weeks=2)
    # Booked in the product only: Exchange thinks the room is free, the product's rules decline.
    ReservationFactory(room=atlas, start=taken, end=taken + dt.timedelta(hours=1), requested_for=alice)
    master = outlook_series(emulator, BOB, start, count=4)
    series = wait_for(lambda: a_series(3), message="three occurrences booked")
    assert [r.start for r in booked(series)] == [start, start + dt.timedelta(weeks=1), start + dt.timedelta(weeks=3)]
    graph = system_client(provider)

    def room_answers():
        return [next(a["status"]["response"] for a in o["attendees"] if a["emailAddress"]["address"] == ATLAS)
                for o in occurrences(graph, BOB, master["id"], start)]

    # The organizer sees the room's answer per occurrence: the third declined, the others accepted.
    wait_for(lambda: room_answers() == ["accepted", "accepted", "declined", "accepted"], message="the room declines the third alone")
    room_slots = {(c.start, c.end) for c in room_copies(emulator_server, ATLAS) if c.recurrence}
    assert len(room_slots) == 1  # the room still holds the series
    assert len(occurrences(graph, ATLAS, booked(series)[0].series.event_id, start)) == 3


def test_an_occurrence_taken_in_exchange_within_the_allowance_is_declined_by_the_room_alone(subscribed, emulator, provider, alice, bob, atlas):
    start = days_ahead(3, 10)
    taken = start + dt.timedelta(weeks=1)
    outlook_meeting(emulator, ALICE, [ATLAS], taken, subject="Alice's")
    wait_for(lambda: booked(subject="Alice's"), message="Alice's meeting booked")
    emulator.calendar_processing(ATLAS, ConflictPercentageAllowed=50, MaximumConflictInstances=1)
    master = outlook_series(emulator, BOB, start, count=4)
    series = wait_for(lambda: a_series(3), message="the three free occurrences booked")
    assert [r.start for r in booked(series)] == [start, start + dt.timedelta(weeks=2), start + dt.timedelta(weeks=3)]
    graph = system_client(provider)
    answers = [next(a["status"]["response"] for a in o["attendees"] if a["emailAddress"]["address"] == ATLAS)
               for o in occurrences(graph, BOB, master["id"], start)]
    assert answers == ["accepted", "declined", "accepted", "accepted"]
    assert booked(subject="Alice's")[0].start == taken  # the meeting that was there stays


def test_beyond_the_allowance_the_room_declines_the_whole_series(subscribed, emulator, emulator_server, provider, alice, bob, atlas):
    start = days_ahead(3, 10)
    outlook_meeting(emulator, ALICE, [ATLAS], start + dt.timedelta(weeks=1), subject="Alice's")
    wait_for(lambda: booked(subject="Alice's"), message="Alice's meeting booked")
    # Exchange's default allowance (0 and 0): one conflict declines the series.
    master = outlook_series(emulator, BOB, start, count=4)
    wait_for(lambda: room_response(emulator_server, BOB, master["iCalUId"]) == "declined", message="the series declined")
    assert not ReservationSeries.objects.filter(origin="exchange").exists()
    assert [r.subject for r in booked()] == ["Alice's"]


def test_nightly_books_a_series_missed_by_every_notification(provider, emulator, bob, atlas):
    start = days_ahead(3, 10)
    outlook_series(emulator, BOB, start, count=3)
    stats = run_nightly()
    assert stats["created"] == 3, stats
    [series] = ReservationSeries.objects.all()
    assert [r.start for r in booked(series)] == [start + dt.timedelta(weeks=i) for i in range(3)]
    # A second nightly round changes nothing.
    assert run_nightly()["created"] == 0


def test_a_series_cancelled_in_outlook_cancels_every_occurrence(subscribed, emulator, provider, bob, atlas):
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=3)
    series = wait_for(lambda: a_series(3), message="the series booked")
    outlook_cancel(provider, BOB, master["id"])
    wait_for(lambda: set(series.occurrences.values_list("state", flat=True)) == {State.CANCELLED}, message="every occurrence cancelled")


def test_cancelling_an_outlook_series_in_the_product_makes_the_room_decline_it(subscribed, emulator, emulator_server, provider, bob, atlas):
    """Someone else's meeting: the room declines (the organizer is told), per occurrence when one
    occurrence is cancelled, the whole series when all of it is; nothing of it is cancelled or
    edited in the organizer's calendar by the product."""
    start = days_ahead(3, 10)
    master = outlook_series(emulator, BOB, start, count=3)
    series = wait_for(lambda: a_series(3), message="the series booked")
    graph = system_client(provider)

    def room_answers():
        return [next(a["status"]["response"] for a in o["attendees"] if a["emailAddress"]["address"] == ATLAS)
                for o in occurrences(graph, BOB, master["id"], start)]

    first = booked(series)[0]
    services.reservation_cancel(actor=bob, reservation=first, reason="Not this week")
    wait_for(lambda: room_answers() == ["declined", "accepted", "accepted"], message="the room declines the first occurrence alone")
    services.reservation_cancel(actor=bob, reservation=booked(series)[0], scope="series", reason="Not any more")
    wait_for(lambda: room_response(emulator_server, BOB, master["iCalUId"]) == "declined", message="the room declines the series")
    assert [c for c in room_copies(emulator_server, ATLAS) if c.ical_uid == master["iCalUId"]] == []
    assert len(occurrences(graph, BOB, master["id"], start)) == 3  # the organizer's meeting stands
    assert set(series.occurrences.values_list("state", flat=True)) == {State.CANCELLED}
    assert not SyncEvent.objects.filter(series=series).exclude(state="processed").exists()
