"""Outbound sync: push one ``SyncEvent`` to Exchange (SPEC §4 "Outbound").

``process_sync_event(id)`` is what the Celery task runs:

1. **claim** the event with a conditional UPDATE (``new`` → ``processing``; an
   expired ``processing`` lease; ``error`` only when an admin re-processes),
   and only when no earlier event of the same reservation/series (or of the
   series it was split from, ``details["after_series_id"]``) is still pending,
   so changes reach Exchange in the order they were made;
2. **plan** it with the SPEC §3 mode table (``exchange_auth.modes.plan_sync``);
3. **push**: one Graph call for the common cases (create = one POST with a
   deterministic ``transactionId``; update = one PATCH with ``If-Match``; cancel =
   one POST ``/cancel`` or, for Outlook-origin meetings, the room's ``/decline``);
4. **record** ids, change key, payload and response; a transient failure puts the
   event back to ``new`` with a back-off (``max_event_retry_count`` attempts, then
   ``error``); a permanent one is ``error`` at once.

Every step re-reads the database, so a redelivered or re-queued task is harmless.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.graph import GraphClient, GraphError, NotFound, PreconditionFailed, users_path
from exchange_auth.modes import Credential, PlanError, ProviderAccounts, SyncPlan, plan_sync
from reservations.models import (
    ACTIVE_STATES,
    Origin,
    Reservation,
    ReservationSeries,
    State,
    SyncEvent,
    SyncState,
)

from . import conf, outcomes, payloads
from .clients import client_for

logger = logging.getLogger("calendar_sync")

PENDING = (SyncEvent.State.NEW, SyncEvent.State.PROCESSING)


class PermanentSyncError(Exception):
    """Retrying won't help (no provider, no account for the plan, reconnect needed...)."""


@dataclass
class Outcome:
    status: str  # "processed" | "retry" | "error" | "skipped"
    delay: float = 0.0


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
    after = (event.details or {}).get("after_series_id")
    if after:
        scope |= Q(series_id=after)
    return SyncEvent.objects.filter(scope, pk__lt=OuterRef("pk"), state__in=PENDING)


def claim(event_id: int, *, reprocess: bool = False) -> SyncEvent | None:
    event = SyncEvent.objects.filter(pk=event_id).only("id", "reservation_id", "series_id", "details").first()
    if event is None:
        return None
    now = timezone.now()
    due_new = Q(state=SyncEvent.State.NEW) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    if reprocess:
        due_new = Q(state__in=[SyncEvent.State.NEW, SyncEvent.State.ERROR])
    lease_expired = Q(state=SyncEvent.State.PROCESSING, next_attempt_at__lt=now)
    updates = {
        "state": SyncEvent.State.PROCESSING,
        "next_attempt_at": now + timedelta(seconds=conf.lease_seconds()),
        "updated_at": now,
    }
    if reprocess:
        updates["attempts"] = 0
    rows = (
        SyncEvent.objects.filter(pk=event_id)
        .filter(due_new | lease_expired)
        .filter(~Exists(_earlier_pending(event)))
        .update(**updates)
    )
    if not rows:
        return None
    SyncEvent.objects.filter(pk=event_id).update(attempts=F("attempts") + 1)
    return SyncEvent.objects.select_related("reservation", "series").get(pk=event_id)


def next_pending_for(event: SyncEvent) -> list[int]:
    """``new`` events of the same reservation/series (or of a series split off it) that were
    waiting behind ``event``."""
    scope = Q()
    if event.reservation_id:
        scope |= Q(reservation_id=event.reservation_id)
    if event.series_id:
        scope |= Q(series_id=event.series_id) | Q(details__after_series_id=event.series_id)
    return list(SyncEvent.objects.filter(scope, state=SyncEvent.State.NEW, pk__gt=event.pk).order_by("pk").values_list("pk", flat=True)[:1])


# --- 2. plan ------------------------------------------------------------------------------


def _provider():
    from exchange_auth.providers import active_provider

    provider = active_provider()
    if provider is None:
        raise PermanentSyncError("No calendar provider is active.")
    return provider


def _user_email(user) -> str:
    return (getattr(user, "email", "") or "").lower()


def _has_mailbox(user) -> bool:
    profile = getattr(user, "profile", None)
    return bool(_user_email(user)) and (profile is None or profile.has_mailbox)


def _acting_user(event: SyncEvent, target):
    """Who acted (details["actor_id"] from the service), else the requester."""
    from django.contrib.auth import get_user_model

    actor_id = event.details.get("actor_id")
    if actor_id:
        user = get_user_model().objects.filter(pk=actor_id).first()
        if user is not None:
            return user
    return target.requested_by


