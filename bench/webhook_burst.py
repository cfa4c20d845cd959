"""Webhook bursts (issue 17 item 3): Outlook meetings created in many room mailboxes at once;
the emulator delivers Graph's change notifications to the product's webhook (gunicorn, as in
production), batched as Graph batches them (several changes per POST), and real Celery workers
pull the rooms. Latency on (Graph-like ranges).

Graph requires the webhook to answer within 3 seconds, else it retries and eventually drops and
throttles: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
("Processing the change notification", "Throttling"). Reported: the acknowledgement times as the
emulator (Graph's side) measured them (p50/p99/max, count over 3 s), every acknowledged
notification stored before its acknowledgement, delta pulls per mailbox (coalescing), meetings vs
reservations (lost, duplicated), notifications Graph dropped or retried, notification →
reservation lag p50/p99 (the meeting's creation in Outlook → the reservation row; and the inbox's
received_at → processed_at), and the machine's load.

The full size is 10,000 notifications for 2,000 mailboxes within 60 s; ``--scale`` keeps the
60 s and the 5 notifications per mailbox and shrinks the counts (default 0.1: 200 mailboxes,
1,000 meetings, a few minutes on a 2-core machine):

    .venv/bin/python bench/webhook_burst.py                 # --scale 0.1
    .venv/bin/python bench/webhook_burst.py --full          # 2,000 mailboxes, 10,000 meetings
    .venv/bin/python bench/webhook_burst.py --mailboxes 50 --meetings 200   # explicit counts

The inbound workers run on Celery's threads pool by default (``--pool threads --concurrency 8``,
as docker-compose's worker-inbound: a pull mostly waits for Graph); ``--pool prefork
--concurrency 4`` measures the processes instead.

Environment (bench/common.py): DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_burst_bench),
BENCH_REDIS_URL else REDIS_URL (default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import collections
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_burst_bench", redis_db=13)
ROOT = common.ROOT
DOMAIN = common.DOMAIN
ORGANIZERS = [f"bob@{DOMAIN}", f"alice@{DOMAIN}"]
percentile = common.percentile


def free_port() -> int:
    """A port for the bench's gunicorn (the emulator picks its own)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--full", action="store_true", help="the issue's size: 2,000 mailboxes, 10,000 meetings")
    p.add_argument("--scale", type=float, default=0.1, help="fraction of the full size (default 0.1)")
    p.add_argument("--mailboxes", type=int, default=None)
    p.add_argument("--meetings", type=int, default=None)
    p.add_argument("--seconds", type=float, default=60, help="spread the meetings' creation over this")
    p.add_argument("--workers", type=int, default=2, help="inbound worker processes")
    p.add_argument("--pool", default="threads", choices=["threads", "prefork"], help="their Celery pool")
    p.add_argument("--concurrency", type=int, default=None, help="tasks at once per worker (threads: 8, prefork: 4)")
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--batch-max", type=int, default=25, help="Graph's batching: notifications per POST (1: one each)")
    p.add_argument("--max-wait", type=float, default=900, help="seconds after the burst's start to wait for every change")
    p.add_argument("--first-rounds", action=argparse.BooleanOptionalAction, default=None,
                   help="each room's first full round before the burst (default: yes, but not with --full: 2,000 rounds "
                        "take longer than the burst on a loaded 2-core machine; the burst's first pulls are then full rounds)")
    p.add_argument("--until", type=float, default=None, help="stop waiting at this Unix time at the latest (a deadline)")
    p.add_argument("--batch-window-ms", type=float, default=200, help="how long Graph gathers a batch")
    args = p.parse_args()
    scale = 1.0 if args.full else args.scale
    args.mailboxes = args.mailboxes or max(1, round(2000 * scale))
    args.meetings = args.meetings or max(1, round(10000 * scale))
    if args.first_rounds is None:
        args.first_rounds = not args.full
    args.concurrency = args.concurrency or (8 if args.pool == "threads" else 4)
    load_before = common.load()

    common.ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    common.flush_redis()
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
    control = common.Control(srv.base_url, srv.ca_path)
    import requests

    control.http.mount("https://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32))  # the booking threads
    building, _ = Building.objects.get_or_create(code="burst", defaults={"name": "Burst tower", "timezone": "Europe/Amsterdam"})
    Room.objects.filter(building=building).delete()
    rooms = [room.mailbox for room in common.seed_rooms(control, building, [f"burst-{i:04d}" for i in range(args.mailboxes)])]
    from django.contrib.auth import get_user_model

    for address in ORGANIZERS:  # the people who book in Outlook have accounts (else a blocker user is needed)
        get_user_model().objects.get_or_create(username=address.split("@")[0], defaults={"email": address})
    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.webhook_burst_settings", "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    workers: list[subprocess.Popen] = []
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
        if args.pool == "threads":  # each thread keeps its connection, as README's threads workers do
            os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
        workers = common.start_workers(
            srv, args.workers, queues="inbound,default", concurrency=args.concurrency, name="bench-burst",
            settings_module="bench.webhook_burst_settings", wait=5.0, extra_args=("--pool", args.pool))
        # The subscriptions (created here, one by one, each with its handshake); each room's first
        # full round goes to the workers, side by side, and the burst waits for all of them.
        app.conf.task_always_eager = False
        started = time.monotonic()
        if args.first_rounds:
            counts_subs = inbound_tasks.subscriptions_ensure(provider=provider)
            while MailboxDeltaState.objects.exclude(delta_link="").count() < args.mailboxes and time.monotonic() - started < 3600:
                time.sleep(1)
        else:  # the subscriptions only: each room's first pull is the burst's (a full round, no token yet)
            from calendar_sync.inbound import subscriptions as inbound_subscriptions

            counts_subs = inbound_subscriptions.subscription_ensure_all(provider=provider, pulls=inbound_subscriptions.Pulls())
        setup_seconds = time.monotonic() - started
        pulls_before = dict(MailboxDeltaState.objects.values_list("mailbox", "pulls"))
        control.call("DELETE", "/notifications")
        control.call("POST", "/config", {"latency": {"write": [150, 400], "read": [50, 150]}, "latency_seed": 5})
        control.call("POST", "/notifications/batching", {"max": args.batch_max, "window_ms": args.batch_window_ms})
        control.call("DELETE", "/requests")
        from observability import metrics

        metrics.store.clear()
        booked_at: dict[str, float] = {}

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
            booked_at[f"burst #{n:05d}"] = time.time()
            control.call("POST", f"/users/{ORGANIZERS[n % 2]}/events", {
                "subject": f"burst #{n:05d}", "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
                "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + dt.timedelta(minutes=45)).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            })

        watch = common.MemoryWatch(workers)  # the workers' CPU time from the burst on
        web_watch = common.MemoryWatch(procs[:1])
        watch.reset()
        web_watch.reset()
        watch.__enter__()
        web_watch.__enter__()
        burst_start = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(book, range(args.meetings)))
        burst_seconds = time.monotonic() - burst_start
        deadline = burst_start + args.max_wait
        if args.until:
            deadline = min(deadline, time.monotonic() + args.until - time.time())
        reflected = False
        swept = 0
        last_sweep = time.monotonic()
        app.conf.task_always_eager = False
        while time.monotonic() < deadline:
            made = Reservation.objects.filter(origin="exchange", subject__startswith="burst #").count()
            waiting = WebhookNotification.objects.filter(state="received").count()
            if made >= args.meetings and not waiting:
                reflected = True
                break
            if time.monotonic() - last_sweep > 60:  # what beat does every minute (calendar_sync.sweep_inbox)
                swept += WebhookNotification.objects.filter(state="received").count()
                inbound_tasks.sweep_inbox.delay()
                last_sweep = time.monotonic()
            time.sleep(0.5)
        settled_seconds = time.monotonic() - burst_start
        watch.__exit__(None, None, None)
        web_watch.__exit__(None, None, None)
        time.sleep(2)  # retries or late batches
        load_after = common.load()
        notes = control.call("GET", "/notifications")
        changes = [d for d in notes["deliveries"] if d["kind"] == "change"]
        dropped = [d for d in changes if d.get("dropped")]
        deliveries = [d for d in changes if not d.get("dropped")]
        acks = [d["duration_ms"] for d in deliveries if d.get("duration_ms") is not None]
        acked = [d for d in deliveries if d["ok"]]
        # Stored before the acknowledgement: each acknowledged item's row exists and was received
        # (inserted, in the transaction committed before the 202) before Graph's side saw the answer.
        stored_at = {p["id"]: r.timestamp() for p, r in WebhookNotification.objects.filter(kind="change").values_list("payload", "received_at")
                     if isinstance(p, dict) and p.get("id")}
        acked_items = [(item["id"], d["time"]) for d in acked for item in d["payload"]["value"]]
        stored_before_ack = sum(1 for nid, at in acked_items if nid in stored_at and stored_at[nid] <= at)
        made = dict(Reservation.objects.filter(origin="exchange", subject__startswith="burst #").values_list("subject", "created_at"))
        subjects = list(Reservation.objects.filter(origin="exchange", subject__startswith="burst #").values_list("subject", flat=True))
        booking_lags = [made[s].timestamp() - booked_at[s] for s in made if s in booked_at]
        lags = [(p - r).total_seconds() for r, p in WebhookNotification.objects.filter(
            kind="change", processed_at__isnull=False).values_list("received_at", "processed_at")]
        pulls = {m: n - pulls_before.get(m, 0) for m, n in MailboxDeltaState.objects.values_list("mailbox", "pulls")}
        counts = control.call("GET", "/requests?limit=0")["counts"]["by_mailbox_kind"]
        snap = metrics.snapshot().counters.get(metrics.PULLS.name, {})
        per_post = [d.get("items") or len(d["payload"]["value"]) for d in deliveries]
        result = {
            "mailboxes": args.mailboxes, "meetings": args.meetings, "scale": round(args.meetings / 10000, 3),
            "seconds": args.seconds, "batch_max": args.batch_max, "batch_window_ms": args.batch_window_ms,
            "subscriptions": counts_subs, "first_rounds_before_the_burst": args.first_rounds,
            "setup_seconds": round(setup_seconds, 1), "burst_seconds": round(burst_seconds, 1),
            "all_reflected": reflected,  # False: --max-wait ran out ("lost" then counts the ones not reflected yet)
            "seconds_until_all_reflected": round(settled_seconds, 1) if reflected else None,
            "notification_posts": len(deliveries), "notifications_delivered": sum(per_post),
            "notifications_per_post_mean": round(statistics.mean(per_post), 2) if per_post else None,
            "notifications_per_post_max": max(per_post) if per_post else None,
            "notifications_per_second": round(sum(per_post) / burst_seconds, 1) if burst_seconds else None,
            "ack_ms_p50": percentile(acks, 50), "ack_ms_p99": percentile(acks, 99), "ack_ms_max": max(acks) if acks else None,
            "ack_p99_ratio_to_3s_limit": round(percentile(acks, 99) / 3000, 3) if acks else None,
            "acks_over_3s": sum(1 for a in acks if a > 3000),
            "acks_not_2xx": sum(1 for d in deliveries if not d["ok"]),
            "acks_not_2xx_why": dict(collections.Counter(str(d.get("error") or d.get("status")) for d in deliveries if not d["ok"])),
            "graph_retries": sum(1 for d in deliveries if d["attempt"] > 1),
            "graph_dropped": sum(d.get("items") or 1 for d in dropped),
            "endpoint_states": sorted({e["state"] for e in notes.get("endpoints", {}).values()}),
            "notifications_acked": len(acked_items),
            "notifications_stored": WebhookNotification.objects.filter(kind="change").count(),
            "stored_before_ack": stored_before_ack,
            "stored_before_ack_ratio": round(stored_before_ack / len(acked_items), 4) if acked_items else None,
            "delta_pulls_total": sum(pulls.values()),
            "delta_pulls_per_mailbox_mean": round(statistics.mean(pulls.values()), 2) if pulls else None,
            "delta_pulls_per_mailbox_max": max(pulls.values()) if pulls else None,
            "worker_cpu_seconds": round(watch.cpu_seconds, 1),
            "worker_cpu_ms_per_pull": round(1000 * watch.cpu_seconds / max(1, sum(pulls.values())), 1),
            "web_cpu_ms_per_notification": round(1000 * web_watch.cpu_seconds / max(1, sum(per_post)), 1),
            "busy_pull_attempts": int(sum(v for labels, v in snap.items() if labels[-1] == "busy")),
            "notifications_per_mailbox_mean": round(sum(per_post) / max(1, args.mailboxes), 2),
            "graph_notification_requests_counted": counts.get("* change_post", 0),
            "reservations_made": len(subjects), "lost": args.meetings - len(set(subjects)),
            "duplicated": len(subjects) - len(set(subjects)),
            "lag_s_p50": percentile(booking_lags, 50), "lag_s_p99": percentile(booking_lags, 99), "lag_s_max": percentile(booking_lags, 100),
            "inbox_lag_s_p50": percentile(lags, 50), "inbox_lag_s_p99": percentile(lags, 99),
            "notifications_left_for_the_minute_sweeper": swept,
            "workers": args.workers, "pool": args.pool, "concurrency": args.concurrency,
            "load_before": load_before, "load_after": load_after,
        }
        print(json.dumps(result, indent=2))
    finally:
        common.stop_workers(workers, grace=5)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.stop()


if __name__ == "__main__":
    main()
