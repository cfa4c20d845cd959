"""Inbound sync benchmark (issue 6): Outlook bookings reach the product through change
notifications, a real Celery worker (Redis) pulls and reconciles; then a nightly pass
over many rooms where nothing changed.

1. Real time: 200 Outlook meetings on 20 room mailboxes, created through the emulator
   (as their organizers would in Outlook). The product's webhook is served over HTTP by
   a threaded WSGI server in this process; subscriptions are made through Graph with the
   validation handshake. Figures:
   - ``notification_to_reservation_ms`` p50/p99: from the first stored notification of
     the room's copy to the reservation row (targets ≤ 1000 / ≤ 3000 ms);
   - ``outlook_to_reservation_ms``: from the Outlook create call to the reservation row;
   - ``graph_requests_per_change``: Graph requests the product made during the phase
     (emulator request log: token and control calls left out) / 200.
2. Nightly: 50 rooms × 200 events, already reconciled once; the nightly pass runs with
   nothing changed. Figures: seconds, delta rounds (GET calendarView/delta) per room,
   Graph requests. Target: at most one delta round per room, under 5 s.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_inbound_bench),
REDIS_URL (default redis://127.0.0.1:6379/11). The database is created and migrated if
needed; its reservations and inbound state are wiped first. Prints one JSON object.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_inbound_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"

DOMAIN = "contoso.example"
RT_ROOMS, RT_MEETINGS, RT_PACE_SECONDS = 20, 200, 0.05
NIGHT_ROOMS, NIGHT_EVENTS = 50, 200


def ensure_database() -> None:
    from urllib.parse import urlparse

    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    conn = psycopg.connect(host=url.hostname, port=url.port or 5432, user=url.username or "postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


class Control:
    def __init__(self, base_url: str, ca_path: str):
        import requests

        self.base = base_url.rstrip("/") + "/_emulator"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(ca_path)

    def call(self, method: str, path: str, payload=None):
        resp = self.http.request(method, self.base + path, json=payload, timeout=60)
        resp.raise_for_status()
        return resp.json() if resp.content else None


def serve_webhook():
    """The product's web app on a threaded WSGI server (like pytest-django's live_server)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=True)
    httpd.daemon_threads = True
    httpd.set_app(WSGIHandler())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def start_worker(srv) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings",
           "GRAPH_CA_BUNDLE": str(srv.ca_path), "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    log = open(Path(tempfile.gettempdir()) / "bench-inbound-worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=WARNING", "--concurrency=4",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", "bench-inbound@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    time.sleep(4)
    if proc.poll() is not None:
        raise RuntimeError("worker did not start; see bench-inbound-worker.log")
    return proc


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)


def graph_calls(control: Control) -> list[dict]:
    entries = control.call("GET", "/requests?limit=200000")["entries"]
    return [e for e in entries if "/oauth2/" not in e["path"] and not e["path"].startswith("/_emulator") and not e.get("batch")]


def reset(control: Control) -> None:
    from django.core.cache import cache

    from calendar_sync.models import (
        MailboxDeltaState,
        NightlyRun,
        RoomEvent,
        Subscription,
        WebhookNotification,
    )
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.models import Room

    cache.clear()
    for model in (WebhookNotification, Subscription, RoomEvent, MailboxDeltaState, NightlyRun, SyncEvent, Reservation, ReservationSeries):
        model.objects.all().delete()
    Room.objects.filter(building__code__in=["rt-room", "night-room"]).delete()  # the emulator forgets them on reset
    control.call("POST", "/reset", {"seed": "demo"})