def plan_for(event: SyncEvent, target, room, provider) -> tuple[SyncPlan, object]:
    """The SPEC §3 plan for this event's action, and the acting user."""
    actor = _acting_user(event, target)
    source = event.details.get("source") or getattr(target, "source", "portal")
    subsource = event.details.get("subsource", getattr(target, "subsource", ""))
    by_user = not event.details.get("system", False)
    accounts: ProviderAccounts = provider.accounts
    try:
        plan = plan_sync(
            mode=properties.sync_mode(),
            source=source,
            subsource=subsource,
            kind=getattr(target, "kind", "standard"),
            acting_user=_user_email(actor),
            requested_for=_user_email(target.requested_for),
            requested_for_has_mailbox=_has_mailbox(target.requested_for),
            room_mailbox=(room.mailbox or "").lower(),
            accounts=accounts,
            blocker_user=properties.get(properties.BLOCKER_USER) or "",
            by_user=by_user,
            existing_sync_mailbox=(getattr(target, "sync_mailbox", "") or "") if event.type != SyncEvent.Type.CREATE else "",
        )
    except PlanError as exc:
        raise PermanentSyncError(str(exc)) from exc
    return plan, actor


def system_plan(mailbox: str) -> SyncPlan:
    return SyncPlan(credential=Credential.SYSTEM, token_user="", mailbox=mailbox, sync_mailbox="other", organizer="", organizer_is_room=False, employee_role="attendee")


def _client(plan: SyncPlan, provider, actor, link_mailbox: str = "") -> GraphClient:
    """The plan's credential — except that a meeting living in another mailbox than the
    plan's (e.g. created by the REST API in the employee's calendar, now changed in the
    portal in Personal mode) is changed with the system credential that reaches it."""
    if link_mailbox and plan.credential == Credential.PERSONAL and link_mailbox.lower() != plan.mailbox.lower():
        return client_for(system_plan(link_mailbox), provider, None)
    try:
        return client_for(plan, provider, actor)
    except Exception as exc:  # CredentialError / ReconnectRequired from exchange_auth
        raise _credential_error(exc) from exc


def _credential_error(exc: Exception) -> Exception:
    name = type(exc).__name__
    if name in ("ReconnectRequired", "CredentialError"):
        return PermanentSyncError(f"{name}: {exc}")
    return exc


def _tz(room) -> str:
    return room.building.timezone or "UTC"


# --- 3. push ------------------------------------------------------------------------------


def process_sync_event(event_id: int, *, reprocess: bool = False) -> Outcome:
    event = claim(event_id, reprocess=reprocess)
    if event is None:
        return Outcome("skipped")
    target = event.reservation or event.series
    try:
        if target is None:
            _finish(event, response={"note": "nothing to push: the reservation is gone"})
            return Outcome("processed")
        response = _dispatch(event)
    except GraphError as exc:
        return _failed(event, str(exc), transient=exc.transient, retry_after=exc.retry_after, response=exc.as_dict())
    except PermanentSyncError as exc:
        return _failed(event, str(exc), transient=False)
    except Exception as exc:
        exc = _credential_error(exc)
        if isinstance(exc, PermanentSyncError):
            return _failed(event, str(exc), transient=False)
        logger.exception("sync event %s failed unexpectedly", event.pk)
        return _failed(event, f"{type(exc).__name__}: {exc}", transient=True)
    _finish(event, response=response)
    return Outcome("processed")


def _finish(event: SyncEvent, *, response) -> None:
    now = timezone.now()
    SyncEvent.objects.filter(pk=event.pk, state=SyncEvent.State.PROCESSING).update(
        state=SyncEvent.State.PROCESSED, response=response, error="", processed_at=now, next_attempt_at=None,
        request_payload=event.request_payload, updated_at=now,
    )
    if event.reservation_id:
        reservation = Reservation.objects.filter(pk=event.reservation_id).first()
        if reservation is not None and not SyncEvent.objects.filter(reservation_id=reservation.pk, state__in=PENDING).exclude(pk=event.pk).exists():
            outcomes.synced(reservation)
    elif event.series_id:
        # Occurrences with a change of their own still on its way stay pending until it lands.
        own_pending = SyncEvent.objects.filter(reservation_id=OuterRef("pk"), state__in=PENDING).exclude(pk=event.pk)
        for reservation in Reservation.objects.filter(series_id=event.series_id).exclude(Exists(own_pending)):
            outcomes.synced(reservation)


def _failed(event: SyncEvent, error: str, *, transient: bool, retry_after: float | None = None, response=None) -> Outcome:
    now = timezone.now()
    attempts = SyncEvent.objects.filter(pk=event.pk).values_list("attempts", flat=True).first() or 0
    max_attempts = int(properties.get(properties.MAX_EVENT_RETRY_COUNT))
    if transient and attempts < max_attempts:
        base = conf.retry_base_seconds()
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
    return Outcome("error")


