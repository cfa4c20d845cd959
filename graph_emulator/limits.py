"""Throttling, fault injection and the request log."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict, deque
from functools import lru_cache

from .errors import GraphError

_ID_AFTER = {"users", "events", "subscriptions", "calendars", "instances", "places"}


@lru_cache(maxsize=4096)
def path_template(path: str) -> str:
    """/v1.0/users/alice@x/events/AAMk.. -> /v1.0/users/{id}/events/{id}."""
    parts = path.split("?")[0].strip("/").split("/")
    out = []
    for i, seg in enumerate(parts):
        if i > 0 and parts[i - 1] in _ID_AFTER and seg and not seg.startswith("microsoft.graph.") and seg not in ("delta",):
            out.append("{id}")
        elif i == 0 and seg not in ("v1.0", "_emulator", "beta") and len(parts) > 1 and parts[1] in ("oauth2", "v2.0", "discovery", ".well-known"):
            out.append("{tenant}")
        else:
            out.append(seg)
    return "/" + "/".join(out)


class Throttle:
    """Outlook's per-app-per-mailbox limits: concurrent requests and requests per window."""

    def __init__(self, config_getter):
        self._config = config_getter
        self.inflight: dict[tuple, int] = defaultdict(int)
        self.max_inflight: dict[tuple, int] = defaultdict(int)
        self.history: dict[tuple, deque] = defaultdict(deque)

    def reset(self) -> None:
        self.inflight.clear()
        self.max_inflight.clear()
        self.history.clear()

    @property
    def config(self) -> dict:
        return self._config()

    def acquire(self, key: tuple) -> None:
        limit = int(self.config["throttle_concurrency"])
        if self.inflight[key] >= limit:
            raise GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                             {"Retry-After": "1"})
        rate, window = int(self.config["throttle_requests"]), float(self.config["throttle_window_seconds"])
        t = time.monotonic()
        hist = self.history[key]
        while hist and hist[0] <= t - window:
            hist.popleft()
        if len(hist) >= rate:
            retry = max(1, math.ceil(hist[0] + window - t))
            raise GraphError(429, "ApplicationThrottled", "Application is over its MailboxRequestRate limit.",
                             {"Retry-After": str(retry)})
        hist.append(t)
        self.inflight[key] += 1
        if self.inflight[key] > self.max_inflight[key]:
            self.max_inflight[key] = self.inflight[key]

    def release(self, key: tuple) -> None:
        self.inflight[key] -= 1


DEFAULT_CODES = {
    400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied", 404: "ErrorItemNotFound",
    409: "ErrorIrresolvableConflict", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
    503: "ServiceNotAvailable", 504: "GatewayTimeout",
}


