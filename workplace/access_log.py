"""Secrets out of the access logs: an OAuth authorization code (``/outlook/callback/?code=``)
and a calendar feed's token (``/feeds/<token>.ics``) are credentials, and a log line is
read by more people than the database. Both are replaced by ``[redacted]`` wherever a
request's URL (or the Referer that repeats it) is logged:

* ``RedactSecrets``: a logging filter on ``django.server`` (runserver's access lines) and
  ``django.request`` ("Not Found: /feeds/...") — settings.base.LOGGING;
* ``GunicornLogger``: gunicorn's access log (``--access-logfile -``) — gunicorn.conf.py.
"""

import logging
import re

try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is a dependency; this keeps the filter importable without it
    _GunicornLogger = object

REDACTED = "[redacted]"
# Query parameters of the OAuth callback (/outlook/callback/) that are secrets or bind to one.
_SECRET_PARAMETER = re.compile(r"(?i)((?:^|[?&;])(?:code|state|session_state|id_token|access_token|client_info)=)[^&;\s\"']*")
_CALLBACK_URL = re.compile(r"/callback/?\?[^\s\"']*")
_FEED_TOKEN = re.compile(r"(/feeds/)[^/?#\s\"']+(\.ics)")


def redact_query(query: str) -> str:
    """A callback's query string with its secret parameters replaced."""
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", query)


def redact(text: str) -> str:
    """``text`` (a URL, a request line, a log message) with the secret parts replaced: the
    callback's code and state, a feed's token. Other URLs are left as they are."""
    if not isinstance(text, str) or ("/callback" not in text and "/feeds/" not in text):
        return text
    text = _FEED_TOKEN.sub(rf"\1{REDACTED}\2", text)
    return _CALLBACK_URL.sub(lambda m: redact_query(m.group(0)), text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class GunicornLogger(_GunicornLogger):
    """gunicorn's logger with the request line, path, query and Referer redacted."""

    REDACTED_ATOMS = ("r", "U", "f", "{referer}i")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in self.REDACTED_ATOMS:
            if key in atoms:
                atoms[key] = redact(atoms[key])
        if "/callback" in (environ.get("PATH_INFO") or "") and atoms.get("q"):
            atoms["q"] = redact_query(atoms["q"])
        return atoms
