"""The outbound push's statements written by hand for PostgreSQL (issue 17: the worker's CPU
per push bounds its throughput, and composing the ORM's statements was most of it).

``worker`` takes these on PostgreSQL and keeps its ORM queries on other databases (the
embedded default is SQLite); tests/calendar_sync/test_push_fastpaths.py holds each to the
ORM's result (the same rows claimed and written, the same instances read).

1. ``claim``: the claim's conditional UPDATE with the earlier-pending check against the row's
   own reservation, series and ``details.after_series_id``, RETURNING the claimed row (was:
   read the event, UPDATE, read it again);
2. ``reservation_for_push``: the reservation with its room, building, series, people (the
   requested-for's profile) and attendees in one join (was: the ORM's select_related and a
   prefetch, two statements);
3. ``finish``: the event's end and whether another change of its reservation is still
   pending, in one statement;
4. ``next_pending``: the first ``new`` event waiting behind a processed one.

SQL is built from model metadata only (identifiers quoted), so it follows schema changes;
values are always bound parameters."""

from __future__ import annotations

import functools
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection

from reservations.fastpaths import instances, select_columns
from reservations.models import Attendee, Reservation, ReservationSeries, SyncEvent
from workplace.models import Building, Room

NEW, PROCESSING, ERROR = SyncEvent.State.NEW, SyncEvent.State.PROCESSING, SyncEvent.State.ERROR
PENDING = [NEW, PROCESSING]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _col(model, name: str) -> str:
    return _q(model._meta.get_field(name).column)


def _after_series(alias: str) -> str:
    """``SyncEventDetails.of(event).after_series_id`` of the row ``alias`` (None, or 0: none)."""
    return f"NULLIF(({alias}.{_col(SyncEvent, 'details')} ->> 'after_series_id')::bigint, 0)"


# --- 1. claim ------------------------------------------------------------------------------


@functools.cache
def _claim_sql(reprocess: bool) -> str:
    """``worker.claim``'s UPDATE. The earlier-pending check (``worker._earlier_pending``) is
    scoped by the claimed row's own reservation, series and the series it was split from; a
    row with none of them waits, as the ORM's empty scope does, for any earlier pending event."""
    t, e = _q(SyncEvent._meta.db_table), "e"
    pk, state, due, attempts = (_col(SyncEvent, n) for n in ("id", "state", "next_attempt_at", "attempts"))
    reservation, series = _col(SyncEvent, "reservation"), _col(SyncEvent, "series")
    after = _after_series(e)
    earlier = f"SELECT 1 FROM {t} u WHERE u.{pk} < {e}.{pk} AND u.{state} = ANY(%(pending)s)"  # noqa: S608 (identifiers from metadata)
    scoped = f"{earlier} AND (u.{reservation} = {e}.{reservation} OR u.{series} = {e}.{series} OR u.{series} = {after})"
    unscoped = f"{e}.{reservation} IS NULL AND {e}.{series} IS NULL AND {after} IS NULL"
    if reprocess:
        claimable = f"{e}.{state} = ANY(%(reprocessable)s)"
        counted = "1"
    else:
        claimable = f"({e}.{state} = %(new)s AND ({e}.{due} IS NULL OR {e}.{due} <= %(now)s))"
        counted = f"{e}.{attempts} + 1"
    return (
        f"UPDATE {t} {e} SET {state} = %(processing)s, {due} = %(lease_until)s, {_col(SyncEvent, 'updated_at')} = %(now)s, "  # noqa: S608
        f"{attempts} = {counted} "
        f"WHERE {e}.{pk} = %(id)s AND ({claimable} OR ({e}.{state} = %(processing)s AND {e}.{due} < %(now)s)) "
        f"AND CASE WHEN {unscoped} THEN NOT EXISTS ({earlier}) ELSE NOT EXISTS ({scoped}) END "
        f"RETURNING {select_columns(SyncEvent, e)}"
    )


