"""Cancelling: one reservation, the rest of its series, or a multi-select — all or nothing.

Cancelling a cancelled reservation is a no-op, so a retry is harmless. A synced room's
cancel records a delete event; "also cancel the meeting" unticked keeps the meeting on
people's calendars and only releases the room (``rules.offer_cancel_meeting_choice``)."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from reservations import rules
from reservations.exceptions import InvalidReservation, NotActive
from reservations.models import ACTIVE_STATES, Reservation, Source, State
from reservations.services import clock
from reservations.services.sync_events import channel, record_cancels
from reservations.services.validation import REASON_MAX_LENGTH, check_scope, ensure_may_manage


def reservation_cancel(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    scope: str = "occurrence",
    source: str = Source.PORTAL,
    subsource: str = "",
    reason: str = "",
    from_exchange: bool = False,
    cancel_meeting: bool = True,
) -> list[Reservation]:
    """Cancel one reservation, or with ``scope="series"`` every active occurrence
    of its series that has not finished. Cancelling a cancelled reservation is a
    no-op (safe to retry). Returns the rows now cancelled.

    ``cancel_meeting=False`` ("also cancel the meeting on people's calendars" unticked):
    the meeting stays on people's calendars and only the room is released. It applies
    where the product can choose (``rules.offer_cancel_meeting_choice``): a meeting the
    room organizes is cancelled with the reservation, and one created in Outlook is
    declined by the room, whatever is passed."""
    check_scope(scope, reservation)
    with transaction.atomic(durable=True):
        return _cancel_rows(
            actor=actor, ids=[reservation.pk], series_id=reservation.series_id if scope == "series" else None,
            source=source, subsource=subsource, reason=reason, from_exchange=from_exchange, cancel_meeting=cancel_meeting,
        )


def reservation_cancel_many(
    *,
    actor: AbstractBaseUser | None,
    reservations: Iterable[Reservation],
    source: str = Source.PORTAL,
    subsource: str = "",
    reason: str = "",
    from_exchange: bool = False,
    cancel_meeting: bool = True,
) -> list[Reservation]:
    """Multi-select cancel: all of them or, when any one is refused, none.
    ``cancel_meeting`` as for ``reservation_cancel``."""
    ids = sorted({r.pk for r in reservations})
    if not ids:
        raise InvalidReservation("Choose at least one reservation to cancel.", extra={"ids": ["This list may not be empty."]})
    with transaction.atomic(durable=True):
        return _cancel_rows(
            actor=actor, ids=ids, series_id=None, source=source, subsource=subsource, reason=reason, from_exchange=from_exchange,
            cancel_meeting=cancel_meeting,
        )


def _cancel_rows(*, actor, ids, series_id, source, subsource, reason, from_exchange, cancel_meeting) -> list[Reservation]:
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidReservation(f"The reason is limited to {REASON_MAX_LENGTH} characters.", extra={"reason": ["Too long."]})
    now = clock.now()
    locked = Reservation.objects.select_for_update(of=("self",)).select_related("room__building", "series").order_by("start", "id")
    rows = list(locked.filter(pk__in=ids))
    if len(rows) != len(ids):
        raise InvalidReservation("Some of these reservations don't exist.", extra={"ids": [str(i) for i in set(ids) - {r.pk for r in rows}]})
    for row in rows:
        ensure_may_manage(actor, row)
    if series_id is not None:
        rows = list(locked.filter(series_id=series_id, state__in=ACTIVE_STATES, end__gt=now)) or [r for r in rows if r.state in ACTIVE_STATES]
    to_cancel = []
    for row in rows:
        if row.state == State.CANCELLED:
            continue
        if row.state not in ACTIVE_STATES:
            raise NotActive(f"“{row.subject}” is {row.get_state_display()}; it can't be cancelled.")
        if actor is not None and not from_exchange and row.end <= now:
            raise NotActive(f"“{row.subject}” is over; it can't be cancelled.")
        if actor is not None and not from_exchange:
            rules.check_cancel(actor=actor, reservation=row, source=source, subsource=subsource)
        to_cancel.append(row)
    if not to_cancel:
        return []
    Reservation.objects.filter(pk__in=[r.pk for r in to_cancel]).update(
        state=State.CANCELLED, cancelled_at=now, state_reason=reason[:REASON_MAX_LENGTH], updated_at=now,
    )
    for row in to_cancel:
        row.state, row.cancelled_at, row.state_reason = State.CANCELLED, now, reason
    if not from_exchange:
        record_cancels(
            rows=to_cancel, series_wide=series_id is not None, reason=reason, cancel_meeting=cancel_meeting,
            via=channel(actor, source, subsource),
        )
    return to_cancel
