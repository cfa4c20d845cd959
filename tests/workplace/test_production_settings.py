"""Production defaults (issue 13, items 8 and 9): HTTPS by default, no proxy header trusted
unless configured, a bad encryption key stops the start naming it, ``check --deploy`` clean
with the README's production environment, and database connections kept only under gunicorn."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings.env import database_from_url
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "WZQ9YVk6hi_LCcOno-faL0FNCXAjTpK20IDzNiZ99Eo="
README_PRODUCTION = {  # what the README says production needs, plus the hosts it serves
    "DJANGO_SETTINGS_MODULE": "settings.prod",
    "SECRET_KEY": "k3y-for-tests-only-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "TOKEN_ENCRYPTION_KEY": FERNET_KEY,
    "ALLOWED_HOSTS": "reservations.contoso.example",
    "PUBLIC_BASE_URL": "https://reservations.contoso.example",
}


@pytest.fixture
def prod(monkeypatch):
    """Import settings.prod with the environment given (README_PRODUCTION and overrides)."""

    def load(**overrides):
        for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "DATABASE_CONN_MAX_AGE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in {**README_PRODUCTION, **overrides}.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("settings.prod", None)
        sys.modules.pop("settings.base", None)  # read the environment again
        return importlib.import_module("settings.prod")

    base = sys.modules["settings.base"]
    yield load
    sys.modules.pop("settings.prod", None)
    sys.modules["settings.base"] = base


def test_production_redirects_to_https_and_sends_hsts_by_default(prod):
    settings = prod()
    assert settings.SECURE_SSL_REDIRECT is True
    assert settings.SECURE_HSTS_SECONDS >= 31_536_000 and settings.SECURE_HSTS_INCLUDE_SUBDOMAINS
    assert settings.SECURE_REDIRECT_EXEMPT == [r"^healthz$"]  # the orchestrator's plain-HTTP probe


def test_behind_a_proxy_that_redirects_itself_both_can_be_turned_off(prod):
    settings = prod(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0")
    assert (settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS) == (False, 0)


def test_no_forwarded_proto_header_is_trusted_unless_configured(prod):
    assert prod().SECURE_PROXY_SSL_HEADER is None
    assert prod(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https").SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER"):
        prod(SECURE_PROXY_SSL_HEADER="yes")


@pytest.mark.parametrize("key", ["notakey", f"{FERNET_KEY},notakey"])
def test_an_invalid_token_encryption_key_stops_the_start_naming_the_variable(prod, key):
    with pytest.raises(ImproperlyConfigured, match="TOKEN_ENCRYPTION_KEY"):
        prod(TOKEN_ENCRYPTION_KEY=key)


def test_check_deploy_is_clean_with_the_readme_production_environment():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**os.environ, **README_PRODUCTION}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_refuses_notakey_at_start():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT, env={**os.environ, **README_PRODUCTION, "TOKEN_ENCRYPTION_KEY": "notakey"}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0 and "TOKEN_ENCRYPTION_KEY is not a Fernet key" in done.stderr


# --- database connections (item 8) -----------------------------------------------------------


def test_outside_gunicorn_each_request_closes_its_database_connection(monkeypatch):
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    database = database_from_url("DATABASE_URL", "postgres://db/wp")
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (0, True)


def test_gunicorn_keeps_its_pool_of_connections_health_checked(monkeypatch):
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    config = {"__file__": str(ROOT / "gunicorn.conf.py")}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), config)  # noqa: S102 (our file)
    assert os.environ["DATABASE_CONN_MAX_AGE"] == "60"
    assert database_from_url("DATABASE_URL", "postgres://db/wp")["CONN_MAX_AGE"] == 60
    assert config["logger_class"] == "workplace.access_log.GunicornLogger"


def test_each_gunicorn_worker_freezes_its_loaded_app_out_of_the_garbage_collector(monkeypatch):
    import gc

    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "0")  # the file's setdefault then changes nothing here
    config = {"__file__": str(ROOT / "gunicorn.conf.py")}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), config)  # noqa: S102 (our file)
    kept = [object() for _ in range(10)]
    try:
        before = gc.get_freeze_count()
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


@pytest.fixture
def runserver(transactional_db):
    """``manage.py runserver`` (a thread per request) on this run's test database."""
    import socket

    import requests
    from django.db import connection

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    env.pop("DATABASE_CONN_MAX_AGE", None)
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(answers, timeout=30, message="runserver answering")  # a loaded machine (parallel test workers) starts it slowly
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_fifty_simultaneous_bookings_under_runserver_leave_no_idle_connections(runserver, alice, dojo):
    import time
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from django.db import connection

    from tests.factories import days_ahead
    from workplace.models import ApiToken

    _, token = ApiToken.objects.create(user=alice, name="load")

    def book(i):
        start = days_ahead(1 + i // 10, 8 + i % 10)
        body = {"room": dojo.pk, "subject": f"Load {i}", "start": start.isoformat(), "end": start.replace(minute=30).isoformat()}
        for attempt in range(5):  # runserver's listen queue is short: a connection refused under load is tried again
            try:
                return requests.post(f"{runserver}/api/v1/reservations/", json=body, headers={"Authorization": f"Token {token}"}, timeout=60).status_code
            except requests.ConnectionError:
                time.sleep(0.2 * (attempt + 1))
        return None

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(book, range(50)))
    assert statuses == [201] * 50
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND pid <> pg_backend_pid()"
        )
        idle = cursor.fetchone()[0]
    assert idle <= 2, f"{idle} idle connections left behind by runserver"
