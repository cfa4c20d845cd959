"""The booking API's ORM bypasses, kept together so their cost and their guard are in one place.

A booking (POST /api/v1/reservations/) is the product's hot path; bench/booking_api.py
measures it, and its docstring and the commits named below give the figures.

1. ``insert``: one new reservation row with an INSERT written once from the model's
   metadata instead of ``save(force_insert=True)``, whose per-call SQL compilation was the
   biggest Python cost of a booking (b4c97dc); values Django would pass unchanged skip
   ``get_db_prep_save`` (25ee76c: in-process CPU per booking 1.50 -> 1.40 ms). Kept correct
   by tests/reservations/test_insert.py: the values equal Django's adapting, other types still
   go through it, and a round trip reads back what was saved. PostgreSQL only.
2. ``room_for_booking``: the room, its building and default arrangement in one raw join from
   model metadata (a54797a: the ORM's select_related compilation dominated a create).
3. ``reservation_to_dict``: the API's reservation JSON built directly, several times cheaper
   than running ~30 serializer fields per row (7e1e253); ``ReservationSerializer`` documents
   the same shape for OpenAPI, and the API tests assert the bodies.
4. ``update_row``: one row's UPDATE by primary key (optionally only while a column holds one
   of some values), written once per set of columns: the outbound push's bookkeeping (the
   sync event's payload, the reservation's link, sync state and answer) ran the ORM's update
   compilation several times a push (issue 17: the worker's CPU per push bounds its
   throughput). Kept correct by tests/reservations/test_update_row.py: the same rows and
   values as ``QuerySet.update``. PostgreSQL only.
5. ``instances``: model instances from the columns of a hand-written SELECT (``select_columns``
   wrote the list), each field's database converters applied, as the ORM's ``from_db``
   (PostgreSQL's backend adds no converter of its own; others' do); ``refresh_fields``:
   ``refresh_from_db(fields=...)`` of plain columns as one such SELECT (every room answer
   applied reads the reservation's state back).

SQL is built from model metadata only (identifiers quoted), so it follows schema changes;
values are always bound parameters."""

import datetime as dt
import functools

from django.db import connection, models, transaction
from django.db.models import signals

from reservations.checkin_window import CheckInRules
from reservations.models import Reservation
from workplace.models import Arrangement, Building, Room

# --- 1. the booking's INSERT -------------------------------------------------------------


@functools.cache
def insert_statement(model) -> tuple[str, tuple]:
    """INSERT ... RETURNING pk for one ``model`` row, written once from the model's metadata
    (the columns ``Model.save(force_insert=True)`` writes: every concrete field but an
    auto primary key), and how each column's value is read (``column_readers``)."""
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 (identifiers from metadata)
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    return sql, column_readers(fields)


# Field classes (exactly these, not subclasses) whose ``get_db_prep_save`` on PostgreSQL hands
# back a value of this Python type (exactly; a bool is not taken for an int) unchanged, as it
# does None: such a value needs no adapting. A datetime only when aware (a naive one is made
# aware, with a warning, by Django).
_PASSED_AS_IS = {
    models.CharField: str, models.TextField: str, models.EmailField: str, models.ForeignKey: int,
    models.IntegerField: int, models.PositiveIntegerField: int, models.BigIntegerField: int,
    models.BooleanField: bool, models.DateTimeField: dt.datetime,
}


def column_readers(fields) -> tuple:
    """(field, attname, type passed as is or None, whether pre_save computes the value)."""
    return tuple(
        (f, f.attname, _PASSED_AS_IS.get(type(f)), bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)))
        for f in fields
    )


def column_value(obj, field, attname: str, as_is: type | None, computed: bool):
    """``field.get_db_prep_save(field.pre_save(obj, True))``, skipping the adapting where it
    would return the value unchanged (a booking's INSERT has 27 columns)."""
    value = field.pre_save(obj, True) if computed else getattr(obj, attname)  # Field.pre_save is the getattr
    if value is None or (as_is is not None and type(value) is as_is and (as_is is not dt.datetime or value.tzinfo is not None)):
        return value
    return field.get_db_prep_save(value, connection)


def insert(obj) -> None:
    """``obj.save(force_insert=True)`` for a new row, minus the ORM's per-call SQL compilation.
    Same values (each field's ``pre_save`` fills auto_now(_add), ``get_db_prep_save`` adapts
    what needs it: ``column_value``), same signals, same state afterwards; errors (the
    exclusion constraint's among them) come wrapped as Django's. Other databases take ``save``."""
    model = type(obj)
    if connection.vendor != "postgresql" or model._meta.parents or model._meta.auto_field is None:
        obj.save(force_insert=True)
        return
    sql, readers = insert_statement(model)
    using = connection.alias
    obj._prepare_related_fields_for_save(operation_name="save")  # as Model.save: refuses unsaved related objects
    signals.pre_save.send(sender=model, instance=obj, raw=False, using=using, update_fields=None)
    values = [column_value(obj, *reader) for reader in readers]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = using
    signals.post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False, using=using)


