"""What a push or a room's answer does to the reservation.

Each function calls the matching ``reservations.services`` function (issue 2).
TEMPORARY: until those services exist, a guarded ``QuerySet.update`` does the
same narrow write here; delete the fallbacks once they have landed.
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.utils import timezone

from reservations.models import Reservation, ReservationSeries, State, SyncState

from .notifications import notify_rejected

logger = logging.getLogger("calendar_sync")


def _service(name: str):
    try:
        from reservations import services
    except ImportError:
        return None
    return getattr(services, name, None)


def link_exchange(target: Reservation | ReservationSeries, *, event_id: str, change_key: str, ical_uid: str, mailbox: str, organizer: str, sync_mailbox: str) -> None:
    fields = {"event_id": event_id or "", "change_key": change_key or "", "ical_uid": ical_uid or "", "mailbox": mailbox.lower(), "organizer": (organizer or "").lower(), "sync_mailbox": sync_mailbox}
    is_series = isinstance(target, ReservationSeries)
    service = _service("series_link_exchange" if is_series else "reservation_link_exchange")
    if service is not None:
        service(**({"series": target} if is_series else {"reservation": target}), **fields)
    else:
        type(target).objects.filter(pk=target.pk).update(**fields)  # TEMPORARY (see module doc)
    for k, v in fields.items():
        setattr(target, k, v)


def unlink_exchange(reservation: Reservation) -> None:
    """Forget the old meeting before a replacement is created (room change with room
    organizers). The link service keeps stored values for empty arguments, so this
    narrow clear is done here."""
    Reservation.objects.filter(pk=reservation.pk).update(event_id="", change_key="", ical_uid="")
    reservation.event_id = reservation.change_key = reservation.ical_uid = ""


def set_change_key(target: Reservation | ReservationSeries, change_key: str) -> None:
    if change_key and change_key != target.change_key:
        type(target).objects.filter(pk=target.pk).update(change_key=change_key)
        target.change_key = change_key


def set_sync_state(reservation: Reservation, state: str, error: str = "") -> None:
    service = _service("reservation_set_sync_state")
    if service is not None:
        service(reservation=reservation, state=state, error=error)
    else:
        Reservation.objects.filter(pk=reservation.pk).update(sync_state=state, sync_error=error, updated_at=timezone.now())  # TEMPORARY
    reservation.sync_state, reservation.sync_error = state, error


def mark_confirmed(reservation: Reservation) -> bool:
    """awaiting_confirmation → confirmed. False when it wasn't awaiting (a no-op)."""
    service = _service("reservation_mark_confirmed")
    if service is not None:
        service(reservation=reservation)
        reservation.refresh_from_db(fields=["state", "state_reason"])
        return reservation.state == State.CONFIRMED
    n = Reservation.objects.filter(pk=reservation.pk, state__in=[State.AWAITING_CONFIRMATION, State.CONFLICTED]).update(  # TEMPORARY
        state=State.CONFIRMED, state_reason="", updated_at=timezone.now()
    )
    if n:
        reservation.state = State.CONFIRMED
    return bool(n)


def mark_rejected(reservation: Reservation, reason: str) -> bool:
    """awaiting_confirmation (or conflicted) → rejected, and the employee is told."""
    service = _service("reservation_mark_rejected")
    if service is not None:
        before = reservation.state
        service(reservation=reservation, reason=reason)
        reservation.refresh_from_db(fields=["state", "state_reason"])
        changed = before != State.REJECTED and reservation.state == State.REJECTED
    else:
        changed = bool(Reservation.objects.filter(  # TEMPORARY
            Q(pk=reservation.pk), Q(state__in=[State.AWAITING_CONFIRMATION, State.CONFLICTED])
        ).update(state=State.REJECTED, state_reason=reason[:500], updated_at=timezone.now()))
        if changed:
            reservation.state, reservation.state_reason = State.REJECTED, reason[:500]
    if changed:
        notify_rejected(reservation, reason)
    return changed


def mark_conflicted(reservation: Reservation, reason: str) -> bool:
    service = _service("reservation_mark_conflicted")
    if service is not None:
        service(reservation=reservation, reason=reason)
        reservation.refresh_from_db(fields=["state", "state_reason"])
        return reservation.state == State.CONFLICTED
    n = Reservation.objects.filter(pk=reservation.pk, state=State.AWAITING_CONFIRMATION).update(  # TEMPORARY
        state=State.CONFLICTED, state_reason=reason[:500], updated_at=timezone.now()
    )
    if n:
        reservation.state, reservation.state_reason = State.CONFLICTED, reason[:500]
    return bool(n)


def synced(reservation: Reservation) -> None:
    set_sync_state(reservation, SyncState.SYNCED, "")


def failed(reservation: Reservation, error: str) -> None:
    set_sync_state(reservation, SyncState.ERROR, error[:2000])
