"""One id per piece of work, carried everywhere it goes.

An API or portal request gets one (``X-Request-ID`` when the caller sent a sane one, else a
new one; ``observability.middleware``); every task queued while it is bound carries it in a
message header and binds it again in the worker (``observability.celery``); every log line
shows it (``logs.CorrelationFilter``) and every Graph call logs it next to Graph's own
``client-request-id`` / ``request-id``. Work that starts on its own (beat, a notification)
gets a fresh id.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"  # the HTTP header, both ways
TASK_HEADER = "workplace_correlation_id"  # the Celery message header

_current: ContextVar[str] = ContextVar("correlation_id", default="")
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> str:
    """The bound id, or "" outside any request or task."""
    return _current.get()


def sane(value: str | None) -> str:
    """``value`` when it can be an id we log (a caller's X-Request-ID), else ""."""
    return value if value and _SANE.match(value) else ""


def bind(value: str | None = None):
    """Bind ``value`` (a fresh id when empty); returns the token ``unbind`` takes."""
    return _current.set(value or new_id())


def unbind(token) -> None:
    _current.reset(token)


@contextmanager
def bound(value: str | None = None):
    token = bind(value)
    try:
        yield current()
    finally:
        unbind(token)
