#!/usr/bin/env python
"""Profile POST /api/v1/reservations/ in-process (Django's test client, settings.prod, PostgreSQL).

Load-independent: reports process CPU ms per request (time.process_time) for the create and
for the GET /api/v1/me/ ceiling, and with --profile the top functions by cumulative time.
The database (BENCH_PROFILE_DATABASE_URL, default wp_bench_profile) is recreated and seeded
like bench/booking_api.py's.

Usage: python bench/profile_create.py [--requests 500] [--profile] [--sort tottime]
"""

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import booking_api  # noqa: E402

ROOT = booking_api.ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--limit", type=int, default=45)
    parser.add_argument("--dump", help="write each phase's pstats to DUMP.<phase>.pstats")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_PROFILE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_bench_profile")
    env = booking_api._env(database_url)
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    booking_api._recreate_database(database_url)
    subprocess.run([booking_api.PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run([booking_api.PY, "manage.py", "shell", "-c", booking_api.SEED.format(rooms=20)], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1].split()
    token, rooms = seeded[0], [int(pk) for pk in seeded[1].split(",")]
    os.environ.update(env)

    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT="application/json")
    slots = booking_api._slots(args.requests + 50, rooms)

    def create(item):
        room, start, end = item
        response = client.post("/api/v1/reservations/", {"room": room, "subject": "Bench booking", "start": start, "end": end},
                               content_type="application/json")
        assert response.status_code == 201, response.content[:300]

    def ping(_):
        response = client.get("/api/v1/me/")
        assert response.status_code == 200, response.content[:300]

    for item in slots[:50]:  # warm-up: imports, connection, caches
        create(item)
        ping(item)
    result = {}
    for name, fn, items in (("create", create, slots[50:]), ("ceiling", ping, slots[50:])):
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits on PostgreSQL
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for item in items:
            fn(item)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        result[name] = {"cpu_ms_per_request": round(cpu * 1000 / len(items), 3), "wall_ms_per_request": round(wall * 1000 / len(items), 3)}
        if profiler:
            print(f"--- {name} ---")
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.limit)
            if args.dump:
                profiler.dump_stats(f"{args.dump}.{name}.pstats")
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
