"""Graph JSON for events, users and rooms (Microsoft's documented property sets)."""

from __future__ import annotations

import html
import re
from datetime import datetime

from .errors import GraphError
from .model import Event, Instance, Store, User
from .timeutil import fmt_local, fmt_z

_TAG = re.compile(r"<[^>]+>")

# The structural properties of Graph v1.0's types as Microsoft's metadata names them (the CSDL
# ../shared/graph/v1.0-cleanMetadata.xml; tests/test_graph_schema.py checks these lists against the
# project's extract of it). No beta-only name (``uid``, ``occurrenceId``) is served or selectable:
# https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0
EVENT_PROPERTIES = frozenset({
    "id", "categories", "changeKey", "createdDateTime", "lastModifiedDateTime", "allowNewTimeProposals", "attendees",
    "body", "bodyPreview", "cancelledOccurrences", "end", "hasAttachments", "hideAttendees", "iCalUId", "importance",
    "isAllDay", "isCancelled", "isDraft", "isOnlineMeeting", "isOrganizer", "isReminderOn", "location", "locations",
    "onlineMeeting", "onlineMeetingProvider", "onlineMeetingUrl", "organizer", "originalEndTimeZone", "originalStart",
    "originalStartTimeZone", "recurrence", "reminderMinutesBeforeStart", "responseRequested", "responseStatus",
    "sensitivity", "seriesMasterId", "showAs", "start", "subject", "transactionId", "type", "webLink",
})
USER_PROPERTIES = frozenset({
    "id", "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "accountEnabled", "mailNickname", "otherMails",
    "proxyAddresses", "usageLocation", "userType", "createdDateTime", "department", "companyName", "employeeId",
    "onPremisesSamAccountName", "onPremisesUserPrincipalName", "imAddresses", "country", "city", "state",
    "streetAddress", "postalCode", "faxNumber", "mailboxSettings", "identities", "externalUserState",
})
ROOM_PROPERTIES = frozenset({
    "id", "address", "displayName", "geoCoordinates", "isWheelChairAccessible", "label", "parentId", "phone", "placeId",
    "tags", "audioDeviceName", "bookingType", "building", "capacity", "displayDeviceName", "emailAddress", "floorLabel",
    "floorNumber", "nickname", "teamsEnabledState", "videoDeviceName",
})
ROOM_LIST_PROPERTIES = frozenset({
    "id", "address", "displayName", "geoCoordinates", "isWheelChairAccessible", "label", "parentId", "phone", "placeId",
    "tags", "emailAddress",
})


def check_select(select: list[str] | None, allowed: frozenset, type_name: str) -> list[str] | None:
    """Refuse a ``$select`` naming a property the v1.0 type lacks, as Graph does (400
    ``RequestBroker--ParseUri``, "Could not find a property named ..."; a beta-only name such as
    ``uid`` fails on v1.0 the same way): https://learn.microsoft.com/en-us/graph/query-parameters#select-parameter
    and https://github.com/microsoftgraph/microsoft-graph-docs/issues/2018. A cast prefix
    (``microsoft.graph.event/subject``) is accepted, as the SDKs send it."""
    if not select:
        return select
    out = []
    for name in select:
        bare = name.split("/", 1)[1] if "/" in name and name.split("/", 1)[0].lower() in (f"microsoft.graph.{type_name}".lower(), f"graph.{type_name}".lower()) else name
        if bare not in allowed:
            raise GraphError(400, "RequestBroker--ParseUri", f"Could not find a property named '{bare}' on type 'microsoft.graph.{type_name}'.")
        out.append(bare)
    return out


def body_preview(body: dict) -> str:
    text = body.get("content") or ""
    if (body.get("contentType") or "").lower() == "html":
        text = re.sub(r"(?is)<(script|style|head).*?</\1>", " ", text)
        text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())[:255]


