"""The one seam for Microsoft Graph HTTP (STYLE 6).

Everything the product sends to Graph goes through ``GraphClient``:

1. a per-mailbox concurrency cap (Outlook allows 4 concurrent requests per app
   per mailbox) shared by every worker process through a Redis semaphore whose
   slots expire, so a killed worker can't leak them; a taker that finds the mailbox
   full blocks until a release wakes it (no sleep-polling, no slot left idle); and the
   per-mailbox request rate (Outlook: 10,000 requests per 10 minutes per app per mailbox),
   a $batch's requests counted one each, so the product never earns itself a 429;
2. timeouts on every call;
3. retries with exponential backoff and full jitter for 429 / 503 / 504 and
   connection errors only, honouring ``Retry-After``;
4. one structured log line per HTTP attempt (method, path template, mailbox,
   status, ms, attempt, the correlation id, our ``client-request-id`` and Graph's
   ``request-id``) — never a token, a body or a query value — and the Prometheus
   counters of requests, 429s and retry waits (``observability.metrics``);
5. typed errors: ``GraphError`` (status, code, message) and its subclasses.

A client is bound to one credential: ``token`` is a callable returning a bearer
token; it is called again with ``force_refresh=True`` once after a 401 (a token
the service revoked or expired early is refreshed silently).

One module of about 500 lines on purpose: a newcomer finds every rule about talking to
Graph (errors, limits, retries, paging, batching) in one file (STYLE 6, 11).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from exchange_auth.http import new_session
from observability import correlation, metrics

logger = logging.getLogger("exchange_auth.graph")

TRANSIENT_STATUSES = frozenset({429, 503, 504})
MAILBOX_CONCURRENCY = 4
# Outlook's request rate per app per mailbox: 10,000 in 10 minutes
# (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits); each request
# of a $batch counts (https://learn.microsoft.com/en-us/graph/json-batching#throttling-and-batching).
MAILBOX_REQUESTS_PER_WINDOW = 10_000
MAILBOX_WINDOW_SECONDS = 600.0
MAILBOX_WINDOW_MARGIN_SECONDS = 5.0  # a request is counted when sent; Graph counts it when it arrives
BATCH_LIMIT = 20  # Graph's JSON batching takes at most 20 requests


# --- errors --------------------------------------------------------------------------


class GraphError(Exception):
    """A Graph call failed. ``status`` is 0 for connection errors."""

    def __init__(self, status: int, code: str = "", message: str = "", *, retry_after: float | None = None, request_id: str = ""):
        super().__init__(f"{status} {code}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id

    @property
    def transient(self) -> bool:
        return False

    def as_dict(self) -> dict:
        return {"status": self.status, "code": self.code, "message": self.message, "request_id": self.request_id}


class NotFound(GraphError):
    pass


class PreconditionFailed(GraphError):
    """If-Match named a change key the event no longer has (412)."""


class AccessDenied(GraphError):
    pass


class Unauthorized(GraphError):
    pass


class Throttled(GraphError):
    """429 / 503 / 504 still failing after the client's own retries. Try again later."""

    @property
    def transient(self) -> bool:
        return True


class Unavailable(GraphError):
    """No HTTP answer (connection refused/reset, timeout) after the client's retries,
    or no free mailbox slot in time. Try again later."""

    @property
    def transient(self) -> bool:
        return True


def error_for(status: int, code: str, message: str, *, retry_after: float | None = None, request_id: str = "") -> GraphError:
    cls = {401: Unauthorized, 403: AccessDenied, 404: NotFound, 410: NotFound, 412: PreconditionFailed}.get(status)
    if cls is None:
        cls = Throttled if status in TRANSIENT_STATUSES else GraphError
    return cls(status, code, message, retry_after=retry_after, request_id=request_id)


# --- logging helpers ---------------------------------------------------------------

_USERS = re.compile(r"^/(users|groups|places)/([^/?]+)")
_SEGMENT_ID = re.compile(r"^(?:[A-Za-z0-9_=+%-]{24,}|[0-9a-fA-F-]{36}|[^/]+@[^/]+)$")


