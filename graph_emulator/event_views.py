"""How a request sees events: the instances in a calendar window, and an event's JSON
rendered as the request's ``Prefer`` header asks (``outlook.timezone``,
``outlook.body-content-type``). Shared by the event handlers, delta and getSchedule."""

from __future__ import annotations

from datetime import datetime

from .http_types import GReq
from .model import Instance, Store, User, instances
from .serialize import event_json
from .timeutil import prefer_timezone


def preferences(req: GReq) -> tuple[str | None, dict]:
    """The time zone the request prefers (None: each event's own) and the ``Preference-Applied`` header."""
    tz = prefer_timezone(req.headers.get("Prefer"))
    headers = {}
    applied = []
    if tz:
        applied.append(f'outlook.timezone="{tz}"')
    if body_text(req):
        applied.append('outlook.body-content-type="text"')
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    return tz, headers


def body_text(req: GReq) -> bool:
    return 'outlook.body-content-type="text"' in (req.headers.get("Prefer") or "").replace("'", '"')


def event_view(store: Store, req: GReq, target: User, inst, tz: str | None, select=None) -> dict:
    return event_json(store, inst, tz, req.base, target, select, body_text(req))


def view_instances(store: Store, target: User, start: datetime, end: datetime) -> list[Instance]:
    """Every instance in ``target``'s calendar overlapping [start, end), in time order."""
    out = []
    for ev in store.mailboxes[target.id].events.values():
        out.extend(instances(ev, start, end))
    out.sort(key=lambda i: (i.start, i.end, i.id))
    return out
