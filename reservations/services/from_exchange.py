"""Inbound sync's services: a meeting seen in a room's or organizer's Exchange calendar
becomes, changes or cancels a reservation.

They are the general services with the inbound channel filled in: no actor, source
``outlook``, ``from_exchange=True`` — the meeting exists already, so the time rules that
guard a new booking don't apply, the Graph ids are stored and no outbox event is written
(nothing echoes back). The room still can't be double-booked (``SlotTaken``)."""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from reservations.models import Kind, Origin, Reservation, ReservationSeries, Source
from reservations.recurrence import Recurrence
from reservations.services.cancel import reservation_cancel
from reservations.services.create import reservation_create
from reservations.services.exchange import ExchangeIds
from reservations.services.update import reservation_update
from reservations.services.validation import REASON_MAX_LENGTH, UNSET
from workplace.models import Room


def reservation_create_from_exchange(
    *,
    room: Room,
    start: dt.datetime,
    end: dt.datetime,
    subject: str,
    requested_for: AbstractBaseUser,
    exchange: ExchangeIds,
    attendees: Iterable[Mapping[str, Any]] = (),
    kind: str = Kind.STANDARD,
    recurrence: Recurrence | None = None,
    series: ReservationSeries | None = None,
    original_start: dt.datetime | None = None,
) -> Reservation:
    """An Outlook meeting that invited the room, recorded as a confirmed, synced reservation;
    with ``series``, one occurrence of an Outlook series (``series_create_from_exchange``)."""
    return reservation_create(
        actor=None, room=room, start=start, end=end, subject=subject, requested_for=requested_for, attendees=attendees,
        kind=kind, source=Source.OUTLOOK, recurrence=recurrence, from_exchange=True, exchange=exchange,
        in_series=series, original_start=original_start,
    )


SERIES_PATTERN_FIELDS = ("subject", "frequency", "interval", "weekdays", "index", "until", "count", "first_start", "first_end", "timezone")


def series_create_from_exchange(
    *, room: Room, requested_for: AbstractBaseUser, exchange: ExchangeIds, pattern: Mapping[str, Any],
) -> ReservationSeries:
    """A series made in Outlook (its master on the room's calendar): the product's series, with
    no occurrence yet; each occurrence joins it as Exchange reports it (the room answers each
    one: ``reservation_create_from_exchange(series=...)``). ``pattern``: the
    ``SERIES_PATTERN_FIELDS``. Created once per room and iCalUId (a racing pull finds the first)."""
    with transaction.atomic():
        found = ReservationSeries.objects.select_for_update().filter(room=room, ical_uid=exchange.ical_uid).first()
        if found is not None:
            return found
        return ReservationSeries.objects.create(
            room=room, requested_by=requested_for, requested_for=requested_for, origin=Origin.EXCHANGE,
            **{key: pattern[key] for key in SERIES_PATTERN_FIELDS}, **exchange.given(),
        )


def series_update_from_exchange(*, series: ReservationSeries, pattern: Mapping[str, Any]) -> bool:
    """The series changed in Outlook (the whole series: its pattern, first slot or subject): the
    product's series follows; its occurrences follow one by one as Exchange reports them.
    True when something changed."""
    changes = {key: pattern[key] for key in SERIES_PATTERN_FIELDS if key in pattern and getattr(series, key) != pattern[key]}
    if not changes:
        return False
    ReservationSeries.objects.filter(pk=series.pk).update(**changes)
    for key, value in changes.items():
        setattr(series, key, value)
    return True


def reservation_update_from_exchange(
    *,
    reservation: Reservation,
    exchange: ExchangeIds | None = None,
    subject: str = UNSET,
    start: dt.datetime = UNSET,
    end: dt.datetime = UNSET,
    attendees: Iterable[Mapping[str, Any]] = UNSET,
) -> Reservation:
    """The meeting changed in Outlook: the reservation follows (only the arguments given)."""
    return reservation_update(
        actor=None, reservation=reservation, from_exchange=True, exchange=exchange, subject=subject, start=start, end=end,
        attendees=attendees,
    )


def reservation_cancel_from_exchange(*, reservation: Reservation, reason: str) -> list[Reservation]:
    """The meeting is gone from Exchange (or can't be kept). The reason is cut to fit: it comes
    from Exchange, and no one could be told it is too long."""
    return reservation_cancel(
        actor=None, reservation=reservation, reason=reason[:REASON_MAX_LENGTH], from_exchange=True, source=Source.OUTLOOK,
    )
