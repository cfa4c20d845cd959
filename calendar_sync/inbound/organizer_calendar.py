"""The organizer mailbox's reconciler: the provider's service account organizes the
product's meetings in Strict mode when rooms don't, and for employees without a mailbox
(SPEC §3). Its copy of a meeting is where attendees' answers arrive and where the
delegated user may cancel the meeting in Outlook. Only copies linked to a reservation
count: (a) live → attendees' answers refreshed, the room's answer applied to a reservation
still waiting for it, awaiting or conflicted (``common.answers``); (b) deleted or cancelled → the reservation cancelled, requester
told once; (c) time and subject changes are left to the room calendar (the SPEC §4
table's authority); (d) unlinked meetings are ignored; (e) the product's own writes
change nothing. Meetings of rooms without a mailbox are not watched here at all (their
changes belong in the product, README "Rooms without a mailbox"). The README ("Inbound sync") has the reasoning and the matching rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q

from exchange_auth.graph import GraphError
from reservations import services
from reservations.models import ACTIVE_STATES, Attendee, Origin, Reservation

from ..common.answers import WAITING_FOR_ANSWER, apply_room_answer, room_response
from ..models import RoomEvent
from .copies import (
    MAX_DEFERRALS,
    Copy,
    PullContext,
    cancel_reservation,
    known_rows,
    mark_removed,
    of_series_named,
    outbound_in_flight,
    parse_copy,
    reconcile_each,
    record_copy,
    still_in_mailbox,
    unseen_rows,
)

logger = logging.getLogger("calendar_sync.inbound")


CANCELLED_REASON = "The meeting was cancelled in Outlook by its organizer ({mailbox})."


@dataclass(kw_only=True)
class Context(PullContext):
    """One pull of the organizer mailbox."""

    mailbox: str

    def __post_init__(self) -> None:
        self.mailbox = self.mailbox.lower()


# --- entry points (the ``Reconciler`` interface ``delta`` calls) -----------------------


def reconcile_page(ctx: Context, raw_events: list[dict]) -> None:
    """One page of a delta round: one query for what we recorded, one for the reservations
    the page's copies may belong to; unchanged copies (same change key) cost nothing more."""
    copies = [parse_copy(raw) for raw in raw_events if raw.get("id")]
    if not copies:
        return
    known = known_rows(ctx, copies)
    candidates = _candidates(ctx, copies, known.values())
    reconcile_each(ctx, copies, known, lambda copy, row: reconcile_copy(ctx, copy, row, candidates=candidates))


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
            mark_removed(ctx, copy.id, row, outcome="unlinked")  # its reservation's meeting moved elsewhere
        return "unlinked"  # (d)
    if reservation.state not in ACTIVE_STATES:
        record_copy(ctx, copy, row, reservation=reservation, outcome="inactive")
        return "no_action"  # (e) the product cancelled it (its push settles the meeting), or it was rejected
    if outbound_in_flight(reservation):
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


def settle_unrecorded(ctx: Context, *, full: bool) -> None:
    """Nothing to settle: the copies here are the product's meetings themselves, whose ids the
    push stored, so every removal maps (a room's copy has an id of its own the push never saw)."""


def sweep_unseen(ctx: Context) -> None:
    """After a full round: a linked copy we had seen in the window that the round no longer
    has was deleted (each one is confirmed with a read before anything is cancelled)."""
    live = RoomEvent.objects.filter(
        mailbox=ctx.mailbox, removed_at__isnull=True, reservation__isnull=False, start__lt=ctx.window_end, end__gt=ctx.window_start,
    )
    gone = list(RoomEvent.objects.filter(pk__in=unseen_rows(ctx, live)).order_by("pk"))
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
    if reservation.state in WAITING_FOR_ANSWER and room_mailbox:
        # Awaiting, or conflicted (its room copy went missing): the room's answer settles it
        # either way, accepted → confirmed, declined → rejected (SPEC §4 Confirmation); a
        # tentative one is a delegate's approval still to come (awaiting_approval).
        if room_response({"attendees": copy.attendees}, room_mailbox) in ("accepted", "declined", "tentativelyAccepted"):
            apply_room_answer(reservation, {"attendees": copy.attendees})
    outcome = "answers" if changed else "echo"
    record_copy(ctx, copy, row, reservation=reservation, outcome=outcome,
                          note=", ".join(f"{email}: {response}" for email, response in sorted(changed.items())))
    return outcome


# --- (b) cancelled in Outlook ----------------------------------------------------------------------


def _vanished(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation | None) -> str:
    """The organizer's copy was deleted or cancelled (or a full round no longer has it)."""
    if row is not None and row.removed_at is not None:
        return "no_action"  # seen going already
    if reservation is None:
        if row is not None:
            mark_removed(ctx, copy.id, row)
        return "unlinked"  # (d)
    if reservation.state not in ACTIVE_STATES or (reservation.event_id and reservation.event_id != copy.id):
        mark_removed(ctx, copy.id, row)
        return "no_action"  # (e) the product cancelled it, or replaced this meeting by another
    if outbound_in_flight(reservation):
        return _defer(ctx, copy, row, reservation)
    if copy.removed and still_in_mailbox(ctx, copy.id):
        return "outside_window"  # @removed because it left the window, not deleted
    reason = CANCELLED_REASON.format(mailbox=ctx.mailbox)
    cancel_reservation(reservation, reason=reason)
    if row is None:
        RoomEvent.objects.update_or_create(mailbox=ctx.mailbox, event_id=copy.id, defaults={
            "reservation": reservation, "ical_uid": copy.ical_uid, "start": reservation.start, "end": reservation.end,
            "subject": reservation.subject[:255], "organizer": ctx.mailbox, "outcome": "cancelled", "removed_at": ctx.now,
        })
    else:
        mark_removed(ctx, copy.id, row, outcome="cancelled")
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
        query |= Q(ical_uid__in=uids) | of_series_named(uids)
    found = (
        Reservation.objects.filter(query)
        .select_related("room__building", "requested_for", "requested_by", "series")
        .prefetch_related("attendees")
    )
    # Meetings of rooms without a mailbox live here too, but this calendar is not watched for
    # them (the Archibus seed): their changes belong in the product, so they count as unlinked.
    return [r for r in found if (r.mailbox or "").lower() == ctx.mailbox and r.room.mailbox]


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
    ``MAX_DEFERRALS`` re-checks only pulls look again (a push retrying for long)."""
    note = f"waiting for reservation {reservation.pk}'s push"
    if copy.removed:
        row, _ = RoomEvent.objects.update_or_create(mailbox=ctx.mailbox, event_id=copy.id, defaults={
            "reservation": reservation, "outcome": "deferred", "note": note, "change_key": "",
            "start": reservation.start, "end": reservation.end, "subject": reservation.subject[:255],
        })
    else:
        row = record_copy(ctx, copy, row, reservation=reservation, outcome="deferred", note=note, change_key="")
    RoomEvent.objects.filter(pk=row.pk).update(deferrals=row.deferrals + 1)
    if row.deferrals < MAX_DEFERRALS:
        ctx.deferred = True
    return "deferred"
