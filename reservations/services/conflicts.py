"""No two active reservations overlap in a room, and the database guarantees it.

On PostgreSQL the exclusion constraint (migration 0002) is the check: the INSERT/UPDATE is
refused, the transaction rolls back, and the service then looks up the slots in the way to
raise ``SlotTaken`` (409) naming each of them — a lost race gives the same answer, never a
500, and the happy path spends no query on a pre-check. On SQLite the service checks first
inside its IMMEDIATE (write-locked) transaction, which serializes writers."""

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, OperationalError, connection
from django.db.models import Q

from reservations.alternatives import alternatives_for
from reservations.exceptions import SlotTaken
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

OVERLAP_CONSTRAINT = "reservation_no_overlap_in_room"

# Bookings of one slot that reach the exclusion constraint at the same moment can each
# find the other's row in progress and wait for it: PostgreSQL then aborts one of them
# with a deadlock (SQLSTATE 40P01; measured: ~4% of the losers of 20-way races of bare
# INSERTs) instead of the constraint's 23P01. Its transaction is rolled back whole, so a
# create is simply run again (it then meets the winner: 409, or a free slot); an update,
# whose rows were already changed in memory, reports the race as a conflict.
DEADLOCK_RETRIES = 3

Slots = Sequence[tuple[dt.datetime, dt.datetime]]


def database_enforces_no_overlap() -> bool:
    """PostgreSQL's exclusion constraint is the check; SQLite has no such constraint."""
    return connection.vendor == "postgresql"


def sqlstate(exc: Exception) -> str | None:
    """The SQLSTATE of the psycopg error Django wrapped."""
    return getattr(exc.__cause__, "sqlstate", None)


def is_overlap_violation(exc: IntegrityError) -> bool:
    return sqlstate(exc) == "23P01" or OVERLAP_CONSTRAINT in str(exc)


def is_deadlock(exc: OperationalError) -> bool:
    return sqlstate(exc) == "40P01"


def _local(moment: dt.datetime, room: Room) -> str:
    return moment.astimezone(room.building.tzinfo).strftime("%Y-%m-%d %H:%M")


def _slot_text(start: dt.datetime, end: dt.datetime, room: Room) -> str:
    local_end = end.astimezone(room.building.tzinfo)
    same_day = local_end.date() == start.astimezone(room.building.tzinfo).date()
    end_text = local_end.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    return f"{_local(start, room)}–{end_text}"


def find_conflicts(*, room: Room, slots: Slots, exclude_ids: Iterable[int] = ()) -> list[tuple[int, Reservation]]:
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


def raise_slot_taken(*, room: Room, slots: Slots, conflicts: list[tuple[int, Reservation]], arrangement=None) -> None:
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
    # Times in the building's zone with their offset, as the rest of the API (issue 14, item 6);
    # and what to do next: rooms free then and the room's next free slot (item 5).
    tz_info = room.building.tzinfo
    for entry in listed:
        for key in ("start", "end", "conflicting_start", "conflicting_end"):
            entry[key] = dt.datetime.fromisoformat(entry[key]).astimezone(tz_info).isoformat()
    alternatives = alternatives_for(room=room, slots=slots, clashing=[index for index, _ in conflicts], arrangement=arrangement)
    raise SlotTaken(message, extra={"conflicts": listed, "alternatives": alternatives})


def check_free_first(*, room: Room, slots: Slots, exclude_ids: Iterable[int] = (), arrangement=None) -> None:
    """Where no constraint refuses an overlap (SQLite), look before writing."""
    if not database_enforces_no_overlap():
        raise_slot_taken(room=room, slots=slots, conflicts=find_conflicts(room=room, slots=slots, exclude_ids=exclude_ids), arrangement=arrangement)


def slot_taken_after_race(*, room: Room, slots: Slots, exclude_ids: Iterable[int] = (), arrangement=None) -> SlotTaken:
    """The exclusion constraint refused a row: name the slot that won the race."""
    try:
        raise_slot_taken(room=room, slots=slots, conflicts=find_conflicts(room=room, slots=slots, exclude_ids=exclude_ids), arrangement=arrangement)
    except SlotTaken as exc:
        return exc
    return SlotTaken(f"{room.name} was booked by someone else at the same moment; try another time.", extra={"conflicts": []})
