"""Settings of bench/scale_outbound.py's worker processes: the tests' worker settings (this
machine's PostgreSQL and Redis, tasks through the broker) with the product's default timings
of the push and the answer check, not the tests' shortened ones (a 0.5 s confirm delay reads
rooms' answers before the rooms can have given them)."""

from tests.calendar_sync.worker_settings import *  # noqa: F403

CALENDAR_SYNC_LEASE_SECONDS = 60
CALENDAR_SYNC_RETRY_BASE_SECONDS = 10
CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 2
# The product's request timeout and slot wait too, not the test worker's short ones (a 1 s slot
# wait turns every push queued behind the organizer mailbox's 4 slots into a MailboxBusy retry).
GRAPH_TIMEOUT_SECONDS = 15
GRAPH_SLOT_WAIT_SECONDS = 20
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
