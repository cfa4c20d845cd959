"""Webhook bursts (issue 17 item 3): Outlook meetings created in many room mailboxes at once;
the emulator delivers Graph's change notifications to the product's webhook (gunicorn, as in
production) and real Celery workers pull the rooms. Latency on (Graph-like ranges).

Graph requires the webhook to answer within 3 seconds, else it retries and eventually drops
and disables notifications: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
(section "Throttling"/"Receiving notifications"). Reported: the acknowledgement times as the
emulator (Graph's side) measured them (p50/p99/max, count over 3 s), notifications stored,
delta pulls per mailbox (coalescing), meetings vs reservations made (lost, duplicated), and
notification → reservation lag p50/p99 (the inbox's received_at → processed_at).

    .venv/bin/python bench/webhook_burst.py                          # 200 mailboxes, 1,000 meetings
    .venv/bin/python bench/webhook_burst.py --mailboxes 2000 --meetings 10000   # the full size

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_burst_bench),
REDIS_URL (default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_burst_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"

from bench.outbound import Control, ensure_database  # noqa: E402

DOMAIN = "contoso.example"
ORGANIZERS = [f"bob@{DOMAIN}", f"alice@{DOMAIN}"]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mailboxes", type=int, default=200)
    p.add_argument("--meetings", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=60, help="spread the meetings' creation over this")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--web-workers", type=int, default=2)
    args = p.parse_args()

    ensure_database()
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    cache.clear()

    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState, RoomEvent, Subscription, WebhookNotification
    from exchange_auth import properties
    from exchange_auth.demo import seed_provider
    from graph_emulator import EmulatorServer
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.celery import app
    from workplace.models import Building, Room

    for model in (SyncEvent, Reservation, ReservationSeries, WebhookNotification, Subscription, MailboxDeltaState, RoomEvent):
        model.objects.all().delete()
    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix="bench-burst-"),
                         config={"http_notification_urls": "loopback"})
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    control = Control(srv.base_url, srv.ca_path)
    rooms = [f"burst-{i:04d}@{DOMAIN}" for i in range(args.mailboxes)]
    control.call("POST", "/seed", {"rooms": [{"upn": r, "displayName": r.split("@")[0], "capacity": 8} for r in rooms]})
    building, _ = Building.objects.get_or_create(code="burst", defaults={"name": "Burst tower", "timezone": "Europe/Amsterdam"})
    Room.objects.filter(building=building).delete()
    Room.objects.bulk_create([Room(building=building, name=r.split("@")[0], capacity=8, mailbox=r, sync_enabled=True) for r in rooms])
    from django.contrib.auth import get_user_model

    for address in ORGANIZERS:  # the people who book in Outlook have accounts (else a blocker user is needed)
        get_user_model().objects.get_or_create(username=address.split("@")[0], defaults={"email": address})
    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings", "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "workplace.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(args.web_workers),
         "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=open(Path(tempfile.gettempdir()) / "bench-burst-web.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True)]
    try:
        import requests

        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        counts = inbound_tasks.subscriptions_ensure(provider=provider)  # inline: each room's first full round too
        setup_seconds = time.monotonic() - started
        pulls_before = dict(MailboxDeltaState.objects.values_list("mailbox", "pulls"))
        for i in range(args.workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=WARNING", "--concurrency=4", "-Q", "inbound,default",
                 "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"bench-burst-{i}@%h"],
                cwd=ROOT, env=env, stdout=open(Path(tempfile.gettempdir()) / f"bench-burst-worker-{i}.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(5)
        control.call("DELETE", "/notifications")
        control.call("POST", "/config", {"latency": {"write": [150, 400], "read": [50, 150]}, "latency_seed": 5})

        # The burst: meetings booked in Outlook, spread over --seconds.
        base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=3)
        interval = args.seconds / max(1, args.meetings)

        def book(n: int) -> None:
            room = rooms[n % len(rooms)]
            k = n // len(rooms)
            start = base + dt.timedelta(days=k // 8, hours=k % 8)
            at = burst_start + n * interval
            if at > time.monotonic():
                time.sleep(at - time.monotonic())
            control.call("POST", f"/users/{ORGANIZERS[n % 2]}/events", {
                "subject": f"burst #{n:05d}", "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
                "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + dt.timedelta(minutes=45)).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            })

        burst_start = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(book, range(args.meetings)))
        burst_seconds = time.monotonic() - burst_start
        deadline = time.monotonic() + 900
        swept = 0
        last_sweep = time.monotonic()
        app.conf.task_always_eager = False
        while time.monotonic() < deadline:
            made = Reservation.objects.filter(origin="exchange", subject__startswith="burst #").count()
            waiting = WebhookNotification.objects.filter(state="received").count()
            if made >= args.meetings and not waiting:
                break
            if time.monotonic() - last_sweep > 60:  # what beat does every minute (calendar_sync.sweep_inbox)
                swept += WebhookNotification.objects.filter(state="received").count()
                inbound_tasks.sweep_inbox.delay()
                last_sweep = time.monotonic()
            time.sleep(0.5)
        settled_seconds = time.monotonic() - burst_start
        deliveries = [d for d in control.call("GET", "/notifications")["deliveries"] if d["kind"] == "change" and not d.get("dropped")]
        acks = [d["duration_ms"] for d in deliveries if d.get("duration_ms") is not None]
        subjects = list(Reservation.objects.filter(origin="exchange", subject__startswith="burst #").values_list("subject", flat=True))
        lags = [(p - r).total_seconds() for r, p in WebhookNotification.objects.filter(
            kind="change", processed_at__isnull=False).values_list("received_at", "processed_at")]
        pulls = {m: n - pulls_before.get(m, 0) for m, n in MailboxDeltaState.objects.values_list("mailbox", "pulls")}
        notified = {d["payload"]["value"][0].get("subscriptionId") for d in deliveries}
        result = {
            "mailboxes": args.mailboxes, "meetings": args.meetings, "subscriptions": counts,
            "setup_seconds": round(setup_seconds, 1), "burst_seconds": round(burst_seconds, 1),
            "seconds_until_all_reflected": round(settled_seconds, 1),
            "notifications_delivered": len(deliveries),
            "notifications_per_second": round(len(deliveries) / burst_seconds, 1) if burst_seconds else None,
            "ack_ms_p50": percentile(acks, 50), "ack_ms_p99": percentile(acks, 99), "ack_ms_max": max(acks) if acks else None,
            "ack_p99_ratio_to_3s_limit": round(percentile(acks, 99) / 3000, 3) if acks else None,
            "acks_over_3s": sum(1 for a in acks if a > 3000),
            "acks_not_2xx": sum(1 for d in deliveries if not d["ok"]),
            "notifications_stored": WebhookNotification.objects.filter(kind="change").count(),
            "delta_pulls_per_mailbox_mean": round(statistics.mean(pulls.values()), 2) if pulls else None,
            "delta_pulls_per_mailbox_max": max(pulls.values()) if pulls else None,
            "notifications_per_mailbox_mean": round(len(deliveries) / max(1, len(notified)), 2),
            "reservations_made": len(subjects), "lost": args.meetings - len(set(subjects)),
            "duplicated": len(subjects) - len(set(subjects)),
            "lag_s_p50": percentile(lags, 50), "lag_s_p99": percentile(lags, 99),
            "notifications_left_for_the_minute_sweeper": swept,
        }
        print(json.dumps(result, indent=2))
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.stop()


if __name__ == "__main__":
    main()
