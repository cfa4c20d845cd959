"""Graph JSON for events, users and rooms (Microsoft's documented property sets)."""

from __future__ import annotations

import html
import re
from datetime import datetime

from .model import Event, Instance, Store, User
from .timeutil import fmt_local, fmt_z

_TAG = re.compile(r"<[^>]+>")


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
        "transactionId": ev.transaction_id if not occ else None,
        "originalStartTimeZone": ev.start_tz,
        "originalEndTimeZone": ev.end_tz,
        "iCalUId": ev.ical_uid if not occ else ev.ical_uid + inst.day.strftime("%Y%m%d"),
        "uid": ev.ical_uid,
        "reminderMinutesBeforeStart": ev.reminder_minutes,
        "isReminderOn": ev.is_reminder_on,
        "hasAttachments": False,
        "subject": override.get("subject", ev.subject),
        "bodyPreview": body_preview(body),
        "importance": ev.importance,
        "sensitivity": ev.sensitivity,
        "isAllDay": ev.is_all_day,
        "isCancelled": ev.is_cancelled,
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
        "occurrenceId": None,
        "isDraft": False,
        "hideAttendees": ev.hide_attendees,
        "responseStatus": dict(ev.response),
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


def room_json(u: User) -> dict:
    r = u.room or {}
    return {
        "@odata.type": "#microsoft.graph.room",
        "id": u.id,
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
        "isManaged": True,
        "isWheelChairAccessible": r.get("isWheelChairAccessible", False),
        "bookingType": r.get("bookingType", "standard"),
        "tags": r.get("tags", []),
        "audioDeviceName": r.get("audioDeviceName"),
        "videoDeviceName": r.get("videoDeviceName"),
        "displayDeviceName": r.get("displayDeviceName"),
    }
