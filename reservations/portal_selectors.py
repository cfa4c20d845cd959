"""Reads the portal needs beyond ``reservations.selectors``: the finder's page of
rooms with each room's bookings of the day, "my reservations" with each row's
latest sync event, and the capabilities of many reservations at once.

Each function costs a fixed number of queries whatever the number of rows."""

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db import connection, connections, router
from django.db.models import Count, F, Func, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from reservations import rules
from reservations.calendar_grid import busy_intervals, fetch_page
from reservations.models import ACTIVE_STATES, Reservation, State, SyncEvent
from reservations.selectors import (
    reservation_list_for_user,
    reservation_visible_to,
    room_list_available,
)
from workplace.models import Arrangement, Building, Equipment, Floor, Room

# The finder's day view spans these building-local hours (bookings outside are clipped).
DAY_VIEW_START_HOUR = 7
DAY_VIEW_END_HOUR = 21


def day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


# What a finder row shows of a room; its building and floor come from workplace.catalogue.
FINDER_ROOM_FIELDS = ("id", "name", "capacity", "building_id", "floor_id", "sync_enabled", "mailbox")


def finder_rooms(rooms: QuerySet[Room]) -> QuerySet[Room]:
    """``rooms`` (``selectors.room_list_available``) with only the columns a finder row shows:
    no joined building or floor, no prefetch (``workplace.catalogue`` holds the names it lists)."""
    return rooms.select_related(None).prefetch_related(None).only(*FINDER_ROOM_FIELDS)


class FinderRoom(NamedTuple):
    """A room as a finder row draws it (``views.finder._finder_row``, ``room_day_bookings``): no
    model instance per row."""

    pk: int
    name: str
    capacity: int
    building_id: int
    floor_id: int | None
    sync_enabled: bool
    mailbox: str
    building: Building
    floor: Floor | None

    @property
    def is_synced(self) -> bool:  # Room.is_synced
        return self.sync_enabled


def _finder_sql() -> dict[str, str]:
    """The finder's statement in parts, its tables and columns read from the models (a renamed
    table or column follows). Plain SQL: a window count, LIMIT/OFFSET, EXISTS. Only the models'
    names are formatted in; every value is a bound parameter."""
    room, building = Room._meta.db_table, Building._meta.db_table
    held, equipment = Room.equipment.through._meta.db_table, Equipment._meta.db_table
    layouts, reservations = Arrangement._meta.db_table, Reservation._meta.db_table
    return {
        "select": (
            f'SELECT r."id", r."name", r."capacity", r."building_id", r."floor_id", r."sync_enabled", r."mailbox",'  # noqa: S608
            f' COUNT(*) OVER () FROM "{room}" r INNER JOIN "{building}" b ON r."building_id" = b."id"'
            ' WHERE r."reservable" = %s'),
        "building": ' AND r."building_id" = %s',
        "floor": ' AND r."floor_id" = %s',
        "capacity": ' AND r."capacity" >= %s',
        # Rooms holding every one of the slugs (room_list_available's Count(distinct) subquery).
        "equipment": (
            f' AND r."id" IN (SELECT h."room_id" FROM "{held}" h INNER JOIN "{equipment}" e ON h."equipment_id" = e."id"'  # noqa: S608
            ' WHERE e."slug" IN ({slugs}) GROUP BY h."room_id" HAVING COUNT(DISTINCT h."equipment_id") = %s)'),
        # name__iexact: Django compares UPPER() of both on PostgreSQL.
        "arrangement": f' AND EXISTS (SELECT 1 FROM "{layouts}" a WHERE a."room_id" = r."id" AND UPPER(a."name"::text) = UPPER(%s))',  # noqa: S608
        "free": (
            f' AND NOT EXISTS (SELECT 1 FROM "{reservations}" v WHERE v."room_id" = r."id"'  # noqa: S608
            ' AND v."state" IN ({states}) AND v."start" < %s AND v."end" > %s)'),
        "order": ' ORDER BY b."name", r."name", r."id" LIMIT %s OFFSET %s',
    }


_FINDER_SQL = functools.cache(_finder_sql)


