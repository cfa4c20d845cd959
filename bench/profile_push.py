#!/usr/bin/env python
"""Profile outbound create pushes in one process (issue 17: the worker's CPU per push bounds
the workers' speed-up): N reservations booked over many rooms in Normal mode, their pushes
queued on Redis but not run, then each pushed by ``push_sync_event.run`` in a loop against the
in-process emulator (no latency), as a worker thread runs it.

Load-independent: reports the CPU of the pushing thread per push (``time.thread_time``: the
emulator's server threads, which play Graph, left out) and, with --profile, the top functions
(cProfile on that thread's CPU clock). Settings: bench/scale_worker_settings.py (the workers'
own), so logging, caches and timings are the bench workers'.

    .venv/bin/python bench/profile_push.py [--pushes 400] [--profile] [--sort tottime] [--limit 40]

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_profile_push),
BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/13; flushed).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_profile_push", redis_db=13, settings_module="bench.scale_worker_settings")

DOMAIN = common.DOMAIN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=400)
    parser.add_argument("--warm", type=int, default=30, help="pushes before the measured ones (imports, connection, token, caches)")
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--employees", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--dump", help="write the pstats to this file")
    args = parser.parse_args()

    common.setup_django()
    srv, control = common.start_emulator("bench-profile-push-")
    try:
        result = run(control, args)
    finally:
        srv.stop()
    print(json.dumps(result))
    return 0


def run(control, args) -> dict:
    from django.db import connection

    from bench.scale_outbound import setup
    from calendar_sync.outbound import tasks
    from reservations import services
    from reservations.models import SyncEvent

    found, people = setup(control, mode="Normal", rooms=args.rooms, employees=args.employees, write=[0, 0], read=[0, 0])
    common.flush_redis()
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    total = args.warm + args.pushes
    for n in range(total):
        room = found[n % len(found)]
        k = n // len(found)
        start = base + dt.timedelta(days=k // 10, hours=k % 10)
        services.reservation_create(actor=people[n % len(people)], room=room, start=start, end=start + dt.timedelta(minutes=50),
                                    subject=f"profile #{n:05d}")
    ids = list(SyncEvent.objects.filter(state=SyncEvent.State.NEW).order_by("pk").values_list("pk", flat=True))
    assert len(ids) == total, (len(ids), total)
    for event_id in ids[: args.warm]:
        assert tasks.push_sync_event.run(event_id) == "processed"
    connection.queries_log.clear()
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    cpu, wall = time.thread_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for event_id in ids[args.warm:]:
        status = tasks.push_sync_event.run(event_id)
        assert status == "processed", status
    if profiler:
        profiler.disable()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    assert not SyncEvent.objects.exclude(state=SyncEvent.State.PROCESSED).exists()
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.limit)
        if args.dump:
            profiler.dump_stats(args.dump)
    return {"pushes": args.pushes, "profiled": bool(profiler), "thread_cpu_ms_per_push": round(cpu * 1000 / args.pushes, 2),
            "wall_ms_per_push": round(wall * 1000 / args.pushes, 2), "load": common.load()}


if __name__ == "__main__":
    sys.exit(main())
