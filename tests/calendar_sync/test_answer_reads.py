"""One answer read per create (issue 17, outbound at Graph's limit): in Strict mode every
meeting is in the one organizer mailbox, and each read of a meeting's answer takes one of its
4 request slots from the pushes (calendar_sync/outbound/confirm.py ``check_answers``).

- the first read comes a confirm delay after the push (the room's booking attendant answers
  within seconds): a meeting answered by then is read once;
- a round's claims last until it has applied its answers and marked the meetings read, however
  long its one-by-one reads take behind the pushes: no other round, on any worker, reads them
  meanwhile (they expired with the first pause: 1.5 answer reads per create with one worker,
  3.3 with four, bench/scale_outbound.py);
- a meeting not answered yet is read again after its pause; a declined one is rejected;
- the next check is scheduled for when the next meeting is due.

Graph is the emulator; a round's reads are counted from its request log (the ``$batch`` GETs
of organizer copies, as the bench counts them)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
import redis
from django.conf import settings as django_settings
from django.core import mail
from django.core.cache import cache
from django.db import connection

from calendar_sync.outbound import confirm
from calendar_sync.outbound import tasks as outbound_tasks
from exchange_auth import properties
from reservations import services
from reservations.models import Reservation, State, SyncEvent
from tests.booking import book
from tests.calendar_sync.inbound_helpers import ALICE
from tests.calendar_sync.test_push_emulator import on_the_room_calendar
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for

ATLAS = "atlas@contoso.example"


def answer_reads(emulator) -> Counter:
    """Reads of organizer copies so far, by meeting."""
    entries = emulator.request_log(limit=100000)["entries"]
    return Counter(e["path"].split("?")[0].lower() for e in entries if e["method"] == "GET" and e["batch"] and "/events/" in e["path"])


def pushed_earlier(reservations, seconds: float) -> None:
    """Their pushes were processed ``seconds`` ago (their first read is due)."""
    for r in reservations:
        event = SyncEvent.objects.get(reservation=r)
        SyncEvent.objects.filter(pk=event.pk).update(processed_at=event.processed_at - dt.timedelta(seconds=seconds))


class Clock:
    """``time`` for confirm.py: the wall clock until the test moves it on."""

    def __init__(self):
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch):
    found = Clock()
    monkeypatch.setattr(confirm, "time", found)
    return found


def spaced_check() -> dict:
    """What the scheduled check (``tasks.check_confirmations``) runs."""
    return confirm.check_answers(max_age_seconds=300, spaced=True)


# --- one worker's round, step by step (eager pushes) ----------------------------------------------


@pytest.mark.django_db
def test_the_first_read_waits_a_confirm_delay_after_the_push(provider, mode, emulator, alice, atlas, clock, django_capture_on_commit_callbacks):
    """Right after the push the room may not have answered yet: a read then would find no answer
    and read the meeting again. The check waits (and says when to look next); a confirm delay
    (2 s) after the push the one read confirms."""
    mode("Strict")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, 9))
    assert r.state == State.AWAITING_CONFIRMATION  # the create's response carried no answer
    emulator.clear_request_log()

    counts = spaced_check()
    assert counts["checked"] == 0 and answer_reads(emulator) == Counter()
    assert 0 < counts["next_read_in"] <= 2  # the check after it: when the meeting is due
    clock.advance(2)
    counts = spaced_check()
    assert (counts["checked"], counts["confirmed"], counts["next_read_in"]) == (1, 1, None)  # nothing waits any more
    assert list(answer_reads(emulator).values()) == [1]
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED


@pytest.mark.django_db
def test_a_meeting_not_yet_answered_is_read_again_after_its_pause(provider, mode, emulator, alice, atlas, clock, django_capture_on_commit_callbacks):
    mode("Strict")
    emulator.set_auto_accept(ATLAS, False)  # the room's delegate answers, later
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, 10))
    emulator.clear_request_log()
    clock.advance(2)
    counts = spaced_check()
    assert (counts["checked"], counts["unanswered"]) == (1, 1)
    assert 0 < counts["next_read_in"] <= 2  # the first pause: the confirm delay
    emulator.respond_as(ATLAS, r.ical_uid, "accept")
    assert spaced_check()["checked"] == 0  # read a moment ago: not yet
    clock.advance(2)
    counts = spaced_check()
    assert (counts["checked"], counts["confirmed"]) == (1, 1)
    assert list(answer_reads(emulator).values()) == [2]
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED


@pytest.mark.django_db
def test_a_declined_meeting_is_read_once_and_rejected(provider, mode, emulator, emulator_server, alice, bob, atlas, clock, django_capture_on_commit_callbacks):
    mode("Strict")
    start = days_ahead(4, 14)
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    outlook = emulator.create_event_as("bob@contoso.example", {
        "subject": "Outlook booking", "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (utc + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": ATLAS}, "type": "resource"}],
    })
    on_the_room_calendar(emulator_server, ATLAS, outlook["iCalUId"])  # Atlas is busy: it declines ours
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=start)
    emulator.clear_request_log()
    clock.advance(2)
    counts = spaced_check()
    assert (counts["checked"], counts["rejected"], counts["next_read_in"]) == (1, 1, None)
    assert spaced_check()["checked"] == 0
    assert list(answer_reads(emulator).values()) == [1]
    r.refresh_from_db()
    assert r.state == State.REJECTED and "declined" in r.state_reason
    assert [m.to for m in mail.outbox] == [[ALICE]]


# --- the follow-up window: counted from the first read, not the push ------------------------------


@pytest.mark.django_db
def test_a_meeting_pushed_before_the_window_and_never_read_is_read(provider, mode, emulator, alice, atlas, borealis, clock, django_capture_on_commit_callbacks):
    """The check ran late (queued behind the pushes) or the backlog of answers took longer than
    the window: a meeting pushed longer ago than the window but never read is read all the same,
    with one pushed just now (issue 17: the confirmations stalled at 4,320 of 10,000)."""
    mode("Strict")
    late = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, 9))
    pushed_earlier([late], 20 * 60)  # four windows (300 s) ago
    fresh = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=borealis, start=days_ahead(4, 11))
    emulator.clear_request_log()
    clock.advance(2)
    assert confirm.pending_answers(max_age_seconds=300) == 2
    counts = spaced_check()
    assert (counts["checked"], counts["confirmed"], counts["next_read_in"]) == (2, 2, None)
    assert sorted(answer_reads(emulator).values()) == [1, 1]
    assert set(Reservation.objects.filter(pk__in=[late.pk, fresh.pk]).values_list("state", flat=True)) == {State.CONFIRMED}


@pytest.mark.django_db
def test_the_follow_ups_of_an_unanswered_meeting_end_a_window_after_its_first_read(provider, mode, emulator, alice, atlas, clock, django_capture_on_commit_callbacks):
    """A meeting first read long after its push is followed up for a whole window from that read
    (its reads still due are read); once it has waited unanswered a window since, the check
    leaves it to the 10-minute check and schedules nothing more for it."""
    mode("Strict")
    emulator.set_auto_accept(ATLAS, False)  # the room's delegate answers, much later
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, start=days_ahead(4, 13))
    pushed_earlier([r], 20 * 60)
    emulator.clear_request_log()
    counts = spaced_check()
    assert (counts["checked"], counts["unanswered"]) == (1, 1)  # its first read
    assert counts["next_read_in"] is not None
    clock.advance(240)  # its pause is over, within the window of its first read
    assert confirm.pending_answers(max_age_seconds=300) == 1
    counts = spaced_check()
    assert (counts["checked"], counts["unanswered"]) == (1, 1)
    clock.advance(61)  # a window and a second since its first read
    assert confirm.pending_answers(max_age_seconds=300) == 0
    counts = spaced_check()
    assert (counts["checked"], counts["next_read_in"]) == (0, None)
    assert list(answer_reads(emulator).values()) == [2]
    assert Reservation.objects.get(pk=r.pk).state == State.AWAITING_CONFIRMATION  # the 10-minute check reads it
    # Its mark is kept until the clean-up rejects it unanswered: were it gone sooner, the meeting
    # would look never read and its follow-ups would start over.
    mark = cache.make_and_validate_key(confirm.ANSWER_READ_KEY.format(r.pk))
    assert confirm._redis().ttl(mark) > properties.get(properties.EXCHANGE_CALLBACK_TIME_LIMIT)


# --- rounds side by side ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_round_still_reading_keeps_its_meetings_from_a_later_round(provider, mode, emulator, alice, atlas, borealis, settings):
    """Round A's first read is held up (Graph takes 3 s); round B starts after the first pause
    (0.5 s) has run out. B reads none of A's meetings — not even those A has not reached yet —
    and A reads each once: no meeting is read twice."""
    settings.CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 0.5
    mode("Strict")
    start = days_ahead(5, 7)
    booked = [services.reservation_create(actor=alice, room=(atlas, borealis)[n % 2], start=start + dt.timedelta(hours=n),
                                          end=start + dt.timedelta(hours=n, minutes=50), subject=f"Round {n}") for n in range(6)]
    pushed_earlier(booked, 10)
    emulator.clear_request_log()
    emulator.inject_fault(method="POST", path=r"\$batch$", count=1, action="delay", seconds=3.0)
    done, errors = {}, []

    def round_a():
        try:
            done["a"] = spaced_check()
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    a = threading.Thread(target=round_a)
    a.start()
    wait_for(lambda: emulator.faults() == [], message="round A's first read held by Graph")
    time.sleep(1.0)  # A's claims are older than the first pause
    b = spaced_check()
    a.join(timeout=60)
    assert errors == []
    assert b["checked"] == 0
    assert done["a"]["checked"] == 6 and done["a"]["confirmed"] == 6
    reads = answer_reads(emulator)
    assert len(reads) == 6 and set(reads.values()) == {1}


@pytest.mark.django_db(transaction=True)
def test_checks_running_at_once_read_each_meeting_once(provider, mode, emulator, alice, atlas, borealis, settings):
    """Eight checks at once (the rounds of several workers) over 12 meetings, Graph slow to
    answer: together they read each meeting once."""
    settings.CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 0.5
    mode("Strict")
    emulator.configure(latency={"write": [100, 200], "read": [150, 300]}, latency_seed=5)
    start = days_ahead(6, 7)
    booked = [services.reservation_create(actor=alice, room=(atlas, borealis)[n % 2], start=start + dt.timedelta(hours=n // 2),
                                          end=start + dt.timedelta(hours=n // 2, minutes=50), subject=f"At once {n}") for n in range(12)]
    pushed_earlier(booked, 10)
    emulator.clear_request_log()
    barrier, errors, counts = threading.Barrier(8), [], []

    def check():
        try:
            barrier.wait(timeout=10)
            for _ in range(3):  # each comes back, as a scheduled check does
                counts.append(spaced_check())
                time.sleep(0.6)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(c["confirmed"] for c in counts) == 12
    reads = answer_reads(emulator)
    assert len(reads) == 12 and set(reads.values()) == {1}
    assert set(Reservation.objects.filter(pk__in=[r.pk for r in booked]).values_list("state", flat=True)) == {State.CONFIRMED}


def test_a_long_round_renews_the_claims_it_still_holds():
    """A round stuck behind the pushes for most of its lease renews the claims of the meetings
    it has not read yet before its next request (``AnswerRound.hold``), not those it has read."""
    waiting = [Reservation(pk=pk) for pk in (920001, 920002)]
    keys = [confirm.ANSWER_CLAIM_KEY.format(r.pk) for r in waiting]
    cache.delete_many(keys + [confirm.ANSWER_READ_KEY.format(r.pk) for r in waiting])
    found = confirm._due_for_a_read(waiting, base=1, keep=60, lease=60, request_wait=35)
    found.done([(waiting[0], True)])  # the first read
    client = confirm._redis()
    raw = [cache.make_and_validate_key(k) for k in keys]
    client.pexpire(raw[1], 2000)  # 58 s of the lease gone ...
    found.claimed_at -= 58
    found.hold()  # ... before the next request
    assert client.exists(raw[0]) == 0  # read: released
    assert client.pttl(raw[1]) > 30_000  # a full lease again
    found.hold()  # just renewed: nothing to do
    assert client.pttl(raw[1]) > 30_000


# --- the next check ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_check_asked_for_earlier_than_the_one_scheduled_is_queued_too(celery_not_eager):
    """Many pushes share one scheduled check; a check wanted sooner than the one scheduled (a
    meeting due in 2 s while the next check is a minute away) is queued as well."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.delete("answers")
    outbound_tasks.schedule_confirmation_check(60)  # a meeting read 6 times: its pause is a minute
    outbound_tasks.schedule_confirmation_check(30)  # sooner than the one scheduled
    assert broker.llen("answers") == 2
    outbound_tasks.schedule_confirmation_check(45)  # later than the one in 30 s: shares it
    outbound_tasks.schedule_confirmation_check()  # a push: the confirm delay (2 s), sooner
    assert broker.llen("answers") == 3
    outbound_tasks.schedule_confirmation_check()  # the next push shares it
    assert broker.llen("answers") == 3
    broker.delete("answers")