# --- 2. the room of a booking --------------------------------------------------------------


def _columns(model) -> list:
    return list(model._meta.concrete_fields)


@functools.cache
def _room_for_booking_sql() -> str:
    """One join, written once from the models' own metadata (so it follows schema changes)."""
    quote = connection.ops.quote_name

    def cols(model, alias):
        return ", ".join(f"{alias}.{quote(f.column)}" for f in _columns(model))

    # Identifiers only (quoted, from model metadata); the room id is a bound parameter.
    return (
        f"SELECT {cols(Room, 'r')}, {cols(Building, 'b')}, {cols(Arrangement, 'a')} "  # noqa: S608
        f"FROM {quote(Room._meta.db_table)} r "
        f"JOIN {quote(Building._meta.db_table)} b ON b.{quote('id')} = r.{quote('building_id')} "
        f"LEFT JOIN {quote(Arrangement._meta.db_table)} a ON a.{quote('room_id')} = r.{quote('id')} AND a.{quote('is_default')} "
        f"WHERE r.{quote('id')} = %s"
    )


def room_for_booking(*, room_id: int) -> tuple[Room, Arrangement | None] | None:
    """The room with its building and default arrangement, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_room_for_booking_sql(), [room_id])
        row = cursor.fetchone()
    if row is None:
        return None
    db = connection.alias
    room_fields, building_fields, arrangement_fields = _columns(Room), _columns(Building), _columns(Arrangement)
    room_values = row[: len(room_fields)]
    building_values = row[len(room_fields): len(room_fields) + len(building_fields)]
    arrangement_values = row[len(room_fields) + len(building_fields):]
    room = Room.from_db(db, [f.attname for f in room_fields], room_values)
    room.building = Building.from_db(db, [f.attname for f in building_fields], building_values)
    arrangement = None
    if arrangement_values[0] is not None:
        arrangement = Arrangement.from_db(db, [f.attname for f in arrangement_fields], arrangement_values)
        arrangement.room = room
    return room, arrangement


# --- 3. the reservation's JSON ---------------------------------------------------------------


def _local_iso(value: dt.datetime, room: Room) -> str:
    return value.astimezone(room.building.tzinfo).isoformat()


def _utc_iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def reservation_to_dict(r: Reservation, checkin_rules: CheckInRules | None = None) -> dict:
    """``ReservationSerializer``'s shape: times in the building's zone, stamps in UTC.
    ``checkin_rules``: the check-in properties read once for a listing (else read here)."""
    room = r.room
    series = r.series if r.series_id else None
    return {
        "id": r.pk,
        "room": r.room_id,
        "arrangement": r.arrangement_id,
        "subject": r.subject,
        "body": r.body,
        "start": _local_iso(r.start, room),
        "end": _local_iso(r.end, room),
        "requested_for": r.requested_for.email or r.requested_for.get_username(),
        "requested_by": r.requested_by.email or r.requested_by.get_username(),
        "attendees": [{"email": a.email, "name": a.name, "type": a.type, "response": a.response} for a in r.attendees.all()],
        "kind": r.kind,
        "source": r.source,
        "subsource": r.subsource,
        "state": r.state,
        "state_reason": r.state_reason,
        "approval_state": r.approval_state,
        "origin": r.origin,
        "series": None if series is None else {
            "id": series.pk, "frequency": series.frequency, "interval": series.interval, "weekdays": list(series.weekdays),
            "index": series.index or None, "until": series.until.isoformat() if series.until else None, "count": series.count,
        },
        "online_meeting": r.online_meeting,
        "online_meeting_url": r.online_meeting_url or (series.online_meeting_url if series is not None else ""),
        "sync": {
            "state": r.sync_state, "sync_mailbox": r.sync_mailbox, "event_id": r.event_id, "change_key": r.change_key,
            "ical_uid": r.ical_uid, "last_error": r.sync_error,
        },
        "check_in": _check_in(r, checkin_rules or CheckInRules.now()),
        "created_at": _utc_iso(r.created_at),
        "updated_at": _utc_iso(r.updated_at),
    }


def _check_in(r: Reservation, rules: CheckInRules) -> dict:
    required = rules.required(r.room)
    opens, closes = rules.window(r) if r.created_at else (None, None)
    return {
        "required": required,
        "opens": _local_iso(opens, r.room) if required and opens else None,
        "closes": _local_iso(min(closes, r.end), r.room) if required and closes else None,
        "checked_in_at": _utc_iso(r.checked_in_at) if r.checked_in_at else None,
        "channel": r.checked_in_channel,
        "released_at": _utc_iso(r.released_at) if r.released_at else None,
    }


# --- 4. one row's UPDATE --------------------------------------------------------------------


@functools.cache
def update_statement(model, names: tuple[str, ...], among: tuple[str, ...]) -> tuple[str, tuple]:
    """UPDATE of one ``model`` row by primary key setting the fields ``names`` (names or
    attnames), and only while each field of ``among`` holds one of a list of values; written
    once from the model's metadata, with how each set value is read (``column_readers``)."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "  # noqa: S608 (identifiers from metadata)
        f"WHERE {quote(meta.pk.column)} = %s"
        + "".join(f" AND {quote(meta.get_field(name).column)} = ANY(%s)" for name in among)
    )
    return sql, column_readers(fields)


