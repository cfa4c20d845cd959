"""Changing a reservation: ``reservation_update``, one occurrence or the rest of its series.

Only the arguments given change. A series-wide time change moves each occurrence by the same
local wall-clock shift and moves the series' pattern too (``series_move``). Like a create it
runs in one durable transaction, and a refused overlap or a lost deadlock is a 409."""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, transaction

from reservations import rules
from reservations.exceptions import NotActive
from reservations.models import ACTIVE_STATES, Attendee, Reservation, Source, SyncState
from reservations.services import clock
from reservations.services.conflicts import (
    check_free_first,
    is_deadlock,
    is_overlap_violation,
    slot_taken_after_race,
)
from reservations.services.create import attendee_rows, initial_states
from reservations.services.exchange import ExchangeIds
from reservations.services.series_move import move_series, plan_series_move
from reservations.services.sync_events import channel, record_updates
from reservations.services.validation import (
    UNSET,
    check_scope,
    clean_attendees,
    ensure_may_manage,
    raise_invalid,
    require_aware,
    validate,
)
from workplace.models import Arrangement, Room

# The fields a change can set on a row, in the order they are compared and written.
_FIELDS = ("subject", "body", "start", "end", "room", "arrangement", "requested_for")


class RowPlan(NamedTuple):
    row: Reservation  # locked, as read
    values: dict[str, Any]  # every field of _FIELDS as it will be
    changes: dict[str, tuple[Any, Any]]  # field → (old, new), only those that change


class TimeChange(NamedTuple):
    start: dt.datetime  # the target's new times
    end: dt.datetime
    shift: dt.timedelta  # local wall-clock shift of its start, applied to every row
    duration: dt.timedelta  # every row's new local length


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
    (``plan_series_move``): a series that has not begun is rescheduled as a whole;
    one that has begun is split as Outlook's "this and following" does (the old
    series ends the day before the first moved occurrence, the moved ones form a
    new series).

    Only the arguments given change. Returns the (refreshed) target reservation.
    """
    check_scope(scope, reservation)
    errors: dict[str, list[str]] = {}
    new_attendees = None if attendees is UNSET else clean_attendees(attendees, errors)
    raise_invalid(errors)
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
        if is_overlap_violation(exc):
            raise slot_taken_after_race(room=target_room, slots=pairs_for_race, exclude_ids=exclude) from exc
        raise
    except OperationalError as exc:
        if is_deadlock(exc):
            raise slot_taken_after_race(room=target_room, slots=pairs_for_race, exclude_ids=exclude) from exc
        raise


def _update_rows(
    *, actor, reservation, scope, source, subsource, from_exchange, subject, body, start, end, room,
    arrangement, attendees, requested_for, exchange, race,
) -> Reservation:
    """``reservation_update`` inside its transaction:

    1. lock the rows (``_lock_rows``);
    2. work out each row's new values and what changes (``_time_change``, ``_plan_row``);
    3. restrictions and validation (``_check_plans``);
    4. the room must be free, ignoring the rows we move (``race`` collects the slots and rows,
       for naming the winner if the constraint refuses one);
    5. write the rows (``_write_rows``), then the series and the outbox events: a series-wide
       time change moves the series (``series_move``), else one event per change."""
    now = clock.now()
    target, rows = _lock_rows(actor=actor, reservation=reservation, scope=scope, from_exchange=from_exchange, now=now)
    tz = target.room.building.tzinfo
    time = _time_change(target, start=start, end=end, tz=tz)
    given = {"subject": subject, "body": body, "room": room, "arrangement": arrangement, "requested_for": requested_for}
    move = None
    series_time_change = scope == "series" and target.series_id is not None and not from_exchange and time is not None
    if series_time_change and target.series.frequency == "monthly":
        # A monthly series' occurrences follow its moved pattern (Outlook's month-end rule), not one shift.
        move = plan_series_move(series_id=target.series_id, moving=rows, shift=time.shift, duration=time.duration, tz=tz, now=now)
    pattern = move.slots if move is not None else None
    plans = [plan for plan in (_plan_row(row, target, time, given, attendees, tz, pattern=pattern) for row in rows) if plan.changes]
    if not plans:
        return target
    _check_plans(plans, actor=actor, from_exchange=from_exchange, source=source, subsource=subsource, attendees=attendees)
    pairs = [(plan.values["start"], plan.values["end"]) for plan in plans if {"start", "end", "room"} & plan.changes.keys()]
    race_pairs, race_exclude = race
    race_pairs.extend(pairs)
    race_exclude.extend(row.pk for row in rows)
    check_free_first(room=room, slots=pairs, exclude_ids=race_exclude)
    if move is None and series_time_change and any({"start", "end"} & plan.changes.keys() for plan in plans):
        move = plan_series_move(series_id=target.series_id, moving=rows, shift=time.shift, duration=time.duration, tz=tz, now=now)
    _write_rows(plans, time=time, room=room, from_exchange=from_exchange, exchange=exchange, attendees=attendees)
    via = channel(actor, source, subsource)
    if move is not None:
        move_series(
            move=move, moving=rows, plans=plans, room=room, duration=time.duration, tz=tz, via=via,
            subject=None if subject is UNSET else subject, requested_for=None if requested_for is UNSET else requested_for,
        )
    elif not from_exchange:
        record_updates(plans=plans, scope=scope, series=target.series, via=via)
    if move is None and scope == "series" and target.series is not None:
        _write_series_fields(target.series, plans[0])
    target.refresh_from_db()
    return target


def _lock_rows(*, actor, reservation: Reservation, scope: str, from_exchange: bool, now: dt.datetime) -> tuple[Reservation, list[Reservation]]:
    """1. Lock what we change, freshly read (a concurrent update waits here)."""
    locked = Reservation.objects.select_for_update(of=("self",)).select_related("room__building", "requested_for", "requested_by", "arrangement")
    target = locked.get(pk=reservation.pk)
    ensure_may_manage(actor, target)
    if target.state not in ACTIVE_STATES:
        raise NotActive(f"This reservation is {target.get_state_display()}; it can't be changed.")
    if actor is not None and not from_exchange and target.end <= now:
        raise NotActive("This reservation is over; it can't be changed.")
    if scope != "series":
        return target, [target]
    rows = list(locked.filter(series_id=target.series_id, state__in=ACTIVE_STATES, end__gt=now).order_by("start"))
    if target not in rows:
        rows.insert(0, target)
    return target, rows


def _time_change(target: Reservation, *, start, end, tz) -> TimeChange | None:
    """2. The target's new times as a local shift and duration (None: times unchanged)."""
    if start is UNSET and end is UNSET:
        return None
    new_start = target.start if start is UNSET else start
    new_end = target.end if end is UNSET else end
    errors: dict[str, list[str]] = {}
    for name, value in (("start", new_start), ("end", new_end)):
        require_aware(errors, name, value, "2030-05-04T09:00:00+02:00")
    raise_invalid(errors)
    shift = new_start.astimezone(tz).replace(tzinfo=None) - target.start.astimezone(tz).replace(tzinfo=None)
    duration = new_end.astimezone(tz).replace(tzinfo=None) - new_start.astimezone(tz).replace(tzinfo=None)
    return TimeChange(new_start, new_end, shift, duration)


