"""The writes the Exchange sync makes after a push, or when an answer or a response arrives:
the meeting's link, the room's answer, how the last push went, attendees' responses — and
``reservation_record_push`` / ``series_record_push``, which apply one push's result at once.

Each runs in a plain (non-durable) ``transaction.atomic``: called alone it is its own
transaction, called inside the worker's it joins it. Each is a conditional UPDATE and
reports what changed, so a redelivered task, or two readers of one answer, make one change."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.db import transaction

from reservations import fastpaths
from reservations.models import (
    ACTIVE_STATES,
    ApprovalState,
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
    online_meeting_url: str = ""  # Graph's onlineMeeting.joinUrl of a Teams meeting

    def given(self) -> dict[str, str]:
        """The values to write: those not empty."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


_FORGOTTEN = {f.name: "" for f in fields(ExchangeIds)}


def _conditional_update(reservation: Reservation, *, from_states: Iterable[str] | None, **values: Any) -> bool:
    # One statement written once per set of columns (fastpaths.update_row): every push and
    # every answer read records through here.
    among = {"state": list(from_states)} if from_states is not None else None
    changed = fastpaths.update_row(Reservation, reservation.pk, {"updated_at": clock.now(), **values}, among=among) == 1
    if changed:
        for field, value in values.items():
            setattr(reservation, field, value)
    return changed


# --- the room's answer ---------------------------------------------------------------------


@transaction.atomic
def reservation_mark_confirmed(*, reservation: Reservation) -> bool:
    """The room accepted (or the write to a room-organized meeting succeeded). An approval
    the room's delegate was asked for is ``accepted`` with it."""
    changed = _conditional_update(reservation, from_states=WAITING_FOR_ANSWER, state=State.CONFIRMED, state_reason="")
    if changed:
        _settle_approval(reservation, ApprovalState.ACCEPTED)
    return changed


@transaction.atomic
def reservation_mark_rejected(*, reservation: Reservation, reason: str) -> bool:
    """The room declined, or no answer came in time. Frees the room. An approval still
    pending ends ``declined`` with it (it was not granted)."""
    changed = _conditional_update(reservation, from_states=ACTIVE_STATES, state=State.REJECTED, state_reason=reason[:REASON_MAX_LENGTH])
    if changed:
        _settle_approval(reservation, ApprovalState.DECLINED)
    return changed


def _settle_approval(reservation: Reservation, outcome: str) -> None:
    """awaiting_approval → ``outcome`` (accepted | declined); any other approval state stays."""
    if fastpaths.update_row(Reservation, reservation.pk, {"approval_state": outcome}, among={"approval_state": [ApprovalState.AWAITING_APPROVAL]}):
        reservation.approval_state = outcome


@transaction.atomic
def reservation_mark_awaiting_approval(*, reservation: Reservation) -> bool:
    """The room answered *tentative*: its bookings are approved by a delegate (Exchange's
    resource delegates), who has the request now. The reservation still waits (it holds the
    room) and its approval state becomes ``awaiting_approval``, from now on measured against
    ``approval_time_limit`` instead of ``exchange_callback_time_limit``. False when nothing changed."""
    query = Reservation.objects.filter(pk=reservation.pk, state__in=list(WAITING_FOR_ANSWER), approval_state=ApprovalState.NOT_REQUIRED)
    now = clock.now()
    if not query.update(approval_state=ApprovalState.AWAITING_APPROVAL, approval_requested_at=now, updated_at=now):
        return False
    reservation.approval_state, reservation.approval_requested_at = ApprovalState.AWAITING_APPROVAL, now
    return True


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
    return _link_series(series, ExchangeIds(event_id, change_key, ical_uid, mailbox, organizer, sync_mailbox).given())


def _link_series(series: ReservationSeries, values: dict[str, str]) -> bool:
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


# --- one push's result at once -------------------------------------------------------------------

ANSWERS = ("", "accepted", "declined", "tentative")


@dataclass(frozen=True)
class PushRecorded:
    """What ``reservation_record_push`` changed, for the caller to act on after commit
    (a rejected reservation's employee is told)."""

    confirmed: bool = False
    rejected: bool = False


