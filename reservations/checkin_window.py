"""When a reservation must be checked in: whether its room requires it and its window (pure
reads of the room and the instance properties, used by the check-in service, the release job
and the API's and portal's rendering alike)."""

import datetime as dt
from dataclasses import dataclass

from exchange_auth import properties
from reservations.models import Reservation
from workplace.models import Room


def checkin_required(room: Room) -> bool:
    """The room's own setting, else the instance default."""
    if room.checkin_required is not None:
        return room.checkin_required
    return bool(properties.get(properties.CHECKIN_REQUIRED_DEFAULT))


def window_minutes() -> tuple[dt.timedelta, dt.timedelta]:
    """(before, after): how long before the start the window opens, and after it, closes."""
    return (
        dt.timedelta(minutes=properties.get(properties.CHECKIN_BEFORE_MINUTES)),
        dt.timedelta(minutes=properties.get(properties.CHECKIN_AFTER_MINUTES)),
    )


def checkin_window(reservation: Reservation) -> tuple[dt.datetime, dt.datetime]:
    """When check-in opens and closes for this reservation (aware UTC)."""
    return CheckInRules.now().window(reservation)


@dataclass(frozen=True)
class CheckInRules:
    """The three properties read once, for rendering many rows (a listing: no query per row)."""

    required_default: bool
    before: dt.timedelta
    after: dt.timedelta

    @classmethod
    def now(cls) -> "CheckInRules":
        required, before, after = properties.get_many(
            properties.CHECKIN_REQUIRED_DEFAULT, properties.CHECKIN_BEFORE_MINUTES, properties.CHECKIN_AFTER_MINUTES,
        )
        return cls(bool(required), dt.timedelta(minutes=before), dt.timedelta(minutes=after))

    def required(self, room: Room) -> bool:
        return room.checkin_required if room.checkin_required is not None else self.required_default

    def window(self, reservation: Reservation) -> tuple[dt.datetime, dt.datetime]:
        begun = max(reservation.start, reservation.created_at) if reservation.created_at else reservation.start
        return reservation.start - self.before, begun + self.after
