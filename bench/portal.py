#!/usr/bin/env python
"""Benchmark: the portal's room finder over 500 rooms and 10,000 reservations.

1. (re)create the database ``wp_portal_bench`` (BENCH_PORTAL_DATABASE_URL) and migrate it;
2. seed 5 buildings (two time zones), 500 rooms with equipment and layouts, and
   10,000 active reservations (20 per room over the next 10 days, two on the day viewed);
3. render the finder through Django's test client (signed in, full middleware and
   templates) for four filter sets, N times each, and time the server side (after a warm-up and
   ``gc.freeze()``, as each gunicorn worker freezes its loaded app: gunicorn.conf.py);
4. time a trivial authenticated GET (``/my/status/`` with no ids: session, user, an empty
   JSON answer) the same way in the same run, and divide: absolute times swing 3–4× between
   machines, the ratio much less;
5. print JSON: p50/p99 in ms, each page's p50/p99 ÷ the trivial GET's, and the number of
   queries per filter set; the targets are p99 <= 200 ms and ratios <= 8× (p50), <= 15× (p99).

The pages: the finder (four filter sets), a room's week, a building's day grid and its week
(all four with the targets) and my reservations (50 rows a page; reported, not part of
``meets_target``).
BENCH_PROFILE=1 prints a cProfile of the finder to stderr; BENCH_PROFILE=calendar profiles the grid.

Usage: python bench/portal.py [--iterations 60]
"""

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/wp_portal_bench"
TARGET_MS = 200
TARGET_RATIO_P50 = 8
TARGET_RATIO_P99 = 15
TRIVIAL_URL = "/my/status/"
ROOMS = 500
PER_ROOM = 20
REPORTED_ONLY = {"my_reservations"}