def _answer_values(answer: str, reason: str) -> dict[str, str]:
    """The state change the room's answer makes to a reservation waiting for it."""
    if answer not in ANSWERS:
        raise ValueError(f"Unknown answer {answer!r}: one of {ANSWERS}")
    if answer == "accepted":
        return {"state": State.CONFIRMED, "state_reason": ""}
    if answer == "declined":
        if not reason:
            raise ValueError("A declined reservation needs the reason the employee is told")
        return {"state": State.REJECTED, "state_reason": reason[:REASON_MAX_LENGTH]}
    if answer == "tentative":  # a delegate approves the room's bookings: still waiting, for them
        return {"approval_state": ApprovalState.AWAITING_APPROVAL, "approval_requested_at": clock.now()}
    return {}


@transaction.atomic
def reservation_record_push(
    *,
    reservation: Reservation,
    link: ExchangeIds | None = None,
    answer: str = "",
    reason: str = "",
    sync_state: str | None = None,
    sync_error: str = "",
) -> PushRecorded:
    """Apply one push's result to ``reservation`` in one transaction: one UPDATE, or two when
    the room's answer no longer applies:

    1. ``link``: where the meeting lives (empty values keep what is stored);
    2. ``answer``, the room's (SPEC §4 Confirmation), changes only a reservation still waiting
       for it (awaiting confirmation, or conflicted): "accepted" → confirmed, "declined" →
       rejected with ``reason``; "" changes no state. The wait is the UPDATE's condition, so
       two readers of one answer make one change; when it fails (already answered, cancelled)
       a second UPDATE writes the rest alone and ``reservation.state`` is left as it was read;
    3. ``sync_state``/``sync_error`` as ``reservation_set_sync_state`` (None: unchanged).

    Returns which transition happened."""
    transition = _answer_values(answer, reason)
    values = {**(link.given() if link else {}), **(_sync_state_values(sync_state, sync_error) if sync_state is not None else {})}
    if transition and _conditional_update(reservation, from_states=WAITING_FOR_ANSWER, **values, **transition):
        return PushRecorded(confirmed=answer == "accepted", rejected=answer == "declined")
    if values:
        _conditional_update(reservation, from_states=None, **values)
    return PushRecorded()


@dataclass(frozen=True)
class SeriesPushRecorded:
    """The occurrences ``series_record_push`` confirmed or rejected."""

    confirmed_ids: tuple[int, ...] = ()
    rejected_ids: tuple[int, ...] = ()


@transaction.atomic
def series_record_push(*, series: ReservationSeries, link: ExchangeIds, answer: str = "", reason: str = "") -> SeriesPushRecorded:
    """Apply a series create's result in one transaction (four statements at most):

    1. the master's ids on the series (as ``series_link_exchange``);
    2. the meeting's home (iCalUId, mailbox, organizer, sync mailbox) on every occurrence, which
       keep their own event ids (as ``series_link_occurrences``);
    3. the room's answer on each occurrence waiting for it, as ``reservation_record_push``.

    The waiting occurrences are locked and read first, so the ids returned are those changed;
    the caller tells each rejected one's employee after commit."""
    transition = _answer_values(answer, reason)
    if link.given():
        _link_series(series, link.given())
    home = ExchangeIds(ical_uid=link.ical_uid, mailbox=link.mailbox, organizer=link.organizer, sync_mailbox=link.sync_mailbox,
                       online_meeting_url=link.online_meeting_url).given()  # a series' Teams link is every occurrence's
    waiting: list[int] = []
    if transition:
        waiting = list(
            Reservation.objects.select_for_update().filter(series=series, state__in=WAITING_FOR_ANSWER).order_by("pk").values_list("pk", flat=True)
        )
    now = clock.now()
    if home:
        Reservation.objects.filter(series=series).update(updated_at=now, **home)
    if waiting:
        Reservation.objects.filter(pk__in=waiting).update(updated_at=now, **transition)
    ids = tuple(waiting)
    return SeriesPushRecorded(confirmed_ids=ids if answer == "accepted" else (), rejected_ids=ids if answer == "declined" else ())