def path_template(path: str) -> str:
    """``/users/alice@x/events/AAMk.../cancel`` → ``/users/{mailbox}/events/{id}/cancel``."""
    path = path.split("?", 1)[0]
    out = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        if i > 0 and segments[i - 1] in ("users", "groups", "places") and seg:
            out.append("{mailbox}")
        elif seg and _SEGMENT_ID.match(seg):
            out.append("{id}")
        else:
            out.append(seg)
    return "/".join(out)


def mailbox_of(path: str) -> str:
    match = _USERS.match(path)
    return match.group(2).lower() if match else ""


def users_path(mailbox: str, *rest: str) -> str:
    """``/users/{mailbox}/...`` with each segment URL-quoted (event ids contain ``/`` and ``+``)."""
    parts = [quote(mailbox, safe="@")] + [quote(r, safe="") for r in rest]
    return "/users/" + "/".join(parts)


# --- per-mailbox concurrency -------------------------------------------------------

# KEYS[1] = the mailbox's sorted set; ARGV = now, lease expiry, limit, token, count.
# ``count`` slots are taken together or not at all (a $batch carrying several requests
# for one mailbox): taking them one by one, two processes could each hold some and wait
# for the rest forever.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local count = tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[1]) + count <= tonumber(ARGV[3]) then
  for i = 1, count do
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4] .. ':' .. i)
  end
  redis.call('EXPIRE', KEYS[1], 3600)
  return 1
end
return 0
"""

# Release: the slots leave the set and one wake-up token per slot is pushed (the list capped at
# the limit, kept an hour), atomically as the MULTI/EXEC it replaces: one command to send and
# one reply to read instead of six, on every Graph request (issue 17: CPU per push).
# KEYS: the mailbox's set, its wake-up list; ARGV: the limit, then the members.
_RELEASE = """
redis.call('ZREM', KEYS[1], unpack(ARGV, 2))
for i = 2, #ARGV do
  redis.call('LPUSH', KEYS[2], '1')
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
redis.call('EXPIRE', KEYS[2], 3600)
return 1
"""

# The mailbox's requests of the last window: a sorted set of one member per request, scored by
# when it was let through (Redis' clock: one clock for every host). ``count`` are let through
# together or none; else the milliseconds until enough of the oldest have left the window.
# KEYS[1] = the mailbox's set; ARGV = window (ms), limit, count, token.
_TAKE_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + count <= limit then
  for i = 1, count do
    redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local nth = used + count - limit - 1
local oldest = redis.call('ZRANGE', KEYS[1], nth, nth, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
"""


