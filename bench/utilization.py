#!/usr/bin/env python
"""Benchmark: the utilization page (issue 15 item 4) over 500 rooms × one year of reservations.

1. (re)create the database (BENCH_UTILIZATION_DATABASE_URL, default ``wpa_bench``) and migrate it
   (``--reuse``: keep it when it already holds the seed);
2. seed 5 buildings (two time zones), 25 floors, 500 rooms and a year of reservations (weekdays,
   about 4 a room a day, 30–90 min; ~520,000 rows) with ONE set-based INSERT … SELECT from
   generate_series (no Python loop): a third checked in, one in seven released for a no-show.
   The rollup triggers (migration reservations 0011) fill ``reservations_room_day_usage`` in
   that same statement;
3. render the page through Django's test client (staff, full middleware and templates) for
   the last year over every room, one building, one floor and one room (page and CSV export)
   and the default 28 days, N times each, timing the server side;
4. time a trivial authenticated GET (``/my/status/`` with no ids) in the same run, and divide;
5. check the rollup against the direct computation for the year over every room (equal
   figures) and time the direct queries a few times for comparison;
6. print JSON: p50/p99 ms, ratios to the trivial GET, queries per page, load (uptime).
   Target: p99 ≤ 300 ms.

Usage: BENCH_UTILIZATION_DATABASE_URL=postgres://…/wpa_bench REDIS_URL=… BENCH_REDIS_URL=… \
       python bench/utilization.py [--iterations 40] [--reuse]
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/wpa_bench"
TARGET_MS = 300
TRIVIAL_URL = "/my/status/"
ROOMS = 500
DAYS = 365


def _filler(cursor, table: str, given: set[str]) -> tuple[list[str], list[str]]:
    """Columns NOT NULL without a database default that the seed doesn't give: a neutral value each."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL", [table],
    )
    names, values = [], []
    for name, kind in cursor.fetchall():
        if name in given:
            continue
        names.append(f'"{name}"')
        values.append("false" if kind == "boolean" else "0" if kind in ("integer", "bigint", "smallint") else
                      "now()" if "timestamp" in kind else "'{}'::jsonb" if kind == "jsonb" else "''")
    return names, values


def _modulo(sql: str) -> str:
    """The modulo operator as psycopg's placeholders need it (``%%``)."""
    return sql.replace(" % ", " %% ")