def make_rooms(control: Control, *, prefix: str, count: int, building_name: str):
    from workplace.models import Arrangement, Building, Room

    control.call("POST", "/seed", {"rooms": [{"upn": f"{prefix}-{i:02d}@{DOMAIN}", "displayName": f"{prefix} {i:02d}", "capacity": 8} for i in range(count)]})
    building, _ = Building.objects.get_or_create(code=prefix, defaults={"name": building_name, "timezone": "Europe/Amsterdam"})
    rooms = []
    for i in range(count):
        room, _ = Room.objects.update_or_create(
            building=building, name=f"{prefix} {i:02d}", defaults={"capacity": 8, "mailbox": f"{prefix}-{i:02d}@{DOMAIN}", "sync_enabled": True},
        )
        Arrangement.objects.get_or_create(room=room, name="Default", defaults={"is_default": True})
        rooms.append(room)
    return building, rooms


def make_organizers(control: Control, count: int = 10) -> list[str]:
    from django.contrib.auth import get_user_model

    control.call("POST", "/seed", {"users": [{"upn": f"bench-org-{i:02d}@{DOMAIN}"} for i in range(count)]})
    User = get_user_model()
    for i in range(count):
        User.objects.get_or_create(username=f"bench-org-{i:02d}", defaults={"email": f"bench-org-{i:02d}@{DOMAIN}"})
    return [f"bench-org-{i:02d}@{DOMAIN}" for i in range(count)]


def graph_time(moment: dt.datetime) -> dict:
    return {"dateTime": moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def meeting(organizer: str, room: str, start: dt.datetime, subject: str) -> dict:
    return {"subject": subject, "start": graph_time(start), "end": graph_time(start + dt.timedelta(minutes=50)),
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}]}


# --- 1. real time --------------------------------------------------------------------------------


def realtime(control: Control, srv) -> dict:
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState, WebhookNotification
    from reservations.models import Reservation

    _building, rooms = make_rooms(control, prefix="rt-room", count=RT_ROOMS, building_name="Real-time tower")
    organizers = make_organizers(control)
    counts = inbound_tasks.subscriptions_ensure()
    assert counts["created"] == RT_ROOMS, counts
    wait(lambda: MailboxDeltaState.objects.filter(full_syncs__gte=1).count() >= RT_ROOMS, 60, "initial syncs")
    control.call("DELETE", "/requests")
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    sent: dict[str, float] = {}
    started = time.monotonic()
    for n in range(RT_MEETINGS):
        room = rooms[n % RT_ROOMS]
        k = n // RT_ROOMS
        start = base + dt.timedelta(hours=k)
        t = time.time()
        created = control.call("POST", f"/users/{organizers[n % len(organizers)]}/events", meeting(organizers[n % len(organizers)], room.mailbox, start, f"rt #{n:03d}"))
        sent[created["iCalUId"]] = t
        time.sleep(RT_PACE_SECONDS)
    wait(lambda: Reservation.objects.filter(source="outlook").count() >= RT_MEETINGS, 120, "all reservations")
    seconds = time.monotonic() - started
    time.sleep(1)  # let trailing notifications and pulls finish before reading the log
    calls = graph_calls(control)
    reservations = list(Reservation.objects.filter(source="outlook").values("event_id", "ical_uid", "created_at"))
    first_seen = {}
    for event_id, received in WebhookNotification.objects.filter(kind="change", change_type="created").order_by("received_at").values_list("event_id", "received_at"):
        first_seen.setdefault(event_id, received)
    notif_ms = [(r["created_at"] - first_seen[r["event_id"]]).total_seconds() * 1000 for r in reservations if r["event_id"] in first_seen]
    outlook_ms = [(r["created_at"].timestamp() - sent[r["ical_uid"]]) * 1000 for r in reservations if r["ical_uid"] in sent]
    kinds = Counter(f"{e['method']} {'delta' if 'calendarView/delta' in e['path'] else e['path'].rsplit('/', 1)[-1] if e['method'] != 'GET' else 'other'}" for e in calls)
    return {
        "meetings": RT_MEETINGS, "rooms": RT_ROOMS, "reservations": len(reservations),
        "duplicates": len(reservations) - len({r["ical_uid"] for r in reservations}),
        "seconds": round(seconds, 2),
        "notifications_stored": WebhookNotification.objects.filter(kind="change").count(),
        "notification_to_reservation_ms": {"p50": pct(notif_ms, 50), "p99": pct(notif_ms, 99), "max": round(max(notif_ms), 1),
                                           "mean": round(statistics.mean(notif_ms), 1), "n": len(notif_ms)},
        "outlook_to_reservation_ms": {"p50": pct(outlook_ms, 50), "p99": pct(outlook_ms, 99)},
        "graph_requests": len(calls),
        "graph_requests_per_change": round(len(calls) / RT_MEETINGS, 3),
        "graph_requests_by_kind": dict(kinds),
    }


