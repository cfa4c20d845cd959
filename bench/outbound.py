"""Outbound sync benchmark: 500 reservations across 20 rooms through the REST API,
pushed by a real Celery worker (Redis) to the emulator over HTTPS; then the same
with ~10% of the creates answered 429.

Prints one JSON object. What is counted (from the emulator's request log):
- ``push_requests_per_reservation``: Graph requests the push itself made for the
  creates (POST /users/{id}/events, including retried ones answered 429), divided
  by the number of reservations. Target 1.0 without faults.
- ``confirmation_http_requests``: POST /$batch requests that read the room's answer
  (each reads up to 20 organizer copies); ``..._per_reservation`` divides by 500.
- ``token_requests``: token-endpoint calls (msal caches the app token).
- ``seconds_until_all_confirmed``: from the first API call until every reservation
  is ``confirmed`` (API calls included).
- ``duplicate_meetings``: organizer-mailbox meetings beyond one per reservation.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_sync_bench),
BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/3). The database is created and migrated
if needed and its reservations are wiped first.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_sync_bench", redis_db=3)

Control = common.Control  # bench/release.py, attendee_messages.py and series_release.py take these from here
ensure_database = common.ensure_database
ROOMS = 20
RESERVATIONS = 500
USERS = 10
DOMAIN = common.DOMAIN


def main() -> None:
    common.setup_django()
    srv, control = common.start_emulator("bench-emulator-")
    workers = []
    try:
        rooms, users, client = setup(control)
        common.flush_redis()
        workers = common.start_workers(srv, 1, concurrency=4, name="bench-outbound")
        results = {"reservations": RESERVATIONS, "rooms": ROOMS, "employees": USERS}
        results["clean"] = run_phase(control, srv, client, rooms, users, day_offset=1, fault_rate=0.0)
        results["with_10pct_429"] = run_phase(control, srv, client, rooms, users, day_offset=8, fault_rate=0.10)
        results["load"] = common.load()
        print(json.dumps(results, indent=2))
    finally:
        common.stop_workers(workers, grace=20)
        srv.stop()


def setup(control: Control):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from workplace.models import ApiToken

    common.wipe_reservations()
    control.call("POST", "/reset", {"seed": "demo"})
    control.call("POST", "/seed", {
        "rooms": [{"upn": f"bench-room-{i:02d}@{DOMAIN}", "displayName": f"Bench {i:02d}", "capacity": 8} for i in range(ROOMS)],
        "users": [{"upn": f"bench-user-{i:02d}@{DOMAIN}"} for i in range(USERS)],
    })
    found = common.building("bench", "Bench tower")
    rooms = common.synced_rooms(found, [(f"Bench {i:02d}", f"bench-room-{i:02d}@{DOMAIN}") for i in range(ROOMS)])
    users = common.people([f"bench-user-{i:02d}" for i in range(USERS)])
    api_user, _ = get_user_model().objects.get_or_create(username="bench-api", defaults={"email": f"bench-api@{DOMAIN}", "is_staff": True})
    _, token = ApiToken.objects.create(user=api_user, name="bench")
    common.normal_mode()
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return rooms, users, client


def run_phase(control: Control, srv, client, rooms, users, *, day_offset: int, fault_rate: float) -> dict:
    from reservations.models import Reservation, State, SyncEvent
    from workplace.celery import app

    app.conf.task_always_eager = False
    control.call("DELETE", "/faults")
    control.call("DELETE", "/requests")
    stop = threading.Event()
    injected = [0]
    if fault_rate:
        threading.Thread(target=inject_429s, args=(control, fault_rate, stop, injected), daemon=True).start()

    base = dt.datetime.now(dt.UTC).replace(hour=7, minute=0, second=0, microsecond=0) + dt.timedelta(days=day_offset)
    per_room = RESERVATIONS // len(rooms)
    started = time.monotonic()
    ids, api_errors = [], 0
    for n in range(RESERVATIONS):
        room = rooms[n % len(rooms)]
        k = n // len(rooms)
        start = base + dt.timedelta(days=k // 5, hours=k % 5)
        resp = client.post("/api/v1/reservations/", {
            "room": room.pk, "subject": f"bench d{day_offset} #{n:03d}", "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=50)).isoformat(), "requested_for": users[n % len(users)].email,
        }, format="json")
        if resp.status_code != 201:
            if not api_errors:
                print("API error:", resp.status_code, resp.content[:300], file=sys.stderr)
            api_errors += 1
            continue
        ids.append(resp.json()["id"])
    api_seconds = time.monotonic() - started
    assert per_room * len(rooms) == RESERVATIONS

    deadline = time.monotonic() + 600
    from django.db import OperationalError, connection

    while time.monotonic() < deadline:
        try:
            done = Reservation.objects.filter(pk__in=ids).exclude(state=State.AWAITING_CONFIRMATION).count()
        except OperationalError:  # a restarted database: reconnect and keep waiting
            connection.close()
            time.sleep(1)
            continue
        if done == len(ids):
            break
        time.sleep(0.25)
    seconds = time.monotonic() - started
    stop.set()

    states = dict.fromkeys(State.values, 0)
    for state in Reservation.objects.filter(pk__in=ids).values_list("state", flat=True):
        states[state] += 1
    log = control.call("GET", "/requests?limit=200000")
    entries = log["entries"]
    for e in entries:
        e["path"] = e["path"].removeprefix("/v1.0")
    top = [e for e in entries if not e.get("batch")]
    creates = [e for e in top if e["method"] == "POST" and e["path"].startswith("/users/") and e["path"].endswith("/events")]
    batches = [e for e in top if e["path"] == "/$batch"]
    tokens = [e for e in top if "/oauth2/" in e["path"]]
    other = [e for e in top if e not in creates and e not in batches and e not in tokens]

    # Duplicates: meetings in the organizers' mailboxes with a bench subject of this phase.
    prefix = f"bench d{day_offset} #"

    def count_meetings():
        seen: dict[str, int] = {}
        for mb in srv.store.mailboxes.values():
            for ev in mb.events.values():
                if ev.is_organizer and not ev.is_cancelled and ev.subject.startswith(prefix):
                    seen[ev.subject] = seen.get(ev.subject, 0) + 1
        return seen

    seen = srv.call(count_meetings)
    events = SyncEvent.objects.filter(reservation_id__in=ids)
    return {
        "api_errors": api_errors,
        "api_seconds": round(api_seconds, 2),
        "seconds_until_all_confirmed": round(seconds, 2),
        "states": {k: v for k, v in states.items() if v},
        "push_requests": len(creates),
        "push_requests_per_reservation": round(len(creates) / max(1, len(ids)), 3),
        "push_statuses": common.statuses(creates),
        "injected_429": injected[0],
        "confirmation_http_requests": len(batches),
        "confirmation_http_requests_per_reservation": round(len(batches) / max(1, len(ids)), 3),
        "confirmation_reads_inside_batches": sum(1 for e in entries if e.get("batch")),
        "token_requests": len(tokens),
        "other_graph_requests": len(other),
        "graph_http_requests_per_reservation_total": round((len(creates) + len(batches) + len(other)) / max(1, len(ids)), 3),
        "meetings_created": sum(seen.values()),
        "duplicate_meetings": sum(v - 1 for v in seen.values()),
        "sync_events": {s: events.filter(state=s).count() for s in ("new", "processing", "processed", "error")},
        "max_concurrency_per_mailbox": max(log.get("max_concurrency", {}).values() or [0]),
    }


def inject_429s(control: Control, rate: float, stop: threading.Event, injected: list) -> None:
    """Keep ~``rate`` of the create requests answered 429 (Retry-After 1 s): for every
    block of creates the emulator saw, arm that share of one-shot faults."""
    block = 20
    armed_for = 0
    while not stop.is_set():
        counts = control.call("GET", "/requests?limit=0")["counts"]["by_endpoint"]
        seen = sum(v for k, v in counts.items() if k.startswith("POST /v1.0/users/") and k.endswith("/events"))
        while seen + block > armed_for:
            n = max(1, round(block * rate))
            control.call("POST", "/faults", {"method": "POST", "path": r"/users/[^/]+/events$", "status": 429, "retry_after": 1, "count": n})
            injected[0] += n
            armed_for += block
        time.sleep(0.1)


if __name__ == "__main__":
    main()
