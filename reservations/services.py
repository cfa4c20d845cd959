"""Every write to reservations goes through here (HackSoft "services").

Public services are keyword-only. The user-facing ones (create, update, cancel)
run in one durable transaction each: validate, check the sync-mode restrictions
(``reservations.rules``), check the room is free, write the rows and, for a
synced room, the outbox sync event. A refused change raises a
``ReservationError`` subclass and writes nothing.

Two channels call them:

* people and API clients: ``actor`` is the Django user acting; restrictions and
  ownership are checked; a synced room gets an outbox event;
* Exchange inbound sync and system jobs: ``actor=None``; with
  ``from_exchange=True`` (source ``outlook``, origin ``exchange``) the Graph ids
  are stored and no outbox event is written, so nothing echoes back.

No two active reservations overlap in a room, and the database guarantees it.
On PostgreSQL the exclusion constraint (migration 0002) is the check: the
INSERT/UPDATE is refused, the transaction rolls back, and the service then looks
up the slots in the way to raise ``SlotTaken`` (409) naming each of them — a
lost race gives the same answer, never a 500, and the happy path spends no query
on a pre-check. On SQLite the service checks first inside its IMMEDIATE (write-
locked) transaction, which serializes writers.

The small ``reservation_mark_*`` / ``reservation_link_exchange`` /
``reservation_unlink_exchange`` / ``series_link_*`` / ``reservation_set_sync_state``
services serve the sync worker. They use a plain
(non-durable) ``transaction.atomic``: called outside a transaction each is its
own transaction; called inside the worker's transaction they join it. Each is a
conditional UPDATE and returns whether a row changed, so a redelivered task is
harmless.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from reservations import fastpaths, rules
from reservations.exceptions import InvalidReservation, NotActive, NotPermitted, SlotTaken
from reservations.models import (
    ACTIVE_STATES,
    Attendee,
    Kind,
    Origin,
    Reservation,
    ReservationSeries,
    Source,
    State,
    SyncEvent,
    SyncState,
)
from reservations.outbox import sync_event_record
from reservations.recurrence import Recurrence, Slot, expand, shift_weekdays
from workplace.models import Arrangement, Room

SUBJECT_MAX_LENGTH = 255
BODY_MAX_LENGTH = 10_000
ATTENDEE_NAME_MAX_LENGTH = 200
REASON_MAX_LENGTH = 500
# Room, time and people changes make the room answer again; text changes don't.
SERIES_SCOPES = ("occurrence", "series")
OVERLAP_CONSTRAINT = "reservation_no_overlap_in_room"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class ExchangeIds:
    """What inbound sync knows about the meeting it turns into a reservation."""

    event_id: str = ""
    change_key: str = ""
    ical_uid: str = ""
    mailbox: str = ""
    organizer: str = ""
    sync_mailbox: str = ""


# --- helpers ------------------------------------------------------------------------


def _now() -> dt.datetime:
    return timezone.now()


def _local(moment: dt.datetime, room: Room) -> str:
    return moment.astimezone(room.building.tzinfo).strftime("%Y-%m-%d %H:%M")


def _slot_text(start: dt.datetime, end: dt.datetime, room: Room) -> str:
    local_end = end.astimezone(room.building.tzinfo)
    same_day = local_end.date() == start.astimezone(room.building.tzinfo).date()
    end_text = local_end.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    return f"{_local(start, room)}–{end_text}"


def _raise_invalid(errors: dict[str, list[str]]) -> None:
    if not errors:
        return
    if len(errors) == 1:
        [(field, messages)] = errors.items()
        message = messages[0]
    else:
        message = f"The reservation is not valid ({len(errors)} problems)."
    raise InvalidReservation(message, extra=errors)


def _ensure_may_manage(actor: AbstractBaseUser | None, reservation: Reservation) -> None:
    if actor is None or actor.is_staff:
        return
    if actor.pk not in (reservation.requested_by_id, reservation.requested_for_id):
        raise NotPermitted("You can only change your own reservations.")


def _database_enforces_no_overlap() -> bool:
    """PostgreSQL's exclusion constraint is the check: the happy path costs no
    extra query, and a refused INSERT/UPDATE is turned into ``SlotTaken``
    naming every conflicting slot (looked up after the rollback). SQLite has no
    such constraint: there the service checks first, inside its IMMEDIATE
    (write-locked) transaction, which serializes writers."""
    return connection.vendor == "postgresql"


def _is_overlap_violation(exc: IntegrityError) -> bool:
    return _sqlstate(exc) == "23P01" or OVERLAP_CONSTRAINT in str(exc)


# Bookings of one slot that reach the exclusion constraint at the same moment can each
# find the other's row in progress and wait for it: PostgreSQL then aborts one of them
# with a deadlock (SQLSTATE 40P01; measured: ~4% of the losers of 20-way races of bare
# INSERTs) instead of the constraint's 23P01. Its transaction is rolled back whole, so a
# create is simply run again (it then meets the winner: 409, or a free slot); an update,
# whose rows were already changed in memory, reports the race as a conflict.
DEADLOCK_RETRIES = 3


def _is_deadlock(exc: OperationalError) -> bool:
    return _sqlstate(exc) == "40P01"


def _sqlstate(exc: Exception) -> str | None:
    """The SQLSTATE of the psycopg error Django wrapped."""
    return getattr(exc.__cause__, "sqlstate", None)


def _clean_attendees(attendees: Iterable[Mapping[str, Any]], errors: dict[str, list[str]]) -> list[dict]:
    cleaned: list[dict] = []
    seen: set[str] = set()
    for index, raw in enumerate(attendees):
        email = str(raw.get("email", "")).strip().lower()
        name = str(raw.get("name", "") or "").strip()
        kind = raw.get("type") or Attendee.Type.REQUIRED
        response = raw.get("response") or Attendee.Response.NONE
        key = f"attendees[{index}]"
        try:
            validate_email(email)
        except ValidationError:
            errors.setdefault(key, []).append(f"{email or 'An empty address'} is not a valid email address.")
            continue
        if len(name) > ATTENDEE_NAME_MAX_LENGTH:
            errors.setdefault(key, []).append(f"Names are limited to {ATTENDEE_NAME_MAX_LENGTH} characters.")
        if kind not in Attendee.Type.values:
            errors.setdefault(key, []).append(f"Attendee type must be one of {', '.join(Attendee.Type.values)}.")
        if response not in Attendee.Response.values:
            response = Attendee.Response.UNKNOWN
        if email in seen:
            continue  # the same person twice is one attendee
        seen.add(email)
        cleaned.append({"email": email, "name": name, "type": kind, "response": response})
    return cleaned


def _validate(
    *,
    room: Room,
    arrangement: Arrangement | None,
    start: Any,
    end: Any,
    subject: str,
    body: str,
    attendees: list[dict],
    requested_for: AbstractBaseUser,
    errors: dict[str, list[str]],
    strict_time: bool,
    check_start_in_past: bool = True,
) -> None:
    """Point 6 of issue 2: every rule a reservation's values must meet.

    ``strict_time`` is off for Exchange inbound sync (the meeting exists already:
    past meetings, long ones and big ones are recorded as they are)."""
    if not isinstance(start, dt.datetime) or timezone.is_naive(start):
        errors.setdefault("start", []).append("Give a date-time with a time-zone offset, e.g. 2030-05-04T09:00:00+02:00.")
    if not isinstance(end, dt.datetime) or timezone.is_naive(end):
        errors.setdefault("end", []).append("Give a date-time with a time-zone offset, e.g. 2030-05-04T10:00:00+02:00.")
    if not room.reservable:
        errors.setdefault("room", []).append(f"{room.name} can't be reserved.")
    if arrangement is not None and arrangement.room_id != room.pk:
        errors.setdefault("arrangement", []).append(f"This arrangement belongs to another room than {room.name}.")
    if not subject or not subject.strip():
        errors.setdefault("subject", []).append("Give the reservation a subject.")
    elif len(subject) > SUBJECT_MAX_LENGTH:
        errors.setdefault("subject", []).append(f"The subject is limited to {SUBJECT_MAX_LENGTH} characters.")
    if len(body) > BODY_MAX_LENGTH:
        errors.setdefault("body", []).append(f"The description is limited to {BODY_MAX_LENGTH} characters.")
    if not requested_for.is_active:
        errors.setdefault("requested_for", []).append("This person's account is disabled.")
    if "start" in errors or "end" in errors:
        return
    if end <= start:
        errors.setdefault("end", []).append("The end must be after the start.")
        return
    if not strict_time:
        return
    minutes = (end - start).total_seconds() / 60
    if minutes < settings.RESERVATION_MIN_DURATION_MINUTES:
        errors.setdefault("end", []).append(f"A reservation lasts at least {settings.RESERVATION_MIN_DURATION_MINUTES} minutes.")
    if minutes > settings.RESERVATION_MAX_DURATION_MINUTES:
        errors.setdefault("end", []).append(f"A reservation lasts at most {settings.RESERVATION_MAX_DURATION_MINUTES // 60} hours.")
    now = _now()
    if check_start_in_past and start < now - dt.timedelta(minutes=1):
        errors.setdefault("start", []).append("You can't book in the past.")
    elif end <= now:
        errors.setdefault("end", []).append("You can't book in the past.")
    if start > now + dt.timedelta(days=settings.RESERVATION_BOOKING_HORIZON_DAYS):
        errors.setdefault("start", []).append(f"Reservations can be made at most {settings.RESERVATION_BOOKING_HORIZON_DAYS} days ahead.")
    seats = arrangement.seats if arrangement is not None else room.capacity
    people = {a["email"] for a in attendees if a["type"] != Attendee.Type.RESOURCE}
    people.add((requested_for.email or f"user:{requested_for.pk}").lower())
    if len(people) > seats:
        errors.setdefault("attendees", []).append(f"{len(people)} people (attendees and the person it is for) don't fit in {seats} seats.")


def _conflicts(*, room: Room, slots: Sequence[tuple[dt.datetime, dt.datetime]], exclude_ids: Iterable[int] = ()) -> list[tuple[int, Reservation]]:
    """(slot index, the active reservation it collides with) for each collision. One query."""
    if not slots:
        return []
    overlap = Q()
    for start, end in slots:
        overlap |= Q(start__lt=end, end__gt=start)
    taken = list(
        Reservation.objects.filter(overlap, room=room, state__in=ACTIVE_STATES)
        .exclude(pk__in=list(exclude_ids))
        .only("id", "start", "end")
        .order_by("start")
    )
    found = []
    for index, (start, end) in enumerate(slots):
        for other in taken:
            if other.start < end and other.end > start:
                found.append((index, other))
                break
    return found


def _raise_slot_taken(*, room: Room, slots: Sequence[tuple[dt.datetime, dt.datetime]], conflicts: list[tuple[int, Reservation]]) -> None:
    if not conflicts:
        return
    listed = [
        {
            "occurrence": index + 1,
            "start": slots[index][0].isoformat(),
            "end": slots[index][1].isoformat(),
            "conflicting_start": other.start.isoformat(),
            "conflicting_end": other.end.isoformat(),
        }
        for index, other in conflicts
    ]
    tz = room.building.timezone
    if len(slots) == 1:
        other = conflicts[0][1]
        message = f"{room.name} is already booked {_slot_text(other.start, other.end, room)} ({tz})."
    else:
        taken = "; ".join(_slot_text(slots[index][0], slots[index][1], room) for index, _ in conflicts)
        message = f"{len(conflicts)} of {len(slots)} occurrences conflict in {room.name} ({tz}): {taken}. Nothing was booked."
    raise SlotTaken(message, extra={"conflicts": listed})


def _slot_taken_after_race(*, room: Room, slots: Sequence[tuple[dt.datetime, dt.datetime]], exclude_ids: Iterable[int] = ()) -> SlotTaken:
    """The exclusion constraint refused a row: name the slot that won the race."""
    try:
        _raise_slot_taken(room=room, slots=slots, conflicts=_conflicts(room=room, slots=slots, exclude_ids=exclude_ids))
    except SlotTaken as exc:
        return exc
    return SlotTaken(f"{room.name} was booked by someone else at the same moment; try another time.", extra={"conflicts": []})


def _initial_states(*, room: Room, from_exchange: bool) -> tuple[str, str]:
    """(state, sync_state) of a new reservation."""
    if from_exchange:
        return State.CONFIRMED, SyncState.SYNCED
    if room.is_synced:
        return State.AWAITING_CONFIRMATION, SyncState.PENDING
    return State.CONFIRMED, SyncState.NOT_SYNCED


def _cache_attendees(reservation: Reservation, attendees: list[Attendee]) -> None:
    """Fill ``reservation.attendees.all()`` the way prefetch_related would."""
    cached = reservation.attendees.all()
    cached._result_cache = attendees
    cached._prefetch_done = True
    reservation._prefetched_objects_cache = {"attendees": cached}


def _channel(actor: AbstractBaseUser | None, source: str, subsource: str) -> dict[str, Any]:
    """Who acted and through which channel, for the sync worker: Exchange is written with the
    credential of *this* change (SPEC §3), not of the reservation's original booking."""
    return {"actor_id": actor.pk if actor is not None else None, "source": source, "subsource": subsource, "system": actor is None}


