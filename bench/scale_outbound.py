"""Outbound at Graph's limit (issue 17 item 2): reservations over many rooms pushed by 1, 2
and 4 real Celery worker processes to the emulator with Graph-like latency on (writes
150–400 ms, reads 50–150 ms, seeded), in Strict mode (every meeting in the one organizer
account: one mailbox at the limit) and Normal mode (the meetings spread over the rooms' and
people's mailboxes, none near its limit: the workers are the bound).

Each worker is one process on the product's outbound pool (README "Workers and queues":
``--pool threads --concurrency 8``, pushes are I/O-bound); ``--pool prefork --concurrency 4``
measures the old pool (4 child processes per worker, one request at a time each).

The physical limit of one mailbox is min(4 in flight / mean write latency, 10,000 requests per
600 s) — Outlook's documented per-app-per-mailbox limits:
https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
Reported per run (JSON on stdout, each run also on stderr as it ends):

- ``seconds_until_all_confirmed``: from the run's first Graph request (worker boot excluded;
  ``seconds_from_worker_start`` includes it) until every push is processed and no reservation
  still waits for the room's answer;
- per mailbox, the creates per second it received over the run ÷ the limit: the busiest
  mailbox (the organizer's in Strict; ``busiest_mailbox_ratio_to_limit`` measures it over its
  own first-to-last create, ``_over_run`` over the whole run) and, in Normal, the distribution
  over the mailboxes (``mailbox_ratio_to_limit`` min / median / p90 / max);
- ``speedup_over_1_worker`` (pushes per second over the same mode's 1-worker run);
- ``max_in_flight_per_mailbox`` as the emulator saw it (must stay ≤ 4) and ``graph_429s``
  (every request in the run is the product's: any 429 is one it caused), by mailbox;
- ``answer_reads`` (the $batch GETs of organizer copies), the most of one meeting, and
  ``answer_reads_closer_than_1_5_s``: reads of one meeting less than the first pause apart —
  the same meeting read twice by checks of different workers;
- ``load``: the 1-minute load average before and after the run (2 shared cores: read the
  ratios, not the seconds), and ``worker_cpu_ms_per_push`` / ``worker_cores_used``: the CPU
  the workers' processes used (boot included): a run whose workers got all the CPU they
  could is bound by the machine, not by Graph's limits or the product's waits;
- ``cpu_ms_per_push``: the CPU one push costs the whole machine's side of it — ``worker``
  (the worker processes and their children, /proc/PID/stat utime+stime, sampled every second:
  from the last sample before the run's first Graph request, so boot is left out —
  ``worker_boot_cpu_seconds``; ``worker_cpu_ms_per_push`` above keeps it in),
  ``emulator`` (this process's CPU, ``time.process_time``, less its main thread's
  ``time.thread_time``: the emulator's server threads, which play Graph), ``postgres`` (the
  backends connected to the bench database, from pg_stat_activity, their /proc/PID/stat
  CPU sampled every second so a backend that ends is counted up to its last sample; shared
  background processes — WAL writer, checkpointer — left out) and ``redis`` (the bench's
  Redis server, ``INFO cpu``; the broker, the cache, the metrics and the slots) — each the
  run's delta ÷ the pushes, and ``total``; ``cpu_bound_ceiling_pushes_per_second`` = the
  cores ÷ the total CPU per push (what the machine could do were nothing else running) and
  ``achieved_ratio_to_cpu_ceiling`` = pushes per second ÷ that ceiling.

- listening, as in production (``--listen``, default ``all``): the product's webhook is live
  (gunicorn, ``common.start_web``), the emulator notifies it (http on loopback allowed), every
  synced room and in Strict the organizer account mailbox are subscribed (each one's first full
  round run before the bookings), and ``--inbound-workers`` worker processes (threads, 8) pull
  them from the ``inbound`` queue while the pushes run: a pull of the organizer mailbox applies
  the rooms' answers, and the answer check reads only the meetings still waiting a listened
  delay (CALENDAR_SYNC_CONFIRM_LISTENED_DELAY_SECONDS, 60 s) after their push. ``organizer``
  subscribes the organizer account mailbox alone, ``off`` nothing (every answer read, as the
  runs before issue 17's listening). Reported: ``answer_gets_per_create``,
  ``organizer_delta_pull_requests`` (the delta GETs of the organizer mailbox), and on the busiest
  mailbox every request (``busiest_mailbox_requests``: creates, answer reads, pulls) and their
  rate over the run ÷ Outlook's window limit (10,000 / 600 s = 16.67/s:
  ``busiest_mailbox_requests_ratio_to_window_limit``) — the limit that binds at 10,000 bookings.

    .venv/bin/python bench/scale_outbound.py                  # scaled down: 300 reservations, 200 rooms (a few minutes)
    .venv/bin/python bench/scale_outbound.py --full           # the full size: 10,000 reservations over 200 rooms
    .venv/bin/python bench/scale_outbound.py --modes Strict --workers 2 --listen off   # every answer read (to compare)

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_scale_bench),
BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/12; the workers' broker, flushed
per run). Scaffolding (environment, database, emulator, workers, percentiles): bench/common.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_scale_bench", redis_db=12)

DOMAIN = "contoso.example"
ORGANIZER = f"reservations@{DOMAIN}"
WINDOW_LIMIT = 10_000 / 600  # requests per second per mailbox (Outlook: 10,000 per 10 minutes)
CONCURRENCY_LIMIT = 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reservations", type=int, default=300)
    p.add_argument("--full", action="store_true", help="the issue's full size: 10,000 reservations over 200 rooms")
    p.add_argument("--pool", default="threads", choices=["threads", "prefork"])
    p.add_argument("--concurrency", type=int, default=None, help="per worker (default: 8 threads, or 4 prefork children)")
    p.add_argument("--rooms", type=int, default=200)
    p.add_argument("--employees", type=int, default=20)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--modes", default="Strict,Normal")
    p.add_argument("--write-ms", default="150-400")
    p.add_argument("--read-ms", default="50-150")
    p.add_argument("--listen", default="all", choices=["all", "organizer", "off"],
                   help="what the product listens to while it pushes: 'all' as production (every synced room and, in Strict, the "
                        "organizer account mailbox subscribed, the webhook live, inbound workers pulling), 'organizer' the organizer "
                        "account mailbox alone, 'off' nothing (every room's answer read by the answer check)")
    p.add_argument("--inbound-workers", type=int, default=1, help="inbound worker processes (threads pool, 8 each) when listening")
    args = p.parse_args()
    if args.full:
        args.reservations, args.rooms = 10_000, 200
    concurrency = args.concurrency or (8 if args.pool == "threads" else 4)
    write = [float(x) for x in args.write_ms.split("-")]
    read = [float(x) for x in args.read_ms.split("-")]

    common.ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    listening = args.listen != "off"
    srv, control = common.start_emulator("bench-scale-", config={"http_notification_urls": "loopback"} if listening else None)
    web = None
    if listening:
        from django.conf import settings

        web, settings.PUBLIC_BASE_URL = common.start_web(srv, settings_module="bench.scale_worker_settings", name=f"bench-scale-{os.getpid()}")
    mean_write_s = (write[0] + write[1]) / 2000
    limit = min(CONCURRENCY_LIMIT / mean_write_s, WINDOW_LIMIT)
    results = {"reservations": args.reservations, "rooms": args.rooms, "employees": args.employees,
               "latency_ms": {"write": write, "read": read},
               "mailbox_limit_per_second": round(limit, 2),
               "pool": args.pool, "concurrency_per_worker": concurrency, "cpus": os.cpu_count(),
               "listen": args.listen, "inbound_workers": args.inbound_workers if listening else 0, "runs": []}
    try:
        for mode in args.modes.split(","):
            base_rate = None
            for n in [int(w) for w in args.workers.split(",")]:
                run = run_once(control, srv, mode=mode, workers=n, reservations=args.reservations, rooms=args.rooms,
                               employees=args.employees, write=write, read=read, limit=limit,
                               pool=args.pool, concurrency=concurrency, listen=args.listen, inbound_workers=args.inbound_workers)
                base_rate = base_rate or run["pushes_per_second"]
                run["speedup_over_1_worker"] = round(run["pushes_per_second"] / base_rate, 2) if base_rate else None
                results["runs"].append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    finally:
        if web is not None:
            common.stop_web(web)
        srv.stop()
    print(json.dumps(results, indent=2))


def setup(control: common.Control, *, mode: str, rooms: int, employees: int, write, read):
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from calendar_sync.models import MailboxDeltaState, RoomEvent, Subscription, WebhookNotification
    from exchange_auth import properties
    from exchange_auth.demo import seed_provider
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.models import Arrangement, Building, Profile, Room

    cache.clear()
    for model in (WebhookNotification, Subscription, MailboxDeltaState, RoomEvent):  # the emulator's reset drops its subscriptions
        model.objects.all().delete()
    SyncEvent.objects.all().delete()
    Reservation.objects.all().delete()
    ReservationSeries.objects.all().delete()
    control.call("POST", "/reset", {"seed": "demo"})
    control.call("POST", "/seed", {
        "rooms": [{"upn": f"scale-room-{i:04d}@{DOMAIN}", "displayName": f"Scale {i:04d}", "capacity": 8} for i in range(rooms)],
        "users": [{"upn": f"scale-user-{i:03d}@{DOMAIN}"} for i in range(employees)],
    })
    control.call("POST", "/config", {"latency": {"write": write, "read": read}, "latency_seed": 17})
    building, _ = Building.objects.get_or_create(code="scale", defaults={"name": "Scale tower", "timezone": "Europe/Amsterdam"})
    found = []
    for i in range(rooms):
        room, _ = Room.objects.update_or_create(building=building, name=f"Scale {i:04d}",
                                                defaults={"capacity": 8, "mailbox": f"scale-room-{i:04d}@{DOMAIN}", "sync_enabled": True})
        Arrangement.objects.get_or_create(room=room, name="Default", defaults={"is_default": True})
        found.append(room)
    User = get_user_model()
    people = []
    for i in range(employees):
        user, _ = User.objects.get_or_create(username=f"scale-user-{i:03d}", defaults={"email": f"scale-user-{i:03d}@{DOMAIN}"})
        Profile.objects.get_or_create(user=user, defaults={"timezone": "Europe/Amsterdam"})
        people.append(user)
    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, mode)
    return found, people, provider


def start_inbound_workers(srv, n: int):
    """The inbound pool (README "Workers and queues": threads, 8), the product's timings."""
    return common.start_workers(srv, n, queues="inbound,default", concurrency=8, name=f"bench-scale-inbound-{os.getpid()}",
                                settings_module="bench.scale_worker_settings", wait=0.5, extra_args=("--pool=threads",))


