"""Fixtures for outbound sync: the in-process emulator (real HTTPS, real msal through
exchange_auth), the demo provider pointing at it, the demo rooms, and a real Celery
worker subprocess on Redis for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from tests.factories import FloorFactory, RoomFactory

ROOT = Path(__file__).resolve().parents[2]


def _emulator_available() -> bool:
    try:
        from graph_emulator import EmulatorServer  # noqa: F401
    except ImportError:
        return False
    return True


class Control:
    """The emulator's control API (``/_emulator/``) over HTTPS."""

    def __init__(self, base_url: str, ca_path: str):
        import requests

        self.base = base_url.rstrip("/") + "/_emulator"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(ca_path)

    def _call(self, method: str, path: str, json=None):
        resp = self.http.request(method, self.base + path, json=json, timeout=10)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def reset(self, seed: str = "demo"):
        return self._call("POST", "/reset", {"seed": seed})

    def seed(self, payload: dict):
        return self._call("POST", "/seed", payload)

    def inject_fault(self, *, method: str | None = None, path: str = ".*", mailbox: str | None = None, count: int | None = 1, status: int | None = None, retry_after=None, action: str | None = None, seconds: float = 0):
        rule = {"method": method, "path": path, "mailbox": mailbox, "count": count, "status": status, "retry_after": retry_after, "action": action, "seconds": seconds}
        return self._call("POST", "/faults", {k: v for k, v in rule.items() if v is not None or k == "count"})

    def clear_faults(self):
        return self._call("DELETE", "/faults")

    def request_log(self, since=None, limit: int = 100000) -> dict:
        query = f"?limit={limit}" + (f"&since={since}" if since is not None else "")
        return self._call("GET", "/requests" + query)

    def clear_request_log(self):
        return self._call("DELETE", "/requests")

    def expire_tokens(self, user: str | None = None, client_id: str | None = None):
        return self._call("POST", "/tokens/expire", {k: v for k, v in {"user": user, "client_id": client_id}.items() if v})

    def set_auto_accept(self, room: str, enabled: bool):
        return self._call("POST", f"/rooms/{room}/auto_accept", {"enabled": enabled})

    def config(self, **values):
        return self._call("POST", "/config", values)

    def create_event_as(self, upn: str, payload: dict):
        return self._call("POST", f"/users/{upn}/events", payload)

    def state(self):
        return self._call("GET", "/state")


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory):
    if not _emulator_available():
        pytest.skip("graph_emulator (issue 3) has not landed yet")
    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=str(tmp_path_factory.mktemp("emulator")))
    srv.start()
    previous = django_settings.GRAPH_CA_BUNDLE, django_settings.GRAPH_EMULATOR_URL
    django_settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    django_settings.GRAPH_EMULATOR_URL = srv.base_url.rstrip("/")
    yield srv
    django_settings.GRAPH_CA_BUNDLE, django_settings.GRAPH_EMULATOR_URL = previous
    srv.stop()


@pytest.fixture
def emulator(emulator_server):
    """A reset emulator (demo seed) and its control API."""
    control = Control(emulator_server.base_url, emulator_server.ca_path)
    control.reset()
    control.clear_request_log()
    _forget_process_state()
    yield control
    _forget_process_state()


def _forget_process_state() -> None:
    from calendar_sync import clients

    clients.reset()
    try:
        from exchange_auth.credentials import forget_cached_apps

        forget_cached_apps()
    except ImportError:
        pass
    cache.clear()  # our own Redis db (REDIS_URL .../3): property values, confirmation coalescing


@pytest.fixture
def provider(emulator, db):
    from exchange_auth.demo import seed_provider

    return seed_provider()


@pytest.fixture
def mode(db):
    """mode("Strict") sets sn_wsd_rsvsync.sync_integration_mode."""
    from exchange_auth import properties

    def set_mode(value: str) -> None:
        properties.set_value(properties.SYNC_INTEGRATION_MODE, value)

    return set_mode


@pytest.fixture
def borealis(hq):
    floor = FloorFactory(building=hq, name="2nd floor", level=2)
    return RoomFactory(building=hq, floor=floor, name="Borealis", capacity=4, synced=True)


@pytest.fixture
def cosmos(hq):
    return RoomFactory(building=hq, name="Cosmos", capacity=12, synced=True, arrangements=["Boardroom"])


@pytest.fixture
def reservations_user(db):
    from tests.factories import UserFactory

    return UserFactory(username="reservations", first_name="Reservations")


# --- a real Celery worker ------------------------------------------------------------------


class Worker:
    def __init__(self, env: dict, log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=INFO", "--concurrency=4",
             "--pool=prefork", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"sync-test-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), like a lost machine."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


@pytest.fixture
def worker_env(emulator_server, tmp_path):
    db = django_settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"  # pytest-django's test_<name> database
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.worker_settings",
        "DATABASE_URL": url,
        "REDIS_URL": django_settings.REDIS_URL,
        "GRAPH_CA_BUNDLE": str(emulator_server.ca_path),
        "GRAPH_EMULATOR_URL": emulator_server.base_url.rstrip("/"),
        "PYTHONPATH": str(ROOT),
    }
    return env


@pytest.fixture
def celery_not_eager():
    """The test process queues tasks on Redis instead of running them inline."""
    from workplace.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    import redis

    redis.Redis.from_url(django_settings.REDIS_URL).delete("celery", "unacked", "unacked_index")
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def worker(worker_env, celery_not_eager, tmp_path):
    w = Worker(worker_env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message() if callable(message) else message}")
