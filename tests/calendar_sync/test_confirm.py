"""Confirmation (calendar_sync/outbound/confirm.py, SPEC §4 "Confirmation"): the room's
answer read by ``check_answers`` (a busy room declines: rejected, the employee told), the
10-minute ``check_room_calendars`` (meeting missing: conflicted) and ``clean_up_unanswered``
(no answer within exchange_callback_time_limit: rejected). Series: test_series_sync.py;
declines seen by the room's own pull: test_room_calendar_declines.py."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core import mail

from calendar_sync.outbound import confirm
from reservations.models import Reservation, State
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
)
from tests.calendar_sync.test_push_emulator import answers, on_the_room_calendar, remove_everywhere
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


def test_a_busy_room_declines_the_reservation_is_rejected_and_the_employee_told(provider, mode, emulator, emulator_server, alice, bob, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(4, 14)
    # Someone booked Atlas in Outlook and the product hasn't heard of it yet.
    outlook = emulator.create_event_as("bob@contoso.example", {
        "subject": "Outlook booking", "start": {"dateTime": start.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "atlas@contoso.example"}, "type": "resource"}],
    })
    on_the_room_calendar(emulator_server, "atlas@contoso.example", outlook["iCalUId"])  # Atlas is busy now
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start)
    r = answers(r)

    assert r.state == State.REJECTED
    assert "declined" in r.state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert "Atlas" in mail.outbox[0].body


def test_the_ten_minute_check_marks_a_vanished_meeting_conflicted(provider, mode, emulator, emulator_server, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.set_auto_accept("atlas@contoso.example", False)  # the room doesn't answer
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)

    remove_everywhere(emulator_server, r.ical_uid)
    counts = confirm.check_room_calendars()
    r.refresh_from_db()
    assert counts["conflicted"] == 1 and r.state == State.CONFLICTED


def test_no_answer_within_the_callback_limit_rejects(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.set_auto_accept("atlas@contoso.example", False)
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas)
    Reservation.objects.filter(pk=r.pk).update(created_at=r.created_at - dt.timedelta(hours=6))
    assert confirm.clean_up_unanswered() == 1
    r.refresh_from_db()
    assert r.state == State.REJECTED and "did not answer" in r.state_reason
    assert mail.outbox


def test_the_scheduled_check_spaces_out_its_reads_of_a_meeting_still_waiting(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks, settings):
    """The check that follows pushes reads a waiting meeting a confirm delay after its push,
    then again only after a growing pause (1, 2, 4 … s here, at most a minute): a room that
    hasn't answered is not read on every round while pushes keep the organizer's mailbox busy.
    Calls without ``spaced`` (the tests' helpers, an admin's look) read every time. (Each step
    of the first read and the scheduling: test_answer_reads.py.)"""
    settings.CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 1
    from django.core.cache import cache

    from reservations.models import SyncEvent

    mode("Strict")
    emulator.set_auto_accept("atlas@contoso.example", False)  # the room doesn't answer
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, 9))
    key = confirm.ANSWER_READ_KEY.format(r.pk)
    cache.delete_many([key, confirm.ANSWER_CLAIM_KEY.format(r.pk)])
    pushed = SyncEvent.objects.get(reservation=r)
    SyncEvent.objects.filter(pk=pushed.pk).update(processed_at=pushed.processed_at - dt.timedelta(seconds=1))  # its first read is due

    def reads() -> int:
        log = emulator.request_log(limit=1000)
        return sum(1 for e in log["entries"] if e["method"] == "GET" and e["batch"])

    emulator.clear_request_log()
    before = time.time()
    assert confirm.check_answers(spaced=True)["checked"] == 1
    after = time.time()
    assert confirm.check_answers(spaced=True)["checked"] == 0  # read a moment ago: not yet
    assert reads() == 1
    reads_so_far, next_at, push, _first_read = cache.get(key)
    assert reads_so_far == 1
    assert before + 1 <= next_at <= after + 1  # the first pause: the confirm delay after the read
    cache.set(key, (1, 0.0, push))  # its pause is over
    before = time.time()
    assert confirm.check_answers(spaced=True)["checked"] == 1
    reads_so_far, later, *_ = cache.get(key)
    assert reads_so_far == 2 and before + 2 <= later <= time.time() + 2  # the second pause is twice the first
    assert confirm.check_answers()["checked"] == 1  # unspaced: read regardless
    assert reads() == 3
    assert Reservation.objects.get(pk=r.pk).state == State.AWAITING_CONFIRMATION


def test_a_round_of_answer_reads_keeps_what_it_claims_and_marks_only_what_it_reads():
    """At most ``most`` meetings per round, the first in line, claimed until the round has read
    them (``done``), however long that takes: a round meanwhile takes the next in line; nothing
    is marked read before it is read."""
    from django.core.cache import cache

    waiting = [Reservation(pk=pk) for pk in (900001, 900002, 900003)]
    cache.delete_many([key.format(r.pk) for r in waiting for key in (confirm.ANSWER_READ_KEY, confirm.ANSWER_CLAIM_KEY)])

    def round_():
        return confirm._due_for_a_read(waiting, base=1, keep=60, lease=60, most=2)

    first = round_()
    assert [r.pk for r in first.due] == [900001, 900002]
    assert cache.get_many([confirm.ANSWER_READ_KEY.format(r.pk) for r in waiting]) == {}
    second = round_()
    assert [r.pk for r in second.due] == [900003]  # the first round's are still its own
    assert round_().due == []
    first.done([(r, True) for r in first.due])
    assert [cache.get(confirm.ANSWER_READ_KEY.format(pk))[0] for pk in (900001, 900002)] == [1, 1]
    assert cache.get(confirm.ANSWER_READ_KEY.format(900003)) is None
    assert round_().due == []  # read: due again after the pause; 900003 still the second round's
    assert first.next_at is not None


def test_a_spaced_round_builds_only_the_reservations_it_reads(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks, monkeypatch):
    """The scheduled check picks its round by id and reads only those whole, with one provider
    read for the round: it built every waiting reservation (up to 1,000, with room and people)
    to read 40 of them — most of the answer check's CPU in a backlog (issue 17)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from exchange_auth.models import CalendarProvider

    mode("Normal")
    emulator.set_auto_accept("atlas@contoso.example", False)  # the room doesn't answer: all three keep waiting
    waiting = [book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, hour)) for hour in (9, 11, 13)]
    cache.delete_many([key.format(r.pk) for r in waiting for key in (confirm.ANSWER_READ_KEY, confirm.ANSWER_CLAIM_KEY)])
    pushed = {w.pk: w.pushed_at.timestamp() for w in confirm._awaiting_rows(None, None)}
    # Each read once since its push: the first read a moment ago (not due), the others due now.
    cache.set(confirm.ANSWER_READ_KEY.format(waiting[0].pk), (1, time.time() + 60, pushed[waiting[0].pk]))
    cache.set_many({confirm.ANSWER_READ_KEY.format(r.pk): (1, time.time() - 1, pushed[r.pk]) for r in waiting[1:]})
    built = []
    from_db = Reservation.from_db.__func__
    monkeypatch.setattr(Reservation, "from_db", classmethod(lambda cls, *a, **kw: built.append(1) or from_db(cls, *a, **kw)))
    with CaptureQueriesContext(connection) as ctx:
        assert confirm.check_answers(spaced=True)["checked"] == 2
    assert len(built) == 2  # the two due, not the third
    provider_table = CalendarProvider._meta.db_table
    assert sum(provider_table in q["sql"] for q in ctx.captured_queries) == 1  # one provider read for the round


