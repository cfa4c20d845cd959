"""The room calendar's reconciler: the SPEC §4 table, row by row, for one room's copies.

A delta pull (``inbound.delta``) hands us the room's copies page by page; each copy is
one row of the table: (a) created by inviting the room → ``_row_a_created_in_outlook``;
(b) the product's meeting updated in Exchange → ``_row_b_updated_in_exchange``; (c)
cancelled on the room calendar → ``_vanished``; (d) the product's own write (echo) →
``_row_d_own_echo``; (e) cancelled by the product → ``_settle_vanished``. A copy the room
declined is its answer: an awaiting reservation is ``rejected`` (``common.answers``).
Nightly differs only where the table says so: it acts on a vanished meeting only when
seen before. Nothing here echoes back: the ``*_from_exchange`` services write no outbox event,
and a reservation whose own push is still on its way is deferred, not judged. The why of
each rule is in the README ("Inbound sync").

One file of about 550 lines on purpose: the table's rows are read side by side with
SPEC §4 (STYLE 11, 15); what both reconcilers share lives in ``copies``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from exchange_auth import properties
from exchange_auth.graph import GraphError
from reservations import services
from reservations.exceptions import ReservationError, SlotTaken
from reservations.models import (
    ACTIVE_STATES,
    Attendee,
    Kind,
    Origin,
    Reservation,
    State,
    SyncState,
)
from workplace.models import Room

from .. import conf
from ..common import meetings
from ..common.answers import (
    WAITING_FOR_ANSWER,
    apply_room_response,
    normalised,
    read_organizer_copy,
    room_response,
)
from ..models import RoomEvent
from . import outlook_series, own_copies
from .copies import (
    MAX_DEFERRALS,
    NO_SUBJECT,
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


# --- what a room's copy of a meeting says --------------------------------------------------


# --- the context of one pull ----------------------------------------------------------------


@dataclass(kw_only=True)
class Context(PullContext):
    """One pull of a room's calendar."""

    room: Room
    # Removed copies that mapped to nothing we recorded: maybe a copy of the product's own
    # meeting that no pull recorded before it went (``settle_unrecorded`` finds out).
    unmapped_removals: set[str] = field(default_factory=set)
    # What the page being reconciled may match, read once for the page (``PageReads``).
    page: PageReads | None = None

    @property
    def mailbox(self) -> str:
        return self.room.mailbox.lower()


# --- entry points -------------------------------------------------------------------------


def reconcile_page(ctx: Context, raw_events: list[dict]) -> None:
    """One page of a delta round. One query finds what we knew about the page's copies;
    unchanged copies (same change key) cost nothing more; the reservations the page's new
    copies may match are read in two more (``PageReads``), not a few per copy."""
    copies = [parse_copy(raw) for raw in raw_events if raw.get("id")]
    # What left the calendar first: a series Outlook ends ("this and following") and the new
    # one it makes in its place arrive in one round, and the new one's occurrences need the
    # slots the old one's leave.
    copies.sort(key=lambda copy: not (copy.removed or copy.is_cancelled))
    known = known_rows(ctx, copies)
    ctx.page = PageReads.read(ctx, [c for c in copies if not _unchanged(c, known.get(c.id))], known)

    def decide(copy: Copy, row: RoomEvent | None) -> str:
        try:
            outcome = reconcile_copy(ctx, copy, row)
        except BaseException:
            ctx.page.spoil()
            raise
        ctx.page.decided(copy, outcome)
        return outcome

    try:
        reconcile_each(ctx, copies, known, decide)
    finally:
        ctx.page = None


def _unchanged(copy: Copy, row: RoomEvent | None) -> bool:
    """What ``reconcile_each`` skips (the copy's change key recorded, nothing pending)."""
    return not copy.removed and row is not None and row.removed_at is None and row.change_key == copy.change_key and row.outcome != "deferred"


# Outcomes that change no reservation another copy of the page could match (a reservation
# made from an Outlook meeting carries that copy's own ids): after any other, the page's
# reads are dropped and the rest of the page queries as it goes.
_KEEPS_PAGE_READS = frozenset({"created", "unowned", "declined", "past_not_booked", "outside_window", "series_master", "deferred"})


