"""What a push or a room's answer does to the reservation.

Each function calls the matching ``reservations.services`` function (the sync
worker writes reservations only through them) and keeps the in-memory object in
step, so the caller can go on using it.
"""

from __future__ import annotations

from reservations import fastpaths, services
from reservations.models import Reservation, ReservationSeries, SyncState

from ..models import RoomEvent
from .notifications import notify_confirmed, notify_rejected


def link_instance(reservation: Reservation, *, event_id: str, change_key: str) -> None:
    """An occurrence's own instance id in its series, found when it is changed or cancelled alone."""
    services.reservation_link_exchange(reservation=reservation, event_id=event_id, change_key=change_key or "")


def unlink_instances(series: ReservationSeries) -> int:
    """Exchange regenerated the series' occurrences (it was rescheduled): their own instance ids are stale."""
    return services.series_unlink_instances(series=series)


def forget_copies(reservation_ids) -> int:
    """The copies of meetings recorded for these reservations (``RoomEvent`` rows, any mailbox)
    no longer stand for them: their series was rescheduled or split, and Exchange replaced or
    removed those occurrences. The next pull matches the new copies by iCalUId and slot, and
    takes the old ones' removal for no cancellation of these reservations."""
    return RoomEvent.objects.filter(reservation_id__in=list(reservation_ids)).update(reservation=None)


def unlink_exchange(reservation: Reservation) -> None:
    """Forget the old meeting before a replacement is created (room change with room organizers)."""
    services.reservation_unlink_exchange(reservation=reservation)


def set_change_key(target: Reservation | ReservationSeries, change_key: str) -> None:
    if not change_key or change_key == target.change_key or not target.event_id:
        return
    if isinstance(target, ReservationSeries):
        services.series_link_exchange(series=target, event_id=target.event_id, change_key=change_key)
    else:
        services.reservation_link_exchange(reservation=target, event_id=target.event_id, change_key=change_key)


def _set_sync_state(reservation: Reservation, state: str, error: str = "") -> None:
    services.reservation_set_sync_state(reservation=reservation, state=state, error=error)


def mark_confirmed(reservation: Reservation) -> bool:
    """awaiting_confirmation (or conflicted) → confirmed. False when nothing changed."""
    changed = services.reservation_mark_confirmed(reservation=reservation)
    if changed:
        fastpaths.refresh_fields(reservation, ["state", "state_reason", "online_meeting_url"])
        notify_confirmed(reservation)
    else:
        fastpaths.refresh_fields(reservation, ["state", "state_reason"])
    return changed


def mark_rejected(reservation: Reservation, reason: str) -> bool:
    """The room declined (or never answered) → rejected, and the employee is told."""
    changed = services.reservation_mark_rejected(reservation=reservation, reason=reason)
    if changed:
        notify_rejected(reservation, reason)
    else:
        fastpaths.refresh_fields(reservation, ["state", "state_reason"])
    return changed


def mark_awaiting_approval(reservation: Reservation) -> bool:
    """The room answered tentative: a delegate approves its bookings. False when nothing changed."""
    return services.reservation_mark_awaiting_approval(reservation=reservation)


def mark_conflicted(reservation: Reservation, reason: str) -> bool:
    """awaiting_confirmation (or confirmed) → conflicted: the meeting is missing. False when nothing changed."""
    changed = services.reservation_mark_conflicted(reservation=reservation, reason=reason)
    if not changed:
        fastpaths.refresh_fields(reservation, ["state", "state_reason"])
    return changed


def synced(reservation: Reservation) -> None:
    _set_sync_state(reservation, SyncState.SYNCED, "")


def failed(reservation: Reservation, error: str) -> None:
    _set_sync_state(reservation, SyncState.ERROR, error[:2000])