# --- a real worker --------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_n_creates_in_strict_mode_are_n_answer_reads_with_a_real_worker(provider, mode, emulator, alice, atlas, borealis, worker_env, celery_not_eager, tmp_path):
    """The product's outbound worker (threads, 8) pushes bookings made while it runs into the
    organizer mailbox, Graph-like latency on, the rooms answering 0.2 s after each create: its
    scheduled checks read each meeting's answer exactly once and every booking is confirmed."""
    mode("Strict")
    emulator.configure(latency={"write": [100, 200], "read": [100, 200]}, latency_seed=11, attendant_delay_seconds=0.2)
    env = {**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.answer_worker_settings"}
    worker = Worker(env, tmp_path / "worker.log", queues="answers,outbound", pool="threads", concurrency=8)
    worker.start()
    try:
        emulator.clear_request_log()
        start = days_ahead(4, 7)
        booked = []
        for n in range(24):
            at = start + dt.timedelta(hours=n // 2)
            booked.append(services.reservation_create(actor=alice, room=(atlas, borealis)[n % 2], start=at,
                                                      end=at + dt.timedelta(minutes=50), subject=f"Answer {n:02d}"))
            if n % 6 == 5:  # in waves: the checks of one wave run while the next is pushed
                wait_for(lambda: not SyncEvent.objects.filter(state__in=["new", "processing"]).exists(), timeout=60,
                         message=lambda: f"pushes {worker.log_path.read_text()[-3000:]}")
        wait_for(lambda: not Reservation.objects.filter(pk__in=[r.pk for r in booked], state=State.AWAITING_CONFIRMATION).exists(),
                 timeout=120, message=lambda: f"answers {worker.log_path.read_text()[-3000:]}")
    finally:
        worker.stop()
    assert set(Reservation.objects.filter(pk__in=[r.pk for r in booked]).values_list("state", flat=True)) == {State.CONFIRMED}
    reads = answer_reads(emulator)
    assert len(reads) == 24
    assert sum(reads.values()) == 24, {path: n for path, n in reads.items() if n > 1}
