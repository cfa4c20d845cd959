"""The writes the Exchange sync makes after a push, or when an answer or a response arrives:
the meeting's link, the room's answer, how the last push went, attendees' responses.

Each runs in a plain (non-durable) ``transaction.atomic``: called alone it is its own
transaction, called inside the worker's it joins it. Each is a conditional UPDATE and
reports what changed, so a redelivered task, or two readers of one answer, make one change."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.db import transaction

from reservations.models import (
    ACTIVE_STATES,
    Attendee,
    Reservation,
    ReservationSeries,
    State,
    SyncState,
)
from reservations.services import clock
from reservations.services.validation import REASON_MAX_LENGTH

# The states in which a reservation still waits for the room's answer (the answer changes them).
WAITING_FOR_ANSWER = (State.AWAITING_CONFIRMATION, State.CONFLICTED)


@dataclass(frozen=True)
class ExchangeIds:
    """Where a meeting lives in Exchange (the columns of ``models.ExchangeLink``). Empty values
    mean "not known": writing them keeps what is stored."""

    event_id: str = ""
    change_key: str = ""
    ical_uid: str = ""
    mailbox: str = ""
    organizer: str = ""
    sync_mailbox: str = ""

    def given(self) -> dict[str, str]:
        """The values to write: those not empty."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


_FORGOTTEN = {f.name: "" for f in fields(ExchangeIds)}


def _conditional_update(reservation: Reservation, *, from_states: Iterable[str] | None, **values: Any) -> bool:
    query = Reservation.objects.filter(pk=reservation.pk)
    if from_states is not None:
        query = query.filter(state__in=list(from_states))
    changed = query.update(updated_at=clock.now(), **values) == 1
    if changed:
        for field, value in values.items():
            setattr(reservation, field, value)
    return changed


# --- the room's answer ---------------------------------------------------------------------


@transaction.atomic
def reservation_mark_confirmed(*, reservation: Reservation) -> bool:
    """The room accepted (or the write to a room-organized meeting succeeded)."""
    return _conditional_update(reservation, from_states=WAITING_FOR_ANSWER, state=State.CONFIRMED, state_reason="")


@transaction.atomic
def reservation_mark_rejected(*, reservation: Reservation, reason: str) -> bool:
    """The room declined, or no answer came in time. Frees the room."""
    return _conditional_update(reservation, from_states=ACTIVE_STATES, state=State.REJECTED, state_reason=reason[:REASON_MAX_LENGTH])


@transaction.atomic
def reservation_mark_conflicted(*, reservation: Reservation, reason: str) -> bool:
    """The meeting is missing from the room calendar. The room stays held."""
    return _conditional_update(
        reservation, from_states=(State.AWAITING_CONFIRMATION, State.CONFIRMED), state=State.CONFLICTED, state_reason=reason[:REASON_MAX_LENGTH],
    )


# --- the meeting's link ----------------------------------------------------------------------


@transaction.atomic
def reservation_link_exchange(
    *,
    reservation: Reservation,
    event_id: str,
    change_key: str,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> bool:
    """Store where the meeting lives in Exchange (after a create or update). Empty values keep what is stored."""
    link = ExchangeIds(event_id, change_key, ical_uid, mailbox, organizer, sync_mailbox)
    return _conditional_update(reservation, from_states=None, **link.given())


@transaction.atomic
def reservation_unlink_exchange(*, reservation: Reservation) -> bool:
    """Forget the reservation's meeting (its old meeting was cancelled and a new one is about to
    be created, e.g. a room change with room organizers). ``reservation_link_exchange`` keeps
    stored values for empty arguments, so it can't do this. The origin is kept."""
    return _conditional_update(reservation, from_states=None, **_FORGOTTEN)


@transaction.atomic
def series_link_occurrences(
    *,
    series: ReservationSeries,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> int:
    """Where the series' meeting lives, on every occurrence at once (after the series' create).
    Occurrences keep their own event ids: each gets one when it is changed alone. Empty values
    keep what is stored. Returns the number of occurrences written."""
    values = ExchangeIds(ical_uid=ical_uid, mailbox=mailbox, organizer=organizer, sync_mailbox=sync_mailbox).given()
    if not values:
        return 0
    return Reservation.objects.filter(series=series).update(updated_at=clock.now(), **values)


@transaction.atomic
def series_unlink_instances(*, series: ReservationSeries) -> int:
    """Forget the occurrences' own instance ids: Exchange regenerated the series' occurrences
    (it was rescheduled). The next change of one finds its instance by its slot
    (``original_start``). Returns the number of occurrences written."""
    return (
        Reservation.objects.filter(series=series).exclude(event_id="").exclude(event_id=series.event_id)
        .update(event_id="", change_key="", updated_at=clock.now())
    )


@transaction.atomic
def series_link_exchange(
    *,
    series: ReservationSeries,
    event_id: str,
    change_key: str,
    ical_uid: str = "",
    mailbox: str = "",
    organizer: str = "",
    sync_mailbox: str = "",
) -> bool:
    """The series master's ids in Exchange."""
    values = ExchangeIds(event_id, change_key, ical_uid, mailbox, organizer, sync_mailbox).given()
    changed = ReservationSeries.objects.filter(pk=series.pk).update(**values) == 1
    for field, value in values.items():
        setattr(series, field, value)
    return changed


# --- how the push went, and what attendees said ------------------------------------------------


def _sync_state_values(state: str, error: str) -> dict[str, str]:
    if state not in SyncState.values:
        raise ValueError(f"Unknown sync state {state!r}")
    return {"sync_state": state, "sync_error": "" if state == SyncState.SYNCED else error}


@transaction.atomic
def reservation_set_sync_state(*, reservation: Reservation, state: str, error: str = "") -> bool:
    """Record how the last push went: ``synced`` (error cleared), ``error`` (with the error), ``pending``, ``not_synced``."""
    return _conditional_update(reservation, from_states=None, **_sync_state_values(state, error))


@transaction.atomic
def reservation_set_attendee_responses(*, reservation: Reservation, responses: Mapping[str, str]) -> int:
    """Attendees' answers as Exchange reports them ({email: response}). Returns rows changed."""
    changed = 0
    for email, response in responses.items():
        if response not in Attendee.Response.values:
            response = Attendee.Response.UNKNOWN
        changed += Attendee.objects.filter(reservation=reservation, email__iexact=email).exclude(response=response).update(response=response)
    return changed

