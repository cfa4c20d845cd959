#!/usr/bin/env python
"""Benchmark: the release job over 2,000 due reservations (issue 15, item 2).

1. a database (BENCH_DATABASE_URL / DATABASE_URL, default ``wp_release_bench``) created and
   migrated; the emulator in-process over HTTPS; 20 synced rooms requiring check-in (the
   seeding of bench/outbound.py), Normal mode;
2. 2,000 product-made reservations (100 per room, 5 minutes each, one every 6 minutes),
   created through ``reservation_create`` (outbox listener held back), each with its meeting
   made in the employee's calendar with the room invited — what the Normal-mode create push
   makes — through the emulator's control API, and linked to it (the product's own create
   push is measured by bench/outbound.py; here it would only make the seeding slow);
3. the release job (``release_due`` batches of 500, as ``reservations.tasks.release_no_shows``
   runs them) at a "now" when all 2,000 windows have closed, with the outbox listener held
   back so the database part is timed alone;
4. the 2,000 delete events pushed (``worker.process_sync_event``, 4 threads: the worker's
   concurrency) to the emulator; Graph requests counted from the emulator's request log.

Prints JSON: release seconds (database: claim, state, outbox rows), push seconds, Graph
requests per release (target 1: the organizer's /cancel), meetings left on the room calendars
in the released slots (target 0).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", os.environ.get("DATABASE_URL_RELEASE_BENCH", "postgres://postgres@127.0.0.1:5432/wp_release_bench"))
from bench import common  # noqa: E402

common.configure("wp_release_bench", redis_db=3)  # BENCH_REDIS_URL: a db no one else uses

PER_ROOM = int(os.environ.get("BENCH_RELEASE_PER_ROOM", "100"))  # 20 rooms x 100 = 2,000 due
SLOT = dt.timedelta(minutes=6)
LENGTH = dt.timedelta(minutes=5)
THREADS = 4


def _kind(path: str) -> str:
    """A request's path with its ids elided: /v1.0/users/{id}/events/{id}/cancel."""
    return re.sub(r"(/(?:users|events|calendars|subscriptions)/)[^/?]+", r"\1{id}", path.split("?", 1)[0])


def main() -> None:
    from bench import outbound  # bench/outbound.py: rooms and people

    common.setup_django()
    srv, _control = common.start_emulator("bench-release-")
    try:
        print(json.dumps({**run(srv, outbound), "load": common.load()}, indent=2))
    finally:
        srv.stop()


def run(srv, outbound) -> dict:
    from django.db import connections

    from calendar_sync.outbound import worker
    from reservations import outbox, services
    from reservations.models import Reservation, State, SyncEvent
    from reservations.services import release
    from workplace.celery import app

    app.conf.task_always_eager = True
    control = outbound.Control(srv.base_url, srv.ca_path)
    rooms, users, _client = outbound.setup(control)
    for room in rooms:
        room.checkin_required = True
        room.save(update_fields=["checkin_required"])

    base = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    started = time.monotonic()
    held, outbox._listeners[:] = list(outbox._listeners), []
    for k in range(PER_ROOM):
        for n, room in enumerate(rooms):
            user = users[(k + n) % len(users)]
            start = base + k * SLOT
            row = services.reservation_create(actor=user, room=room, start=start, end=start + LENGTH, subject=f"bench {n:02d}/{k:03d}")
            utc = start.replace(tzinfo=None)
            made = control.call("POST", f"/users/{user.email}/events", {
                "subject": row.subject, "start": {"dateTime": utc.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (utc + LENGTH).isoformat(), "timeZone": "UTC"},
                "attendees": [{"emailAddress": {"address": room.mailbox}, "type": "resource"}],
            })
            services.reservation_record_push(reservation=row, link=services.ExchangeIds(
                event_id=made["id"], change_key=made["changeKey"], ical_uid=made["iCalUId"], mailbox=user.email,
                organizer=user.email, sync_mailbox="user",
            ), answer="accepted", sync_state="synced")
    outbox._listeners[:] = held
    SyncEvent.objects.all().delete()  # the creates' events: their meetings were made above
    seeded = time.monotonic() - started
    total = Reservation.objects.count()
    linked = Reservation.objects.exclude(event_id="").count()

    # 3. The release job, its pushes held back.
    now = base + (PER_ROOM - 1) * SLOT + dt.timedelta(minutes=16)
    held, outbox._listeners[:] = list(outbox._listeners), []
    batches = []
    t0 = time.monotonic()
    while True:
        batch = release.release_due(now=now)
        batches.append(len(batch))
        if len(batch) < release.BATCH:
            break
    release_seconds = time.monotonic() - t0
    outbox._listeners[:] = held
    released = Reservation.objects.filter(state=State.RELEASED).count()

    # 4. The pushes, as a worker with 4 threads runs them.
    control.call("DELETE", "/requests")
    events = list(SyncEvent.objects.filter(type=SyncEvent.Type.DELETE, state=SyncEvent.State.NEW).values_list("pk", flat=True))
    lock = threading.Lock()

    def push_some():
        try:
            while True:
                with lock:
                    if not events:
                        return
                    event_id = events.pop()
                worker.process_sync_event(event_id)
        finally:
            connections.close_all()

    t1 = time.monotonic()
    threads = [threading.Thread(target=push_some) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    push_seconds = time.monotonic() - t1
    log = control.call("GET", "/requests?limit=200000")["entries"]  # the default answer stops at 1,000
    # Graph's own requests; the identity platform's (OpenID discovery, tokens: one per worker thread
    # at its start, then cached) are counted apart.
    graph = [e for e in log if e["path"].startswith(("/v1.0/", "/beta/"))]
    identity = len(log) - len(graph)
    processed = SyncEvent.objects.filter(type=SyncEvent.Type.DELETE, state=SyncEvent.State.PROCESSED).count()

    store = srv.store
    still_busy = 0
    for room in rooms:
        user = store.find_user(room.mailbox)
        for ev in store.mailboxes[user.id].events.values():
            if not ev.is_cancelled and base <= ev.start < now:
                still_busy += 1
    return {
        "reservations_due": total,
        "linked_to_a_meeting": linked,
        "seed_seconds_incl_create_pushes": round(seeded, 1),
        "released": released,
        "release_batches": batches,
        "release_seconds_database": round(release_seconds, 2),
        "releases_per_second_database": round(released / release_seconds, 1),
        "push_seconds": round(push_seconds, 2),
        "push_threads": THREADS,
        "delete_events_processed": processed,
        "graph_requests": len(graph),
        "identity_platform_requests": identity,
        "graph_requests_per_release": round(len(graph) / max(released, 1), 3),
        "graph_writes": sorted({e["path"].rsplit("/", 1)[-1] for e in graph if e["method"] == "POST"}),
        # What each request was (ids elided) and its status: a retry after a 429 shows here.
        "graph_requests_by_kind": dict(Counter(f'{e["method"]} {_kind(e["path"])} {e["status"]}' for e in graph).most_common()),
        "meetings_left_on_room_calendars": still_busy,
        "target_graph_requests_per_release": 1,
    }


if __name__ == "__main__":
    main()
