"""Tests: this machine's PostgreSQL and Redis."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/workplace")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")


def _xdist_redis_url(url: str, worker: str) -> str:
    """Each pytest-xdist worker (gw0, gw1, ...) gets its own Redis db: the cache is flushed
    between tests and the Celery queues are per db, so two workers must never share one.
    gw0 keeps the configured db, gwN takes the Nth below it (15, 14, 13, ...)."""
    base, _, db = url.rpartition("/")
    index = int(worker.removeprefix("gw") or 0)
    return f"{base}/{(int(db or 0) - index) % 16}"


# Done once per run: the worker's subprocesses (Celery, manage.py) inherit both variables.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("WORKPLACE_TEST_REDIS_PER_WORKER"):
    os.environ["REDIS_URL"] = _xdist_redis_url(os.environ["REDIS_URL"], os.environ["PYTEST_XDIST_WORKER"])
    os.environ["WORKPLACE_TEST_REDIS_PER_WORKER"] = "1"
os.environ.setdefault("TOKEN_ENCRYPTION_KEY", "WZQ9YVk6hi_LCcOno-faL0FNCXAjTpK20IDzNiZ99Eo=")

from .base import *  # noqa: E402,F403

DEBUG = False
# Serve the apps' static files without a collectstatic run (the production path, collected
# files and DEBUG off, is tested on its own in tests/workplace/test_static_files.py).
# Tests switch modes and clear the shared cache between tests; the in-process cache has its own tests.
INSTANCE_PROPERTY_LOCAL_SECONDS = 0
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Django's test set-up replaces EMAIL_BACKEND with locmem; tests/conftest.py puts the
# product's backend back in front of it (mail.outbox still collects what is sent).
EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Inbound sync (issue 6): tests subscribe explicitly; activating a provider in a fixture must not call Graph.
CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION = False
