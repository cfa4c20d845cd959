"""Calendar operations: create/update/delete/cancel/respond, and the room's booking attendant.

Exchange semantics kept here:
1. A meeting lives in the organizer's mailbox; every invited user in the tenant
   gets a copy (own id, same iCalUId) in their mailbox, unanswered.
2. A room mailbox invited to a meeting is answered by its resource booking
   attendant: accept when the slot is free, decline on conflict (declined
   meetings are removed from the room's calendar); the organizer's copy then
   shows the room's response, with a new changeKey. A series with conflicting occurrences is
   accepted within the room's conflict allowance, those occurrences declined alone.
3. Updates by the organizer propagate to the copies (the room re-checks);
   a cancellation marks human copies cancelled and removes the room's copy.
   An attendee dropped from one occurrence of a series (its attendees changed alone)
   gets a cancellation of just that occurrence: a room's calendar frees that slot (the
   rest of the series stays) and the attendant no longer weighs it when the room
   re-checks the series; a person's copy shows the occurrence "Canceled:". A person
   added to one occurrence is invited to that occurrence alone.
4. Rescheduling a series (its master's start, end or recurrence pattern changes) discards
   its exceptions: moved and cancelled occurrences become plain ones again (Outlook warns
   "any exceptions associated with this recurring appointment will be lost"). Cutting
   only the range (a new end date or count) keeps them.
5. An attendee's accept / decline / tentativelyAccept on an occurrence's id answers that
   occurrence alone, with an optional ``proposedNewTime`` where the meeting allows it.

About 650 lines on purpose: these rules act on each other (an update re-runs the
attendant, a reschedule drops exceptions), so they stay in one file, in this order.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from urllib.parse import quote

from . import recurrence as rec
from .errors import GraphError, invalid_request
from .model import (
    Event,
    Store,
    User,
    extended_property_key,
    instances,
    new_change_key,
    new_event_id,
    new_ical_uid,
    occurrence,
)
from .serialize import norm_body
from .timeutil import ZERO_TIME, fmt_z, now, parse_datetime_tz

log = logging.getLogger("graph_emulator.calendar")

SHOW_AS = {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
IMPORTANCE = {"low", "normal", "high"}
SENSITIVITY = {"normal", "personal", "private", "confidential"}
ATTENDEE_TYPES = {"required", "optional", "resource"}
WRITABLE = {
    "subject", "body", "start", "end", "location", "locations", "attendees", "showAs", "importance", "sensitivity",
    "isAllDay", "categories", "recurrence", "transactionId", "allowNewTimeProposals", "responseRequested",
    "reminderMinutesBeforeStart", "isReminderOn", "hideAttendees", "isOnlineMeeting", "onlineMeetingProvider",
    "singleValueExtendedProperties",
}
IGNORED = {
    "@odata.type", "@odata.etag", "@odata.context", "id", "changeKey", "createdDateTime", "lastModifiedDateTime",
    "iCalUId", "organizer", "isOrganizer", "isCancelled", "responseStatus", "type", "seriesMasterId", "webLink",
    "bodyPreview", "hasAttachments", "originalStartTimeZone", "originalEndTimeZone", "isDraft", "onlineMeeting",
    "onlineMeetingUrl", "originalStart", "cancelledOccurrences",
}
# An extended property's id: "{type} {guid} Name {name}" or "{type} {guid} Id 0x{tag}" (or a bare
# "{type} 0x{tag}"): https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview?view=graph-rest-1.0
_PROP_ID = re.compile(r"^(String|Integer|Boolean|Double|SystemTime|Binary|Guid|Long|Short|Float|Currency|ApplicationTime|Object|CLSID)"
                      r"\s+(?:\{[0-9a-fA-F-]{36}\}\s+(?:Name\s+\S.*|Id\s+0x[0-9a-fA-F]{1,4})|0x[0-9a-fA-F]{1,4})$")
HORIZON = timedelta(days=180)  # the attendant's booking window (Exchange's default BookingWindowInDays)
COPIED = ("subject", "body", "start", "end", "start_tz", "end_tz", "is_all_day", "location", "locations", "attendees",
          "recurrence", "importance", "sensitivity", "hide_attendees", "allow_new_time_proposals", "exceptions",
          "cancelled_dates", "organizer", "is_online_meeting", "online_meeting_provider", "online_meeting")
ONLINE_MEETING_PROVIDERS = ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer")


def online_meeting_for(ev: Event, organizer: User, tenant_id: str) -> dict | None:
    """Graph's onlineMeeting (onlineMeetingInfo) once isOnlineMeeting and a provider are set:
    "After you set the isOnlineMeeting and onlineMeetingProvider properties to enable a meeting
    online, Microsoft Graph initializes onlineMeeting. When set, the meeting remains available
    online" (Microsoft Learn, "event resource type", Graph v1.0:
    https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0). A Teams
    join URL has the meetup-join shape, with the tenant and the organizer's object id."""
    if ev.online_meeting is not None:
        return ev.online_meeting  # made once; later changes don't remake it
    if not ev.is_online_meeting or ev.online_meeting_provider == "unknown":
        return None
    # Only a provider the organizer's calendar allows makes a meeting online
    # (allowedOnlineMeetingProviders: https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings).
    if ev.online_meeting_provider not in (organizer.allowed_online_meeting_providers or []):
        return None
    thread = secrets.token_hex(16)
    context = quote(json.dumps({"Tid": tenant_id, "Oid": organizer.id}, separators=(",", ":")), safe="")
    return {
        "joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context={context}",
        "conferenceId": str(secrets.randbelow(10**9)).zfill(9), "tollNumber": None, "tollFreeNumbers": [], "phones": [],
        "quickDial": None,
    }


