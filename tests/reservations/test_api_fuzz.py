"""Property-based tests of the whole REST API against its own OpenAPI schema (schemathesis,
issue 13): every operation, the coverage and fuzzing phases and a stateful run that chains
operations (book, read, change, cancel), each response checked for

* ``not_a_server_error``: no 500, whatever is sent;
* ``status_code_conformance``: only statuses the schema documents;
* ``content_type_conformance`` and ``response_schema_conformance``: the body the schema says.

The app is called in-process through WSGI (no network) on this run's PostgreSQL, with a
real API token of an employee who has reservations and rooms to find. The fixed-seed runs
are reproducible; one more run takes a fresh seed each time (printed on failure by
Hypothesis) so new inputs keep being tried.

Sizes (examples per operation, steps) keep the whole file around a minute of suite time."""

from __future__ import annotations

import datetime as dt
import random

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections, transaction
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ReservationFactory, RoomFactory, days_ahead
from workplace.models import ApiToken
from workplace.wsgi import application

pytestmark = pytest.mark.django_db

SEED = 20261302
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ_EXAMPLES = 50
STATEFUL_SCENARIOS = 20
STATEFUL_STEPS = 8

# Requests made by this module, for the closing note (printed with -s).
REQUESTS = {"count": 0}


def _config(seed: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": seed,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {"max-examples": FUZZ_EXAMPLES, "mode": "all", "deterministic": False, "database": "none"},
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
        },
        "checks": {
            "enabled": False, **{check.__name__: {"enabled": True} for check in CHECKS},
        },
    })


@pytest.fixture(autouse=True)
def _one_connection_for_the_test():
    """Requests go through the WSGI app itself, whose request signals close the database
    connection after each one, the test's transaction with it; Django's test client
    disconnects them the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def workplace_data(alice, bob, hq):
    """Rooms to find (none synced: no Graph call is made) and reservations of alice's to read."""
    dojo = RoomFactory(building=hq, name="Dojo", capacity=6)
    borealis = RoomFactory(building=hq, name="Borealis", capacity=4)
    ROOMS[:] = [dojo.pk, borealis.pk]
    for day in (1, 2):
        ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, start=days_ahead(day, 9), end=days_ahead(day, 10))
    ReservationFactory(room=dojo, requested_by=bob, requested_for=bob, start=days_ahead(3, 9), end=days_ahead(3, 10))
    _, token = ApiToken.objects.create(user=alice, name="schemathesis")
    return {"Authorization": f"Token {token}"}


# Rooms of the current test's data, for flatmap_body (filled by the workplace_data fixture).
ROOMS: list[int] = []


def _bookable(body: dict):
    """``body`` turned into a booking the API can accept: a real room, a slot in the next two
    months, 15 minutes to 2 hours long. Without it almost every generated booking is refused
    (a random room id, a time years away) and changing or cancelling one is never tried."""

    def build(room: int, day: int, hour: int, minutes: int) -> dict:
        start = days_ahead(day, hour)
        return {**body, "room": room, "start": start.isoformat(), "end": (start + dt.timedelta(minutes=minutes)).isoformat()}

    return st.builds(build, st.sampled_from(ROOMS), st.integers(1, 60), st.integers(7, 18), st.sampled_from([15, 30, 60, 120]))


def flatmap_body(context, body):
    """Half of the bodies generated for POST /reservations/ are made bookable (see _bookable)."""
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) != ("POST", "/api/v1/reservations/"):
        return st.just(body)
    if not isinstance(body, dict) or not ROOMS:
        return st.just(body)
    return st.one_of(st.just(body), _bookable(body))


def _schema(seed: int):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=_config(seed))
    loaded.hooks.hook(flatmap_body)
    return loaded


# Loaded when the module is collected (the schema view needs no database); schemathesis'
# lazy from_fixture loader doesn't run on pytest 9 (it sets a node attribute pytest dropped).
schema = _schema(SEED)


@schema.parametrize()
# The data fixture is made once per operation and shared by its examples, on purpose.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture], deadline=None)
def test_no_request_gets_a_500_or_an_answer_the_schema_does_not_describe(case, workplace_data):
    REQUESTS["count"] += 1
    case.call_and_validate(headers=workplace_data, checks=CHECKS)


def _run_stateful(seed: int, headers: dict, *, derandomize: bool) -> None:
    """A stateful run: schemathesis chains the operations by the links it infers (a booking's
    id into its detail, change and cancel). The database keeps what each scenario did, so
    Hypothesis can't replay a scenario exactly: the first failing check is kept and
    reported as it was seen, rather than Hypothesis' "inconsistent data" on the replay.
    Each scenario starts from the same data: it runs in a savepoint rolled back at its end,
    with the cache (throttle counts) emptied."""
    machine = _schema(seed).as_state_machine()
    seen: list[str] = []

    class Workflow(machine):
        def setup(self):
            cache.clear()
            self._scenario = transaction.atomic()
            # As Django's TestCase marks its own blocks: the services' durable transactions
            # may run inside this one.
            self._scenario._from_testcase = True
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            REQUESTS["count"] += 1
            return {"headers": headers}

        def call(self, case, **kwargs):
            try:
                return super().call(case, **kwargs)
            except Exception as exc:
                seen.append(f"{case.operation.label}: {type(exc).__name__}: {exc}")
                raise

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)
            except Exception as exc:
                seen.append(f"{case.operation.label}: {exc}")
                raise

    previous = hypothesis.core.global_force_seed
    hypothesis.core.global_force_seed = None if derandomize else seed  # the random run is reproducible by its seed
    try:
        Workflow.run(settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, deadline=None, derandomize=derandomize,
            database=None, suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
        ))
    except Exception as exc:
        raise AssertionError("\n\n".join(seen[:1]) or str(exc)) from exc
    finally:
        hypothesis.core.global_force_seed = previous


def test_chained_operations_book_read_change_and_cancel_without_a_500(workplace_data):
    _run_stateful(SEED, workplace_data, derandomize=True)


def test_a_fresh_random_seed_finds_no_500_either(workplace_data):
    """Each run a new seed (in the failure message): every operation fuzzed, then a stateful run."""
    seed = random.SystemRandom().randrange(2**32)
    schema = _schema(seed)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()

        @hypothesis.settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.seed(seed)
        @hypothesis.given(case=strategy)
        def run(case):
            REQUESTS["count"] += 1
            case.call_and_validate(headers=workplace_data, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    try:
        _run_stateful(seed, workplace_data, derandomize=False)
    except Exception as exc:
        failures.append(f"stateful: {exc}")
    assert not failures, f"schemathesis seed {seed}:\n" + "\n\n".join(failures)


def test_print_requests_made(capsys):
    """Not a check: the count of requests the fuzz tests above made (run with -s to see it)."""
    with capsys.disabled():
        print(f"\nschemathesis requests made: {REQUESTS['count']}")  # noqa: T201