def test_two_workers_checking_at_once_read_each_waiting_meeting_once():
    """Checks of several workers run side by side (issue 17: 1,227 answer reads for 600 creates
    with 4 workers): each due meeting is claimed by one of them, the others skip it."""
    import threading

    from django.core.cache import cache

    waiting = [Reservation(pk=pk) for pk in range(910001, 910041)]
    cache.delete_many([key.format(r.pk) for r in waiting for key in (confirm.ANSWER_READ_KEY, confirm.ANSWER_CLAIM_KEY)])
    barrier = threading.Barrier(8)
    taken: list[int] = []

    def check() -> None:
        barrier.wait()
        taken.extend(r.pk for r in confirm._due_for_a_read(waiting, base=5, keep=60, lease=60, most=40).due)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [r.pk for r in waiting]  # every one read, none twice
    assert confirm._due_for_a_read(waiting, base=5, keep=60, lease=60, most=40).due == []


def test_the_answer_check_after_a_push_counts_from_the_push_not_the_booking(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    """A booking that waited in the queue longer than the follow-up window is read right after
    its push, not left to the 10-minute check. (The window counts from the meeting's first read,
    not its push — a meeting pushed before the window but never read is read too; one read a
    whole window ago is not: test_answer_reads.py.)"""
    mode("Normal")
    emulator.set_auto_accept("atlas@contoso.example", False)
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(5, 9))
    Reservation.objects.filter(pk=r.pk).update(created_at=r.created_at - dt.timedelta(minutes=10))  # queued 10 minutes
    assert confirm.pending_answers(max_age_seconds=300) == 1
    assert confirm.check_answers(max_age_seconds=300)["checked"] == 1