# --- 2. nightly with nothing changed ---------------------------------------------------------------------


def nightly_unchanged(control: Control, srv) -> dict:
    from calendar_sync.inbound import nightly
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState
    from reservations.models import Reservation

    building, rooms = make_rooms(control, prefix="night-room", count=NIGHT_ROOMS, building_name="Night tower")
    organizers = make_organizers(control)
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)

    def create_all():
        store, calendar = srv.ctx.store, srv.ctx.calendar
        for i, room in enumerate(rooms):
            for k in range(NIGHT_EVENTS):
                start = base + dt.timedelta(days=k // 10, hours=k % 10)
                organizer = store.find_user(organizers[(i + k) % len(organizers)])
                calendar.create(organizer, meeting(organizer.upn, room.mailbox, start, f"night {i:02d}/{k:03d}"))
        return True

    srv.call(create_all)
    # 1. Prime: the worker reconciles every room once (10,000 reservations).
    primed_at = time.monotonic()
    mailboxes = [r.mailbox for r in rooms]
    wait(lambda: srv.call(lambda: all(len(srv.ctx.store.mailboxes[srv.ctx.store.find_user(m).id].events) == NIGHT_EVENTS for m in mailboxes)), 120, "room copies")
    for mailbox in mailboxes:
        inbound_tasks.request_pull(mailbox, full=True)
    wait(lambda: MailboxDeltaState.objects.filter(mailbox__in=mailboxes, full_syncs__gte=1).count() == NIGHT_ROOMS, 900, "priming")
    prime_seconds = time.monotonic() - primed_at
    booked = Reservation.objects.filter(room__building=building).count()
    # 2. The nightly pass, nothing changed.
    control.call("DELETE", "/requests")
    started = time.monotonic()
    summary = nightly.run_building(building)
    seconds = time.monotonic() - started
    calls = graph_calls(control)
    rounds = Counter(e["path"].split("/users/", 1)[-1].split("/", 1)[0] for e in calls if "calendarView/delta" in e["path"])
    return {
        "rooms": NIGHT_ROOMS, "events_per_room": NIGHT_EVENTS, "reservations_primed": booked,
        "priming_seconds": round(prime_seconds, 1),
        "seconds": round(seconds, 2),
        "delta_requests": sum(rounds.values()),
        "max_delta_requests_per_room": max(rounds.values()) if rounds else 0,
        "graph_requests": len(calls),
        "events_read": summary.get("events", 0),
        "unchanged": summary.get("unchanged", 0),
        "changes": {k: v for k, v in summary.items() if k not in ("rooms", "events", "requests", "unchanged")},
    }


def main() -> None:
    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix="bench-inbound-"))
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    settings.ALLOWED_HOSTS = ["*"]
    httpd, url = serve_webhook()
    settings.PUBLIC_BASE_URL = url
    worker = None
    try:
        from exchange_auth import properties
        from exchange_auth.demo import seed_provider
        from workplace.celery import app

        app.conf.task_always_eager = False
        control = Control(srv.base_url, srv.ca_path)
        reset(control)
        seed_provider()
        properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")
        worker = start_worker(srv)
        results = {"realtime": realtime(control, srv)}
        results["nightly_nothing_changed"] = nightly_unchanged(control, srv)
        print(json.dumps(results, indent=2))
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        httpd.shutdown()
        srv.stop()


if __name__ == "__main__":
    main()
