"""Inbound reconciliation of the organizer mailbox: the provider's service account
(organizer account, else delegated user) organizes the product's meetings in Strict mode
when rooms don't, and for employees without a mailbox (SPEC §3; which modes subscribe it:
``calendar_sync.subscriptions``). Its copy of a meeting is where attendees' answers arrive
and where the delegated user may cancel the meeting in Outlook.

A notification on that mailbox pulls its calendarView/delta through the same machinery as
a room (``calendar_sync.delta``: one worker per mailbox, coalesced pulls, the deltaLink,
410 → full round, the deferred re-check); each copy is reconciled here, and only copies of
meetings linked to a reservation or series count:

  (a) linked and live → each attendee's answer (``Attendee.response``) is refreshed from
      the organizer's copy. The room's own entry is not an attendee answer: it drives
      confirmation, which is applied only to a reservation still awaiting it, and only
      through ``push.apply_room_answer`` (the function every confirmation reader uses, see
      ``calendar_sync.confirm``), so all readers agree;
  (b) linked and deleted or cancelled in Outlook (the meeting, or one occurrence) → the
      reservation is cancelled as the room calendar's row (c) does it
      (``reconcile.cancel_reservation``: from Exchange, no outbox event, the requester told).
      The room's own pull sees the same cancellation; whichever comes second finds the
      reservation cancelled and does nothing (the services lock the row), so the requester
      is told once;
  (c) time, subject and other changes the organizer makes in Outlook are NOT applied here:
      they reach the room's copy, and the room calendar is the authority for the SPEC §4
      table (``calendar_sync.reconcile``, row (b));
  (d) meetings linked to no reservation are ignored: no reservation is ever created from
      this mailbox, and no row is kept for them;
  (e) the product's own writes come back as copies whose answers are unchanged: nothing is
      written, and nothing here ever records an outbox event. A copy whose reservation's own
      change is still on its way to Exchange is put aside and re-checked shortly.

A meeting created and deleted between two delta rounds is in neither round; the "deleted"
notification names it, so the pull settles those too (``reconcile_notified_deletions``).

Matching: a copy belongs to a reservation whose meeting lives in this mailbox
(``Reservation.mailbox``) by event id, by iCalUId, or (an occurrence) by its series'
iCalUId and the occurrence's slot; a removed copy carries only its id, so it is found by
the event id or by what we recorded when we saw it (``RoomEvent`` rows of this mailbox).
A meeting the service account was merely invited to never matches: its reservation's
meeting lives in another mailbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from exchange_auth.graph import GraphClient, GraphError
from reservations import services
from reservations.models import ACTIVE_STATES, Attendee, Origin, Reservation, State

from . import payloads, push, reconcile
from .models import RoomEvent
from .reconcile import Copy, parse_copy

logger = logging.getLogger("calendar_sync.inbound")

__all__ = ["Context", "parse_copy", "reconcile_copy", "reconcile_notified_deletions", "reconcile_page", "sweep_unseen"]

CANCELLED_REASON = "The meeting was cancelled in Outlook by its organizer ({mailbox})."


@dataclass
class Context:
    """One pull of the organizer mailbox (the fields ``delta`` and ``reconcile``'s helpers use)."""

    mailbox: str
    provider: object
    client: GraphClient
    window_start: dt.datetime
    window_end: dt.datetime
    nightly: bool = False
    now: dt.datetime = field(default_factory=timezone.now)
    stats: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    deferred: bool = False  # something should be re-checked shortly

    def __post_init__(self) -> None:
        self.mailbox = self.mailbox.lower()


# --- entry points (the interface ``delta`` calls, as for ``reconcile``) -----------------------


def reconcile_page(ctx: Context, raw_events: list[dict]) -> None:
    """One page of a delta round: one query for what we recorded, one for the reservations
    the page's copies may belong to; unchanged copies (same change key) cost nothing more."""
    copies = [parse_copy(raw) for raw in raw_events if raw.get("id")]
    if not copies:
        return
    known = {row.event_id: row for row in RoomEvent.objects.filter(mailbox=ctx.mailbox, event_id__in=[c.id for c in copies])}
    candidates = _candidates(ctx, copies, known.values())
    for copy in copies:
        ctx.seen.add(copy.id)
        row = known.get(copy.id)
        if not copy.removed and row is not None and row.removed_at is None and row.change_key == copy.change_key and row.outcome != "deferred":
            ctx.stats["unchanged"] += 1
            continue
        try:
            outcome = reconcile_copy(ctx, copy, row, candidates=candidates)
        except GraphError as exc:
            # Not recorded: the next pull tries this copy again.
            logger.warning("inbound: %s on organizer mailbox %s failed: %s", copy.id[:16], ctx.mailbox, exc)
            outcome = "graph_error"
            if exc.transient:
                raise
        ctx.stats[outcome] += 1


def reconcile_copy(ctx: Context, copy: Copy, row: RoomEvent | None, *, candidates: list[Reservation] | None = None) -> str:
    """Rows (a)–(e) of the module docstring for one copy; returns the outcome's name."""
    if candidates is None:
        candidates = _candidates(ctx, [copy], [row] if row is not None else [])
    if copy.type == "seriesMaster":
        return "series_master"  # the round carries each occurrence; they are what we reconcile
    reservation = _linked(ctx, copy, row, candidates)
    if copy.removed or copy.is_cancelled:
        return _vanished(ctx, copy, row, reservation)
    if reservation is None:
        if row is not None and row.removed_at is None:
            reconcile.mark_removed(ctx, copy.id, row, outcome="unlinked")  # its reservation's meeting moved elsewhere
        return "unlinked"  # (d)
    if reservation.state not in ACTIVE_STATES:
        reconcile.record_copy(ctx, copy, row, reservation=reservation, outcome="inactive")
        return "no_action"  # (e) the product cancelled it (its push settles the meeting), or it was rejected
    if reconcile.outbound_in_flight(reservation):
        return _defer(ctx, copy, row, reservation)
    return _answers(ctx, copy, row, reservation)


def reconcile_notified_deletions(ctx: Context, event_ids: list[str]) -> None:
    """Copies that "deleted" notifications of this pull named and its round did not mention:
    a meeting created and deleted between two delta rounds shows in neither, yet the
    notification names it. Linked ones are settled as removed (each confirmed with a read)."""
    ids = [event_id for event_id in dict.fromkeys(event_ids) if event_id and event_id not in ctx.seen]
    if not ids:
        return
    rows = {row.event_id: row for row in RoomEvent.objects.filter(mailbox=ctx.mailbox, event_id__in=ids)}
    candidates = _candidates(ctx, [Copy(id=event_id, removed=True) for event_id in ids], rows.values())
    for event_id in ids:
        copy, row = Copy(id=event_id, removed=True), rows.get(event_id)
        reservation = _linked(ctx, copy, row, candidates)
        if reservation is None:
            continue  # (d) not the product's meeting
        try:
            ctx.stats[_vanished(ctx, copy, row, reservation)] += 1
        except GraphError as exc:
            logger.warning("inbound: deleted %s on organizer mailbox %s failed: %s", event_id[:16], ctx.mailbox, exc)
            if exc.transient:
                raise


def sweep_unseen(ctx: Context) -> None:
    """After a full round: a linked copy we had seen in the window that the round no longer
    has was deleted (each one is confirmed with a read before anything is cancelled)."""
    live = RoomEvent.objects.filter(
        mailbox=ctx.mailbox, removed_at__isnull=True, reservation__isnull=False, start__lt=ctx.window_end, end__gt=ctx.window_start,
    )
    gone = [row for row in live if row.event_id not in ctx.seen]
    if not gone:
        return
    candidates = _candidates(ctx, [], gone)
    for row in gone:
        copy = Copy(id=row.event_id, removed=True)
        ctx.stats[_vanished(ctx, copy, row, _linked(ctx, copy, row, candidates))] += 1


# --- (a) answers ---------------------------------------------------------------------------------


def _answers(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation) -> str:
    room_mailbox = (reservation.room.mailbox or "").lower()
    current = {a.email.lower(): a.response for a in reservation.attendees.all()}
    changed = {}
    for attendee in copy.attendees:
        address = ((attendee.get("emailAddress") or {}).get("address") or "").strip().lower()
        if not address or address == room_mailbox or address not in current:
            continue
        response = (attendee.get("status") or {}).get("response") or Attendee.Response.NONE
        if response not in Attendee.Response.values:
            response = Attendee.Response.UNKNOWN
        if current[address] != response:
            changed[address] = response
    if changed and reservation.origin == Origin.APP:
        services.reservation_set_attendee_responses(reservation=reservation, responses=changed)
    if reservation.event_id == copy.id and copy.change_key and reservation.change_key != copy.change_key:
        # The meeting's change key moved (an answer arrived): the next update's If-Match uses the fresh one.
        services.reservation_link_exchange(reservation=reservation, event_id=copy.id, change_key=copy.change_key)
    if reservation.state == State.AWAITING_CONFIRMATION and room_mailbox:
        if payloads.room_response({"attendees": copy.attendees}, room_mailbox) in ("accepted", "declined"):
            push.apply_room_answer(reservation, {"attendees": copy.attendees})
    outcome = "answers" if changed else "echo"
    reconcile.record_copy(ctx, copy, row, reservation=reservation, outcome=outcome,
                          note=", ".join(f"{email}: {response}" for email, response in sorted(changed.items())))
    return outcome


# --- (b) cancelled in Outlook ----------------------------------------------------------------------


def _vanished(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation | None) -> str:
    """The organizer's copy was deleted or cancelled (or a full round no longer has it)."""
    if row is not None and row.removed_at is not None:
        return "no_action"  # seen going already
    if reservation is None:
        if row is not None:
            reconcile.mark_removed(ctx, copy.id, row)
        return "unlinked"  # (d)
    if reservation.state not in ACTIVE_STATES or (reservation.event_id and reservation.event_id != copy.id):
        reconcile.mark_removed(ctx, copy.id, row)
        return "no_action"  # (e) the product cancelled it, or replaced this meeting by another
    if reconcile.outbound_in_flight(reservation):
        return _defer(ctx, copy, row, reservation)
    if copy.removed and reconcile.still_in_mailbox(ctx, copy.id):
        return "outside_window"  # @removed because it left the window, not deleted
    reason = CANCELLED_REASON.format(mailbox=ctx.mailbox)
    reconcile.cancel_reservation(reservation, reason=reason)
    if row is None:
        RoomEvent.objects.update_or_create(mailbox=ctx.mailbox, event_id=copy.id, defaults={
            "reservation": reservation, "ical_uid": copy.ical_uid, "start": reservation.start, "end": reservation.end,
            "subject": reservation.subject[:255], "organizer": ctx.mailbox, "outcome": "cancelled", "removed_at": ctx.now,
        })
    else:
        reconcile.mark_removed(ctx, copy.id, row, outcome="cancelled")
    logger.info("inbound: reservation %s cancelled: its meeting left organizer mailbox %s", reservation.pk, ctx.mailbox)
    return "cancelled"


# --- matching ----------------------------------------------------------------------------------------


def _candidates(ctx: Context, copies: list[Copy], rows) -> list[Reservation]:
    """The reservations whose meeting lives in this mailbox that these copies (or recorded
    rows) may be: one query, attendees prefetched."""
    ids = {c.id for c in copies} | {r.event_id for r in rows}
    uids = {u for c in copies for u in c.uids}
    pks = {r.reservation_id for r in rows if r.reservation_id}
    query = Q(event_id__in=ids) | Q(pk__in=pks)
    if uids:
        query |= Q(ical_uid__in=uids) | Q(series__ical_uid__in=uids)
    found = (
        Reservation.objects.filter(query)
        .select_related("room__building", "requested_for", "requested_by", "series")
        .prefetch_related("attendees")
    )
    return [r for r in found if (r.mailbox or "").lower() == ctx.mailbox]


def _linked(ctx: Context, copy: Copy, row: RoomEvent | None, candidates: list[Reservation]) -> Reservation | None:
    """The reservation this copy is, among ``candidates`` (None: not the product's meeting here)."""
    if not copy.removed and copy.organizer and copy.organizer != ctx.mailbox:
        return None  # someone else's meeting the service account was invited to
    if row is not None and row.reservation_id:
        for candidate in candidates:
            if candidate.pk == row.reservation_id:
                return candidate
    for candidate in candidates:
        if candidate.event_id == copy.id:
            return candidate
    if copy.removed or not copy.uids:
        return None
    same = [c for c in candidates if c.ical_uid in copy.uids or (c.series is not None and c.series.ical_uid in copy.uids)]
    if copy.type == "singleInstance":
        same = [c for c in same if c.series_id is None]
    else:
        # Occurrences of a series share its iCalUId: the copy is the one in its slot.
        wanted = copy.original_start or copy.start
        same = [c for c in same if c.series_id is not None and (c.original_start or c.start) == wanted]
    active = [c for c in same if c.state in ACTIVE_STATES]
    return (active or same or [None])[0]


def _defer(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation) -> str:
    """The product's own change to this reservation is on its way: look again shortly (no
    change key recorded, so the next pull reads the copy again too). After
    ``reconcile.MAX_DEFERRALS`` re-checks only pulls look again (a push retrying for long)."""
    note = f"waiting for reservation {reservation.pk}'s push"
    if copy.removed:
        row, _ = RoomEvent.objects.update_or_create(mailbox=ctx.mailbox, event_id=copy.id, defaults={
            "reservation": reservation, "outcome": "deferred", "note": note, "change_key": "",
            "start": reservation.start, "end": reservation.end, "subject": reservation.subject[:255],
        })
    else:
        row = reconcile.record_copy(ctx, copy, row, reservation=reservation, outcome="deferred", note=note, change_key="")
    RoomEvent.objects.filter(pk=row.pk).update(deferrals=row.deferrals + 1)
    if row.deferrals < reconcile.MAX_DEFERRALS:
        ctx.deferred = True
    return "deferred"
