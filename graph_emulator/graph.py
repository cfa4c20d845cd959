"""Microsoft Graph v1.0: routing, authentication, permissions and the resource handlers.

Below it: the request/response types (``http_types``), OData query options (``odata``),
how events render (``event_views``), and ``batch``, ``delta``, ``schedule``, which are
handed what they need and import nothing of this module. About 500 lines on purpose: the
router and the permission check of every Graph endpoint the product calls, in one place."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
import time
from datetime import UTC
from urllib.parse import quote

from .batch import run_batch
from .delta import DeltaEngine
from .directory_search import check_consistency, compile_search, needs_advanced_query
from .errors import GraphError, access_denied, invalid_request, item_not_found
from .event_views import event_view, preferences, view_instances
from .http_types import DropConnection, GReq, GResp, error_body
from .model import Event, User, extended_property_key, instances, occurrence, parse_occurrence_id
from .odata import compile_filter, order, page, select_fields
from .schedule import get_schedule
from .serialize import (
    EVENT_PROPERTIES,
    ROOM_LIST_PROPERTIES,
    ROOM_PROPERTIES,
    USER_PROPERTIES,
    check_select,
    room_json,
    room_list_json,
    user_json,
)
from .timeutil import parse_datetime_tz, parse_query_instant

MAILBOX_RE = re.compile(r"^/(me|users/([^/]+)|users\('([^']+)'\))(/.*)?$", re.IGNORECASE)
EVENT_ACTIONS = {"cancel", "accept", "decline", "tentativelyaccept"}
READ_ROLES = {"Calendars.Read", "Calendars.ReadBasic", "Calendars.ReadWrite", "Calendars.ReadBasic.All"}
# Casts name the type by its namespace or by the metadata's alias ``graph`` (<Schema Namespace=
# "microsoft.graph" Alias="graph">); Graph accepts both, and Microsoft's SDKs send the full name:
# https://learn.microsoft.com/en-us/graph/api/place-list?view=graph-rest-1.0
PLACE_CASTS = {"microsoft.graph.room": "room", "graph.room": "room", "microsoft.graph.roomlist": "roomList",
               "graph.roomlist": "roomList"}
# calendarView/delta is an OData function: ``delta()`` (as the Graph SDKs build it) and ``delta``
# both call it: https://learn.microsoft.com/en-us/graph/api/event-delta?view=graph-rest-1.0
DELTA_SEGMENTS = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()", "graph.delta", "graph.delta()"}
_EXPAND_SVEP = re.compile(r"^singleValueExtendedProperties(?:\(\$filter=id eq '((?:[^']|'')*)'\))?$", re.IGNORECASE)
# Update place: what a room's and a room list's PATCH body may carry:
# https://learn.microsoft.com/en-us/graph/api/place-update?view=graph-rest-1.0
ROOM_UPDATABLE = frozenset({
    "address", "audioDeviceName", "bookingType", "building", "capacity", "displayDeviceName", "floorLabel", "floorNumber",
    "geoCoordinates", "isWheelChairAccessible", "label", "nickname", "phone", "tags", "videoDeviceName",
})
ROOM_LIST_UPDATABLE = frozenset({"address", "displayName", "geoCoordinates", "phone"})
_PLACE_TYPES = {
    "capacity": int, "floorNumber": int, "isWheelChairAccessible": bool, "tags": list, "address": dict, "geoCoordinates": dict,
}
DIR_ROLES = {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}


class Graph:
    def __init__(self, ctx):
        self._latency_rng: tuple | None = None  # (seed, generator) of the latency draws
        self.ctx = ctx
        self.delta = DeltaEngine(ctx)

    @property
    def store(self):
        return self.ctx.store

    # -- entry -----------------------------------------------------------------------
    def latency_ms(self, req: GReq) -> float:
        """This request's added latency: drawn from its kind's range (read: GET; write: the
        rest; the outer POST /$batch adds none, its items each take theirs), else latency_ms."""
        cfg = self.ctx.store.config
        if req.path.rstrip("/") == "/$batch" and not req.batch:
            return 0.0
        kind = "read" if req.method == "GET" else "write"
        span = (cfg.get("latency") or {}).get(kind)
        if not span:
            return float(cfg.get("latency_ms") or 0)
        seed = cfg.get("latency_seed")
        if self._latency_rng is None or self._latency_rng[0] != seed:
            self._latency_rng = (seed, random.Random(seed))  # noqa: S311 - a simulation, not crypto
        low, high = float(span[0]), float(span[-1])
        return self._latency_rng[1].uniform(low, high)

    async def dispatch(self, req: GReq) -> GResp:
        started = time.perf_counter()
        ctx = self.ctx
        throttle_key = None
        resp: GResp
        app_id = user_upn = None
        try:
            try:
                req.claims = ctx.tokens.validate(req.headers.get("Authorization"))
                app_id = req.claims.get("appid")
                user_upn = req.claims.get("upn") if req.claims.get("idtyp") == "user" else None
                auth_error = None
            except GraphError as e:
                auth_error = e
            req.mailbox = self._target_mailbox(req)
            if ctx.faults.rules:
                keys = (req.mailbox.upn.lower(), req.mailbox.id) if req.mailbox else ()
                rule = ctx.faults.match(req.method, "/v1.0" + req.path, keys, app_id)
                if rule is not None:
                    if rule["action"] == "drop" and not req.batch:
                        raise DropConnection()
                    if rule["action"] == "delay":
                        await asyncio.sleep(rule["seconds"])
                    elif rule["action"] == "status":
                        raise ctx.faults.error_for(rule)
            if auth_error is not None:
                raise auth_error
            if req.mailbox is not None:
                key = (app_id, req.mailbox.id)
                ctx.throttle.acquire(key)
                throttle_key = key  # released in finally only once acquired
            latency = self.latency_ms(req)
            if latency:
                await asyncio.sleep(latency / 1000)
            resp = await self.route(req)
        except GraphError as e:
            resp = GResp(e.status, error_body(e, req), dict(e.headers))
        except DropConnection:
            ctx.requests.record(req.method, "/v1.0" + req.path, req.mailbox.upn if req.mailbox else None, app_id, 0,
                                (time.perf_counter() - started) * 1000, req.batch, user=user_upn)
            raise
        finally:
            if throttle_key is not None:
                ctx.throttle.release(throttle_key)
        resp.headers.setdefault("request-id", req.request_id)
        resp.headers.setdefault("client-request-id", req.headers.get("client-request-id") or req.request_id)
        resp.headers.setdefault("x-ms-ags-diagnostic", '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"EMU"}}')
        ctx.requests.record(req.method, "/v1.0" + req.path, req.mailbox.upn if req.mailbox else None, app_id,
                            resp.status, (time.perf_counter() - started) * 1000, req.batch, user=user_upn,
                            select=req.q("select"), client_request_id=req.headers.get("client-request-id"),
                            search=req.q("search"), consistency_level=req.headers.get("ConsistencyLevel"))
        return resp

    def _target_mailbox(self, req: GReq) -> User | None:
        m = MAILBOX_RE.match(req.path)
        if not m:
            return None
        if m.group(1).lower() == "me":
            if req.claims and req.claims.get("idtyp") == "user":
                return self.store.users.get(req.claims["oid"])
            return None
        return self.store.find_user(m.group(2) or m.group(3))

    # -- permissions --------------------------------------------------------------------
    def _is_app(self, req: GReq) -> bool:
        return req.claims.get("idtyp") == "app"

    def _scopes(self, req: GReq) -> set[str]:
        return set(req.claims.get("roles") or []) if self._is_app(req) else set((req.claims.get("scp") or "").split())

    def check_mailbox(self, req: GReq, target: User, write: bool) -> None:
        scopes = self._scopes(req)
        if self._is_app(req):
            needed = {"Calendars.ReadWrite"} if write else READ_ROLES
            if not scopes & needed:
                raise access_denied()
            policy = self.store.access_policy.get(req.claims["appid"])
            if policy is not None and target.id not in policy:
                raise access_denied("Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.")
            return
        me = req.claims["oid"]
        if target.id == me:
            needed = {"Calendars.ReadWrite"} if write else READ_ROLES | {"Calendars.ReadWrite.Shared", "Calendars.Read.Shared"}
        elif me in self.store.mailboxes[target.id].delegates:
            needed = {"Calendars.ReadWrite.Shared"} if write else {"Calendars.Read.Shared", "Calendars.ReadWrite.Shared"}
        else:
            raise access_denied()
        if not scopes & needed:
            raise access_denied()

    def check_directory(self, req: GReq, target: User | None) -> None:
        scopes = self._scopes(req)
        if scopes & DIR_ROLES:
            return
        if not self._is_app(req) and target is not None and target.id == req.claims["oid"] and "User.Read" in scopes:
            return
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    # -- routing ---------------------------------------------------------------------------
    async def route(self, req: GReq) -> GResp:
        path = req.path.rstrip("/") or "/"
        m = MAILBOX_RE.match(path)
        if m:
            target = req.mailbox
            if target is None:
                if m.group(1).lower() == "me":
                    raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
                key = m.group(2) or m.group(3)
                if (m.group(4) or "") in ("", "/"):
                    raise GraphError(404, "Request_ResourceNotFound",
                                     f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")
                raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
            return await self.route_mailbox(req, target, m.group(4) or "")
        segs = path.strip("/").split("/")
        head = segs[0]
        if head == "users" and len(segs) == 1:
            self._only(req, "GET")
            return self.list_users(req)
        if head == "places" and len(segs) == 2 and segs[1].lower() in PLACE_CASTS:
            self._only(req, "GET")
            return self.list_places(req, PLACE_CASTS[segs[1].lower()])
        if head == "places" and len(segs) == 2:
            if req.method == "GET":
                return self.get_place(req, segs[1])
            if req.method == "PATCH":
                return self.update_place(req, segs[1])
            raise self._method_not_allowed()
        if head == "places" and segs[-1] == "rooms" and (
                len(segs) == 3 or (len(segs) == 4 and PLACE_CASTS.get(segs[2].lower()) == "roomList")):
            self._only(req, "GET")
            return self.list_rooms_in(req, segs[1])
        if head == "subscriptions":
            subs = self.ctx.subscriptions
            if len(segs) == 1:
                if req.method == "GET":
                    return subs.list(req)
                if req.method == "POST":
                    return await subs.create(req)
                raise self._method_not_allowed()
            if len(segs) == 2:
                if req.method == "GET":
                    return subs.get(req, segs[1])
                if req.method == "PATCH":
                    return subs.patch(req, segs[1])
                if req.method == "DELETE":
                    return subs.delete(req, segs[1])
                raise self._method_not_allowed()
            if len(segs) == 3 and segs[2] == "reauthorize":
                self._only(req, "POST")
                return subs.reauthorize(req, segs[1])
        if head == "$batch" and len(segs) == 1:
            if req.batch:
                raise GraphError(400, "BadRequest", "Nested batch requests are not supported.")
            self._only(req, "POST")
            return await run_batch(self.dispatch, req)
        bad = next((s for s in segs if s), head)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{bad}'.")

    def _method_not_allowed(self) -> GraphError:
        return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")

    def _only(self, req: GReq, method: str) -> None:
        if req.method != method:
            raise self._method_not_allowed()

    async def route_mailbox(self, req: GReq, target: User, rest: str) -> GResp:
        segs = [s for s in rest.strip("/").split("/") if s]
        if segs and segs[0] == "calendar":
            segs = segs[1:]
            if not segs:
                self._only(req, "GET")
                self.check_mailbox(req, target, write=False)
                return self.calendar_resource(req, target)
            if segs == ["getSchedule"]:
                self._only(req, "POST")
                self.check_mailbox(req, target, write=False)
                return get_schedule(self.store, req)
        if not segs:
            self._only(req, "GET")
            self.check_directory(req, target)
            body = user_json(target, check_select(select_fields(req), USER_PROPERTIES, "user"))
            body = {"@odata.context": f"{req.base}/v1.0/$metadata#users/$entity", **body}
            return GResp(200, body)
        if len(segs) >= 2 and segs[0] == "calendars":
            # /users/{id}/calendars/{calendarId}/events (and calendarView): the default calendar,
            # the only one the emulator keeps, by its id:
            # https://learn.microsoft.com/en-us/graph/api/calendar-list-events?view=graph-rest-1.0
            self.check_mailbox(req, target, write=req.method != "GET")
            if segs[1] != self.calendar_id(target):
                raise item_not_found()
            segs = segs[2:]
            if not segs:
                self._only(req, "GET")
                return self.calendar_resource(req, target)
        if segs and segs[0].lower() == "calendarview":
            self._only(req, "GET")
            self.check_mailbox(req, target, write=False)
            if len(segs) == 1:
                return self.calendar_view(req, target)
            if len(segs) == 2 and segs[1].lower() in DELTA_SEGMENTS:
                return self.delta.handle(req, target)
        if segs and segs[0] == "events":
            if len(segs) == 1:
                if req.method == "GET":
                    self.check_mailbox(req, target, write=False)
                    return self.list_events(req, target)
                if req.method == "POST":
                    self.check_mailbox(req, target, write=True)
                    return self.create_event(req, target)
                raise self._method_not_allowed()
            event_id = segs[1]
            if len(segs) == 2:
                if req.method == "GET":
                    self.check_mailbox(req, target, write=False)
                    return self.get_event(req, target, event_id)
                if req.method == "PATCH":
                    self.check_mailbox(req, target, write=True)
                    return self.patch_event(req, target, event_id)
                if req.method == "DELETE":
                    self.check_mailbox(req, target, write=True)
                    return self.delete_event(req, target, event_id)
                raise self._method_not_allowed()
            if len(segs) == 3 and segs[2].lower() in EVENT_ACTIONS:
                self._only(req, "POST")
                self.check_mailbox(req, target, write=True)
                return self.event_action(req, target, event_id, segs[2])
            if len(segs) == 3 and segs[2] == "instances":
                self._only(req, "GET")
                self.check_mailbox(req, target, write=False)
                return self.event_instances(req, target, event_id)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segs[0] if segs else ''}'.")

    # -- directory ------------------------------------------------------------------------
    def list_users(self, req: GReq) -> GResp:
        """GET /users, with $filter, $select, and $search / $count as advanced queries (the
        ConsistencyLevel header): https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0"""
        self.check_directory(req, None)
        if needs_advanced_query(req):
            check_consistency(req)
        users = sorted(self.store.users.values(), key=lambda u: u.upn)
        items = [user_json(u) for u in users]
        sel = check_select(select_fields(req), USER_PROPERTIES, "user")
        test = compile_filter(req.q("filter"))
        if test:
            items = [u for u in items if test(u)]
        if req.q("search") is not None:
            found = compile_search(req.q("search"))
            items = [u for u in items if found(u)]
        if sel:
            keep = set(sel) | {"id"}
            items = [{k: v for k, v in u.items() if k in keep} for u in items]
        body = page(req, items, 100, f"{req.base}/v1.0/$metadata#users")
        if (req.q("count") or "").lower() == "true":
            body = {"@odata.context": body.pop("@odata.context"), "@odata.count": len(items), **body}
        return GResp(200, body)

    def _check_place_read(self, req: GReq) -> None:
        # List places: Place.Read.All (delegated and application), Place.ReadWrite.All higher:
        # https://learn.microsoft.com/en-us/graph/api/place-list?view=graph-rest-1.0
        if not self._scopes(req) & {"Place.Read.All", "Place.ReadWrite.All"}:
            raise access_denied()

    def _rooms(self) -> list[User]:
        return sorted((u for u in self.store.users.values() if u.kind == "room"), key=lambda u: u.display_name)

    def _room_lists(self) -> dict[str, list[User]]:
        lists: dict[str, list[User]] = {}
        for u in self._rooms():
            address = (u.room or {}).get("roomList")
            if address:
                lists.setdefault(address.lower(), []).append(u)
        return lists

    def _list_json(self, address: str, members: list[User]) -> dict:
        name = next(((u.room or {}).get("roomListName") for u in members if (u.room or {}).get("roomListName")), None)
        return room_list_json((members[0].room or {}).get("roomList") or address, display_name=name)

    def _page_of(self, req: GReq, items: list, allowed: frozenset, type_name: str, context: str) -> GResp:
        sel = check_select(select_fields(req), allowed, type_name)
        test = compile_filter(req.q("filter"))
        if test:
            items = [i for i in items if test(i)]
        if sel:
            keep = set(sel) | {"id", "@odata.type"}
            items = [{k: v for k, v in i.items() if k in keep} for i in items]
        # "By default, this operation returns 100 places per page" (List places, above).
        return GResp(200, page(req, items, 100, context))

    def list_places(self, req: GReq, kind: str) -> GResp:
        self._check_place_read(req)
        if kind == "room":
            items = [room_json(u) for u in self._rooms()]
            return self._page_of(req, items, ROOM_PROPERTIES, "room", f"{req.base}/v1.0/$metadata#places/microsoft.graph.room")
        items = [self._list_json(address, members) for address, members in sorted(self._room_lists().items())]
        return self._page_of(req, items, ROOM_LIST_PROPERTIES, "roomList", f"{req.base}/v1.0/$metadata#places/microsoft.graph.roomList")

    def list_rooms_in(self, req: GReq, key: str) -> GResp:
        """The rooms of one room list, named by its email address:
        ``GET /places/{roomlist-emailaddress}/microsoft.graph.roomlist/rooms`` (List places,
        "List rooms contained in a room list"); ``/places/{id}/rooms`` is the roomList's
        ``rooms`` navigation property:
        https://learn.microsoft.com/en-us/graph/api/resources/roomlist?view=graph-rest-1.0"""
        self._check_place_read(req)
        members = self._room_lists().get(key.strip("'").lower())
        if members is None:
            raise item_not_found()
        items = [room_json(u) for u in members]
        return self._page_of(req, items, ROOM_PROPERTIES, "room", f"{req.base}/v1.0/$metadata#places('{key}')/microsoft.graph.roomList/rooms")

    def _find_place(self, key: str) -> tuple[User | None, str | None]:
        key = key.strip("'")
        room = self.store.find_user(key)
        if room is not None and room.kind == "room":
            return room, None
        lists = self._room_lists()
        if key.lower() in lists:
            return None, key.lower()
        raise item_not_found()

    def get_place(self, req: GReq, key: str) -> GResp:
        """Get place: ``GET /places/{id | emailAddress}``:
        https://learn.microsoft.com/en-us/graph/api/place-get?view=graph-rest-1.0"""
        self._check_place_read(req)
        room, address = self._find_place(key)
        body = room_json(room) if room is not None else self._list_json(address, self._room_lists()[address])
        return GResp(200, {"@odata.context": f"{req.base}/v1.0/$metadata#places/$entity", **body})

    def update_place(self, req: GReq, key: str) -> GResp:
        """Update place: ``PATCH /places/{id}``, Place.ReadWrite.All only (delegated or
        application; Place.Read.All is not enough). The body names the type in
        ``@odata.type`` and carries only the properties to change; the room's updatable ones
        are the table's (address, audioDeviceName, bookingType, building, capacity,
        displayDeviceName, floorLabel, floorNumber, geoCoordinates, isWheelChairAccessible,
        label, nickname, phone, tags, videoDeviceName): the rest (id, emailAddress,
        displayName ...) can't be set here; 200 with the updated place:
        https://learn.microsoft.com/en-us/graph/api/place-update?view=graph-rest-1.0"""
        if "Place.ReadWrite.All" not in self._scopes(req):
            raise access_denied()
        room, address = self._find_place(key)
        payload = req.json()
        if not isinstance(payload, dict):
            raise invalid_request("The request body must be a JSON object.")
        kind = str(payload.get("@odata.type") or "").lstrip("#").lower()
        expected = "microsoft.graph.room" if room is not None else "microsoft.graph.roomlist"
        if kind != expected:
            raise invalid_request(f"The @odata.type of the request body must be '{expected}' for this place.")
        allowed = ROOM_UPDATABLE if room is not None else ROOM_LIST_UPDATABLE
        fields = {k: v for k, v in payload.items() if k != "@odata.type"}
        refused = sorted(set(fields) - allowed)
        if refused:
            raise invalid_request(f"Property '{refused[0]}' can't be updated on a place of type '{expected}'.")
        bad = _place_type_error(fields)
        if bad:
            raise invalid_request(bad)
        if room is None:
            for member in self._room_lists()[address]:
                member.room.update({"roomList" + ("Name" if k == "displayName" else k[0].upper() + k[1:]): v for k, v in fields.items()})
            return GResp(200, {"@odata.context": f"{req.base}/v1.0/$metadata#places/$entity",
                               **self._list_json(address, self._room_lists()[address])})
        room.room = {**(room.room or {}), **fields}
        return GResp(200, {"@odata.context": f"{req.base}/v1.0/$metadata#places/$entity", **room_json(room)})

    def calendar_resource(self, req: GReq, target: User) -> GResp:
        return GResp(200, {
            "@odata.context": f"{req.base}/v1.0/$metadata#users('{target.id}')/calendar/$entity",
            "id": self.calendar_id(target), "name": "Calendar", "color": "auto", "hexColor": "",
            "isDefaultCalendar": True, "changeKey": "DxYSthXJXEWwAQSYQnXvIgAAIxGttg==", "canShare": True,
            "canViewPrivateItems": True, "canEdit": True,
            # Per mailbox (seedable), as an admin sets them up:
            # https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings
            "allowedOnlineMeetingProviders": list(target.allowed_online_meeting_providers),
            "defaultOnlineMeetingProvider": target.default_online_meeting_provider, "isTallyingResponses": True, "isRemovable": False,
            "owner": {"name": target.display_name, "address": target.upn},
        })

    @staticmethod
    def calendar_id(target: User) -> str:
        return "AAMkCal" + target.id.replace("-", "")

    # -- events -------------------------------------------------------------------------------
    @staticmethod
    def _check_id(event_id: str) -> None:
        """Graph tells an id it can't parse (400 ErrorInvalidIdMalformed) from one it can't find
        (404 ErrorItemNotFound); only ids of the shape Exchange issues are looked up:
        https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0 (id) and
        https://learn.microsoft.com/en-us/graph/errors"""
        if parse_occurrence_id(event_id) is not None:
            return
        try:
            raw = base64.urlsafe_b64decode(event_id.encode() + b"=" * (-len(event_id) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if not re.fullmatch(r"[A-Za-z0-9_\-]+={0,2}", event_id) or len(raw) != 48 or not raw.startswith(b"\x00\x00\x00\x00"):
            raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")

    def find_event(self, target: User, event_id: str) -> tuple[Event, object]:
        """(master or single event, occurrence date or None); 404 ErrorItemNotFound if absent."""
        self._check_id(event_id)
        mb = self.store.mailboxes[target.id]
        ev = mb.events.get(event_id)
        if ev is not None:
            return ev, None
        occ = parse_occurrence_id(event_id)
        if occ is not None:
            master = mb.events.get(occ[0])
            if master is not None and occurrence(master, occ[1]) is not None:
                return master, occ[1]
        raise item_not_found()

    def _etag_check(self, req: GReq, ev: Event, day) -> None:
        want = req.headers.get("If-Match")
        if not want or want.strip() == "*":
            return
        current = ev.change_key
        if day is not None and day.isoformat() in ev.exceptions:
            current = ev.exceptions[day.isoformat()].get("change_key", current)
        tags = [t.strip() for t in want.split(",")]
        if not any(t in (f'W/"{current}"', f'"{current}"', current) for t in tags):
            raise GraphError(412, "ErrorIrresolvableConflict",
                             "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.")

    def _event_context(self, req: GReq, target: User, single: bool) -> str:
        suffix = "/$entity" if single else ""
        return f"{req.base}/v1.0/$metadata#users('{quote(target.upn)}')/events{suffix}"

    def list_events(self, req: GReq, target: User) -> GResp:
        tz, headers = preferences(req)
        events = sorted(self.store.mailboxes[target.id].events.values(), key=lambda e: (e.created, e.id))
        sel = self._event_select(req)
        expand = self._expand(req)
        items = [self._with_expand(event_view(self.store, req, target, e, tz), e, expand) for e in events]
        test = compile_filter(req.q("filter"))
        if test:
            items = [i for i in items if test(i)]
        items = order(req, items)
        if sel:
            keep = set(sel) | {"id", "@odata.etag"}
            items = [{k: v for k, v in i.items() if k in keep} for i in items]
        body = page(req, items, int(self.store.config["page_size"]), self._event_context(req, target, False))
        return GResp(200, body, headers)

    def calendar_view(self, req: GReq, target: User) -> GResp:
        start = parse_query_instant(req.q("startDateTime") or req.query.get("StartDateTime"), "startDateTime")
        end = parse_query_instant(req.q("endDateTime") or req.query.get("EndDateTime"), "endDateTime")
        if end < start:
            raise GraphError(400, "ErrorInvalidParameter", "The parameter 'EndDateTime' must be later than 'StartDateTime'.")
        tz, headers = preferences(req)
        sel = self._event_select(req)
        items = [event_view(self.store, req, target, i, tz) for i in view_instances(self.store, target, start, end)]
        test = compile_filter(req.q("filter"))
        if test:
            items = [i for i in items if test(i)]
        items = order(req, items)
        if sel:
            keep = set(sel) | {"id", "@odata.etag"}
            items = [{k: v for k, v in i.items() if k in keep} for i in items]
        context = f"{req.base}/v1.0/$metadata#users('{quote(target.upn)}')/calendarView"
        return GResp(200, page(req, items, int(self.store.config["page_size"]), context), headers)

    def event_instances(self, req: GReq, target: User, event_id: str) -> GResp:
        ev, day = self.find_event(target, event_id)
        start = parse_query_instant(req.q("startDateTime"), "startDateTime")
        end = parse_query_instant(req.q("endDateTime"), "endDateTime")
        tz, headers = preferences(req)
        insts = [i for i in instances(ev, start, end) if ev.recurrence is not None]
        sel = self._event_select(req)
        items = [event_view(self.store, req, target, i, tz, sel) for i in insts]
        context = f"{req.base}/v1.0/$metadata#users('{quote(target.upn)}')/events('{ev.id}')/instances"
        return GResp(200, page(req, items, int(self.store.config["page_size"]), context), headers)

    def get_event(self, req: GReq, target: User, event_id: str) -> GResp:
        ev, day = self.find_event(target, event_id)
        tz, headers = preferences(req)
        sel, expand = self._event_select(req), self._expand(req)
        inst = occurrence(ev, day) if day is not None else ev
        view = self._with_expand(event_view(self.store, req, target, inst, tz, sel), ev if day is None else None, expand)
        body = {"@odata.context": self._event_context(req, target, True), **view}
        return GResp(200, body, headers)

    def _event_select(self, req: GReq) -> list[str] | None:
        return check_select(select_fields(req), EVENT_PROPERTIES, "event")

    @staticmethod
    def _expand(req: GReq) -> tuple[bool, str | None] | None:
        """``$expand=singleValueExtendedProperties($filter=id eq '...')``, the one expansion the emulator
        serves (extended properties are returned only when expanded):
        https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get?view=graph-rest-1.0
        Anything else is refused as Graph refuses what it can't parse."""
        raw = req.q("expand")
        if not raw:
            return None
        m = _EXPAND_SVEP.match(raw.strip())
        if not m:
            raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: the emulator expands only singleValueExtendedProperties.")
        return True, (m.group(1).replace("''", "'") if m.group(1) is not None else None)

    @staticmethod
    def _with_expand(view: dict, ev: Event | None, expand) -> dict:
        if expand is None or ev is None:
            return view
        wanted = expand[1]
        props = [dict(p) for p in ev.extended_properties if wanted is None or extended_property_key(p["id"]) == extended_property_key(wanted)]
        if props:
            view["singleValueExtendedProperties"] = props
        return view

    def create_event(self, req: GReq, target: User) -> GResp:
        payload = req.json()
        ev, _created = self.ctx.calendar.create(target, payload)
        tz, headers = preferences(req)
        body = {"@odata.context": self._event_context(req, target, True), **event_view(self.store, req, target, ev, tz or ev.start_tz)}
        headers["Location"] = f"{req.base}/v1.0/Users('{target.id}')/Events('{ev.id}')"
        return GResp(201, body, headers)

    def patch_event(self, req: GReq, target: User, event_id: str) -> GResp:
        ev, day = self.find_event(target, event_id)
        self._etag_check(req, ev, day)
        payload = req.json()
        self.ctx.calendar.update(target, ev, payload, day)
        tz, headers = preferences(req)
        inst = occurrence(ev, day) if day is not None else ev
        body = {"@odata.context": self._event_context(req, target, True), **event_view(self.store, req, target, inst, tz or ev.start_tz)}
        return GResp(200, body, headers)

    def delete_event(self, req: GReq, target: User, event_id: str) -> GResp:
        ev, day = self.find_event(target, event_id)
        self._etag_check(req, ev, day)
        self.ctx.calendar.delete(target, ev, day)
        return GResp(204, None)

    def event_action(self, req: GReq, target: User, event_id: str, action: str) -> GResp:
        ev, day = self.find_event(target, event_id)
        payload = {}
        if req.body and req.body.strip():
            payload = req.json()
            if not isinstance(payload, dict):
                raise GraphError(400, "UnableToDeserializePostBody", "Request body must be a JSON object.")
        self._etag_check(req, ev, day)
        action_l = action.lower()
        if action_l == "cancel":
            comment = payload.get("Comment", payload.get("comment"))
            if comment is not None and not isinstance(comment, str):
                raise GraphError(400, "UnableToDeserializePostBody", "Comment must be a string.")
            self.ctx.calendar.cancel(target, ev, comment, day)
            return GResp(202, None)
        send = payload.get("sendResponse", payload.get("SendResponse", True))
        if not isinstance(send, bool):
            raise GraphError(400, "UnableToDeserializePostBody", "sendResponse must be a boolean.")
        name = {"accept": "accept", "decline": "decline", "tentativelyaccept": "tentativelyAccept"}[action_l]
        proposed = proposed_time(payload.get("proposedNewTime"))
        # On an occurrence's id the answer is that occurrence's alone (Calendar.respond).
        self.ctx.calendar.respond(target, ev, name, send, day=day, proposed=proposed)
        return GResp(202, None)


def proposed_time(value) -> dict | None:
    """``proposedNewTime`` of decline / tentativelyAccept: a timeSlot ({start, end} dateTimeTimeZone),
    returned to the organizer as given (UTC):
    https://learn.microsoft.com/en-us/graph/api/resources/timeslot?view=graph-rest-1.0"""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("start"), dict) or not isinstance(value.get("end"), dict):
        raise GraphError(400, "UnableToDeserializePostBody", "proposedNewTime must be a timeSlot with a start and an end.")
    start, _ = parse_datetime_tz(value["start"], "start")
    end, _ = parse_datetime_tz(value["end"], "end")
    if end <= start:
        raise invalid_request("Your request can't be completed. The proposed end time must be after the proposed start time.")
    return {"start": {"dateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
            "end": {"dateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}}


def _place_type_error(fields: dict) -> str:
    """Graph rejects a value of the wrong EDM type (Int32, Boolean, String collection ...)."""
    for name, value in fields.items():
        want = _PLACE_TYPES.get(name, str)
        if value is None and name not in ("capacity", "isWheelChairAccessible"):
            continue
        if want is int and (isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31):
            return f"Cannot convert the literal '{value}' to the expected type 'Edm.Int32'."
        if want is not int and not isinstance(value, want):
            return f"The value of property '{name}' has the wrong type."
        if want is list and not all(isinstance(t, str) for t in value):
            return "Property 'tags' must be a collection of strings."
        if name == "bookingType" and value not in ("unknown", "standard", "reserved"):
            return f"Requested value '{value}' was not found for bookingType."
    return ""
