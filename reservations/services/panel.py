"""What a room panel (the tablet at the door, ``workplace.RoomPanel``) does: ``panel_check_in``,
``panel_book_now``, ``panel_extend``, ``panel_end_early``. Each goes through the portal's services (create, update,
cancel) with source ``room_panel`` and the panel's own identity as the actor, so the same
validation, restrictions (``reservations.rules``), conflict checks and outbox (the push to
Exchange) apply. The panel acts only on its own room's meeting happening now.

Who is the requester: the panel's identity (``RoomPanel.user``, no mailbox). A panel is not a
person acting in person, so in every mode the system credential writes (like the REST API) and,
that identity having no mailbox, the provider's organizer account organizes the meeting (in
Strict mode with rooms organizing, the room) — a meeting lives in mailbox ``other`` and can be
extended and ended early from the panel in every mode. Meetings in someone's own calendar
(mailbox ``user``) follow the mode's rules: Strict and Personal refuse to change them from a
panel, Normal allows it."""

import datetime as dt

from django.conf import settings
from django.utils import formats

from reservations.exceptions import InvalidReservation, NotActive, SlotTaken
from reservations.models import ACTIVE_STATES, CheckInChannel, Origin, Reservation, Source
from reservations.services import clock
from reservations.services.cancel import reservation_cancel
from reservations.services.checkin import check_in
from reservations.services.create import reservation_create
from reservations.services.update import reservation_update
from workplace.models import RoomPanel

BOOK_NOW_MINUTES = (15, 30, 60)
EXTEND_MINUTES = (15, 30)
PANEL_SUBJECT = "Ad hoc meeting (room panel)"
END_EARLY_REASON = "Ended early at the room panel."


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _local_time(panel: RoomPanel, moment: dt.datetime) -> str:
    return formats.time_format(moment.astimezone(panel.room.building.tzinfo), "H:i")


def next_start(panel: RoomPanel, after: dt.datetime, *, exclude_id: int | None = None) -> dt.datetime | None:
    """When the room's next active reservation starting at or after ``after`` begins."""
    rows = Reservation.objects.filter(room_id=panel.room_id, state__in=ACTIVE_STATES, start__gte=after)
    if exclude_id is not None:
        rows = rows.exclude(pk=exclude_id)
    return rows.order_by("start").values_list("start", flat=True).first()


def book_now_end(panel: RoomPanel, minutes: int, now: dt.datetime) -> dt.datetime:
    """Where a "book now" for ``minutes`` ends: that long, or up to the next booking."""
    start = _minute(now)
    end = start + dt.timedelta(minutes=minutes)
    upcoming = next_start(panel, start)
    return min(end, upcoming) if upcoming is not None else end


def panel_book_now(*, panel: RoomPanel, minutes: int, now: dt.datetime | None = None) -> Reservation:
    """Book the panel's room from now for ``minutes`` (15, 30 or 60), up to the next booking."""
    if minutes not in BOOK_NOW_MINUTES:
        raise InvalidReservation("Book 15, 30 or 60 minutes.", extra={"minutes": [f"Choose one of {', '.join(map(str, BOOK_NOW_MINUTES))}."]})
    now = now or clock.now()
    start = _minute(now)
    end = book_now_end(panel, minutes, now)
    if end - start < dt.timedelta(minutes=settings.RESERVATION_MIN_DURATION_MINUTES):
        raise SlotTaken(f"The next meeting starts at {_local_time(panel, end)}: too soon to book now.")
    return reservation_create(
        actor=panel.user, requested_for=panel.user, room=panel.room, start=start, end=end,
        subject=PANEL_SUBJECT, source=Source.ROOM_PANEL,
    )


def current_meeting(panel: RoomPanel, reservation_id: int, now: dt.datetime) -> Reservation:
    """The panel's room's meeting ``reservation_id``, which must be happening now."""
    reservation = (
        Reservation.objects.select_related("room__building", "requested_for__profile", "requested_by", "series")
        .filter(pk=reservation_id, room_id=panel.room_id).first()
    )
    if reservation is None:
        raise InvalidReservation("That meeting isn't in this room.", extra={"reservation": ["Not this room's meeting."]})
    if reservation.state not in ACTIVE_STATES or not (reservation.start <= now < reservation.end):
        raise NotActive("That meeting isn't happening now.")
    return reservation


def extend_end(panel: RoomPanel, reservation: Reservation, minutes: int) -> dt.datetime:
    """The end an extension by ``minutes`` reaches: that much later, or up to the next booking."""
    end = reservation.end + dt.timedelta(minutes=minutes)
    upcoming = next_start(panel, reservation.end, exclude_id=reservation.pk)
    return min(end, upcoming) if upcoming is not None else end


def panel_extend(*, panel: RoomPanel, reservation_id: int, minutes: int, now: dt.datetime | None = None) -> Reservation:
    """Make the meeting happening now last ``minutes`` (15 or 30) longer, up to the next booking."""
    if minutes not in EXTEND_MINUTES:
        raise InvalidReservation("Extend by 15 or 30 minutes.", extra={"minutes": [f"Choose one of {', '.join(map(str, EXTEND_MINUTES))}."]})
    now = now or clock.now()
    reservation = current_meeting(panel, reservation_id, now)
    end = extend_end(panel, reservation, minutes)
    if end <= reservation.end:
        raise SlotTaken(f"The next meeting starts at {_local_time(panel, reservation.end)}: this one can't be extended.")
    return reservation_update(actor=panel.user, reservation=reservation, end=end, source=Source.ROOM_PANEL)


def end_early_end(reservation: Reservation, now: dt.datetime) -> dt.datetime:
    """Where "end early" ends the meeting: at the next minute (a meeting lasts at least the minimum)."""
    end = _minute(now) + dt.timedelta(minutes=1)
    return max(end, reservation.start + dt.timedelta(minutes=settings.RESERVATION_MIN_DURATION_MINUTES))


def panel_end_early(*, panel: RoomPanel, reservation_id: int, now: dt.datetime | None = None) -> Reservation:
    """End the meeting happening now and free the rest of its slot, in Exchange too (SPEC §3):
    a meeting the product made ends now (its end is moved, for the organizer and everyone
    invited); one made in Outlook can't be changed by the product, so the room declines it
    instead (the reservation is cancelled; the organizer is told; the meeting stays on
    people's calendars)."""
    now = now or clock.now()
    reservation = current_meeting(panel, reservation_id, now)
    if reservation.origin == Origin.EXCHANGE:
        [cancelled] = reservation_cancel(actor=panel.user, reservation=reservation, source=Source.ROOM_PANEL, reason=END_EARLY_REASON) or [reservation]
        return cancelled
    end = end_early_end(reservation, now)
    if end >= reservation.end:
        raise NotActive("This meeting ends within the minute anyway.")
    return reservation_update(actor=panel.user, reservation=reservation, end=end, source=Source.ROOM_PANEL)


def panel_check_in(*, panel: RoomPanel, reservation_id: int, now: dt.datetime | None = None) -> Reservation:
    """Check in the room's meeting ``reservation_id`` at the door (``check_in`` decides the window
    and who may; a refusal is its ``CheckInRefused``)."""
    reservation = Reservation.objects.select_related("room__building").filter(pk=reservation_id, room_id=panel.room_id).first()
    if reservation is None:
        raise InvalidReservation("That meeting isn't in this room.", extra={"reservation": ["Not this room's meeting."]})
    return check_in(reservation, actor=None, channel=CheckInChannel.ROOM_PANEL, now=now)
