"""Settings of test_answer_reads.py's worker: the end-to-end tests' (worker_settings.py) with a
1 s confirm delay, so the rooms' 0.2 s answers are in when the first read comes."""

from tests.calendar_sync.worker_settings import *  # noqa: F403

CALENDAR_SYNC_CONFIRM_DELAY_SECONDS = 1.0
