"""Rate limits kept in the shared cache (Redis when ``REDIS_URL`` is set), so a limit holds
across every web process and host: the check-in channels (the REST API, the portal's button,
the room's QR code / short URL) per employee, and a room panel's buttons and polling per device.

A fixed window per scope and caller: the first request of a window creates its counter
(``cache.add``), each request increments it (``cache.incr``: one atomic Redis INCRBY, so two
processes can't both take the last slot), and past the limit the caller is told to retry
when the window ends (``Retry-After``, whole seconds). A refused request is not counted. At
a window's boundary a caller may get up to twice the rate within a short span; the limits are
there to stop scripts and stuck clients, not to meter people.

Rates are DRF's ``"<n>/<period>"`` strings in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
(settings/base.py, from the environment). When the cache can't be reached the request is let
through (with a warning): a Redis outage must not stop people checking in.

``SharedScopedRateThrottle`` is the DRF throttle (``throttle_scope`` on the view; 429 through
the API's error handler with ``Retry-After``); ``limit`` is the same check for plain Django views
(``too_many`` answers it as JSON or a page); ``limit_failures`` counts only failed attempts
(unknown room-panel tokens, per ``client_address``)."""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX = "ratelimit"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Refusal:
    scope: str
    limit: int
    period: int
    retry_after: int  # whole seconds, at least 1

    @property
    def message(self) -> str:
        return f"Too many requests: at most {self.limit} per {_period_words(self.period)}. Try again in {self.retry_after} s."


def _period_words(seconds: int) -> str:
    return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(seconds, f"{seconds} s")


def _now() -> float:
    return time.time()


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/min"`` → (10, 60), as DRF reads it (the period's first letter counts)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


def rate_for(scope: str) -> str | None:
    return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(scope)


def hit(scope: str, ident: str, *, rate: str | None = None, now: float | None = None) -> Refusal | None:
    """Count one request of ``ident`` under ``scope``; a ``Refusal`` when it is over the rate."""
    rate = rate if rate is not None else rate_for(scope)
    if not rate:
        return None
    limit, period = parse_rate(rate)
    now = _now() if now is None else now
    window = int(now // period)
    key = f"{KEY_PREFIX}:{scope}:{ident}:{window}"
    try:
        # Kept a period longer than the window, so it can't expire while the window is open.
        cache.add(key, 0, timeout=2 * period)
        count = cache.incr(key)
        if count > limit:
            cache.decr(key)  # a refused request doesn't use up the caller's next one
    except Exception:  # noqa: BLE001  (the cache is down or the key vanished: let it through)
        logger.warning("Rate limit %s not checked: the cache can't be reached.", scope, exc_info=True)
        return None
    if count <= limit:
        return None
    retry_after = max(1, math.ceil((window + 1) * period - now))
    return Refusal(scope=scope, limit=limit, period=period, retry_after=retry_after)


def refund(scope: str, ident: str, *, rate: str | None = None, now: float) -> None:
    """Take back one request ``hit`` counted at ``now`` (the same ``now``): for limits on
    failures, where every attempt is counted first (atomically, so racing attempts can't get
    past the limit) and a successful one is given back."""
    rate = rate if rate is not None else rate_for(scope)
    if not rate:
        return
    _, period = parse_rate(rate)
    try:
        cache.decr(f"{KEY_PREFIX}:{scope}:{ident}:{int(now // period)}")
    except Exception:  # noqa: BLE001  (the cache is down, or the key expired: nothing to give back)
        logger.warning("Rate limit %s not refunded: the cache can't be reached.", scope, exc_info=True)


def limit_failures(request: HttpRequest, scope: str, ident: str, attempt: Callable[[], T | None]) -> tuple[T | None, Refusal | None]:
    """``attempt()`` (e.g. finding the device a token belongs to) unless ``ident`` is over
    ``scope``'s rate of failures: (its result, None), or (None, the refusal) without trying. A
    falsy result is a failure and stays counted; a success is given back, so any number of
    successes never use up the budget (a refused caller can't test a guess either)."""
    now = _now()
    refusal = hit(scope, ident, now=now)
    if refusal is not None:
        logger.info("Rate limited: %s for %s (retry after %s s).", scope, ident, refusal.retry_after)
        return None, refusal
    result = attempt()
    if result:
        refund(scope, ident, now=now)
    return result, None


def client_address(request: HttpRequest) -> str:
    """The client's address for a per-address limit: REMOTE_ADDR, or with ``TRUSTED_PROXIES``
    = n the address the outermost of n proxies saw (the n-th entry of X-Forwarded-For from the
    right, as DRF reads NUM_PROXIES). An IPv6 client is counted by its /64 (one host or home
    network gets a /64: counting single addresses would let it rotate through billions)."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = getattr(settings, "TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        address = hops[-min(proxies, len(hops))]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def user_ident(scope: str, user_pk: int) -> str:
    """The key DRF's ScopedRateThrottle gives a signed-in user: a portal view counting with it
    shares the employee's budget with the API (one limit for check-ins, whatever the channel)."""
    return ScopedRateThrottle.cache_format % {"scope": scope, "ident": user_pk}


def limit(request: HttpRequest, scope: str, ident: str) -> Refusal | None:
    """``hit`` for a plain Django view; logs the refusal (the caller, never a secret)."""
    refusal = hit(scope, ident)
    if refusal is not None:
        logger.info("Rate limited: %s for %s (retry after %s s).", scope, ident, refusal.retry_after)
    return refusal


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def too_many(request: HttpRequest, refusal: Refusal, *, template: str | None = None, context: dict | None = None) -> HttpResponse:
    """429 with ``Retry-After``: ``{"message", "extra"}`` for a script or the panel, else the
    page ``template`` (or a plain message page) showing the message as a form error."""
    if template is None or wants_json(request):
        response: HttpResponse = JsonResponse(
            {"message": refusal.message, "extra": {}, "code": "throttled"}, status=429,
        )
    else:
        response = render(request, template, {**(context or {}), "error": refusal.message}, status=429)
    response["Retry-After"] = str(refusal.retry_after)
    return response


class SharedScopedRateThrottle(ScopedRateThrottle):
    """DRF's ScopedRateThrottle (per user, else per client address; rates by ``throttle_scope``)
    counted with ``hit``: atomic in Redis, so it holds with any number of processes."""

    def get_rate(self) -> str:
        """Read from the settings at each request (DRF reads them once, at import)."""
        rate = rate_for(self.scope)
        if rate is None:
            raise ImproperlyConfigured(f"No rate for the throttle scope {self.scope!r} in DEFAULT_THROTTLE_RATES.")
        return rate

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.refusal = hit(self.scope, self.key, rate=self.rate)
        return self.refusal is None

    def wait(self) -> float | None:
        refusal = getattr(self, "refusal", None)
        return refusal.retry_after if refusal is not None else None