@dataclass
class PageReads:
    """The reservations one page's copies may match, read once for the page (a burst of
    Outlook bookings is pages of new copies, each of which would otherwise ask three times):

    - ``matched``: every reservation a copy's event id, iCalUId or series iCalUId names, or
      a recorded row links (``find_reservation``'s query, for all copies at once);
    - ``product``: the room's active product reservations over the page's span that are
      still being written or have no meeting linked (``_pending_product_reservation`` and
      ``own_copies.unlinked_candidates``);
    - the requesters by organizer (``requester_for``).

    Valid while the page's decisions change no reservation a later copy could match: a copy
    sharing an id with one decided before it asks the database again (``covers``), and an
    outcome that may have changed a reservation (an echo, an update, a cancellation) drops
    the reads for the rest of the page (``decided``)."""

    matched: list[Reservation] | None
    product: list[Reservation] | None
    span: tuple[dt.datetime, dt.datetime] | None
    row_reservations: set[int] = field(default_factory=set)
    decided_keys: set[str] = field(default_factory=set)
    requesters: dict[str, tuple] = field(default_factory=dict)

    @classmethod
    def read(cls, ctx: Context, copies: list[Copy], known: dict[str, RoomEvent]) -> PageReads:
        live = [c for c in copies if not c.removed]
        if not live:
            return cls(matched=None, product=None, span=None)
        ids = [c.id for c in live]
        uids = sorted({u for c in live for u in c.uids})
        # The rows of these copies only: ``known`` holds the whole page's, and on a nightly round
        # the page's unchanged copies (skipped, never matched) would load their reservations too.
        rows = (known.get(c.id) for c in live)
        row_reservations = {row.reservation_id for row in rows if row is not None and row.reservation_id}
        query = Q(event_id__in=ids) | Q(pk__in=row_reservations)
        if uids:
            query |= Q(ical_uid__in=uids) | of_series_named(uids)
        matched = list(Reservation.objects.filter(query).select_related("room__building", "requested_for", "requested_by", "series"))
        timed = [c for c in live if c.start is not None and c.end is not None]
        span = (min(c.start for c in timed), max(c.end for c in timed)) if timed else None
        product = own_copies.product_candidates(ctx.room, *span) if span else []
        return cls(matched=matched, product=product, span=span, row_reservations=row_reservations)

    def covers(self, copy: Copy, row: RoomEvent | None) -> bool:
        """Whether ``matched`` still answers for this copy."""
        return (self.matched is not None and not ({copy.id} | copy.uids) & self.decided_keys
                and (row is None or not row.reservation_id or row.reservation_id in self.row_reservations))

    def covers_time(self, copy: Copy) -> bool:
        """Whether ``product`` still answers for this copy's slot."""
        return (self.product is not None and self.span is not None and copy.start is not None and copy.end is not None
                and self.span[0] <= copy.start and copy.end <= self.span[1])

    def decided(self, copy: Copy, outcome: str) -> None:
        self.decided_keys |= {copy.id} | copy.uids
        if outcome not in _KEEPS_PAGE_READS:
            self.spoil()

    def spoil(self) -> None:
        self.matched = self.product = None


def reconcile_copy(ctx: Context, copy: Copy, row: RoomEvent | None) -> str:
    """Decide the row of the table for one copy; returns the outcome's name."""
    if copy.removed:
        return _vanished(ctx, copy.id, row, confirm=True)
    if copy.is_cancelled:
        return _vanished(ctx, copy.id, row, confirm=False, copy=copy)
    if copy.response == "declined":
        return _room_declined(ctx, copy, row)
    if copy.type == "seriesMaster":
        return "series_master"  # the round carries each occurrence; they are what we reconcile
    if copy.start is None or copy.end is None or copy.end <= ctx.window_start or copy.start >= ctx.window_end:
        return "outside_window"
    reservation = find_reservation(copy, row, page=ctx.page)
    if reservation is None:
        return _row_a_created_in_outlook(ctx, copy, row)
    if reservation.state not in ACTIVE_STATES or reservation.room_id != ctx.room.pk:
        # Rejected/cancelled here, or moved to another room: the product's own push settles
        # the meeting; this copy needs nothing from us.
        record_copy(ctx, copy, row, reservation=reservation, outcome="inactive")
        return "no_action"
    if outbound_in_flight(reservation):
        return _defer(ctx, copy, row, reservation=reservation)
    if _same(reservation, copy):
        return _row_d_own_echo(ctx, copy, row, reservation)
    return _row_b_updated_in_exchange(ctx, copy, row, reservation)