def _seed():
    from django.contrib.auth import get_user_model
    from django.db import connection

    from workplace.models import Building, Floor, Room

    User = get_user_model()
    staff = User.objects.create_user("admin", "admin@contoso.example", "demo-password", is_staff=True, is_superuser=True)
    people = [User.objects.create_user(n, f"{n}@contoso.example", "demo-password") for n in ("alice", "bob", "carol", "dave")]
    zones = ["Europe/Berlin", "Europe/Berlin", "America/New_York", "Europe/Berlin", "America/New_York"]
    buildings = [Building.objects.create(name=f"Building {i}", code=f"b{i}", timezone=zones[i]) for i in range(5)]
    floors = {b.pk: [Floor.objects.create(building=b, name=f"Floor {level}", level=level) for level in range(5)] for b in buildings}
    Room.objects.bulk_create([
        Room(building=buildings[i % 5], floor=floors[buildings[i % 5].pk][i // 5 % 5], name=f"Room {i:03}", capacity=4 + i % 13)
        for i in range(ROOMS)
    ])
    with connection.cursor() as cursor:
        columns = {"room_id", "subject", "start", "end", "requested_by_id", "requested_for_id", "state", "created_at", "updated_at"}
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'reservations_reservation'")
        existing = {row[0] for row in cursor.fetchall()}
        extra_names, extra_values = [], []
        state_sql = "'confirmed'"
        if {"checked_in_at", "released_at"} <= existing:
            # a third checked in, one in seven released (a no-show), the rest neither
            state_sql = "CASE WHEN (g.n % 7) = 0 THEN 'released' ELSE 'confirmed' END"
            extra_names += ['"checked_in_at"', '"released_at"']
            extra_values += ["CASE WHEN (g.n % 3) = 0 AND (g.n % 7) <> 0 THEN g.s + interval '3 minutes' END",
                             "CASE WHEN (g.n % 7) = 0 THEN g.s + interval '15 minutes' END"]
            columns |= {"checked_in_at", "released_at"}
        fill_names, fill_values = _filler(cursor, "reservations_reservation", columns | {"id"})
        cursor.execute(_modulo(f"""
            INSERT INTO reservations_reservation (room_id, subject, start, "end", requested_by_id, requested_for_id, state,
                                                  created_at, updated_at {''.join(', ' + n for n in extra_names + fill_names)})
            SELECT g.room_id, 'Meeting', g.s, g.s + g.len, g.who, g.who, {state_sql}, now(), now()
                   {''.join(', ' + v for v in extra_values + fill_values)}
              FROM (
                SELECT rm.id AS room_id,
                       (d::date + interval '1 hour' * (7 + slot * 2) + interval '30 minutes' * ((rm.id + slot) % 2)) AT TIME ZONE b.timezone AS s,
                       interval '30 minutes' * (1 + (rm.id + slot + extract(doy FROM d)::int) % 3) AS len,
                       %(people)s::bigint[] AS ppl, row_number() OVER () AS n,
                       (%(people)s::bigint[])[1 + (rm.id + slot) % 4] AS who
                  FROM workplace_room rm JOIN workplace_building b ON b.id = rm.building_id,
                       generate_series(current_date - %(days)s::int, current_date, interval '1 day') AS d,
                       generate_series(0, 4) AS slot
                 WHERE extract(isodow FROM d) < 6 AND (rm.id * 7 + extract(doy FROM d)::int * 3 + slot) % 5 <> 0
              ) AS g
        """), {"people": [p.pk for p in people], "days": DAYS})
        for table in ("reservations_reservation", "reservations_room_day_usage", "reservations_room_month_usage", "workplace_room",
                      "workplace_building"):
            cursor.execute(f"ANALYZE {table}")
    return staff, buildings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run if it holds the seed")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_UTILIZATION_DATABASE_URL", DEFAULT_DB)
    common.configure("wpa_bench", redis_db=13)
    common.setup_django(recreate=not args.reuse)
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from reservations import utilization as module
    from reservations.models import Reservation

    cache.clear()
    t0 = time.perf_counter()
    from django.contrib.auth import get_user_model

    from workplace.models import Building, Floor, Room

    if args.reuse and Reservation.objects.exists():
        staff, buildings = get_user_model().objects.get(username="admin"), list(Building.objects.order_by("pk"))
    else:
        staff, buildings = _seed()
    seed_seconds = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM reservations_room_day_usage), (SELECT count(*) FROM reservations_room_month_usage)")
        rollup_rows = dict(zip(("days", "months"), cursor.fetchone(), strict=True))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    today = timezone.localdate()
    year = {"start": (today - dt.timedelta(days=DAYS - 1)).isoformat(), "end": today.isoformat()}
    building = buildings[0]
    floor = Floor.objects.filter(building=building).order_by("level").first()
    room = Room.objects.filter(floor=floor).order_by("name").first()
    scenarios = {
        "year_all_rooms": year,
        "year_all_rooms_csv": {**year, "format": "csv"},
        "year_one_building": {**year, "building": str(building.pk)},
        "year_one_building_csv": {**year, "building": str(building.pk), "format": "csv"},
        "year_one_floor": {**year, "floor": str(floor.pk)},
        "year_one_room": {**year, "room": str(room.pk)},
        "default_28_days_all_rooms": {},
    }

    def timed(url, params, iterations):
        for _ in range(3):
            assert client.get(url, params).status_code == 200
        timings = []
        for _ in range(iterations):
            start = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        timings.sort()
        return timings

    p50_p99 = common.p50_p99

    trivial_before = timed(TRIVIAL_URL, {}, args.iterations)
    results = {}
    for name, params in scenarios.items():
        timings = timed("/utilization/", params, args.iterations)
        with CaptureQueriesContext(connection) as queries:
            client.get("/utilization/", params)
        p50, p99 = p50_p99(timings)
        results[name] = {"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "max_ms": round(timings[-1], 1),
                         "iterations": args.iterations, "queries": len(queries)}
    trivial_after = timed(TRIVIAL_URL, {}, args.iterations)
    base_p50 = min(p50_p99(trivial_before)[0], p50_p99(trivial_after)[0])
    base_p99 = min(p50_p99(trivial_before)[1], p50_p99(trivial_after)[1])
    for result in results.values():
        result["ratio_p50"] = round(result["p50_ms"] / base_p50, 1)
        result["ratio_p99"] = round(result["p99_ms"] / base_p99, 1)
    # 5. The rollup against the direct computation (the definition), and the direct queries' time.
    start_day, end_day = today - dt.timedelta(days=DAYS - 1), today
    fast = module.utilization(start=start_day, end=end_day)
    slow_timings = []
    for _ in range(3):
        t = time.perf_counter()
        slow = module.direct(start=start_day, end=end_day)
        slow_timings.append((time.perf_counter() - t) * 1000)
    fast_timings = []
    for _ in range(3):
        t = time.perf_counter()
        module.utilization(start=start_day, end=end_day)
        fast_timings.append((time.perf_counter() - t) * 1000)
    equal = fast == slow
    params = module._params(start_day, end_day, None, None)
    plans = {}
    with connection.cursor() as cursor:
        for label, sql in (("totals", module._TOTALS_ROLLUP), ("heatmap", module._HEATMAP_ROLLUP)):
            cursor.execute("EXPLAIN " + sql, params)
            plans[label] = "\n".join(row[0] for row in cursor.fetchall())
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    headline = results["year_all_rooms"]
    print(json.dumps({
        "bench": "utilization",
        "rooms": ROOMS,
        "reservations": Reservation.objects.count(),
        "rollup_rows": rollup_rows,
        "days": DAYS,
        "uptime": uptime,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "load": common.load(),
        "seed_seconds": round(seed_seconds, 1),
        "scenarios": results,
        "trivial_get": {"url": TRIVIAL_URL, "p50_ms": round(base_p50, 2), "p99_ms": round(base_p99, 2)},
        "year_all_rooms_queries_ms": {"rollup_min": round(min(fast_timings), 1), "direct_min": round(min(slow_timings), 1),
                                      "speedup": round(min(slow_timings) / min(fast_timings), 1)},
        "rollup_equals_direct_year_all_rooms": equal,
        "target_p99_ms": TARGET_MS,
        "year_all_rooms_p99_ms": headline["p99_ms"],
        "meets_target": all(r["p99_ms"] <= TARGET_MS for r in results.values()) and equal,
    }, indent=2))
    if os.environ.get("BENCH_EXPLAIN"):
        print(json.dumps(plans, indent=2), file=sys.stderr)
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main()