def _dispatch(event: SyncEvent):
    if event.reservation_id:
        reservation = (
            Reservation.objects.select_related("room__building", "requested_for__profile", "requested_by", "series")
            .prefetch_related("attendees").get(pk=event.reservation_id)
        )
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
    if event.type == SyncEvent.Type.CREATE:
        return push_series_create(event, series)
    if event.type == SyncEvent.Type.UPDATE:
        return push_series_update(event, series)
    if event.type == SyncEvent.Type.DELETE:
        return push_series_cancel(event, series)
    return {"note": f"{event.type} events are handled by inbound sync"}


def _event_summary(body: dict | None) -> dict:
    body = body or {}
    return {k: body.get(k) for k in ("id", "changeKey", "iCalUId", "organizer", "attendees", "webLink") if k in body}


# 3a. create ------------------------------------------------------------------------------


def push_create(event: SyncEvent, reservation: Reservation) -> dict:
    if reservation.event_id:
        return {"note": "already linked", "event_id": reservation.event_id}
    if reservation.state in (State.CANCELLED, State.REJECTED) or reservation.origin == Origin.EXCHANGE:
        return {"note": f"not created: reservation is {reservation.state}, origin {reservation.origin}"}
    provider = _provider()
    plan, actor = plan_for(event, reservation, reservation.room, provider)
    return _create_meeting(event, reservation, plan, provider, actor)


def _create_meeting(event: SyncEvent, reservation: Reservation, plan: SyncPlan, provider, actor) -> dict:
    room = reservation.room
    body = payloads.create_payload(reservation, plan, tz_name=_tz(room), sync_event_id=event.pk)
    event.request_payload = body
    SyncEvent.objects.filter(pk=event.pk).update(request_payload=body)
    client = _client(plan, provider, actor)
    created = client.post(users_path(plan.mailbox, "events"), json=body)
    outcomes.link_exchange(
        reservation, event_id=created["id"], change_key=created.get("changeKey", ""), ical_uid=created.get("iCalUId", ""),
        mailbox=plan.mailbox, organizer=plan.organizer, sync_mailbox=plan.sync_mailbox,
    )
    apply_room_answer(reservation, created, plan_organizer_is_room=plan.organizer_is_room)
    return _event_summary(created)


def apply_room_answer(reservation: Reservation, graph_event: dict, *, plan_organizer_is_room: bool | None = None,
                      schedule_check: bool = True) -> str:
    """Confirm / reject an awaiting reservation from the organizer's copy of its meeting.
    Returns the room's response ("" when it can't tell yet). ``schedule_check=False``: the
    caller is the scheduled check itself (``confirm``), no other check is queued."""
    room = reservation.room
    organizer_is_room = plan_organizer_is_room if plan_organizer_is_room is not None else (
        bool(room.mailbox) and reservation.organizer.lower() == room.mailbox.lower()
    )
    if not room.mailbox or organizer_is_room:
        if reservation.state == State.AWAITING_CONFIRMATION:
            outcomes.mark_confirmed(reservation)
        return "accepted"
    return apply_room_response(reservation, payloads.room_response(graph_event, room.mailbox), schedule_check=schedule_check)


ROOM_DECLINED = "{room} declined the meeting: the room is not available at that time."
# States in which a reservation still waits for the room's answer (the answer changes them).
WAITING_FOR_ANSWER = (State.AWAITING_CONFIRMATION, State.CONFLICTED)


def apply_room_response(reservation: Reservation, answer: str, *, schedule_check: bool = True) -> str:
    """The one place the room's answer (SPEC §4 Confirmation) changes a reservation, whoever
    read it: the push's response, ``confirm``'s checks, the organizer mailbox's copy
    (``organizer_sync``) or the room's own copy (``reconcile``). Only a reservation still
    waiting for the answer (awaiting, or conflicted) is changed: accepted → confirmed,
    declined → rejected with the same reason and email (``outcomes.mark_rejected``). The
    transitions are conditional updates, so two readers of one answer make one change and
    the employee is told once. Returns the answer ("" when there is none yet)."""
    if answer == "accepted":
        if reservation.state in WAITING_FOR_ANSWER:
            outcomes.mark_confirmed(reservation)
    elif answer == "declined":
        if reservation.state in WAITING_FOR_ANSWER:
            outcomes.mark_rejected(reservation, ROOM_DECLINED.format(room=reservation.room.name))
    else:
        if schedule_check and reservation.state == State.AWAITING_CONFIRMATION:
            from .tasks import schedule_confirmation_check

            schedule_confirmation_check()
        return ""
    return answer


# 3b. update -------------------------------------------------------------------------------


def _if_match(change_key: str) -> dict:
    return {"If-Match": f'W/"{change_key}"'} if change_key else {}


