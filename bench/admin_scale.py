#!/usr/bin/env python
"""Benchmark: Django admin at a large enterprise's scale (issue 17).

1. (re)create the database (BENCH_ADMIN_DATABASE_URL, default ``wp_admin_bench``) and migrate it
   (``--reuse``: keep it when it already holds the seed);
2. seed 20 buildings, 200 floors, 2,000 rooms (half of them needing approval, each with its
   approvers group), 5,000 people, 5,000 series, 300,000 reservations, 300,000 sync events,
   2,000 subscriptions and 100,000 recorded room copies, set-based (INSERT … SELECT from
   generate_series, no Python loop);
3. render, through Django's test client (staff, full middleware and templates), the changelists
   of reservations, sync events, rooms, series, recorded copies, people and subscriptions; the
   reservation list searched by subject, room name, e-mail, username and Graph event id; the
   change forms of a reservation and a room; N times each, timing the server side;
4. print JSON: p50/p99 ms, queries and the page's size and number of <option>s and filter
   links per page, load (uptime).

Usage: BENCH_ADMIN_DATABASE_URL=postgres://…/wp_admin_bench BENCH_REDIS_URL=… \
       python bench/admin_scale.py [--iterations 20] [--reuse]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/wp_admin_bench"
BUILDINGS, FLOORS_PER_BUILDING, ROOMS, PEOPLE, SERIES = 20, 10, 2000, 5000, 5000
RESERVATIONS, SYNC_EVENTS, ROOM_EVENTS = 300_000, 300_000, 100_000


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


def _insert(cursor, table: str, columns: dict[str, str], source: str, params=None) -> None:
    """INSERT INTO ``table`` (the ``columns``' names, then neutral fillers) SELECT their expressions FROM ``source``."""
    fill_names, fill_values = _filler(cursor, table, set(columns) | {"id"})
    names = [f'"{name}"' for name in columns] + fill_names
    values = list(columns.values()) + fill_values
    sql = f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} FROM {source}"
    cursor.execute(sql.replace(" % ", " %% "), params or {})