def _attendee_list(reservation: Reservation) -> list[dict]:
    return [{"email": a.email, "name": a.name, "type": a.type} for a in reservation.attendees.all()]


def _plan_row(row: Reservation, target: Reservation, time: TimeChange | None, given: dict[str, Any], attendees, tz,
              pattern: dict[int, dt.datetime] | None = None) -> RowPlan:
    """2. One row's new values and what changes. ``pattern``: a monthly series' new slots; an
    occurrence on its slot moves to its new one (the others, moved alone before, by the shift)."""
    if time is None:
        row_start, row_end = row.start, row.end
    elif row.pk == target.pk:
        row_start, row_end = time.start, time.end
    elif pattern is not None and row.pk in pattern and row.start == (row.original_start or row.start):
        row_start = pattern[row.pk]
        row_end = (row_start.astimezone(tz).replace(tzinfo=None) + time.duration).replace(tzinfo=tz).astimezone(dt.UTC)
    else:
        local = row.start.astimezone(tz).replace(tzinfo=None) + time.shift
        row_start = local.replace(tzinfo=tz).astimezone(dt.UTC)
        row_end = (local + time.duration).replace(tzinfo=tz).astimezone(dt.UTC)
    values = {
        "subject": row.subject if given["subject"] is UNSET else given["subject"],
        "body": row.body if given["body"] is UNSET else given["body"],
        "start": row_start,
        "end": row_end,
        "room": given["room"],
        "arrangement": row.arrangement if given["arrangement"] is UNSET else given["arrangement"],
        "requested_for": row.requested_for if given["requested_for"] is UNSET else given["requested_for"],
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
    return RowPlan(row, values, changes)


def _check_plans(plans: list[RowPlan], *, actor, from_exchange: bool, source: str, subsource: str, attendees) -> None:
    """3. Restrictions (per occurrence) and validation of the new values."""
    errors: dict[str, list[str]] = {}
    for row, values, changes in plans:
        if actor is not None and not from_exchange:
            rules.check_update(actor=actor, reservation=row, source=source, subsource=subsource, changes=changes)
        row_attendees = attendees if attendees is not None else [
            {"email": a.email, "type": a.type} for a in row.attendees.all()
        ]
        validate(
            room=values["room"], arrangement=values["arrangement"], start=values["start"], end=values["end"],
            subject=values["subject"], body=values["body"], attendees=row_attendees,
            requested_for=values["requested_for"], errors=errors, strict_time=not from_exchange,
            check_start_in_past="start" in changes,
        )
        if errors:
            break
    raise_invalid(errors)


def _write_rows(plans: list[RowPlan], *, time: TimeChange | None, room: Room, from_exchange: bool, exchange: ExchangeIds | None, attendees) -> None:
    """5. Write each row. Occurrences all move by the same shift: writing the one furthest
    along the shift first means no row ever overlaps a sibling not yet moved (the exclusion
    constraint checks each row as it is written)."""
    if time is not None and len(plans) > 1:
        plans.sort(key=lambda plan: plan.row.start, reverse=time.shift > dt.timedelta(0))
    link = exchange.given() if exchange is not None else {}
    for row, values, changes in plans:
        previous_room = row.room
        update_fields = ["updated_at"]
        for field in _FIELDS:
            if field in changes:
                setattr(row, field, values[field])
                update_fields.append(field)
        if "room" in changes:
            row.state, row.sync_state = initial_states(room=room, from_exchange=from_exchange)
            if not room.is_synced and (row.event_id or previous_room.is_synced):
                row.sync_state = SyncState.PENDING  # the old meeting still has to be updated
            update_fields += ["state", "sync_state"]
        for field, value in link.items():
            setattr(row, field, value)
            update_fields.append(field)
        row.save(update_fields=update_fields)
        if "attendees" in changes:
            row.attendees.all().delete()
            Attendee.objects.bulk_create(attendee_rows(row, attendees))


def _write_series_fields(series, plan: RowPlan) -> None:
    """5. A series-wide change of subject or room (no time change) is the series' too."""
    series_fields = [f for f in ("subject", "room") if f in plan.changes]
    for field in series_fields:
        setattr(series, field, plan.values[field])
    if series_fields:
        series.save(update_fields=series_fields)
