"""Fixtures for exchange_auth: the emulator of Entra ID + Graph over real TLS, with the names
tests/conftest.py gives it (``emulator_server`` the server, ``emulator`` its control API,
reset to the demo seed; ``provider`` the demo provider pointing at it), settings pointing at
it, and a provider that is never contacted. Caches start empty (tests/conftest.py)."""

import re
from urllib.parse import urlsplit

import pytest

from exchange_auth.models import CalendarProvider


@pytest.fixture
def emulated(emulator_server, emulator, settings):
    """Settings pointing at the emulator (reset to the demo tenant), trusting its CA."""
    settings.GRAPH_CA_BUNDLE = emulator_server.ca_path
    settings.GRAPH_EMULATOR_URL = emulator_server.base_url
    return emulator_server


def make_provider(base_url: str, **overrides) -> CalendarProvider:
    values = {
        "name": "Contoso", "active": True, "tenant_id": "contoso", "client_id": "wsd-demo-client",
        "authority_host": base_url, "graph_base_url": f"{base_url}/v1.0",
        "delegated_user_email": "reservations@contoso.example", "organizer_account": "reservations@contoso.example",
    }
    secret = overrides.pop("client_secret", "demo-secret")
    values.update(overrides)
    provider = CalendarProvider(**values)
    provider.client_secret = secret
    provider.save()
    return provider


@pytest.fixture
def offline_provider(db):
    """A provider that is never contacted (rules, admin forms, models)."""
    return make_provider("https://login.example.invalid")


def sign_in(emulator_server, auth_uri: str, *, login: str, password: str = "demo-password") -> str:
    """Play the person at the emulator's sign-in page; returns where it sends the browser back
    (our redirect URI with the code and state)."""
    from html import unescape

    from graph_emulator.testing import make_session

    with make_session(emulator_server.ca_path) as browser:
        page = browser.get(auth_uri, timeout=10)
        assert page.status_code == 200, page.text
        form_action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        fields = {unescape(name): unescape(value) for name, value in re.findall(
            r'<input type="hidden" name="([^"]*)" value="([^"]*)"/>', page.text)}
        fields.update(login=login, passwd=password)
        answer = browser.post(emulator_server.base_url + unescape(form_action), data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["Location"]


def callback_path(location: str) -> str:
    """The path + query of our redirect URI, for Django's test client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"
