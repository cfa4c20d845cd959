"""calendar_sync's own knobs (Django settings with defaults; tests and the bench override them)."""

from django.conf import settings


def lease_seconds() -> float:
    """How long a claimed sync event stays ``processing`` before the sweeper may take it back."""
    return float(getattr(settings, "CALENDAR_SYNC_LEASE_SECONDS", 120))


def retry_base_seconds() -> float:
    """First back-off between attempts of one sync event (doubles, with jitter, up to 1 h)."""
    return float(getattr(settings, "CALENDAR_SYNC_RETRY_BASE_SECONDS", 10))


def sweep_grace_seconds() -> float:
    """A ``new`` event due this long ago whose task never ran is re-queued by the sweeper."""
    return float(getattr(settings, "CALENDAR_SYNC_SWEEP_GRACE_SECONDS", 30))


def confirm_delay_seconds() -> float:
    """Wait before reading the room's answer when the create response didn't carry it."""
    return float(getattr(settings, "CALENDAR_SYNC_CONFIRM_DELAY_SECONDS", 2))


def confirm_follow_up_seconds() -> float:
    """Keep re-checking fresh awaiting reservations this long; then the 10-minute check takes over."""
    return float(getattr(settings, "CALENDAR_SYNC_CONFIRM_FOLLOW_UP_SECONDS", 300))