def sweep_unseen(ctx: Context) -> None:
    """After a full round: a copy we had seen (a ``RoomEvent``) that the round no longer
    has was deleted. The nightly row (c): only meetings seen before count."""
    live = RoomEvent.objects.filter(mailbox=ctx.mailbox, removed_at__isnull=True, start__lt=ctx.window_end, end__gt=ctx.window_start)
    for row in RoomEvent.objects.filter(pk__in=unseen_rows(ctx, live)).select_related("reservation").order_by("pk"):
        ctx.stats[_vanished(ctx, row.event_id, row, confirm=False)] += 1


def reconcile_notified_deletions(ctx: Context, event_ids: list[str]) -> None:
    """Copies that "deleted" notifications of this pull named and its round did not mention.
    A copy created and deleted between two delta rounds shows in neither, yet the
    notification names it: one we recorded is settled as removed (confirmed with a read);
    one we never recorded counts as an unmapped removal (``settle_unrecorded``)."""
    ids = [event_id for event_id in dict.fromkeys(event_ids) if event_id and event_id not in ctx.seen]
    if not ids:
        return
    rows = {row.event_id: row for row in RoomEvent.objects.filter(mailbox=ctx.mailbox, event_id__in=ids).select_related("reservation")}
    for event_id in ids:
        try:
            ctx.stats[_vanished(ctx, event_id, rows.get(event_id), confirm=True)] += 1
        except GraphError as exc:
            logger.warning("inbound: deleted %s on %s failed: %s", event_id[:16], ctx.mailbox, exc)
            if exc.transient:
                raise


UNRECORDED_LIMIT = 50  # Graph reads one pull spends on copies never recorded (the rest: next pull)


def unrecorded_reservations(ctx: Context) -> list[Reservation]:
    """Active reservations of this room linked to a meeting (single meetings) in the window
    whose room copy no pull has recorded (no ``RoomEvent`` of this mailbox by iCalUId or
    reservation): usually none, or a few booked moments ago. One query."""
    recorded = RoomEvent.objects.filter(mailbox=ctx.mailbox)
    return list(
        Reservation.objects.filter(
            room=ctx.room, state__in=ACTIVE_STATES, series__isnull=True, start__lt=ctx.window_end, end__gt=ctx.window_start,
        )
        .exclude(ical_uid="")
        .exclude(ical_uid__in=recorded.exclude(ical_uid="").values("ical_uid"))
        .exclude(pk__in=recorded.filter(reservation__isnull=False).values("reservation_id"))
        .select_related("room__building", "requested_for", "requested_by")
        .order_by("start")[:UNRECORDED_LIMIT]
    )


def settle_unrecorded(ctx: Context, *, full: bool) -> None:
    """Copies of the product's meetings that no pull recorded, asked of Exchange one by one.

    The room's booking attendant writes its copy (own event id, same iCalUId) moments after
    the product's push; until a pull records it, its removal (``@removed``, a "deleted"
    notification) carries an id that maps to no reservation, and a full round simply does
    not have it. So after a round that met such a removal, and after every full round:

    1. each candidate (``unrecorded_reservations``) whose own change is still on its way
       to Exchange is left to the next round (the copy we would read is older);
    2. its copy is looked up on the room calendar by iCalUId (one read);
    3. still there → reconciled like any copy the round carries (recorded: the echo, or
       an update made in Exchange), nothing else;
    4. gone → settled as a recorded copy that vanished (``_settle_vanished``): cancelled by
       the organizer → cancelled and the requester told (row c); declined by the room →
       rejected. A reservation still waiting for the room's answer is left alone while
       its meeting stands and the room has not declined: the room may simply not have
       answered yet (``outbound.confirm`` handles that).

    The product's own meeting counts as seen before (the product wrote it and recorded its
    ids), so the nightly pass settles it too."""
    if not full and not ctx.unmapped_removals:
        return
    for reservation in unrecorded_reservations(ctx):
        if outbound_in_flight(reservation):
            ctx.stats["unrecorded_in_flight"] += 1
            continue
        try:
            outcome = _settle_unrecorded_one(ctx, reservation)
        except GraphError as exc:
            logger.warning("inbound: unrecorded copy of reservation %s on %s failed: %s", reservation.pk, ctx.mailbox, exc)
            outcome = "graph_error"
            if exc.transient:
                raise
        ctx.stats[outcome] += 1