def subscribe(provider, how: str) -> dict:
    """Subscribe as production does (``all``: ``subscription_ensure_all``) or the organizer account
    mailbox alone, and wait for each subscribed mailbox's first full round (the inbound workers')."""
    from calendar_sync.inbound import subscriptions
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState, Subscription

    if how == "all":
        counts = inbound_tasks.subscriptions_ensure(provider=provider)
    else:
        subscriptions.subscription_create(provider=provider, mailbox=ORGANIZER, kind=Subscription.Kind.ORGANIZER)
        inbound_tasks.request_pull(ORGANIZER, full=True)
        counts = {"created": 1}
    wanted = set(Subscription.objects.filter(status=Subscription.Status.ACTIVE).values_list("mailbox", flat=True))
    common.wait_for(lambda: wanted <= set(MailboxDeltaState.objects.exclude(delta_link="").values_list("mailbox", flat=True)),
                    600, "each subscribed mailbox's first full round", interval=0.5)
    return {**counts, "subscribed": sorted(wanted) if len(wanted) < 5 else len(wanted)}


def start_workers(srv, n: int, *, pool: str, concurrency: int):
    # Kept database connections, as the product's worker runs (docker-compose.yml): a fixed
    # pool of threads holds one each instead of connecting for every task (and its backend's
    # CPU stays countable: a backend that ends takes its figures with it).
    os.environ["DATABASE_CONN_MAX_AGE"] = "600"
    return common.start_workers(srv, n, queues="answers,outbound", concurrency=concurrency, name=f"bench-scale-{os.getpid()}",
                                settings_module="bench.scale_worker_settings", wait=0.5, extra_args=(f"--pool={pool}",))