def _seed():
    from django.contrib.auth import get_user_model
    from django.db import connection

    User = get_user_model()
    staff = User.objects.create_user("admin", "admin@contoso.example", "demo-password", is_staff=True, is_superuser=True)
    with connection.cursor() as cursor:
        _insert(cursor, "workplace_building", {"name": "'Building ' || g", "code": "'b' || g", "timezone": "'Europe/Berlin'",
                                               "address": "''"}, f"generate_series(1, {BUILDINGS}) AS g")
        _insert(cursor, "workplace_floor", {"building_id": "b.id", "name": "'Floor ' || l", "level": "l"},
                f"workplace_building b, generate_series(1, {FLOORS_PER_BUILDING}) AS l")
        _insert(cursor, "auth_group", {"name": "'Approvers of Room ' || g"}, f"generate_series(1, {ROOMS // 2}) AS g")
        _insert(cursor, "workplace_room", {
            "building_id": "(SELECT id FROM workplace_building ORDER BY id OFFSET (g % %(b)s) LIMIT 1)",
            "floor_id": "(SELECT id FROM workplace_floor ORDER BY id OFFSET (g % %(f)s) LIMIT 1)",
            "name": "'Room ' || lpad(g::text, 4, '0')", "capacity": "4 + g % 13", "mailbox": "'room' || g || '@contoso.example'",
            "sync_enabled": "true", "reservable": "true", "needs_approval": "g % 2 = 0", "description": "''",
            "approvers_id": "CASE WHEN g % 2 = 0 THEN (SELECT id FROM auth_group WHERE name = 'Approvers of Room ' || (g / 2)) END",
            "checkin_required": "NULL", "exchange_values": "'{}'::jsonb", "kept_fields": "'[]'::jsonb", "exchange_differences": "'{}'::jsonb",
        }, f"generate_series(1, {ROOMS}) AS g", {"b": BUILDINGS, "f": BUILDINGS * FLOORS_PER_BUILDING})
        _insert(cursor, "workplace_arrangement", {"room_id": "id", "name": "'Default'", "is_default": "true"}, "workplace_room")
        _insert(cursor, "auth_user", {
            "username": "'person' || g", "email": "'person' || g || '@contoso.example'", "first_name": "'Person'", "last_name": "g::text",
            "password": "'!'", "is_active": "true", "is_staff": "false", "is_superuser": "false", "date_joined": "now()",
        }, f"generate_series(1, {PEOPLE}) AS g")
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM workplace_room")
        rooms = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM auth_user WHERE username LIKE 'person%%'")
        people = cursor.fetchone()[0]
        params = {"rooms": rooms, "people": people, "nr": len(rooms), "np": len(people)}
        _insert(cursor, "reservations_reservationseries", {
            "room_id": "(%(rooms)s::bigint[])[1 + g % %(nr)s]", "subject": "'Weekly ' || g", "frequency": "'weekly'", "interval": "1",
            "weekdays": "'[]'::jsonb", "count": "10", "first_start": "now() + interval '1 day' * (g % 300)",
            "first_end": "now() + interval '1 day' * (g % 300) + interval '1 hour'", "timezone": "'Europe/Berlin'",
            "requested_by_id": "(%(people)s::bigint[])[1 + g % %(np)s]", "requested_for_id": "(%(people)s::bigint[])[1 + g % %(np)s]",
            "created_at": "now()", "origin": "'app'",
        }, f"generate_series(1, {SERIES}) AS g", params)
        # Each room's k-th reservation starts 5 h after its (k-1)-th: no overlap (migration 0002's exclusion constraint).
        words = "(ARRAY['Stand-up', 'Design review', 'Planning', 'One to one', 'Workshop', 'Customer call', 'Retro'])"
        _insert(cursor, "reservations_reservation", {
            "room_id": "(%(rooms)s::bigint[])[1 + g % %(nr)s]",
            "subject": f"{words}[1 + g % 7] || ' ' || g",
            "start": "date_trunc('day', now()) - interval '200 days' + interval '5 hours' * (g / %(nr)s)",
            "end": "date_trunc('day', now()) - interval '200 days' + interval '5 hours' * (g / %(nr)s) + interval '1 hour'",
            "requested_by_id": "(%(people)s::bigint[])[1 + g % %(np)s]", "requested_for_id": "(%(people)s::bigint[])[1 + (g * 7) % %(np)s]",
            "state": "CASE WHEN g % 11 = 0 THEN 'cancelled' ELSE 'confirmed' END", "sync_state": "CASE WHEN g % 13 = 0 THEN 'error' ELSE 'synced' END",
            "source": "(ARRAY['portal', 'rest_api', 'outlook'])[1 + g % 3]", "subsource": "CASE WHEN g % 3 = 1 THEN 'sn_wsd_rest_api' ELSE '' END",
            "kind": "'standard'", "approval_state": "'not_required'", "origin": "CASE WHEN g % 3 = 2 THEN 'outlook' ELSE 'app' END",
            "event_id": "'AAMkAD' || md5(g::text) || md5((g + 1)::text)", "ical_uid": "'040000008200E000' || md5(g::text)",
            "mailbox": "'room' || g % %(nr)s || '@contoso.example'", "created_at": "now()", "updated_at": "now()",
            "series_id": "NULL", "body": "''",
        }, f"generate_series(1, {RESERVATIONS}) AS g", params)
        _insert(cursor, "reservations_syncevent", {
            "reservation_id": "r.id", "type": "CASE WHEN r.id % 4 = 0 THEN 'update' ELSE 'create' END",
            "state": "CASE WHEN r.id % 17 = 0 THEN 'error' ELSE 'processed' END",
            "error": "CASE WHEN r.id % 17 = 0 THEN 'ErrorSendAsDenied: the user account which was used to submit this request does not have the right' ELSE '' END",
            "details": "'{}'::jsonb", "attempts": "1", "created_at": "now() - interval '1 minute' * (r.id % 100000)", "updated_at": "now()",
        }, f"(SELECT id FROM reservations_reservation ORDER BY id LIMIT {SYNC_EVENTS}) AS r")
        cursor.execute("SELECT id FROM exchange_auth_calendarprovider ORDER BY id LIMIT 1")
        row = cursor.fetchone()
        if row is None:
            _insert(cursor, "exchange_auth_calendarprovider", {
                "name": "'Contoso'", "active": "true", "is_default": "true", "tenant_id": "'contoso.example'", "client_id": "'app'",
                "authority_host": "'https://login.microsoftonline.com'", "graph_base_url": "'https://graph.microsoft.com/v1.0'",
                "created_at": "now()", "updated_at": "now()", "sync_window_past_days": "60", "sync_window_future_days": "365",
            }, "generate_series(1, 1)")
        _insert(cursor, "calendar_sync_subscription", {
            "provider_id": "(SELECT id FROM exchange_auth_calendarprovider ORDER BY id LIMIT 1)", "mailbox": "room.mailbox",
            "kind": "'room'", "graph_id": "md5(room.mailbox)", "resource": "'/users/' || room.mailbox || '/events'",
            "client_state_hash": "md5(room.mailbox)", "status": "'active'", "expires_at": "now() + interval '2 days'", "created_at": "now()",
        }, "workplace_room AS room")
        _insert(cursor, "calendar_sync_roomevent", {
            "mailbox": "r.mailbox", "event_id": "r.event_id", "ical_uid": "r.ical_uid", "reservation_id": "r.id", "subject": "r.subject",
            "start": "r.start", "end": "r.end", "outcome": "'echo'", "first_seen_at": "now()", "last_seen_at": "now()",
        }, f"(SELECT * FROM reservations_reservation ORDER BY id LIMIT {ROOM_EVENTS}) AS r")
        for table in ("workplace_building", "workplace_floor", "workplace_room", "auth_user", "auth_group", "reservations_reservation",
                      "reservations_reservationseries", "reservations_syncevent", "calendar_sync_subscription", "calendar_sync_roomevent"):
            cursor.execute(f"ANALYZE {table}")
    return staff


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run if it holds the seed")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_ADMIN_DATABASE_URL", DEFAULT_DB)
    common.configure("wp_admin_bench", redis_db=12)
    common.setup_django(recreate=not args.reuse)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from reservations.models import Reservation, SyncEvent
    from workplace.models import Room

    cache.clear()
    t0 = time.perf_counter()
    if args.reuse and Reservation.objects.exists():
        staff = get_user_model().objects.get(username="admin")
    else:
        staff = _seed()
    seed_seconds = time.perf_counter() - t0
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    reservation = Reservation.objects.order_by("pk")[1000]
    room = Room.objects.order_by("pk")[10]
    pages = {
        "reservations": "/admin/reservations/reservation/",
        "reservations_one_room": f"/admin/reservations/reservation/?room__id__exact={room.pk}",
        "reservations_search_subject": "/admin/reservations/reservation/?q=Retro",
        "reservations_search_room": "/admin/reservations/reservation/?q=Room+0042",
        "reservations_search_email": "/admin/reservations/reservation/?q=person42%40contoso.example",
        "reservations_search_username": "/admin/reservations/reservation/?q=person4242",
        "reservations_search_event_id": f"/admin/reservations/reservation/?q={reservation.event_id}",
        "reservation_change": f"/admin/reservations/reservation/{reservation.pk}/change/",
        "sync_events": "/admin/reservations/syncevent/",
        "sync_events_errors": "/admin/reservations/syncevent/?state__exact=error",
        "rooms": "/admin/workplace/room/",
        "room_change": f"/admin/workplace/room/{room.pk}/change/",
        "series": "/admin/reservations/reservationseries/",
        "room_events": "/admin/calendar_sync/roomevent/",
        "people": "/admin/auth/user/",
        "subscriptions": "/admin/calendar_sync/subscription/",
    }
    results = {}
    for name, url in pages.items():
        for _ in range(2):
            assert client.get(url).status_code == 200, url
        timings = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, url
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        html = response.content.decode()
        filters = re.search(r'id="changelist-filter".*?</nav>', html, re.S)
        table = re.search(r'id="result_list".*?</table>', html, re.S)
        p50, p99 = common.p50_p99(timings)
        results[name] = {"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "queries": len(queries), "kb": len(response.content) // 1024,
                         "options": html.count("<option"), "filter_links": filters.group(0).count("<a ") if filters else 0,
                         "rows": table.group(0).count("<tr") - 1 if table else None}
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({
        "bench": "admin_scale",
        "rooms": Room.objects.count(), "reservations": Reservation.objects.count(), "sync_events": SyncEvent.objects.count(),
        "people": get_user_model().objects.count(),
        "uptime": uptime, "load": common.load(), "seed_seconds": round(seed_seconds, 1), "iterations": args.iterations,
        "pages": results,
    }, indent=2))


if __name__ == "__main__":
    main()
