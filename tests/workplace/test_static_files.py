"""Static files in production: `collectstatic` with settings.prod's storage (hashed names,
compressed copies), then the WSGI app itself (what gunicorn runs) serves them with DEBUG off."""

import importlib
import sys
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(monkeypatch):
    """The settings.prod module, imported with the environment it insists on."""
    for name, value in {
        "SECRET_KEY": "test-only", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "REDIS_URL": "redis://127.0.0.1:6379/15", "TOKEN_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "PUBLIC_BASE_URL": "https://rooms.contoso.example",
    }.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("settings.prod", None)
    yield importlib.import_module("settings.prod")
    sys.modules.pop("settings.prod", None)


@pytest.fixture
def collected(prod, settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = prod.STORAGES
    settings.MIDDLEWARE = prod.MIDDLEWARE
    settings.WHITENOISE_AUTOREFRESH = False  # as in production: only what collectstatic wrote
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", "--noinput", verbosity=0)
    return get_wsgi_application()


def get(app, path: str, **headers) -> tuple[str, dict, bytes]:
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", **headers}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(response_headers)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer["status"], answer["headers"], body


def test_the_wsgi_app_serves_the_portal_css_with_debug_off(collected):
    status, _headers, page = get(collected, "/accounts/login/")
    assert status.startswith("200")
    html = page.decode()
    start = html.index("/static/reservations/portal.")
    css_url = html[start:html.index('"', start)]
    assert css_url.endswith(".css") and css_url != "/static/reservations/portal.css"  # the hashed name

    status, headers, body = get(collected, css_url)
    assert status.startswith("200")
    assert headers["Content-Type"].startswith("text/css")
    assert "immutable" in headers["Cache-Control"]  # hashed: cached for good
    assert b"{" in body

    status, headers, _ = get(collected, css_url, HTTP_ACCEPT_ENCODING="gzip")
    assert status.startswith("200") and headers.get("Content-Encoding") == "gzip"

    status, _headers, _body = get(collected, "/static/reservations/nope.css")
    assert status.startswith("404")
