"""Shared fixtures: the demo tenant's named people (alice, bob, an admin, an outsider),
the HQ building with a synced room (Atlas) and one without a mailbox (Dojo), API
clients authenticated by token as each person; the one graph emulator of this test
process, the demo provider pointing at it, and a real Celery worker subprocess. No test
connects anywhere but loopback (tests/network_guard.py).

Every test starts from the same process state: an empty Redis db (cache, locks,
coalescing keys, request slots) and no Graph client, msal application or
instance property kept in memory by an earlier test."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from tests.celery_worker import ROOT, Worker
from tests.factories import (
    BuildingFactory,
    EquipmentFactory,
    FloorFactory,
    RoomFactory,
    UserFactory,
)
from tests.network_guard import guard as network_guard
from workplace.models import ApiToken

pytest_plugins = ["tests.throttle_fixtures"]


def forget_process_state() -> None:
    """Drop what this process keeps between tests, here and in its Redis db."""
    from django.core.cache import cache

    from calendar_sync.common import clients
    from exchange_auth import credentials, properties

    cache.clear()  # FLUSHDB of this run's Redis db: property values, mailbox locks, coalescing keys, Graph request slots
    clients.reset()
    credentials.forget_cached_apps()
    properties.forget_local()


@pytest.fixture(scope="session", autouse=True)
def _no_sessions_left_behind(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the sessions other threads left open on it.

    ``live_server`` serves each HTTP connection in a daemon thread, and the emulator keeps its
    webhook connections alive: such a thread outlives the server's shutdown still holding the
    database connection it reused between requests (CONN_MAX_AGE), and the drop then failed
    with "database ... is being accessed by other users". Set up after ``django_db_setup`` and
    before any ``live_server``, this is torn down between the two."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from django.db.utils import OperationalError

    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except OperationalError:
        pass  # no test used the database (e.g. only tests/graph_emulator ran): nobody to end


@pytest.fixture(autouse=True)
def _quiet_database_before_flush(request):
    """A test with ``live_server`` ends while the emulator may still be delivering to its webhook,
    whose eager pull then runs in a server thread: its row locks met the end-of-test flush's
    TRUNCATE and PostgreSQL broke the deadlock by failing the flush (the next test then found the
    last one's rows). Before the flush, stop the emulator's deliveries, give the sessions still
    working on the test database two seconds, then end them."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # torn down (the flush) after this fixture
    yield
    if "emulator_control" in request.fixturenames:
        request.getfixturevalue("emulator_control").reset()  # cancels pending deliveries and retries
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    # Quiet for a moment, not an instant: a delivery the reset cancelled may already be in a
    # server thread, on its way to the database.
    deadline = time.monotonic() + 2
    quiet_since = None
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT count(*) {_BUSY_SESSIONS}")  # noqa: S608 (constant text)
            if cursor.fetchone()[0]:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 0.3:
                return
            time.sleep(0.05)
        cursor.execute(f"SELECT pg_terminate_backend(pid) {_BUSY_SESSIONS}")  # noqa: S608


_BUSY_SESSIONS = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"


@pytest.fixture(scope="session", autouse=True)
def _flush_outlasts_a_straggler():
    """The end-of-test flush of a transactional test (TRUNCATE of every table) can still meet a
    straggling session that began after the quiet check above (a server thread, a thread the test
    left): PostgreSQL then breaks the deadlock by failing the flush, and the next test found the
    last one's rows. On a deadlock, end the busy sessions and flush again."""
    from django.db import OperationalError, connection
    from django.test.testcases import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):
        try:
            original(self)
        except OperationalError as exc:
            if connection.vendor != "postgresql" or "deadlock" not in str(exc):
                raise
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_terminate_backend(pid) {_BUSY_SESSIONS}")  # noqa: S608 (constant text)
            original(self)

    TransactionTestCase._fixture_teardown = fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield


@pytest.fixture(autouse=True)
def _product_email_backend(settings):
    """Django's test set-up sends mail straight to locmem; send it as production does, through
    workplace.mail.SafeEmailBackend, which delivers to locmem (EMAIL_DELIVERY_BACKEND)."""
    settings.EMAIL_BACKEND = "workplace.mail.SafeEmailBackend"


@pytest.fixture(scope="session", autouse=True)
def _loopback_only_session():
    """From the first fixture to the last, sockets may only connect to this machine (tests/network_guard.py)."""
    network_guard.install()
    yield
    network_guard.uninstall()