def _attendee_rows(reservation: Reservation, attendees: list[dict]) -> list[Attendee]:
    return [Attendee(reservation=reservation, **attendee) for attendee in attendees]


# --- create ---------------------------------------------------------------------------


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
) -> Reservation:
    """Book ``room`` from ``start`` to ``end``; with ``recurrence``, a whole series.

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
    cleaned = _clean_attendees(attendees, errors)
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
    _validate(
        room=room, arrangement=arrangement, start=start, end=end, subject=subject, body=body,
        attendees=cleaned, requested_for=requested_for, errors=errors, strict_time=not from_exchange,
    )
    _raise_invalid(errors)
    if recurrence is not None:
        slots = expand(recurrence, start=start, end=end, tz=room.building.tzinfo, max_occurrences=settings.RESERVATION_MAX_OCCURRENCES)
        if not slots:
            raise InvalidReservation("The recurrence pattern produces no occurrence.", extra={"recurrence": ["No occurrence."]})
        horizon = _now() + dt.timedelta(days=settings.RESERVATION_BOOKING_HORIZON_DAYS)
        if not from_exchange and slots[-1].start > horizon:
            raise InvalidReservation(
                f"The series runs past the booking horizon of {settings.RESERVATION_BOOKING_HORIZON_DAYS} days; end it earlier.",
                extra={"recurrence.until": ["The last occurrence is beyond the booking horizon."]},
            )
    else:
        slots = [Slot(start=start, end=end, original_start=start)]
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
                )
        except IntegrityError as exc:
            if _is_overlap_violation(exc):
                raise _slot_taken_after_race(room=room, slots=pairs) from exc
            raise
        except OperationalError as exc:
            if not _is_deadlock(exc):
                raise
            if attempt == DEADLOCK_RETRIES:
                raise _slot_taken_after_race(room=room, slots=pairs) from exc
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def _create_rows(
    *, actor, room, slots, pairs, recurrence, subject, body, arrangement, requested_by, requested_for,
    attendees, kind, source, subsource, from_exchange, exchange: ExchangeIds,
) -> Reservation:
    if not _database_enforces_no_overlap():
        _raise_slot_taken(room=room, slots=pairs, conflicts=_conflicts(room=room, slots=pairs))
    state, sync_state = _initial_states(room=room, from_exchange=from_exchange)
    link = {
        "event_id": exchange.event_id, "change_key": exchange.change_key, "ical_uid": exchange.ical_uid,
        "mailbox": exchange.mailbox, "organizer": exchange.organizer, "sync_mailbox": exchange.sync_mailbox,
        "origin": Origin.EXCHANGE if from_exchange else Origin.APP,
    }
    series = None
    if recurrence is not None:
        series = ReservationSeries.objects.create(
            room=room, subject=subject, frequency=recurrence.frequency, interval=recurrence.interval,
            weekdays=list(recurrence.weekdays), until=recurrence.until, count=recurrence.count,
            first_start=slots[0].start, first_end=slots[0].end, timezone=room.building.timezone,
            requested_by=requested_by, requested_for=requested_for, **link,
        )
        # The series' meeting ids live on the series; occurrences get their own when sync reports them.
        link = {**link, "event_id": "", "change_key": ""}
    rows = [
        Reservation(
            room=room, arrangement=arrangement, series=series, original_start=slot.original_start if series else None,
            subject=subject, body=body, start=slot.start, end=slot.end, requested_by=requested_by,
            requested_for=requested_for, kind=kind, source=source, subsource=subsource, state=state,
            sync_state=sync_state, **link,
        )
        for slot in slots
    ]
    if len(rows) == 1:
        fastpaths.insert(rows[0])
    else:
        Reservation.objects.bulk_create(rows)
    created = Attendee.objects.bulk_create([att for row in rows for att in _attendee_rows(row, attendees)]) if attendees else []
    for row in rows:  # callers render the new rows: spare them a query per row
        _cache_attendees(row, [att for att in created if att.reservation is row])
    first = rows[0]
    if series is not None:
        first.series = series
    if room.is_synced and not from_exchange:
        details = {"scope": "series" if series else "occurrence", "reservation_ids": [row.pk for row in rows], **_channel(actor, source, subsource)}
        sync_event_record(type="create", reservation=None if series else first, series=series, details=details)
    return first


# --- update ---------------------------------------------------------------------------


def reservation_update(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    scope: str = "occurrence",
    source: str = Source.PORTAL,
    subsource: str = "",
    from_exchange: bool = False,
    subject: str = UNSET,
    body: str = UNSET,
    start: dt.datetime = UNSET,
    end: dt.datetime = UNSET,
    room: Room = UNSET,
    arrangement: Arrangement | None = UNSET,
    attendees: Iterable[Mapping[str, Any]] = UNSET,
    requested_for: AbstractBaseUser = UNSET,
    exchange: ExchangeIds | None = None,
) -> Reservation:
    """Change one reservation, or with ``scope="series"`` every active, not yet
    finished occurrence of its series (a time change moves each occurrence by
    the same local wall-clock shift and gives it the new duration).

    A series-wide time change moves the series' pattern with its occurrences
    (``_plan_series_move``): a series that has not begun is rescheduled as a whole;
    one that has begun is split as Outlook's "this and following" does (the old
    series ends the day before the first moved occurrence, the moved ones form a
    new series).

    Only the arguments given change. Returns the (refreshed) target reservation.
    """
    if scope not in SERIES_SCOPES:
        raise InvalidReservation("Scope must be 'occurrence' or 'series'.", extra={"scope": [f"Choose one of {', '.join(SERIES_SCOPES)}."]})
    if scope == "series" and reservation.series_id is None:
        raise InvalidReservation("This reservation is not part of a series.", extra={"scope": ["Not a recurring reservation."]})
    errors: dict[str, list[str]] = {}
    new_attendees = None if attendees is UNSET else _clean_attendees(attendees, errors)
    _raise_invalid(errors)
    target_room: Room = reservation.room if room is UNSET else room
    if room is not UNSET and room.pk != reservation.room_id and arrangement is UNSET:
        arrangement = room.default_arrangement()
    pairs_for_race: list[tuple[dt.datetime, dt.datetime]] = []
    exclude: list[int] = []
    try:
        with transaction.atomic(durable=True):
            return _update_rows(
                actor=actor, reservation=reservation, scope=scope, source=source, subsource=subsource,
                from_exchange=from_exchange, subject=subject, body=body, start=start, end=end, room=target_room,
                arrangement=arrangement, attendees=new_attendees, requested_for=requested_for, exchange=exchange,
                race=(pairs_for_race, exclude),
            )
    except IntegrityError as exc:
        if _is_overlap_violation(exc):
            raise _slot_taken_after_race(room=target_room, slots=pairs_for_race, exclude_ids=exclude) from exc
        raise
    except OperationalError as exc:
        if _is_deadlock(exc):
            raise _slot_taken_after_race(room=target_room, slots=pairs_for_race, exclude_ids=exclude) from exc
        raise


def _attendee_list(reservation: Reservation) -> list[dict]:
    return [{"email": a.email, "name": a.name, "type": a.type} for a in reservation.attendees.all()]


def _update_rows(
    *, actor, reservation, scope, source, subsource, from_exchange, subject, body, start, end, room,
    arrangement, attendees, requested_for, exchange, race,
) -> Reservation:
    now = _now()
    # 1. Lock what we change, freshly read (a concurrent update waits here).
    locked = Reservation.objects.select_for_update(of=("self",)).select_related("room__building", "requested_for", "requested_by", "arrangement")
    target = locked.get(pk=reservation.pk)
    _ensure_may_manage(actor, target)
    if target.state not in ACTIVE_STATES:
        raise NotActive(f"This reservation is {target.get_state_display()}; it can't be changed.")
    if actor is not None and not from_exchange and target.end <= now:
        raise NotActive("This reservation is over; it can't be changed.")
    if scope == "series":
        rows = list(locked.filter(series_id=target.series_id, state__in=ACTIVE_STATES, end__gt=now).order_by("start"))
        if target not in rows:
            rows.insert(0, target)
    else:
        rows = [target]
    tz = target.room.building.tzinfo

    # 2. Work out each row's new values and what changes.
    if start is not UNSET or end is not UNSET:
        new_start = target.start if start is UNSET else start
        new_end = target.end if end is UNSET else end
        errors: dict[str, list[str]] = {}
        for name, value in (("start", new_start), ("end", new_end)):
            if not isinstance(value, dt.datetime) or timezone.is_naive(value):
                errors.setdefault(name, []).append("Give a date-time with a time-zone offset, e.g. 2030-05-04T09:00:00+02:00.")
        _raise_invalid(errors)
        shift = new_start.astimezone(tz).replace(tzinfo=None) - target.start.astimezone(tz).replace(tzinfo=None)
        duration = new_end.astimezone(tz).replace(tzinfo=None) - new_start.astimezone(tz).replace(tzinfo=None)
    else:
        shift = duration = None
    plans = []
    for row in rows:
        if shift is None:
            row_start, row_end = row.start, row.end
        elif row.pk == target.pk:
            row_start, row_end = new_start, new_end
        else:
            local = row.start.astimezone(tz).replace(tzinfo=None) + shift
            row_start = local.replace(tzinfo=tz).astimezone(dt.UTC)
            row_end = (local + duration).replace(tzinfo=tz).astimezone(dt.UTC)
        values = {
            "subject": row.subject if subject is UNSET else subject,
            "body": row.body if body is UNSET else body,
            "start": row_start,
            "end": row_end,
            "room": room,
            "arrangement": row.arrangement if arrangement is UNSET else arrangement,
            "requested_for": row.requested_for if requested_for is UNSET else requested_for,
        }
        changes = {}
        for field, new in values.items():
            old = getattr(row, field)
            if (old.pk if hasattr(old, "pk") else old) != (new.pk if hasattr(new, "pk") else new):
                changes[field] = (old, new)
        if attendees is not None:
            old_attendees = _attendee_list(row)
            new_list = [{"email": a["email"], "name": a["name"], "type": a["type"]} for a in attendees]
            if sorted(old_attendees, key=lambda a: a["email"]) != sorted(new_list, key=lambda a: a["email"]):
                changes["attendees"] = (old_attendees, new_list)
        plans.append((row, values, changes))
    plans = [plan for plan in plans if plan[2]]
    if not plans:
        return target

    # 3. Restrictions (per occurrence) and validation of the new values.
    errors = {}
    for row, values, changes in plans:
        if actor is not None and not from_exchange:
            rules.check_update(actor=actor, reservation=row, source=source, subsource=subsource, changes=changes)
        row_attendees = attendees if attendees is not None else [
            {"email": a.email, "type": a.type} for a in row.attendees.all()
        ]
        _validate(
            room=values["room"], arrangement=values["arrangement"], start=values["start"], end=values["end"],
            subject=values["subject"], body=values["body"], attendees=row_attendees,
            requested_for=values["requested_for"], errors=errors, strict_time=not from_exchange,
            check_start_in_past="start" in changes,
        )
        if errors:
            break
    _raise_invalid(errors)

    # 4. The room must be free (ignoring the rows we move).
    moving = [plan for plan in plans if {"start", "end", "room"} & plan[2].keys()]
    pairs = [(values["start"], values["end"]) for _, values, _ in moving]
    race_pairs, race_exclude = race
    race_pairs.extend(pairs)
    race_exclude.extend(row.pk for row in rows)
    if not _database_enforces_no_overlap():
        _raise_slot_taken(room=room, slots=pairs, conflicts=_conflicts(room=room, slots=pairs, exclude_ids=race_exclude))

    # 5. Write, then tell Exchange (one outbox event per series change, else per row).
    # Occurrences all move by the same shift: writing the one furthest along the
    # shift first means no row ever overlaps a sibling not yet moved (the
    # exclusion constraint checks each row as it is written).
    move = None
    if scope == "series" and target.series_id is not None and not from_exchange and any(
            {"start", "end"} & changes.keys() for _, _, changes in plans):
        move = _plan_series_move(series_id=target.series_id, moving=rows, shift=shift, duration=duration, tz=tz, now=now)
    if shift is not None and len(plans) > 1:
        plans.sort(key=lambda plan: plan[0].start, reverse=shift > dt.timedelta(0))
    for row, values, changes in plans:
        previous_room = row.room
        update_fields = ["updated_at"]
        for field in ("subject", "body", "start", "end", "room", "arrangement", "requested_for"):
            if field in changes:
                setattr(row, field, values[field])
                update_fields.append(field)
        if "room" in changes:
            row.state, row.sync_state = _initial_states(room=room, from_exchange=from_exchange)
            if not room.is_synced and (row.event_id or previous_room.is_synced):
                row.sync_state = SyncState.PENDING  # the old meeting still has to be updated
            update_fields += ["state", "sync_state"]
        if exchange is not None:
            for field in ("event_id", "change_key", "ical_uid", "mailbox", "organizer", "sync_mailbox"):
                value = getattr(exchange, field)
                if value:
                    setattr(row, field, value)
                    update_fields.append(field)
        row.save(update_fields=update_fields)
        if "attendees" in changes:
            row.attendees.all().delete()
            Attendee.objects.bulk_create(_attendee_rows(row, attendees))
    channel = _channel(actor, source, subsource)
    if move is not None:
        _move_series(
            move=move, moving=rows, plans=plans, room=room, duration=duration, tz=tz, channel=channel,
            subject=None if subject is UNSET else subject, requested_for=None if requested_for is UNSET else requested_for,
        )
    elif not from_exchange:
        _record_updates(plans=plans, scope=scope, series=target.series, channel=channel)
    if move is None and scope == "series" and target.series is not None:
        series_fields = [f for f in ("subject", "room") if f in plans[0][2]]
        for field in series_fields:
            setattr(target.series, field, plans[0][1][field])
        if series_fields:
            target.series.save(update_fields=series_fields)
    target.refresh_from_db()
    return target


def _needs_sync(row: Reservation, previous_room: Room | None = None) -> bool:
    return row.room.is_synced or bool(row.event_id) or bool(previous_room and previous_room.is_synced)


def _record_updates(*, plans, scope, series, channel: dict[str, Any], extra: Mapping[str, Any] | None = None) -> SyncEvent | None:
    """Outbox events for the rows changed; with ``scope="series"`` one event on the series
    (``extra`` added to its details), which is returned."""
    def details_of(changes: dict) -> dict:
        details: dict[str, Any] = {"scope": scope, "fields": sorted(changes), **channel}
        if "room" in changes:
            details["previous_room_id"] = changes["room"][0].pk
        if "start" in changes or "end" in changes:
            details["previous_start"] = changes.get("start", (None,))[0] and changes["start"][0].isoformat()
            details["previous_end"] = changes.get("end", (None,))[0] and changes["end"][0].isoformat()
        return details

    to_sync = [(row, changes) for row, _values, changes in plans if _needs_sync(row, changes.get("room", (None,))[0])]
    if not to_sync:
        return None
    Reservation.objects.filter(pk__in=[row.pk for row, _ in to_sync]).exclude(sync_state=SyncState.PENDING).update(sync_state=SyncState.PENDING)
    for row, _ in to_sync:
        row.sync_state = SyncState.PENDING
    if scope == "series":
        changes = to_sync[0][1]
        details = {**details_of(changes), "reservation_ids": [row.pk for row, _ in to_sync], **(extra or {})}
        return sync_event_record(type="update", series=series, details=details)
    for row, changes in to_sync:
        previous_room = changes.get("room", (None,))[0]
        # A row that never reached Exchange and now lands in a synced room is a new meeting.
        new_meeting = previous_room is not None and not previous_room.is_synced and not row.event_id and row.room.is_synced
        sync_event_record(type="create" if new_meeting else "update", reservation=row, series=row.series, details=details_of(changes))
    return None


# --- a series-wide time change moves the series ---------------------------------------------


@dataclass
class _SeriesMove:
    """What a series-wide time change does to the series itself (see ``_plan_series_move``)."""

    series: ReservationSeries  # locked
    split: bool  # the series has begun: the moved occurrences become a new series
    # Each occurrence the change carries along → its new slot in the pattern (UTC): the moved
    # ones, and those cancelled (or rejected) alone in the moved range.
    slots: dict[int, dt.datetime]
    carried: list[Reservation]  # the carried-along occurrences the change doesn't move (not active)
    first_start: dt.datetime
    first_end: dt.datetime
    weekdays: list[int]
    until: dt.date | None
    count: int | None
    old_until: dt.date | None = None  # split: the old series' last day


def _shifted(moment: dt.datetime, shift: dt.timedelta, tz) -> dt.datetime:
    """``moment`` moved by a local wall-clock ``shift`` (as the occurrences are moved)."""
    local = moment.astimezone(tz).replace(tzinfo=None) + shift
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def _slot_of(row: Reservation) -> dt.datetime:
    return row.original_start or row.start


def _plan_series_move(*, series_id: int, moving: list[Reservation], shift: dt.timedelta, duration: dt.timedelta, tz, now: dt.datetime) -> _SeriesMove:
    """The series' new pattern when every coming occurrence moves by ``shift`` (local).

    1. Not begun (no occurrence of it has finished): the whole series moves. Its first
       slot, its weekdays (by the days the first slot moved) and its end date move with
       it; each occurrence's pattern slot (``original_start``) moves too.
    2. Begun: Outlook's "this and following". The old series keeps what is over and ends
       the day before the first moved occurrence; the moved ones (and those cancelled alone
       after it) form a new series that starts at the first one's new slot and ends on the
       last moved one's new day.
    Occurrences that deviate from the new pattern are re-applied by ``_move_series``."""
    series = ReservationSeries.objects.select_for_update().get(pk=series_id)
    others = list(
        Reservation.objects.select_for_update(of=("self",)).filter(series=series).exclude(pk__in=[row.pk for row in moving]).order_by("start", "id")
    )
    split_at = min(_slot_of(row) for row in moving)
    split = any(row.end <= now for row in others)
    carried = [row for row in others if row.end > now and (not split or _slot_of(row) >= split_at)]
    slots = {row.pk: _shifted(_slot_of(row), shift, tz) for row in [*moving, *carried]}
    old_until = None
    if split:
        first_start = slots[min(moving, key=_slot_of).pk]
        days = (first_start.astimezone(tz).date() - split_at.astimezone(tz).date()).days
        until = max(slots[row.pk] for row in moving).astimezone(tz).date()
        count = None
        old_until = split_at.astimezone(tz).date() - dt.timedelta(days=1)
    else:
        first_start = _shifted(series.first_start, shift, tz)
        days = (first_start.astimezone(tz).date() - series.first_start.astimezone(tz).date()).days
        until = series.until + dt.timedelta(days=days) if series.until else None
        count = series.count
    return _SeriesMove(
        series=series, split=split, slots=slots, carried=carried, first_start=first_start,
        first_end=_shifted(first_start, duration, tz), weekdays=shift_weekdays(series.weekdays, days) if series.weekdays else [],
        until=until, count=count, old_until=old_until,
    )


def _move_series(
    *, move: _SeriesMove, moving: list[Reservation], plans, room: Room, duration: dt.timedelta, tz, channel: dict[str, Any],
    subject: str | None, requested_for: AbstractBaseUser | None,
) -> None:
    """Write the series side of a series-wide time change (the occurrences are written
    already) and its outbox events, in the caller's transaction:

    1. the pattern: the series rescheduled, or (split) the old series ended and a new one
       holding the moved occurrences;
    2. each carried occurrence's new pattern slot (``original_start``: Exchange finds an
       occurrence by it), and on a split its new series, without the old meeting's ids;
    3. the events: the series update (the push reschedules the master), or the old series'
       end then the new series' create (which waits for it: ``after_series_id``);
    4. an occurrence event for each occurrence that deviates from the new pattern (moved or
       retitled alone, cancelled alone), queued after the series' event: Exchange
       regenerates a rescheduled series' occurrences, so they are applied again."""
    series = move.series
    target_subject = subject if subject is not None else series.subject
    carried_rows = [*moving, *move.carried]
    # 1.
    if move.split:
        new_series = ReservationSeries.objects.create(
            room=room, subject=target_subject, frequency=series.frequency, interval=series.interval, weekdays=move.weekdays,
            until=move.until, count=None, first_start=move.first_start, first_end=move.first_end, timezone=series.timezone,
            requested_by=series.requested_by, requested_for=requested_for or series.requested_for,
        )
        series.until, series.count = move.old_until, None
        series.save(update_fields=["until", "count"])
    else:
        new_series = series
        series.first_start, series.first_end, series.weekdays = move.first_start, move.first_end, move.weekdays
        series.until, series.count, series.subject, series.room = move.until, move.count, target_subject, room
        series.save(update_fields=["first_start", "first_end", "weekdays", "until", "count", "subject", "room"])
    # 2.
    fields = ["original_start"]
    for row in carried_rows:
        row.original_start = move.slots[row.pk]
        if move.split:
            row.series = new_series
            row.event_id = row.change_key = row.ical_uid = ""
    if move.split:
        fields += ["series", "event_id", "change_key", "ical_uid"]
    Reservation.objects.bulk_update(carried_rows, fields)
    # 3.
    if move.split:
        synced = room.is_synced
        if series.event_id:
            sync_event_record(type="update", series=series, details={
                "scope": "series", "action": "end", "ends_on": move.old_until.isoformat(), "split_into_series_id": new_series.pk,
                "moved_reservation_ids": [row.pk for row in carried_rows], **channel,
            })
        Reservation.objects.filter(pk__in=[row.pk for row in moving]).update(sync_state=SyncState.PENDING if synced else SyncState.NOT_SYNCED)
        if synced:
            sync_event_record(type="create", series=new_series, details={
                "scope": "series", "reservation_ids": [row.pk for row in moving], "split_from_series_id": series.pk,
                "after_series_id": series.pk, **channel,
            })
    else:
        synced = _record_updates(plans=plans, scope="series", series=series, channel=channel, extra={"reschedules": True}) is not None
    # 4.
    if synced and room.is_synced:
        _reapply_deviations(move=move, series=new_series, moving=moving, subject=target_subject, duration=duration, tz=tz, channel=channel)