def _settle_unrecorded_one(ctx: Context, reservation: Reservation) -> str:
    found = meetings.by_ical_uid(ctx.client, ctx.mailbox, reservation.ical_uid)
    copies = [parse_copy(raw) for raw in found if raw.get("id")]
    if copies:
        outcomes = [reconcile_copy(ctx, copy, None) for copy in copies]
        return outcomes[0] if len(outcomes) == 1 else "unrecorded_" + "+".join(sorted(set(outcomes)))
    declined = None
    if reservation.state in WAITING_FOR_ANSWER:
        body = read_organizer_copy(reservation)
        if body == {}:
            return "unrecorded_unreadable"  # the organizer's copy can't be read now: asked again next time
        declined = body is not None  # gone or cancelled (None) → the meeting went; else the room's answer
        if declined and room_response(body, ctx.room.mailbox) != "declined":
            return "unrecorded_unanswered"  # the meeting stands and the room has not declined: it may not have answered yet
    return _settle_vanished(ctx, "", None, reservation, confirm=False, declined=declined)


# --- (a) ---------------------------------------------------------------------------------------


def _row_a_created_in_outlook(ctx: Context, copy: Copy, row: RoomEvent | None) -> str:
    """(a) A meeting created by inviting the room. Room free and rules met → reservation
    (source outlook, origin exchange); else the room declines, saying why."""
    room = ctx.room
    pending = _pending_product_reservation(room, copy, page=ctx.page)
    if pending is not None and row is None:
        return _defer(ctx, copy, row, reservation=pending)  # usually the push links it within moments
    # Not linked by the re-check: maybe the product's meeting whose push died before the link
    # (own_copies: what the product wrote into the organizer's event says so). Never declined.
    own = own_copies.recognise(ctx, copy)
    if own.reservation is not None:
        return _row_d_own_echo(ctx, copy, row, own.reservation)
    if pending is not None and (own.unsure or row is None or row.deferrals < MAX_DEFERRALS):
        return _defer(ctx, copy, row, reservation=pending)
    if own.unsure:
        return _defer(ctx, copy, row, reservation=None)
    refusal = rules_refusal(room, copy, now=ctx.now)
    if refusal:
        return _decline_or_record(ctx, copy, row, refusal)
    if ctx.page is not None and copy.organizer in ctx.page.requesters:
        requested_for, kind = ctx.page.requesters[copy.organizer]
    else:
        requested_for, kind = requester_for(copy.organizer, ctx.provider)
        if ctx.page is not None:
            ctx.page.requesters[copy.organizer] = (requested_for, kind)
    if requested_for is None:
        record_copy(ctx, copy, row, outcome="unowned", note="No user to book for: the organizer has no account and no blocker user is configured.")
        return "unowned"
    # An occurrence of a series made in Outlook joins the product's series (outlook_series).
    series = outlook_series.series_for(room, copy, requested_for=requested_for, mailbox=ctx.mailbox)
    try:
        reservation = services.reservation_create_from_exchange(
            room=room, start=copy.start, end=copy.end, subject=(copy.subject or NO_SUBJECT)[:255],
            requested_for=requested_for, attendees=_attendees(copy, room), kind=kind, exchange=_ids(ctx, copy),
            series=series, original_start=copy.original_start or copy.start,
        )
    except SlotTaken:
        if ctx.page is not None and ctx.page.matched is not None:
            # The page's read is older than whatever took the slot (this very meeting's
            # reservation, made meanwhile by a pull whose lease ran out?): ask the database.
            ctx.page.spoil()
            return reconcile_copy(ctx, copy, row)
        reason = f"{room.name} is already booked in the reservation system at that time."
        return _decline_or_record(ctx, copy, row, reason)
    except ReservationError as exc:
        return _decline_or_record(ctx, copy, row, exc.message)
    record_copy(ctx, copy, row, reservation=reservation, outcome="created")
    logger.info("inbound: reservation %s created from Outlook meeting in %s", reservation.pk, room.mailbox)
    return "created"


