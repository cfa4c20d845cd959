"""Every knob of calendar sync, read once from Django settings and checked.

``get()`` returns them as one frozen value; a bad value raises ``ImproperlyConfigured``
naming the setting (at start: ``CalendarSyncConfig.ready`` reads them). Tests that
override a ``CALENDAR_SYNC_*`` setting get the new value: Django's ``setting_changed``
signal drops the cached one."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

# A copy put aside because the product's push was in flight is re-checked this many times
# (every ``inbound_defer_seconds``) before it is judged for what it looks like.
MAX_DEFERRALS = 20


@dataclass(frozen=True)
class SyncSettings:
    # outbound
    lease_seconds: float  # a claimed sync event stays ``processing`` this long before the sweeper may take it back
    retry_base_seconds: float  # first back-off between attempts of one sync event (doubles, with jitter, up to 1 h)
    sweep_grace_seconds: float  # a ``new`` event due this long ago whose task never ran is re-queued
    confirm_delay_seconds: float  # wait before reading the room's answer when the create response didn't carry it
    confirm_follow_up_seconds: float  # re-check fresh awaiting reservations this long; then the 10-minute check
    confirm_listened_delay_seconds: float  # the first read waits this long instead when a pull of a listened mailbox brings the answer
    request_wait_seconds: float  # the longest one Graph request waits: GRAPH_SLOT_WAIT_SECONDS + GRAPH_TIMEOUT_SECONDS
    # inbound
    subscription_minutes: int  # lifetime asked for a new subscription
    subscription_renew_minutes: int  # renew a subscription this long before it expires
    subscribe_on_activation: bool  # an activated provider (or a new sync mode) subscribes after commit
    poll_seconds: int  # a mailbox that can't be subscribed is pulled this often
    inbound_lock_seconds: int  # lease of a mailbox's pull lock: longer than a pull, short enough after a crash
    inbound_busy_retry_seconds: float  # a pull that found its mailbox busy comes back after this
    inbound_defer_seconds: float  # a deferred copy (the product's push still on its way) is re-checked after this
    inbox_grace_seconds: float  # a notification still unanswered after this gets a pull again
    nightly_time: dt.time  # building-local time of the nightly full round
    nightly_chunk_rooms: int  # rooms per task of a building's nightly pass (several workers share a building)
    nightly_chunk_lease_seconds: int  # a started chunk whose worker died is run again after this
    inbound_fallback_user: str  # username or email: requester of Outlook bookings whose organizer is no user of ours

    @property
    def deferral_window_seconds(self) -> float:
        """How long an unknown room copy waits for the product's push before it is judged."""
        return MAX_DEFERRALS * self.inbound_defer_seconds


def _number(name: str, default: float, *, cast=float, minimum: float = 0.0):
    raw = getattr(settings, name, default)
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number (got {raw!r})") from None
    if isinstance(raw, bool) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be a number of at least {minimum:g} (got {raw!r})")
    return value


def _time(name: str, default: str) -> dt.time:
    raw = getattr(settings, name, default)
    try:
        return dt.time.fromisoformat(str(raw))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be HH:MM (got {raw!r})") from None


def _text(name: str) -> str:
    raw = getattr(settings, name, "") or ""
    if not isinstance(raw, str):
        raise ImproperlyConfigured(f"{name} must be a username, an email address or empty (got {raw!r})")
    return raw.strip()


def _flag(name: str, default: bool) -> bool:
    raw = getattr(settings, name, default)
    if not isinstance(raw, bool):
        raise ImproperlyConfigured(f"{name} must be True or False (got {raw!r})")
    return raw


