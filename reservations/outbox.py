"""The sync outbox: services record a ``SyncEvent`` in their own transaction;
listeners registered here (calendar_sync does so in its AppConfig) are called
with the event's id after the transaction commits.

``SyncEventDetails`` is the contract between the services that write an event and
the worker that pushes it: every key of ``SyncEvent.details`` that is read.
Keeping the registry here lets ``calendar_sync`` depend on ``reservations`` and
not the other way round."""

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from reservations.models import Reservation, ReservationSeries, SyncEvent, SyncState

_listeners: list[Callable[[int], None]] = []


@dataclass(frozen=True)
class SyncEventDetails:
    """What a change was about, for the worker that pushes it (stored as ``SyncEvent.details``)."""

    scope: str = "occurrence"  # "occurrence" | "series": one row's change, or one event on the series
    # Who acted and through which channel: Exchange is written with the credential of this change
    # (SPEC §3), not of the reservation's original booking.
    actor_id: int | None = None
    source: str = ""
    subsource: str | None = None  # None: not recorded, the push takes the reservation's own
    system: bool = False  # a job or inbound sync acted (actor_id is None)
    # The rows a series-wide create, update or cancel covers (a series create: all of them).
    reservation_ids: tuple[int, ...] = ()
    # update: which fields changed; the room it left (its meeting may have to go).
    fields: tuple[str, ...] = ()
    previous_room_id: int | None = None
    reschedules: bool = False  # a series update that moves the pattern: Exchange regenerates occurrences
    # A begun series split by a time change: the old half's update with action "end" stops its
    # pattern on ends_on and lets go of the moved rows; the new half's create waits for it.
    action: str = ""
    ends_on: dt.date | None = None
    moved_reservation_ids: tuple[int, ...] = ()
    after_series_id: int | None = None  # read in querysets too: details__after_series_id
    # delete: the reason (the comment to attendees) and "also cancel the meeting" (None: not a cancel).
    reason: str = ""
    cancel_meeting: bool | None = None
    # An occurrence's deviation queued again after its series was rescheduled. Nothing in the
    # product reads it; tests/calendar_sync/test_series_time_change.py finds those events by it.
    reapply: bool = False

    # Every event a service writes carries these (the worker and tests look them up directly);
    # the other keys are stored only when they differ from their default.
    _ALWAYS_STORED = frozenset({"scope", "actor_id", "source", "subsource", "system"})

    def to_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name not in self._ALWAYS_STORED and value == field.default:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            stored[field.name] = value
        return stored

    @classmethod
    def of(cls, event_or_details: SyncEvent | Mapping[str, Any] | None) -> "SyncEventDetails":
        """The details of an event (or its stored dict). Keys this class doesn't know (older
        rows', or a log event's) are ignored; missing ones take their defaults."""
        raw = event_or_details.details if isinstance(event_or_details, SyncEvent) else event_or_details
        known = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            field = known.get(key)
            if field is None:
                continue
            if isinstance(value, list):
                value = tuple(value)
            elif key == "ends_on" and isinstance(value, str):
                value = dt.date.fromisoformat(value)
            values[key] = value
        return cls(**values)


def sync_event_record_many(*, type: str, items: list[tuple[Reservation, SyncEventDetails]]) -> list[SyncEvent]:
    """``sync_event_record`` for many rows at once, each its own event (one INSERT): the
    release job's batches. The caller sets the rows' ``sync_state`` to pending (it saves the
    rows itself, in its own bulk update)."""
    events = SyncEvent.objects.bulk_create([
        SyncEvent(type=type, reservation=row, series_id=row.series_id, details=details.to_json()) for row, details in items
    ])
    for event in events:
        transaction.on_commit(lambda pk=event.pk: _notify(pk), robust=True)
    return events


def register_listener(listener: Callable[[int], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def _notify(event_id: int) -> None:
    for listener in list(_listeners):
        listener(event_id)


def sync_event_record(
    *,
    type: str,
    details: SyncEventDetails,
    reservation: Reservation | None = None,
    series: ReservationSeries | None = None,
) -> SyncEvent:
    """Write one outbox row; after commit the listeners push it."""
    event = SyncEvent.objects.create(type=type, reservation=reservation, series=series, details=details.to_json())
    if reservation is not None and reservation.sync_state != SyncState.PENDING:
        reservation.sync_state = SyncState.PENDING
        reservation.save(update_fields=["sync_state", "updated_at"])
    # robust: the change is committed whatever a listener does; a push that could
    # not be queued is picked up by calendar_sync's sweeper (the event stays "new").
    transaction.on_commit(lambda: _notify(event.pk), robust=True)
    return event