def rules_refusal(room: Room, copy: Copy, *, now: dt.datetime) -> str:
    """Why the room can't take this meeting under the product's rules ("" when it can)."""
    if not room.reservable:
        return f"{room.name} is not reservable."
    if not room.is_synced:
        return f"{room.name} is not bookable from Outlook."
    if copy.start > now + dt.timedelta(days=settings.RESERVATION_BOOKING_HORIZON_DAYS):
        return f"{room.name} can be booked at most {settings.RESERVATION_BOOKING_HORIZON_DAYS} days ahead (outside the booking window)."
    minutes = (copy.end - copy.start).total_seconds() / 60
    if minutes > settings.RESERVATION_MAX_DURATION_MINUTES:
        return f"{room.name} can be booked for at most {settings.RESERVATION_MAX_DURATION_MINUTES // 60} hours (the meeting is too long)."
    return ""


def requester_for(organizer: str, provider) -> tuple[object | None, str]:
    """(whom the reservation is for, kind): the organizer's own account when the product
    knows them; else a blocker for ``sn_wsd_rsv.blocker_user``, the provider's organizer
    account or delegated user, or ``CALENDAR_SYNC_INBOUND_FALLBACK_USER``."""
    users = get_user_model().objects.filter(is_active=True)
    if organizer:
        user = users.filter(email__iexact=organizer).first()
        if user is not None:
            return user, Kind.STANDARD
    if not properties.get(properties.CREATE_BLOCKING_RSV):
        return None, Kind.BLOCKER
    candidates = [properties.get(properties.BLOCKER_USER)]
    if provider is not None:
        candidates += [provider.organizer_account, provider.delegated_user_email]
    for email in filter(None, candidates):
        user = users.filter(email__iexact=email).first()
        if user is not None:
            return user, Kind.BLOCKER
    fallback = conf.get().inbound_fallback_user
    if fallback:
        user = users.filter(Q(username=fallback) | Q(email__iexact=fallback)).first()
        if user is not None:
            return user, Kind.BLOCKER
    return None, Kind.BLOCKER


def _attendees(copy: Copy, room: Room) -> list[dict]:
    """People on the meeting (the room itself left out); Exchange's answers are unknown to us."""
    out = []
    for attendee in copy.attendees:
        address = ((attendee.get("emailAddress") or {}).get("address") or "").strip().lower()
        if not address or address == room.mailbox.lower():
            continue
        try:
            validate_email(address)
        except ValidationError:
            continue
        kind = attendee.get("type") if attendee.get("type") in Attendee.Type.values else Attendee.Type.REQUIRED
        name = ((attendee.get("emailAddress") or {}).get("name") or "")[:200]
        out.append({"email": address, "name": name, "type": kind, "response": Attendee.Response.UNKNOWN})
    return out


def _decline_or_record(ctx: Context, copy: Copy, row: RoomEvent | None, reason: str) -> str:
    if copy.end <= ctx.now:
        record_copy(ctx, copy, row, outcome="past_not_booked", note=reason)
        return "past_not_booked"  # declining a meeting that is over helps no one
    meetings.decline(ctx.client, ctx.room.mailbox, copy.id, reason)
    record_copy(ctx, copy, row, outcome="declined", note=reason, removed=True)
    logger.info("inbound: %s declined an Outlook meeting: %s", ctx.room.mailbox, reason)
    return "declined"


# --- (b) and (d) --------------------------------------------------------------------------------


def _same(reservation: Reservation, copy: Copy) -> bool:
    return reservation.start == copy.start and reservation.end == copy.end and (
        reservation.subject == (copy.subject or NO_SUBJECT)[:255] or copy.subject.startswith("Canceled: ")
    )


def _row_d_own_echo(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation) -> str:
    """(d) The product created/updated this meeting: record ids and change key, nothing else."""
    outlook_series.follow_master(ctx.room, copy, reservation.series)
    if reservation.event_id == copy.id and reservation.change_key != copy.change_key:
        # The room organizes the meeting: the copy *is* the meeting the reservation points at.
        services.reservation_link_exchange(reservation=reservation, event_id=copy.id, change_key=copy.change_key)
    if reservation.state == State.AWAITING_CONFIRMATION and copy.response in ("accepted", "tentativelyAccepted"):
        # The room's copy says it accepted (its delegate did, when approvals are delegated), or
        # that a delegate has the request (tentative: the reservation awaits their approval).
        apply_room_response(reservation, normalised(copy.response))
    record_copy(ctx, copy, row, reservation=reservation, outcome="echo")
    return "echo"


