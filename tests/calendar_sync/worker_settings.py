"""Settings for the Celery worker subprocess of the end-to-end tests: settings.test,
but tasks the worker queues (retries, follow-ups) go through Redis like in production."""

from settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CALENDAR_SYNC_LEASE_SECONDS = 5
# A request's slot wait + timeout stays below the lease (calendar_sync.conf refuses otherwise):
# the short lease lets the killed-worker tests take a dead push back quickly.
GRAPH_TIMEOUT_SECONDS = 3
GRAPH_SLOT_WAIT_SECONDS = 1
CALENDAR_SYNC_RETRY_BASE_SECONDS = 0.5
CALENDAR_SYNC_SWEEP_GRACE_SECONDS = 1
CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 0.5
LOGGING["root"]["level"] = "INFO"  # noqa: F405
