"""The control API under /_emulator/ (no auth, JSON): what tests and demos use to steer the emulator."""

from __future__ import annotations

import json
import time

from aiohttp import web
from multidict import CIMultiDict

from .errors import GraphError
from .http_types import GReq, error_body
from .seed import apply_seed_payload
from .tokens import check_certificate


def _json(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


class Control:
    def __init__(self, ctx):
        self.ctx = ctx

    def routes(self) -> list:
        c = self
        return [
            web.post("/_emulator/reset", c.reset),
            web.post("/_emulator/seed", c.seed),
            web.get("/_emulator/snapshot", c.snapshot_get),
            web.post("/_emulator/snapshot", c.snapshot_load),
            web.get("/_emulator/faults", c.faults_list),
            web.post("/_emulator/faults", c.faults_add),
            web.delete("/_emulator/faults", c.faults_clear),
            web.post("/_emulator/delta/expire", c.delta_expire),
            web.post("/_emulator/notifications/policy", c.notification_policy),
            web.get("/_emulator/notifications", c.notifications),
            web.post("/_emulator/notifications/batching", c.notification_batching),
            web.delete("/_emulator/notifications", c.notifications_clear),
            web.get("/_emulator/messages", c.messages_get),
            web.delete("/_emulator/messages", c.messages_clear),
            web.get("/_emulator/requests", c.requests_get),
            web.delete("/_emulator/requests", c.requests_clear),
            web.post("/_emulator/subscriptions/{id}/lifecycle", c.lifecycle),
            web.get("/_emulator/subscriptions", c.subscriptions),
            web.post("/_emulator/subscriptions/https_only", c.subscriptions_https_only),
            web.post("/_emulator/consent/revoke", c.consent_revoke),
            web.post("/_emulator/consent/grant", c.consent_grant),
            web.post("/_emulator/tokens/expire", c.tokens_expire),
            web.get("/_emulator/config", c.config_get),
            web.post("/_emulator/config", c.config_set),
            web.post("/_emulator/rooms/{upn}/auto_accept", c.auto_accept),
            web.post("/_emulator/rooms/{upn}/booking_delegates", c.booking_delegates),
            web.post("/_emulator/rooms/{upn}/calendar_processing", c.calendar_processing),
            web.post("/_emulator/access_policy", c.access_policy),
            web.post("/_emulator/users/{upn}/online_meeting_providers", c.online_meeting_providers),
            web.post("/_emulator/apps/{client_id}/certificates", c.app_certificates),
            web.post("/_emulator/users/{upn}/events", c.create_event_as),
            web.post("/_emulator/users/{upn}/respond", c.respond_as),
            web.get("/_emulator/state", c.state),
            web.get("/_emulator/health", c.health),
        ]

    @web.middleware
    async def errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except GraphError as e:
            return web.json_response(error_body(e, None), status=e.status, headers=e.headers)
        except (KeyError, ValueError, TypeError) as e:
            err = GraphError(400, "BadRequest", f"{type(e).__name__}: {e}")
            return web.json_response(error_body(err, None), status=400)

    async def _body(self, request: web.Request) -> dict:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Malformed JSON body.") from exc
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", "The body must be a JSON object.")
        return data

    def _user(self, key: str):
        user = self.ctx.store.find_user(key)
        if user is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
        return user

    async def health(self, request):
        return _json({"status": "ok", "tenant": self.ctx.store.tenant_id})

    async def reset(self, request):
        body = await self._body(request)
        self.ctx.reset(body.get("seed"))
        return _json({"status": "reset", "seed": self.ctx.seed_name})

    async def seed(self, request):
        body = await self._body(request)
        try:
            added = apply_seed_payload(self.ctx.store, body)
        except KeyError as exc:
            raise GraphError(400, "BadRequest", f"Bad seed payload: missing {exc}") from exc
        return _json({"added": added})

    async def snapshot_get(self, request):
        return _json(self.ctx.store.to_json())

    async def snapshot_load(self, request):
        body = await self._body(request)
        self.ctx.load_snapshot(body)
        return _json({"status": "loaded"})

    async def faults_list(self, request):
        return _json({"faults": [self.ctx.faults.public(r) for r in self.ctx.faults.rules]})

    async def faults_add(self, request):
        raw = await request.read()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Malformed JSON body.") from exc
        rules = data if isinstance(data, list) else [data]
        return _json({"faults": [self.ctx.faults.add(r) for r in rules]}, 201)

    async def faults_clear(self, request):
        self.ctx.faults.clear()
        return web.Response(status=204)

    async def delta_expire(self, request):
        body = await self._body(request)
        mailbox = body.get("mailbox")
        n = self.ctx.graph.delta.expire(self._user(mailbox).id if mailbox else None)
        return _json({"expired_mailboxes": n})

    async def notification_policy(self, request):
        body = await self._body(request)
        policy = {}
        for key in ("drop", "duplicate", "reorder"):
            if key in body:
                policy[key] = int(body[key])
        if "delay_seconds" in body:
            policy["delay_seconds"] = float(body["delay_seconds"])
        self.ctx.subscriptions.policy = policy
        self.ctx.subscriptions.held = []
        return _json({"policy": policy})

    async def notifications(self, request):
        subs = self.ctx.subscriptions
        rows = list(subs.deliveries)
        return _json({"deliveries": rows, "pending": len(subs.pending),
                      "batched": sum(len(items) for items in subs.buffers.values()),
                      "endpoints": {url: health.public() for url, health in subs.endpoints.items()}})

    async def notification_batching(self, request):
        """{"max": n, "window_ms": w}: Graph's bursts, up to n change notifications per POST, the
        first waiting w ms for company (the config keys notification_batch_max/_window_ms)."""
        body = await self._body(request)
        size, window = body.get("max", 1), body.get("window_ms", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or isinstance(window, bool) \
                or not isinstance(window, int | float) or window < 0:
            raise GraphError(400, "BadRequest", 'Give {"max": a whole number >= 1, "window_ms": a number >= 0}.')
        self.ctx.store.config.update(notification_batch_max=size, notification_batch_window_ms=float(window))
        return _json({"max": size, "window_ms": float(window)})

    async def notifications_clear(self, request):
        self.ctx.subscriptions.deliveries.clear()
        return web.Response(status=204)

    async def requests_get(self, request):
        since = request.query.get("since")
        limit = int(request.query.get("limit", "1000"))
        data = self.ctx.requests.query(float(since) if since else None, limit, self.ctx.throttle)
        # The requests Graph makes: notification POSTs, per item's mailbox ("<upn> notification",
        # "<upn> lifecycle") and in all ("* change_post", "* lifecycle_post"); since the last clear.
        data["counts"]["by_mailbox_kind"].update(self.ctx.subscriptions.request_counts)
        return _json(data)

    async def messages_get(self, request):
        """Meeting messages each attendee received, by kind (see calendar.py, "Meeting messages")."""
        return _json({"messages": {k: dict(v) for k, v in sorted(self.ctx.store.messages.items())}})

    async def messages_clear(self, request):
        self.ctx.store.messages.clear()
        return web.Response(status=204)

    async def requests_clear(self, request):
        self.ctx.requests.clear()
        self.ctx.subscriptions.request_counts.clear()
        self.ctx.throttle.max_inflight.clear()
        return web.Response(status=204)

    async def subscriptions(self, request):
        subs = [{k: v for k, v in s.items()} for s in self.ctx.store.subscriptions.values()]
        return _json({"subscriptions": subs})

    async def subscriptions_https_only(self, request):
        """{"enabled": true}: subscription creates with an http notification URL are refused, as Graph does."""
        body = await self._body(request)
        self.ctx.subscriptions.https_only = bool(body.get("enabled", True))
        return _json({"https_only": self.ctx.subscriptions.https_only})

    async def lifecycle(self, request):
        body = await self._body(request)
        item = await self.ctx.subscriptions.lifecycle(request.match_info["id"], body.get("event") or body.get("lifecycleEvent"))
        return _json({"sent": item}, 202)

    async def consent_revoke(self, request):
        body = await self._body(request)
        user = self._user(body["user"])
        client_id = body.get("client_id") or body.get("clientId")
        key = f"{user.id}|{client_id}"
        entry = self.ctx.store.consents.get(key)
        if entry is None:
            raise GraphError(404, "ResourceNotFound", f"No consent for {user.upn} and {client_id}.")
        entry["revoked"] = True
        entry["revoked_at"] = time.time()
        return _json({"revoked": {"user": user.upn, "client_id": client_id}})

    async def consent_grant(self, request):
        body = await self._body(request)
        user = self._user(body["user"])
        client_id = body.get("client_id") or body.get("clientId")
        app = self.ctx.store.apps.get(client_id)
        if app is None:
            raise GraphError(404, "ResourceNotFound", f"Unknown app {client_id}.")
        self.ctx.store.grant_consent(user.id, client_id, body.get("scopes") or app.delegated_scopes)
        return _json({"granted": {"user": user.upn, "client_id": client_id}})

    async def tokens_expire(self, request):
        body = await self._body(request)
        user_id = self._user(body["user"]).id if body.get("user") else None
        n = self.ctx.tokens.expire(user_id, body.get("client_id"))
        return _json({"expired": n})

    async def config_get(self, request):
        return _json(self.ctx.store.config)

    async def config_set(self, request):
        body = await self._body(request)
        cfg = self.ctx.store.config
        unknown = [k for k in body if k not in cfg]
        if unknown:
            raise GraphError(400, "BadRequest", f"Unknown config keys: {unknown}; known: {sorted(cfg)}")
        choices = {"http_notification_urls": ("refuse", "loopback", "any"), "delta_expired_mode": ("syncStateNotFound", "gone")}
        for k, allowed in choices.items():
            if k in body and body[k] not in allowed:
                raise GraphError(400, "BadRequest", f"{k} must be one of {list(allowed)}")
        if "latency" in body:
            spans = body["latency"]
            ok = isinstance(spans, dict) and set(spans) <= {"read", "write"} and all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) and 0 <= v[0] <= v[1]
                for v in spans.values())
            if not ok:
                raise GraphError(400, "BadRequest", 'latency must be like {"read": [50, 150], "write": [150, 400]} (ms, low <= high)')
        numbers = {"notification_batch_max": 1, "notification_batch_window_ms": 0, "notification_retry_max_seconds": 0,
                   "notification_slow_ms": 0, "notification_throttle_min_responses": 1, "notification_slow_percent": 0,
                   "notification_drop_percent": 0, "notification_throttle_window_seconds": 0.001,
                   "notification_throttled_delay_seconds": 0, "notification_timeout_seconds": 0.001}
        for k, low in numbers.items():
            if k in body and (isinstance(body[k], bool) or not isinstance(body[k], int | float) or body[k] < low):
                raise GraphError(400, "BadRequest", f"{k} must be a number of at least {low}")
        if "notification_retry_delays" in body:
            delays = body["notification_retry_delays"]
            if not isinstance(delays, list) or not delays or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays):
                raise GraphError(400, "BadRequest", "notification_retry_delays must be a non-empty list of seconds")
        for k, v in body.items():
            cfg[k] = v
        return _json(cfg)

    async def auto_accept(self, request):
        body = await self._body(request)
        room = self._user(request.match_info["upn"])
        if room.kind != "room":
            raise GraphError(400, "BadRequest", f"{room.upn} is not a room mailbox.")
        room.auto_accept = bool(body.get("enabled", True))
        return _json({"room": room.upn, "auto_accept": room.auto_accept})

    async def booking_delegates(self, request):
        """{"delegates": [upn, ...]}: the room's bookings are approved by these users (Set-CalendarProcessing
        -AllBookInPolicy $false -AllRequestInPolicy $true -ResourceDelegates ...); [] lets the attendant book
        again. Each delegate is also given access to the room's calendar (to accept or decline its requests)."""
        body = await self._body(request)
        room = self._user(request.match_info["upn"])
        if room.kind != "room":
            raise GraphError(400, "BadRequest", f"{room.upn} is not a room mailbox.")
        delegates = body.get("delegates")
        if not isinstance(delegates, list) or not all(isinstance(d, str) for d in delegates):
            raise GraphError(400, "BadRequest", 'Give "delegates": a list of user addresses.')
        users = [self._user(d) for d in delegates]
        room.booking_delegates = [u.upn for u in users]
        mb = self.ctx.store.mailboxes[room.id]
        for u in users:
            if u.id not in mb.delegates:
                mb.delegates.append(u.id)
        return _json({"room": room.upn, "booking_delegates": room.booking_delegates})

    async def calendar_processing(self, request):
        """Set-CalendarProcessing for a room: {"ConflictPercentageAllowed": 0-100, "MaximumConflictInstances": n}."""
        body = await self._body(request)
        room = self._user(request.match_info["upn"])
        if room.kind != "room":
            raise GraphError(400, "BadRequest", f"{room.upn} is not a room mailbox.")
        percent = body.get("ConflictPercentageAllowed", room.conflict_percentage_allowed)
        count = body.get("MaximumConflictInstances", room.maximum_conflict_instances)
        if not isinstance(percent, int) or not 0 <= percent <= 100 or not isinstance(count, int) or count < 0:
            raise GraphError(400, "BadRequest", "ConflictPercentageAllowed is 0-100 and MaximumConflictInstances at least 0.")
        room.conflict_percentage_allowed, room.maximum_conflict_instances = percent, count
        return _json({"room": room.upn, "ConflictPercentageAllowed": percent, "MaximumConflictInstances": count})

    async def online_meeting_providers(self, request):
        """{"allowed": ["teamsForBusiness", ...], "default": "teamsForBusiness"}: the mailbox calendar's
        allowedOnlineMeetingProviders / defaultOnlineMeetingProvider (an empty list: none allowed)."""
        body = await self._body(request)
        user = self._user(request.match_info["upn"])
        allowed = body.get("allowed", user.allowed_online_meeting_providers)
        if not isinstance(allowed, list) or not all(isinstance(p, str) for p in allowed):
            raise GraphError(400, "BadRequest", "allowed must be a list of provider names.")
        user.allowed_online_meeting_providers = list(allowed)
        user.default_online_meeting_provider = str(body.get("default") or (allowed[0] if allowed else "unknown"))
        return _json({"user": user.upn, "allowedOnlineMeetingProviders": user.allowed_online_meeting_providers,
                      "defaultOnlineMeetingProvider": user.default_online_meeting_provider})

    async def access_policy(self, request):
        """{"client_id": ..., "mailboxes": [upn, ...]} limits an app's app-only access; mailboxes null lifts it."""
        body = await self._body(request)
        client_id = body["client_id"]
        if body.get("mailboxes") is None:
            self.ctx.store.access_policy.pop(client_id, None)
        else:
            self.ctx.store.access_policy[client_id] = [self._user(m).id for m in body["mailboxes"]]
        return _json({"access_policy": self.ctx.store.access_policy})

    async def app_certificates(self, request):
        """{"certificate": PEM, "replace": false}: register a certificate's public part on an app
        (Certificates & secrets), so assertions signed with its key authenticate the app."""
        body = await self._body(request)
        app = self.ctx.store.apps.get(request.match_info["client_id"])
        if app is None:
            raise GraphError(404, "ResourceNotFound", f"Unknown app {request.match_info['client_id']}.")
        pem = check_certificate(str(body["certificate"]))
        app.certificates = ([] if body.get("replace") else app.certificates) + [pem]
        return _json({"client_id": app.client_id, "certificates": len(app.certificates)})

    async def create_event_as(self, request):
        """Create an event in a mailbox as its owner would in Outlook (no token, no throttling)."""
        user = self._user(request.match_info["upn"])
        body = await request.read()
        req = GReq(method="POST", path=f"/users/{user.upn}/events", query={}, headers=CIMultiDict(request.headers),
                   body=body, base=f"https://{request.host}")
        req.claims = {"idtyp": "app", "roles": ["Calendars.ReadWrite"], "appid": "_emulator"}
        req.mailbox = user
        try:
            resp = self.ctx.graph.create_event(req, user)
        except GraphError as e:
            return web.json_response(error_body(e, req), status=e.status)
        return web.json_response(resp.body, status=resp.status)

    async def respond_as(self, request):
        """An attendee answers a meeting in Outlook: {"iCalUId": ..., "action": "accept" | "tentativelyAccept" |
        "decline", "sendResponse": true, "keepDeclined": false}. Their copy is found by iCalUId (tests know the
        meeting, not the attendee's copy id); with sendResponse the organizer's copy records the answer, as Graph's
        accept does. A declined copy leaves the calendar unless keepDeclined (Outlook's "show declined events")."""
        user = self._user(request.match_info["upn"])
        body = await self._body(request)
        ical_uid = body.get("iCalUId") or body.get("ical_uid")
        action = {"accept": "accept", "decline": "decline", "tentativelyaccept": "tentativelyAccept"}.get(str(body.get("action", "")).lower())
        send = body.get("sendResponse", True)
        keep = body.get("keepDeclined", False)
        if not isinstance(ical_uid, str) or not ical_uid or action is None or not isinstance(send, bool) or not isinstance(keep, bool):
            raise GraphError(400, "BadRequest", 'Give "iCalUId", "action" (accept, tentativelyAccept or decline) and optionally '
                                                '"sendResponse" and "keepDeclined" (booleans).')
        copy = self.ctx.store.find_by_ical(user.id, ical_uid)
        if copy is None:
            raise GraphError(404, "ErrorItemNotFound", f"{user.upn} has no copy of the meeting {ical_uid}.")
        self.ctx.calendar.respond(user, copy, action, send, keep_declined=keep)
        return _json({"user": user.upn, "event_id": copy.id, "response": copy.response["response"]})

    async def state(self, request):
        store = self.ctx.store
        mailboxes = {}
        for mb in store.mailboxes.values():
            u = store.users[mb.owner]
            mailboxes[u.upn] = {
                "id": u.id, "kind": u.kind, "events": len(mb.events), "seq": mb.seq, "delta_epoch": mb.epoch,
                "delegates": [store.users[d].upn for d in mb.delegates if d in store.users],
                "auto_accept": u.auto_accept if u.kind == "room" else None,
                "booking_delegates": list(u.booking_delegates) if u.kind == "room" else None,
                "subjects": sorted(e.subject for e in mb.events.values())[:50],
            }
        return _json({
            "tenant": {"id": store.tenant_id, "name": store.tenant_name, "domain": store.domain},
            "seed": self.ctx.seed_name,
            "mailboxes": mailboxes,
            "apps": sorted(store.apps),
            "subscriptions": len(store.subscriptions),
            "faults": len(self.ctx.faults.rules),
            "notifications_pending": len(self.ctx.subscriptions.pending),
            "config": store.config,
        })
