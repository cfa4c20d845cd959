"""Reads (HackSoft "selectors"). Each returns rows ready to render: related
objects are joined or prefetched so listing never costs a query per row."""

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from exchange_auth.providers import active_providers
from reservations.models import ACTIVE_STATES, ApprovalState, Attendee, Reservation, State
from workplace.models import Arrangement, Building, Floor, Room


def room_queryset() -> QuerySet[Room]:
    return Room.objects.select_related("building", "floor").prefetch_related(
        "equipment", Prefetch("arrangements", queryset=Arrangement.objects.order_by("-is_default", "name"))
    )


def room_list_available(
    *,
    building: Building | str | None = None,
    floor: Floor | int | None = None,
    capacity_min: int | None = None,
    equipment: Iterable[str] = (),
    arrangement: str | None = None,
    free_from: dt.datetime | None = None,
    free_to: dt.datetime | None = None,
) -> QuerySet[Room]:
    """Reservable rooms matching the room finder's filters.

    ``building`` is a building or its code; ``equipment`` slugs must all be
    present; ``arrangement`` is a layout name; with ``free_from``/``free_to`` only
    rooms without an active reservation overlapping that range are returned."""
    rooms = room_queryset().filter(reservable=True)
    if building is not None:
        rooms = rooms.filter(building=building) if isinstance(building, Building) else rooms.filter(building__code=building)
    if floor is not None:
        rooms = rooms.filter(floor=floor)
    if capacity_min is not None:
        rooms = rooms.filter(capacity__gte=capacity_min)
    slugs = sorted(set(equipment))
    if slugs:
        # Rooms holding every one of ``slugs``: a subquery, so the rooms' query needs no GROUP BY.
        holding = (
            Room.equipment.through.objects.filter(equipment__slug__in=slugs).values("room_id")
            .annotate(held=Count("equipment_id", distinct=True)).filter(held=len(slugs)).values("room_id")
        )
        rooms = rooms.filter(pk__in=holding)
    if arrangement:
        # EXISTS rather than a join: a room is listed once without a DISTINCT over its columns.
        rooms = rooms.filter(Exists(Arrangement.objects.filter(room=OuterRef("pk"), name__iexact=arrangement)))
    if free_from is not None and free_to is not None:
        busy = Reservation.objects.filter(
            room=OuterRef("pk"), state__in=ACTIVE_STATES, start__lt=free_to, end__gt=free_from
        )
        rooms = rooms.filter(~Exists(busy))
    return rooms.order_by("building__name", "name")


def reservation_queryset() -> QuerySet[Reservation]:
    return Reservation.objects.select_related(
        "room__building", "arrangement", "requested_for", "requested_by", "series"
    ).prefetch_related(Prefetch("attendees", queryset=Attendee.objects.order_by("id")))


def reservation_visible_to(*, user: AbstractBaseUser) -> QuerySet[Reservation]:
    """Staff see every reservation; an employee sees those they made or that are for them."""
    rows = reservation_queryset()
    if user.is_staff:
        return rows
    return rows.filter(Q(requested_by=user) | Q(requested_for=user))


def reservation_list_for_user(
    *,
    user: AbstractBaseUser,
    states: Iterable[str] = (),
    room: Room | int | None = None,
    starts_after: dt.datetime | None = None,
    starts_before: dt.datetime | None = None,
    series: int | None = None,
    requested_for: AbstractBaseUser | int | None = None,
) -> QuerySet[Reservation]:
    rows = reservation_visible_to(user=user)
    states = list(states)
    if states:
        rows = rows.filter(state__in=states)
    if room is not None:
        rows = rows.filter(room=room)
    if starts_after is not None:
        rows = rows.filter(end__gt=starts_after)
    if starts_before is not None:
        rows = rows.filter(start__lt=starts_before)
    if series is not None:
        rows = rows.filter(series_id=series)
    if requested_for is not None:
        rows = rows.filter(requested_for=requested_for)
    return rows.order_by("start", "id")


def reservation_get_for_user(*, user: AbstractBaseUser, reservation_id: int) -> Reservation | None:
    return reservation_visible_to(user=user).filter(pk=reservation_id).first()


def approvals_pending_for(*, user: AbstractBaseUser) -> QuerySet[Reservation]:
    """The bookings waiting for ``user``'s approval in the product (rooms whose approvers group
    ``user`` is in; an admin sees every room's), soonest first."""
    rows = reservation_queryset().filter(
        state=State.AWAITING_CONFIRMATION, approval_state=ApprovalState.AWAITING_APPROVAL, room__needs_approval=True, event_id="",
    )
    if not user.is_staff:
        rows = rows.filter(room__approvers__in=user.groups.all())
    return rows.order_by("start", "pk")


def reservation_get_for_approver(*, user: AbstractBaseUser, reservation_id: int) -> Reservation | None:
    """A reservation ``user`` may see to decide on it: their own (or any, for staff), or one of a
    room whose approvers they are."""
    found = reservation_get_for_user(user=user, reservation_id=reservation_id)
    if found is not None:
        return found
    return reservation_queryset().filter(pk=reservation_id, room__approvers__in=user.groups.all()).first()


def room_busy_slots(*, room: Room, start: dt.datetime, end: dt.datetime) -> list[Reservation]:
    """Active reservations of ``room`` overlapping ``start``–``end`` (for availability)."""
    return list(
        Reservation.objects.filter(room=room, state__in=ACTIVE_STATES, start__lt=end, end__gt=start)
        .only("id", "start", "end", "state", "room_id")
        .order_by("start")
    )


def people_bookable() -> QuerySet:
    """The product's people an employee may name (on behalf, attendees): active accounts without
    the service accounts (each active provider's delegated user and organizer account) and
    admin-only accounts (superusers)."""
    service = {e.lower() for p in active_providers() for e in (p.delegated_user_email, p.organizer_account) if e}
    people = get_user_model().objects.filter(is_active=True).exclude(is_superuser=True)
    for email in service:
        people = people.exclude(email__iexact=email)
    return people.order_by("first_name", "last_name", "username")


def people_matching(*, query: str, limit: int = 10) -> list:
    """Bookable people whose first or last name, full name, email or username starts with
    ``query`` (case-insensitive), with an email address (an attendee needs one)."""
    query = (query or "").strip()
    if not query:
        return []
    words = query.split()
    match = Q(email__istartswith=query) | Q(username__istartswith=query)
    name = Q()
    for word in words:  # "bob be": every word starts the first or the last name
        name &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
    return list(people_bookable().exclude(email="").filter(match | name)[:limit])