def cpu_seconds(procs) -> float:
    """User + system CPU the workers' processes (and their pool children) have used so far:
    with the machine's load it says whether a run was bound by Graph or by the CPU it got."""
    return sum(common._cpu_seconds(pid) for proc in procs for pid in common.process_tree(proc.pid))


class SideCPU:
    """CPU the rest of the machine's side of a push used over a run: the emulator (this
    process's threads but the main one), the PostgreSQL backends of the bench database
    (sampled every second: a backend's figures go when it ends) and the bench's Redis server."""

    def __init__(self, database: str):
        self.database = database
        self.backends: dict[int, float] = {}  # pid -> CPU seconds at its latest sample
        self.backends_at_start: dict[int, float] = {}
        self.procs: list = []  # the workers, once started: their CPU sampled with the time
        self.worker_samples: list[tuple[float, float]] = []  # (time.time(), workers' CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _backend_pids(self) -> list[int]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database])
            return [row[0] for row in cur.fetchall()]

    def _sample(self) -> None:
        if self.procs:
            self.worker_samples.append((time.time(), cpu_seconds(self.procs)))
        for pid in self._backend_pids():
            self.backends[pid] = max(self.backends.get(pid, 0.0), common._cpu_seconds(pid))

    @staticmethod
    def _redis_cpu() -> float:
        import redis

        info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def __enter__(self):
        self._sample()
        self.backends_at_start = dict(self.backends)
        self.process_start, self.main_start = time.process_time(), time.thread_time()
        self.redis_start = self._redis_cpu()
        self._thread.start()
        return self

    def _run(self) -> None:
        import django.db

        try:
            while not self._stop.wait(1.0):
                self._sample()
        finally:
            django.db.connections.close_all()

    def __exit__(self, *exc) -> None:
        self.main_cpu = time.thread_time() - self.main_start
        self.process_cpu = time.process_time() - self.process_start
        self._stop.set()
        self._thread.join()
        self._sample()
        self.redis_cpu = self._redis_cpu() - self.redis_start

    @property
    def emulator_cpu(self) -> float:
        # The sampler thread's own share (a query a second) is counted with the emulator's: small.
        return self.process_cpu - self.main_cpu

    def worker_cpu_at(self, moment: float) -> float:
        """The workers' CPU at their last sample before ``moment`` (their boot: before the first request)."""
        return max((cpu for at, cpu in self.worker_samples if at <= moment), default=0.0)

    @property
    def postgres_cpu(self) -> float:
        return sum(cpu - self.backends_at_start.get(pid, 0.0) for pid, cpu in self.backends.items())


