"""The test process's one emulator (tests/conftest.py: in-process, free port), here named
``emulator`` (the server) and ``control`` (its control API); reset to the demo seed before every test."""

from __future__ import annotations

import pytest

from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD
from graph_emulator.testing import app_token, make_session, password_token
from tests.graph_emulator.helpers import USER_SCOPE, Graph, Webhook


@pytest.fixture(scope="session")
def emulator(emulator_server):
    return emulator_server


@pytest.fixture(scope="session")
def control(emulator_control):
    return emulator_control


@pytest.fixture(autouse=True)
def _reset(control, tokens):
    control.reset()
    tokens.cache.clear()  # a test may have expired or revoked them
    yield


@pytest.fixture
def http(emulator):
    s = make_session(emulator.ca_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def tokens(emulator):
    cache = {}

    def get(who="app"):
        if who not in cache:
            if who == "app":
                cache[who] = app_token(emulator.base_url, emulator.ca_path, "contoso", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)["access_token"]
            else:
                cache[who] = password_token(emulator.base_url, emulator.ca_path, "contoso", DEMO_CLIENT_ID,
                                            DEMO_CLIENT_SECRET, who, DEMO_PASSWORD, USER_SCOPE)["access_token"]
        return cache[who]

    get.cache = cache
    return get


@pytest.fixture
def app_graph(emulator, http, tokens):
    return Graph(emulator, http, tokens("app"))


@pytest.fixture
def as_user(emulator, http, tokens):
    return lambda upn: Graph(emulator, http, tokens(upn))


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()

