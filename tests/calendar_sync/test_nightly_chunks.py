"""The nightly pass at scale (issue 17 item 4): a building's night split into chunks of rooms
(``nightly_chunk`` tasks) that several workers share, each chunk run once (its claim has a
lease; a dead worker's chunk runs again), the run finished by its last chunk; and what one
unchanged room costs Graph: one delta round, its pages reconciled one at a time.
bench/nightly_scale.py measures the same at 2,000 rooms."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from calendar_sync.inbound import delta, nightly
from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import MailboxDeltaState, NightlyChunk, NightlyRun
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    BOREALIS,
    outlook_meeting,
    outlook_reservations,
)
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

COSMOS = "cosmos@contoso.example"


def _meetings(emulator, rooms: list[str], per_room: int = 1) -> None:
    for room in rooms:
        for k in range(per_room):
            outlook_meeting(emulator, BOB, [room], days_ahead(2 + k, 9), subject=f"{room} #{k}")


def _queued(monkeypatch) -> dict[str, list]:
    queued: dict[str, list] = {"chunks": [], "mailboxes": []}
    monkeypatch.setattr(inbound_tasks.nightly_chunk, "delay", lambda chunk_id: queued["chunks"].append(chunk_id))
    monkeypatch.setattr(inbound_tasks.nightly_mailbox, "delay", lambda *args: queued["mailboxes"].append(args))
    return queued


def _graph_requests(emulator, since: int) -> int:
    return emulator.request_log(since=since, limit=0)["total"]


def test_a_buildings_night_is_split_into_chunks_each_run_once(provider, emulator, bob, atlas, borealis, cosmos, settings,
                                                               celery_not_eager, monkeypatch):
    settings.CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS = 2
    _meetings(emulator, [ATLAS, BOREALIS, COSMOS])
    queued = _queued(monkeypatch)
    today = dt.date.today().isoformat()

    assert inbound_tasks.nightly_building(atlas.building_id, today) == {"HQ": {"queued_chunks": 2}}
    run = NightlyRun.objects.get(building=atlas.building)
    chunks = list(NightlyChunk.objects.filter(run=run))
    assert [c.pk for c in chunks] == queued["chunks"]
    assert [len(c.room_ids) for c in chunks] == [2, 1]
    assert sorted(sum((c.room_ids for c in chunks), [])) == sorted([atlas.pk, borealis.pk, cosmos.pk])

    first, second = queued["chunks"]
    assert inbound_tasks.nightly_chunk(first)["rooms"] == 2
    run.refresh_from_db()
    assert run.finished_at is None  # one chunk is still to run
    # The same chunk delivered again (acks_late after a lost ack): nothing runs, Graph is not asked.
    mark = emulator.request_log(limit=0)["last_seq"]
    assert inbound_tasks.nightly_chunk(first) == {}
    assert _graph_requests(emulator, mark) == 0
    # The building's task delivered again queues only what is left.
    queued["chunks"].clear()
    assert inbound_tasks.nightly_building(atlas.building_id, today) == {"HQ": {"queued_chunks": 1}}
    assert queued["chunks"] == [second]

    assert inbound_tasks.nightly_chunk(second)["rooms"] == 1
    run.refresh_from_db()
    assert run.finished_at is not None
    assert run.summary["rooms"] == 3 and run.summary["chunks"] == 2 and run.summary["created"] == 3
    chunk_seconds = [c.summary["seconds"] for c in NightlyChunk.objects.filter(run=run)]
    assert run.summary["room_seconds"] == pytest.approx(sum(chunk_seconds), abs=0.002)
    assert run.summary["seconds"] >= max(chunk_seconds)  # from the claim to the last chunk
    assert len(outlook_reservations()) == 3
    assert [MailboxDeltaState.objects.get(mailbox=m).full_syncs for m in (ATLAS, BOREALIS, COSMOS)] == [1, 1, 1]
    queued["chunks"].clear()
    assert inbound_tasks.nightly_building(atlas.building_id, today) == {}  # the night is done
    assert queued["chunks"] == []


def test_a_chunk_whose_worker_died_runs_again_after_its_lease(provider, emulator, bob, atlas, borealis, settings,
                                                              celery_not_eager, monkeypatch):
    settings.CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS = 1
    settings.CALENDAR_SYNC_NIGHTLY_CHUNK_LEASE_SECONDS = 600
    _meetings(emulator, [ATLAS, BOREALIS])
    queued = _queued(monkeypatch)
    today = dt.date.today().isoformat()
    inbound_tasks.nightly_building(atlas.building_id, today)
    held, dead = queued["chunks"]
    # Two workers took the chunks; the second one's worker died mid-chunk ten minutes ago.
    NightlyChunk.objects.filter(pk=held).update(started_at=timezone.now(), attempts=1)
    NightlyChunk.objects.filter(pk=dead).update(started_at=timezone.now() - dt.timedelta(seconds=601), attempts=1)
    assert inbound_tasks.nightly_chunk(held) == {}  # a live claim: another worker is on it
    queued["chunks"].clear()
    assert inbound_tasks.nightly_building(atlas.building_id, today) == {"HQ": {"queued_chunks": 1}}
    assert queued["chunks"] == [dead]
    assert inbound_tasks.nightly_chunk(dead)["rooms"] == 1
    assert NightlyChunk.objects.get(pk=dead).attempts == 2
    run = NightlyRun.objects.get(building=atlas.building)
    assert run.finished_at is None  # the held chunk has not finished yet
    NightlyChunk.objects.filter(pk=held).update(started_at=timezone.now() - dt.timedelta(seconds=601))
    assert inbound_tasks.nightly_chunk(held)["rooms"] == 1
    run.refresh_from_db()
    assert run.finished_at is not None and run.summary["rooms"] == 2 and run.summary["created"] == 2


def test_a_building_without_synced_rooms_finishes_at_once(provider, emulator, hq, celery_not_eager, monkeypatch):
    queued = _queued(monkeypatch)
    assert inbound_tasks.nightly_building(hq.pk, dt.date.today().isoformat()) == {"HQ": {"queued_chunks": 0}}
    run = NightlyRun.objects.get(building=hq)
    assert run.finished_at is not None and run.summary["chunks"] == 0 and queued["chunks"] == []


def test_eager_runs_do_the_chunks_inline(provider, emulator, bob, atlas, borealis, settings):
    settings.CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS = 1
    _meetings(emulator, [ATLAS, BOREALIS])
    ran = inbound_tasks.nightly_building(atlas.building_id, dt.date.today().isoformat())
    assert ran["HQ"]["rooms"] == 2 and ran["HQ"]["chunks"] == 2 and ran["HQ"]["created"] == 2


def test_real_workers_share_a_buildings_night(provider, emulator, bob, atlas, borealis, cosmos, settings, worker_env,
                                              celery_not_eager, tmp_path):
    """Two worker processes on the nightly queue, a chunk per room: every room's round runs
    exactly once and the run finishes with the last chunk."""
    workers = [Worker({**worker_env, "CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS": "1"}, tmp_path / f"worker-{i}.log", queues="nightly")
               for i in range(2)]
    settings.CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS = 1  # the claim (made by whichever process runs nightly_building) reads it
    _meetings(emulator, [ATLAS, BOREALIS, COSMOS], per_room=2)
    try:
        for w in workers:
            w.start()
        inbound_tasks.nightly_building.delay(atlas.building_id, dt.date.today().isoformat())
        wait_for(lambda: NightlyRun.objects.filter(building=atlas.building, finished_at__isnull=False).exists(), timeout=90,
                 message="the building's night finished")
    finally:
        for w in workers:
            w.stop()
    run = NightlyRun.objects.get(building=atlas.building)
    assert run.summary["rooms"] == 3 and run.summary["chunks"] == 3 and run.summary["created"] == 6
    assert list(NightlyChunk.objects.filter(run=run).values_list("attempts", flat=True)) == [1, 1, 1]
    assert [MailboxDeltaState.objects.get(mailbox=m).full_syncs for m in (ATLAS, BOREALIS, COSMOS)] == [1, 1, 1]


def test_an_unchanged_room_costs_one_delta_round_its_pages_streamed(provider, emulator, bob, atlas, monkeypatch):
    """ceil(events / page size) calendarView/delta requests (Prefer: odata.maxpagesize), each
    page reconciled as it arrives, nothing else asked of Graph; with the product's page size
    (200) a room of up to 200 meetings is one request."""
    _meetings(emulator, [ATLAS], per_room=5)
    nightly.run_building(atlas.building)  # the first night records them
    monkeypatch.setattr(delta, "PAGE_SIZE", 2)
    pages = []
    reconcile_page = delta.room_calendar.reconcile_page
    monkeypatch.setattr(delta.room_calendar, "reconcile_page", lambda ctx, raw: (pages.append(len(raw)), reconcile_page(ctx, raw)))
    mark = emulator.request_log(limit=0)["last_seq"]
    summary = nightly.run_building(atlas.building)
    log = emulator.request_log(since=mark, limit=0)
    assert pages == [2, 2, 1]
    assert log["total"] == 3 and log["counts"]["by_endpoint"] == {"GET /v1.0/users/{id}/calendarView/delta": 3}
    assert summary["requests"] == 3 and summary.get("created", 0) == 0 and summary.get("updated", 0) == 0

    monkeypatch.setattr(delta, "PAGE_SIZE", 200)
    pages.clear()
    mark = emulator.request_log(limit=0)["last_seq"]
    nightly.run_building(atlas.building)
    assert pages == [5] and _graph_requests(emulator, mark) == 1



def test_an_unchanged_rooms_round_costs_the_same_queries_whatever_its_size(provider, emulator, bob, atlas, borealis):
    """Nothing changed: one query a page finds the recorded copies, the sweep streams ids only;
    a room of 12 meetings costs the database what a room of 3 does."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _meetings(emulator, [ATLAS], per_room=3)
    _meetings(emulator, [BOREALIS], per_room=12)
    nightly.run_building(atlas.building)  # the first night records them
    counts = {}
    for mailbox in (ATLAS, BOREALIS):
        with CaptureQueriesContext(connection) as queries:
            result = delta.pull_mailbox(mailbox, full=True, nightly=True)
        assert result.stats["unchanged"] == (3 if mailbox == ATLAS else 12) and result.requests == 1
        counts[mailbox] = [q["sql"] for q in queries.captured_queries]
    assert len(counts[ATLAS]) == len(counts[BOREALIS]) <= 10, "\n".join(s[:160] for s in counts[ATLAS] + ["--"] + counts[BOREALIS])


