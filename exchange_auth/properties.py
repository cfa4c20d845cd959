"""Instance properties (SPEC §3): a typed, validated store.

Each known property has a spec (``exchange_auth.property_specs``: type,
default, allowed values); the ``InstanceProperty`` table holds the admin's
value as text. ``get(name)`` returns the typed value, read through two caches:

1. an in-process one for ``INSTANCE_PROPERTY_LOCAL_SECONDS`` (default 3 s): most
   bookings read the sync mode without a Redis round trip;
2. Django's shared cache (Redis), so that every process sees an admin's edit.

Only committed values are cached (both are filled from ``transaction.on_commit``),
and an edit drops the value from both at once and again when it commits: the
process that edits sees the new value immediately, the others within the
in-process lifetime, and a rolled-back edit never lingers in either. Edits that
bypass ``set_value`` (the admin's form, a bulk delete, the shell) reach
``invalidate`` through the model's signals, connected in ``apps.py``.
"""

import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from exchange_auth.models import InstanceProperty
from exchange_auth.modes import Mode
from exchange_auth.property_specs import (
    BLOCKER_USER,
    CHECKIN_AFTER_MINUTES,
    CHECKIN_ANYONE_AT_PANEL,
    CHECKIN_BEFORE_MINUTES,
    CHECKIN_REQUIRED_DEFAULT,
    CREATE_BLOCKING_RSV,
    EXCHANGE_CALLBACK_TIME_LIMIT,
    MAX_EVENT_RETRY_COUNT,
    NOSHOW_CONFIRM_HOURS,
    NOSHOW_SERIES_LIMIT,
    PAST_SYNC_PERIOD_MONTHS,
    SPECS,
    SYNC_INTEGRATION_MODE,
    USE_USER_DEFAULT_TZ,
    PropertySpec,
    spec_for,
)

# The specs' names stay readable here (``properties.SYNC_INTEGRATION_MODE``): callers
# in every app name a property and read its value through this one module.
__all__ = [
    "BLOCKER_USER", "CHECKIN_AFTER_MINUTES", "CHECKIN_ANYONE_AT_PANEL", "CHECKIN_BEFORE_MINUTES",
    "CHECKIN_REQUIRED_DEFAULT", "CREATE_BLOCKING_RSV", "NOSHOW_CONFIRM_HOURS", "NOSHOW_SERIES_LIMIT", "EXCHANGE_CALLBACK_TIME_LIMIT", "MAX_EVENT_RETRY_COUNT",
    "PAST_SYNC_PERIOD_MONTHS", "SPECS", "SYNC_INTEGRATION_MODE", "USE_USER_DEFAULT_TZ", "PropertySpec",
    "forget_local", "get", "get_many", "invalidate", "invalidate_on_edit", "set_value", "spec_for", "sync_mode",
]

CACHE_PREFIX = "exchange_auth:property:"
CACHE_SECONDS = 300


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


def get_many(*names: str) -> tuple:
    """The typed values of several properties, in order: like ``get`` for each, but the ones
    not cached are read in one query."""
    values: dict[str, Any] = {}
    missing = []
    for name in names:
        spec_for(name)
        found, value = _local_get(name)
        if not found:
            cached = cache.get(_cache_key(name))
            if cached is not None:
                found, value = True, cached["value"]
                _local_put(name, value, _generation.get(name, 0))
        if found:
            values[name] = value
        else:
            missing.append(name)
    if missing:
        rows = dict(InstanceProperty.objects.filter(name__in=missing).values_list("name", "value"))
        for name in missing:
            generation = _generation.get(name, 0)
            spec = spec_for(name)
            value = spec.default
            if name in rows:
                try:
                    value = spec.parse(rows[name])
                except ValidationError:
                    value = spec.default
            values[name] = value

            def remember(name=name, value=value, generation=generation) -> None:
                if _generation.get(name, 0) != generation:
                    return
                cache.set(_cache_key(name), {"value": value}, CACHE_SECONDS)
                _local_put(name, value, generation)

            transaction.on_commit(remember)
    return tuple(values[name] for name in names)


def invalidate(name: str) -> None:
    """Drop the cached value here and in the shared cache, now and when the edit commits."""
    key = _cache_key(name)

    def forget() -> None:
        _local_forget(name)
        cache.delete(key)

    forget()
    transaction.on_commit(forget)


def invalidate_on_edit(sender, instance: InstanceProperty, **kwargs) -> None:
    """``post_save`` / ``post_delete`` of a row (connected in ``apps.py``): drop its cached value."""
    invalidate(instance.name)


def set_value(name: str, value: Any) -> Any:
    """Store ``value`` (typed or text) for ``name`` after validating it; returns the typed value."""
    spec = spec_for(name)
    typed = spec.parse(value if isinstance(value, str) else spec.serialize(value))
    InstanceProperty.objects.update_or_create(name=name, defaults={"value": spec.serialize(typed)})
    invalidate(name)
    return typed


def sync_mode() -> Mode:
    return Mode(get(SYNC_INTEGRATION_MODE))
