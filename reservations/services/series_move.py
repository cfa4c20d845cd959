"""A series-wide time change moves the series itself, not only its occurrences.

``plan_series_move`` works out the new pattern (a series not begun is rescheduled whole; a
begun one is split as Outlook's "this and following" does) and ``move_series`` writes it with
its outbox events, in ``reservation_update``'s transaction, after the occurrences are written."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from reservations.models import Reservation, ReservationSeries, State, SyncEvent, SyncState
from reservations.outbox import SyncEventDetails, sync_event_record
from reservations.recurrence import add_months, shift_weekdays
from reservations.services.sync_events import record_updates
from workplace.models import Room


@dataclass
class SeriesMove:
    """What a series-wide time change does to the series itself (see ``plan_series_move``)."""

    series: ReservationSeries  # locked
    split: bool  # the series has begun: the moved occurrences become a new series
    # Each occurrence the change carries along → its new slot in the pattern (UTC): the moved
    # ones, and those cancelled (or rejected) alone in the moved range.
    slots: dict[int, dt.datetime]
    carried: list[Reservation]  # the carried-along occurrences the change doesn't move (not active)
    first_start: dt.datetime
    first_end: dt.datetime
    weekdays: list[int]
    until: dt.date | None
    count: int | None
    old_until: dt.date | None = None  # split: the old series' last day


def _shifted(moment: dt.datetime, shift: dt.timedelta, tz) -> dt.datetime:
    """``moment`` moved by a local wall-clock ``shift`` (as the occurrences are moved)."""
    local = moment.astimezone(tz).replace(tzinfo=None) + shift
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def _slot_of(row: Reservation) -> dt.datetime:
    return row.original_start or row.start


def _monthly_slots(anchor_old: dt.datetime, anchor_new: dt.datetime, rows, tz) -> dict[int, dt.datetime]:
    """Each row's slot in the moved monthly pattern: as many months after ``anchor_new`` as its
    old slot was after ``anchor_old``, on ``anchor_new``'s day of the month (the last day of a
    shorter month: ``recurrence.add_months``), at ``anchor_new``'s local time."""
    old, new = anchor_old.astimezone(tz), anchor_new.astimezone(tz).replace(tzinfo=None)
    slots = {}
    for row in rows:
        slot = _slot_of(row).astimezone(tz)
        months = (slot.year - old.year) * 12 + slot.month - old.month
        local = dt.datetime.combine(add_months(new.date(), months), new.time())
        slots[row.pk] = local.replace(tzinfo=tz).astimezone(dt.UTC)
    return slots


def plan_series_move(*, series_id: int, moving: list[Reservation], shift: dt.timedelta, duration: dt.timedelta, tz, now: dt.datetime) -> SeriesMove:
    """The series' new pattern when every coming occurrence moves by ``shift`` (local).

    1. Not begun (no occurrence of it has finished): the whole series moves. Its first
       slot, its weekdays (by the days the first slot moved) and its end date move with
       it; each occurrence's pattern slot (``original_start``) moves too.
    2. Begun: Outlook's "this and following". The old series keeps what is over and ends
       the day before the first moved occurrence; the moved ones (and those cancelled alone
       after it) form a new series that starts at the first one's new slot and ends on the
       last moved one's new day.
    Occurrences that deviate from the new pattern are re-applied by ``move_series``."""
    series = ReservationSeries.objects.select_for_update().get(pk=series_id)
    others = list(
        Reservation.objects.select_for_update(of=("self",)).filter(series=series).exclude(pk__in=[row.pk for row in moving]).order_by("start", "id")
    )
    split_at = min(_slot_of(row) for row in moving)
    split = any(row.end <= now for row in others)
    carried = [row for row in others if row.end > now and (not split or _slot_of(row) >= split_at)]
    slots = {row.pk: _shifted(_slot_of(row), shift, tz) for row in [*moving, *carried]}
    old_until = None
    if split:
        first_start = slots[min(moving, key=_slot_of).pk]
        days = (first_start.astimezone(tz).date() - split_at.astimezone(tz).date()).days
        until = max(slots[row.pk] for row in moving).astimezone(tz).date()
        count = None
        old_until = split_at.astimezone(tz).date() - dt.timedelta(days=1)
    else:
        first_start = _shifted(series.first_start, shift, tz)
        days = (first_start.astimezone(tz).date() - series.first_start.astimezone(tz).date()).days
        until = series.until + dt.timedelta(days=days) if series.until else None
        count = series.count
    if series.frequency == "monthly":
        # Outlook's rule: the pattern's day becomes the new first one's, and each occurrence falls
        # on that day of its month (or the last day of a month too short for it), not simply
        # shifted (a day-31 series' February 28 moved back a day is February 28, not 27).
        slots = _monthly_slots(split_at if split else series.first_start, first_start, [*moving, *carried], tz)
        last = max(slots[row.pk] for row in moving).astimezone(tz).date()
        if split:
            until = last
        elif until is not None:
            until = max(until, last)
    return SeriesMove(
        series=series, split=split, slots=slots, carried=carried, first_start=first_start,
        first_end=_shifted(first_start, duration, tz), weekdays=shift_weekdays(series.weekdays, days) if series.weekdays else [],
        until=until, count=count, old_until=old_until,
    )


