"""Instance properties (SPEC §3): a typed, validated store.

Each known property has a spec (type, default, allowed values); the
``InstanceProperty`` table holds the admin's value as text. ``get(name)``
returns the typed value, read through two caches:

1. an in-process one for ``INSTANCE_PROPERTY_LOCAL_SECONDS`` (default 3 s): most
   bookings read the sync mode without a Redis round trip;
2. Django's shared cache (Redis), so that every process sees an admin's edit.

Only committed values are cached (both are filled from ``transaction.on_commit``),
and an edit drops the value from both at once and again when it commits: the
process that edits sees the new value immediately, the others within the
in-process lifetime, and a rolled-back edit never lingers in either.
"""

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from exchange_auth.modes import Mode

CACHE_PREFIX = "exchange_auth:property:"
CACHE_SECONDS = 300

SYNC_INTEGRATION_MODE = "sn_wsd_rsvsync.sync_integration_mode"
MAX_EVENT_RETRY_COUNT = "sn_wsd_rsvsync.max_event_retry_count"
EXCHANGE_CALLBACK_TIME_LIMIT = "sn_wsd_rsvsync.exchange_callback_time_limit"
USE_USER_DEFAULT_TZ = "sn_wsd_rsvsync.use_user_default_tz"
CREATE_BLOCKING_RSV = "sn_wsd_rsvsync.create_blocking_rsv"
PAST_SYNC_PERIOD_MONTHS = "sn_wsd_rsvsync.past_sync_period_months"
BLOCKER_USER = "sn_wsd_rsv.blocker_user"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class PropertySpec:
    name: str
    type: str  # "choice" | "int" | "bool" | "email"
    default: Any
    description: str
    choices: tuple[str, ...] = field(default=())
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw``, or ValidationError with a sentence an admin understands."""
        text = (raw or "").strip()
        if self.type == "choice":
            for choice in self.choices:
                if text.lower() == choice.lower():
                    return choice
            raise ValidationError(f"{self.name} must be one of {', '.join(self.choices)} (got {text!r}).")
        if self.type == "int":
            try:
                number = int(text)
            except ValueError:
                raise ValidationError(f"{self.name} must be a whole number (got {text!r}).") from None
            if self.minimum is not None and number < self.minimum:
                raise ValidationError(f"{self.name} must be at least {self.minimum} (got {number}).")
            if self.maximum is not None and number > self.maximum:
                raise ValidationError(f"{self.name} must be at most {self.maximum} (got {number}).")
            return number
        if self.type == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValidationError(f"{self.name} must be true or false (got {text!r}).")
        if self.type == "email":
            if not text:
                return ""
            try:
                validate_email(text)
            except ValidationError:
                raise ValidationError(f"{self.name} must be an email address or empty (got {text!r}).") from None
            return text.lower()
        raise AssertionError(f"unknown property type {self.type}")

    def serialize(self, value: Any) -> str:
        if self.type == "bool":
            return "true" if value else "false"
        return str(value)


SPECS: dict[str, PropertySpec] = {
    spec.name: spec
    for spec in (
        PropertySpec(
            SYNC_INTEGRATION_MODE, "choice", Mode.NORMAL.value,
            "How reservations sync with Exchange: Normal, Strict or Personal (see the mode table).",
            choices=(Mode.STRICT.value, Mode.PERSONAL.value, Mode.NORMAL.value),
        ),
        PropertySpec(
            MAX_EVENT_RETRY_COUNT, "int", 10,
            "Attempts before a sync event is marked error (an admin can re-process it).", minimum=1, maximum=100,
        ),
        PropertySpec(
            EXCHANGE_CALLBACK_TIME_LIMIT, "int", 18000,
            "Seconds to wait for the room's answer before an awaiting reservation is rejected.", minimum=60,
        ),
        PropertySpec(
            USE_USER_DEFAULT_TZ, "bool", False,
            "Show and write meeting times in the requested-for user's time zone instead of the building's.",
        ),
        PropertySpec(
            CREATE_BLOCKING_RSV, "bool", True,
            "Create a blocking reservation when a meeting booked in Outlook can't be linked to a reservation.",
        ),
        PropertySpec(
            PAST_SYNC_PERIOD_MONTHS, "int", 2,
            "How many months back the nightly sync looks.", minimum=0, maximum=24,
        ),
        PropertySpec(
            BLOCKER_USER, "email", "",
            "Invitee of blocker reservations in Personal mode instead of the requested-for user (optional).",
        ),
    )
}


def spec_for(name: str) -> PropertySpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"Unknown instance property {name!r}; known: {', '.join(SPECS)}") from None


def _cache_key(name: str) -> str:
    return CACHE_PREFIX + name


# --- the in-process cache: {name: (expires at (monotonic), value)} -------------------------------

_local: dict[str, tuple[float, Any]] = {}
# Bumped by each invalidation: a read that started before an edit must not store its value after it.
_generation: dict[str, int] = {}
_local_lock = threading.Lock()


def _local_seconds() -> float:
    return float(getattr(settings, "INSTANCE_PROPERTY_LOCAL_SECONDS", 3))


def _local_get(name: str) -> tuple[bool, Any]:
    hit = _local.get(name)
    if hit is not None and hit[0] > time.monotonic():
        return True, hit[1]
    return False, None


def _local_put(name: str, value: Any, generation: int) -> None:
    seconds = _local_seconds()
    if seconds <= 0:
        return
    with _local_lock:
        if _generation.get(name, 0) == generation:
            _local[name] = (time.monotonic() + seconds, value)


def _local_forget(name: str) -> None:
    with _local_lock:
        _generation[name] = _generation.get(name, 0) + 1
        _local.pop(name, None)


def forget_local() -> None:
    """Drop every in-process value (tests, after the shared cache was cleared)."""
    with _local_lock:
        for name in list(_local):
            _generation[name] = _generation.get(name, 0) + 1
        _local.clear()


def get(name: str) -> Any:
    """The typed value of property ``name`` (its default when unset or unreadable)."""
    spec = spec_for(name)
    found, value = _local_get(name)
    if found:
        return value
    generation = _generation.get(name, 0)
    key = _cache_key(name)
    cached = cache.get(key)
    if cached is not None:
        _local_put(name, cached["value"], generation)
        return cached["value"]
    from exchange_auth.models import InstanceProperty

    raw = InstanceProperty.objects.filter(name=name).values_list("value", flat=True).first()
    value = spec.default
    if raw is not None:
        try:
            value = spec.parse(raw)
        except ValidationError:
            value = spec.default  # an invalid row (written around the admin) falls back to the default
    # Cache only what is committed: inside a transaction the row may still roll back.
    def remember() -> None:
        if _generation.get(name, 0) != generation:
            return  # edited in this process since the read: the value may be stale
        cache.set(key, {"value": value}, CACHE_SECONDS)
        _local_put(name, value, generation)

    transaction.on_commit(remember)
    return value


def invalidate(name: str) -> None:
    """Drop the cached value here and in the shared cache, now and when the edit commits."""
    key = _cache_key(name)

    def forget() -> None:
        _local_forget(name)
        cache.delete(key)

    forget()
    transaction.on_commit(forget)


def set_value(name: str, value: Any) -> Any:
    """Store ``value`` (typed or text) for ``name`` after validating it; returns the typed value."""
    from exchange_auth.models import InstanceProperty

    spec = spec_for(name)
    typed = spec.parse(value if isinstance(value, str) else spec.serialize(value))
    InstanceProperty.objects.update_or_create(name=name, defaults={"value": spec.serialize(typed)})
    invalidate(name)
    return typed


def sync_mode() -> Mode:
    return Mode(get(SYNC_INTEGRATION_MODE))
