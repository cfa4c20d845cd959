"""Outbound sync against the in-process emulator: real HTTPS, real msal (exchange_auth),
eager Celery. Each test books through the reservation services, as the portal and
the API do, and looks at what Exchange (the emulator) holds afterwards."""

import datetime as dt

import pytest

from calendar_sync.outbound import confirm, worker
from reservations import services
from reservations.models import Origin, Reservation, State, SyncEvent, SyncState
from reservations.recurrence import Recurrence
from tests.booking import book
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
ORGANIZER = "reservations@contoso.example"


# --- helpers ------------------------------------------------------------------------------


def meetings(srv, mailbox: str, *, include_cancelled: bool = False) -> list:
    """Events in ``mailbox`` as the emulator stores them."""

    def read():
        store = srv.store
        user = store.find_user(mailbox)
        events = store.mailboxes[user.id].events.values()
        return [e for e in events if include_cancelled or not e.is_cancelled]

    return srv.call(read)


def change(capture, reservation, *, actor, **kw):
    with capture(execute=True):
        services.reservation_update(actor=actor, reservation=reservation, **kw)
    reservation.refresh_from_db()
    return reservation


def cancel(capture, reservation, *, actor, **kw):
    with capture(execute=True):
        services.reservation_cancel(actor=actor, reservation=reservation, **kw)
    reservation.refresh_from_db()
    return reservation


def remove_everywhere(srv, ical_uid: str) -> None:
    """The meeting vanishes from every mailbox (deleted behind the product's back)."""

    def drop():
        store = srv.store
        for mailbox in store.mailboxes.values():
            for ev in list(mailbox.events.values()):
                if ev.ical_uid == ical_uid:
                    store.remove_event(ev)

    srv.call(drop)


def answers(reservation, timeout: float = 5.0) -> Reservation:
    """Let the room's attendant answer, then read its answer as the worker does."""

    def answered():
        confirm.check_answers()
        reservation.refresh_from_db()
        return reservation.state != State.AWAITING_CONFIRMATION

    wait_for(answered, timeout=timeout, message=lambda: f"the room's answer to {reservation.subject!r}")
    return reservation


def on_the_room_calendar(srv, room: str, ical_uid: str):
    """The room's attendant has written its copy of the meeting (it does so on its own thread)."""
    return wait_for(lambda: [m for m in meetings(srv, room) if m.ical_uid == ical_uid], message=f"{room}'s copy of the meeting")


def posts(log: dict, suffix: str = "/events") -> list:
    return [e for e in log["entries"] if e["method"] == "POST" and e["path"].endswith(suffix)]


def last_event(reservation) -> SyncEvent:
    return reservation.sync_events.order_by("-pk").first()


# --- create, per mode ------------------------------------------------------------------------


def test_normal_mode_the_employee_organizes_in_their_calendar_and_the_room_confirms(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)

    assert r.state == State.AWAITING_CONFIRMATION
    assert (r.mailbox, r.organizer, r.sync_mailbox) == (ALICE, ALICE, "user")
    assert r.event_id and r.change_key and r.ical_uid
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.id == r.event_id and meeting.subject == "Planning"
    assert [(a["emailAddress"]["address"], a["type"]) for a in meeting.attendees] == [("atlas@contoso.example", "resource")]
    assert meeting.transaction_id  # a retried create is de-duplicated by Exchange
    assert len(posts(emulator.request_log())) == 1  # the push is one Graph request

    assert answers(r).state == State.CONFIRMED
    assert r.sync_state == SyncState.SYNCED
    [copy] = meetings(emulator_server, "atlas@contoso.example")
    assert copy.ical_uid == r.ical_uid


def test_times_are_sent_in_the_buildings_time_zone(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(3, 9))
    payload = last_event(r).request_payload
    assert payload["start"] == {"dateTime": r.start.astimezone(atlas.building.tzinfo).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "Europe/Berlin"}
    assert payload["location"]["displayName"] == "Atlas"


def test_strict_mode_the_organizer_account_organizes_and_the_employee_is_invited(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)

    assert (r.mailbox, r.organizer, r.sync_mailbox) == (ORGANIZER, ORGANIZER, "other")
    [meeting] = meetings(emulator_server, ORGANIZER)
    invited = {(a["emailAddress"]["address"], a["type"]) for a in meeting.attendees}
    assert invited == {("atlas@contoso.example", "resource"), (ALICE, "required")}
    assert answers(r).state == State.CONFIRMED


def test_strict_mode_with_rooms_organizing_the_room_organizes_and_it_is_confirmed_at_once(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)

    assert r.state == State.CONFIRMED  # the write itself is the room's yes
    assert (r.mailbox, r.organizer) == ("atlas@contoso.example", "atlas@contoso.example")
    [meeting] = meetings(emulator_server, "atlas@contoso.example")
    assert [(a["emailAddress"]["address"], a["type"]) for a in meeting.attendees] == [(ALICE, "required")]


def test_personal_mode_rest_api_bookings_use_the_system_credential(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Personal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, source="rest_api", subsource="sn_wsd_rest_api")
    assert (r.mailbox, r.sync_mailbox) == (ALICE, "user")
    assert answers(r).state == State.CONFIRMED