def _patch_with_if_match(client: GraphClient, mailbox: str, event_id: str, change_key: str, body: dict) -> dict:
    """PATCH with If-Match; on 412 re-read the meeting and decide (SPEC §4): the change key
    moved because Exchange touched the meeting (the room answered, an attendee responded,
    an Outlook edit). The product's edit is the newer intent for the fields it manages, so
    it is applied once more on the fresh change key. A meeting cancelled meanwhile is
    not resurrected: NotFound/cancelled is raised to the caller."""
    path = users_path(mailbox, "events", event_id)
    try:
        return client.patch(path, json=body, headers=_if_match(change_key))
    except PreconditionFailed:
        current = client.get(path, params={"$select": "id,changeKey,isCancelled"})
        if current.get("isCancelled"):
            raise NotFound(404, "ErrorItemNotFound", "The meeting was cancelled in Exchange.") from None
        return client.patch(path, json=body, headers=_if_match(current.get("changeKey", "")))


def push_update(event: SyncEvent, reservation: Reservation) -> dict:
    if reservation.origin == Origin.EXCHANGE:
        return {"note": "Outlook-origin meetings are not edited from the product"}
    if reservation.state == State.CANCELLED:
        return {"note": "reservation cancelled; its delete event cancels the meeting"}
    provider = _provider()
    plan, actor = plan_for(event, reservation, reservation.room, provider)
    if not reservation.event_id:
        # The create never reached Exchange (error, or a crash before the link was stored): this update creates it.
        return _create_meeting(event, reservation, plan, provider, actor)
    previous_room_id = event.details.get("previous_room_id")
    room_changed = bool(previous_room_id) and previous_room_id != reservation.room_id
    linked_organizer = reservation.organizer.lower()
    from workplace.models import Room

    previous_room = Room.objects.filter(pk=previous_room_id).first() if room_changed else None
    old_room_organized = previous_room is not None and previous_room.mailbox and previous_room.mailbox.lower() == linked_organizer
    if room_changed and (old_room_organized or plan.organizer_is_room):
        # Room mailboxes organize: cancel the old room's meeting, the new room organizes a new one.
        old_client = _client(system_plan(reservation.mailbox), provider, None)
        try:
            old_client.post(users_path(reservation.mailbox, "events", reservation.event_id, "cancel"),
                            json={"Comment": f"Moved to {reservation.room.name}."})
        except NotFound:
            pass
        outcomes.unlink_exchange(reservation)
        result = _create_meeting(event, reservation, plan, provider, actor)
        return {"cancelled_previous": True, **result}
    body = payloads.event_payload(reservation, plan, tz_name=_tz(reservation.room))
    # The meeting keeps its organizer: recompute attendees against the linked organizer.
    body["attendees"] = payloads.attendees_for(
        room=reservation.room, requested_for=reservation.requested_for, attendees=list(reservation.attendees.all()),
        plan=_linked_plan(reservation, plan),
    )
    event.request_payload = body
    SyncEvent.objects.filter(pk=event.pk).update(request_payload=body)
    client = _client(plan, provider, actor, link_mailbox=reservation.mailbox)
    try:
        updated = _patch_with_if_match(client, reservation.mailbox, reservation.event_id, reservation.change_key, body)
    except NotFound:
        # The meeting vanished in Exchange: the room no longer holds it.
        outcomes.mark_conflicted(reservation, "The meeting no longer exists in Exchange.")
        return {"note": "meeting missing in Exchange"}
    outcomes.set_change_key(reservation, updated.get("changeKey", ""))
    if room_changed and reservation.state == State.AWAITING_CONFIRMATION:
        apply_room_answer(reservation, updated)
    return _event_summary(updated)


def _linked_plan(reservation: Reservation, plan: SyncPlan) -> SyncPlan:
    """The plan as the existing meeting has it (organizer and mailbox as stored)."""
    organizer = reservation.organizer or plan.organizer
    room_mailbox = (reservation.room.mailbox or "").lower()
    return SyncPlan(
        credential=plan.credential, token_user=plan.token_user, mailbox=reservation.mailbox or plan.mailbox,
        sync_mailbox=reservation.sync_mailbox or plan.sync_mailbox, organizer=organizer,
        organizer_is_room=bool(room_mailbox) and organizer.lower() == room_mailbox,
        employee_role="organizer" if organizer.lower() == _user_email(reservation.requested_for) else "attendee",
        invitee=plan.invitee,
    )


# 3c. cancel -------------------------------------------------------------------------------


def keeps_meeting(event: SyncEvent, reservations) -> bool:
    """The person unticked "also cancel the meeting on people's calendars", and the product may
    choose for these reservations (not a room-organizer meeting, not one created in Outlook:
    the same rule the portal used to offer the choice)."""
    from reservations import rules

    return event.details.get("cancel_meeting", True) is False and rules.offer_cancel_meeting_choice(reservations)


