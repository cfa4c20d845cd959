"""Change-notification subscriptions: validation handshake, notifications, lifecycle events.

Delivery is asynchronous (never blocks the Graph request that caused the
change), POSTs Graph's payload with a 3-second timeout, and retries failures
on the configured schedule. A delivery policy (drop/duplicate/delay/reorder)
lets tests reproduce what the real service sometimes does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
import uuid
from collections import defaultdict, deque
from datetime import timedelta
from urllib.parse import quote, urlsplit

import aiohttp

from .errors import GraphError
from .http_types import GResp
from .timeutil import fmt_z, now, parse_iso

log = logging.getLogger("graph_emulator.subscriptions")

RESOURCE_RE = re.compile(r"^/?(me|users/([^/]+)|users\('([^']+)'\))/(calendar/)?events/?$", re.IGNORECASE)
CHANGE_TYPES = {"created", "updated", "deleted"}
LIFECYCLE_EVENTS = {"reauthorizationRequired", "missed", "subscriptionRemoved"}
HTTP_MODES = ("refuse", "loopback", "any")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EndpointHealth:
    """Graph's tally of one notification endpoint's slow answers (see "notifications" below):
    "ok", "slow" (throttled: notifications delayed) or "drop" (notifications dropped)."""

    def __init__(self, config_getter):
        self._config = config_getter
        self.window_started = time.monotonic()
        self.responses = 0
        self.slow = 0
        self.state = "ok"

    def current(self) -> str:
        """The state now: the tally (and with it a throttled or dropping state) is flushed every
        ``notification_throttle_window_seconds`` (Graph: 10 minutes)."""
        t = time.monotonic()
        if t - self.window_started >= float(self._config()["notification_throttle_window_seconds"]):
            self.window_started, self.responses, self.slow, self.state = t, 0, 0, "ok"
        return self.state

    def record(self, duration_ms: float, *, timed_out: bool) -> None:
        cfg = self._config()
        self.current()
        self.responses += 1
        if timed_out or duration_ms > float(cfg["notification_slow_ms"]):
            self.slow += 1
        if self.responses >= int(cfg["notification_throttle_min_responses"]):  # evaluated once 100 have answered
            percent = 100 * self.slow / self.responses
            if percent >= float(cfg["notification_drop_percent"]):
                self.state = "drop"
            elif percent >= float(cfg["notification_slow_percent"]):
                self.state = "slow"
            else:
                self.state = "ok"

    def public(self) -> dict:
        self.current()
        return {"responses": self.responses, "slow": self.slow, "state": self.state,
                "slow_percent": round(100 * self.slow / self.responses, 1) if self.responses else 0.0}


class Subscriptions:
    def __init__(self, ctx):
        self.ctx = ctx
        self.session: aiohttp.ClientSession | None = None
        self.policy: dict = {}
        self.held: list = []  # notifications held back for a reorder
        self.deliveries: deque = deque(maxlen=100000)
        self.generation = 0
        self.pending: set = set()
        self.https_only = False  # the control API's switch (refuse_http)
        self.buffers: dict[str, list] = {}  # notificationUrl → items waiting for their batch
        self.flush_timers: dict[str, asyncio.TimerHandle] = {}
        self.endpoints: dict[str, EndpointHealth] = {}  # notificationUrl → its slow-response tally
        self.missed_pending: set = set()  # subscriptions with a "missed" lifecycle notification on its way
        self.request_counts: dict[str, int] = defaultdict(int)

    @property
    def store(self):
        return self.ctx.store

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=False, limit=100)
        self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self.store.listeners.append(self.on_change)

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        if self.session is not None:
            await self.session.close()

    def reset(self) -> None:
        self.generation += 1
        self.policy = {}
        self.held = []
        self.https_only = False
        self.deliveries.clear()
        for timer in self.flush_timers.values():
            timer.cancel()
        self.flush_timers.clear()
        self.buffers.clear()
        self.endpoints.clear()
        self.missed_pending.clear()
        self.request_counts.clear()
        for task in list(self.pending):
            task.cancel()

    # -- shapes --------------------------------------------------------------------------
    def _json(self, req, sub: dict) -> dict:
        out = {k: v for k, v in sub.items() if not k.startswith("_")}
        return {"@odata.context": f"{req.base}/v1.0/$metadata#subscriptions/$entity", **out}

    def _visible(self, req, sub: dict) -> bool:
        if sub["applicationId"] != req.claims.get("appid"):
            return False
        if req.claims.get("idtyp") == "user":
            return sub["creatorId"] == req.claims.get("oid")
        return True

    def _lookup(self, req, sub_id: str) -> dict:
        self._purge()
        sub = self.store.subscriptions.get(sub_id)
        if sub is None or not self._visible(req, sub):
            raise GraphError(404, "ResourceNotFound", f"The object was not found. Subscription '{sub_id}' does not exist.")
        return sub

    def _purge(self) -> None:
        t = now()
        for sid, sub in list(self.store.subscriptions.items()):
            if parse_iso(sub["expirationDateTime"]) < t:
                del self.store.subscriptions[sid]

    def _check_url(self, url, name: str) -> str:
        """Graph delivers only to a publicly accessible HTTPS endpoint and refuses an http URL:
        https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks. The
        development flag ``http_notification_urls`` (control config / ``--http-notifications``)
        lets the product's own dev and test runs, whose webhook is http://127.0.0.1, subscribe:
        "refuse" (the default, as Graph), "loopback" (http on 127.0.0.1/::1/localhost only), "any"."""
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
            raise GraphError(400, "InvalidRequest", f"{name} must be an absolute https URL.")
        parts = urlsplit(url)
        if parts.scheme.lower() == "https":
            return url
        mode = str(self.store.config.get("http_notification_urls") or "refuse")
        if mode == "any" or (mode == "loopback" and _is_loopback(parts.hostname or "")):
            return url
        raise GraphError(400, "ValidationError", f"The {name} must use the HTTPS protocol: '{url}'.")

    def _expiration(self, value) -> str:
        if value is None:
            raise GraphError(400, "InvalidRequest", "expirationDateTime is a required property for subscription creation.")
        exp = parse_iso(value)
        t = now()
        max_minutes = float(self.store.config["subscription_max_minutes"])
        if exp <= t:
            raise GraphError(400, "ExtensionError", "Subscription expiration can only be in the future.")
        if exp > t + timedelta(minutes=max_minutes):
            raise GraphError(400, "ExtensionError", f"Subscription expiration can only be {int(max_minutes)} minutes in the future.")
        return fmt_z(exp)

    # -- API -----------------------------------------------------------------------------
    def list(self, req):
        self._purge()
        value = [self._json(req, s) for s in self.store.subscriptions.values() if self._visible(req, s)]
        for v in value:
            v.pop("@odata.context", None)
        return GResp(200, {"@odata.context": f"{req.base}/v1.0/$metadata#subscriptions", "value": value})

    def get(self, req, sub_id: str):
        return GResp(200, self._json(req, self._lookup(req, sub_id)))

    def patch(self, req, sub_id: str):
        sub = self._lookup(req, sub_id)
        payload = req.json()
        if not isinstance(payload, dict):
            raise GraphError(400, "BadRequest", "Request body must be a JSON object.")
        # Update renews (expirationDateTime) and/or moves delivery (notificationUrl); nothing else,
        # lifecycleNotificationUrl included, can change: delete and create the subscription again.
        # https://learn.microsoft.com/en-us/graph/api/subscription-update?view=graph-rest-1.0
        for key in payload:
            if key not in ("expirationDateTime", "notificationUrl", "@odata.type"):
                raise GraphError(400, "InvalidRequest", f"Property '{key}' cannot be updated; only expirationDateTime and notificationUrl can.")
        if "notificationUrl" in payload:
            url = self._check_url(payload["notificationUrl"], "notificationUrl")
        if "expirationDateTime" in payload:
            sub["expirationDateTime"] = self._expiration(payload["expirationDateTime"])
        if "notificationUrl" in payload:
            sub["notificationUrl"] = url
        return GResp(200, self._json(req, sub))

    def delete(self, req, sub_id: str):
        self._lookup(req, sub_id)
        del self.store.subscriptions[sub_id]
        return GResp(204, None)

    def reauthorize(self, req, sub_id: str):
        sub = self._lookup(req, sub_id)
        sub["_reauthorization_required"] = False
        return GResp(204, None)

    async def create(self, req):
        payload = req.json()
        if not isinstance(payload, dict):
            raise GraphError(400, "BadRequest", "Request body must be a JSON object.")
        change = payload.get("changeType")
        if not isinstance(change, str) or not change or not set(change.split(",")) <= CHANGE_TYPES:
            raise GraphError(400, "InvalidRequest", f"Invalid changeType '{change}'; use created, updated and/or deleted.")
        url = self._check_url(payload.get("notificationUrl"), "notificationUrl")
        lifecycle_url = payload.get("lifecycleNotificationUrl")
        if lifecycle_url is not None:
            lifecycle_url = self._check_url(lifecycle_url, "lifecycleNotificationUrl")
        self.refuse_http(url, lifecycle_url)
        resource = payload.get("resource")
        m = RESOURCE_RE.match(resource or "") if isinstance(resource, str) else None
        if m is None:
            raise GraphError(400, "InvalidRequest", f"Resource '{resource}' is not supported; subscribe to users/{{id}}/events.")
        if m.group(1).lower() == "me":
            if req.claims.get("idtyp") != "user":
                raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            target = self.store.users.get(req.claims["oid"])
        else:
            target = self.store.find_user(m.group(2) or m.group(3))
        if target is None:
            raise GraphError(404, "ResourceNotFound", f"The resource '{resource}' was not found (unknown mailbox).")
        if req.claims.get("idtyp") == "user" and target.id != req.claims.get("oid"):
            # Outlook resources: a delegated token subscribes only to the signed-in user's own
            # mailbox, even one it is a delegate of (reading it is allowed; subscribing is not).
            # Shared or delegated folders need the application permission.
            raise GraphError(403, "ExtensionError",
                             "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]")
        self.ctx.graph.check_mailbox(req, target, write=False)
        client_state = payload.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise GraphError(400, "InvalidRequest", "clientState must be a string of at most 128 characters.")
        expiration = self._expiration(payload.get("expirationDateTime"))
        # the validation handshake: the endpoint must echo the token as text/plain within 10 s
        for target_url in [url] + ([lifecycle_url] if lifecycle_url else []):
            ok, detail = await self.validate_endpoint(target_url)
            if not ok:
                raise GraphError(400, "ValidationError",
                                 f"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({detail})")
        sub = {
            "id": str(uuid.uuid4()),
            "resource": resource,
            "applicationId": req.claims["appid"],
            "changeType": change,
            "clientState": client_state,
            "notificationUrl": url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": lifecycle_url,
            "expirationDateTime": expiration,
            "creatorId": req.claims.get("oid"),
            "includeResourceData": False,
            "latestSupportedTlsVersion": payload.get("latestSupportedTlsVersion") or "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
            "_mailbox": target.id,
        }
        self.store.subscriptions[sub["id"]] = sub
        return GResp(201, self._json(req, sub))

    def refuse_http(self, *urls: str | None) -> None:
        """With ``https_only`` (POST /_emulator/subscriptions/https_only) an http URL is refused
        even where ``http_notification_urls`` lets loopback through: a test of the product's
        handling of Graph's refusal, whatever the development flag says."""
        for url in urls:
            if self.https_only and url and not url.lower().startswith("https://"):
                scheme = url.split(":", 1)[0]
                raise GraphError(400, "InvalidRequest", f"NotificationUrl scheme='{scheme}' is not supported.")

    async def validate_endpoint(self, url: str) -> tuple[bool, str]:
        token = "Validation: Testing client application reachability for subscription Request-Id: " + str(uuid.uuid4())
        sep = "&" if "?" in url else "?"
        timeout = float(self.store.config["validation_timeout_seconds"])
        try:
            async with self.session.post(
                f"{url}{sep}validationToken={quote(token)}", data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                text = await resp.text()
                ctype = resp.headers.get("Content-Type", "")
                if resp.status != 200:
                    return False, f"status {resp.status}"
                if not ctype.lower().startswith("text/plain"):
                    return False, f"Content-Type {ctype!r}, expected text/plain"
                if text != token:
                    return False, "the validation token was not echoed"
                return True, "ok"
        except TimeoutError:
            return False, f"no response within {timeout:g} seconds"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    # -- notifications --------------------------------------------------------------------
    # Graph's delivery, as "Receive change notifications through webhooks" describes it
    # (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks):
    #
    # * Batches. "A change notification payload sent to your app can contain a collection of
    #   change notifications"; "when many changes occur, Microsoft Graph may send multiple
    #   notifications that correspond to different subscriptions in the same POST request" (the
    #   changeNotificationCollection's ``value`` in the v1.0 metadata). Changes for one
    #   notificationUrl are gathered for ``notification_batch_window_ms`` after the first, up to
    #   ``notification_batch_max`` items per POST (default 25 with no window: the changes of one
    #   moment share a POST; 1: one POST per change).
    # * Retries. Without a 2xx within 3 seconds (the HTTP client's timeout) Graph "tries to resend
    #   the change notification multiple times, for up to 4 hours" then "discards" it: the
    #   back-off is ``notification_retry_delays`` and then doubling, until
    #   ``notification_retry_max_seconds`` after the first attempt.
    # * Throttling ("How Microsoft Graph handles throttling for change notifications using
    #   webhooks"): a POST taking over 2900 ms is slow; once an endpoint has answered 100, the
    #   share of slow ones is evaluated (the tally is flushed every 10 minutes): at 10 % the
    #   endpoint is throttled (new notifications wait 10 minutes, failed ones are retried after
    #   10 minutes), at 15 % its notifications are dropped.
    # * What is dropped or discarded is announced by a ``missed`` lifecycle notification to the
    #   subscription's lifecycleNotificationUrl: "missed lifecycle events alert you that some change
    #   notifications weren't delivered. For example, because of throttling"
    #   (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events). One per
    #   subscription until it has been delivered, not one per lost change.
    def on_change(self, mailbox_id: str, event_id: str, change_type: str) -> None:
        if not self.store.subscriptions:
            return
        t = now()
        ev = self.store.mailboxes[mailbox_id].events.get(event_id)
        etag = ev.etag if ev is not None else None
        for sub in list(self.store.subscriptions.values()):
            if sub["_mailbox"] != mailbox_id or change_type not in sub["changeType"].split(","):
                continue
            if parse_iso(sub["expirationDateTime"]) < t:
                continue
            resource = f"Users/{mailbox_id}/Events/{event_id}"
            data = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource, "id": event_id}
            if etag:
                data["@odata.etag"] = etag
            item = {
                "id": uuid.uuid4().hex[:16],
                "subscriptionId": sub["id"],
                "subscriptionExpirationDateTime": sub["expirationDateTime"].replace("Z", "+00:00"),
                "changeType": change_type,
                "resource": resource,
                "resourceData": data,
                "clientState": sub["clientState"],
                "tenantId": self.store.tenant_id,
            }
            self.enqueue(sub["notificationUrl"], {"value": [item]}, "change")

    def enqueue(self, url: str, payload: dict, kind: str) -> None:
        """A change's payload (one item) goes through the delivery policy, then into its URL's batch."""
        policy = self.policy
        if kind == "change":
            if policy.get("drop", 0) > 0:
                policy["drop"] -= 1
                self.deliveries.append({"time": time.time(), "url": url, "kind": kind, "payload": payload, "attempt": 0,
                                        "status": None, "ok": False, "dropped": True, "reason": "policy"})
                return
            copies = 1
            if policy.get("duplicate", 0) > 0:
                policy["duplicate"] -= 1
                copies = 2
            if policy.get("reorder", 0) > 0:
                self.held.append((url, payload, copies))
                if len(self.held) >= policy["reorder"]:
                    held, self.held = self.held, []
                    policy["reorder"] = 0
                    for h_url, h_payload, h_copies in reversed(held):
                        for _ in range(h_copies):
                            self._batch(h_url, h_payload)
                return
            for _ in range(copies):
                self._batch(url, payload)
            return
        self._spawn(url, payload, kind)

    def _batch(self, url: str, payload: dict) -> None:
        size = max(1, int(self.store.config.get("notification_batch_max") or 1))
        window = max(0.0, float(self.store.config.get("notification_batch_window_ms") or 0)) / 1000
        if size == 1:
            self._spawn(url, payload, "change")
            return
        buffer = self.buffers.setdefault(url, [])
        buffer.extend(payload["value"])
        if len(buffer) >= size:
            self._flush(url)
        elif url not in self.flush_timers:
            self.flush_timers[url] = asyncio.get_running_loop().call_later(window, self._flush, url)

    def _flush(self, url: str) -> None:
        timer = self.flush_timers.pop(url, None)
        if timer is not None:
            timer.cancel()
        items = self.buffers.pop(url, [])
        size = max(1, int(self.store.config.get("notification_batch_max") or 1))
        for i in range(0, len(items), size):
            self._spawn(url, {"value": items[i:i + size]}, "change")

    def _spawn(self, url: str, payload: dict, kind: str) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(url, payload, kind, self.generation))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _retry_waits(self):
        """The back-off between attempts: the configured delays, then doubling the last one."""
        delays = [float(d) for d in self.store.config["notification_retry_delays"]] or [5.0]
        yield from delays
        wait = delays[-1]
        while True:
            wait *= 2
            yield wait

    async def _deliver(self, url: str, payload: dict, kind: str, generation: int) -> None:
        delay = float(self.policy.get("delay_seconds") or 0)
        if delay:
            await asyncio.sleep(delay)
        cfg = self.store.config
        endpoint = self.endpoint(url)
        if kind == "change" and endpoint.current() == "slow":
            await asyncio.sleep(float(cfg["notification_throttled_delay_seconds"]))  # a throttled endpoint's new notifications wait
        first = time.monotonic()
        max_age = float(cfg["notification_retry_max_seconds"])
        waits = self._retry_waits()
        attempt = 0
        while True:
            if generation != self.generation:
                return
            if kind == "change" and endpoint.current() == "drop":
                self._lost(url, payload, attempt, "throttled")
                return
            attempt += 1
            status, ok, error = None, False, None
            sent = time.perf_counter()
            try:
                async with self.session.post(
                    url, json=payload, headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=aiohttp.ClientTimeout(total=float(cfg["notification_timeout_seconds"])),
                ) as resp:
                    await resp.read()
                    status = resp.status
                    ok = 200 <= status < 300
            except TimeoutError:
                error = "timeout"
            except (aiohttp.ClientError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            duration_ms = (time.perf_counter() - sent) * 1000
            if kind == "change":
                endpoint.record(duration_ms, timed_out=error == "timeout")
            self._count(payload, kind)
            self.deliveries.append({"time": time.time(), "url": url, "kind": kind, "payload": payload,
                                    "attempt": attempt, "status": status, "ok": ok, "error": error, "dropped": False,
                                    "items": len(payload.get("value") or []), "duration_ms": round(duration_ms, 3),
                                    "endpoint_state": endpoint.current()})
            if ok:
                if kind == "lifecycle":
                    for item in payload.get("value") or []:
                        if item.get("lifecycleEvent") == "missed":
                            self.missed_pending.discard(item.get("subscriptionId"))
                return
            wait = next(waits)
            if kind == "change" and endpoint.current() != "ok":
                wait = float(cfg["notification_throttled_delay_seconds"])  # failed ones go to the throttled workers
            if time.monotonic() + wait - first > max_age:
                if kind == "change":
                    self._lost(url, payload, attempt, "expired")
                return
            await asyncio.sleep(wait)

    def _lost(self, url: str, payload: dict, attempt: int, reason: str) -> None:
        """A change notification Graph gave up on: recorded, and a ``missed`` lifecycle
        notification for each of its subscriptions that has a lifecycle URL."""
        self.deliveries.append({"time": time.time(), "url": url, "kind": "change", "payload": payload, "attempt": attempt,
                                "status": None, "ok": False, "dropped": True, "reason": reason,
                                "items": len(payload.get("value") or [])})
        for sub_id in dict.fromkeys(item.get("subscriptionId") for item in payload.get("value") or []):
            sub = self.store.subscriptions.get(sub_id)
            if sub is None or not sub.get("lifecycleNotificationUrl") or sub_id in self.missed_pending:
                continue
            self.missed_pending.add(sub_id)
            self.enqueue(sub["lifecycleNotificationUrl"], {"value": [self._lifecycle_item(sub, "missed")]}, "lifecycle")

    def _count(self, payload: dict, kind: str) -> None:
        """Every notification POST, counted per mailbox (each item's) and kind, for benches."""
        for item in payload.get("value") or []:
            sub = self.store.subscriptions.get(item.get("subscriptionId"))
            user = self.store.users.get(sub["_mailbox"]) if sub else None
            self.request_counts[f"{user.upn if user else '?'} {'notification' if kind == 'change' else 'lifecycle'}"] += 1
        self.request_counts[f"* {kind}_post"] += 1

    def endpoint(self, url: str) -> EndpointHealth:
        health = self.endpoints.get(url)
        if health is None:
            health = self.endpoints[url] = EndpointHealth(lambda: self.store.config)
        return health

    def _lifecycle_item(self, sub: dict, event: str) -> dict:
        return {
            "subscriptionId": sub["id"],
            "subscriptionExpirationDateTime": sub["expirationDateTime"].replace("Z", "+00:00"),
            "tenantId": self.store.tenant_id,
            "clientState": sub["clientState"],
            "lifecycleEvent": event,
        }

    async def lifecycle(self, sub_id: str, event: str) -> dict:
        sub = self.store.subscriptions.get(sub_id)
        if sub is None:
            raise GraphError(404, "ResourceNotFound", f"Subscription '{sub_id}' does not exist.")
        if event not in LIFECYCLE_EVENTS:
            raise GraphError(400, "BadRequest", f"lifecycle event must be one of {sorted(LIFECYCLE_EVENTS)}.")
        if not sub.get("lifecycleNotificationUrl"):
            raise GraphError(400, "BadRequest", "This subscription has no lifecycleNotificationUrl.")
        item = self._lifecycle_item(sub, event)
        if event == "reauthorizationRequired":
            sub["_reauthorization_required"] = True
        if event == "subscriptionRemoved":
            del self.store.subscriptions[sub_id]
        self.enqueue(sub["lifecycleNotificationUrl"], {"value": [item]}, "lifecycle")
        return item
