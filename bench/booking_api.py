#!/usr/bin/env python
"""Benchmark: booking through the REST API on gunicorn (2 workers) + PostgreSQL.

1. (re)create the database ``wp_bench`` (BENCH_DATABASE_URL) and migrate it;
2. seed a building with rooms without a mailbox (the booking core, no Exchange
   push) and a user with a token;
3. start gunicorn with 2 gthread workers x 4 threads on settings.prod (the
   Dockerfile's and docker-compose.yml's command; --worker-class/--threads to compare);
4. POST /api/v1/reservations/ for N distinct slots at concurrency 16, then the
   same number of GET /api/v1/me/ (a trivial authenticated request: the ceiling);
5. print JSON: requests/s, p50, p99 per phase; create/ceiling ratio; targets;
   and the load-independent figures: CPU ms per request of the gunicorn workers
   (utime+stime of the master's children from /proc/<pid>/stat), of the
   PostgreSQL backends of the bench database, and of this client; how many
   cores the three kept busy; the machine's load average before setup.

Reading the figures. On a 2-core machine shared by client, server and
PostgreSQL (and whatever else runs: the load average says), throughput and
latency follow from CPU per request. Measured 2026-12-01 (quiet host, default
4 threads): a create costs the machine ~2.5 ms of CPU in all (server ~1.85,
PostgreSQL ~0.35, client ~0.27), the ceiling GET ~1.0 (server ~0.8,
PostgreSQL ~0.08, client ~0.15): a CPU ratio of ~0.41-0.43. The throughput
ratio printed came out 0.38-0.415 in back-to-back runs: during creates the
cores idle a little more (commits wait for the WAL flush), and the host's
noise moves either phase by several percent. p99 was 42-51 ms. What a create
adds is mostly inherent to a durable booking: a write transaction whose
INSERT updates ten indexes and the exclusion constraint's GiST index, four
foreign-key checks at commit, the room lookup, parsing and validating the
JSON body and rendering the new reservation. By Little's law the mean
latency at concurrency 16 is 16 / throughput (16 / 720 = 22 ms). The ratio
falls whenever a cost common to both requests (authentication, middleware,
HTTP) falls and rises when the ceiling gets slower (8 threads per worker
printed 0.42 only because GIL contention slowed the GET), so compare CPU ms
per create between runs, and requests/s and p99 only when the load average
was low.

Server setup (production and here): gthread, workers = cores (2), 4 threads.
Sync workers serve one request at a time per process and close the connection
after each (no keep-alive), so a worker idles during every database round trip
and every client pays a new TCP connection. Threads overlap one request's
database waits (a create's commit waits for the WAL flush) with another's CPU
work; with the GIL more threads don't add CPU, and 1, 2 and 4 threads gave the
same CPU per request within noise here, so 4 keeps headroom for slow queries
at no measured cost. Keep-alive stays at gunicorn's default (2 s), fine behind
a proxy that reuses connections.

Usage: python bench/booking_api.py [--requests 2000] [--concurrency 16] [--threads 4]
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/wp_bench"


def _env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="settings.prod",
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        SECRET_KEY="bench-secret-key-not-for-production-0123456789",
        TOKEN_ENCRYPTION_KEY="WZQ9YVk6hi_LCcOno-faL0FNCXAjTpK20IDzNiZ99Eo=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL="https://workplace.example",  # settings.prod requires an https one (Graph's notification URL)
        SECURE_SSL_REDIRECT="false",  # plain http here, as behind a TLS-terminating proxy (settings/prod.py)
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


SEED = """
from django.contrib.auth import get_user_model
from workplace.models import ApiToken
from workplace.models import Arrangement, Building, Room
building = Building.objects.create(name="Bench", code="bench", timezone="Europe/Berlin")
rooms = []
for i in range({rooms}):
    room = Room.objects.create(building=building, name=f"Bench {{i}}", capacity=10)
    Arrangement.objects.create(room=room, name="Default", is_default=True)
    rooms.append(room.pk)
