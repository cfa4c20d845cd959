"""POST /calendar/getSchedule: free/busy with availabilityView and workingHours."""

from __future__ import annotations

from datetime import timedelta

from .errors import GraphError
from .event_views import view_instances
from .http_types import GReq, GResp
from .model import Store
from .timeutil import fmt_local, parse_datetime_tz, prefer_timezone
from .windows_zones import WINDOWS_TO_IANA

# availabilityView digits: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working elsewhere. Learn's
# scheduleInformation page says v1.0 maps working elsewhere to 0 "for backward compatibility", while the
# service answers 4 for it (Outlook's olWorkingElsewhere); a client must take both, so the emulator sends
# the digit that breaks a client that knows only 0-3:
# https://learn.microsoft.com/en-us/graph/api/resources/scheduleinformation?view=graph-rest-1.0
# https://learn.microsoft.com/en-us/office/vba/api/outlook.olbusystatus
STATUS_DIGIT = {"free": "0", "workingElsewhere": "4", "tentative": "1", "busy": "2", "oof": "3", "unknown": "0"}
# When a slot holds several items the busiest wins.
DIGIT_RANK = {"0": 0, "4": 1, "1": 2, "2": 3, "3": 4}
IANA_TO_WINDOWS = {}
for _windows, _iana in WINDOWS_TO_IANA.items():
    IANA_TO_WINDOWS.setdefault(_iana, _windows)


def windows_zone(name: str) -> str:
    """workingHours.timeZone names the mailbox's zone as Exchange keeps it: a Windows name
    ("W. Europe Standard Time"), not an IANA one:
    https://learn.microsoft.com/en-us/graph/api/resources/workinghours?view=graph-rest-1.0"""
    if name in WINDOWS_TO_IANA:
        return name
    return IANA_TO_WINDOWS.get(name, "UTC" if name.upper() in ("UTC", "ETC/UTC") else name)


def get_schedule(store: Store, req: GReq) -> GResp:
    payload = req.json()
    if not isinstance(payload, dict):
        raise GraphError(400, "UnableToDeserializePostBody", "Request body must be a JSON object.")
    lowered = {k.lower(): v for k, v in payload.items()}
    schedules = lowered.get("schedules")
    if not isinstance(schedules, list) or not schedules or not all(isinstance(s, str) for s in schedules):
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'Schedules' is required and must list email addresses.")
    if len(schedules) > 100:
        raise GraphError(400, "ErrorInvalidParameter", "Too many schedules requested; the maximum is 100.")
    start, _ = parse_datetime_tz(lowered.get("starttime"), "startTime")
    end, _ = parse_datetime_tz(lowered.get("endtime"), "endTime")
    if end <= start:
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'EndTime' must be later than 'StartTime'.")
    if end - start > timedelta(days=62):
        raise GraphError(400, "ErrorInvalidParameter", "The time window of a schedule request can't exceed 62 days.")
    try:
        interval = int(lowered.get("availabilityviewinterval") or 30)
    except (TypeError, ValueError) as exc:
        raise GraphError(400, "ErrorInvalidParameter", "availabilityViewInterval must be a number of minutes.") from exc
    if not 5 <= interval <= 1440:
        raise GraphError(400, "ErrorInvalidParameter", "availabilityViewInterval must be between 5 and 1440 minutes.")
    tz = prefer_timezone(req.headers.get("Prefer")) or "UTC"
    headers = {"Preference-Applied": f'outlook.timezone="{tz}"'} if prefer_timezone(req.headers.get("Prefer")) else {}
    out = []
    step = timedelta(minutes=interval)
    for address in schedules:
        user = store.find_user(address)
        if user is None:
            out.append({"scheduleId": address, "availabilityView": "", "scheduleItems": [],
                        "error": {"message": f"The specified email address '{address}' was not found in the directory.",
                                  "responseCode": "ErrorMailRecipientNotFound"}})
            continue
        insts = [i for i in view_instances(store, user, start, end) if not i.event.is_cancelled and i.show_as != "free"]
        items = []
        for i in insts:
            loc = (i.override or {}).get("location", i.event.location) or {}
            # v1.0's scheduleItem: isMeeting, isRecurring, isException, isReminderSet are beta-only.
            # https://learn.microsoft.com/en-us/graph/api/resources/scheduleitem?view=graph-rest-1.0
            items.append({
                "isPrivate": i.event.sensitivity in ("private", "confidential"),
                "status": i.show_as,
                "subject": "" if i.event.sensitivity in ("private", "confidential") else i.subject,
                "location": loc.get("displayName", ""),
                "start": fmt_local(i.start, tz),
                "end": fmt_local(i.end, tz),
            })
        view = []
        slot = start
        while slot < end:
            slot_end = min(slot + step, end)
            digit = "0"
            for i in insts:
                if i.start < slot_end and i.end > slot:
                    d = STATUS_DIGIT.get(i.show_as, "2")
                    digit = max(digit, d, key=DIGIT_RANK.__getitem__)
            view.append(digit)
            slot = slot_end
        out.append({
            "scheduleId": address,
            "availabilityView": "".join(view),
            "scheduleItems": items,
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": windows_zone(user.time_zone)},
            },
        })
    body = {"@odata.context": f"{req.base}/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)", "value": out}
    return GResp(200, body, headers)