class MailboxSemaphore:
    """At most ``limit`` concurrent Graph requests per mailbox across all processes, and at most
    ``requests`` in any ``window`` seconds.

    A Redis sorted set per mailbox holds one member per slot, scored by its lease
    expiry; expired slots are dropped on every acquire, so a SIGKILLed worker's
    slots free themselves after ``lease`` seconds. Without Redis (the embedded
    dev default) a process-local semaphore does the same job.

    A taker that finds the mailbox full blocks (``BLPOP``) on the mailbox's wake-up list
    rather than sleep-polling: every release pushes one token there, so a waiter — the
    longest-waiting first, Redis serves blocked clients in order — tries again the moment
    a slot frees, in this process or on another host. A token pushed while nobody waits
    stays (the list is capped at ``limit``): a waiter that blocks just after the release
    still sees it, and a stale one costs one extra try. Slots freed by their lease running
    out push nothing; waiters look again every ``recheck`` seconds for those.

    The request rate: once it holds its slots, a taker is let through only while the mailbox's
    requests of the last ``window`` seconds (a sliding window, one entry per request: a batch
    of N items for the mailbox takes N) stay within ``requests``; else it waits, holding its
    slots, until enough of the oldest have left the window — within the same ``wait`` as the
    slots, then ``Unavailable`` (``MailboxRateLimited``, ``retry_after`` the time still to
    wait: a push is retried then). Entries are stamped just before the request is sent; Graph
    counts it when it arrives, a moment later, so the window is ``window_margin`` seconds longer
    than Graph's. (Several check rounds' answer reads and the pushes shared the organizer
    mailbox's 10,000 per 10 minutes in Strict mode: 2,828 429s, bench/scale_outbound.py --full.)"""

    def __init__(self, redis_url: str | None, *, limit: int = MAILBOX_CONCURRENCY, lease: float = 60.0, wait: float = 120.0,
                 prefix: str = "graph:mbx:", recheck: float = 1.0, requests: int = MAILBOX_REQUESTS_PER_WINDOW,
                 window: float = MAILBOX_WINDOW_SECONDS, window_margin: float = MAILBOX_WINDOW_MARGIN_SECONDS):
        self.limit = limit
        self.lease = lease
        self.wait = wait
        self.prefix = prefix
        self.recheck = recheck
        self.requests = requests
        self.window = window + window_margin
        self._redis = None
        self._script = self._release_script = self._rate_script = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)
            self._script = self._redis.register_script(_ACQUIRE)
            self._release_script = self._redis.register_script(_RELEASE)
            self._rate_script = self._redis.register_script(_TAKE_RATE)
        self._local: dict[str, threading.BoundedSemaphore] = {}
        self._take_locks: dict[str, threading.Lock] = {}
        self._local_lock = threading.Lock()
        self._local_sent: dict[str, deque] = {}  # mailbox -> when its requests of the window were let through (no Redis)
        self.waits = 0  # times a taker found the mailbox full and blocked (tests, the bench)
        self.rate_waits = 0  # times a taker found the mailbox's request rate spent and waited (tests, the bench)

    def acquire(self, mailbox: str, count: int = 1) -> Callable[[], None]:
        """Block until ``count`` slots are free (taken together) and the mailbox's request rate
        lets ``count`` requests through; return the function that releases the slots."""
        slots = max(1, min(count, self.limit))
        deadline = time.monotonic() + self.wait
        if self._redis is None:
            release = self._acquire_local(mailbox, slots)
        else:
            release = self._acquire_slots(mailbox, slots, deadline)
        try:
            self._take_rate(mailbox, max(1, count), deadline)
        except BaseException:
            release()
            raise
        return release

    def _acquire_slots(self, mailbox: str, count: int, deadline: float) -> Callable[[], None]:
        key = self.prefix + mailbox
        wake = key + ":free"
        token = uuid.uuid4().hex
        members = [f"{token}:{i}" for i in range(1, count + 1)]
        while True:
            now = time.time()
            if self._script(keys=[key], args=[now, now + self.lease, self.limit, token, count]):
                return lambda: self._release(key, wake, members)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(0, "MailboxBusy", f"No free request slot for {mailbox} within {self.wait:.0f}s.")
            self.waits += 1
            self._redis.blpop([wake], timeout=max(0.01, min(left, self.recheck)))

    def _take_rate(self, mailbox: str, count: int, deadline: float) -> None:
        """Let ``count`` requests to ``mailbox`` through its request rate, waiting (until
        ``deadline``) while the window holds too many."""
        while True:
            later = self._rate_wait(mailbox, count)
            if later <= 0:
                return
            left = deadline - time.monotonic()
            if later > left:
                raise Unavailable(0, "MailboxRateLimited",
                                  f"{mailbox} has had {self.requests} requests in {self.window:.0f}s; the next in {later:.1f}s.",
                                  retry_after=later)
            self.rate_waits += 1
            time.sleep(later)

    def _rate_wait(self, mailbox: str, count: int) -> float:
        """0 when ``count`` requests were let through (counted), else the seconds until they can be."""
        if self._redis is not None:
            token = uuid.uuid4().hex
            waited = self._rate_script(keys=[self.prefix + mailbox + ":rate"],
                                       args=[int(self.window * 1000), self.requests, count, token])
            return int(waited) / 1000
        with self._local_lock:
            sent = self._local_sent.setdefault(mailbox, deque())
            now = time.monotonic()
            while sent and sent[0] <= now - self.window:
                sent.popleft()
            if len(sent) + count <= self.requests:
                sent.extend([now] * count)
                return 0.0
            return max(0.001, sent[len(sent) + count - self.requests - 1] + self.window - now)

    def _release(self, key: str, wake: str, members: list[str]) -> None:
        self._release_script(keys=[key, wake], args=[self.limit, *members])

    def _acquire_local(self, mailbox: str, count: int) -> Callable[[], None]:
        with self._local_lock:
            sem = self._local.setdefault(mailbox, threading.BoundedSemaphore(self.limit))
            take_lock = self._take_locks.setdefault(mailbox, threading.Lock())
        # One taker of a mailbox at a time, so two multi-slot takers never hold a part each.
        taken = 0
        deadline = time.monotonic() + self.wait
        with take_lock:
            while taken < count and sem.acquire(timeout=max(0.0, deadline - time.monotonic())):
                taken += 1
        if taken < count:
            for _ in range(taken):
                sem.release()
            raise Unavailable(0, "MailboxBusy", f"No free request slot for {mailbox} within {self.wait:.0f}s.")

        def release_local() -> None:
            for _ in range(count):
                sem.release()

        return release_local

    def in_use(self, mailbox: str) -> int:
        if self._redis is None:
            return 0
        key = self.prefix + mailbox
        self._redis.zremrangebyscore(key, "-inf", time.time())
        return int(self._redis.zcard(key))