@functools.cache
def get() -> SyncSettings:
    values = _read()
    if values.lease_seconds > values.deferral_window_seconds:
        # A dead worker's push must be taken back while the room's copy of its meeting still waits for it.
        raise ImproperlyConfigured(
            f"CALENDAR_SYNC_LEASE_SECONDS ({values.lease_seconds:g}) must be at most the inbound deferral window "
            f"({MAX_DEFERRALS} x CALENDAR_SYNC_INBOUND_DEFER_SECONDS = {values.deferral_window_seconds:g} s)"
        )
    slot_wait = _number("GRAPH_SLOT_WAIT_SECONDS", 20, minimum=1)
    timeout = _number("GRAPH_TIMEOUT_SECONDS", 15, minimum=1)
    if slot_wait + timeout >= values.lease_seconds:
        # A push's request may wait this long for a slot and then for its answer: were its claim
        # to lapse meanwhile, another worker could claim and push it again (a second meeting).
        raise ImproperlyConfigured(
            f"GRAPH_SLOT_WAIT_SECONDS ({slot_wait:g}) + GRAPH_TIMEOUT_SECONDS ({timeout:g}) must stay below "
            f"CALENDAR_SYNC_LEASE_SECONDS ({values.lease_seconds:g}): a push waiting on Graph must not outlive its claim"
        )
    return values


def _read() -> SyncSettings:
    return SyncSettings(
        lease_seconds=_number("CALENDAR_SYNC_LEASE_SECONDS", 60, minimum=1),
        retry_base_seconds=_number("CALENDAR_SYNC_RETRY_BASE_SECONDS", 10, minimum=0.1),
        sweep_grace_seconds=_number("CALENDAR_SYNC_SWEEP_GRACE_SECONDS", 30),
        confirm_delay_seconds=_number("CALENDAR_SYNC_CONFIRM_DELAY_SECONDS", 2),
        confirm_follow_up_seconds=_number("CALENDAR_SYNC_CONFIRM_FOLLOW_UP_SECONDS", 300),
        confirm_listened_delay_seconds=_number("CALENDAR_SYNC_CONFIRM_LISTENED_DELAY_SECONDS", 60),
        request_wait_seconds=_number("GRAPH_SLOT_WAIT_SECONDS", 20, minimum=1) + _number("GRAPH_TIMEOUT_SECONDS", 15, minimum=1),
        subscription_minutes=_number("CALENDAR_SYNC_SUBSCRIPTION_MINUTES", 4200, cast=int, minimum=45),
        subscription_renew_minutes=_number("CALENDAR_SYNC_SUBSCRIPTION_RENEW_MINUTES", 24 * 60, cast=int, minimum=1),
        subscribe_on_activation=_flag("CALENDAR_SYNC_SUBSCRIBE_ON_ACTIVATION", True),
        poll_seconds=_number("CALENDAR_SYNC_POLL_SECONDS", 60, cast=int, minimum=5),
        inbound_lock_seconds=_number("CALENDAR_SYNC_INBOUND_LOCK_SECONDS", 120, cast=int, minimum=1),
        inbound_busy_retry_seconds=_number("CALENDAR_SYNC_INBOUND_BUSY_RETRY_SECONDS", 0.5),
        inbound_defer_seconds=_number("CALENDAR_SYNC_INBOUND_DEFER_SECONDS", 3),
        inbox_grace_seconds=_number("CALENDAR_SYNC_INBOX_GRACE_SECONDS", 60),
        nightly_time=_time("CALENDAR_SYNC_NIGHTLY_TIME", "02:30"),
        nightly_chunk_rooms=_number("CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS", 25, cast=int, minimum=1),
        nightly_chunk_lease_seconds=_number("CALENDAR_SYNC_NIGHTLY_CHUNK_LEASE_SECONDS", 1800, cast=int, minimum=10),
        inbound_fallback_user=_text("CALENDAR_SYNC_INBOUND_FALLBACK_USER"),
    )


def _forget(*, setting: str, **kwargs) -> None:
    if setting.startswith("CALENDAR_SYNC_") or setting in ("GRAPH_SLOT_WAIT_SECONDS", "GRAPH_TIMEOUT_SECONDS"):
        get.cache_clear()


setting_changed.connect(_forget, dispatch_uid="calendar_sync.conf")


def tasks_run_eagerly() -> bool:
    """Celery runs tasks inline (tests): nothing is queued for later, the caller runs the follow-ups."""
    from celery import (
        current_app,  # the app Celery bound at start (workplace.celery), not one we import
    )

    return bool(current_app.conf.task_always_eager)