def release_room_payload(target, plan: SyncPlan, *, attendees, requested_for) -> dict:
    """The meeting without its room: the room leaves the attendees (Exchange tells it, and it
    frees its calendar) and the location is cleared; everyone else keeps the meeting."""
    room_mailbox = (target.room.mailbox or "").lower()
    kept = [
        a for a in payloads.attendees_for(room=target.room, requested_for=requested_for, attendees=attendees, plan=_linked_plan(target, plan))
        if (a["emailAddress"]["address"] or "").lower() != room_mailbox
    ]
    return {"attendees": kept, "location": {"displayName": "", "locationType": "default"}, "locations": []}


def _release_room(event: SyncEvent, reservation: Reservation, client: GraphClient, plan: SyncPlan) -> dict:
    body = release_room_payload(reservation, plan, attendees=list(reservation.attendees.all()), requested_for=reservation.requested_for)
    event.request_payload = body
    try:
        updated = _patch_with_if_match(client, reservation.mailbox, reservation.event_id, reservation.change_key, body)
    except NotFound:
        return {"note": "meeting already gone"}
    outcomes.set_change_key(reservation, updated.get("changeKey", ""))
    return {"released_room": reservation.event_id, **_event_summary(updated)}


def push_cancel(event: SyncEvent, reservation: Reservation) -> dict:
    if not reservation.event_id and reservation.origin != Origin.EXCHANGE:
        return {"note": "no meeting in Exchange"}
    provider = _provider()
    comment = _comment(event, "The room reservation was cancelled.")
    if reservation.origin == Origin.EXCHANGE:
        return _room_declines(reservation, provider, comment)
    plan, actor = plan_for(event, reservation, reservation.room, provider)
    client = _client(plan, provider, actor, link_mailbox=reservation.mailbox)
    if keeps_meeting(event, [reservation]):
        return _release_room(event, reservation, client, plan)
    try:
        client.post(users_path(reservation.mailbox, "events", reservation.event_id, "cancel"), json={"Comment": comment})
    except NotFound:
        return {"note": "meeting already gone"}
    return {"cancelled": reservation.event_id}


def _room_declines(reservation: Reservation, provider, comment: str) -> dict:
    """An Outlook-origin meeting: the room declines it (the organizer is told) instead of
    the product cancelling someone else's meeting."""
    room_mailbox = reservation.room.mailbox.lower()
    client = _client(system_plan(room_mailbox), provider, None)
    copy_id = reservation.event_id if reservation.mailbox.lower() == room_mailbox else ""
    if not copy_id and reservation.ical_uid:
        found = client.get(users_path(room_mailbox, "events"), params={"$filter": f"iCalUId eq '{reservation.ical_uid}'", "$select": "id"})
        values = (found or {}).get("value", [])
        copy_id = values[0]["id"] if values else ""
    if not copy_id:
        return {"note": "the room holds no copy of the meeting"}
    try:
        client.post(users_path(room_mailbox, "events", copy_id, "decline"), json={"comment": comment, "sendResponse": True})
    except NotFound:
        return {"note": "the room's copy is already gone"}
    return {"declined": copy_id}


# 3d. series and occurrences ----------------------------------------------------------------


def _series_reference(series: ReservationSeries, event: SyncEvent | None = None) -> Reservation | None:
    """The occurrence whose values stand for the series: the first one the change touched
    (a series-wide change writes the same values to every upcoming occurrence), else the
    first upcoming active one, else the first."""
    rows = series.occurrences.select_related("requested_for").prefetch_related("attendees").order_by("start", "id")
    ids = (event.details.get("reservation_ids") if event is not None else None) or []
    return (
        (rows.filter(pk__in=ids).first() if ids else None)
        or rows.filter(state__in=ACTIVE_STATES, end__gt=timezone.now()).first()
        or rows.first()
    )


def _series_attendees(series: ReservationSeries, event: SyncEvent | None = None):
    reference = _series_reference(series, event)
    return (list(reference.attendees.all()) if reference else []), (reference.body if reference else "")


def _comment(event: SyncEvent, default: str) -> str:
    """The cancellation's comment to attendees: the reason the person gave, if any."""
    return event.details.get("comment") or event.details.get("reason") or default