def claim(event_id: int, *, now: datetime, lease_until: datetime, reprocess: bool) -> SyncEvent | None:
    """The claimed event (as ``SyncEvent.objects.get`` reads it after the claim), or None."""
    params = {"id": event_id, "now": now, "lease_until": lease_until, "new": NEW, "processing": PROCESSING,
              "pending": PENDING, "reprocessable": [NEW, ERROR]}
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(reprocess), params)
        row = cursor.fetchone()
    return None if row is None else instances(row, 0, SyncEvent)[0]


# --- 2. the reservation a push reads ----------------------------------------------------------


@functools.cache
def _reservation_parts() -> tuple[str, tuple, object]:
    """The join, the models in its column order, and the requested-for's profile relation."""
    users = get_user_model()
    profile_rel = users._meta.get_field("profile")
    profile = profile_rel.related_model
    field = Reservation._meta.get_field

    def join(model, alias: str, on: str, *, outer: bool) -> str:
        return f" {'LEFT JOIN' if outer else 'JOIN'} {_q(model._meta.db_table)} {alias} ON {on}"

    models = (Reservation, Room, Building, ReservationSeries, users, users, profile, Attendee)
    columns = ", ".join(select_columns(model, alias) for model, alias in zip(models, ("r", "room", "b", "s", "rb", "rf", "p", "a"), strict=True))
    sql = (
        f"SELECT {columns} FROM {_q(Reservation._meta.db_table)} r"  # noqa: S608 (identifiers from metadata)
        + join(Room, "room", f"room.{_q('id')} = r.{_col(Reservation, 'room')}", outer=field("room").null)
        + join(Building, "b", f"b.{_q('id')} = room.{_col(Room, 'building')}", outer=Room._meta.get_field("building").null)
        + join(ReservationSeries, "s", f"s.{_q('id')} = r.{_col(Reservation, 'series')}", outer=True)
        + join(users, "rb", f"rb.{_q(users._meta.pk.column)} = r.{_col(Reservation, 'requested_by')}", outer=field("requested_by").null)
        + join(users, "rf", f"rf.{_q(users._meta.pk.column)} = r.{_col(Reservation, 'requested_for')}", outer=field("requested_for").null)
        + join(profile, "p", f"p.{_q(profile_rel.field.column)} = rf.{_q(users._meta.pk.column)}", outer=True)
        + join(Attendee, "a", f"a.{_col(Attendee, 'reservation')} = r.{_q(Reservation._meta.pk.column)}", outer=True)
        + f" WHERE r.{_q(Reservation._meta.pk.column)} = %s ORDER BY a.{_q(Attendee._meta.pk.column)}"
    )
    return sql, models, profile_rel


def reservation_for_push(reservation_id: int) -> Reservation:
    """``Reservation.objects.select_related("room__building", "requested_for__profile",
    "requested_by", "series").prefetch_related("attendees").get(pk=...)`` in one statement
    (a row per attendee, ordered as ``Attendee.Meta.ordering``: by id): the same instances,
    related objects cached as the ORM caches them. Raises ``Reservation.DoesNotExist``."""
    sql, models, profile_rel = _reservation_parts()
    with connection.cursor() as cursor:
        cursor.execute(sql, [reservation_id])
        rows = cursor.fetchall()
    if not rows:
        raise Reservation.DoesNotExist("Reservation matching query does not exist.")
    reservation, room, building, series, requested_by, requested_for, profile = instances(rows[0], 0, *models[:-1])
    field = Reservation._meta.get_field
    field("room").set_cached_value(reservation, room)
    Room._meta.get_field("building").set_cached_value(room, building)
    field("series").set_cached_value(reservation, series)
    field("requested_by").set_cached_value(reservation, requested_by)
    field("requested_for").set_cached_value(reservation, requested_for)
    profile_rel.set_cached_value(requested_for, profile)  # None: no profile (the accessor raises, as after select_related)
    if profile is not None:
        profile_rel.field.set_cached_value(profile, requested_for)
    at = len(rows[0]) - len(Attendee._meta.concrete_fields)
    attendees = [a for a in (instances(row, at, Attendee)[0] for row in rows) if a is not None]
    attendee_field = Attendee._meta.get_field("reservation")
    for attendee in attendees:
        attendee_field.set_cached_value(attendee, reservation)
    # As prefetch_related stores it: the manager's queryset with its result cache filled.
    queryset = reservation.attendees.get_queryset()
    queryset._result_cache, queryset._prefetch_done = attendees, True
    reservation._prefetched_objects_cache = {attendee_field.remote_field.cache_name: queryset}
    return reservation


