"""What the benches repeat: environment defaults, the bench database (created, or dropped and
created), Django set up and migrated, the emulator and its control API, seeded rooms, people
and meetings, the product's web app on a thread, Celery workers started and stopped by process
group, their resident memory and CPU, free ports, waiting, percentiles and the machine's load.

    from bench import common
    common.configure("wp_mybench", redis_db=11)   # before Django is imported
    common.ensure_database()
    ...

Each bench gets a database of its own (``DATABASE_URL``) and a Redis db of its own
(``BENCH_REDIS_URL``, else ``REDIS_URL``), so two benches (or two people) never share one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "contoso.example"


# --- environment ----------------------------------------------------------------------------


def configure(database: str, *, redis_db: int, settings_module: str = "settings.test") -> None:
    """Defaults for a bench run; call before Django is imported. ``BENCH_REDIS_URL`` wins over
    ``REDIS_URL`` (the workers get the same), the database name is the bench's own unless
    ``DATABASE_URL`` says otherwise."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{redis_db}"
    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module


def ensure_database() -> None:
    """Create ``DATABASE_URL``'s database if it does not exist (migrations are the caller's)."""
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


def recreate_database(database_url: str | None = None) -> None:
    """Drop (its connections ended first) and create ``database_url``'s database (default ``DATABASE_URL``)."""
    import psycopg

    parsed = urlparse(database_url or os.environ["DATABASE_URL"])
    name = parsed.path.lstrip("/")
    admin = psycopg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                            password=parsed.password or "", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def setup_django(*, recreate: bool = False) -> None:
    """The bench database created if missing (dropped and created with ``recreate``), Django set
    up, the migrations applied."""
    if recreate:
        recreate_database()
    else:
        ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def backend_pids(database_url: str | None = None) -> list[int]:
    """PostgreSQL backends connected to ``database_url``'s database (default ``DATABASE_URL``)."""
    import psycopg

    parsed = urlparse(database_url or os.environ["DATABASE_URL"])
    try:
        conn = psycopg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                               password=parsed.password or "", dbname="postgres")
    except psycopg.Error:
        return []
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [parsed.path.lstrip("/")])
            return [pid for (pid,) in cursor.fetchall()]
    finally:
        conn.close()


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def load() -> dict:
    """The machine's load when measured (benches on a shared machine are noisy)."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2), "loadavg_15m": round(fifteen, 2), "cpus": os.cpu_count()}


def percentile(values, p: float) -> float | None:
    """Nearest-rank percentile ``p`` (0–100) of ``values``; None when empty."""
    values = sorted(values)
    if not values:
        return None
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 3)


def p50_p99(timings) -> tuple[float, float]:
    """The median and the 99th percentile (index ``int(n * 0.99)`` of the sorted values), as the page benches report them."""
    timings = sorted(timings)
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]


def statuses(entries) -> dict:
    """How many of the emulator's logged ``entries`` had each HTTP status (keys as strings)."""
    out: dict[str, int] = {}
    for e in entries:
        out[str(e["status"])] = out.get(str(e["status"]), 0) + 1
    return out


def wait_for(predicate, timeout: float, what: str, *, interval: float = 0.1):
    """``predicate()``'s first truthy value, polled every ``interval`` s; AssertionError after
    ``timeout`` s (the tests' tests/waiting.py, with the benches' argument order)."""
    from tests import waiting

    return waiting.wait_for(predicate, timeout, interval, what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30, what: str = "the server") -> None:
    """Until 127.0.0.1:``port`` accepts a connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def serve_app():
    """The product's web app on a threaded WSGI server (like pytest-django's live_server), for
    the emulator's webhook deliveries; returns (server, base URL). ``server.shutdown()`` ends it."""
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


def start_web(srv, *, settings_module: str, name: str = "bench", workers: int = 2, threads: int = 8) -> tuple[subprocess.Popen, str]:
    """The product's web app under gunicorn (gthread, as in production), its own process group,
    pointed at the emulator ``srv``; waits for /healthz and returns (process, base URL). The
    emulator delivers its change notifications there (started with ``http_notification_urls``
    "loopback": Graph itself takes only https). Log: $TMPDIR/<name>-web.log; ``stop_web`` ends it."""
    import requests

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "workplace.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=open(Path(tempfile.gettempdir()) / f"{name}-web.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(150):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_web(proc)
    raise RuntimeError(f"the web app did not start; see {tempfile.gettempdir()}/{name}-web.log")