def test_a_changed_rooms_page_read_loads_only_the_changed_copies_reservations(provider, emulator, bob, atlas, monkeypatch):
    """Two of 12 meetings changed: the page's read (``PageReads``) loads the two reservations
    those copies name, not the reservations of every copy recorded on the page."""
    from calendar_sync.inbound import room_calendar
    from tests.calendar_sync.inbound_helpers import outlook_update

    made = [outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2 + k, 9), subject=f"{ATLAS} #{k}") for k in range(12)]
    nightly.run_building(atlas.building)  # the first night records them
    for meeting in made[3:5]:
        outlook_update(provider, BOB, meeting["id"], subject="Changed in Outlook")
    loaded = []
    read = room_calendar.PageReads.read.__func__

    def reading(cls, *args):
        page = read(cls, *args)
        loaded.append(sorted(r.subject for r in page.matched))  # as read, before the first update drops them
        return page

    monkeypatch.setattr(room_calendar.PageReads, "read", classmethod(reading))
    result = delta.pull_mailbox(ATLAS, full=True, nightly=True)
    assert result.stats["updated"] == 2 and result.stats["unchanged"] == 10
    assert loaded == [[f"{ATLAS} #3", f"{ATLAS} #4"]]


def test_the_organizer_mailboxes_get_a_nightly_task_of_their_own(provider, emulator, atlas, strict, celery_not_eager, monkeypatch):
    """Not eager: the building's task queues each organizer mailbox not yet done that night
    (``nightly_mailbox``), which claims it once per local date."""
    from tests.calendar_sync.inbound_helpers import ORGANIZER

    monkeypatch.setattr(nightly, "organizer_mailboxes", lambda: [ORGANIZER])
    queued = _queued(monkeypatch)
    today = dt.date.today().isoformat()
    assert inbound_tasks.nightly_building(atlas.building_id, today)[ORGANIZER] == "queued"
    assert queued["mailboxes"] == [(ORGANIZER, today)]
    summary = inbound_tasks.nightly_mailbox(ORGANIZER, today)
    assert summary["mailboxes"] == 1 and summary["requests"] >= 1
    assert NightlyRun.objects.get(mailbox=ORGANIZER).finished_at is not None
    assert inbound_tasks.nightly_mailbox(ORGANIZER, today) == {}  # claimed once per local date
