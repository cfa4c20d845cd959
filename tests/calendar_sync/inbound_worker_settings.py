"""The Celery worker subprocess of the inbound end-to-end tests: the outbound worker's
settings, with short inbound leases so a killed worker's lock frees itself quickly."""

from tests.calendar_sync.worker_settings import *  # noqa: F403

CALENDAR_SYNC_INBOUND_LOCK_SECONDS = 3
CALENDAR_SYNC_INBOUND_BUSY_RETRY_SECONDS = 0.5
CALENDAR_SYNC_INBOUND_DEFER_SECONDS = 1
CALENDAR_SYNC_INBOX_GRACE_SECONDS = 1