def _reapply_deviations(*, move: _SeriesMove, series: ReservationSeries, moving, subject: str, duration, tz, channel) -> None:
    """Step 4 of ``_move_series``."""
    for row in moving:
        slot = move.slots[row.pk]
        if (row.start, row.end) != (slot, _shifted(slot, duration, tz)) or row.subject != subject:
            sync_event_record(type="update", reservation=row, series=series, details={
                "scope": "occurrence", "fields": ["end", "start", "subject"], "reapply": True, **channel,
            })
    cancelled = [
        row for row in move.carried
        if row.state == State.CANCELLED and (move.until is None or move.slots[row.pk].astimezone(tz).date() <= move.until)
    ]
    if not cancelled:
        return
    # How each was cancelled: the meeting cancelled, or kept with the room released.
    earlier = {}
    for reservation_id, details in SyncEvent.objects.filter(reservation__in=cancelled, type=SyncEvent.Type.DELETE).order_by("pk").values_list("reservation_id", "details"):
        earlier[reservation_id] = details or {}
    for row in cancelled:
        how = earlier.get(row.pk, {})
        sync_event_record(type="delete", reservation=row, series=series, details={
            "scope": "occurrence", "reason": row.state_reason, "reapply": True, **channel,
            "cancel_meeting": how.get("cancel_meeting", True),
        })