def push_series_create(event: SyncEvent, series: ReservationSeries) -> dict:
    if series.event_id:
        return {"note": "already linked", "event_id": series.event_id}
    provider = _provider()
    plan, actor = plan_for(event, series, series.room, provider)
    attendees, body_text = _series_attendees(series)
    body = payloads.series_create_payload(series, plan, room=series.room, attendees=attendees, sync_event_id=event.pk, body=body_text)
    event.request_payload = body
    SyncEvent.objects.filter(pk=event.pk).update(request_payload=body)
    client = _client(plan, provider, actor)
    created = client.post(users_path(plan.mailbox, "events"), json=body)
    link = dict(event_id=created["id"], change_key=created.get("changeKey", ""), ical_uid=created.get("iCalUId", ""),
                mailbox=plan.mailbox, organizer=plan.organizer, sync_mailbox=plan.sync_mailbox)
    outcomes.link_exchange(series, **link)
    # Occurrences share the meeting's home; their own instance ids are looked up when one changes.
    outcomes.link_occurrences(series, ical_uid=link["ical_uid"], mailbox=plan.mailbox, organizer=plan.organizer, sync_mailbox=plan.sync_mailbox)
    for reservation in Reservation.objects.filter(series=series, state=State.AWAITING_CONFIRMATION).select_related("room"):
        reservation.organizer = plan.organizer
        apply_room_answer(reservation, created, plan_organizer_is_room=plan.organizer_is_room)
    return _event_summary(created)


def push_series_update(event: SyncEvent, series: ReservationSeries) -> dict:
    """A series-wide change: subject, body, location, attendees and the pattern on the master.

    A time change (``details["reschedules"]``) reschedules the master: Exchange regenerates
    its occurrences, so the occurrences' own instance ids and the copies recorded for them
    are forgotten (the occurrence events queued behind this one re-apply what deviates).
    ``details["action"] == "end"``: the series was split, its rest moved to a new series
    (``_end_series``)."""
    if event.details.get("action") == "end":
        return _end_series(event, series)
    if not series.event_id:
        return push_series_create(event, series)
    provider = _provider()
    plan, actor = plan_for(event, series, series.room, provider)
    attendees, body_text = _series_attendees(series, event)
    reference = _series_reference(series, event)
    body = {"subject": series.subject, "body": payloads.text_body(body_text), "recurrence": payloads.recurrence_for(series),
            "start": payloads.graph_time(series.first_start, series.timezone), "end": payloads.graph_time(series.first_end, series.timezone),
            "location": payloads.location_for(series.room), "locations": [payloads.location_for(series.room)],
            # The meeting keeps its organizer: attendees are worked out against the linked one.
            "attendees": payloads.attendees_for(
                room=series.room, requested_for=reference.requested_for if reference else series.requested_for,
                attendees=attendees, plan=_linked_plan(series, plan),
            )}
    event.request_payload = body
    client = _client(plan, provider, actor, link_mailbox=series.mailbox)
    updated = _patch_with_if_match(client, series.mailbox, series.event_id, series.change_key, body)
    outcomes.set_change_key(series, updated.get("changeKey", ""))
    if event.details.get("reschedules"):
        outcomes.unlink_instances(series)
        outcomes.forget_copies(series.occurrences.values_list("pk", flat=True))
    return _event_summary(updated)


def _end_series(event: SyncEvent, series: ReservationSeries) -> dict:
    """The old half of a split series: its pattern ends on ``details["ends_on"]`` (the day
    before the first moved occurrence), so what is over stays on people's calendars. The
    occurrences that moved to the new series are no longer this meeting's: the copies
    recorded for them (the old meeting's occurrences, which Exchange now removes) are
    forgotten, so the inbound pull doesn't take their removal for a cancellation."""
    if not series.event_id:
        return {"note": "no meeting in Exchange"}
    end_date = date.fromisoformat(event.details["ends_on"])
    provider = _provider()
    plan, actor = plan_for(event, series, series.room, provider)
    client = _client(plan, provider, actor, link_mailbox=series.mailbox)
    body = {"recurrence": payloads.recurrence_ending(series, end_date)}
    event.request_payload = body
    try:
        updated = _patch_with_if_match(client, series.mailbox, series.event_id, series.change_key, body)
    except NotFound:
        updated = None
    outcomes.forget_copies(event.details.get("moved_reservation_ids") or [])
    if updated is None:
        return {"note": "meeting already gone"}
    outcomes.set_change_key(series, updated.get("changeKey", ""))
    return {"ended_series_on": end_date.isoformat(), **_event_summary(updated)}


def _first_cancelled(event: SyncEvent, series: ReservationSeries) -> Reservation | None:
    ids = event.details.get("reservation_ids") or []
    return Reservation.objects.filter(series=series, pk__in=ids).order_by("start", "id").first() if ids else None


def _has_begun(series: ReservationSeries, first: Reservation, cancelled_ids) -> bool:
    """Occurrences before the first cancelled one stay (they are over, or were kept)."""
    return series.occurrences.filter(start__lt=first.start).exclude(pk__in=cancelled_ids).exclude(state=State.CANCELLED).exists()


