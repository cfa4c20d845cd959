"""Calendar-level Graph calls on one meeting, for both wings.

Each call answers what the caller needs to decide: a meeting already gone from the
mailbox is ``None`` / ``False``, not an exception, so the pushes and the reconcilers
don't each catch ``NotFound``. Other Graph errors still raise (the caller's retry
policy decides). Event ids contain ``/`` and ``+``: paths are built with ``users_path``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exchange_auth.graph import GraphClient, NotFound, PreconditionFailed, users_path

UTC_TIMES = {"Prefer": 'outlook.timezone="UTC"'}


def _if_match(change_key: str) -> dict:
    return {"If-Match": f'W/"{change_key}"'} if change_key else {}


def patch(client: GraphClient, mailbox: str, event_id: str, change_key: str, body: dict) -> dict | None:
    """PATCH with If-Match; None when the meeting is gone (or was cancelled meanwhile).

    On 412 the change key moved because Exchange touched the meeting (the room answered,
    an attendee responded, an Outlook edit). The product's edit is the newer intent for the
    fields it manages (SPEC §4), so it is applied once more on the fresh change key. A
    meeting cancelled meanwhile is not resurrected."""
    path = users_path(mailbox, "events", event_id)
    try:
        try:
            return client.patch(path, json=body, headers=_if_match(change_key)) or {}
        except PreconditionFailed:
            current = client.get(path, params={"$select": "id,changeKey,isCancelled"}) or {}
            if current.get("isCancelled"):
                return None
            return client.patch(path, json=body, headers=_if_match(current.get("changeKey", ""))) or {}
    except NotFound:
        return None


def patch_plain(client: GraphClient, mailbox: str, event_id: str, body: dict) -> dict | None:
    """PATCH without If-Match (an occurrence's exception); None when it is gone."""
    try:
        return client.patch(users_path(mailbox, "events", event_id), json=body) or {}
    except NotFound:
        return None


def cancel(client: GraphClient, mailbox: str, event_id: str, comment: str) -> bool:
    """The organizer cancels the meeting (attendees get the comment); False when already gone."""
    try:
        client.post(users_path(mailbox, "events", event_id, "cancel"), json={"Comment": comment})
    except NotFound:
        return False
    return True


def decline(client: GraphClient, mailbox: str, event_id: str, comment: str) -> bool:
    """``mailbox`` (a room) declines its copy; the organizer gets the answer with the comment.
    False when the copy is already gone."""
    try:
        client.post(users_path(mailbox.lower(), "events", event_id, "decline"), json={"comment": comment, "sendResponse": True})
    except NotFound:
        return False
    return True


def get(client: GraphClient, mailbox: str, event_id: str, *, select: str) -> dict | None:
    """One event (``$select``ed); None when it is gone."""
    try:
        return client.get(users_path(mailbox, "events", event_id), params={"$select": select}) or {}
    except NotFound:
        return None


def by_ical_uid(client: GraphClient, mailbox: str, ical_uid: str, *, select: str = "") -> list[dict]:
    """The events of ``mailbox`` with this iCalUId (the same meeting's copy in another mailbox)."""
    params = {"$filter": f"iCalUId eq '{ical_uid.replace(chr(39), chr(39) * 2)}'"}
    if select:
        params["$select"] = select
    return client.collect(users_path(mailbox, "events"), params=params, headers=UTC_TIMES)


def by_transaction_id(client: GraphClient, mailbox: str, transaction_id: str) -> dict | None:
    """The event of ``mailbox`` a create with this ``transactionId`` made, if any (Graph filters
    events on it like on any other string property)."""
    params = {"$filter": f"transactionId eq '{transaction_id.replace(chr(39), chr(39) * 2)}'"}
    found = client.collect(users_path(mailbox, "events"), params=params, headers=UTC_TIMES)
    return found[0] if found else None


def _instance_slot(inst: dict) -> datetime | None:
    """When an ``/instances`` entry was scheduled by the series (``originalStart``), as aware UTC."""
    raw = inst.get("originalStart") or (inst.get("start") or {}).get("dateTime")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00")[:26] if "." in raw else raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def find_instances(client: GraphClient, mailbox: str, master_id: str, reservations) -> dict[int, dict] | None:
    """The series' occurrence of each reservation, by its original slot ({reservation id: instance}):
    one ``/instances`` listing (all its pages) over the days the reservations span. None when
    the series itself is gone."""
    if not reservations:
        return {}
    slots = {r.pk: r.original_start or r.start for r in reservations}
    window_start = (min(min(slots[r.pk], r.start) for r in reservations) - timedelta(days=1)).isoformat()
    window_end = (max(max(slots[r.pk], r.start) for r in reservations) + timedelta(days=1)).isoformat()
    # $top: a page of up to 100 occurrences instead of Graph's default 10, so a long series is read
    # in one request (Graph pages with @odata.nextLink all the same:
    # https://learn.microsoft.com/en-us/graph/api/event-list-instances?view=graph-rest-1.0 ,
    # https://learn.microsoft.com/en-us/graph/paging).
    params = {"startDateTime": window_start, "endDateTime": window_end, "$select": "id,start,end,originalStart,changeKey,isCancelled", "$top": "100"}
    try:
        listed = [
            (inst, when)
            for inst in client.collect(users_path(mailbox, "events", master_id, "instances"), params=params, headers=UTC_TIMES)
            if (when := _instance_slot(inst)) is not None
        ]
    except NotFound:
        return None
    found = {}
    for reservation in reservations:
        slot = slots[reservation.pk]
        best, best_gap = None, None
        for inst, when in listed:
            gap = abs((when - slot).total_seconds())
            if best_gap is None or gap < best_gap:
                best, best_gap = inst, gap
        if best_gap is not None and best_gap < 12 * 3600:
            found[reservation.pk] = best
    return found
