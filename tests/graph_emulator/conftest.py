"""The emulator tests use the test process's one emulator as tests/conftest.py names it:
``emulator_server`` (the server: in-process, free port) and ``emulator_control`` (its control
API), reset to the demo seed before every test here."""

from __future__ import annotations

import pytest

from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD
from graph_emulator.testing import app_token, make_session, password_token
from tests.graph_emulator.helpers import USER_SCOPE, Graph, Webhook


@pytest.fixture(autouse=True)
def _reset(emulator_control, tokens):
    emulator_control.reset()
    tokens.cache.clear()  # a test may have expired or revoked them
    yield


@pytest.fixture
def http(emulator_server):
    s = make_session(emulator_server.ca_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def tokens(emulator_server):
    cache = {}

    def get(who="app"):
        if who not in cache:
            if who == "app":
                cache[who] = app_token(emulator_server.base_url, emulator_server.ca_path, "contoso", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)["access_token"]
            else:
                cache[who] = password_token(emulator_server.base_url, emulator_server.ca_path, "contoso", DEMO_CLIENT_ID,
                                            DEMO_CLIENT_SECRET, who, DEMO_PASSWORD, USER_SCOPE)["access_token"]
        return cache[who]

    get.cache = cache
    return get


@pytest.fixture
def app_graph(emulator_server, http, tokens):
    return Graph(emulator_server, http, tokens("app"))


@pytest.fixture
def as_user(emulator_server, http, tokens):
    return lambda upn: Graph(emulator_server, http, tokens(upn))


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()

