"""What a clash offers next (issue 14, item 5): rooms that fit the same time and the same
room's next free slot. Read only, and run only on the refusal path (a 409), so a booking
that goes through pays nothing for it.

"Fits" means the same building, at least as many seats and every piece of equipment of
the room asked for and, when a layout other than the room's default was asked for, a layout of
the same name with at least as many seats (it is the one the alternative books); for a series,
a room must be free for every clashing occurrence."""

import datetime as dt
from collections.abc import Sequence

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Arrangement, Room

MAX_ROOMS = 3
# How far the same room's next free slot is looked for, and in how many bookings at most.
NEXT_FREE_DAYS = 14
NEXT_FREE_SCAN = 200

Slots = Sequence[tuple[dt.datetime, dt.datetime]]


def _busy_q(slots: Slots) -> Q:
    overlap = Q()
    for start, end in slots:
        overlap |= Q(start__lt=end, end__gt=start)
    return overlap


def seats_of(arrangement: Arrangement) -> int:
    return arrangement.capacity or arrangement.room.capacity


def rooms_free_for(*, room: Room, slots: Slots, arrangement: Arrangement | None = None) -> list[Room]:
    """Up to MAX_ROOMS other rooms like ``room`` free for every slot (two queries); with a
    non-default ``arrangement``, each has ``layout_id``: its layout of that name with enough seats."""
    equipment = list(room.equipment.values_list("pk", flat=True))
    candidates = Room.objects.filter(building_id=room.building_id, reservable=True, capacity__gte=room.capacity).exclude(pk=room.pk)
    if arrangement is not None and not arrangement.is_default:
        layouts = (Arrangement.objects.filter(room=OuterRef("pk"), name__iexact=arrangement.name)
                   .annotate(seats=Coalesce("capacity", "room__capacity")).filter(seats__gte=seats_of(arrangement)))
        candidates = candidates.annotate(layout_id=Subquery(layouts.values("pk")[:1]),
                                         layout_seats=Subquery(layouts.values("seats")[:1])).filter(layout_id__isnull=False)
    if equipment:
        candidates = candidates.annotate(
            fitting=Count("equipment", filter=Q(equipment__in=equipment), distinct=True)
        ).filter(fitting=len(equipment))
    busy = Reservation.objects.filter(_busy_q(slots), state__in=ACTIVE_STATES).values("room_id")
    return list(candidates.exclude(pk__in=busy).order_by("capacity", "name")[:MAX_ROOMS])


def next_free_slot(*, room: Room, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The earliest slot of the same length in ``room`` from ``start`` on, at the same local
    time of day or right after a booking, within NEXT_FREE_DAYS (one query)."""
    length = end - start
    rows = list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, end__gt=start,
                                   start__lt=start + dt.timedelta(days=NEXT_FREE_DAYS))
        .order_by("start").values_list("start", "end")[:NEXT_FREE_SCAN]
    )
    tz = room.building.tzinfo
    candidate = start
    for busy_start, busy_end in rows:
        if busy_start >= candidate + length and candidate.astimezone(tz).date() == (candidate + length).astimezone(tz).date():
            return candidate, candidate + length
        candidate = max(candidate, busy_end)
    if len(rows) < NEXT_FREE_SCAN:
        return candidate, candidate + length
    return None


def _room_entry(r: Room, arrangement: Arrangement | None, **extra) -> dict:
    layout = None
    if getattr(r, "layout_id", None) is not None and arrangement is not None:
        layout = {"id": r.layout_id, "name": arrangement.name, "seats": r.layout_seats}
    return {"id": r.pk, "name": r.name, **extra, "arrangement": layout}


def alternatives_for(*, room: Room, slots: Slots, clashing: Sequence[int], arrangement: Arrangement | None = None) -> dict:
    """The 409's ``extra.alternatives``: ``rooms`` free for every clashing slot, ``next_free``
    in the same room (one booking only) and, for a series, ``occurrences``: each clashing
    occurrence (1-based) with the rooms free for it."""
    clash_slots = [slots[i] for i in clashing]
    rooms = rooms_free_for(room=room, slots=clash_slots, arrangement=arrangement)
    answer: dict = {"rooms": [_room_entry(r, arrangement, capacity=r.capacity) for r in rooms], "next_free": None}
    if len(slots) == 1:
        free = next_free_slot(room=room, start=slots[0][0], end=slots[0][1])
        if free:
            answer["next_free"] = {"start": free[0].astimezone(room.building.tzinfo).isoformat(),
                                   "end": free[1].astimezone(room.building.tzinfo).isoformat()}
    else:
        answer["occurrences"] = [
            {"occurrence": i + 1, "start": slots[i][0].astimezone(room.building.tzinfo).isoformat(),
             "rooms": [_room_entry(r, arrangement) for r in rooms_free_for(room=room, slots=[slots[i]], arrangement=arrangement)]}
            for i in clashing[:20]
        ]
    return answer