@pytest.fixture(autouse=True)
def _loopback_only(_loopback_only_session):
    """Fails the test that tried to reach outside 127.0.0.1/::1/localhost, even if the error was caught
    (an attempt made between two tests, by a straggling thread, fails the next one: none goes unseen)."""
    yield
    network_guard.check()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", first_name="Alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", first_name="Bob")


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", first_name="Admin", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Someone with an account who has nothing to do with anyone's reservations."""
    return UserFactory(username="outsider", email="outsider@fabrikam.example", first_name="Olga")


@pytest.fixture
def hq(db):
    return BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin")


@pytest.fixture
def projector(db):
    return EquipmentFactory(slug="projector", name="Projector")


@pytest.fixture
def atlas(hq, projector):
    """8 seats, room mailbox, synced with Exchange, projector, U-shape layout."""
    floor = FloorFactory(building=hq, name="1st floor", level=1)
    return RoomFactory(building=hq, floor=floor, name="Atlas", capacity=8, synced=True, equipment=[projector], arrangements=["U-shape"])


@pytest.fixture
def dojo(hq):
    """6 seats, no mailbox, not synced."""
    return RoomFactory(building=hq, name="Dojo", capacity=6)


def _client_for(user) -> APIClient:
    client = APIClient()
    _, token = ApiToken.objects.create(user=user, name="tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def api_as():
    """api_as(alice) -> an APIClient sending alice's token."""
    return _client_for


@pytest.fixture
def alice_api(alice):
    return _client_for(alice)


@pytest.fixture
def bob_api(bob):
    return _client_for(bob)


@pytest.fixture
def admin_api(admin):
    return _client_for(admin)


@pytest.fixture
def anonymous_api():
    return APIClient()


# --- the graph emulator ------------------------------------------------------------------------
# One server per test process, shared by every package, under one set of names everywhere:
# ``emulator_server`` the server, ``emulator_control`` its control API, ``emulator`` that API after
# a reset, ``provider`` the demo provider on it, ``mode`` the sync mode. A provider never contacted
# is ``offline_provider`` (exchange_auth) or ``unreachable_provider`` (reservations' rule and portal
# tests). Two servers in one process would fight over GRAPH_EMULATOR_URL.


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory):
    """The emulator on an ephemeral port (demo tenant); settings point at it for the whole session."""
    from graph_emulator import EmulatorServer

    # The webhook runs on http://127.0.0.1 here; Graph (and the emulator by default) refuse http.
    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=str(tmp_path_factory.mktemp("emulator")),
                         config={"http_notification_urls": "loopback"})
    srv.start()
    previous = django_settings.GRAPH_CA_BUNDLE, django_settings.GRAPH_EMULATOR_URL
    django_settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    django_settings.GRAPH_EMULATOR_URL = srv.base_url.rstrip("/")
    yield srv
    django_settings.GRAPH_CA_BUNDLE, django_settings.GRAPH_EMULATOR_URL = previous
    srv.stop()


@pytest.fixture(scope="session")
def emulator_control(emulator_server):
    from graph_emulator.testing import EmulatorControl

    control = EmulatorControl(emulator_server.base_url, emulator_server.ca_path)
    yield control
    control.close()


@pytest.fixture
def emulator(emulator_control):
    """The emulator reset to the demo seed (no faults, default config, empty request log), and its control API."""
    emulator_control.reset()
    return emulator_control


@pytest.fixture
def provider(emulator, db):
    """The demo calendar provider, pointing at the emulator."""
    from exchange_auth.demo import seed_provider

    return seed_provider()


@pytest.fixture
def mode(db):
    """mode("Strict") sets sn_wsd_rsvsync.sync_integration_mode."""
    from exchange_auth import properties

    def set_mode(value: str) -> None:
        properties.set_value(properties.SYNC_INTEGRATION_MODE, value)

    return set_mode


# --- a real Celery worker ----------------------------------------------------------------------


@pytest.fixture
def worker_env(emulator_server):
    """The environment of a worker subprocess: this run's test database, Redis db and emulator."""
    db = django_settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"  # pytest-django's test_<name> database
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.worker_settings",
        "DATABASE_URL": url,
        "REDIS_URL": django_settings.REDIS_URL,
        "GRAPH_CA_BUNDLE": str(emulator_server.ca_path),
        "GRAPH_EMULATOR_URL": emulator_server.base_url.rstrip("/"),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def celery_not_eager():
    """The test process queues tasks on Redis instead of running them inline."""
    from workplace.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def worker(worker_env, celery_not_eager, tmp_path):
    w = Worker(worker_env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
