"""Booking a room: ``reservation_create``, one reservation or a whole series, all or nothing.

It validates, checks the sync-mode restrictions (``reservations.rules``), then writes the rows
and, for a synced room, the outbox event, in one durable transaction; the database refuses an
overlap (``conflicts``). A create that loses a deadlock to a racing booking is run again."""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, transaction

from reservations import fastpaths, online_meetings, rules
from reservations.exceptions import InvalidReservation
from reservations.models import (
    ApprovalState,
    Attendee,
    Kind,
    Origin,
    Reservation,
    ReservationSeries,
    Source,
    State,
    SyncState,
)
from reservations.recurrence import Recurrence, Slot, expand
from reservations.services import clock
from reservations.services.conflicts import (
    DEADLOCK_RETRIES,
    check_free_first,
    is_deadlock,
    is_overlap_violation,
    slot_taken_after_race,
)
from reservations.services.exchange import ExchangeIds
from reservations.services.sync_events import channel, record_create
from reservations.services.validation import clean_attendees, raise_invalid, validate
from workplace.models import Arrangement, Room


def initial_states(*, room: Room, from_exchange: bool) -> tuple[str, str]:
    """(state, sync_state) of a new reservation (or one moved to ``room``)."""
    if from_exchange:
        return State.CONFIRMED, SyncState.SYNCED
    if room.is_synced:
        return State.AWAITING_CONFIRMATION, SyncState.PENDING
    return State.CONFIRMED, SyncState.NOT_SYNCED


def attendee_rows(reservation: Reservation, attendees: list[dict]) -> list[Attendee]:
    return [Attendee(reservation=reservation, **attendee) for attendee in attendees]


def _cache_attendees(reservation: Reservation, attendees: list[Attendee]) -> None:
    """Fill ``reservation.attendees.all()`` the way prefetch_related would."""
    cached = reservation.attendees.all()
    cached._result_cache = attendees
    cached._prefetch_done = True
    reservation._prefetched_objects_cache = {"attendees": cached}


def reservation_create(
    *,
    actor: AbstractBaseUser | None,
    room: Room,
    start: dt.datetime,
    end: dt.datetime,
    subject: str,
    body: str = "",
    arrangement: Arrangement | None = None,
    requested_for: AbstractBaseUser | None = None,
    attendees: Iterable[Mapping[str, Any]] = (),
    kind: str = Kind.STANDARD,
    source: str = Source.PORTAL,
    subsource: str = "",
    recurrence: Recurrence | None = None,
    from_exchange: bool = False,
    exchange: ExchangeIds | None = None,
    online_meeting: bool = False,
    in_series: ReservationSeries | None = None,
    original_start: dt.datetime | None = None,
) -> Reservation:
    """Book ``room`` from ``start`` to ``end``; with ``recurrence``, a whole series.

    ``in_series`` (from Exchange only): one occurrence of a series made in Outlook, added to its
    ``ReservationSeries`` as Exchange reports it, ``original_start`` its slot in the pattern.

    Returns the (first) reservation; a series' occurrences are ``result.series.occurrences``.

    A series is all or nothing: when any occurrence collides, nothing is booked
    and ``SlotTaken`` lists every colliding occurrence with the slot it hits
    (``extra["conflicts"]``), so the person can pick another time or room for
    the whole series rather than discover holes in it later.
    """
    requested_for = requested_for or actor
    if requested_for is None:
        raise InvalidReservation("Say whom the reservation is for.", extra={"requested_for": ["This field is required."]})
    requested_by = actor or requested_for
    errors: dict[str, list[str]] = {}
    cleaned = clean_attendees(attendees, errors)
    if kind not in Kind.values:
        errors.setdefault("kind", []).append(f"Choose one of {', '.join(Kind.values)}.")
    if source not in Source.values:
        errors.setdefault("source", []).append(f"Choose one of {', '.join(Source.values)}.")
    if kind == Kind.STANDARD and requested_for.pk != requested_by.pk:
        kind = Kind.ON_BEHALF
    if kind == Kind.BLOCKER and actor is not None and not actor.is_staff:
        errors.setdefault("kind", []).append("Only admins create blocker reservations.")
    if kind == Kind.GROUP and not room.group_reservations_enabled:
        errors.setdefault("kind", []).append(f"{room.name} doesn't take group reservations.")
    if arrangement is None:
        arrangement = room.default_arrangement()
    validate(
        room=room, arrangement=arrangement, start=start, end=end, subject=subject, body=body,
        attendees=cleaned, requested_for=requested_for, errors=errors, strict_time=not from_exchange,
    )
    if online_meeting and room.is_synced and not from_exchange:
        reason = online_meetings.refusal(room=room, actor=actor, requested_for=requested_for, kind=kind, source=source, subsource=subsource)
        if reason:
            errors.setdefault("online_meeting", []).append(reason)
    raise_invalid(errors)
    if in_series is not None and (not from_exchange or recurrence is not None or in_series.room_id != room.pk):
        raise ValueError("in_series adds one occurrence from Exchange to a series of the same room")
    slots = _slots(room=room, start=start, end=end, recurrence=recurrence, from_exchange=from_exchange)
    if in_series is not None:
        slots = [Slot(start=start, end=end, original_start=original_start or start)]
    if actor is not None and not from_exchange:
        rules.check_create(actor=actor, requested_for=requested_for, room=room, kind=kind, source=source, subsource=subsource)

    pairs = [(slot.start, slot.end) for slot in slots]
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with transaction.atomic(durable=True):
                return _create_rows(
                    actor=actor, room=room, slots=slots, pairs=pairs, recurrence=recurrence, subject=subject, body=body,
                    arrangement=arrangement, requested_by=requested_by, requested_for=requested_for, attendees=cleaned,
                    kind=kind, source=source, subsource=subsource, from_exchange=from_exchange, exchange=exchange or ExchangeIds(),
                    online_meeting=online_meeting, in_series=in_series,
                )
        except IntegrityError as exc:
            if is_overlap_violation(exc):
                raise slot_taken_after_race(room=room, slots=pairs, arrangement=arrangement) from exc
            raise
        except OperationalError as exc:
            if not is_deadlock(exc):
                raise
            if attempt == DEADLOCK_RETRIES:
                raise slot_taken_after_race(room=room, slots=pairs, arrangement=arrangement) from exc
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def _slots(*, room: Room, start: dt.datetime, end: dt.datetime, recurrence: Recurrence | None, from_exchange: bool) -> list[Slot]:
    """The one slot, or the series' occurrences (within the booking horizon unless from Exchange)."""
    if recurrence is None:
        return [Slot(start=start, end=end, original_start=start)]
    slots = expand(recurrence, start=start, end=end, tz=room.building.tzinfo, max_occurrences=settings.RESERVATION_MAX_OCCURRENCES)
    if not slots:
        raise InvalidReservation("The recurrence pattern produces no occurrence.", extra={"recurrence": ["No occurrence."]})
    horizon = clock.now() + dt.timedelta(days=settings.RESERVATION_BOOKING_HORIZON_DAYS)
    if not from_exchange and slots[-1].start > horizon:
        raise InvalidReservation(
            f"The series runs past the booking horizon of {settings.RESERVATION_BOOKING_HORIZON_DAYS} days; end it earlier.",
            extra={"recurrence.until": ["The last occurrence is beyond the booking horizon."]},
        )
    return slots