def finder_page(*, listed, per_page: int, number, building: Building | None = None, floor: Floor | None = None,
                capacity_min: int | None = None, equipment: Iterable[str] = (), arrangement: str | None = None,
                free_from: dt.datetime | None = None, free_to: dt.datetime | None = None) -> tuple[Page, list[FinderRoom]]:
    """(``Paginator``'s page ``number`` of the reservable rooms matching the finder's filters — a
    bad number is the first, one past the end the last —, its rooms with building and floor from
    ``listed``, the ``workplace.catalogue``). The rooms ``selectors.room_list_available`` lists, in its
    order (building, then name; then id), written out as one statement on PostgreSQL: building the
    ORM's query and a model per row cost more than running it (issue 14's speed target). Elsewhere
    (the embedded default's SQLite) the ORM's query, the same rows.
    tests/reservations/test_portal_finder_sql.py holds both to the ORM's answer."""
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    db = connections[router.db_for_read(Room)]
    if db.vendor != "postgresql":
        rows, total, wanted = _finder_orm_rows(building=building, floor=floor, capacity_min=capacity_min, equipment=equipment,
                                               arrangement=arrangement, free_from=free_from, free_to=free_to,
                                               per_page=per_page, wanted=wanted)
    else:
        parts = _FINDER_SQL()
        sql, params = [parts["select"]], [True]
        if building is not None:
            sql.append(parts["building"])
            params.append(building.pk)
        if floor is not None:
            sql.append(parts["floor"])
            params.append(floor.pk)
        if capacity_min is not None:
            sql.append(parts["capacity"])
            params.append(capacity_min)
        slugs = sorted(set(equipment))
        if slugs:
            sql.append(parts["equipment"].format(slugs=", ".join(["%s"] * len(slugs))))
            params += [*slugs, len(slugs)]
        if arrangement:
            sql.append(parts["arrangement"])
            params.append(arrangement)
        if free_from is not None and free_to is not None:
            states = sorted(ACTIVE_STATES)
            sql.append(parts["free"].format(states=", ".join(["%s"] * len(states))))
            params += [*states, free_to, free_from]
        matching = "".join(sql)
        count = f"SELECT COUNT(*) FROM ({matching}) t"  # noqa: S608 - ours, values bound
        with db.cursor() as cursor:
            rows, total, wanted = fetch_page(cursor, matching + parts["order"], count, params, per_page=per_page, wanted=wanted)
        rows = [row[:7] for row in rows]
    buildings = {pk: listed.building_by_id(pk) for pk in {row[3] for row in rows}}
    floors = {pk: listed.floor_by_id(pk) for pk in {row[4] for row in rows if row[4] is not None}}
    missing_b = [pk for pk, b in buildings.items() if b is None]
    missing_f = [pk for pk, f in floors.items() if f is None]
    if missing_b:  # lists older than the building (one added since): read them
        buildings.update(Building.objects.in_bulk(missing_b))
    if missing_f:
        floors.update(Floor.objects.in_bulk(missing_f))
    rooms = [FinderRoom(pk, name, capacity, building_id, floor_id, bool(synced), mailbox, buildings[building_id],
                        floors.get(floor_id) if floor_id is not None else None)
             for pk, name, capacity, building_id, floor_id, synced, mailbox in rows]
    paginator = Paginator(rooms, per_page)
    paginator.count = total  # a cached_property
    return Page(rooms, wanted, paginator), rooms


def _finder_orm_rows(*, per_page: int, wanted: int, **filters) -> tuple[list[tuple], int, int]:
    """``finder_page``'s rows, total and page number from the ORM (``room_list_available``)."""
    rooms = finder_rooms(room_list_available(**filters)).order_by("building__name", "name", "pk")
    page = Paginator(rooms, per_page).get_page(wanted)
    rows = [(r.pk, r.name, r.capacity, r.building_id, r.floor_id, r.sync_enabled, r.mailbox) for r in page.object_list]
    return rows, page.paginator.count, page.number