# --- cancel ---------------------------------------------------------------------------


def reservation_cancel(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    scope: str = "occurrence",
    source: str = Source.PORTAL,
    subsource: str = "",
    reason: str = "",
    from_exchange: bool = False,
    cancel_meeting: bool = True,
) -> list[Reservation]:
    """Cancel one reservation, or with ``scope="series"`` every active occurrence
    of its series that has not finished. Cancelling a cancelled reservation is a
    no-op (safe to retry). Returns the rows now cancelled.

    ``cancel_meeting=False`` ("also cancel the meeting on people's calendars" unticked):
    the meeting stays on people's calendars and only the room is released. It applies
    where the product can choose (``rules.offer_cancel_meeting_choice``): a meeting the
    room organizes is cancelled with the reservation, and one created in Outlook is
    declined by the room, whatever is passed."""
    if scope not in SERIES_SCOPES:
        raise InvalidReservation("Scope must be 'occurrence' or 'series'.", extra={"scope": [f"Choose one of {', '.join(SERIES_SCOPES)}."]})
    if scope == "series" and reservation.series_id is None:
        raise InvalidReservation("This reservation is not part of a series.", extra={"scope": ["Not a recurring reservation."]})
    with transaction.atomic(durable=True):
        return _cancel_rows(
            actor=actor, ids=[reservation.pk], series_id=reservation.series_id if scope == "series" else None,
            source=source, subsource=subsource, reason=reason, from_exchange=from_exchange, cancel_meeting=cancel_meeting,
        )