def _attendee(store: Store, a) -> dict:
    if not isinstance(a, dict) or not isinstance(a.get("emailAddress"), dict) or not a["emailAddress"].get("address"):
        raise invalid_request("Each attendee requires an emailAddress with an address.")
    address = str(a["emailAddress"]["address"]).strip()
    user = store.find_user(address)
    kind = a.get("type") or "required"
    if kind not in ATTENDEE_TYPES:
        raise GraphError(400, "RequestBodyRead", f"Requested value '{kind}' was not found.")
    name = a["emailAddress"].get("name") or (user.display_name if user else address)
    status = a.get("status") or {}
    return {
        "type": kind,
        "status": {"response": status.get("response", "none") if isinstance(status, dict) else "none",
                   "time": status.get("time", ZERO_TIME) if isinstance(status, dict) else ZERO_TIME},
        "emailAddress": {"name": name, "address": user.upn if user else address},
    }


def _extended_properties(value) -> list[dict]:
    """singleValueExtendedProperties on create or update: each {"id", "value"} (strings), the id in
    one of the documented forms, else 400 as Exchange answers (ErrorInvalidExtendedProperty):
    https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties?view=graph-rest-1.0"""
    if not isinstance(value, list):
        raise GraphError(400, "RequestBodyRead", "singleValueExtendedProperties must be an array.")
    out = []
    for p in value:
        if not isinstance(p, dict) or set(p) - {"id", "value", "@odata.type"} or not isinstance(p.get("id"), str) \
                or not isinstance(p.get("value"), str):
            raise GraphError(400, "RequestBodyRead", "Each singleValueExtendedProperty needs a string id and a string value.")
        if not _PROP_ID.match(p["id"].strip()):
            raise GraphError(400, "ErrorInvalidExtendedProperty", "The extended property attribute combination is invalid.")
        out.append({"id": p["id"].strip(), "value": p["value"]})
    return out


