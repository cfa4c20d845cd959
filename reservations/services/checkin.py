"""Check-in: a reservation of a room that requires it is checked in inside its window, or the
release job (``release``) gives the room back.

The window opens ``sn_wsd_rsv.checkin_before_minutes`` before the start and closes
``sn_wsd_rsv.checkin_after_minutes`` after it (after the booking's creation, for a booking made
once its meeting had begun, so it isn't released at once). Whether a room requires check-in is
its own ``checkin_required``, else the instance default ``sn_wsd_rsv.checkin_required_default``.

Who may check in: the requested-for employee, the requester, an attendee (by address), and at
a room panel anyone when ``sn_wsd_rsv.checkin_anyone_at_panel`` is on (the panel passes no
actor). The check-in locks the row (SELECT … FOR UPDATE), like the release does: whichever of
the two gets the row first wins, and the other sees what it did (a released reservation can't
be checked in; a checked-in one isn't released)."""

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import formats, timezone

from exchange_auth import properties
from reservations.checkin_window import checkin_required, checkin_window, window_minutes
from reservations.exceptions import CheckInRefused
from reservations.models import ACTIVE_STATES, Attendee, CheckInChannel, Reservation, State
from reservations.services import clock

__all__ = ["check_in", "checkin_required", "checkin_window", "may_check_in", "window_minutes"]


def is_attendee(reservation: Reservation, user: AbstractBaseUser) -> bool:
    email = (getattr(user, "email", "") or "").strip()
    if not email:
        return False
    return reservation.attendees.filter(email__iexact=email).exclude(type=Attendee.Type.RESOURCE).exists()


def may_check_in(reservation: Reservation, user: AbstractBaseUser | None, channel: str) -> bool:
    """Whether ``user`` (None: someone at the room's panel) may check this reservation in."""
    if channel == CheckInChannel.ROOM_PANEL and properties.get(properties.CHECKIN_ANYONE_AT_PANEL):
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.pk in (reservation.requested_for_id, reservation.requested_by_id):
        return True
    return is_attendee(reservation, user)


def _when(value: dt.datetime, reservation: Reservation) -> str:
    local = timezone.localtime(value, reservation.room.building.tzinfo)
    return formats.time_format(local, "H:i")


def check_in(reservation: Reservation, *, actor: AbstractBaseUser | None, channel: str, now: dt.datetime | None = None) -> Reservation:
    """Check ``reservation`` in through ``channel`` (``CheckInChannel``) and return it fresh.

    Checking in twice is a no-op (the first time and channel stay). Raises ``CheckInRefused``
    outside the window, for someone who may not, or once the reservation was released or is
    no longer active; nothing is written then."""
    if channel not in CheckInChannel.values:
        raise CheckInRefused(
            "Unknown check-in channel.", code="invalid", status_code=400, extra={"channel": [f"Choose one of {', '.join(CheckInChannel.values)}."]},
        )
    now = now or clock.now()
    with transaction.atomic(durable=True):
        row = Reservation.objects.select_for_update(of=("self",)).select_related("room__building").get(pk=reservation.pk)
        if not may_check_in(row, actor, channel):
            raise CheckInRefused("Only the people of this meeting can check it in.", code="not_permitted", status_code=403)
        if row.checked_in_at is not None:
            return row
        if row.state == State.RELEASED:
            raise CheckInRefused(
                f"Too late: “{row.subject}” was released at {_when(row.released_at or now, row)} because nobody checked in, "
                "and the room is free for others. Book it again if it is still free.",
                code="released",
            )
        if row.state not in ACTIVE_STATES:
            raise CheckInRefused(f"“{row.subject}” is {row.get_state_display().lower()}; it can't be checked in.", code="not_active")
        opens, closes = checkin_window(row)
        if not checkin_required(row.room):
            closes = row.end  # nothing is released: check-in is only recorded, until the end
        closes = min(closes, row.end)
        extra = {"opens": opens.isoformat(), "closes": closes.isoformat()}
        if now < opens:
            raise CheckInRefused(f"Check-in opens at {_when(opens, row)}.", code="outside_window", extra=extra)
        if now >= closes:
            raise CheckInRefused(f"Check-in closed at {_when(closes, row)}.", code="outside_window", extra=extra)
        Reservation.objects.filter(pk=row.pk).update(
            checked_in_at=now, checked_in_channel=channel, checked_in_by=actor if channel != CheckInChannel.ROOM_PANEL else None,
            updated_at=now,
        )
        row.checked_in_at, row.checked_in_channel = now, channel
        row.checked_in_by = actor if channel != CheckInChannel.ROOM_PANEL else None
    return row