def _row_b_updated_in_exchange(ctx: Context, copy: Copy, row: RoomEvent | None, reservation: Reservation) -> str:
    """(b) The meeting changed in Exchange. Room free (and rules met) → the reservation
    follows, ids and change key included; else the meeting is cancelled (an Outlook
    meeting: the room declines it), the reservation cancelled and the requester told."""
    room = ctx.room
    outlook_series.follow_master(room, copy, reservation.series)
    moved = reservation.start != copy.start or reservation.end != copy.end
    refusal = rules_refusal(room, copy, now=ctx.now) if moved and copy.end > ctx.now else ""
    if not refusal:
        changes = {"subject": (copy.subject or NO_SUBJECT)[:255]}
        if moved:
            changes.update(start=copy.start, end=copy.end)
        if reservation.origin == Origin.EXCHANGE:
            changes["attendees"] = _attendees(copy, room)
        try:
            services.reservation_update_from_exchange(reservation=reservation, exchange=_ids(ctx, copy, reservation=reservation), **changes)
        except SlotTaken:
            refusal = f"{room.name} is already booked in the reservation system at the new time."
        except ReservationError as exc:
            refusal = exc.message
    if not refusal:
        record_copy(ctx, copy, row, reservation=reservation, outcome="updated")
        return "updated"
    _cancel_meeting(ctx, copy, reservation, refusal)
    cancel_reservation(reservation, reason=f"The meeting was changed in Outlook and can't be kept: {refusal}")
    record_copy(ctx, copy, row, reservation=reservation, outcome="cancelled_conflict", note=refusal, removed=True)
    return "cancelled_conflict"


def _cancel_meeting(ctx: Context, copy: Copy, reservation: Reservation, reason: str) -> None:
    """The product's meeting is cancelled by its organizer mailbox; an Outlook meeting (or
    one we may not touch) is declined by the room instead."""
    if reservation.origin == Origin.APP and reservation.mailbox and reservation.event_id:
        try:
            meetings.cancel(ctx.client, reservation.mailbox, reservation.event_id, reason)
            return
        except GraphError as exc:
            if exc.transient:
                raise
            logger.warning("inbound: could not cancel meeting of reservation %s (%s); the room declines it", reservation.pk, exc)
    meetings.decline(ctx.client, ctx.room.mailbox, copy.id, reason)


# --- (c) and (e) ----------------------------------------------------------------------------------


CANCELLED_IN_OUTLOOK = "The meeting was cancelled in Outlook (it is no longer on the room's calendar)."
WITHDRAWN_BY_ROOM = "{room} declined the meeting in Exchange after accepting it (it is no longer booked on the room's calendar)."


def _vanished(ctx: Context, event_id: str, row: RoomEvent | None, *, confirm: bool, copy: Copy | None = None,
              reason: str = CANCELLED_IN_OUTLOOK) -> str:
    """The copy left the room calendar (deleted, cancelled, declined after a yes), or the
    nightly round no longer has it. (c) linked to an active reservation → cancelled and the
    requester told; (e) nothing active linked → no action. A reservation still waiting for
    the room's answer is asked first whether the room declined (the organizer's copy says
    so): then it is ``rejected`` as ``_room_declined`` does it, not cancelled."""
    if row is not None and row.removed_at is not None:
        return "no_action"  # we removed it ourselves (declined) or saw it go already
    reservation = row.reservation if row is not None and row.reservation_id else None
    if reservation is None and copy is not None:
        reservation = find_reservation(copy, row)
    if reservation is None and row is not None and row.ical_uid:
        # A copy put aside (deferred) while the product's push was in flight is recorded
        # without its reservation: its iCalUId still says whose it is.
        reservation = find_reservation(Copy(id=event_id, ical_uid=row.ical_uid, start=row.start), row)
    if reservation is None and row is None:
        reservation = Reservation.objects.filter(event_id=event_id, mailbox__iexact=ctx.mailbox).first()
        if reservation is None:
            ctx.unmapped_removals.add(event_id)  # maybe the product's meeting, never recorded: settle_unrecorded
    if ctx.nightly and row is None:
        return "no_action"  # nightly: only meetings seen before
    return _settle_vanished(ctx, event_id, row, reservation, confirm=confirm, reason=reason)


