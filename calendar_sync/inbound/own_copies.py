"""Is an unknown copy on a room's calendar the product's own meeting? (issue 16 item 8)

A worker killed between Graph's 201 and storing the link leaves a meeting in Exchange that
no reservation points at. The room's copy then arrives (a notification, a pull) as a meeting
nobody in the product knows; treated as an Outlook booking it clashes with the product's own
reservation of that very slot and the room would decline its own product's meeting.

So before an unknown copy is judged, the product asks the organizer's event what the product
wrote into it (``common.own_meetings``): the room's copy shares its iCalUId, the organizer's
event carries the create's ``transactionId`` and the product's mark (an extended property
naming the reservation or series). A match is linked (the ids of the organizer's event, as the
push would have stored them), never declined. One read per unknown copy, only when an active
product reservation of that room and time has no meeting linked yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q

from exchange_auth.graph import GraphError, users_path
from exchange_auth.modes import fallback_plan
from reservations import services
from reservations.models import ACTIVE_STATES, Origin, Reservation, SyncEvent, SyncState
from reservations.services import ExchangeIds

from ..common import own_meetings
from ..common.answers import answer_in
from ..common.meetings import UTC_TIMES
from ..common.plan import PermanentSyncError, client_for_plan, plan_for, provider
from .copies import Copy

logger = logging.getLogger("calendar_sync.inbound")

OWN_SELECT = "id,changeKey,iCalUId,transactionId,organizer,attendees,onlineMeeting,type"


@dataclass
class Recognised:
    """What the check found: ``reservation`` (the copy's slot) when the copy is the product's;
    ``unsure`` when the organizer's event could not be read now (ask again, decide nothing)."""

    reservation: Reservation | None = None
    unsure: bool = False


UNLINKED = Q(series__isnull=True, event_id="") | Q(series__isnull=False, series__event_id="")
CANDIDATE_LIMIT = 5


def _unlinked(reservation: Reservation) -> bool:
    """``UNLINKED`` of a loaded reservation (its series loaded with it)."""
    return reservation.event_id == "" if reservation.series_id is None else reservation.series.event_id == ""


def unlinked_candidates(room, copy: Copy, *, page=None) -> list[Reservation]:
    """Active product reservations of this room overlapping the copy whose meeting is not
    linked (no event id, or an occurrence whose series has none). One query, or none when
    the pull's page read them (``room_calendar.PageReads.product``)."""
    if copy.start is None or copy.end is None:
        return []
    if page is not None and page.covers_time(copy):
        found = sorted((r for r in page.product if r.start < copy.end and r.end > copy.start and _unlinked(r)), key=lambda r: r.pk)
        return found[:CANDIDATE_LIMIT]
    return list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, origin=Origin.APP, start__lt=copy.end, end__gt=copy.start)
        .filter(UNLINKED)
        .select_related("room__building", "requested_for__profile", "requested_by", "series")
        .order_by("pk")[:CANDIDATE_LIMIT]
    )


def product_candidates(room, start, end) -> list[Reservation]:
    """The room's active product reservations overlapping [start, end) that are still being
    written (sync pending) or have no meeting linked: what ``unlinked_candidates`` and the
    room reconciler's pending check look for, for a whole page of copies in one query."""
    return list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, origin=Origin.APP, start__lt=end, end__gt=start)
        .filter(Q(sync_state=SyncState.PENDING) | UNLINKED)
        .select_related("room__building", "requested_for__profile", "requested_by", "series")
    )


def _expected_transaction_ids(reservation: Reservation) -> set[str]:
    """The transactionIds the product's creates of this reservation (or its series) sent."""
    series_id = reservation.series_id
    events = SyncEvent.objects.filter(Q(series_id=series_id) if series_id else Q(reservation_id=reservation.pk))
    mailbox = reservation.room.mailbox or ""
    return {
        own_meetings.transaction_id(reservation_id=None if series_id else reservation.pk, series_id=series_id, sync_event_id=pk, room_mailbox=mailbox)
        for pk in events.values_list("pk", flat=True)
    }


def _matches(body: dict, reservation: Reservation) -> bool:
    mark = own_meetings.mark_in(body)
    if mark:
        return mark == own_meetings.mark_value(reservation_id=reservation.pk, series_id=reservation.series_id)
    txn = body.get("transactionId") or ""
    return bool(txn) and txn in _expected_transaction_ids(reservation)


def recognise(ctx, copy: Copy) -> Recognised:
    """The product's reservation this unknown room copy is the meeting of, linked now; or
    nothing (it is someone's Outlook meeting)."""
    candidates = unlinked_candidates(ctx.room, copy, page=getattr(ctx, "page", None))
    uid = copy.uid or copy.ical_uid  # an occurrence: its series' iCalUId (the organizer's master)
    if not candidates or not uid or not copy.organizer:
        return Recognised()
    unsure = False
    for reservation in candidates:
        try:
            found = _organizer_event(reservation, copy.organizer, uid)
        except GraphError as exc:
            logger.warning("inbound: organizer event of %s on %s unreadable: %s", copy.id[:16], copy.organizer, exc)
            unsure = unsure or exc.transient
            continue
        if found is None:
            continue
        body, plan = found
        if _matches(body, reservation):
            _link(reservation, body, plan, copy)
            logger.info("inbound: %s's copy %s is reservation %s's meeting (linked, not judged)", ctx.mailbox, copy.id[:16], reservation.pk)
            reservation.refresh_from_db()
            return Recognised(reservation)
    return Recognised(unsure=unsure)


def _organizer_event(reservation: Reservation, organizer: str, uid: str):
    """The organizer's event with this iCalUId, read with the client the reservation's plan
    uses on that mailbox (the plan, or its fallback when the organizer account organizes)."""
    active = provider(reservation.room)
    target = reservation.series or reservation
    try:
        plan, actor = plan_for(SyncEvent(type=SyncEvent.Type.CREATE, details={}), target, reservation.room, active)
    except PermanentSyncError:
        return None
    if plan.mailbox.lower() != organizer:
        other = fallback_plan(plan, active.accounts)
        if other is None or other.mailbox.lower() != organizer:
            return None
        plan = other
    try:
        client = client_for_plan(plan, active, actor, link_mailbox=organizer)
    except PermanentSyncError:
        return None
    params = {
        "$filter": f"iCalUId eq '{uid.replace(chr(39), chr(39) * 2)}'", "$select": OWN_SELECT, "$expand": own_meetings.EXPAND_MARK,
    }
    for body in client.collect(users_path(organizer, "events"), params=params, headers=UTC_TIMES):
        if body.get("type") in (None, "singleInstance", "seriesMaster"):
            return body, plan
    return None


def _link(reservation: Reservation, body: dict, plan, copy: Copy) -> None:
    """Store the organizer's event as the push would have (``outbound.single.created_link``)."""
    link = ExchangeIds(
        event_id=body["id"], change_key=body.get("changeKey", ""), ical_uid=body.get("iCalUId", ""),
        mailbox=plan.mailbox.lower(), organizer=(plan.organizer or "").lower(), sync_mailbox=plan.sync_mailbox,
        online_meeting_url=(body.get("onlineMeeting") or {}).get("joinUrl") or "",
    )
    # Only a yes is taken from here: a no reaches the reservation the way every answer does.
    accepted = copy.response == "accepted" or answer_in(reservation, body, plan_organizer_is_room=plan.organizer_is_room) == "accepted"
    answer = "accepted" if accepted else ""
    if reservation.series_id:
        services.series_record_push(series=reservation.series, link=link, answer=answer)
    else:
        services.reservation_record_push(reservation=reservation, link=link, answer=answer)