def reservation_cancel_many(
    *,
    actor: AbstractBaseUser | None,
    reservations: Iterable[Reservation],
    source: str = Source.PORTAL,
    subsource: str = "",
    reason: str = "",
    from_exchange: bool = False,
    cancel_meeting: bool = True,
) -> list[Reservation]:
    """Multi-select cancel: all of them or, when any one is refused, none.
    ``cancel_meeting`` as for ``reservation_cancel``."""
    ids = sorted({r.pk for r in reservations})
    if not ids:
        raise InvalidReservation("Choose at least one reservation to cancel.", extra={"ids": ["This list may not be empty."]})
    with transaction.atomic(durable=True):
        return _cancel_rows(
            actor=actor, ids=ids, series_id=None, source=source, subsource=subsource, reason=reason, from_exchange=from_exchange,
            cancel_meeting=cancel_meeting,
        )


def _cancel_rows(*, actor, ids, series_id, source, subsource, reason, from_exchange, cancel_meeting) -> list[Reservation]:
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidReservation(f"The reason is limited to {REASON_MAX_LENGTH} characters.", extra={"reason": ["Too long."]})
    now = _now()
    locked = Reservation.objects.select_for_update(of=("self",)).select_related("room__building", "series").order_by("start", "id")
    rows = list(locked.filter(pk__in=ids))
    if len(rows) != len(ids):
        raise InvalidReservation("Some of these reservations don't exist.", extra={"ids": [str(i) for i in set(ids) - {r.pk for r in rows}]})
    for row in rows:
        _ensure_may_manage(actor, row)
    if series_id is not None:
        rows = list(locked.filter(series_id=series_id, state__in=ACTIVE_STATES, end__gt=now)) or [r for r in rows if r.state in ACTIVE_STATES]
    to_cancel = []
    for row in rows:
        if row.state == State.CANCELLED:
            continue
        if row.state not in ACTIVE_STATES:
            raise NotActive(f"“{row.subject}” is {row.get_state_display()}; it can't be cancelled.")
        if actor is not None and not from_exchange and row.end <= now:
            raise NotActive(f"“{row.subject}” is over; it can't be cancelled.")
        if actor is not None and not from_exchange:
            rules.check_cancel(actor=actor, reservation=row, source=source, subsource=subsource)
        to_cancel.append(row)
    if not to_cancel:
        return []
    Reservation.objects.filter(pk__in=[r.pk for r in to_cancel]).update(
        state=State.CANCELLED, cancelled_at=now, state_reason=reason[:REASON_MAX_LENGTH], updated_at=now,
    )
    for row in to_cancel:
        row.state, row.cancelled_at, row.state_reason = State.CANCELLED, now, reason
    if not from_exchange:
        channel = {**_channel(actor, source, subsource), "cancel_meeting": bool(cancel_meeting)}
        synced = [row for row in to_cancel if _needs_sync(row)]
        if series_id is not None and synced:
            Reservation.objects.filter(pk__in=[r.pk for r in synced]).update(sync_state=SyncState.PENDING)
            sync_event_record(
                type="delete", series=synced[0].series,
                details={"scope": "series", "reason": reason, "reservation_ids": [r.pk for r in synced], **channel},
            )
        else:
            for row in synced:
                sync_event_record(type="delete", reservation=row, series=row.series, details={"scope": "occurrence", "reason": reason, **channel})
    return to_cancel


