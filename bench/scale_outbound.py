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
- ``load``: the 1-minute load average before and after the run (2 shared cores: read the
  ratios, not the seconds), and ``worker_cpu_ms_per_push`` / ``worker_cores_used``: the CPU
  the workers' processes used (boot included): a run whose workers got all the CPU they
  could is bound by the machine, not by Graph's limits or the product's waits.

    .venv/bin/python bench/scale_outbound.py                  # scaled down: 300 reservations, 200 rooms (a few minutes)
    .venv/bin/python bench/scale_outbound.py --full           # the full size: 10,000 reservations over 200 rooms

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_scale_bench),
REDIS_URL (default redis://127.0.0.1:6379/12; the workers' broker, flushed per run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_scale_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"

from bench.outbound import Control, ensure_database  # noqa: E402

DOMAIN = "contoso.example"
ORGANIZER = f"reservations@{DOMAIN}"
WINDOW_LIMIT = 10_000 / 600  # requests per second per mailbox (Outlook: 10,000 per 10 minutes)
CONCURRENCY_LIMIT = 4


def main() -> None:
    p = argparse.ArgumentParser()
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
    args = p.parse_args()
    if args.full:
        args.reservations, args.rooms = 10_000, 200
    concurrency = args.concurrency or (8 if args.pool == "threads" else 4)
    write = [float(x) for x in args.write_ms.split("-")]
    read = [float(x) for x in args.read_ms.split("-")]

    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix="bench-scale-"))
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    control = Control(srv.base_url, srv.ca_path)
    mean_write_s = (write[0] + write[1]) / 2000
    limit = min(CONCURRENCY_LIMIT / mean_write_s, WINDOW_LIMIT)
    results = {"reservations": args.reservations, "rooms": args.rooms, "employees": args.employees,
               "latency_ms": {"write": write, "read": read},
               "mailbox_limit_per_second": round(limit, 2),
               "pool": args.pool, "concurrency_per_worker": concurrency, "cpus": os.cpu_count(), "runs": []}
    try:
        for mode in args.modes.split(","):
            base_rate = None
            for n in [int(w) for w in args.workers.split(",")]:
                run = run_once(control, srv, mode=mode, workers=n, reservations=args.reservations, rooms=args.rooms,
                               employees=args.employees, write=write, read=read, limit=limit,
                               pool=args.pool, concurrency=concurrency)
                base_rate = base_rate or run["pushes_per_second"]
                run["speedup_over_1_worker"] = round(run["pushes_per_second"] / base_rate, 2) if base_rate else None
                results["runs"].append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    finally:
        srv.stop()
    print(json.dumps(results, indent=2))


def setup(control: Control, *, mode: str, rooms: int, employees: int, write, read):
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from exchange_auth import properties
    from exchange_auth.demo import seed_provider
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.models import Arrangement, Building, Profile, Room

    cache.clear()
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
    seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, mode)
    return found, people


def start_workers(srv, n: int, *, pool: str, concurrency: int) -> list[subprocess.Popen]:
    # Kept database connections, as the product's worker runs (docker-compose.yml): a fixed
    # pool of threads holds one each instead of connecting for every task.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.scale_worker_settings", "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT), "DATABASE_CONN_MAX_AGE": "60"}
    procs = []
    for i in range(n):
        log = open(Path(tempfile.gettempdir()) / f"bench-scale-{os.getpid()}-worker-{i}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=WARNING", f"--pool={pool}", f"--concurrency={concurrency}",
             "-Q", "outbound", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"bench-scale-{i}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    return procs


def cpu_seconds(procs) -> float:
    """User + system CPU the workers' processes (and their pool children) have used so far:
    with the machine's load it says whether a run was bound by Graph or by the CPU it got."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = {proc.pid for proc in procs}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[1] is the parent pid, fields[11:13] utime and stime (proc(5), after the name)
        if int(entry.name) in pids or int(fields[1]) in pids:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop_workers(procs) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=20)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_once(control, srv, *, mode, workers, reservations, rooms, employees, write, read, limit, pool, concurrency) -> dict:
    import redis
    from django.conf import settings

    from reservations import services
    from reservations.models import Reservation, State, SyncEvent
    from workplace.celery import app

    found, people = setup(control, mode=mode, rooms=rooms, employees=employees, write=write, read=read)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    app.conf.task_always_eager = False
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
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    procs = start_workers(srv, workers, pool=pool, concurrency=concurrency)
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
    finally:
        stop_workers(procs)
    load_after = os.getloadavg()[0]
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
        "mailbox_ratio_to_limit": {"min": round(min(ratios, default=0), 3), "median": round(_quantile(ratios, 0.5), 3),
                                   "p90": round(_quantile(ratios, 0.9), 3), "max": round(max(ratios, default=0), 3)},
        "creates": len(creates),
        "max_in_flight_per_mailbox": max(log.get("max_concurrency", {}).values() or [0]),
        "graph_429s": int(log["counts"]["by_status"].get("429", 0)),
        "graph_429s_by_mailbox": throttled,
        "graph_requests": log["total"],
        "graph_requests_by_endpoint": log["counts"]["by_endpoint"],
        "worker_cpu_seconds": round(worker_cpu, 1),
        "worker_cpu_ms_per_push": round(worker_cpu * 1000 / reservations, 1),
        "worker_cores_used": round(worker_cpu / from_start, 2) if from_start else None,
        "load": {"before": round(load_before, 2), "after": round(load_after, 2)},
    }


if __name__ == "__main__":
    main()