_semaphore: MailboxSemaphore | None = None
_semaphore_lock = threading.Lock()


def default_semaphore() -> MailboxSemaphore:
    global _semaphore
    with _semaphore_lock:
        if _semaphore is None:
            lease = float(settings.GRAPH_TIMEOUT_SECONDS) * 2 + 5
            _semaphore = MailboxSemaphore(getattr(settings, "REDIS_URL", None), lease=lease,
                                          wait=float(settings.GRAPH_SLOT_WAIT_SECONDS),
                                          requests=int(settings.GRAPH_MAILBOX_REQUESTS_PER_WINDOW),
                                          window=float(settings.GRAPH_MAILBOX_WINDOW_SECONDS))
        return _semaphore


# --- the client ----------------------------------------------------------------------


@dataclass
class GraphResponse:
    status: int
    headers: dict
    body: Any

    def json(self) -> Any:
        return self.body


@dataclass
class BatchItem:
    method: str
    url: str  # relative to the version root, e.g. "/users/x/events/y"
    body: Any = None
    headers: dict = field(default_factory=dict)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class GraphClient:
    """Graph v1.0 calls for one credential. Paths are relative to ``{graph_base_url}/v1.0``."""

    def __init__(
        self,
        token: Callable[..., str],
        *,
        base_url: str,
        session: requests.Session | None = None,
        timeout: float | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 60.0,
        semaphore: MailboxSemaphore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credential_label: str = "",
    ):
        self._token = token
        base_url = base_url.rstrip("/")
        self.root = base_url if base_url.endswith("/v1.0") else base_url + "/v1.0"
        self.session = session or new_session()
        self.timeout = timeout or float(settings.GRAPH_TIMEOUT_SECONDS)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.semaphore = semaphore if semaphore is not None else default_semaphore()
        self.sleep = sleep
        self.credential_label = credential_label
        self.calls = 0  # HTTP attempts made by this client (for tests and the bench)

    # 1. token handling ------------------------------------------------------------
    def _bearer(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            try:
                return self._token(force_refresh=True)
            except TypeError:
                return self._token()
        return self._token()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before attempt ``attempt + 1``: Retry-After when given, else
        exponential back-off with full jitter."""
        return self._backoff(attempt, retry_after)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Honour the server; a little jitter keeps a crowd of workers from returning in step.
            return min(retry_after, self.max_retry_after) + random.uniform(0, 0.25)  # noqa: S311
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))  # noqa: S311

    # 2. one request, with retries ------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        mailbox: str | None = None,
        slots: Iterable[str] | None = None,
        attempts: int | None = None,
    ) -> GraphResponse:
        """``attempts`` overrides ``max_attempts`` for this call (1: no retries — a create
        whose first try may have landed is looked up before it is sent again)."""
        max_attempts = attempts or self.max_attempts
        method = method.upper()
        mailbox = (mailbox or mailbox_of(path)).lower()
        template = path_template(path)
        url = self.root + path
        refreshed = False
        force_refresh = False
        attempt = 0
        while True:
            attempt += 1
            bearer = self._bearer(force_refresh=force_refresh)
            force_refresh = False
            # A GUID of our own on every request, echoed by Graph, for Microsoft support to find
            # it: https://learn.microsoft.com/en-us/graph/best-practices-concept#reliability-and-support
            client_request_id = str(uuid.uuid4())
            req_headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json",
                           "client-request-id": client_request_id, "return-client-request-id": "true"}
            if headers:
                req_headers.update(headers)
            wanted = Counter(slots if slots is not None else ([mailbox] if mailbox else []))
            release = [self.semaphore.acquire(m, wanted[m]) for m in sorted(wanted)]  # sorted: no two takers wait on each other
            started = time.monotonic()
            status = 0
            try:
                self.calls += 1
                resp = self.session.request(method, url, json=json, params=params, headers=req_headers, timeout=self.timeout)
                status = resp.status_code
            except (requests.ConnectionError, requests.Timeout) as exc:
                resp = None
                error: GraphError = Unavailable(0, type(exc).__name__, "No answer from Graph.")
                error.__cause__ = exc  # what failed (TLS, refused, timeout), for a caller that names it
            finally:
                for r in release:
                    r()
                elapsed = time.monotonic() - started
                ms = int(elapsed * 1000)
                graph_request_id = resp.headers.get("request-id", "") if resp is not None else ""
                if logger.isEnabledFor(logging.INFO):  # the record's extra built only when it is kept
                    logger.info(
                        "graph_call method=%s path=%s mailbox=%s status=%s ms=%s attempt=%s credential=%s client_request_id=%s request_id=%s",
                        method, template, mailbox or "-", status, ms, attempt, self.credential_label or "-", client_request_id, graph_request_id or "-",
                        extra={"graph": {"method": method, "path": template, "mailbox": mailbox, "status": status, "ms": ms, "attempt": attempt,
                                         "client_request_id": client_request_id, "request_id": graph_request_id,
                                         "correlation_id": correlation.current()}},
                    )
                self._count(method, status, mailbox, elapsed)
            if resp is not None:
                if resp.status_code < 400:
                    body = None
                    if resp.content and "json" in resp.headers.get("Content-Type", ""):
                        body = resp.json()
                    return GraphResponse(resp.status_code, dict(resp.headers), body)
                error = self._error(resp)
                if resp.status_code == 401 and not refreshed:
                    refreshed = force_refresh = True  # one silent refresh, then the next 401 is final
                    continue
            if not error.transient:
                raise error
            if attempt >= max_attempts:
                raise error
            self.pause(self._backoff(attempt, error.retry_after), reason="retry_after" if error.retry_after is not None else "backoff")

    def pause(self, seconds: float, *, reason: str) -> None:
        """Wait before a retry, counted (``workplace_graph_retry_wait_seconds_total{reason}``)."""
        metrics.inc(metrics.GRAPH_RETRY_WAIT, seconds, reason=reason)
        self.sleep(seconds)

    @staticmethod
    def _count(method: str, status: int, mailbox: str, elapsed: float) -> None:
        """The request in the Prometheus figures (one Redis round)."""
        mailbox_class = "batch" if "," in mailbox else metrics.mailbox_class(mailbox)
        metrics.record_graph_request(method=method, status=status, mailbox_class=mailbox_class, seconds=elapsed)

    @staticmethod
    def _error(resp: requests.Response) -> GraphError:
        code, message = "", resp.reason or ""
        try:
            payload = resp.json().get("error", {})
            code = payload.get("code", "") or ""
            message = payload.get("message", "") or message
        except ValueError:
            pass
        return error_for(
            resp.status_code, code, message,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            request_id=resp.headers.get("request-id", ""),
        )

    def get(self, path: str, **kw) -> Any:
        return self.request("GET", path, **kw).body

    def post(self, path: str, json: Any = None, **kw) -> Any:
        return self.request("POST", path, json=json, **kw).body

    def patch(self, path: str, json: Any = None, **kw) -> Any:
        return self.request("PATCH", path, json=json, **kw).body

    def delete(self, path: str, **kw) -> None:
        self.request("DELETE", path, **kw)

    # 3. collections -----------------------------------------------------------------
    def relative(self, link: str) -> str:
        """``@odata.nextLink`` / ``@odata.deltaLink`` are absolute; requests take paths under the version root."""
        if link.startswith(self.root):
            return link[len(self.root):]
        marker = "/v1.0"
        return link[link.index(marker) + len(marker):] if marker in link else link

    def pages(self, path: str, *, params: dict | None = None, **kw) -> Iterator[dict]:
        """Each page of a collection, following ``@odata.nextLink`` to the end (Graph pages every
        collection; a reader of the first page alone misses the rest:
        https://learn.microsoft.com/en-us/graph/paging)."""
        while path:
            page = self.get(path, params=params, **kw) or {}
            yield page
            link = page.get("@odata.nextLink")
            path, params = (self.relative(link), None) if link else ("", None)

    def collect(self, path: str, *, params: dict | None = None, **kw) -> list[dict]:
        """Every item of a collection (all pages)."""
        return [item for page in self.pages(path, params=params, **kw) for item in page.get("value", [])]

    # 4. $batch -------------------------------------------------------------------------
    @staticmethod
    def batch_groups(items: list[BatchItem], *, per_mailbox: int = MAILBOX_CONCURRENCY, size: int = BATCH_LIMIT) -> list[list[int]]:
        """The items' indexes packed into batches of at most ``size`` requests and at most
        ``per_mailbox`` requests for any one mailbox. Graph runs a batch's requests
        concurrently and throttles each against its mailbox's limit of 4 concurrent requests
        (https://learn.microsoft.com/en-us/graph/json-batching#throttling-and-batching), so
        a batch of 20 for one room invites 16 per-request 429s. First fit keeps the order."""
        groups: list[list[int]] = []
        counts: list[Counter] = []
        for i, item in enumerate(items):
            mailbox = mailbox_of(item.url)
            for group, count in zip(groups, counts, strict=True):
                if len(group) < size and (not mailbox or count[mailbox] < per_mailbox):
                    break
            else:
                group, count = [], Counter()
                groups.append(group)
                counts.append(count)
            group.append(i)
            if mailbox:
                count[mailbox] += 1
        return groups

    def batch(self, items: list[BatchItem], *, per_mailbox: int = MAILBOX_CONCURRENCY) -> list[GraphResponse | GraphError]:
        """Run ``items`` through ``/$batch``; return one result per item, in order: a
        ``GraphResponse`` or the ``GraphError`` for that item.

        1. Items are grouped (``batch_groups``): at most 20 per batch, at most ``per_mailbox``
           (4) per mailbox. A batch takes its slots of a mailbox together: one carrying 4 for a
           mailbox that single requests keep busy waits until all 4 are free at once, which
           may not happen while they keep coming — a caller sharing a busy mailbox with
           pushes asks for 1;
        2. each batch holds one request slot per item of each mailbox it carries (the
           per-mailbox semaphore counts what Graph counts);
        3. items throttled inside a batch (a per-item 429/503/504) are sent again in a
           later batch after their ``Retry-After`` (or a back-off), up to ``max_attempts``."""
        results: list[GraphResponse | GraphError | None] = [None] * len(items)
        for group in self.batch_groups(items, per_mailbox=max(1, min(per_mailbox, MAILBOX_CONCURRENCY))):
            pending = group
            attempt = 0
            while pending:
                attempt += 1
                payload = {"requests": [
                    {"id": str(i), "method": items[i].method.upper(), "url": items[i].url,
                     **({"body": items[i].body, "headers": {"Content-Type": "application/json", **items[i].headers}} if items[i].body is not None
                        else ({"headers": items[i].headers} if items[i].headers else {}))}
                    for i in pending
                ]}
                slots = [m for m in (mailbox_of(items[i].url) for i in pending) if m]
                label = ",".join(sorted(set(slots))) or "-"
                body = self.request("POST", "/$batch", json=payload, mailbox=label, slots=slots).body
                retry_after = 0.0
                again = []
                for answer in (body or {}).get("responses", []):
                    i = int(answer["id"])
                    status = int(answer.get("status", 0))
                    headers = answer.get("headers") or {}
                    if status < 400:
                        results[i] = GraphResponse(status, headers, answer.get("body"))
                        continue
                    err = (answer.get("body") or {}).get("error", {}) if isinstance(answer.get("body"), dict) else {}
                    retry_header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
                    error = error_for(status, err.get("code", ""), err.get("message", ""), retry_after=parse_retry_after(retry_header))
                    results[i] = error
                    if status == 429:
                        metrics.inc(metrics.GRAPH_THROTTLED, mailbox_class=metrics.mailbox_class(mailbox_of(items[i].url)))
                    if error.transient and attempt < self.max_attempts:
                        again.append(i)
                        retry_after = max(retry_after, self._backoff(attempt, error.retry_after))
                pending = sorted(again)
                if pending:
                    self.pause(retry_after, reason="batch_items")
        return [r if r is not None else GraphError(0, "NoAnswer", "The batch returned no answer for this request.") for r in results]