def _recreate_database(database_url: str) -> None:
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin = psycopg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                            password=parsed.password or "", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def _seed():
    import zoneinfo

    from django.contrib.auth import get_user_model

    from reservations.models import Reservation
    from workplace.models import Arrangement, Building, Equipment, Floor, Room

    users = [get_user_model().objects.create_user(name, f"{name}@contoso.example", "demo-password", first_name=name.capitalize())
             for name in ("alice", "bob", "carol", "dave")]
    equipment = [Equipment.objects.create(name=n, slug=n.lower().replace(" ", "-"))
                 for n in ("Projector", "Screen", "Video conference", "Whiteboard", "Phone")]
    zones = ["Europe/Berlin", "Europe/Berlin", "America/New_York", "Europe/Berlin", "America/New_York"]
    buildings = [Building.objects.create(name=f"Building {i}", code=f"b{i}", timezone=zones[i]) for i in range(5)]
    floors = {b.pk: [Floor.objects.create(building=b, name=f"Floor {level}", level=level) for level in range(5)] for b in buildings}
    rooms = []
    for index in range(ROOMS):
        building = buildings[index % 5]
        synced = index % 3 != 0
        rooms.append(Room(
            building=building, floor=floors[building.pk][index // 5 % 5], name=f"Room {index:03}", capacity=4 + index % 13,
            mailbox=f"room{index:03}@contoso.example" if synced else "", sync_enabled=synced,
        ))
    Room.objects.bulk_create(rooms)
    rooms = list(Room.objects.select_related("building").order_by("pk"))
    through = Room.equipment.through
    through.objects.bulk_create([through(room_id=room.pk, equipment_id=equipment[(room.pk + k) % 5].pk)
                                 for room in rooms for k in range(room.pk % 3 + 1)])
    Arrangement.objects.bulk_create(
        [Arrangement(room=room, name="Default", is_default=True) for room in rooms]
        + [Arrangement(room=room, name=("U-shape", "Boardroom", "Classroom")[room.pk % 3]) for room in rooms]
    )
    rows = []
    for room in rooms:
        tz = zoneinfo.ZoneInfo(room.building.timezone)
        today = dt.datetime.now(tz).date()
        for n in range(PER_ROOM):
            day = today + dt.timedelta(days=1 + n // 2)
            hour = 9 + (room.pk + n) % 4 + (4 if n % 2 else 0)
            start = dt.datetime.combine(day, dt.time(hour), tzinfo=tz)
            who = users[(room.pk + n) % 4]
            rows.append(Reservation(room=room, subject=f"Meeting {room.pk}-{n}", start=start, end=start + dt.timedelta(hours=1),
                                    requested_by=who, requested_for=who, state="confirmed"))
    Reservation.objects.bulk_create(rows, batch_size=2000)
    # A live database has planner statistics (autovacuum analyzes a table after bulk changes);
    # without them PostgreSQL guesses a handful of rows and picks a sequential plan.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return users[0], buildings, dt.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).date()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_PORTAL_DATABASE_URL", DEFAULT_DB)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"
    _recreate_database(database_url)

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # No setup_test_environment(): its template instrumentation (a signal and a context copy per
    # template rendered) is test-only overhead the product doesn't pay.
    call_command("migrate", verbosity=0)
    cache.clear()
    t0 = time.perf_counter()
    alice, buildings, today = _seed()
    seed_seconds = time.perf_counter() - t0
    from reservations.models import Reservation
    from workplace.models import Room

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(alice)
    day = (today + dt.timedelta(days=1)).isoformat()
    scenarios = {
        "all_rooms": {"date": day},
        "building_free_between": {"date": day, "building": "b0", "free_from": "10:00", "free_to": "11:00"},
        "equipment_capacity_layout": {"date": day, "equipment": ["projector", "screen"], "capacity": "8", "arrangement": "Boardroom"},
        "all_rooms_page_10": {"date": day, "page": "10"},
    }
    def timed(url, params):
        for _ in range(5):  # warm up: cached properties, template loading
            assert client.get(url, params).status_code == 200
        timings, cpu = [], []
        for _ in range(args.iterations):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            assert response.status_code == 200
        timings.sort()
        return timings, cpu, response

    def p50_p99(timings):
        return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]

    # The trivial GET is measured before and after the pages; the better of the two runs is the base.
    # As each gunicorn worker does once its app is loaded (gunicorn.conf.py post_worker_init):
    # the long-lived objects (Django's, the seed's) leave the garbage collector's full passes.
    import gc

    for params in scenarios.values():
        client.get("/", params)
    gc.freeze()
    trivial_before, _, _ = timed(TRIVIAL_URL, {})
    results = {}
    for name, params in scenarios.items():
        timings, cpu, response = timed("/", params)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/", params)
        results[name] = {
            "p50_ms": round(p50_p99(timings)[0], 1),
            "p99_ms": round(p50_p99(timings)[1], 1),
            "max_ms": round(timings[-1], 1),
            "python_cpu_p50_ms": round(statistics.median(cpu), 1),
            "queries": len(queries),
            "rooms_matching": int(re.search(rb'id="results-title" class="h3">(\d+) room', response.content).group(1)),
            "rooms_on_page": response.content.count(b'class="room card"'),
            "bookings_drawn": response.content.count(b'class="block'),
        }
    # The week view of one room (issue 14): its busiest week.
    week_room = Room.objects.order_by("pk").first()
    timings, cpu, response = timed(f"/rooms/{week_room.pk}/week/", {"week": day})
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/rooms/{week_room.pk}/week/", {"week": day})
    results["room_week"] = {
        "p50_ms": round(p50_p99(timings)[0], 1), "p99_ms": round(p50_p99(timings)[1], 1), "max_ms": round(timings[-1], 1),
        "python_cpu_p50_ms": round(statistics.median(cpu), 1), "queries": len(queries),
        "busy_cells": response.content.count(b'class="busy'),
    }
    # A building's day grid (issue 14): 100 rooms in b0, the first page of 25, half-hour columns.
    grid_params = {"building": "b0", "date": day}
    timings, cpu, response = timed("/calendar/", grid_params)
    with CaptureQueriesContext(connection) as queries:
        client.get("/calendar/", grid_params)
    results["building_day"] = {
        "p50_ms": round(p50_p99(timings)[0], 1), "p99_ms": round(p50_p99(timings)[1], 1), "max_ms": round(timings[-1], 1),
        "python_cpu_p50_ms": round(statistics.median(cpu), 1), "queries": len(queries),
        "rooms_drawn": response.content.count(b"<tr data-room="), "busy_cells": response.content.count(b'class="busy'),
        "free_links": response.content.count(b'<td class="free"'),
    }
    # My reservations (reported, no target of its own): alice's upcoming ones, 50 a page.
    timings, cpu, response = timed("/my/", {})
    with CaptureQueriesContext(connection) as queries:
        client.get("/my/", {})
    results["my_reservations"] = {
        "p50_ms": round(p50_p99(timings)[0], 1), "p99_ms": round(p50_p99(timings)[1], 1), "max_ms": round(timings[-1], 1),
        "python_cpu_p50_ms": round(statistics.median(cpu), 1), "queries": len(queries),
        "rows_drawn": response.content.count(b'<tr id="rsv-'),
    }
    # A building's week (issue 14): b0's first 25 rooms, next week's Monday to Friday 08:00–18:00 in hour columns.
    week_params = {"building": "b0", "date": (today + dt.timedelta(days=7)).isoformat()}
    timings, cpu, response = timed("/calendar/week/", week_params)
    with CaptureQueriesContext(connection) as queries:
        client.get("/calendar/week/", week_params)
    results["building_week"] = {
        "p50_ms": round(p50_p99(timings)[0], 1), "p99_ms": round(p50_p99(timings)[1], 1), "max_ms": round(timings[-1], 1),
        "python_cpu_p50_ms": round(statistics.median(cpu), 1), "queries": len(queries),
        "rooms_drawn": response.content.count(b"<tr data-room="), "busy_cells": response.content.count(b'<td class="busy'),
        "free_links": response.content.count(b'aria-label="Book '),
    }
    trivial_after, _, _ = timed(TRIVIAL_URL, {})
    (b50, b99), (a50, a99) = p50_p99(trivial_before), p50_p99(trivial_after)
    base_p50, base_p99 = min(b50, a50), min(b99, a99)
    for result in results.values():
        result["ratio_p50"] = round(result["p50_ms"] / base_p50, 1)
        result["ratio_p99"] = round(result["p99_ms"] / base_p99, 1)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            if os.environ["BENCH_PROFILE"] == "calendar":
                client.get("/calendar/", grid_params)
            else:
                client.get("/", scenarios["all_rooms"])
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(40)
    targeted = {name: r for name, r in results.items() if name not in REPORTED_ONLY}
    worst = max(r["p99_ms"] for r in targeted.values())
    meets = all(r["ratio_p50"] <= TARGET_RATIO_P50 and r["ratio_p99"] <= TARGET_RATIO_P99 for r in targeted.values())
    print(json.dumps({
        "bench": "portal_finder",
        "rooms": Room.objects.count(),
        "reservations": Reservation.objects.count(),
        "iterations": args.iterations,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "seed_seconds": round(seed_seconds, 1),
        "scenarios": results,
        "trivial_get": {"url": TRIVIAL_URL, "p50_ms": round(base_p50, 2), "p99_ms": round(base_p99, 2)},
        "target_ratio_p50": TARGET_RATIO_P50, "target_ratio_p99": TARGET_RATIO_P99,
        "worst_ratio_p50": max(r["ratio_p50"] for r in targeted.values()),
        "worst_ratio_p99": max(r["ratio_p99"] for r in targeted.values()),
        "target_p99_ms": TARGET_MS,
        "worst_p99_ms": worst,
        "meets_absolute_target": worst <= TARGET_MS,
        "meets_target": meets,
    }, indent=2))
    # The ratios decide (absolute times swing 3–4× with the machine's load); the absolute p99 is reported.
    if not meets:
        sys.exit(1)


if __name__ == "__main__":
    main()