# --- services for the sync worker ----------------------------------------------------------


def _conditional_update(reservation: Reservation, *, from_states: Iterable[str] | None, **values: Any) -> bool:
    query = Reservation.objects.filter(pk=reservation.pk)
    if from_states is not None:
        query = query.filter(state__in=list(from_states))
    changed = query.update(updated_at=_now(), **values) == 1
    if changed:
        for field, value in values.items():
            setattr(reservation, field, value)
    return changed


@transaction.atomic
def reservation_mark_confirmed(*, reservation: Reservation) -> bool:
    """The room accepted (or the write to a room-organized meeting succeeded)."""
    return _conditional_update(
        reservation, from_states=(State.AWAITING_CONFIRMATION, State.CONFLICTED), state=State.CONFIRMED, state_reason="",
    )


@transaction.atomic
def reservation_mark_rejected(*, reservation: Reservation, reason: str) -> bool:
    """The room declined, or no answer came in time. Frees the room."""
    return _conditional_update(reservation, from_states=ACTIVE_STATES, state=State.REJECTED, state_reason=reason[:REASON_MAX_LENGTH])


@transaction.atomic
def reservation_mark_conflicted(*, reservation: Reservation, reason: str) -> bool:
    """The meeting is missing from the room calendar. The room stays held."""
    return _conditional_update(
        reservation, from_states=(State.AWAITING_CONFIRMATION, State.CONFIRMED), state=State.CONFLICTED, state_reason=reason[:REASON_MAX_LENGTH],
    )