def push_series_cancel(event: SyncEvent, series: ReservationSeries) -> dict:
    """The service cancels the occurrences that haven't finished.

    1. "Also cancel the meeting" unticked (``keeps_meeting``): the meeting stays on people's
       calendars and the room leaves only the cancelled occurrences. When the series has begun,
       each cancelled occurrence is patched alone (``_release_room_from_occurrences``), so
       what is over keeps its room; otherwise one PATCH takes the room off the whole series.
    2. Otherwise, when earlier occurrences remain (the series has begun), the Outlook series is
       ended the day before the first cancelled one, so its past stays on people's calendars;
       else the whole meeting is cancelled."""
    if not series.event_id:
        return {"note": "no meeting in Exchange"}
    provider = _provider()
    plan, actor = plan_for(event, series, series.room, provider)
    client = _client(plan, provider, actor, link_mailbox=series.mailbox)
    cancelled_ids = event.details.get("reservation_ids") or []
    first = _first_cancelled(event, series)
    has_begun = first is not None and _has_begun(series, first, cancelled_ids)
    if first is not None and keeps_meeting(event, list(
            Reservation.objects.filter(series=series, pk__in=cancelled_ids).select_related("room"))):
        if has_begun:
            return _release_room_from_occurrences(event, series, client, plan, cancelled_ids)
        # Nothing of the series is kept with the room: the room leaves the whole series at once.
        attendees, _text = _series_attendees(series, event)
        body = release_room_payload(series, plan, attendees=attendees, requested_for=series.requested_for)
        event.request_payload = body
        try:
            updated = _patch_with_if_match(client, series.mailbox, series.event_id, series.change_key, body)
        except NotFound:
            return {"note": "meeting already gone"}
        outcomes.set_change_key(series, updated.get("changeKey", ""))
        return {"released_room": series.event_id, **_event_summary(updated)}
    if first is not None:
        slot = first.original_start or first.start
        if has_begun:
            end_date = slot.astimezone(ZoneInfo(series.timezone)).date() - timedelta(days=1)
            body = {"recurrence": payloads.recurrence_ending(series, end_date)}
            event.request_payload = body
            try:
                updated = _patch_with_if_match(client, series.mailbox, series.event_id, series.change_key, body)
            except NotFound:
                return {"note": "meeting already gone"}
            outcomes.set_change_key(series, updated.get("changeKey", ""))
            return {"ended_series_on": end_date.isoformat(), **_event_summary(updated)}
    comment = _comment(event, "The recurring room reservation was cancelled.")
    try:
        client.post(users_path(series.mailbox, "events", series.event_id, "cancel"), json={"Comment": comment})
    except NotFound:
        return {"note": "meeting already gone"}
    return {"cancelled": series.event_id}


def _release_room_from_occurrences(event: SyncEvent, series: ReservationSeries, client: GraphClient, plan: SyncPlan, cancelled_ids) -> dict:
    """The rest of a series that has begun is cancelled and the meeting kept: the room leaves
    each cancelled occurrence alone (an exception of the series: attendees without the room,
    location cleared). Exchange sends the room a cancellation of just those occurrences, so
    its calendar frees them while the occurrences that are over keep the room everywhere.

    Each occurrence is found by its stored instance id, else in one ``/instances`` listing of
    the slots they span; its instance id and change key are stored as a change of that
    occurrence alone stores them. A plain occurrence carries the master's change key, which each
    new exception moves: its PATCH may meet a 412 and is then applied once more on the fresh key
    (``_patch_with_if_match``). An occurrence already gone from the series is skipped. A
    retried event patches the same occurrences again with the same body: harmless."""
    rows = list(
        Reservation.objects.filter(series=series, pk__in=cancelled_ids)
        .select_related("room", "requested_for").prefetch_related("attendees").order_by("start", "id")
    )
    unlinked = [r for r in rows if not r.event_id or r.event_id == series.event_id]
    try:
        found = find_instances(client, series.mailbox, series.event_id, unlinked)
    except NotFound:
        return {"note": "meeting already gone"}
    released, missing, bodies = [], [], {}
    for reservation in rows:
        if reservation.event_id and reservation.event_id != series.event_id:
            instance_id, change_key = reservation.event_id, reservation.change_key
        elif reservation.pk in found:
            inst = found[reservation.pk]
            instance_id, change_key = inst["id"], inst.get("changeKey", "")
            outcomes.link_instance(reservation, event_id=instance_id, change_key=change_key)
        else:
            missing.append(reservation.pk)  # not in the series any more (cancelled in Exchange)
            continue
        body = release_room_payload(series, plan, attendees=list(reservation.attendees.all()), requested_for=reservation.requested_for)
        bodies[str(reservation.pk)] = body
        try:
            updated = _patch_with_if_match(client, series.mailbox, instance_id, change_key, body)
        except NotFound:
            missing.append(reservation.pk)
            continue
        outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
        released.append(instance_id)
    event.request_payload = {"occurrences": bodies}
    if released:
        # Each exception changed the master too: keep its change key for the series' next PATCH.
        try:
            master = client.get(users_path(series.mailbox, "events", series.event_id), params={"$select": "id,changeKey"})
        except NotFound:
            master = None
        outcomes.set_change_key(series, (master or {}).get("changeKey", ""))
    return {"released_room_of_occurrences": released, "occurrences_not_found": missing}


