"""The nightly reconcile at scale (issue 17 item 4): many rooms, each with many Outlook meetings,
the pass split across real Celery workers on the ``nightly`` queue (one task per building),
with Graph-like latency on. Two nights: nothing changed, then 1% of the meetings changed.

Reported per night: seconds to finish, Graph requests per room (a room's full round is the
calendarView/delta pages: ceil(events / page size) requests when nothing changed), the
busiest worker's peak resident memory (it must stay bounded: pages are streamed), changes
found, and the projection to the full size (2,000 rooms × 200 events) at the same per-room cost.

    .venv/bin/python bench/nightly_scale.py                              # 100 rooms × 40 events
    .venv/bin/python bench/nightly_scale.py --rooms 2000 --events 200    # the full size (long)

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_nightly_bench),
REDIS_URL (default redis://127.0.0.1:6379/11).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_nightly_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"

from bench.outbound import Control, ensure_database  # noqa: E402

DOMAIN = "contoso.example"
ORGANIZER = f"bob@{DOMAIN}"


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
        except OSError:
            continue
    return total


def children(pid: int) -> list[int]:
    out = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out += children(int(child))
    except OSError:
        pass
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--events", type=int, default=40, help="Outlook meetings per room")
    p.add_argument("--buildings", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--changed", type=float, default=0.01)
    args = p.parse_args()

    ensure_database()
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    cache.clear()
    from calendar_sync.common.clients import system_client
    from calendar_sync.inbound import nightly
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
    from graph_emulator import EmulatorServer
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.celery import app
    from workplace.models import Building, Room

    for model in (SyncEvent, Reservation, ReservationSeries, WebhookNotification, Subscription, MailboxDeltaState, RoomEvent, NightlyRun):
        model.objects.all().delete()
    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix="bench-nightly-"))
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    control = Control(srv.base_url, srv.ca_path)
    rooms = [f"night-{i:04d}@{DOMAIN}" for i in range(args.rooms)]
    control.call("POST", "/seed", {"rooms": [{"upn": r, "displayName": r.split("@")[0], "capacity": 8} for r in rooms]})
    Room.objects.filter(building__code__startswith="night-").delete()
    buildings = [Building.objects.get_or_create(code=f"night-{b}", defaults={"name": f"Night {b}", "timezone": "Europe/Amsterdam"})[0]
                 for b in range(args.buildings)]
    Room.objects.bulk_create([Room(building=buildings[i % len(buildings)], name=r.split("@")[0], capacity=8, mailbox=r, sync_enabled=True)
                              for i, r in enumerate(rooms)])
    get_user_model().objects.get_or_create(username="bob", defaults={"email": ORGANIZER})
    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")

    # Outlook meetings in every room, answered by the room (before latency is on).
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    meetings = []

    def book(n: int):
        room = rooms[n % len(rooms)]
        k = n // len(rooms)
        start = base + dt.timedelta(days=k // 10, hours=k % 10)
        made = control.call("POST", f"/users/{ORGANIZER}/events", {
            "subject": f"night #{n:06d}", "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
            "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=45)).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        })
        return made["id"], start

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        meetings = list(pool.map(book, range(args.rooms * args.events)))
    seed_seconds = time.monotonic() - started
    # The first night records every meeting (inline, not measured).
    started = time.monotonic()
    for building in buildings:
        nightly.run_building(building)
    first_seconds = time.monotonic() - started
    recorded = Reservation.objects.filter(origin="exchange").count()

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings", "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=WARNING", "--concurrency=2", "-Q", "nightly",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"bench-nightly-{i}@%h"],
        cwd=ROOT, env=env, stdout=open(Path(tempfile.gettempdir()) / f"bench-nightly-worker-{i}.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True) for i in range(args.workers)]
    app.conf.task_always_eager = False
    nights = {}
    try:
        time.sleep(5)
        control.call("POST", "/config", {"latency": {"write": [150, 400], "read": [50, 150]}, "latency_seed": 3})
        for night, fraction in (("unchanged", 0.0), ("changed_1pct", args.changed)):
            changed = []
            if fraction:
                client = system_client(provider)
                picks = random.Random(7).sample(meetings, max(1, int(len(meetings) * fraction)))  # noqa: S311
                for event_id, _start in picks:
                    client.patch(users_path(ORGANIZER, "events", event_id), json={"subject": "night changed"})
                changed = picks
            NightlyRun.objects.all().delete()
            control.call("DELETE", "/requests")
            local_date = dt.date.today()
            started = time.monotonic()
            for building in buildings:
                inbound_tasks.nightly_building.delay(building.pk, local_date.isoformat())
            peak = 0
            while time.monotonic() - started < 3600:
                peak = max(peak, rss_kb([pid for proc in procs for pid in children(proc.pid)]))
                if NightlyRun.objects.filter(finished_at__isnull=False).count() >= len(buildings):
                    break
                time.sleep(0.5)
            seconds = time.monotonic() - started
            log = control.call("GET", "/requests?limit=0")
            per_room = [log["counts"]["by_mailbox"].get(r, 0) for r in rooms]
            summaries = list(NightlyRun.objects.values_list("summary", flat=True))
            nights[night] = {
                "seconds": round(seconds, 1),
                "graph_requests": log["total"],
                "graph_requests_per_room_mean": round(sum(per_room) / len(rooms), 2),
                "graph_requests_per_room_max": max(per_room),
                "worker_peak_rss_mb": round(peak / 1024, 1),
                "meetings_changed": len(changed),
                "changes_applied": sum(s.get("updated", 0) for s in summaries),
                "failed_rooms": sum(s.get("failed_rooms", 0) for s in summaries),
                "projected_minutes_at_2000_rooms": round(seconds / len(rooms) * 2000 / 60 * (200 / args.events), 1),
            }
            print(json.dumps({night: nights[night]}), file=sys.stderr, flush=True)
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.stop()
    print(json.dumps({"rooms": args.rooms, "events_per_room": args.events, "buildings": args.buildings, "workers": args.workers,
                      "seed_seconds": round(seed_seconds, 1), "first_night_inline_seconds": round(first_seconds, 1),
                      "reservations_recorded": recorded, "nights": nights}, indent=2))


if __name__ == "__main__":
    main()