@transaction.atomic
def reservation_link_exchange(
    *,
    reservation: Reservation,
    event_id: str,
    change_key: str,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> bool:
    """Store where the meeting lives in Exchange (after a create or update). Empty values keep what is stored."""
    values = {"event_id": event_id, "change_key": change_key, "ical_uid": ical_uid, "mailbox": mailbox, "organizer": organizer, "sync_mailbox": sync_mailbox}
    return _conditional_update(reservation, from_states=None, **{k: v for k, v in values.items() if v})


@transaction.atomic
def reservation_unlink_exchange(*, reservation: Reservation) -> bool:
    """Forget the reservation's meeting (its old meeting was cancelled and a new one is about to
    be created, e.g. a room change with room organizers). ``reservation_link_exchange`` keeps
    stored values for empty arguments, so it can't do this. The origin is kept."""
    values = {"event_id": "", "change_key": "", "ical_uid": "", "mailbox": "", "organizer": "", "sync_mailbox": ""}
    return _conditional_update(reservation, from_states=None, **values)


@transaction.atomic
def series_link_occurrences(
    *,
    series: ReservationSeries,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> int:
    """Where the series' meeting lives, on every occurrence at once (after the series' create).
    Occurrences keep their own event ids: each gets one when it is changed alone. Empty values
    keep what is stored. Returns the number of occurrences written."""
    values = {"ical_uid": ical_uid, "mailbox": mailbox, "organizer": organizer, "sync_mailbox": sync_mailbox}
    values = {k: v for k, v in values.items() if v}
    if not values:
        return 0
    return Reservation.objects.filter(series=series).update(updated_at=_now(), **values)


@transaction.atomic
def series_unlink_instances(*, series: ReservationSeries) -> int:
    """Forget the occurrences' own instance ids: Exchange regenerated the series' occurrences
    (it was rescheduled). The next change of one finds its instance by its slot
    (``original_start``). Returns the number of occurrences written."""
    return (
        Reservation.objects.filter(series=series).exclude(event_id="").exclude(event_id=series.event_id)
        .update(event_id="", change_key="", updated_at=_now())
    )


@transaction.atomic
def series_link_exchange(
    *,
    series: ReservationSeries,
    event_id: str,
    change_key: str,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> bool:
    """The series master's ids in Exchange."""
    values = {"event_id": event_id, "change_key": change_key, "ical_uid": ical_uid, "mailbox": mailbox, "organizer": organizer, "sync_mailbox": sync_mailbox}
    values = {k: v for k, v in values.items() if v}
    changed = ReservationSeries.objects.filter(pk=series.pk).update(**values) == 1
    for field, value in values.items():
        setattr(series, field, value)
    return changed


@transaction.atomic
def reservation_set_sync_state(*, reservation: Reservation, state: str, error: str = "") -> bool:
    """Record how the last push went: ``synced`` (error cleared), ``error`` (with the error), ``pending``, ``not_synced``."""
    if state not in SyncState.values:
        raise ValueError(f"Unknown sync state {state!r}")
    return _conditional_update(reservation, from_states=None, sync_state=state, sync_error="" if state == SyncState.SYNCED else error)


@transaction.atomic
def reservation_set_attendee_responses(*, reservation: Reservation, responses: Mapping[str, str]) -> int:
    """Attendees' answers as Exchange reports them ({email: response}). Returns rows changed."""
    changed = 0
    for email, response in responses.items():
        if response not in Attendee.Response.values:
            response = Attendee.Response.UNKNOWN
        changed += Attendee.objects.filter(reservation=reservation, email__iexact=email).exclude(response=response).update(response=response)
    return changed
