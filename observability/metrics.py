"""Prometheus counters and histograms that every process (web, any worker on any host) adds
to, kept in Redis so ``/metrics`` on any web process shows the whole deployment.

Each observation is one pipelined Redis round (HINCRBYFLOAT on a hash per metric, a field
per label set); a scrape reads the hashes (``snapshot``). Without Redis (the embedded dev
default) each process counts for itself. Recording never fails the caller: a Redis error
is logged once a minute and the observation dropped.

The metrics are declared here (name, help, labels, buckets) so a scrape shows them, at 0,
before anything happened. Gauges (queue depths, the oldest unprocessed sync event,
subscriptions, the nightly pass) are read at scrape time from where they live by the
sources the apps register (``register_gauges``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis
from django.conf import settings

logger = logging.getLogger("observability")

PREFIX = "metrics:"


@dataclass(frozen=True)
class Counter:
    name: str  # without _total: the exposition adds it
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Histogram:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class Gauge:
    """What a registered source returns at scrape time."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


PUSHES = Counter("workplace_sync_pushes", "Sync events pushed to Exchange, by outcome (processed, retry, error, skipped).", ("outcome",))
PULLS = Counter("workplace_sync_pulls", "Delta rounds of a mailbox, by kind (delta, full, nightly) and outcome (ok, busy, error).", ("kind", "outcome"))
GRAPH_REQUESTS = Counter("workplace_graph_requests", "Graph HTTP requests by method, status (0: no answer) and mailbox class.", ("method", "status", "mailbox_class"))
GRAPH_THROTTLED = Counter("workplace_graph_throttled", "Graph answers 429 (throttled), by mailbox class.", ("mailbox_class",))
GRAPH_RETRY_WAIT = Counter("workplace_graph_retry_wait_seconds", "Seconds waited before retrying a Graph request, by reason (retry_after, backoff).", ("reason",))
NOTIFICATIONS = Counter("workplace_webhook_notifications", "Graph notifications received by the webhook, by kind (change, lifecycle; any for refused items) and outcome (stored, refused: unknown subscription or wrong clientState).", ("kind", "outcome"))
GRAPH_SECONDS = Histogram("workplace_graph_request_duration_seconds", "Duration of one Graph HTTP request, by method.", ("method",))
NOTIFICATION_LAG = Histogram(
    "workplace_notification_lag_seconds", "From a change notification's receipt to its change applied to the reservations.",
    (), (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
NIGHTLY_SECONDS = Histogram(
    "workplace_nightly_building_duration_seconds", "Duration of one building's nightly pass.", (), (1, 5, 15, 60, 300, 900, 1800, 3600, 7200),
)

COUNTERS = (PUSHES, PULLS, GRAPH_REQUESTS, GRAPH_THROTTLED, GRAPH_RETRY_WAIT, NOTIFICATIONS)
HISTOGRAMS = (GRAPH_SECONDS, NOTIFICATION_LAG, NIGHTLY_SECONDS)


# --- the store --------------------------------------------------------------------------


class _Store:
    def __init__(self) -> None:
        self._redis = None
        self._url: str | None = None
        self._local: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._lock = threading.Lock()
        self._last_error = 0.0

    def _client(self):
        url = getattr(settings, "REDIS_URL", None) or None
        if url != self._url:
            self._url = url
            self._redis = None
            if url:
                self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        return self._redis

    def add(self, increments: Iterable[tuple[str, str, float]]) -> None:
        """``(hash, field, amount)`` each, in one round."""
        increments = list(increments)
        client = self._client()
        if client is None:
            with self._lock:
                for key, fld, amount in increments:
                    self._local[key][fld] += amount
            return
        try:
            pipe = client.pipeline(transaction=False)
            for key, fld, amount in increments:
                pipe.hincrbyfloat(PREFIX + key, fld, amount)
            pipe.execute()
        except Exception as exc:  # a metric must never fail a booking
            now = time.monotonic()
            if now - self._last_error > 60:
                self._last_error = now
                logger.warning("metrics not recorded (Redis): %s", exc)

    def read(self, keys: list[str]) -> dict[str, dict[str, float]]:
        client = self._client()
        if client is None:
            with self._lock:
                return {key: dict(self._local.get(key, {})) for key in keys}
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(PREFIX + key)
        return {key: {f.decode(): float(v) for f, v in raw.items()} for key, raw in zip(keys, pipe.execute(), strict=True)}

    def clear(self) -> None:
        """Tests and benches: start from zero."""
        client = self._client()
        with self._lock:
            self._local.clear()
        if client is not None:
            keys = [PREFIX + m.name for m in (*COUNTERS, *HISTOGRAMS)]
            client.delete(*keys)


store = _Store()


def _labels(metric, values: dict) -> str:
    return json.dumps([str(values.get(name, "")) for name in metric.labels])


def _bucket(metric: Histogram, value: float) -> str:
    return next((str(float(b)) for b in metric.buckets if value <= b), "+Inf")


def inc(metric: Counter, amount: float = 1, **labels) -> None:
    store.add([(metric.name, _labels(metric, labels), amount)])


def inc_many(metric: Counter, amounts: Iterable[tuple[float, dict]]) -> None:
    """Several label sets of one counter, ``(amount, labels)`` each, in one Redis round
    (nothing when every amount is 0)."""
    increments = [(metric.name, _labels(metric, labels), amount) for amount, labels in amounts if amount]
    if increments:
        store.add(increments)


def observe(metric: Histogram, value: float, **labels) -> None:
    observe_many(metric, [value], **labels)


def observe_many(metric: Histogram, values: Iterable[float], **labels) -> None:
    """Several observations of one label set, in one Redis round."""
    key = _labels(metric, labels)
    counts: dict[str, float] = defaultdict(float)
    for value in values:
        bucket = _bucket(metric, value)
        counts[f"{key}|{bucket}"] += 1
        counts[f"{key}|sum"] += value
        counts[f"{key}|count"] += 1
    if counts:
        store.add([(metric.name, fld, amount) for fld, amount in counts.items()])


def record_graph_request(*, method: str, status: int, mailbox_class: str, seconds: float) -> None:
    """One Graph HTTP request: its count, duration and (a 429) the throttle, in one Redis round."""
    increments = [(GRAPH_REQUESTS.name, _labels(GRAPH_REQUESTS, {"method": method, "status": status, "mailbox_class": mailbox_class}), 1)]
    key = _labels(GRAPH_SECONDS, {"method": method})
    bucket = _bucket(GRAPH_SECONDS, seconds)
    increments += [(GRAPH_SECONDS.name, f"{key}|{bucket}", 1), (GRAPH_SECONDS.name, f"{key}|sum", seconds), (GRAPH_SECONDS.name, f"{key}|count", 1)]
    if status == 429:
        increments.append((GRAPH_THROTTLED.name, _labels(GRAPH_THROTTLED, {"mailbox_class": mailbox_class}), 1))
    store.add(increments)


@dataclass
class Snapshot:
    counters: dict[str, dict[tuple[str, ...], float]]
    # name: {labels: (cumulative [(le, count)], sum, count)}
    histograms: dict[str, dict[tuple[str, ...], tuple[list[tuple[str, float]], float, float]]]


def snapshot() -> Snapshot:
    raw = store.read([m.name for m in (*COUNTERS, *HISTOGRAMS)])
    counters = {m.name: {tuple(json.loads(f)): v for f, v in raw[m.name].items()} for m in COUNTERS}
    histograms = {}
    for metric in HISTOGRAMS:
        per: dict[tuple, dict[str, float]] = defaultdict(dict)
        for fld, value in raw[metric.name].items():
            labels, _, part = fld.rpartition("|")
            per[tuple(json.loads(labels))][part] = value
        shaped = {}
        for labels, parts in per.items():
            running, cumulative = 0.0, []
            for bound in [*(str(float(b)) for b in metric.buckets), "+Inf"]:
                running += parts.get(bound, 0.0)
                cumulative.append((bound, running))
            shaped[labels] = (cumulative, parts.get("sum", 0.0), parts.get("count", 0.0))
        histograms[metric.name] = shaped
    return Snapshot(counters, histograms)


# --- what the apps tell us ---------------------------------------------------------------

_classifier: Callable[[str], str] | None = None
_gauge_sources: dict[str, Callable[[], list[Gauge]]] = {}


def set_mailbox_classifier(classify: Callable[[str], str]) -> None:
    """The apps know which mailbox is a room's or the organizer account's (calendar_sync)."""
    global _classifier
    _classifier = classify


def mailbox_class(mailbox: str) -> str:
    """A label of bounded cardinality for a mailbox: room, organizer, user, or none."""
    if not mailbox:
        return "none"
    if _classifier is None:
        return "user"
    try:
        return _classifier(mailbox)
    except Exception:  # a label must not fail a Graph call (e.g. no database in a script)
        return "user"


def register_gauges(name: str, source: Callable[[], list[Gauge]]) -> None:
    _gauge_sources[name] = source


def gauges() -> list[Gauge]:
    found: list[Gauge] = []
    for name, source in sorted(_gauge_sources.items()):
        try:
            found += source()
        except Exception:
            logger.exception("metrics source %s failed", name)
    return found
