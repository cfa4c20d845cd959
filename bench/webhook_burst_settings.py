"""The bench's web and worker processes (bench/webhook_burst.py): the inbound end-to-end
tests' settings, with the production pull-lock lease (a round with Graph's latency is
longer than the tests' 3 s lease)."""

from tests.calendar_sync.inbound_worker_settings import *  # noqa: F403

CALENDAR_SYNC_INBOUND_LOCK_SECONDS = 120