class Faults:
    """Rules matched against the next requests: a status, a delay, or a dropped connection."""

    def __init__(self):
        self.rules: list[dict] = []
        self.next_id = 1

    def add(self, rule: dict) -> dict:
        if not isinstance(rule, dict):
            raise GraphError(400, "BadRequest", "A fault is a JSON object.")
        action = rule.get("action") or ("status" if rule.get("status") else None)
        if action not in ("status", "delay", "drop"):
            raise GraphError(400, "BadRequest", "A fault needs a status, or action 'delay' or 'drop'.")
        try:
            pattern = re.compile(rule.get("path") or ".*")
        except re.error as exc:
            raise GraphError(400, "BadRequest", f"Bad path regex: {exc}") from exc
        status = int(rule.get("status") or 0)
        if action == "status" and not 400 <= status <= 599:
            raise GraphError(400, "BadRequest", "A status fault needs a status between 400 and 599.")
        count = rule.get("count", 1)
        entry = {
            "id": self.next_id, "action": action, "method": (rule.get("method") or "").upper() or None,
            "path": pattern.pattern, "mailbox": (rule.get("mailbox") or "").lower() or None,
            "app": rule.get("app"), "count": None if count is None else int(count), "status": status or None,
            "retry_after": rule.get("retry_after"), "seconds": float(rule.get("seconds") or 0),
            "code": rule.get("code"), "message": rule.get("message"), "hits": 0,
        }
        entry["_re"] = pattern
        self.next_id += 1
        self.rules.append(entry)
        return self.public(entry)

    @staticmethod
    def public(rule: dict) -> dict:
        return {k: v for k, v in rule.items() if not k.startswith("_")}

    def clear(self) -> None:
        self.rules.clear()

    def match(self, method: str, path: str, mailbox_keys: tuple, app: str | None) -> dict | None:
        for rule in self.rules:
            if rule["method"] and rule["method"] != method:
                continue
            if rule["mailbox"] and rule["mailbox"] not in mailbox_keys:
                continue
            if rule["app"] and rule["app"] != app:
                continue
            if not rule["_re"].search(path):
                continue
            rule["hits"] += 1
            if rule["count"] is not None:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self.rules.remove(rule)
            return rule
        return None

    @staticmethod
    def error_for(rule: dict) -> GraphError:
        status = rule["status"]
        headers = {}
        retry = rule.get("retry_after")
        if retry is None and status in (429, 503):
            retry = 1
        if retry is not None:
            headers["Retry-After"] = str(retry)
        code = rule.get("code") or DEFAULT_CODES.get(status, "UnknownError")
        message = rule.get("message") or {
            429: "Too many requests. Please retry after the time given in Retry-After.",
            503: "The service is temporarily unavailable. Please retry later.",
        }.get(status, "Injected fault.")
        return GraphError(status, code, message, headers)


class RequestLog:
    def __init__(self, maxlen: int = 200000):
        self.entries: deque = deque(maxlen=maxlen)
        self.seq = 0

    def clear(self) -> None:
        self.entries.clear()

    def record(self, method: str, path: str, mailbox: str | None, app: str | None, status: int,
               duration_ms: float, batch: bool = False, user: str | None = None, select: str | None = None,
               client_request_id: str | None = None, search: str | None = None, consistency_level: str | None = None) -> None:
        """``user``: the signed-in user of a delegated token (None for app-only tokens); ``select``:
        the request's ``$select`` (tests check the product selects only v1.0 properties); ``search``
        and ``consistency_level``: its ``$search`` and ConsistencyLevel header (advanced queries)."""
        self.seq += 1
        self.entries.append({
            "seq": self.seq, "time": time.time(), "method": method, "path": path,
            "endpoint": f"{method} {path_template(path)}", "mailbox": mailbox, "app": app, "user": user,
            "status": status, "duration_ms": round(duration_ms, 3), "batch": batch, "select": select,
            "client_request_id": client_request_id,
            "search": search, "consistency_level": consistency_level,
        })

    def query(self, since: float | None = None, limit: int = 1000, throttle: Throttle | None = None) -> dict:
        rows = [e for e in self.entries if since is None or (e["seq"] > since if since < 1e9 else e["time"] > since)]
        counts: dict[str, dict] = {"by_endpoint": defaultdict(int), "by_mailbox": defaultdict(int),
                                   "by_app": defaultdict(int), "by_status": defaultdict(int),
                                   "by_mailbox_endpoint": defaultdict(int), "by_mailbox_kind": defaultdict(int)}
        for e in rows:
            counts["by_endpoint"][e["endpoint"]] += 1
            counts["by_status"][str(e["status"])] += 1
            if e["mailbox"]:
                counts["by_mailbox"][e["mailbox"]] += 1
                counts["by_mailbox_endpoint"][f"{e['mailbox']} {e['endpoint']}"] += 1
                counts["by_mailbox_kind"][f"{e['mailbox']} {'read' if e['method'] == 'GET' else 'write'}"] += 1
            if e["app"]:
                counts["by_app"][e["app"]] += 1
        out = {
            "total": len(rows),
            "last_seq": self.seq,
            "counts": {k: dict(v) for k, v in counts.items()},
            "entries": rows[-limit:] if limit else [],
        }
        if throttle is not None:
            out["max_concurrency"] = {f"{k[0]} {k[1]}": v for k, v in throttle.max_inflight.items()}
        return out