def parse_fields(store: Store, payload, creating: bool) -> dict:
    """Validate a Graph event payload into Event attribute updates."""
    if not isinstance(payload, dict):
        raise GraphError(400, "UnableToDeserializePostBody", "Request body must be a JSON object.")
    out: dict = {}
    for key, value in payload.items():
        if key in IGNORED or key.startswith("@"):
            continue
        if key not in WRITABLE:
            raise GraphError(400, "RequestBodyRead",
                             f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type or mark the type as open type.")
        if key == "subject":
            out["subject"] = "" if value is None else str(value)
        elif key == "body":
            out["body"] = norm_body(value)
        elif key in ("start", "end"):
            dt, tz = parse_datetime_tz(value, key)
            out[key], out[f"{key}_tz"] = dt, tz
        elif key == "location":
            if value is not None and not isinstance(value, dict):
                raise GraphError(400, "RequestBodyRead", "location must be an object.")
            out["location"] = dict(value or {})
        elif key == "locations":
            if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
                raise GraphError(400, "RequestBodyRead", "locations must be an array of objects.")
            out["locations"] = [dict(x) for x in value]
        elif key == "attendees":
            if not isinstance(value, list):
                raise GraphError(400, "RequestBodyRead", "attendees must be an array.")
            seen, atts = set(), []
            for a in value:
                att = _attendee(store, a)
                if att["emailAddress"]["address"].lower() not in seen:
                    seen.add(att["emailAddress"]["address"].lower())
                    atts.append(att)
            out["attendees"] = atts
        elif key == "showAs":
            if value not in SHOW_AS:
                raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")
            out["show_as"] = value
        elif key == "importance":
            if value not in IMPORTANCE:
                raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")
            out["importance"] = value
        elif key == "sensitivity":
            if value not in SENSITIVITY:
                raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")
            out["sensitivity"] = value
        elif key == "recurrence":
            out["recurrence"] = None if value is None else rec.validate(value)
        elif key == "categories":
            if not isinstance(value, list):
                raise GraphError(400, "RequestBodyRead", "categories must be an array of strings.")
            out["categories"] = [str(x) for x in value]
        elif key == "singleValueExtendedProperties":
            out["extended_properties"] = _extended_properties(value)
        elif key == "transactionId":
            out["transaction_id"] = None if value is None else str(value)
        elif key in ("isAllDay", "allowNewTimeProposals", "responseRequested", "isReminderOn", "hideAttendees"):
            if not isinstance(value, bool):
                raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'.")
            attr = {"isAllDay": "is_all_day", "allowNewTimeProposals": "allow_new_time_proposals",
                    "responseRequested": "response_requested", "isReminderOn": "is_reminder_on",
                    "hideAttendees": "hide_attendees"}[key]
            out[attr] = value
        elif key == "isOnlineMeeting":
            if not isinstance(value, bool):
                raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'.")
            out["is_online_meeting"] = value
        elif key == "onlineMeetingProvider":
            if value not in ONLINE_MEETING_PROVIDERS:
                raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")
            out["online_meeting_provider"] = value
        elif key == "reminderMinutesBeforeStart":
            if not isinstance(value, int) or isinstance(value, bool):
                raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type 'Edm.Int32'.")
            out["reminder_minutes"] = value
    if creating and ("start" not in out or "end" not in out):
        raise invalid_request("Your request can't be completed. The start and end of the event are required.")
    return out


# Meeting messages (issue 16 item 6): what each attendee's inbox receives from the organizer,
# counted per attendee and kind ("invitation", "update", "cancellation"), read with
# GET /_emulator/messages. Exchange sends them when the organizer's event changes through Graph:
# - a create of an event with attendees invites them;
# - an update "that includes only the attendees property in the request body sends a meeting
#   update to only the attendees that have changed" (added: invited, removed: cancelled); any
#   other meeting property in the body (subject, body, times, location, recurrence...) sends the
#   update to every attendee, whether or not its value differs (Exchange does not compare: the
#   organizer "sends the update"):
#   https://learn.microsoft.com/en-us/graph/api/event-update?view=graph-rest-1.0
#   (Notes for updating specific properties; "For best performance you shouldn't include
#   existing values that haven't changed");
# - the organizer's own item properties (showAs, categories, reminders, extended properties)
#   are not part of the meeting request and send nothing;
# - cancel, and a delete of the meeting by its organizer, cancel it for every attendee:
#   https://learn.microsoft.com/en-us/graph/api/event-cancel?view=graph-rest-1.0 ,
#   https://learn.microsoft.com/en-us/graph/api/event-delete?view=graph-rest-1.0
PRIVATE_FIELDS = frozenset({"show_as", "categories", "reminder_minutes", "is_reminder_on", "extended_properties", "transaction_id"})


def _addresses(attendees) -> list[str]:
    return [a["emailAddress"]["address"].lower() for a in attendees or []]


class Calendar:
    def __init__(self, store: Store, defer: Callable[[float, Callable[[], None]], None]):
        self.store = store
        self.defer = defer

    # -- meeting messages ---------------------------------------------------------
    def _send(self, addresses, kind: str, organizer: str = "") -> None:
        for address in addresses:
            if address and address != organizer.lower():
                counts = self.store.messages.setdefault(address, {"invitation": 0, "update": 0, "cancellation": 0})
                counts[kind] += 1

    def _send_update(self, owner: User, fields: dict, before: list[str], after: list[str]) -> None:
        meeting_fields = set(fields) - PRIVATE_FIELDS
        if not meeting_fields:
            return
        added = [a for a in after if a not in before]
        removed = [a for a in before if a not in after]
        self._send(added, "invitation", owner.upn)
        self._send(removed, "cancellation", owner.upn)
        if meeting_fields != {"attendees"}:
            self._send([a for a in after if a in before], "update", owner.upn)

    # -- helpers ----------------------------------------------------------------
    def organizer_event(self, ev: Event) -> Event | None:
        org = self.store.find_user(ev.organizer.get("address", ""))
        if org is None:
            return None
        found = self.store.find_by_ical(org.id, ev.ical_uid)
        return found if found is not None and found.is_organizer else None

    def _check_times(self, ev_start: datetime, ev_end: datetime) -> None:
        if ev_end < ev_start:
            raise invalid_request("Your request can't be completed. The end time must be after the start time.")

    # -- create ------------------------------------------------------------------
    def create(self, owner: User, payload) -> tuple[Event, bool]:
        fields = parse_fields(self.store, payload, creating=True)
        mb = self.store.mailboxes[owner.id]
        txn = fields.get("transaction_id")
        if txn and self.store.config.get("transaction_dedupe", True) and txn in mb.transactions and mb.transactions[txn] in mb.events:
            return mb.events[mb.transactions[txn]], False
        self._check_times(fields["start"], fields["end"])
        t = now()
        ev = Event(id=new_event_id(owner.id), mailbox=owner.id, change_key=new_change_key(), ical_uid=new_ical_uid(),
                   created=t, modified=t, start=fields["start"], end=fields["end"])
        for k, v in fields.items():
            setattr(ev, k, v)
        ev.organizer = {"name": owner.display_name, "address": owner.upn}
        ev.online_meeting = online_meeting_for(ev, owner, self.store.tenant_id)
        ev.is_organizer = True
        ev.response = {"response": "organizer", "time": ZERO_TIME}
        ev.attendees = [a for a in ev.attendees if a["emailAddress"]["address"].lower() != owner.upn.lower()]
        for a in ev.attendees:
            a["status"] = {"response": "none", "time": ZERO_TIME}
        if "location" not in fields and ev.locations:
            ev.location = dict(ev.locations[0])
        if ev.location and not ev.locations:
            ev.locations = [dict(ev.location)]
        self.store.put_event(ev, "created")
        if txn:
            mb.transactions[txn] = ev.id
        self._send(_addresses(ev.attendees), "invitation", owner.upn)
        self._schedule_propagation(ev, [])
        return ev, True

    # -- propagation and the attendant --------------------------------------------
    def _schedule_propagation(self, ev: Event, old_attendees: list) -> None:
        mailbox, event_id = ev.mailbox, ev.id
        old = [dict(a) for a in old_attendees]
        self.defer(float(self.store.config.get("attendant_delay_seconds") or 0), lambda: self.propagate(mailbox, event_id, old))

    def propagate(self, mailbox: str, event_id: str, old_attendees: list) -> None:
        mb = self.store.mailboxes.get(mailbox)
        ev = mb.events.get(event_id) if mb else None
        if ev is None or not ev.is_organizer or ev.is_cancelled:
            return
        current = {a["emailAddress"]["address"].lower() for a in ev.attendees}
        for a in old_attendees:
            address = a["emailAddress"]["address"].lower()
            user = self.store.find_user(address)
            if address not in current and user is not None and user.id != ev.mailbox:
                self._cancel_copy(user, ev)
        for a in list(ev.attendees):
            user = self.store.find_user(a["emailAddress"]["address"])
            if user is None or user.id == ev.mailbox:
                continue
            if user.kind == "room":
                self.attendant(user, ev)
            else:
                self._upsert_copy(user, ev, None)
        if ev.recurrence is not None:
            self._invite_to_occurrences(ev, current)

    def _invite_to_occurrences(self, ev: Event, series_attendees: set[str]) -> None:
        """People added to one occurrence alone get an invitation to that occurrence only: a
        meeting of its own in their calendar (the occurrence's slot, subject and iCalUId); taken
        off it again, that copy is cancelled for them ("Canceled: ..."), as Outlook sends them a
        cancellation. Rooms are left to the series' attendant.
        https://support.microsoft.com/en-us/office/schedule-repeating-appointments-as-recurring-events-in-outlook-a3d5feb9-cb27-4b7c-b26e-21bd8a8c57a6"""
        for key, override in list(ev.exceptions.items()):
            if "attendees" not in override and not override.get("invited_alone"):
                continue
            day = date.fromisoformat(key)
            inst = occurrence(ev, day)
            listed = {a["emailAddress"]["address"].lower(): a for a in override.get("attendees", [])}
            alone = {address for address in listed if address not in series_attendees}
            people = {address for address in alone if (u := self.store.find_user(address)) is not None and u.kind != "room" and u.id != ev.mailbox}
            occ_uid = ev.ical_uid + day.strftime("%Y%m%d")
            for address in sorted(set(override.get("invited_alone", [])) - people):
                user = self.store.find_user(address)
                copy = self.store.find_by_ical(user.id, occ_uid) if user is not None else None
                if copy is not None:
                    self._cancel_copy(user, copy)
            if inst is not None:
                for address in sorted(people):
                    self._occurrence_copy(self.store.find_user(address), ev, inst, occ_uid)
            ev.exceptions[key] = {**override, "invited_alone": sorted(people)}

    def _occurrence_copy(self, user: User, org: Event, inst, occ_uid: str) -> None:
        copy = self.store.find_by_ical(user.id, occ_uid)
        t = now()
        created = copy is None
        if copy is None:
            copy = Event(id=new_event_id(user.id), mailbox=user.id, change_key=new_change_key(), ical_uid=occ_uid,
                         created=t, modified=t, start=inst.start, end=inst.end)
            copy.is_organizer = False
            copy.response = {"response": "notResponded", "time": ZERO_TIME}
            copy.show_as = "tentative"
        override = inst.override or {}
        copy.start, copy.end, copy.start_tz, copy.end_tz = inst.start, inst.end, org.start_tz, org.end_tz
        copy.subject = override.get("subject", org.subject)
        copy.body = dict(override.get("body", org.body))
        copy.location = dict(override.get("location", org.location))
        copy.locations = [dict(x) for x in override.get("locations", org.locations)]
        copy.attendees = [dict(a) for a in override.get("attendees", org.attendees)]
        copy.organizer = dict(org.organizer)
        copy.is_cancelled = False
        copy.bump()
        self.store.put_event(copy, "created" if created else "updated")

    def _upsert_copy(self, user: User, org: Event, response: str | None, show_as: str | None = None,
                     declined_days: set | frozenset = frozenset()) -> Event:
        copy = self.store.find_by_ical(user.id, org.ical_uid)
        created = copy is None
        t = now()
        if copy is None:
            copy = Event(id=new_event_id(user.id), mailbox=user.id, change_key=new_change_key(), ical_uid=org.ical_uid,
                         created=t, modified=t, start=org.start, end=org.end)
            copy.is_organizer = False
            copy.response = {"response": "notResponded", "time": ZERO_TIME}
            copy.show_as = "tentative"
            copy.transaction_id = None
        for attr in COPIED:
            value = getattr(org, attr)
            setattr(copy, attr, [dict(x) for x in value] if isinstance(value, list) and value and isinstance(value[0], dict)
                    else (dict(value) if isinstance(value, dict) else (list(value) if isinstance(value, list) else value)))
        # Occurrences this user was dropped from were cancelled for them alone: a room's calendar
        # loses them (as it loses the occurrences it declined); a person's shows the cancellation
        # ("Canceled: ...", free) until they remove it, as Outlook shows a cancelled occurrence.
        dropped = dropped_days(org, user.upn)
        if user.kind == "room":
            copy.cancelled_dates = sorted(set(org.cancelled_dates) | dropped | set(declined_days))
        else:
            copy.cancelled_dates = sorted(set(org.cancelled_dates) | set(declined_days))
            for key in dropped:
                override = dict(copy.exceptions.get(key, {}))
                subject = override.get("subject", org.subject)
                override.update(subject=subject if subject.startswith("Canceled: ") else "Canceled: " + subject,
                                is_cancelled=True, show_as="free", change_key=new_change_key(), modified=now().isoformat())
                copy.exceptions[key] = override
        copy.is_cancelled = False
        if response is not None:
            copy.response = {"response": response, "time": fmt_z(t) if response != "notResponded" else ZERO_TIME}
        if show_as is not None:
            copy.show_as = show_as
        elif copy.response["response"] in ("accepted",):
            copy.show_as = org.show_as
        copy.bump()
        self.store.put_event(copy, "created" if created else "updated")
        return copy

    def _cancel_copy(self, user: User, org: Event) -> None:
        copy = self.store.find_by_ical(user.id, org.ical_uid)
        if copy is None:
            return
        if user.kind == "room":
            self.store.remove_event(copy)  # the attendant removes cancelled meetings from the room's calendar
            return
        if not copy.is_cancelled:
            copy.is_cancelled = True
            if not copy.subject.startswith("Canceled: "):
                copy.subject = "Canceled: " + copy.subject
            copy.show_as = "free"
            copy.bump()
            self.store.put_event(copy, "updated")

    def room_conflicts(self, room: User, org: Event) -> tuple[int, set]:
        """(occurrences asked for, those that collide with the room's other meetings: their days
        "YYYY-MM-DD", or {None} for a single meeting that collides)."""
        start = org.start
        window_end = org.end if org.recurrence is None else start + HORIZON
        dropped = dropped_days(org, room.upn)
        wanted = [i for i in instances(org, start - timedelta(days=1), window_end + timedelta(days=1))
                  if i.day is None or i.day.isoformat() not in dropped]
        if not wanted:
            return 0, set()
        lo, hi = min(i.start for i in wanted), max(i.end for i in wanted)
        clashing: set = set()
        for other in self.store.mailboxes[room.id].events.values():
            if other.ical_uid == org.ical_uid or other.is_cancelled:
                continue
            for busy in instances(other, lo, hi + timedelta(seconds=1)):
                if busy.show_as == "free":
                    continue
                for w in wanted:
                    if busy.start < w.end and w.start < busy.end:
                        clashing.add(w.day.isoformat() if w.day is not None else None)
        return len(wanted), clashing

    def room_is_free(self, room: User, org: Event) -> bool:
        return not self.room_conflicts(room, org)[1]

    def attendant(self, room: User, org: Event) -> None:
        """Exchange's resource booking attendant for one meeting request.

        A recurring request with conflicting occurrences is accepted when the conflicts stay within
        the room's allowance (Set-CalendarProcessing ``MaximumConflictInstances`` and
        ``ConflictPercentageAllowed``, both 0 by default): the room then declines just those
        occurrences (they leave its calendar; the organizer's occurrence shows the room's decline)
        and accepts the rest; beyond it the whole series is declined.
        https://learn.microsoft.com/en-us/powershell/module/exchange/set-calendarprocessing"""
        if not room.auto_accept:
            existing = self.store.find_by_ical(room.id, org.ical_uid)
            self._upsert_copy(room, org, None if existing else "notResponded")
            return
        asked, clashing = self.room_conflicts(room, org)
        within = bool(clashing) and org.recurrence is not None and None not in clashing and (
            len(clashing) <= room.maximum_conflict_instances and len(clashing) * 100 <= room.conflict_percentage_allowed * asked)
        if not clashing and room.booking_delegates:
            self._forward_to_delegates(room, org)
            return
        if not clashing or within:
            self._upsert_copy(room, org, "accepted", show_as="busy", declined_days=clashing)
            self.set_attendee_status(org, room.upn, "accepted")
            for day in sorted(clashing):
                self.set_occurrence_status(org, date.fromisoformat(day), room.upn, "declined")
        else:
            copy = self.store.find_by_ical(room.id, org.ical_uid)
            if copy is not None:
                self.store.remove_event(copy)
            self.set_attendee_status(org, room.upn, "declined")

    def _forward_to_delegates(self, room: User, org: Event) -> None:
        """A room whose bookings its delegates approve (``User.booking_delegates``). Exchange's
        resource booking attendant still declines a conflict (above); a free slot's request is
        forwarded to the delegates, the meeting is put on the room's calendar tentatively
        (AddNewRequestsTentatively, on by default) and the organizer gets a tentative answer
        ("your request is awaiting approval"). A delegate then accepts or declines the room's
        copy (POST /users/{room}/events/{id}/accept | decline, ``respond``), which answers the
        organizer. A change that keeps the slot leaves an approval already given standing;
        a new slot needs a new approval.
        https://learn.microsoft.com/powershell/module/exchange/set-calendarprocessing
        (-AllBookInPolicy, -AllRequestInPolicy, -ResourceDelegates, -ForwardRequestsToDelegates,
        -AddNewRequestsTentatively);
        https://learn.microsoft.com/exchange/recipients-in-exchange-online/manage-resource-mailboxes
        (booking delegates); https://learn.microsoft.com/graph/api/event-tentativelyaccept."""
        existing = self.store.find_by_ical(room.id, org.ical_uid)
        if (existing is not None and existing.response.get("response") == "accepted"
                and existing.start == org.start and existing.end == org.end):
            self._upsert_copy(room, org, None, show_as="busy")
            return
        self._upsert_copy(room, org, "tentativelyAccepted", show_as="tentative")
        self.set_attendee_status(org, room.upn, "tentativelyAccepted")

    def set_attendee_status(self, org: Event, address: str, response: str, proposed: dict | None = None) -> None:
        live = self.store.mailboxes[org.mailbox].events.get(org.id)
        if live is None or live.is_cancelled:
            return
        for a in live.attendees:
            if a["emailAddress"]["address"].lower() == address.lower():
                a["status"] = {"response": response, "time": fmt_z(now())}
                _propose(a, proposed)
                live.bump()
                self.store.put_event(live, "updated")
                return

    # -- update ------------------------------------------------------------------
    def update(self, owner: User, ev: Event, payload, day=None) -> Event:
        fields = parse_fields(self.store, payload, creating=False)
        fields.pop("transaction_id", None)
        if day is not None:
            return self._update_occurrence(owner, ev, day, fields)
        old_attendees = [dict(a) for a in ev.attendees]
        start, end = fields.get("start", ev.start), fields.get("end", ev.end)
        self._check_times(start, end)
        if "attendees" in fields and ev.is_organizer:
            previous = {a["emailAddress"]["address"].lower(): a["status"] for a in ev.attendees}
            fields["attendees"] = [a for a in fields["attendees"] if a["emailAddress"]["address"].lower() != owner.upn.lower()]
            for a in fields["attendees"]:
                a["status"] = previous.get(a["emailAddress"]["address"].lower(), {"response": "none", "time": ZERO_TIME})
        if "extended_properties" in fields:  # an update sets the properties it names, the others stay
            merged = {extended_property_key(p["id"]): p for p in ev.extended_properties}
            merged.update({extended_property_key(p["id"]): p for p in fields["extended_properties"]})
            fields["extended_properties"] = list(merged.values())
        reschedules = ev.recurrence is not None and _reschedules_series(ev, fields)
        if ev.online_meeting is not None:  # once online, Graph keeps it so
            fields.pop("is_online_meeting", None)
            fields.pop("online_meeting_provider", None)
        for k, v in fields.items():
            setattr(ev, k, v)
        ev.online_meeting = online_meeting_for(ev, owner, self.store.tenant_id)
        if reschedules:
            ev.exceptions, ev.cancelled_dates = {}, []
        if "location" in fields and "locations" not in fields:
            ev.locations = [dict(ev.location)] if ev.location else []
        ev.bump()
        self.store.put_event(ev, "updated")
        if ev.is_organizer:
            self._send_update(owner, fields, _addresses(old_attendees), _addresses(ev.attendees))
            self._schedule_propagation(ev, old_attendees)
        return ev

    def _update_occurrence(self, owner: User, ev: Event, day, fields: dict) -> Event:
        inst = occurrence(ev, day)
        if inst is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        override = dict(ev.exceptions.get(day.isoformat(), {}))
        before = _addresses(override.get("attendees", ev.attendees))
        override.setdefault("original_start", inst.start.isoformat())
        start, end = fields.get("start", inst.start), fields.get("end", inst.end)
        self._check_times(start, end)
        override["start"], override["end"] = start.isoformat(), end.isoformat()
        if "attendees" in fields and ev.is_organizer:
            # As for the series: the organizer is never its own attendee, answers already given are kept.
            current = override.get("attendees", ev.attendees)
            previous = {a["emailAddress"]["address"].lower(): a["status"] for a in current}
            fields["attendees"] = [a for a in fields["attendees"] if a["emailAddress"]["address"].lower() != owner.upn.lower()]
            for a in fields["attendees"]:
                a["status"] = previous.get(a["emailAddress"]["address"].lower(), {"response": "none", "time": ZERO_TIME})
        for key, attr in (("subject", "subject"), ("body", "body"), ("location", "location"), ("show_as", "show_as"),
                          ("locations", "locations"), ("attendees", "attendees")):
            if key in fields:
                override[attr] = fields[key]
        override["change_key"] = new_change_key()
        override["modified"] = now().isoformat()
        ev.exceptions[day.isoformat()] = override
        ev.bump()
        self.store.put_event(ev, "updated")
        if ev.is_organizer:
            self._send_update(owner, fields, before, _addresses(override.get("attendees", ev.attendees)))
            self._schedule_propagation(ev, [dict(a) for a in ev.attendees])
        return ev

    # -- delete / cancel -------------------------------------------------------------
    def delete(self, owner: User, ev: Event, day=None) -> None:
        if day is not None:
            self._cancel_occurrence(ev, day)
            return
        if ev.is_organizer and not ev.is_cancelled:
            self._cancel_all_copies(ev)
        self.store.remove_event(ev)

    def _cancel_all_copies(self, ev: Event) -> None:
        self._send(_addresses(ev.attendees), "cancellation", ev.organizer.get("address", ""))
        for a in ev.attendees:
            user = self.store.find_user(a["emailAddress"]["address"])
            if user is not None and user.id != ev.mailbox:
                self._cancel_copy(user, ev)

    def _cancel_occurrence(self, ev: Event, day) -> None:
        key = day.isoformat()
        if key not in ev.cancelled_dates:
            ev.cancelled_dates.append(key)
        ev.bump()
        self.store.put_event(ev, "updated")
        if ev.is_organizer:
            attendees = (ev.exceptions.get(key) or {}).get("attendees", ev.attendees)
            self._send(_addresses(attendees), "cancellation", ev.organizer.get("address", ""))
            for a in ev.attendees:
                user = self.store.find_user(a["emailAddress"]["address"])
                copy = self.store.find_by_ical(user.id, ev.ical_uid) if user else None
                if copy is not None and key not in copy.cancelled_dates:
                    copy.cancelled_dates.append(key)
                    copy.bump()
                    self.store.put_event(copy, "updated")

    def cancel(self, owner: User, ev: Event, comment: str | None, day=None) -> None:
        if not ev.is_organizer:
            raise invalid_request("Your request can't be completed. You need to be an organizer to cancel a meeting.")
        if day is not None:
            self._cancel_occurrence(ev, day)
            return
        self._cancel_all_copies(ev)
        self.store.remove_event(ev)  # moved to Deleted Items

    # -- responses ---------------------------------------------------------------------
    def respond(self, owner: User, ev: Event, action: str, send_response: bool, keep_declined: bool = False,
                day=None, proposed: dict | None = None) -> None:
        """An attendee answers. A declined copy leaves the calendar, unless ``keep_declined``
        (Outlook's "show declined events in your calendar"): then it stays, marked declined and free.

        On an occurrence's id (``day``) the answer is that occurrence's only: it becomes an exception
        of the attendee's copy (declined: it leaves their calendar) and the organizer's occurrence
        records it, the rest of the series keeps its answer ("event: accept", "event: decline",
        "event: tentativelyAccept": https://learn.microsoft.com/en-us/graph/api/event-accept?view=graph-rest-1.0).
        ``proposed`` (``proposedNewTime``, a timeSlot) goes with decline or tentativelyAccept, only
        with sendResponse and only when the organizer allows new time proposals; the organizer sees
        it on the attendee (``attendee.proposedNewTime``):
        https://learn.microsoft.com/en-us/graph/api/event-tentativelyaccept?view=graph-rest-1.0 and
        https://learn.microsoft.com/en-us/graph/outlook-calendar-meeting-proposals"""
        if ev.is_organizer:
            raise invalid_request("Your request can't be completed. You can't respond to this meeting because you're the meeting organizer.")
        if ev.is_cancelled:
            raise invalid_request("Your request can't be completed. This meeting has been canceled.")
        response = {"accept": "accepted", "decline": "declined", "tentativelyAccept": "tentativelyAccepted"}[action]
        if proposed is not None:
            if action == "accept":
                raise invalid_request("Your request can't be completed. A new time can be proposed only when declining or tentatively accepting.")
            if not send_response:
                raise invalid_request("Your request can't be completed. Proposing a new time requires sendResponse to be true.")
            if not ev.allow_new_time_proposals:
                raise invalid_request("Your request can't be completed. The organizer doesn't allow new time proposals for this meeting.")
        answered = {"response": response, "time": fmt_z(now())}
        show_as = {"accepted": "busy", "tentativelyAccepted": "tentative", "declined": "free"}[response]
        if day is not None:
            key = day.isoformat()
            inst = occurrence(ev, day)
            override = dict(ev.exceptions.get(key, {}))
            override.setdefault("original_start", inst.start.isoformat() if inst is not None else None)
            override.update(response=answered, show_as=show_as, change_key=new_change_key(), modified=now().isoformat())
            ev.exceptions[key] = override
            if response == "declined" and not keep_declined and key not in ev.cancelled_dates:
                ev.cancelled_dates.append(key)  # the declined occurrence leaves the calendar, the series stays
            ev.bump()
            self.store.put_event(ev, "updated")
        else:
            ev.response = answered
            ev.show_as = show_as
            ev.bump()
            if response == "declined" and not keep_declined:
                self.store.remove_event(ev)  # a declined meeting leaves the calendar (Deleted Items)
            else:
                self.store.put_event(ev, "updated")
        if send_response:
            org = self.organizer_event(ev)
            if org is not None and day is not None:
                self.set_occurrence_status(org, day, owner.upn, response, proposed)
            elif org is not None:
                self.set_attendee_status(org, owner.upn, response, proposed)

    def set_occurrence_status(self, org: Event, day, address: str, response: str, proposed: dict | None = None) -> None:
        """The organizer's occurrence ``day`` records one attendee's answer to it alone (an exception
        whose attendees carry the answer)."""
        live = self.store.mailboxes[org.mailbox].events.get(org.id)
        if live is None or live.is_cancelled or occurrence(live, day) is None:
            return
        key = day.isoformat()
        override = dict(live.exceptions.get(key, {}))
        override.setdefault("original_start", occurrence(live, day).start.isoformat())
        attendees = [dict(a) for a in override.get("attendees", live.attendees)]
        for a in attendees:
            if a["emailAddress"]["address"].lower() == address.lower():
                a["status"] = {"response": response, "time": fmt_z(now())}
                _propose(a, proposed)
        override.update(attendees=attendees, change_key=new_change_key(), modified=now().isoformat())
        live.exceptions[key] = override
        live.bump()
        self.store.put_event(live, "updated")


def _propose(attendee: dict, proposed: dict | None) -> None:
    """``attendee.proposedNewTime``: present only while the attendee proposes a time."""
    if proposed is None:
        attendee.pop("proposedNewTime", None)
    else:
        attendee["proposedNewTime"] = proposed


def dropped_days(org: Event, address: str) -> set[str]:
    """Days ("YYYY-MM-DD") of the series' occurrences whose own attendee list leaves ``address`` out."""
    address = address.lower()
    return {
        day for day, override in org.exceptions.items()
        if "attendees" in override and address not in {a["emailAddress"]["address"].lower() for a in override["attendees"]}
    }


def _reschedules_series(ev: Event, fields: dict) -> bool:
    """The update moves a series' occurrences (point 4 of the module docstring)."""
    if fields.get("start", ev.start) != ev.start or fields.get("end", ev.end) != ev.end:
        return True
    if "recurrence" not in fields or fields["recurrence"] is None:
        return "recurrence" in fields
    old, new = ev.recurrence or {}, fields["recurrence"]
    return old.get("pattern") != new.get("pattern") or (old.get("range") or {}).get("startDate") != new["range"]["startDate"]