def _create_rows(
    *, actor, room, slots, pairs, recurrence, subject, body, arrangement, requested_by, requested_for,
    attendees, kind, source, subsource, from_exchange, exchange: ExchangeIds, online_meeting: bool = False,
    in_series: ReservationSeries | None = None,
) -> Reservation:
    check_free_first(room=room, slots=pairs, arrangement=arrangement)
    state, sync_state = initial_states(room=room, from_exchange=from_exchange)
    # A room that needs approval inside the product: the booking waits for its approvers
    # (holding the room) and nothing is written to Exchange before one approves (``approvals``).
    awaiting_approval = room.needs_approval and not from_exchange
    approval = {}
    if awaiting_approval:
        state, sync_state = State.AWAITING_CONFIRMATION, SyncState.NOT_SYNCED
        approval = {"approval_state": ApprovalState.AWAITING_APPROVAL, "approval_requested_at": clock.now()}
    link = {
        "event_id": exchange.event_id, "change_key": exchange.change_key, "ical_uid": exchange.ical_uid,
        "mailbox": exchange.mailbox, "organizer": exchange.organizer, "sync_mailbox": exchange.sync_mailbox,
        "origin": Origin.EXCHANGE if from_exchange else Origin.APP,
        "online_meeting": online_meeting, "online_meeting_url": exchange.online_meeting_url,
    }
    series = in_series
    if recurrence is not None:
        series = ReservationSeries.objects.create(
            room=room, subject=subject, frequency=recurrence.frequency, interval=recurrence.interval,
            weekdays=list(recurrence.weekdays) or (
                [slots[0].start.astimezone(room.building.tzinfo).isoweekday()] if recurrence.index else []),
            until=recurrence.until, count=recurrence.count, index=recurrence.index or "", first_start=slots[0].start, first_end=slots[0].end, timezone=room.building.timezone,
            requested_by=requested_by, requested_for=requested_for, **link,
        )
        # The series' meeting ids live on the series; occurrences get their own when sync reports them.
        link = {**link, "event_id": "", "change_key": ""}
    rows = [
        Reservation(
            room=room, arrangement=arrangement, series=series, original_start=slot.original_start if series else None,
            subject=subject, body=body, start=slot.start, end=slot.end, requested_by=requested_by,
            requested_for=requested_for, kind=kind, source=source, subsource=subsource, state=state,
            sync_state=sync_state, **link, **approval,
        )
        for slot in slots
    ]
    if len(rows) == 1:
        fastpaths.insert(rows[0])
    else:
        Reservation.objects.bulk_create(rows)
    created = Attendee.objects.bulk_create([att for row in rows for att in attendee_rows(row, attendees)]) if attendees else []
    for row in rows:  # callers render the new rows: spare them a query per row
        _cache_attendees(row, [att for att in created if att.reservation is row])
    first = rows[0]
    if series is not None:
        first.series = series
    if room.is_synced and not from_exchange and not awaiting_approval:
        record_create(rows=rows, series=series, via=channel(actor, source, subsource))
    return first
