"""Access logs never carry an OAuth authorization code or a calendar feed's token (issue 13,
item 10): runserver's lines, Django's "Not Found: <path>" and gunicorn's access log."""

import datetime as dt
import logging
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from workplace.access_log import GunicornLogger, RedactSecrets, redact

CALLBACK = "/outlook/callback/?code=0.AAAA-secret-code&state=s3cr3t&session_state=abc"
FEED = "/feeds/Zr8kQ2mN4pX7vB1cT9yW3eL6uH0jF5sA.ics"


def test_the_oauth_code_and_state_are_redacted_from_a_callback_url():
    assert redact(f"GET {CALLBACK} HTTP/1.1") == (
        "GET /outlook/callback/?code=[redacted]&state=[redacted]&session_state=[redacted] HTTP/1.1"
    )


def test_a_calendar_feed_token_is_redacted_from_its_path():
    assert redact(f'"GET {FEED} HTTP/1.1" 200 512') == '"GET /feeds/[redacted].ics HTTP/1.1" 200 512'


def test_other_urls_are_logged_as_they_are():
    for line in ("GET /api/v1/reservations/?state=confirmed&limit=20 HTTP/1.1", "GET /api/v1/rooms/?building=hq HTTP/1.1"):
        assert redact(line) == line


def _record(logger: str, msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord(logger, logging.INFO, __file__, 1, msg, args, None)


def test_runserver_access_lines_are_redacted():
    record = _record("django.server", '"%s" %s %s', f"GET {CALLBACK} HTTP/1.1", "302", "0")
    RedactSecrets().filter(record)
    assert "secret-code" not in record.getMessage() and "s3cr3t" not in record.getMessage()
    assert "/outlook/callback/?code=[redacted]" in record.getMessage()


@pytest.mark.django_db
def test_an_unknown_feed_token_is_not_written_to_the_log(client, caplog):
    with caplog.at_level(logging.INFO):
        assert client.get(FEED).status_code == 404
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/feeds/[redacted].ics" in logged and "Zr8kQ2mN4pX7vB1cT9yW3eL6uH0jF5sA" not in logged


def test_the_configured_loggers_redact_secrets():
    for name in ("django.server", "django.request"):
        assert any(isinstance(f, RedactSecrets) for f in logging.getLogger(name).filters), name
    root_handlers = logging.getLogger().handlers
    assert any(isinstance(f, RedactSecrets) for h in root_handlers for f in h.filters)


def test_gunicorns_access_log_redacts_the_request_line_query_and_referer():
    logger = GunicornLogger(Config())
    path, query = CALLBACK.split("?")
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": CALLBACK, "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": path, "QUERY_STRING": query,
        "HTTP_REFERER": f"https://reservations.contoso.example{CALLBACK}", "REMOTE_ADDR": "10.0.0.1",
    }
    response = SimpleNamespace(status="302 Found", sent=0, headers=[])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    atoms = logger.atoms(response, request, environ, dt.timedelta(milliseconds=5))
    line = logger.cfg.access_log_format % logger.atoms_wrapper_class(atoms)
    assert "secret-code" not in line and "s3cr3t" not in line
    assert "code=[redacted]" in atoms["r"] and "code=[redacted]" in atoms["q"] and "code=[redacted]" in atoms["f"]


def test_gunicorns_access_log_redacts_a_feed_token():
    logger = GunicornLogger(Config())
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": FEED, "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": FEED, "QUERY_STRING": ""}
    atoms = logger.atoms(SimpleNamespace(status="200 OK", sent=10, headers=[]), SimpleNamespace(headers=[]), environ, dt.timedelta(0))
    assert atoms["r"] == "GET /feeds/[redacted].ics HTTP/1.1" and atoms["U"] == "/feeds/[redacted].ics"
