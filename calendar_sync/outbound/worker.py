"""The outbound worker: push one ``SyncEvent`` to Exchange (SPEC §4 "Outbound").

``process_sync_event(id)`` is what the Celery task runs:

1. **claim** the event with a conditional UPDATE (``new`` → ``processing``; an
   expired ``processing`` lease; ``error`` only when an admin re-processes), and
   only when no earlier event of the same reservation/series (or of the series it
   was split from) is still pending, so changes reach Exchange in their order;
2. **push** it (``single`` or ``series``: plan by the SPEC §3 mode table, one Graph call);
3. **record** the response; a transient failure puts the event back to ``new`` with a
   back-off (``max_event_retry_count`` attempts, then ``error``), a permanent one is
   ``error`` at once. The ``Outcome`` says what the task should schedule next.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.credentials import CredentialError
from exchange_auth.graph import GraphError
from exchange_auth.providers import provider_for_room
from reservations import services
from reservations.models import Reservation, ReservationSeries, State, SyncEvent, SyncState
from reservations.outbox import SyncEventDetails
from workplace.mail import tell_admins

from .. import conf
from ..common import outcomes, refusals
from ..common.answers import declined_reason
from ..common.notifications import notify_rejected
from ..common.plan import PermanentSyncError, permanent
from . import fastpaths
from .series import push_occurrence, push_series_cancel, push_series_create, push_series_update
from .single import PENDING_ANSWER, PushResult, push_cancel, push_create, push_update

logger = logging.getLogger("calendar_sync")

PENDING = (SyncEvent.State.NEW, SyncEvent.State.PROCESSING)


@dataclass
class Outcome:
    """What a push did, and what the task should schedule next (results flow up: nothing
    here imports the tasks)."""

    status: str  # "processed" | "retry" | "error" | "skipped"
    delay: float = 0.0  # "retry": push again after this many seconds
    check_answers: bool = False  # the room's answer wasn't in Graph's response: read it shortly
    event: SyncEvent | None = None  # the claimed event (its reservation/series ids: what waits behind it)


# --- 1. claim ---------------------------------------------------------------------------


def _earlier_pending(event: SyncEvent):
    """Earlier events of the same reservation or series that haven't finished. A series split
    off another (a series-wide time change of a series that has begun) waits for the old one's:
    its meeting is created once the old meeting has been ended, so the room is free for it."""
    scope = Q()
    if event.reservation_id:
        scope |= Q(reservation_id=event.reservation_id)
    if event.series_id:
        scope |= Q(series_id=event.series_id)
    after = SyncEventDetails.of(event).after_series_id
    if after:
        scope |= Q(series_id=after)
    return SyncEvent.objects.filter(scope, pk__lt=OuterRef("pk"), state__in=PENDING)


def claim(event_id: int, *, reprocess: bool = False) -> SyncEvent | None:
    now = timezone.now()
    lease_until = now + timedelta(seconds=conf.get().lease_seconds)
    if connection.vendor == "postgresql":
        # One statement, the same claim (fastpaths.claim): the ORM's three were 16 % of a push's CPU.
        return fastpaths.claim(event_id, now=now, lease_until=lease_until, reprocess=reprocess)
    return _claim_orm(event_id, now=now, lease_until=lease_until, reprocess=reprocess)


def _claim_orm(event_id: int, *, now, lease_until, reprocess: bool) -> SyncEvent | None:
    event = SyncEvent.objects.filter(pk=event_id).only("id", "reservation_id", "series_id", "details").first()
    if event is None:
        return None
    due_new = Q(state=SyncEvent.State.NEW) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    if reprocess:
        due_new = Q(state__in=[SyncEvent.State.NEW, SyncEvent.State.ERROR])
    lease_expired = Q(state=SyncEvent.State.PROCESSING, next_attempt_at__lt=now)
    updates = {
        "state": SyncEvent.State.PROCESSING,
        "next_attempt_at": lease_until,
        "updated_at": now,
    }
    # This attempt counted in the claim itself (one commit, not two: a push's database work
    # runs while the mailbox's other requests are in flight); a re-process starts again at 1.
    updates["attempts"] = 1 if reprocess else F("attempts") + 1
    rows = (
        SyncEvent.objects.filter(pk=event_id)
        .filter(due_new | lease_expired)
        .filter(~Exists(_earlier_pending(event)))
        .update(**updates)
    )
    if not rows:
        return None
    # The reservation or series comes with its room and people in ``_dispatch`` (one query, not a join here and a second read there).
    return SyncEvent.objects.get(pk=event_id)


def next_pending_for(event: SyncEvent) -> list[int]:
    """``new`` events of the same reservation/series (or of a series split off it) that were
    waiting behind ``event``."""
    if connection.vendor == "postgresql":
        return fastpaths.next_pending(event)
    return _next_pending_orm(event)


def _next_pending_orm(event: SyncEvent) -> list[int]:
    scope = Q()
    if event.reservation_id:
        scope |= Q(reservation_id=event.reservation_id)
    if event.series_id:
        scope |= Q(series_id=event.series_id) | Q(details__after_series_id=event.series_id)
    return list(SyncEvent.objects.filter(scope, state=SyncEvent.State.NEW, pk__gt=event.pk).order_by("pk").values_list("pk", flat=True)[:1])


# --- 2. push -------------------------------------------------------------------------------


def process_sync_event(event_id: int, *, reprocess: bool = False) -> Outcome:
    event = claim(event_id, reprocess=reprocess)
    if event is None:
        return Outcome("skipped")
    outcome = _push(event)
    outcome.event = event
    return outcome


def _push(event: SyncEvent) -> Outcome:
    try:
        if not (event.reservation_id or event.series_id):
            _finish(event, response={"note": "nothing to push: the reservation is gone"})
            return Outcome("processed")
        pushed = _dispatch(event)
    except GraphError as exc:
        return _failed(event, str(exc), transient=exc.transient, retry_after=exc.retry_after, response=exc.as_dict(), cause=exc)
    except PermanentSyncError as exc:
        return _failed(event, str(exc), transient=False, cause=exc)
    except CredentialError as exc:
        return _failed(event, str(permanent(exc)), transient=False, cause=exc)
    except Exception as exc:
        logger.exception("sync event %s failed unexpectedly", event.pk)
        return _failed(event, f"{type(exc).__name__}: {exc}", transient=True)
    if isinstance(pushed, PushResult):
        _finish(event, response=pushed.response, result=pushed)
        return Outcome("processed", check_answers=pushed.awaiting_answer)
    _finish(event, response=pushed)
    return Outcome("processed", check_answers=pushed.get("room_answer") == PENDING_ANSWER)


# --- 3. record ----------------------------------------------------------------------------


def _finish(event: SyncEvent, *, response, result: PushResult | None = None) -> None:
    """The event is processed: its end, and what the push made (the meeting's link, the room's
    answer) with the reservations' sync state, in one transaction; the employee told of a
    decline after commit."""
    now = timezone.now()
    rejected: list[int] = []
    with transaction.atomic():
        if event.reservation_id:
            if connection.vendor == "postgresql":
                others_pending = fastpaths.finish(event, response=response, now=now)  # one statement, the same two
            else:
                others_pending = _finish_orm(event, response=response, now=now)
            reservation = event.reservation
            synced = reservation is not None and not others_pending
            if reservation is not None and (result is not None or synced):
                recorded = services.reservation_record_push(
                    reservation=reservation, link=result.link if result else None, answer=result.answer if result else "",
                    reason=declined_reason(reservation.room) if result and result.answer == "declined" else "",
                    sync_state=SyncState.SYNCED if synced else None,
                )
                if recorded.rejected:
                    rejected.append(reservation.pk)
        else:
            _end_event(event, response=response, now=now)
            if event.series_id:
                if result is not None:
                    series = event.series
                    answer = result.answer
                    recorded = services.series_record_push(
                        series=series, link=result.link, answer=answer,
                        reason=declined_reason(series.room) if answer == "declined" else "",
                    )
                    rejected += recorded.rejected_ids
                # Occurrences with a change of their own still on its way stay pending until it lands.
                own_pending = SyncEvent.objects.filter(reservation_id=OuterRef("pk"), state__in=PENDING).exclude(pk=event.pk)
                for reservation in Reservation.objects.filter(series_id=event.series_id).exclude(Exists(own_pending)):
                    outcomes.synced(reservation)
    if rejected:
        transaction.on_commit(lambda: _tell_rejected(rejected), robust=True)


def _end_event(event: SyncEvent, *, response, now) -> None:
    SyncEvent.objects.filter(pk=event.pk, state=SyncEvent.State.PROCESSING).update(
        state=SyncEvent.State.PROCESSED, response=response, error="", processed_at=now, next_attempt_at=None,
        request_payload=event.request_payload, updated_at=now,
    )


def _finish_orm(event: SyncEvent, *, response, now) -> bool:
    """A reservation's event ended (while ``processing``), and whether another change of the
    reservation is still pending."""
    _end_event(event, response=response, now=now)
    return SyncEvent.objects.filter(reservation_id=event.reservation_id, state__in=PENDING).exclude(pk=event.pk).exists()


def _tell_rejected(reservation_ids: list[int]) -> None:
    for reservation in Reservation.objects.filter(pk__in=reservation_ids).select_related("room__building", "requested_for", "requested_by"):
        notify_rejected(reservation, reservation.state_reason)


def _failed(event: SyncEvent, error: str, *, transient: bool, retry_after: float | None = None, response=None,
            cause: BaseException | None = None) -> Outcome:
    now = timezone.now()
    attempts = SyncEvent.objects.filter(pk=event.pk).values_list("attempts", flat=True).first() or 0
    max_attempts = int(properties.get(properties.MAX_EVENT_RETRY_COUNT))
    if transient and attempts < max_attempts:
        base = conf.get().retry_base_seconds
        delay = min(3600.0, base * 2 ** (attempts - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        if retry_after:
            delay = max(delay, retry_after)
        SyncEvent.objects.filter(pk=event.pk, state=SyncEvent.State.PROCESSING).update(
            state=SyncEvent.State.NEW, error=error, response=response, next_attempt_at=now + timedelta(seconds=delay),
            request_payload=event.request_payload, updated_at=now,
        )
        logger.warning("sync event %s attempt %s failed, retrying in %.1fs: %s", event.pk, attempts, delay, error)
        return Outcome("retry", delay)
    SyncEvent.objects.filter(pk=event.pk, state=SyncEvent.State.PROCESSING).update(
        state=SyncEvent.State.ERROR, error=error, response=response, next_attempt_at=None,
        request_payload=event.request_payload, updated_at=now,
    )
    logger.error("sync event %s failed after %s attempt(s): %s", event.pk, attempts, error)
    targets = [event.reservation] if event.reservation_id else list(Reservation.objects.filter(series_id=event.series_id))
    for reservation in targets:
        if reservation is not None:
            outcomes.failed(reservation, error)
    if isinstance(cause, SplitBlocked):
        tell_admins(f"A moved series is not in Outlook: {event.series.room.name if event.series else 'a room'}", (
            f"Sync event {event.pk} (the create of series {event.series_id}) was blocked: {error}\n\n"
            "The occurrences keep their new times in the reservation system; Outlook still shows the old series. "
            "See Calendar sync → Sync events in the admin."
        ))
        return Outcome("error")
    if not transient and cause is not None:
        _refused(event, [r for r in targets if r is not None], cause, error)
    return Outcome("error")


def _refused(event: SyncEvent, targets: list[Reservation], cause: BaseException, error: str) -> None:
    """Exchange refused the push for good. A reservation whose meeting could not be made and
    that waits for the room's answer would wait for nothing: it is rejected with a sentence
    the employee understands (and mailed it); the admins are told once per cause."""
    waiting = [r for r in targets if not r.event_id and not (r.series_id and r.series.event_id) and r.state == State.AWAITING_CONFIRMATION]
    rejected = []
    for reservation in waiting:
        reason = refusals.employee_reason(cause, room_name=reservation.room.name)
        if outcomes.mark_rejected(reservation, reason):
            rejected.append(reservation.pk)
    if not refusals.needs_admins(cause):
        return
    target = event.reservation or event.series
    mailbox = getattr(cause, "mailbox", "") or (getattr(target, "mailbox", "") or "")
    employee = (getattr(getattr(target, "requested_for", None), "email", "") or "").lower()
    kind = "user" if mailbox and mailbox.lower() == employee else "other"
    found = provider_for_room(target.room) if target is not None else None
    provider_id = found.pk if found is not None else None
    refusals.alert_admins_once(
        refusals.cause_of(cause, provider_id=provider_id, mailbox_kind=kind),
        "Bookings are not reaching Outlook",
        f"Sync event {event.pk} ({event.type}) was refused for good: {error}\n\n{refusals.admin_advice(cause, mailbox=mailbox or 'the mailbox')}"
        + (f"\n\n{len(rejected)} reservation(s) were rejected and their employees told." if rejected else ""),
    )


class SplitBlocked(PermanentSyncError):
    """A series split off another whose "end the old series" push failed for good."""


def _check_split_ended(event: SyncEvent, series: ReservationSeries) -> None:
    """A series split off a begun one (Outlook's "this and following") is created once the old
    meeting has been ended (``_earlier_pending`` waits for it). When that push failed for good
    the old series still holds the room at the old times in Exchange: creating the new one
    would leave two live series. The create is blocked (it stays ``error``, to re-process once
    the old series' event has been re-processed) and the admins are told (``_failed``)."""
    after = SyncEventDetails.of(event).after_series_id
    if not after:
        return
    failed = SyncEvent.objects.filter(series_id=after, state=SyncEvent.State.ERROR, pk__lt=event.pk).order_by("-pk").first()
    if failed is None:
        return
    raise SplitBlocked(
        f"Not created in Exchange: it was split off series {after}, whose meeting could not be ended "
        f"(sync event {failed.pk}: {failed.error or 'failed'}). Creating it would leave two live series holding "
        f"{series.room.name}. Re-process sync event {failed.pk}, then this one.",
        cause=f"split-blocked:{after}",
    )


def _reservation_orm(reservation_id: int) -> Reservation:
    return (
        Reservation.objects.select_related("room__building", "requested_for__profile", "requested_by", "series")
        .prefetch_related("attendees").get(pk=reservation_id)
    )


def _dispatch(event: SyncEvent):
    if event.reservation_id:
        if connection.vendor == "postgresql":
            reservation = fastpaths.reservation_for_push(event.reservation_id)  # one statement, the same instances
        else:
            reservation = _reservation_orm(event.reservation_id)
        event.reservation = reservation  # what _finish records against
        if reservation.series_id:
            if event.type == SyncEvent.Type.CREATE:
                return {"note": "an occurrence reaches Exchange with its series' create"}
            return push_occurrence(event, reservation)
        if event.type == SyncEvent.Type.CREATE:
            return push_create(event, reservation)
        if event.type == SyncEvent.Type.UPDATE:
            return push_update(event, reservation)
        if event.type == SyncEvent.Type.DELETE:
            return push_cancel(event, reservation)
        return {"note": f"{event.type} events are handled by inbound sync"}
    series = ReservationSeries.objects.select_related("room__building", "requested_for__profile", "requested_by").get(pk=event.series_id)
    event.series = series
    if event.type == SyncEvent.Type.CREATE:
        _check_split_ended(event, series)
        return push_series_create(event, series)
    if event.type == SyncEvent.Type.UPDATE:
        return push_series_update(event, series)
    if event.type == SyncEvent.Type.DELETE:
        return push_series_cancel(event, series)
    return {"note": f"{event.type} events are handled by inbound sync"}