def stop_web(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


# --- the emulator ---------------------------------------------------------------------------


def session(ca_path):
    """A ``requests`` session that trusts the emulator's CA and no proxy settings."""
    import requests

    http = requests.Session()
    http.trust_env = False
    http.verify = str(ca_path)
    return http


class Control:
    """The emulator's control API (``/_emulator``)."""

    def __init__(self, base_url: str, ca_path):
        self.base = base_url.rstrip("/") + "/_emulator"
        self.http = session(ca_path)

    def call(self, method: str, path: str, payload=None):
        resp = self.http.request(method, self.base + path, json=payload, timeout=60)
        resp.raise_for_status()
        return resp.json() if resp.content else None


def start_emulator(prefix: str = "bench-", *, config: dict | None = None):
    """A started emulator (seed "demo", its initial ``config``, kept across resets), the Django
    settings pointed at it; returns (server, control)."""
    from django.conf import settings

    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix=prefix), config=config)
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    return srv, Control(srv.base_url, srv.ca_path)


def seed_rooms(control: Control, building, names: list[str], *, capacity: int = 8, prefix: str = "") -> list:
    """Room mailboxes ``names`` (local parts) in the emulator and synced ``Room`` rows of ``building``."""
    from workplace.models import Room

    upns = [f"{prefix}{name}@{DOMAIN}" for name in names]
    control.call("POST", "/seed", {"rooms": [{"upn": upn, "displayName": upn.split("@")[0], "capacity": capacity} for upn in upns]})
    Room.objects.bulk_create([Room(building=building, name=upn.split("@")[0], capacity=capacity, mailbox=upn, sync_enabled=True)
                              for upn in upns])
    return list(Room.objects.filter(building=building, mailbox__in=upns).order_by("name"))


def building(code: str, name: str | None = None, timezone: str = "Europe/Amsterdam"):
    from workplace.models import Building

    return Building.objects.get_or_create(code=code, defaults={"name": name or code.title(), "timezone": timezone})[0]


def synced_rooms(found, rooms: list[tuple[str, str]], *, capacity: int = 8, arrangements: tuple[str, ...] = ("Default",)) -> list:
    """Rooms ``(name, mailbox)`` of the building ``found``, synced, each with ``arrangements`` (the
    first the default), created or updated (the mailboxes are the caller's to seed in the emulator)."""
    from workplace.models import Arrangement, Room

    out = []
    for name, mailbox in rooms:
        room, _ = Room.objects.update_or_create(building=found, name=name,
                                                defaults={"capacity": capacity, "mailbox": mailbox, "sync_enabled": True})
        for k, arrangement in enumerate(arrangements):
            Arrangement.objects.get_or_create(room=room, name=arrangement, defaults={"is_default": k == 0})
        out.append(room)
    return out


def people(usernames: list[str], *, timezone: str | None = "Europe/Amsterdam", **defaults) -> list:
    """Users ``usernames`` (e-mail ``<name>@DOMAIN``), created if missing, each with a Profile in
    ``timezone`` (none when None)."""
    from django.contrib.auth import get_user_model

    from workplace.models import Profile

    out = []
    for username in usernames:
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@{DOMAIN}", **defaults})
        if timezone:
            Profile.objects.get_or_create(user=user, defaults={"timezone": timezone})
        out.append(user)
    return out


def wipe_reservations(*more) -> None:
    """The cache cleared, every sync event, reservation and series deleted (then the models ``more``)."""
    from django.core.cache import cache

    from reservations.models import Reservation, ReservationSeries, SyncEvent

    cache.clear()
    for model in (SyncEvent, Reservation, ReservationSeries, *more):
        model.objects.all().delete()


def normal_mode():
    """The demo provider (the emulator's app) seeded and the integration in Normal mode; returns the provider."""
    from exchange_auth import properties
    from exchange_auth.demo import seed_provider

    provider = seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")
    return provider


def seed_events(srv, organizer: str, payloads: list[dict], *, batch: int = 500) -> list[str]:
    """Outlook meetings ``payloads`` created in ``organizer``'s mailbox as Outlook would (the
    emulator's own create, the rooms' attendant answering), run on the emulator's event loop in
    batches instead of one HTTPS call each (about 7x faster: 400,000 meetings in minutes, not an
    hour). Returns the organizer's event ids in order, once every room has answered."""
    import asyncio

    user = srv.store.find_user(organizer)

    async def create(part: list[dict]) -> list[str]:
        return [srv.ctx.calendar.create(user, payload)[0].id for payload in part]

    async def idle() -> None:  # the deferred propagation (call_soon) queued by the batch runs first
        for _ in range(3):
            await asyncio.sleep(0)

    ids: list[str] = []
    for i in range(0, len(payloads), batch):
        ids += asyncio.run_coroutine_threadsafe(create(payloads[i:i + batch]), srv._loop).result()
        asyncio.run_coroutine_threadsafe(idle(), srv._loop).result()
    return ids


