"""settings.prod requires an https PUBLIC_BASE_URL (issue 18, item 4): Graph delivers change
notifications only to https:// URLs, so an http one stops the start, naming the variable."""

import importlib
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

REQUIRED = {
    "SECRET_KEY": "test-only", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    "REDIS_URL": "redis://127.0.0.1:6379/15", "TOKEN_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
}


@pytest.fixture
def import_prod(monkeypatch):
    def load(**env):
        for name, value in {**REQUIRED, **env}.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("settings.prod", None)
        return importlib.import_module("settings.prod")

    yield load
    sys.modules.pop("settings.prod", None)


@pytest.mark.parametrize("url", ["http://rooms.contoso.example", None])
def test_an_http_or_missing_public_base_url_stops_the_start(import_prod, monkeypatch, url):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_BASE_URL must be an https:// URL"):
        import_prod(**({"PUBLIC_BASE_URL": url} if url else {}))


def test_an_https_public_base_url_starts(import_prod):
    assert import_prod(PUBLIC_BASE_URL="https://rooms.contoso.example/").PUBLIC_BASE_URL == "https://rooms.contoso.example"


def test_a_demo_against_the_emulator_opts_out_explicitly(import_prod):
    prod = import_prod(PUBLIC_BASE_URL="http://web:8000", PUBLIC_BASE_URL_ALLOW_HTTP="true")
    assert prod.PUBLIC_BASE_URL == "http://web:8000"