# --- 3. the event's end ---------------------------------------------------------------------


_FINISHED = ("state", "response", "error", "processed_at", "next_attempt_at", "request_payload", "updated_at")


@functools.cache
def _finish_sql() -> str:
    t = _q(SyncEvent._meta.db_table)
    pk, state, reservation = _col(SyncEvent, "id"), _col(SyncEvent, "state"), _col(SyncEvent, "reservation")
    sets = ", ".join(f"{_col(SyncEvent, name)} = %({name})s" for name in _FINISHED)
    return (
        f"WITH done AS (UPDATE {t} SET {sets} WHERE {pk} = %(id)s AND {state} = %(processing)s RETURNING 1) "  # noqa: S608
        f"SELECT (SELECT COUNT(*) FROM done), EXISTS (SELECT 1 FROM {t} o WHERE o.{reservation} = %(reservation)s "
        f"AND o.{state} = ANY(%(pending)s) AND o.{pk} <> %(id)s)"
    )


def finish(event: SyncEvent, *, response, now: datetime) -> bool:
    """``worker._finish``'s UPDATE of a reservation's event (only while it is ``processing``)
    and whether another event of its reservation is still pending (the UPDATE's own row left
    out, whether or not it matched)."""
    get = SyncEvent._meta.get_field
    values = {"state": SyncEvent.State.PROCESSED, "response": response, "error": "", "processed_at": now, "next_attempt_at": None,
              "request_payload": event.request_payload, "updated_at": now}
    params = {name: get(name).get_db_prep_save(value, connection) for name, value in values.items()}
    params.update(id=event.pk, processing=PROCESSING, reservation=event.reservation_id, pending=PENDING)
    with connection.cursor() as cursor:
        cursor.execute(_finish_sql(), params)
        _changed, others = cursor.fetchone()
    return bool(others)


# --- 4. what waits behind an event --------------------------------------------------------


@functools.cache
def _next_pending_sql(by_reservation: bool, by_series: bool) -> str:
    t = _q(SyncEvent._meta.db_table)
    pk, state = _col(SyncEvent, "id"), _col(SyncEvent, "state")
    scope = []
    if by_reservation:
        scope.append(f"{_col(SyncEvent, 'reservation')} = %(reservation)s")
    if by_series:
        # details__after_series_id=<id>: the JSON value equal to the id, as the ORM compares it.
        scope += [f"{_col(SyncEvent, 'series')} = %(series)s", f"({_col(SyncEvent, 'details')} -> 'after_series_id') = %(after)s"]
    where = f"({' OR '.join(scope)}) AND " if scope else ""  # no scope: any newer new event, as the ORM's empty Q()
    return f"SELECT {pk} FROM {t} WHERE {where}{state} = %(new)s AND {pk} > %(id)s ORDER BY {pk} LIMIT 1"  # noqa: S608


def next_pending(event: SyncEvent) -> list[int]:
    """``worker.next_pending_for``: the first ``new`` event of the same reservation/series (or
    of a series split off it) after ``event``."""
    params = {"id": event.pk, "new": NEW, "reservation": event.reservation_id, "series": event.series_id}
    if event.series_id:
        params["after"] = SyncEvent._meta.get_field("details").get_db_prep_value(event.series_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_next_pending_sql(bool(event.reservation_id), bool(event.series_id)), params)
        return [pk for (pk,) in cursor.fetchall()]