def _settle_vanished(ctx: Context, event_id: str, row: RoomEvent | None, reservation: Reservation | None, *, confirm: bool,
                     reason: str = CANCELLED_IN_OUTLOOK, declined: bool | None = None) -> str:
    """What a copy's leaving the room calendar means for ``reservation`` (see ``_vanished``).
    ``declined``: what the organizer's copy says, when the caller has read it already."""
    if reservation is None or reservation.state not in ACTIVE_STATES or reservation.room_id != ctx.room.pk:
        mark_removed(ctx, event_id, row)
        return "no_action"  # (e) the product cancelled it, or moved the reservation elsewhere
    if outbound_in_flight(reservation):
        return "deferred"  # the product's change is on its way; the next round settles it
    if confirm and still_in_mailbox(ctx, event_id):
        return "outside_window"  # @removed because it moved out of the window, not deleted
    if reservation.state in WAITING_FOR_ANSWER and (room_declined_on_organizer_copy(reservation) if declined is None else declined):
        # Exchange removes the copy a room declines: the reservation waiting for that answer is
        # rejected, as every confirmation reader does it (``_room_declined``), not cancelled.
        apply_room_response(reservation, "declined")
        mark_removed(ctx, event_id, row, outcome="rejected")
        return "rejected" if reservation.state == State.REJECTED else "no_action"
    cancel_reservation(reservation, reason=reason)
    mark_removed(ctx, event_id, row, outcome="cancelled")
    return "cancelled"


def room_declined_on_organizer_copy(reservation: Reservation) -> bool:
    """The room's copy of a meeting still waiting for its answer is gone: did the room decline
    (the organizer's copy says so), or did the meeting go? One read; unreadable → False."""
    room_mailbox = reservation.room.mailbox
    if not room_mailbox or reservation.organizer.lower() == room_mailbox.lower():
        return False  # the room organizes it: its copy was the meeting
    body = read_organizer_copy(reservation)
    return bool(body) and room_response(body, room_mailbox) == "declined"


def _room_declined(ctx: Context, copy: Copy, row: RoomEvent | None) -> str:
    """The room's copy stays on its calendar marked declined: the room said no (a delegate
    answering for it, or its booking attendant re-checking a changed meeting). Exchange
    usually removes a declined copy instead: that removal comes to ``_vanished``, which
    reads the organizer's copy to tell a decline from a cancellation and ends the same way.

    - Its reservation still waits for the room's answer (``awaiting_confirmation``, or
      ``conflicted``) → this *is* the answer (SPEC §4 Confirmation): ``rejected``, with the
      reason and email every confirmation reader gives (``common.answers``),
      never ``cancelled``. Real-time and nightly alike (the copy is there to read, so
      "seen before" does not matter). Whichever reader sees the decline first makes the
      one transition (a conditional update); the others find nothing to change.
    - Its reservation is ``confirmed`` (the room had accepted; later it went back on its
      answer, e.g. someone force-booked the slot in Exchange) → row (c): the meeting no
      longer holds the room, so the reservation is ``cancelled`` and the requester told
      (nightly: only a meeting seen before), as before. Deliberately not ``rejected``: that
      answers a request still open, and this one had been granted.
    - Anything else (nothing linked, inactive, another room, a copy we declined) → no action.
    """
    if row is not None and row.removed_at is not None:
        return "no_action"  # we declined it ourselves (row a), or settled it already
    reservation = find_reservation(copy, row)
    if reservation is None or reservation.state not in WAITING_FOR_ANSWER or reservation.room_id != ctx.room.pk:
        return _vanished(ctx, copy.id, row, confirm=False, copy=copy, reason=WITHDRAWN_BY_ROOM.format(room=ctx.room.name))
    if outbound_in_flight(reservation):
        return _defer(ctx, copy, row, reservation=reservation)  # the answer may be to the meeting before the product's change
    apply_room_response(reservation, "declined")
    outcome = "rejected" if reservation.state == State.REJECTED else "no_action"
    record_copy(ctx, copy, row, reservation=reservation, outcome=outcome, note=reservation.state_reason, removed=True)
    logger.info("inbound: %s declined the meeting of reservation %s: %s", ctx.room.mailbox, reservation.pk, reservation.state)
    return outcome