def move_series(
    *, move: SeriesMove, moving: list[Reservation], plans, room: Room, duration: dt.timedelta, tz, via: dict[str, Any],
    subject: str | None, requested_for: AbstractBaseUser | None,
) -> None:
    """Write the series side of a series-wide time change (the occurrences are written
    already) and its outbox events, in the caller's transaction:

    1. the pattern: the series rescheduled, or (split) the old series ended and a new one
       holding the moved occurrences;
    2. each carried occurrence's new pattern slot (``original_start``: Exchange finds an
       occurrence by it), and on a split its new series, without the old meeting's ids;
    3. the events: the series update (the push reschedules the master), or the old series'
       end then the new series' create (which waits for it: ``after_series_id``);
    4. an occurrence event for each occurrence that deviates from the new pattern (moved or
       retitled alone, cancelled alone), queued after the series' event: Exchange
       regenerates a rescheduled series' occurrences, so they are applied again."""
    series = move.series
    target_subject = subject if subject is not None else series.subject
    carried_rows = [*moving, *move.carried]
    # 1.
    if move.split:
        new_series = ReservationSeries.objects.create(
            room=room, subject=target_subject, frequency=series.frequency, interval=series.interval, weekdays=move.weekdays, index=series.index,
            until=move.until, count=None, first_start=move.first_start, first_end=move.first_end, timezone=series.timezone,
            requested_by=series.requested_by, requested_for=requested_for or series.requested_for,
        )
        series.until, series.count = move.old_until, None
        series.save(update_fields=["until", "count"])
    else:
        new_series = series
        series.first_start, series.first_end, series.weekdays = move.first_start, move.first_end, move.weekdays
        series.until, series.count, series.subject, series.room = move.until, move.count, target_subject, room
        series.save(update_fields=["first_start", "first_end", "weekdays", "until", "count", "subject", "room"])
    # 2.
    fields = ["original_start"]
    for row in carried_rows:
        row.original_start = move.slots[row.pk]
        if move.split:
            row.series = new_series
            row.event_id = row.change_key = row.ical_uid = ""
    if move.split:
        fields += ["series", "event_id", "change_key", "ical_uid"]
    Reservation.objects.bulk_update(carried_rows, fields)
    # 3.
    if move.split:
        synced = room.is_synced
        if series.event_id:
            sync_event_record(type="update", series=series, details=SyncEventDetails(
                scope="series", action="end", ends_on=move.old_until, moved_reservation_ids=tuple(row.pk for row in carried_rows), **via,
            ))
        Reservation.objects.filter(pk__in=[row.pk for row in moving]).update(sync_state=SyncState.PENDING if synced else SyncState.NOT_SYNCED)
        if synced:
            sync_event_record(type="create", series=new_series, details=SyncEventDetails(
                scope="series", reservation_ids=tuple(row.pk for row in moving), after_series_id=series.pk, **via,
            ))
    else:
        synced = record_updates(plans=plans, scope="series", series=series, via=via, reschedules=True) is not None
    # 4.
    if synced and room.is_synced:
        _reapply_deviations(move=move, series=new_series, moving=moving, subject=target_subject, duration=duration, tz=tz, via=via)


def _reapply_deviations(*, move: SeriesMove, series: ReservationSeries, moving, subject: str, duration, tz, via) -> None:
    """Step 4 of ``move_series``."""
    for row in moving:
        slot = move.slots[row.pk]
        if (row.start, row.end) != (slot, _shifted(slot, duration, tz)) or row.subject != subject:
            sync_event_record(type="update", reservation=row, series=series, details=SyncEventDetails(
                scope="occurrence", fields=("end", "start", "subject"), reapply=True, **via,
            ))
    cancelled = [
        row for row in move.carried
        if row.state == State.CANCELLED and (move.until is None or move.slots[row.pk].astimezone(tz).date() <= move.until)
    ]
    if not cancelled:
        return
    # How each was cancelled: the meeting cancelled, or kept with the room released.
    earlier = {}
    for reservation_id, details in SyncEvent.objects.filter(reservation__in=cancelled, type=SyncEvent.Type.DELETE).order_by("pk").values_list("reservation_id", "details"):
        earlier[reservation_id] = SyncEventDetails.of(details)
    for row in cancelled:
        how = earlier.get(row.pk, SyncEventDetails())
        sync_event_record(type="delete", reservation=row, series=series, details=SyncEventDetails(
            scope="occurrence", reason=row.state_reason, reapply=True, cancel_meeting=how.cancel_meeting is not False, **via,
        ))
