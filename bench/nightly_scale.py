"""The nightly reconcile at scale (issue 17 item 4): many rooms, each with many Outlook meetings,
the pass queued as ``nightly_building`` tasks on the ``nightly`` queue, each building split into
``nightly_chunk`` tasks of rooms that real Celery workers share, with Graph-like latency on
(reads 50–150 ms, writes 150–400 ms, seeded).

Phases, one set of workers: the first night of rooms with 50 meetings each (every meeting
new: recorded, latency off), their unchanged night; the first night of the rooms with 200
meetings each, their unchanged night, then a night after 1% of the meetings changed. The
small mailboxes go first, so memory the big ones leave behind can't hide growth.

Reported per night: minutes, Graph requests per room (one delta round is ceil(events / page
size) requests: one for up to 200 meetings), the workers' CPU per room, peak resident memory
(each process's kernel high-water mark VmHWM, reset per phase through /proc/PID/clear_refs)
and its growth over the phase; then the projection to the full size (2,000 rooms × 200
meetings) from the measured cost per room and worker slot, for several numbers of slots, as
a fraction of a night's window (4 hours unless ``--window-hours``), and the load.

    .venv/bin/python bench/nightly_scale.py            # (--quick) 16 rooms × 200 (+ 8 × 50): minutes
    .venv/bin/python bench/nightly_scale.py --full     # 2,000 rooms × 200 (+ 100 × 50): hours of seeding
    .venv/bin/python bench/nightly_scale.py --rooms 48 --buildings 1 --chunk-rooms 6   # one big building, split

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_nightly_bench),
BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/11).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import resource
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_nightly_bench", redis_db=11)

DOMAIN = common.DOMAIN
ORGANIZER = f"bob@{DOMAIN}"
FULL_ROOMS, FULL_EVENTS = 2000, 200


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--full", action="store_true", help="the full size: 2,000 rooms × 200 meetings in 10 buildings (hours of seeding)")
    p.add_argument("--quick", action="store_true", help="the default: scaled for a shared 2-core machine (16 rooms × 200 in "
                                                        "2 buildings, chunks of 4 rooms, 8 rooms × 50)")
    p.add_argument("--rooms", type=int, default=None)
    p.add_argument("--events", type=int, default=FULL_EVENTS, help="Outlook meetings per room")
    p.add_argument("--small-events", type=int, default=50, help="meetings per room of the memory comparison")
    p.add_argument("--small-rooms", type=int, default=None, help="rooms of the memory comparison")
    p.add_argument("--buildings", type=int, default=None)
    p.add_argument("--workers", type=int, default=2, help="Celery worker processes on the nightly queue")
    p.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    p.add_argument("--changed", type=float, default=0.01)
    p.add_argument("--chunk-rooms", type=int, default=None, help="CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS of the workers")
    p.add_argument("--window-hours", type=float, default=4.0)
    p.add_argument("--seed-http", action="store_true", help="seed the meetings through the emulator's control API, one "
                                                            "HTTPS call each (slow), not on its event loop")
    p.add_argument("--project-workers", default="1,4,8,16", help="worker slots for the full-size projection")
    args = p.parse_args()
    # A bench run in the background (nohup: SIGINT ignored) ended with SIGTERM still stops its workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.full:
        args.rooms, args.buildings = args.rooms or FULL_ROOMS, args.buildings or 10
        args.small_rooms, args.chunk_rooms = args.small_rooms or 100, args.chunk_rooms or 25
    else:  # two buildings of 8 rooms, each split into chunks of 4 rooms
        args.rooms, args.buildings = args.rooms or 16, args.buildings or 2
        args.small_rooms, args.chunk_rooms = args.small_rooms or 8, args.chunk_rooms or 4
    os.environ["CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS"] = str(args.chunk_rooms)
    small_rooms = args.small_rooms

    common.ensure_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    common.flush_redis()
    cache.clear()
    from calendar_sync.common.clients import system_client
    from calendar_sync.inbound import delta
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import (
        MailboxDeltaState,
        NightlyRun,
        RoomEvent,
        Subscription,
        WebhookNotification,
    )
    from exchange_auth import properties
    from exchange_auth.demo import seed_provider
    from exchange_auth.graph import users_path
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.celery import app
    from workplace.models import Building, Room

    for model in (SyncEvent, Reservation, ReservationSeries, WebhookNotification, Subscription, MailboxDeltaState, RoomEvent, NightlyRun):
        model.objects.all().delete()
    Room.objects.filter(building__code__startswith="night-").delete()
    srv, control = common.start_emulator("bench-nightly-")
    get_user_model().objects.get_or_create(username="bob", defaults={"email": ORGANIZER})
    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")

    def building(code: str) -> Building:
        return Building.objects.get_or_create(code=code, defaults={"name": code.title(), "timezone": "Europe/Amsterdam"})[0]

    main_buildings = [building(f"night-{b}") for b in range(args.buildings)]
    main_rooms = []
    for b, found in enumerate(main_buildings):
        names = [f"night-{i:04d}" for i in range(b, args.rooms, len(main_buildings))]
        main_rooms += common.seed_rooms(control, found, names)
    small_building = building("night-small")
    small = common.seed_rooms(control, small_building, [f"night-small-{i:04d}" for i in range(small_rooms)])

    # Outlook meetings in every room, answered by the room (before latency is on).
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)

    def meeting(room: str, k: int) -> dict:
        start = base + dt.timedelta(days=k // 10, hours=k % 10)
        return {
            "subject": f"night {room.split('@')[0]} #{k}", "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
            "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=45)).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        }

    slots = [(r.mailbox, k) for k in range(args.events) for r in main_rooms]
    slots += [(r.mailbox, k) for k in range(args.small_events) for r in small]
    started = time.monotonic()
    if args.seed_http:  # one HTTPS call per meeting (the old way, about 130 a second here)
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda slot: control.call("POST", f"/users/{ORGANIZER}/events", meeting(*slot))["id"], slots))
    else:
        ids = common.seed_events(srv, ORGANIZER, [meeting(*slot) for slot in slots])
    answered = sum(1 for r in main_rooms + small for _ in srv.store.mailboxes[srv.store.find_user(r.mailbox).id].events)
    if answered != len(slots):
        raise RuntimeError(f"{answered} room copies of {len(slots)} meetings")
    meetings = ids[:len(main_rooms) * args.events]
    seed_seconds = time.monotonic() - started
    seeded = len(slots)
    app.conf.task_always_eager = False
    slots_measured = args.workers * args.concurrency
    latency = {"write": [150, 400], "read": [50, 150]}

    def night(buildings: list[Building], rooms: list[Room], label: str, events: int, *, watch: common.MemoryWatch) -> dict:
        ids = [found.pk for found in buildings]
        NightlyRun.objects.filter(building_id__in=ids).delete()
        control.call("DELETE", "/requests")
        watch.reset()
        local_date = dt.date.today()
        load_before = common.load()
        own_cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        for found in buildings:
            inbound_tasks.nightly_building.delay(found.pk, local_date.isoformat())
        while time.monotonic() - started < 4 * 3600:
            if NightlyRun.objects.filter(building_id__in=ids, local_date=local_date, finished_at__isnull=False).count() >= len(ids):
                break
            time.sleep(0.25)
        seconds = time.monotonic() - started
        watch.sample()
        after = resource.getrusage(resource.RUSAGE_SELF)
        emulator_cpu = after.ru_utime + after.ru_stime - own_cpu.ru_utime - own_cpu.ru_stime
        log = control.call("GET", "/requests?limit=1000000")
        graph_ms = [e["duration_ms"] for e in log["entries"] if e["mailbox"]]
        per_room = [log["counts"]["by_mailbox"].get(r.mailbox.lower(), 0) for r in rooms]
        summaries = list(NightlyRun.objects.filter(building_id__in=ids).values_list("summary", flat=True))
        out = {
            "minutes": round(seconds / 60, 2),
            "seconds": round(seconds, 1),
            "rooms": len(rooms),
            "events_per_room": events,
            "graph_requests": log["total"],
            "graph_requests_per_room_mean": round(sum(per_room) / len(rooms), 3),
            "graph_requests_per_room_max": max(per_room),
            "one_delta_round_requests": math.ceil(max(1, events) / delta.PAGE_SIZE),
            "requests_by_endpoint": log["counts"]["by_endpoint"],
            "graph_ms_per_request_mean": round(sum(graph_ms) / max(1, len(graph_ms)), 1),
            "slot_seconds_per_room": round(sum(s.get("room_seconds", 0) for s in summaries) / len(rooms), 3),
            "wall_slot_seconds_per_room": round(seconds * slots_measured / len(rooms), 3),
            "emulator_cpu_seconds_per_room": round(emulator_cpu / len(rooms), 3),
            "created": sum(s.get("created", 0) for s in summaries),
            "updated": sum(s.get("updated", 0) for s in summaries),
            "unchanged": sum(s.get("unchanged", 0) for s in summaries),
            "failed_rooms": sum(s.get("failed_rooms", 0) for s in summaries),
            "chunks": sum(s.get("chunks", 0) for s in summaries),
            "worker_cpu_seconds_per_room": round(watch.cpu_seconds / len(rooms), 3),
            "worker_peak_rss_mb": round(watch.peak_kb / 1024, 1),
            "pool_child_peak_rss_mb": round(watch.peak_child_kb / 1024, 1),
            "worker_rss_growth_mb": round(watch.growth_kb / 1024, 2),
            "workers_peak_rss_sum_mb": round(watch.peak_sum_kb / 1024, 1),
            "load_at_start": load_before,
        }
        print(json.dumps({label: out}), file=sys.stderr, flush=True)
        return out

    nights = {}
    procs = []
    try:
        client = system_client(provider)
        procs = common.start_workers(srv, args.workers, queues="nightly", concurrency=args.concurrency, name="bench-nightly",
                                     settings_module="tests.calendar_sync.inbound_worker_settings")
        with common.MemoryWatch(procs) as watch:
            # The first nights record every meeting (latency off: setup). The small mailboxes go
            # first, so that memory the bigger ones leave behind can't hide growth.
            small_label = f"unchanged_{args.small_events}_events"
            nights[f"first_night_{args.small_events}_events"] = night([small_building], small, "first_small", args.small_events, watch=watch)
            control.call("POST", "/config", {"latency": latency, "latency_seed": 3})
            nights[small_label] = night([small_building], small, small_label, args.small_events, watch=watch)
            control.call("POST", "/config", {"latency": {}})
            nights[f"first_night_{args.events}_events"] = night(main_buildings, main_rooms, "first_main", args.events, watch=watch)
            control.call("POST", "/config", {"latency": latency, "latency_seed": 3})
            nights["unchanged"] = night(main_buildings, main_rooms, "unchanged", args.events, watch=watch)
            picks = random.Random(7).sample(meetings, max(1, int(len(meetings) * args.changed)))  # noqa: S311
            if args.seed_http:
                for event_id in picks:
                    client.patch(users_path(ORGANIZER, "events", event_id), json={"subject": "night changed"})
            else:  # changed as in Outlook: 4,000 PATCHes with Graph's write latency would take 20 minutes of the bench
                common.update_events(srv, ORGANIZER, picks, {"subject": "night changed"})
            nights["changed_1pct"] = night(main_buildings, main_rooms, "changed_1pct", args.events, watch=watch)
            nights["changed_1pct"]["meetings_changed"] = len(picks)
    finally:
        common.stop_workers(procs)
        srv.stop()
    recorded = Reservation.objects.filter(origin="exchange").count()

    unchanged, changed = nights["unchanged"], nights["changed_1pct"]
    small_night = nights[small_label]
    scale = FULL_EVENTS / args.events if args.events < FULL_EVENTS else 1  # a smaller mailbox measured: its cost scaled up
    window_minutes = args.window_hours * 60
    projection = {}
    for slots in (int(n) for n in args.project_workers.split(",")):
        minutes = FULL_ROOMS * unchanged["slot_seconds_per_room"] * scale / slots / 60
        minutes_changed = FULL_ROOMS * changed["slot_seconds_per_room"] * scale / slots / 60
        projection[f"{slots}_slots"] = {"minutes_unchanged": round(minutes, 1), "minutes_changed_1pct": round(minutes_changed, 1),
                                        "fraction_of_window_unchanged": round(minutes / window_minutes, 3),
                                        "fraction_of_window_changed_1pct": round(minutes_changed / window_minutes, 3)}
    cpu_minutes = {key: round(FULL_ROOMS * night_["worker_cpu_seconds_per_room"] * scale / 60, 1)
                   for key, night_ in (("unchanged", unchanged), ("changed_1pct", changed))}
    print(json.dumps({
        "summary": {
            "minutes_unchanged": unchanged["minutes"], "minutes_changed_1pct": changed["minutes"],
            "rooms": args.rooms, "events_per_room": args.events, "slots": slots_measured,
            "graph_requests_per_room_unchanged": unchanged["graph_requests_per_room_mean"],
            "graph_requests_per_room_unchanged_max": unchanged["graph_requests_per_room_max"],
            "graph_requests_per_room_changed_1pct": changed["graph_requests_per_room_mean"],
            "one_delta_round_requests": unchanged["one_delta_round_requests"],
            "worker_peak_rss_mb": max(n["worker_peak_rss_mb"] for n in nights.values()),
            "load_during": unchanged["load_at_start"],
        },
        "rooms": args.rooms, "events_per_room": args.events, "buildings": args.buildings,
        "workers": args.workers, "concurrency_per_worker": args.concurrency, "chunk_rooms": args.chunk_rooms,
        "page_size": delta.PAGE_SIZE, "latency_ms": latency,
        "seed_seconds": round(seed_seconds, 1), "seeded_meetings": seeded,
        "seed_http": args.seed_http, "reservations_recorded": recorded, "nights": nights,
        "memory": {f"pool_child_peak_rss_mb_{args.events}_events": unchanged["pool_child_peak_rss_mb"],
                   f"pool_child_peak_rss_mb_{args.small_events}_events": small_night["pool_child_peak_rss_mb"],
                   f"pool_child_peak_rss_mb_first_night_{args.events}_events": nights[f"first_night_{args.events}_events"]["pool_child_peak_rss_mb"],
                   f"peak_rss_mb_{args.events}_events": unchanged["worker_peak_rss_mb"],
                   f"peak_rss_mb_{args.small_events}_events": small_night["worker_peak_rss_mb"],
                   "ratio": round(unchanged["worker_peak_rss_mb"] / max(0.1, small_night["worker_peak_rss_mb"]), 3),
                   f"rss_growth_mb_{args.events}_events": unchanged["worker_rss_growth_mb"],
                   f"rss_growth_mb_{args.small_events}_events": small_night["worker_rss_growth_mb"],
                   f"peak_rss_mb_first_night_{args.events}_events": nights[f"first_night_{args.events}_events"]["worker_peak_rss_mb"],
                   f"peak_rss_mb_first_night_{args.small_events}_events": nights[f"first_night_{args.small_events}_events"]["worker_peak_rss_mb"]},
        "projection_full_size": {
            "rooms": FULL_ROOMS, "events_per_room": FULL_EVENTS, "window_hours": args.window_hours,
            "slot_seconds_per_room_unchanged": round(unchanged["slot_seconds_per_room"] * scale, 3),
            "slot_seconds_per_room_changed_1pct": round(changed["slot_seconds_per_room"] * scale, 3),
            "by_slots": projection,
            "worker_cpu_minutes_in_all": cpu_minutes,
            "note": "a slot is one prefork child (workers x concurrency); the measured time a slot spends on a room (its "
                    "chunk's rounds: Graph with latency, the worker's CPU, PostgreSQL; the emulator shares this machine's CPU, "
                    "emulator_cpu_seconds_per_room, which Graph would not), at the load measured, divided by the slots: rooms are separate mailboxes, so Graph's per-mailbox limits do not bind "
                    "across rooms. The slots need cores: the night's worker CPU in all (worker_cpu_minutes_in_all, PostgreSQL's "
                    "not counted) divided by the cores is a floor.",
        },
        "load_at_end": common.load(),
    }, indent=2))


if __name__ == "__main__":
    main()