# --- matching --------------------------------------------------------------------------------


def find_reservation(copy: Copy, row: RoomEvent | None, *, page: PageReads | None = None) -> Reservation | None:
    """The reservation this copy belongs to: by our record, the event id (room-organized
    meetings), the iCalUId, or the series' iCalUId and the occurrence's start. ``page``: the
    page's reads, when they still answer for this copy (else one query)."""
    if page is not None and page.covers(copy, row):
        uids = copy.uids
        linked = row.reservation_id if row is not None else None
        candidates = [c for c in page.matched if c.event_id == copy.id or (linked and c.pk == linked)
                      or (uids and (c.ical_uid in uids or (c.series is not None and c.series.ical_uid in uids)))]
    else:
        query = Q(event_id=copy.id)
        if copy.uids:
            query |= Q(ical_uid__in=copy.uids) | of_series_named(copy.uids)
        if row is not None and row.reservation_id:
            query |= Q(pk=row.reservation_id)
        candidates = list(Reservation.objects.filter(query).select_related("room__building", "requested_for", "requested_by", "series"))
    if not candidates:
        return None
    if row is not None and row.reservation_id:
        for candidate in candidates:
            if candidate.pk == row.reservation_id:
                return candidate
    for candidate in candidates:
        if candidate.event_id == copy.id:
            return candidate
    if copy.series_master_id:
        # An occurrence: its own reservation (its iCalUId), or its series' one for its slot; the
        # series' other occurrences are not it (an occurrence not booked yet matches none).
        wanted = copy.original_start or copy.start
        candidates = [c for c in candidates if (copy.ical_uid and c.ical_uid == copy.ical_uid and not c.series_id)
                      or (c.series_id and (c.original_start or c.start) == wanted)]
        if not candidates:
            return None
    if len(candidates) == 1:
        return candidates[0]
    # Occurrences of one series share the iCalUId: pick the slot this copy is.
    wanted = copy.original_start or copy.start
    by_slot = [c for c in candidates if (c.original_start or c.start) == wanted]
    active = [c for c in (by_slot or candidates) if c.state in ACTIVE_STATES]
    return (active or by_slot or candidates)[0]


def _pending_product_reservation(room: Room, copy: Copy, *, page: PageReads | None = None) -> Reservation | None:
    """An active product reservation overlapping this copy whose meeting is still being
    written: the copy may be that very meeting (its ids are not stored yet)."""
    if page is not None and page.covers_time(copy):
        candidates = [r for r in page.product if r.sync_state == SyncState.PENDING and r.start < copy.end and r.end > copy.start]
    else:
        candidates = Reservation.objects.filter(
            room=room, state__in=ACTIVE_STATES, origin=Origin.APP, start__lt=copy.end, end__gt=copy.start, sync_state=SyncState.PENDING,
        )
    for reservation in candidates:
        if outbound_in_flight(reservation) or not reservation.ical_uid:
            return reservation
    return None


def _defer(ctx: Context, copy: Copy, row: RoomEvent | None, *, reservation: Reservation | None) -> str:
    """Look again shortly: the change key is not recorded, so the copy is re-checked."""
    note = f"waiting for reservation {reservation.pk}'s push" if reservation is not None else "the organizer's event could not be read"
    row = record_copy(ctx, copy, row, reservation=None, outcome="deferred", note=note, change_key="")
    RoomEvent.objects.filter(pk=row.pk).update(deferrals=row.deferrals + 1)
    ctx.deferred = True
    return "deferred"


# --- bookkeeping ------------------------------------------------------------------------------


def _ids(ctx: Context, copy: Copy, reservation: Reservation | None = None) -> services.ExchangeIds:
    """What the reservation stores: for an Outlook meeting, the room's copy; for the
    product's meeting, only the change key when the room organizes it (event id equal)."""
    if reservation is not None and reservation.origin == Origin.APP:
        if reservation.event_id == copy.id:
            return services.ExchangeIds(change_key=copy.change_key)
        return services.ExchangeIds()
    return services.ExchangeIds(
        event_id=copy.id, change_key=copy.change_key, ical_uid=copy.ical_uid, mailbox=ctx.mailbox,
        organizer=copy.organizer, sync_mailbox="other",
    )


