"""Which outbox events (``reservations.outbox``) a person's change records, for the sync
worker to push to Exchange after commit. Changes that come from Exchange record none, so
nothing echoes back.

A series-wide change is one event on the series (listing the rows it covers); a change of
one row is an event on that row."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from reservations.models import ApprovalState, Reservation, ReservationSeries, SyncEvent, SyncState
from reservations.outbox import SyncEventDetails, sync_event_record, sync_event_record_many
from workplace.models import Room


def channel(actor: AbstractBaseUser | None, source: str, subsource: str) -> dict[str, Any]:
    """Who acted and through which channel, as ``SyncEventDetails`` fields: Exchange is written
    with the credential of *this* change (SPEC §3), not of the reservation's original booking."""
    return {"actor_id": actor.pk if actor is not None else None, "source": source, "subsource": subsource, "system": actor is None}


def needs_sync(row: Reservation, previous_room: Room | None = None) -> bool:
    if row.approval_state == ApprovalState.AWAITING_APPROVAL and row.room.needs_approval and not row.event_id:
        return False  # nothing was written yet: the meeting is made when an approver approves (``approvals``)
    return row.room.is_synced or bool(row.event_id) or bool(previous_room and previous_room.is_synced)


def record_create(*, rows: list[Reservation], series: ReservationSeries | None, via: dict[str, Any]) -> None:
    details = SyncEventDetails(scope="series" if series else "occurrence", reservation_ids=tuple(row.pk for row in rows), **via)
    sync_event_record(type="create", reservation=None if series else rows[0], series=series, details=details)


def record_updates(*, plans, scope: str, series: ReservationSeries | None, via: dict[str, Any], reschedules: bool = False) -> SyncEvent | None:
    """Outbox events for the rows changed (``plans``: (row, new values, {field: (old, new)})); with
    ``scope="series"`` one event on the series, which is returned."""
    def details_of(changes: dict, **more) -> SyncEventDetails:
        previous_room = changes["room"][0].pk if "room" in changes else None
        return SyncEventDetails(scope=scope, fields=tuple(sorted(changes)), previous_room_id=previous_room, **via, **more)

    to_sync = [(row, changes) for row, _values, changes in plans if needs_sync(row, changes.get("room", (None,))[0])]
    if not to_sync:
        return None
    Reservation.objects.filter(pk__in=[row.pk for row, _ in to_sync]).exclude(sync_state=SyncState.PENDING).update(sync_state=SyncState.PENDING)
    for row, _ in to_sync:
        row.sync_state = SyncState.PENDING
    if scope == "series":
        details = details_of(to_sync[0][1], reservation_ids=tuple(row.pk for row, _ in to_sync), reschedules=reschedules)
        return sync_event_record(type="update", series=series, details=details)
    for row, changes in to_sync:
        previous_room = changes.get("room", (None,))[0]
        # A row that never reached Exchange and now lands in a synced room is a new meeting.
        new_meeting = previous_room is not None and not previous_room.is_synced and not row.event_id and row.room.is_synced
        sync_event_record(type="create" if new_meeting else "update", reservation=row, series=row.series, details=details_of(changes))
    return None


def record_cancels(*, rows: list[Reservation], series_wide: bool, reason: str, cancel_meeting: bool, via: dict[str, Any]) -> None:
    """Delete events for the cancelled rows that Exchange knows of (or would): one on the series
    for a series-wide cancel, else one per row."""
    synced = [row for row in rows if needs_sync(row)]
    if series_wide and synced:
        Reservation.objects.filter(pk__in=[r.pk for r in synced]).update(sync_state=SyncState.PENDING)
        details = SyncEventDetails(
            scope="series", reason=reason, reservation_ids=tuple(r.pk for r in synced), cancel_meeting=bool(cancel_meeting), **via,
        )
        sync_event_record(type="delete", series=synced[0].series, details=details)
        return
    for row in synced:
        details = SyncEventDetails(scope="occurrence", reason=reason, cancel_meeting=bool(cancel_meeting), **via)
        sync_event_record(type="delete", reservation=row, series=row.series, details=details)


def record_occurrence_cancels(*, rows: list[Reservation], cancel_meeting, via: dict[str, Any]) -> list[Reservation]:
    """``record_cancels(series_wide=False)`` for many rows in one INSERT: a delete event per row
    Exchange knows of (or would), with the row's ``state_reason`` as its reason and
    ``cancel_meeting(row)`` saying whether the meeting goes (else only the room leaves it).
    Marks those rows' ``sync_state`` pending in memory and returns them: the caller saves them."""
    synced = [row for row in rows if needs_sync(row)]
    sync_event_record_many(type="delete", items=[
        (row, SyncEventDetails(scope="occurrence", reason=row.state_reason, cancel_meeting=bool(cancel_meeting(row)), **via))
        for row in synced
    ])
    for row in synced:
        row.sync_state = SyncState.PENDING
    return synced