def update_events(srv, owner: str, ids: list[str], payload: dict, *, batch: int = 500) -> None:
    """The events ``ids`` of ``owner`` changed by ``payload`` as in Outlook (the emulator's own
    update on its event loop, attendees' copies following): no Graph latency, no HTTPS per change."""
    import asyncio

    user = srv.store.find_user(owner)
    events = srv.store.mailboxes[user.id].events

    async def change(part: list[str]) -> None:
        for event_id in part:
            srv.ctx.calendar.update(user, events[event_id], dict(payload), None)

    async def idle() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    for i in range(0, len(ids), batch):
        asyncio.run_coroutine_threadsafe(change(ids[i:i + batch]), srv._loop).result()
        asyncio.run_coroutine_threadsafe(idle(), srv._loop).result()


# --- Celery workers -------------------------------------------------------------------------


def start_workers(srv, n: int, *, queues: str | None = None, concurrency: int = 2, name: str = "bench",
                  settings_module: str = "tests.calendar_sync.worker_settings", wait: float = 4.0,
                  extra_args: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """``n`` Celery worker processes, each its own process group (``stop_workers`` ends the group:
    the prefork children with it). Logs: $TMPDIR/<name>-worker-<i>.log."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "GRAPH_CA_BUNDLE": str(srv.ca_path),
           "GRAPH_EMULATOR_URL": srv.base_url, "PYTHONPATH": str(ROOT)}
    procs = []
    for i in range(n):
        command = [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=WARNING", f"--concurrency={concurrency}",
                   "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"{name}-{i}@%h", *extra_args]
        if queues:
            command += ["-Q", queues]
        log = open(Path(tempfile.gettempdir()) / f"{name}-worker-{i}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.25)
        for proc in procs:
            if proc.poll() is not None:
                stop_workers(procs)
                raise RuntimeError(f"a worker did not start; see {tempfile.gettempdir()}/{name}-worker-*.log")
    return procs


def stop_workers(procs, *, grace: float = 10.0) -> None:
    """SIGTERM each worker's process group, SIGKILL what is left after ``grace`` seconds."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    out = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out += process_tree(int(child))
    except OSError:
        pass
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a scan of /proc: e.g. a gunicorn master's workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def cpu_seconds(pids) -> float:
    """User + system CPU time of ``pids`` in all; a vanished process counts 0."""
    return sum(_cpu_seconds(pid) for pid in pids)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (/proc/PID/stat fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemoryWatch:
    """Peak resident memory and CPU time of the worker processes, per phase (``reset`` starts
    one). Each process's own ``VmHWM``, the kernel's high-water mark, so no short peak is
    missed between samples (sampled while the processes live, since a process's figures go
    with it). ``peak_kb``: the largest process, ``peak_child_kb``: the largest pool child; ``growth_kb``: the most any process grew over
    its resident size at the phase's start; ``peak_sum_kb``: the largest sum at one sample;
    ``cpu_seconds``: CPU the processes used in the phase."""

    def __init__(self, procs, interval: float = 0.5):
        self.procs = procs
        self.interval = interval
        self.hwm: dict[int, int] = {}
        self.start_rss: dict[int, int] = {}
        self.start_cpu: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.peak_sum_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pids(self) -> list[int]:
        return [pid for proc in self.procs for pid in process_tree(proc.pid)]

    def reset(self) -> None:
        """Start a new phase: each process's high-water mark back to its current RSS
        (``echo 5 > /proc/PID/clear_refs``, Linux ≥ 4.0), the recorded figures forgotten."""
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass
        self.hwm.clear()
        self.cpu.clear()
        self.peak_sum_kb = 0
        self.start_rss = {pid: _status_kb(pid, "VmRSS") for pid in self.pids()}
        self.start_cpu = {pid: _cpu_seconds(pid) for pid in self.start_rss}
        self.sample()

    def sample(self) -> None:
        pids = self.pids()
        for pid in pids:
            self.hwm[pid] = max(self.hwm.get(pid, 0), _status_kb(pid, "VmHWM"))
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))
        self.peak_sum_kb = max(self.peak_sum_kb, sum(_status_kb(pid, "VmRSS") for pid in pids))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_kb(self) -> int:
        return max(self.hwm.values(), default=0)

    @property
    def peak_child_kb(self) -> int:
        """The largest pool child (the processes that run the tasks; the worker's main process left out)."""
        mains = {proc.pid for proc in self.procs}
        return max((hwm for pid, hwm in self.hwm.items() if pid not in mains), default=0)

    @property
    def growth_kb(self) -> int:
        return max((hwm - self.start_rss.get(pid, hwm) for pid, hwm in self.hwm.items()), default=0)

    @property
    def cpu_seconds(self) -> float:
        return sum(cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.cpu.items())


if __name__ == "__main__":  # ``make bench`` runs every bench/*.py: this one only says the load
    print(json.dumps({"bench": "common (scaffolding, no measurement)", **load()}))
