"""The sync outbox: services record a ``SyncEvent`` in their own transaction;
listeners registered here (calendar_sync does so in its AppConfig) are called
with the event's id after the transaction commits.

Keeping the registry here lets ``calendar_sync`` depend on ``reservations`` and
not the other way round."""

from collections.abc import Callable

from django.db import transaction

from reservations.models import Reservation, ReservationSeries, SyncEvent, SyncState

_listeners: list[Callable[[int], None]] = []


def register_listener(listener: Callable[[int], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def _notify(event_id: int) -> None:
    for listener in list(_listeners):
        listener(event_id)


def sync_event_record(
    *,
    type: str,
    reservation: Reservation | None = None,
    series: ReservationSeries | None = None,
    details: dict | None = None,
) -> SyncEvent:
    """Write one outbox row; after commit the listeners push it."""
    event = SyncEvent.objects.create(type=type, reservation=reservation, series=series, details=details or {})
    if reservation is not None and reservation.sync_state != SyncState.PENDING:
        reservation.sync_state = SyncState.PENDING
        reservation.save(update_fields=["sync_state", "updated_at"])
    # robust: the change is committed whatever a listener does; a push that could
    # not be queued is picked up by calendar_sync's sweeper (the event stays "new").
    transaction.on_commit(lambda: _notify(event.pk), robust=True)
    return event