user = get_user_model().objects.create_user("bencher", "bencher@contoso.example", "demo-password")
print(ApiToken.objects.create(user=user, name="bench")[1], ",".join(map(str, rooms)))
"""


_children, _cpu_seconds, _backend_pids = common.children, common.cpu_seconds, common.backend_pids


def _measured(phase: str, base_url: str, token: str, items: list, concurrency: int, workers: list[int],
              database_url: str) -> dict:
    """Run a phase and add CPU ms per request: gunicorn workers, PostgreSQL backends, this client.

    Backends are those connected when the phase ends (CONN_MAX_AGE keeps them across phases; one
    opened during the phase counts from 0, which is its whole life)."""
    backends_before = {pid: _cpu_seconds([pid]) for pid in _backend_pids(database_url)}
    server_before, client_before = _cpu_seconds(workers), time.process_time()
    result = asyncio.run(_run(phase, base_url, token, items, concurrency))
    server = _cpu_seconds(workers) - server_before
    client = time.process_time() - client_before
    backends = sum(_cpu_seconds([pid]) - backends_before.get(pid, 0.0) for pid in _backend_pids(database_url))
    n = result["requests"]
    result.update(
        server_cpu_ms_per_request=round(server * 1000 / n, 2),
        postgres_cpu_ms_per_request=round(backends * 1000 / n, 2),
        client_cpu_ms_per_request=round(client * 1000 / n, 2),
        # CPU the phase used of the machine's cores while it ran (busy cores, all three parties).
        cores_busy=round((server + backends + client) / result["seconds"], 2),
    )
    return result


def _slots(count: int, rooms: list[int]) -> list[tuple[int, str, str]]:
    """``count`` distinct 30-minute slots spread over the rooms, from tomorrow 07:00 Berlin."""
    berlin = dt.timezone(dt.timedelta(hours=1))  # a fixed offset is enough to be distinct and future
    base = dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(7, 0), tzinfo=berlin)
    slots = []
    for index in range(count):
        room = rooms[index % len(rooms)]
        step = index // len(rooms)
        start = base + dt.timedelta(minutes=30 * step)
        slots.append((room, start.isoformat(), (start + dt.timedelta(minutes=30)).isoformat()))
    return slots


async def _run(phase: str, base_url: str, token: str, requests: list, concurrency: int) -> dict:
    import aiohttp

    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    latencies: list[float] = []
    statuses: Counter = Counter()
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker(session):
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            if phase == "create":
                room, start, end = item
                body = {"room": room, "subject": "Bench booking", "start": start, "end": end}
                async with session.post(f"{base_url}/api/v1/reservations/", json=body) as response:
                    content = await response.read()
                    statuses[response.status] += 1
                    if response.status != 201 and statuses[response.status] <= 3:
                        print(f"{response.status} for {body}: {content[:300]!r}", file=sys.stderr)
            else:
                async with session.get(f"{base_url}/api/v1/me/") as response:
                    await response.read()
                    statuses[response.status] += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)  # keep-alive, as a real API client would
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(common.p50_p99(latencies)[0], 1),
        "p99_ms": round(common.p50_p99(latencies)[1], 1),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", 2000)))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rooms", type=int, default=20)
    # Threads let one worker's CPU work overlap another request's database round trips.
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = _env(database_url)
    load_at_start = os.getloadavg()  # before our own setup work: what else the machine is doing

    common.recreate_database(database_url)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run([PY, "manage.py", "shell", "-c", SEED.format(rooms=args.rooms)], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1].split()
    token, rooms = seeded[0], [int(pk) for pk in seeded[1].split(",")]

    port = common.free_port()
    gunicorn = subprocess.Popen(
        [PY, "-m", "gunicorn", "workplace.wsgi:application", "--workers", "2", "--worker-class", args.worker_class,
         "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "256"],
        cwd=ROOT, env=env,
    )
    try:
        common.wait_for_port(port, what="gunicorn")
        base_url = f"http://127.0.0.1:{port}"
        slots = _slots(args.requests + 50, rooms)
        # Warm both workers (imports, DB connections) before measuring.
        asyncio.run(_run("get", base_url, token, [None] * 50, args.concurrency))
        asyncio.run(_run("create", base_url, token, slots[:50], args.concurrency))
        workers = _children(gunicorn.pid)
        create = _measured("create", base_url, token, slots[50:], args.concurrency, workers, database_url)
        ceiling = _measured("get", base_url, token, [None] * args.requests, args.concurrency, workers, database_url)
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()

    ratio = create["requests_per_second"] / ceiling["requests_per_second"]
    result = {
        "benchmark": "booking_api",
        "server": f"gunicorn, 2 {args.worker_class} workers x {args.threads} threads, settings.prod, PostgreSQL",
        "create": {"endpoint": "POST /api/v1/reservations/", **create},
        "ceiling": {"endpoint": "GET /api/v1/me/", **ceiling},
        "create_vs_ceiling": round(ratio, 3),
        "targets": {"create_vs_ceiling_min": 0.4, "create_p99_ms_max": 100},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load_at_start],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "load": common.load(),
        "meets_targets": ratio >= 0.4 and create["p99_ms"] <= 100 and create["statuses"] == {"201": create["requests"]},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