def room_day_bookings(*, rooms: Sequence[Room], day: dt.date, user: AbstractBaseUser) -> dict[int, list[dict]]:
    """{room id: [booking, ...]} of the active reservations on ``day`` (each room's building-local
    day), as blocks ready for the day view (start, end, mine, left and width in % of the span).
    One query for all rooms, by start (``calendar_grid.busy_intervals``: no model instance per
    booking, no ORM build)."""
    if not rooms:
        return {}
    tz_of = {room.pk: room.building.tzinfo for room in rooms}
    bounds = {pk: day_bounds(day, tz) for pk, tz in tz_of.items()}
    earliest = min(start for start, _ in bounds.values())
    latest = max(end for _, end in bounds.values())
    # The grids' hand-written busy query (times as Unix seconds, no ORM build).
    busy = busy_intervals(rooms=rooms, start=earliest, end=latest)
    span_start_hour, span_end_hour = DAY_VIEW_START_HOUR, DAY_VIEW_END_HOUR
    span_minutes = (span_end_hour - span_start_hour) * 60
    view_starts = {pk: dt.datetime.combine(day, dt.time(span_start_hour), tzinfo=tz) for pk, tz in tz_of.items()}
    by_room: dict[int, list[dict]] = defaultdict(list)
    for room_id, room_busy in busy.items():
        day_start, day_end = bounds[room_id]
        tz, view_start = tz_of[room_id], view_starts[room_id]
        for _pk, _room_id, start, end, _subject, requested_for_id, requested_by_id in room_busy:
            if not (start < day_end and end > day_start):
                continue
            local_start, local_end = start.astimezone(tz), end.astimezone(tz)
            offset = (max(local_start, day_start) - view_start).total_seconds() / 60
            length = (min(local_end, day_end) - max(local_start, day_start)).total_seconds() / 60
            left = max(0.0, min(offset, span_minutes))
            right = max(0.0, min(offset + length, span_minutes))
            by_room[room_id].append({
                "start": local_start,
                "end": local_end,
                "mine": user.pk in (requested_for_id, requested_by_id),
                "left": round(left / span_minutes * 100, 2),
                "width": round(max(right - left, 0) / span_minutes * 100, 2),
            })
    return dict(by_room)


def latest_sync_event_subquery(field: str) -> Subquery:
    """A field of the reservation's latest sync event: its own, or its series' (a series-wide
    change is one event on the series)."""
    events = SyncEvent.objects.filter(
        Q(reservation_id=OuterRef("pk")) | Q(series_id=OuterRef("series_id"), reservation__isnull=True, series__isnull=False)
    ).order_by("-created_at", "-id")
    return Subquery(events.values(field)[:1])


def _my_rows(user: AbstractBaseUser, show: str) -> QuerySet[Reservation]:
    """``show="upcoming"``: not finished and not cancelled (rejected/conflicted ones stay visible,
    with their reason); ``"all"``: also cancelled ones and those of the last 30 days."""
    now = timezone.now()
    if show == "all":
        rows = reservation_list_for_user(user=user, starts_after=now - dt.timedelta(days=30))
    else:
        rows = reservation_list_for_user(user=user, starts_after=now).exclude(state=State.CANCELLED)
    if user.is_staff:  # staff see everything through the API/admin; "my" means mine here too
        rows = rows.filter(Q(requested_by=user) | Q(requested_for=user))
    return rows


def _with_sync_event(rows: QuerySet[Reservation]) -> QuerySet[Reservation]:
    return rows.annotate(
        sync_event_state=latest_sync_event_subquery("state"),
        sync_event_attempts=latest_sync_event_subquery("attempts"),
        sync_event_next_attempt_at=latest_sync_event_subquery("next_attempt_at"),
        sync_event_error=latest_sync_event_subquery("error"),
        sync_event_type=latest_sync_event_subquery("type"),
    )


def my_reservations(*, user: AbstractBaseUser, show: str = "upcoming") -> QuerySet[Reservation]:
    """The reservations ``user`` made or that are for them, with their latest sync event (see
    ``_my_rows`` for ``show``)."""
    return _with_sync_event(_my_rows(user, show))