# --- update, room change, cancel ----------------------------------------------------------------


def test_an_update_patches_the_same_meeting_even_after_the_room_changed_its_change_key(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas))
    # The room's acceptance changed the organizer copy's change key; make ours stale on purpose.
    Reservation.objects.filter(pk=r.pk).update(change_key="stale")
    r.refresh_from_db()
    r = change(django_capture_on_commit_callbacks, r, actor=alice, subject="Planning (moved)", start=r.start + dt.timedelta(hours=1), end=r.end + dt.timedelta(hours=1))

    assert last_event(r).state == SyncEvent.State.PROCESSED
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.id == r.event_id and meeting.subject == "Planning (moved)"
    assert meeting.start == r.start
    assert r.change_key == meeting.change_key or r.change_key  # stored from the PATCH response
    log = emulator.request_log()
    assert [e["status"] for e in log["entries"] if e["method"] == "PATCH"] == [412, 200]


def test_a_room_change_keeps_the_meeting_and_swaps_the_room(provider, mode, emulator, emulator_server, alice, atlas, borealis, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas))
    first_id = r.event_id
    r = change(django_capture_on_commit_callbacks, r, actor=alice, room=borealis)
    r = answers(r)

    assert r.event_id == first_id
    [meeting] = meetings(emulator_server, ALICE)
    assert [a["emailAddress"]["address"] for a in meeting.attendees] == ["borealis@contoso.example"]
    assert meetings(emulator_server, "atlas@contoso.example") == []
    assert len(meetings(emulator_server, "borealis@contoso.example")) == 1
    assert r.state == State.CONFIRMED


def test_with_rooms_organizing_a_room_change_cancels_the_old_meeting_and_the_new_room_organizes(provider, mode, emulator, emulator_server, alice, atlas, borealis, django_capture_on_commit_callbacks):
    mode("Strict")
    provider.rooms_organize_own_meetings = True
    provider.save()
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    old_id = r.event_id
    r = change(django_capture_on_commit_callbacks, r, actor=alice, room=borealis)

    assert r.event_id != old_id and r.organizer == "borealis@contoso.example"
    assert meetings(emulator_server, "atlas@contoso.example") == []
    [new] = meetings(emulator_server, "borealis@contoso.example")
    assert new.id == r.event_id
    assert r.state == State.CONFIRMED


def test_an_arrangement_change_keeps_the_meeting(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Strict")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas))
    event_id = r.event_id
    u_shape = atlas.arrangements.get(name="U-shape")
    r = change(django_capture_on_commit_callbacks, r, actor=alice, arrangement=u_shape)
    assert r.event_id == event_id
    assert len(meetings(emulator_server, ORGANIZER)) == 1
    assert not posts(emulator.request_log(), "/cancel")


def test_cancel_the_organizer_cancels_with_a_comment(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = answers(book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas))
    r = cancel(django_capture_on_commit_callbacks, r, actor=alice, reason="Not needed")

    assert last_event(r).state == SyncEvent.State.PROCESSED
    assert len(posts(emulator.request_log(), "/cancel")) == 1
    assert meetings(emulator_server, ALICE) == []  # cancelled
    assert meetings(emulator_server, "atlas@contoso.example") == []


def test_cancelling_an_outlook_meeting_makes_the_room_decline_it(provider, mode, emulator, emulator_server, alice, bob, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(5, 11)
    created = emulator.create_event_as("bob@contoso.example", {
        "subject": "Bob's Outlook meeting",
        "start": {"dateTime": start.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "atlas@contoso.example"}, "type": "resource"}],
    })
    [copy] = on_the_room_calendar(emulator_server, "atlas@contoso.example", created["iCalUId"])
    assert [c.id for c in meetings(emulator_server, "atlas@contoso.example")] == [copy.id]
    # Inbound sync (issue 6) would have made this reservation from the room's copy.
    r = services.reservation_create(
        actor=None, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Bob's Outlook meeting",
        requested_for=bob, source="outlook", from_exchange=True,
        exchange=services.ExchangeIds(event_id=copy.id, change_key=copy.change_key, ical_uid=copy.ical_uid, mailbox="atlas@contoso.example", organizer="bob@contoso.example", sync_mailbox="other"),
    )
    Reservation.objects.filter(pk=r.pk).update(origin=Origin.EXCHANGE)
    r.refresh_from_db()
    r = cancel(django_capture_on_commit_callbacks, r, actor=bob)

    assert len(posts(emulator.request_log(), "/decline")) == 1
    assert not posts(emulator.request_log(), "/cancel")
    [organizer_copy] = meetings(emulator_server, "bob@contoso.example")
    assert organizer_copy.id == created["id"]
    assert [a["status"]["response"] for a in organizer_copy.attendees] == ["declined"]  # Bob is told


# --- recurring -------------------------------------------------------------------------------------