def _instance_slot(inst: dict):
    """When an ``/instances`` entry was scheduled by the series (``originalStart``), as aware UTC."""
    raw = inst.get("originalStart") or (inst.get("start") or {}).get("dateTime")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00")[:26] if "." in raw else raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def find_instances(client: GraphClient, mailbox: str, master_id: str, reservations) -> dict[int, dict]:
    """The series' occurrence of each reservation, by its original slot ({reservation id: instance}):
    one ``/instances`` listing (all its pages) over the days the reservations span."""
    if not reservations:
        return {}
    slots = {r.pk: r.original_start or r.start for r in reservations}
    window_start = (min(min(slots[r.pk], r.start) for r in reservations) - timedelta(days=1)).isoformat()
    window_end = (max(max(slots[r.pk], r.start) for r in reservations) + timedelta(days=1)).isoformat()
    path = users_path(mailbox, "events", master_id, "instances")
    params = {"startDateTime": window_start, "endDateTime": window_end, "$select": "id,start,end,originalStart,changeKey,isCancelled"}
    listed = [
        (inst, when)
        for page in client.pages(path, params=params, headers={"Prefer": 'outlook.timezone="UTC"'})
        for inst in page.get("value", []) if (when := _instance_slot(inst)) is not None
    ]
    found = {}
    for reservation in reservations:
        slot = slots[reservation.pk]
        best, best_gap = None, None
        for inst, when in listed:
            gap = abs((when - slot).total_seconds())
            if best_gap is None or gap < best_gap:
                best, best_gap = inst, gap
        if best_gap is not None and best_gap < 12 * 3600:
            found[reservation.pk] = best
    return found


def find_instance(client: GraphClient, mailbox: str, master_id: str, reservation: Reservation) -> dict | None:
    """The series' occurrence for this reservation, by its original slot."""
    return find_instances(client, mailbox, master_id, [reservation]).get(reservation.pk)


def push_occurrence(event: SyncEvent, reservation: Reservation) -> dict:
    """One occurrence changed or cancelled alone: an exception on the series."""
    series = reservation.series
    if event.series_id and event.series_id != series.pk:
        # Recorded before a series-wide time change split the series: the occurrence now belongs
        # to the new series, whose create (and the re-applied exceptions after it) carries it.
        return {"note": f"the occurrence moved to series {series.pk}; nothing to change in the old one"}
    if not series.event_id:
        if event.type == SyncEvent.Type.DELETE:
            return {"note": "series not in Exchange yet"}
        raise PermanentSyncError("The series hasn't reached Exchange; re-process the series' create first.")
    provider = _provider()
    plan, actor = plan_for(event, reservation, reservation.room, provider)
    client = _client(plan, provider, actor, link_mailbox=series.mailbox)
    instance_id = reservation.event_id if reservation.event_id and reservation.event_id != series.event_id else ""
    if not instance_id:
        inst = find_instance(client, series.mailbox, series.event_id, reservation)
        if inst is None:
            if event.type == SyncEvent.Type.DELETE:
                return {"note": "occurrence not found (already cancelled)"}
            raise NotFound(404, "ErrorItemNotFound", "The occurrence was not found in the series.")
        instance_id = inst["id"]
        outcomes.link_instance(reservation, event_id=instance_id, change_key=inst.get("changeKey", ""))
    if event.type == SyncEvent.Type.DELETE and keeps_meeting(event, [reservation]):
        body = release_room_payload(series, plan, attendees=list(reservation.attendees.all()), requested_for=reservation.requested_for)
        event.request_payload = body
        try:
            updated = client.patch(users_path(series.mailbox, "events", instance_id), json=body)
        except NotFound:
            return {"note": "occurrence already gone"}
        outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
        return {"released_room_of_occurrence": instance_id}
    if event.type == SyncEvent.Type.DELETE or reservation.state == State.CANCELLED:
        comment = _comment(event, "This occurrence was cancelled.")
        try:
            client.post(users_path(series.mailbox, "events", instance_id, "cancel"), json={"Comment": comment})
        except NotFound:
            return {"note": "occurrence already gone"}
        return {"cancelled_occurrence": instance_id}
    body = payloads.occurrence_patch(reservation, tz_name=_tz(reservation.room))
    event.request_payload = body
    updated = client.patch(users_path(series.mailbox, "events", instance_id), json=body)
    outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
    return _event_summary(updated)


def is_synced_state(reservation: Reservation) -> bool:
    return reservation.sync_state == SyncState.SYNCED