def my_reservations_page(*, user: AbstractBaseUser, show: str = "upcoming", number, per_page: int) -> Page:
    """Page ``number`` of ``my_reservations`` (the last page when out of range, as
    ``Paginator.get_page``) in one query: the page's ids are chosen first, so the latest sync
    event is looked up for the page's rows only, not for every reservation the user has (2,500
    upcoming ones made 12,500 subqueries), and the total comes along as an uncorrelated count.
    Each row has its room, building and people; no attendees (the page doesn't show them, and
    check-in is the viewer's as requester or requested-for). On PostgreSQL the query is
    written by hand (LATERAL): composing it with the ORM cost more than running it."""
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    ordered = _my_rows(user, show).select_related(None).prefetch_related(None)
    if connection.vendor == "postgresql":
        def rows_of(page_number: int) -> list[Reservation]:
            return _my_page_sql(user=user, show=show, offset=(page_number - 1) * per_page, limit=per_page)
    else:  # the embedded default (SQLite): the same rows through the ORM
        total = Subquery(ordered.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")[:1])

        def rows_of(page_number: int) -> list[Reservation]:
            bottom = (page_number - 1) * per_page
            ids = ordered.values("pk")[bottom:bottom + per_page]
            return list(_with_sync_event(
                Reservation.objects.filter(pk__in=ids).select_related("room__building", "requested_for", "requested_by")
            ).annotate(_page_total=total).order_by("start", "id"))

    found = rows_of(wanted)
    paginator = Paginator(ordered, per_page)
    if found:
        paginator.count = found[0]._page_total  # Paginator.count is a cached_property
        return Page(found, wanted, paginator)
    page = paginator.get_page(wanted)  # none there: the count, then the last page's rows
    return Page(rows_of(page.number) if paginator.count else [], page.number, paginator)


_SYNC_EVENT_FIELDS = ("state", "attempts", "next_attempt_at", "error", "type")


@functools.cache
def _my_page_parts() -> tuple[str, list[tuple[type, str, list[str], list[list], int]]]:
    """The hand-written page query's SELECT list and joins, from the models' own fields (a new
    column follows), and for each model its field names, database converters and where its
    primary key is."""
    from django.contrib.auth import get_user_model

    q = connection.ops.quote_name
    users = get_user_model()
    parts = [(Reservation, "r"), (Room, "room"), (Room._meta.get_field("building").related_model, "b"), (users, "rf"), (users, "rb")]
    columns, models = [], []
    for model, alias in parts:
        fields = model._meta.concrete_fields
        columns += [f"{alias}.{q(f.column)}" for f in fields]
        models.append((model, alias, [f.attname for f in fields], [f.get_db_converters(connection) for f in fields], fields.index(model._meta.pk)))
    columns += [f"ev.{q(name)}" for name in _SYNC_EVENT_FIELDS]
    sql = (  # noqa: S608 - only table and column names (the models', quoted) are formatted in; values are parameters
        "WITH mine AS (SELECT id, start FROM {reservation} WHERE (requested_by_id = %(user)s OR requested_for_id = %(user)s)"
        " AND \"end\" > %(after)s AND NOT (state = ANY(%(hidden)s))),"
        " page AS (SELECT id FROM mine ORDER BY start, id LIMIT %(limit)s OFFSET %(offset)s)"
        " SELECT {columns}, (SELECT COUNT(*) FROM mine) AS total"
        " FROM page JOIN {reservation} r ON r.id = page.id"
        " JOIN {room} room ON room.id = r.room_id JOIN {building} b ON b.id = room.building_id"
        " JOIN {user} rf ON rf.id = r.requested_for_id JOIN {user} rb ON rb.id = r.requested_by_id"
        " LEFT JOIN LATERAL (SELECT {event_columns} FROM {event} e WHERE e.reservation_id = r.id"
        " OR (e.reservation_id IS NULL AND e.series_id IS NOT NULL AND e.series_id = r.series_id)"
        " ORDER BY e.created_at DESC, e.id DESC LIMIT 1) ev ON true"
        " ORDER BY r.start, r.id"
    ).format(
        reservation=q(Reservation._meta.db_table), room=q(Room._meta.db_table), building=q(parts[2][0]._meta.db_table),
        user=q(users._meta.db_table), event=q(SyncEvent._meta.db_table), columns=", ".join(columns),
        event_columns=", ".join(f"e.{q(name)}" for name in _SYNC_EVENT_FIELDS),
    )
    return sql, models


def _my_page_sql(*, user: AbstractBaseUser, show: str, offset: int, limit: int) -> list[Reservation]:
    """PostgreSQL: a page of ``my_reservations``, as ``Reservation`` instances with their room,
    building, requested-for/by users, latest sync event (``sync_event_*``) and ``_page_total``."""
    sql, models = _my_page_parts()
    now = timezone.now()
    after, hidden = (now - dt.timedelta(days=30), []) if show == "all" else (now, [State.CANCELLED])
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user": user.pk, "after": after, "hidden": hidden, "limit": limit, "offset": offset})
        records = cursor.fetchall()
    db = connection.alias
    # One instance per room, building and person on the page (the viewer is ``user`` itself,
    # profile and all): fewer objects to build, and the capabilities' profile prefetch finds
    # the viewer's profile already there.
    seen: dict[tuple[str, object], object] = {("rf", user.pk): user, ("rb", user.pk): user}
    rows = []
    for record in records:
        at, built = 0, []
        for model, alias, names, converters, pk_at in models:
            key = (alias, record[at + pk_at])
            instance = seen.get(key)
            if instance is None:
                values = list(record[at:at + len(names)])
                for index, field_converters in enumerate(converters):
                    for convert in field_converters:
                        values[index] = convert(values[index], None, connection)
                instance = seen[key] = model.from_db(db, names, values)
            built.append(instance)
            at += len(names)
        row, room, building, requested_for, requested_by = built
        if "building" not in room._state.fields_cache:
            room.building = building
        row.room, row.requested_for, row.requested_by = room, requested_for, requested_by
        for name, value in zip(_SYNC_EVENT_FIELDS, record[at:at + len(_SYNC_EVENT_FIELDS)], strict=True):
            setattr(row, f"sync_event_{name}", value)
        row._page_total = record[-1]
        rows.append(row)
    return rows


def reservation_statuses(*, user: AbstractBaseUser, ids: Sequence[int]) -> list[Reservation]:
    """The live-status poll: state and latest sync event of those of ``ids`` that ``user`` may see
    (one query, whatever the number of ids)."""
    return list(
        reservation_visible_to(user=user).filter(pk__in=list(ids)).annotate(
            sync_event_state=latest_sync_event_subquery("state"),
            sync_event_attempts=latest_sync_event_subquery("attempts"),
            sync_event_next_attempt_at=latest_sync_event_subquery("next_attempt_at"),
            sync_event_error=latest_sync_event_subquery("error"),
            sync_event_type=latest_sync_event_subquery("type"),
        ).order_by("pk")
    )


def capabilities_for(*, actor: AbstractBaseUser, reservations: Iterable[Reservation]) -> dict[int, dict]:
    """{reservation id: capabilities} for a page of rows: ``rules.ui_capabilities_many`` looks up
    the provider, the mode and the actor's Outlook connection once, however many rows and rooms."""
    return rules.ui_capabilities_many(actor, reservations)


def reservation_detail(*, user: AbstractBaseUser, reservation_id: int) -> Reservation | None:
    """One reservation as the detail page shows it: visible to ``user`` (else None), with its
    room's building and floor, people, series, attendees and latest sync event. One query
    plus the attendees' prefetch."""
    return (
        reservation_visible_to(user=user).select_related("room__floor").filter(pk=reservation_id)
        .annotate(
            sync_event_state=latest_sync_event_subquery("state"),
            sync_event_attempts=latest_sync_event_subquery("attempts"),
            sync_event_next_attempt_at=latest_sync_event_subquery("next_attempt_at"),
            sync_event_error=latest_sync_event_subquery("error"),
            sync_event_type=latest_sync_event_subquery("type"),
        )
        .first()
    )


def series_summary(*, reservation: Reservation) -> dict | None:
    """For an occurrence: its series' pattern and where this occurrence stands in it
    (one aggregate query)."""
    if not reservation.series_id:
        return None
    now = timezone.now()
    counts = Reservation.objects.filter(series_id=reservation.series_id).aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(state__in=ACTIVE_STATES)),
        coming=Count("id", filter=Q(state__in=ACTIVE_STATES, end__gt=now)),
        position=Count("id", filter=Q(start__lte=reservation.start)),
    )
    series = reservation.series
    weekday = (series.weekdays or [1])[0]  # set for every series by position (services.create)
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    return {"series": series, "weekday_name": names[weekday - 1], **counts}