def _plain(value) -> bool:
    """A value ``QuerySet.update`` would adapt with ``get_db_prep_save`` alone (no expression, no model instance)."""
    return not (hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"))


def update_row(model, pk, values: dict, *, among: dict | None = None) -> int:
    """``model.objects.filter(pk=pk, <field>__in=<values> for among).update(**values)``: the
    number of rows changed (0 or 1). On PostgreSQL one statement written once per set of
    columns (``update_statement``) with each value adapted as the ORM's update does
    (``get_db_prep_save``, skipped where it would hand the value back unchanged); like
    ``QuerySet.update`` no ``auto_now`` field is touched unless given, no signal is sent. An
    expression or a model instance among the values, and other databases, take the ORM."""
    among = among or {}
    if connection.vendor != "postgresql" or not values or not all(_plain(v) for v in values.values()):
        return model._default_manager.filter(pk=pk, **{f"{name}__in": list(allowed) for name, allowed in among.items()}).update(**values)
    sql, readers = update_statement(model, tuple(values), tuple(among))
    params = [_adapted(field, as_is, value) for (field, _attname, as_is, _computed), value in zip(readers, values.values(), strict=True)]
    params.append(pk)
    for name, allowed in among.items():
        field = model._meta.get_field(name)
        params.append([field.get_db_prep_value(v, connection, prepared=False) for v in allowed])
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:  # as QuerySet.update
        cursor.execute(sql, params)
        return cursor.rowcount


def _adapted(field, as_is: type | None, value):
    if value is None or (as_is is not None and type(value) is as_is and (as_is is not dt.datetime or value.tzinfo is not None)):
        return value
    return field.get_db_prep_save(value, connection)


# --- 5. instances from hand-written SELECTs ---------------------------------------------------


def select_columns(model, alias: str) -> str:
    """The quoted ``alias.column`` list of ``model``'s concrete fields (``instances`` reads them back)."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


@functools.cache
def row_readers(model) -> tuple[list[str], list[tuple[int, list]], int, int]:
    """For ``instances``: ``model``'s attnames in ``select_columns`` order, the (index, database
    converters) of the fields that have any, the number of columns and where the primary key is."""
    fields = model._meta.concrete_fields
    converting = [(i, f.get_db_converters(connection)) for i, f in enumerate(fields)]
    return [f.attname for f in fields], [(i, c) for i, c in converting if c], len(fields), fields.index(model._meta.pk)


def instances(row, at: int, *models) -> list:
    """One instance of each of ``models`` from ``row``'s columns, starting at ``at``, in the
    order ``select_columns`` listed them (a model whose primary key column is NULL — the far
    side of a LEFT JOIN that matched nothing — gives None), as the ORM builds them
    (``Model.from_db`` after each field's database converters)."""
    out = []
    db = connection.alias
    for model in models:
        names, converting, width, pk_at = row_readers(model)
        values = row[at:at + width]
        at += width
        if values[pk_at] is None:
            out.append(None)
            continue
        if converting:
            values = list(values)
            for i, converters in converting:
                for convert in converters:
                    values[i] = convert(values[i], None, connection)
        out.append(model.from_db(db, names, values))
    return out


@functools.cache
def _refresh_statement(model, names: tuple[str, ...]) -> tuple[str, tuple]:
    meta = model._meta
    quote = connection.ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    sql = f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    return sql, tuple((f.attname, f.get_db_converters(connection)) for f in fields)


def refresh_fields(obj, fields: list[str]) -> None:
    """``obj.refresh_from_db(fields=fields)`` for columns that are no relation (the ORM's
    otherwise, and on other databases): the values read again, ``DoesNotExist`` when the row is gone."""
    meta = type(obj)._meta
    if connection.vendor != "postgresql" or any(meta.get_field(name).is_relation for name in fields):
        obj.refresh_from_db(fields=fields)
        return
    sql, readers = _refresh_statement(type(obj), tuple(fields))
    with connection.cursor() as cursor:
        cursor.execute(sql, [obj.pk])
        row = cursor.fetchone()
    if row is None:
        raise type(obj).DoesNotExist(f"{type(obj).__name__} matching query does not exist.")
    for (attname, converters), value in zip(readers, row, strict=True):
        for convert in converters:
            value = convert(value, None, connection)
        setattr(obj, attname, value)
    obj._state.db = connection.alias