def norm_body(body) -> dict:
    if not isinstance(body, dict):
        return {"contentType": "html", "content": ""}
    ctype = str(body.get("contentType") or "text").lower()
    content = body.get("content") or ""
    if ctype == "text":
        # Exchange stores HTML; it is returned as HTML unless Prefer: outlook.body-content-type="text"
        content = (
            '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'
            f"<body>\r\n{html.escape(content)}\r\n</body>\r\n</html>\r\n"
        )
    return {"contentType": "html", "content": content}


def location_json(loc: dict | None) -> dict:
    loc = loc or {}
    out = {
        "displayName": loc.get("displayName", ""),
        "locationType": loc.get("locationType", "default"),
        "uniqueId": loc.get("uniqueId", loc.get("displayName") or None),
        "uniqueIdType": loc.get("uniqueIdType", "private" if loc.get("displayName") else "unknown"),
    }
    if loc.get("locationEmailAddress"):
        out["locationEmailAddress"] = loc["locationEmailAddress"]
        out["locationType"] = loc.get("locationType", "conferenceRoom")
        out["uniqueIdType"] = loc.get("uniqueIdType", "directory")
    if loc.get("address"):
        out["address"] = loc["address"]
    if loc.get("coordinates"):
        out["coordinates"] = loc["coordinates"]
    if not loc:
        out = {"displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {}}
    return out


def event_json(store: Store, inst: Event | Instance, tz: str | None, base: str, owner: User,
               select: list[str] | None = None, body_text: bool = False) -> dict:
    if isinstance(inst, Event):
        inst = Instance(inst, None, inst.start, inst.end)
    ev, override = inst.event, inst.override or {}
    tz = tz or "UTC"
    occ = inst.day is not None
    change_key = override.get("change_key", ev.change_key)
    ev_type = "singleInstance"
    if ev.recurrence is not None:
        ev_type = "exception" if override else "occurrence"
    body = override.get("body", ev.body)
    if body_text:
        body = {"contentType": "text", "content": body_preview(body) if (body.get("content") or "").strip() else ""}
    location = override.get("location", ev.location)
    d = {
        "@odata.etag": f'W/"{change_key}"',
        "id": inst.id,
        "createdDateTime": fmt_z(ev.created),
        "lastModifiedDateTime": fmt_z(datetime.fromisoformat(override["modified"]) if "modified" in override else ev.modified),
        "changeKey": change_key,
        "categories": list(ev.categories),
        "originalStartTimeZone": ev.start_tz,
        "originalEndTimeZone": ev.end_tz,
        "iCalUId": ev.ical_uid if not occ else ev.ical_uid + inst.day.strftime("%Y%m%d"),
        "reminderMinutesBeforeStart": ev.reminder_minutes,
        "isReminderOn": ev.is_reminder_on,
        "hasAttachments": False,
        "subject": override.get("subject", ev.subject),
        "bodyPreview": body_preview(body),
        "importance": ev.importance,
        "sensitivity": ev.sensitivity,
        "isAllDay": ev.is_all_day,
        "isCancelled": override.get("is_cancelled", ev.is_cancelled),  # an occurrence cancelled for this attendee alone
        "isOrganizer": ev.is_organizer,
        "responseRequested": ev.response_requested,
        "seriesMasterId": ev.id if occ else None,
        "showAs": override.get("show_as", ev.show_as),
        "type": ev_type if occ or ev.recurrence is None else "seriesMaster",
        "webLink": f"https://outlook.office365.com/owa/?itemid={inst.id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": ev.is_online_meeting,
        "onlineMeetingProvider": ev.online_meeting_provider,
        "allowNewTimeProposals": ev.allow_new_time_proposals,
        "isDraft": False,
        "hideAttendees": ev.hide_attendees,
        # An attendee's answer to one occurrence is that occurrence's own (Calendar.respond).
        "responseStatus": dict(override.get("response", ev.response)),
        "body": dict(body),
        "start": fmt_local(inst.start, tz),
        "end": fmt_local(inst.end, tz),
        "location": location_json(location),
        "locations": [location_json(x) for x in override.get("locations", ev.locations)],
        "recurrence": ev.recurrence if not occ else None,
        "attendees": [dict(a) for a in override.get("attendees", ev.attendees)],
        "organizer": {"emailAddress": dict(ev.organizer)},
        "onlineMeeting": dict(ev.online_meeting) if ev.online_meeting else None,
    }
    # transactionId is the client's own idempotency key: Graph returns it only on the event it was
    # sent with, never null-filled, and never on the attendees' copies or occurrences:
    # https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0 (transactionId)
    if ev.transaction_id and not occ:
        d["transactionId"] = ev.transaction_id
    # A series master lists its cancelled occurrences ("OID.{masterId}.{date}"); the property is
    # non-nullable in v1.0's metadata. https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0
    if ev.recurrence is not None and not occ:
        d["cancelledOccurrences"] = [f"OID.{ev.id}.{day}" for day in sorted(ev.cancelled_dates)]
    elif select and "cancelledOccurrences" in select:
        d["cancelledOccurrences"] = []
    if occ:
        d["originalStart"] = fmt_z(inst.start if not override else datetime.fromisoformat(override.get("original_start", inst.start.isoformat())))
    d["@odata.context"] = None  # placeholder removed below; callers add the collection context
    del d["@odata.context"]
    if select:
        keep = {s.strip() for s in select if s.strip()} | {"id"}
        d = {k: v for k, v in d.items() if k in keep or k == "@odata.etag"}
    return d


def user_json(u: User, select: list[str] | None = None) -> dict:
    d = {
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": u.job_title,
        "mail": u.mail,
        "mobilePhone": None,
        "officeLocation": u.office_location,
        "preferredLanguage": "en-US",
        "surname": u.surname,
        "userPrincipalName": u.upn,
        "id": u.id,
    }
    if select:
        keep = {s.strip() for s in select} | {"id"}
        d = {k: v for k, v in d.items() if k in keep}
    return d


def room_json(u: User, select: list[str] | None = None) -> dict:
    """A room as v1.0's ``microsoft.graph.room`` has it: ``placeId`` and ``teamsEnabledState`` are
    v1.0 properties, ``isManaged`` is beta-only:
    https://learn.microsoft.com/en-us/graph/api/resources/room?view=graph-rest-1.0"""
    r = u.room or {}
    d = {
        "@odata.type": "#microsoft.graph.room",
        "id": u.id,
        "placeId": r.get("placeId", u.id),
        "parentId": r.get("parentId"),
        "emailAddress": u.upn,
        "displayName": u.display_name,
        "address": r.get("address", {}),
        "geoCoordinates": r.get("geoCoordinates"),
        "phone": r.get("phone", ""),
        "nickname": r.get("nickname", u.display_name),
        "label": r.get("label"),
        "capacity": r.get("capacity"),
        "building": r.get("building"),
        "floorLabel": r.get("floorLabel"),
        "floorNumber": r.get("floorNumber"),
        "isWheelChairAccessible": r.get("isWheelChairAccessible", False),
        "bookingType": r.get("bookingType", "standard"),
        "teamsEnabledState": r.get("teamsEnabledState", "unknown"),
        "tags": r.get("tags", []),
        "audioDeviceName": r.get("audioDeviceName"),
        "videoDeviceName": r.get("videoDeviceName"),
        "displayDeviceName": r.get("displayDeviceName"),
    }
    if select:
        keep = set(select) | {"id", "@odata.type"}
        d = {k: v for k, v in d.items() if k in keep}
    return d


def room_list_json(address: str, select: list[str] | None = None, *, display_name: str | None = None) -> dict:
    """A room list (``microsoft.graph.roomList``, v1.0's properties):
    https://learn.microsoft.com/en-us/graph/api/resources/roomlist?view=graph-rest-1.0"""
    d = {"@odata.type": "#microsoft.graph.roomList", "id": address, "placeId": address, "parentId": None,
         "displayName": display_name or "HQ rooms", "emailAddress": address, "address": {}, "geoCoordinates": None, "phone": None,
         "label": None, "isWheelChairAccessible": False, "tags": []}
    if select:
        keep = set(select) | {"id", "@odata.type"}
        d = {k: v for k, v in d.items() if k in keep}
    return d