def test_a_series_is_one_recurring_meeting_and_an_occurrence_cancel_is_an_exception(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(7, 9)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.reservation_create(
            actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
            recurrence=Recurrence(frequency="weekly", interval=1, count=3),
        )
    first.refresh_from_db()
    series = first.series
    series.refresh_from_db()
    [master] = meetings(emulator_server, ALICE)
    assert master.id == series.event_id
    assert master.recurrence["pattern"]["type"] == "weekly"
    assert master.recurrence["range"]["numberOfOccurrences"] == 3

    second = series.occurrences.order_by("start")[1]
    cancel(django_capture_on_commit_callbacks, second, actor=alice)
    assert last_event(second).state == SyncEvent.State.PROCESSED, last_event(second).error
    [master] = meetings(emulator_server, ALICE)
    assert len(master.cancelled_dates) == 1


# --- failures: storms, token expiry, retries exhausted ---------------------------------------------------


def test_a_429_storm_on_create_makes_one_meeting(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=3, status=429, retry_after=0)
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    assert last_event(r).state == SyncEvent.State.PROCESSED
    assert len(meetings(emulator_server, ALICE)) == 1
    assert [e["status"] for e in posts(emulator.request_log())] == [429, 429, 429, 201]


def test_a_503_storm_longer_than_the_client_retries_is_retried_later_without_a_second_meeting(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=5, status=503, retry_after=0)
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    event = last_event(r)
    assert event.state == SyncEvent.State.NEW and event.next_attempt_at and "503" in event.error  # backed off
    SyncEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)
    assert worker.process_sync_event(event.pk).status == "processed"
    r.refresh_from_db()
    assert r.event_id and len(meetings(emulator_server, ALICE)) == 1


def test_a_create_whose_answer_is_lost_is_not_duplicated_on_retry(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    """Exchange made the meeting but the worker never saw the 201 (a reset connection
    after the write): the retry sends the same transactionId and gets the same meeting."""
    mode("Normal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    event = last_event(r)
    first_id = r.event_id
    # Replay the push as if the link had never been stored.
    Reservation.objects.filter(pk=r.pk).update(event_id="", change_key="", ical_uid="")
    SyncEvent.objects.filter(pk=event.pk).update(state=SyncEvent.State.NEW)
    assert worker.process_sync_event(event.pk).status == "processed"
    r.refresh_from_db()
    assert r.event_id == first_id
    assert len(meetings(emulator_server, ALICE)) == 1


def test_an_expired_token_mid_run_is_refreshed_silently(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    emulator.expire_tokens()
    r2 = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(2, 15), subject="Second")
    assert last_event(r2).state == SyncEvent.State.PROCESSED
    statuses = [e["status"] for e in posts(emulator.request_log())]
    assert statuses == [201, 401, 201]
    assert len(meetings(emulator_server, ALICE)) == 2


def test_after_max_attempts_the_event_is_error_and_reprocess_pushes_it(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    from exchange_auth import properties

    mode("Normal")
    properties.set_value(properties.MAX_EVENT_RETRY_COUNT, 2)
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=10, status=503, retry_after=0)
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    event = last_event(r)
    SyncEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)
    worker.process_sync_event(event.pk)
    event.refresh_from_db()
    r.refresh_from_db()
    assert event.state == SyncEvent.State.ERROR and event.attempts == 2
    assert r.sync_state == SyncState.ERROR and "503" in r.sync_error

    emulator.clear_faults()
    assert worker.process_sync_event(event.pk).status == "skipped"  # errors wait for an admin
    assert worker.process_sync_event(event.pk, reprocess=True).status == "processed"
    r.refresh_from_db()
    assert r.sync_state == SyncState.SYNCED and len(meetings(emulator_server, ALICE)) == 1


# --- the 10-minute check and the clean-up ---------------------------------------------------------


def test_a_push_stays_within_its_query_budget(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    """One create push (Normal mode: the meeting in the employee's mailbox), from the task through
    Graph's 201 to its bookkeeping, in a fixed number of statements (issue 17 item 2: CPU per push
    bounds the workers' speed-up). On PostgreSQL (calendar_sync.outbound.fastpaths): the claim (1:
    the conditional UPDATE returning the claimed row), the reservation with its room, people and
    attendees (1), the provider and the delegate check (2), the body kept before the POST (1: a
    killed create is found by it), the event's end with whether another change waits, and the
    reservation's link and sync state (2, in one transaction: a savepoint here), and what waits
    behind it (1, after the commit) — 8, where there were 12 (the claim read the event before and
    after its UPDATE, the attendees were a prefetch, the end and the check two statements) and
    before that 14. Elsewhere (the ORM's queries) 12."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calendar_sync.outbound import tasks

    mode("Normal")
    book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(2, 9))  # warm: token, caches
    r = book(actor=alice, room=atlas, start=days_ahead(2, 11))  # queued, not pushed (its on-commit never runs here)
    event = last_event(r)
    with CaptureQueriesContext(connection) as ctx:
        assert tasks.push_sync_event.run(event.pk) == "processed"
    statements = [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(statements) <= (8 if connection.vendor == "postgresql" else 12), "\n".join(statements)
    r.refresh_from_db()
    assert r.event_id and last_event(r).state == SyncEvent.State.PROCESSED