def run_once(control, srv, *, mode, workers, reservations, rooms, employees, write, read, limit, pool, concurrency,
             listen: str = "off", inbound_workers: int = 1) -> dict:

    from workplace.celery import app

    found, people, provider = setup(control, mode=mode, rooms=rooms, employees=employees, write=write, read=read)
    common.flush_redis()
    app.conf.task_always_eager = False
    inbound = start_inbound_workers(srv, inbound_workers) if listen != "off" else []
    try:
        return _run(control, srv, found=found, people=people, mode=mode, workers=workers, reservations=reservations, limit=limit,
                    pool=pool, concurrency=concurrency, listening=subscribe(provider, listen) if inbound else None, write=write, read=read)
    finally:
        common.stop_workers(inbound, grace=2.0)


def _run(control, srv, *, found, people, mode, workers, reservations, limit, pool, concurrency, listening, write, read) -> dict:
    from django.db import connection

    from calendar_sync.models import MailboxDeltaState
    from reservations import services
    from reservations.models import Reservation, State, SyncEvent

    # The bookings first (queued on Redis, no worker yet): the run measures the pushes alone.
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    for n in range(reservations):
        room = found[n % len(found)]
        k = n // len(found)
        start = base + dt.timedelta(days=k // 10, hours=k % 10)
        services.reservation_create(actor=people[n % len(people)], room=room, start=start, end=start + dt.timedelta(minutes=50),
                                    subject=f"scale #{n:05d}")
    control.call("DELETE", "/requests")
    control.call("POST", "/config", {"latency": {"write": write, "read": read}, "latency_seed": 17})
    load_before = common.load()
    side = SideCPU(connection.settings_dict["NAME"])
    side.__enter__()
    started = time.monotonic()
    procs = start_workers(srv, workers, pool=pool, concurrency=concurrency)
    side.procs = procs
    pushed_at = confirmed_at = None
    worker_cpu = 0.0
    try:
        deadline = started + 3600
        while time.monotonic() < deadline:
            if pushed_at is None and not SyncEvent.objects.filter(state__in=["new", "processing"]).exists():
                pushed_at = time.time()
            if pushed_at is not None and not Reservation.objects.filter(state=State.AWAITING_CONFIRMATION).exists():
                confirmed_at = time.time()
                break
            time.sleep(0.2)
        from_start = time.monotonic() - started
        worker_cpu = cpu_seconds(procs)
        side.__exit__(None, None, None)
    finally:
        common.stop_workers(procs, grace=2.0)
    load_after = common.load()
    log = control.call("GET", "/requests?limit=200000")
    entries = log["entries"]
    first = min((e["time"] - e["duration_ms"] / 1000 for e in entries), default=time.time())
    end = confirmed_at or time.time()
    seconds = end - first
    push_seconds = (pushed_at or end) - first
    creates = [e for e in entries if e["method"] == "POST" and e["path"].endswith("/events") and not e["batch"] and e["status"] < 400]
    per_mailbox: dict[str, list[float]] = {}
    for e in creates:
        per_mailbox.setdefault(e["mailbox"], []).append(e["time"])
    busiest, times = max(per_mailbox.items(), key=lambda kv: len(kv[1])) if per_mailbox else ("-", [])
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    busiest_rate = (len(times) - 1) / span if span else 0.0
    ratios = [len(t) / push_seconds / limit for t in per_mailbox.values()] if push_seconds > 0 else []
    # Answer reads of one meeting closer together than the first pause (the confirm delay, 2 s):
    # two workers' checks reading it twice (each read is claimed: this should stay 0).
    reads_by_meeting: dict[str, list[float]] = {}
    for e in entries:
        if e["method"] == "GET" and e["batch"] and "/events/" in e["path"]:
            reads_by_meeting.setdefault(e["path"].split("?")[0].lower(), []).append(e["time"])
    close_reads = sum(1 for times in reads_by_meeting.values() for a, b in itertools.pairwise(sorted(times)) if b - a < 1.5)
    # Every request on the busiest mailbox (creates, answer reads, the pulls' delta reads), over the run.
    by_mailbox: dict[str, int] = {}
    for e in entries:
        if e["mailbox"]:
            by_mailbox[e["mailbox"]] = by_mailbox.get(e["mailbox"], 0) + 1
    loudest, loudest_requests = max(by_mailbox.items(), key=lambda kv: kv[1]) if by_mailbox else ("-", 0)
    organizer_pulls = sum(1 for e in entries if e["mailbox"] == ORGANIZER and e["method"] == "GET" and "/delta" in e["path"])
    answer_gets = sum(len(t) for t in reads_by_meeting.values())
    throttled: dict[str, int] = {}
    for e in entries:
        if e["status"] == 429:
            throttled[e["mailbox"] or "-"] = throttled.get(e["mailbox"] or "-", 0) + 1
    states: dict[str, int] = {}
    for state in Reservation.objects.values_list("state", flat=True):
        states[state] = states.get(state, 0) + 1
    return {
        "mode": mode, "workers": workers, "pool": pool, "concurrency_per_worker": concurrency,
        "seconds_until_all_confirmed": round(seconds, 2),
        "seconds_until_all_pushed": round(push_seconds, 2),
        "seconds_from_worker_start": round(from_start, 2),
        "pushes_per_second": round(reservations / push_seconds, 2) if push_seconds > 0 else None,
        "sync_events_left": SyncEvent.objects.filter(state__in=["new", "processing"]).count(),
        "sync_events_failed": SyncEvent.objects.filter(state="error").count(),
        "reservation_states": states,
        "mailboxes": len(per_mailbox),
        "busiest_mailbox": busiest,
        "busiest_mailbox_creates": len(times),
        "busiest_mailbox_creates_per_second": round(busiest_rate, 2),
        "busiest_mailbox_ratio_to_limit": round(busiest_rate / limit, 3),
        "busiest_mailbox_ratio_to_limit_over_run": round(len(times) / push_seconds / limit, 3) if push_seconds > 0 else None,
        "mailbox_ratio_to_limit": {"min": round(min(ratios, default=0), 3), "median": common.percentile(ratios, 50),
                                   "p90": common.percentile(ratios, 90), "max": round(max(ratios, default=0), 3)},
        "creates": len(creates),
        "max_in_flight_per_mailbox": max(log.get("max_concurrency", {}).values() or [0]),
        "graph_429s": int(log["counts"]["by_status"].get("429", 0)),
        "graph_429s_by_mailbox": throttled,
        "graph_requests": log["total"],
        "graph_requests_by_endpoint": log["counts"]["by_endpoint"],
        "listening": listening,
        "answer_reads": answer_gets,
        "answer_gets_per_create": round(answer_gets / len(creates), 3) if creates else None,
        "organizer_delta_pull_requests": organizer_pulls,
        "organizer_pulls_with_first_round": MailboxDeltaState.objects.filter(mailbox=ORGANIZER).values_list("pulls", flat=True).first(),
        "busiest_mailbox_by_requests": loudest,
        "busiest_mailbox_requests": loudest_requests,
        "busiest_mailbox_requests_per_second": round(loudest_requests / seconds, 2) if seconds > 0 else None,
        "busiest_mailbox_requests_ratio_to_window_limit": round(loudest_requests / seconds / WINDOW_LIMIT, 3) if seconds > 0 else None,
        "answer_reads_per_meeting_max": max((len(t) for t in reads_by_meeting.values()), default=0),
        "answer_reads_closer_than_1_5_s": close_reads,
        "worker_cpu_seconds": round(worker_cpu, 1),
        "worker_cpu_ms_per_push": round(worker_cpu * 1000 / reservations, 1),
        "worker_cores_used": round(worker_cpu / from_start, 2) if from_start else None,
        "worker_boot_cpu_seconds": round(side.worker_cpu_at(first), 1),
        **cpu_figures(reservations, worker_cpu - side.worker_cpu_at(first), side, push_seconds),
        "load": {"before": load_before["loadavg_1m"], "after": load_after["loadavg_1m"],
                 "before_5m": load_before["loadavg_5m"], "after_5m": load_after["loadavg_5m"]},
    }


def cpu_figures(pushes: int, worker_cpu: float, side: SideCPU, push_seconds: float) -> dict:
    """CPU per push of every process on the push's path, and the rate the machine's cores
    could sustain at that cost (the docstring says how each is read)."""
    # worker_cpu: boot left out (the workers' CPU from the run's first Graph request)
    parts = {"worker": worker_cpu, "emulator": side.emulator_cpu, "postgres": side.postgres_cpu, "redis": side.redis_cpu}
    per_push = {name: round(seconds * 1000 / pushes, 1) for name, seconds in parts.items()}
    total_ms = sum(parts.values()) * 1000 / pushes
    per_push["total"] = round(total_ms, 1)
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / total_ms if total_ms else None
    rate = pushes / push_seconds if push_seconds > 0 else None
    return {
        "cpu_ms_per_push": per_push,
        "cpu_bound_ceiling_pushes_per_second": round(ceiling, 2) if ceiling else None,
        "achieved_ratio_to_cpu_ceiling": round(rate / ceiling, 3) if (ceiling and rate) else None,
    }


if __name__ == "__main__":
    main()
