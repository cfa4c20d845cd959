"""Pushes of one reservation (not a series): create, update, cancel (SPEC §4 "Outbound").

One Graph call for the common cases: a create is one POST with a deterministic
``transactionId``; an update one PATCH with ``If-Match``; a cancel one POST ``/cancel``,
or, for a meeting made in Outlook, the room's ``/decline`` (the product never cancels
someone else's meeting). Each returns a summary stored on the sync event, or a
``PushResult`` when the push made a meeting: the worker records its link and the room's
answer with the event's end, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exchange_auth.graph import AccessDenied, GraphError, users_path
from exchange_auth.modes import Credential, SyncPlan, fallback_plan
from reservations import fastpaths, rules
from reservations.models import Origin, Reservation, State, SyncEvent
from reservations.outbox import SyncEventDetails
from reservations.services import ExchangeIds
from workplace.models import Room

from ..common import meetings, outcomes
from ..common.answers import answer_in, apply_room_answer
from ..common.clients import mailbox_client, mailbox_reach, system_plan
from ..common.plan import (
    PermanentSyncError,
    client_for_plan,
    linked_plan,
    plan_for,
    provider,
    timezone_of,
)
from . import payloads

PENDING_ANSWER = "pending"


@dataclass
class PushResult:
    """A push that made a meeting: what the worker records with the event's end."""

    response: dict  # stored on the sync event
    link: ExchangeIds | None = None  # where the meeting lives
    answer: str = ""  # the room's answer the response carried ("" none yet)

    @property
    def awaiting_answer(self) -> bool:
        return self.response.get("room_answer") == PENDING_ANSWER


def summary(body: dict | None, *, answer: str | None = None) -> dict:
    """What the sync event keeps of Graph's answer (ids, attendees: what admins look at)."""
    body = body or {}
    kept = {k: body.get(k) for k in ("id", "changeKey", "iCalUId", "organizer", "attendees", "webLink") if k in body}
    if answer is not None:
        kept["room_answer"] = answer
    return kept


def comment(event: SyncEvent, default: str) -> str:
    """The cancellation's comment to attendees: the reason the person gave, if any."""
    return SyncEventDetails.of(event).reason or default


def room_answer(reservation: Reservation, graph_event: dict, *, plan_organizer_is_room: bool | None = None) -> str:
    """Apply the room's answer if the response carries it; ``PENDING_ANSWER`` while the
    reservation still waits for it ("" when it waits for nothing)."""
    answer = apply_room_answer(reservation, graph_event, plan_organizer_is_room=plan_organizer_is_room)
    if answer in ("accepted", "declined"):
        return answer
    return PENDING_ANSWER if reservation.state == State.AWAITING_CONFIRMATION else ""


# --- create ---------------------------------------------------------------------------------


def push_create(event: SyncEvent, reservation: Reservation) -> dict | PushResult:
    if reservation.event_id:
        return {"note": "already linked", "event_id": reservation.event_id}
    if reservation.state in (State.CANCELLED, State.REJECTED) or reservation.origin == Origin.EXCHANGE:
        return {"note": f"not created: reservation is {reservation.state}, origin {reservation.origin}"}
    active = provider(reservation.room)
    plan, actor = plan_for(event, reservation, reservation.room, active)
    return _create_meeting(event, reservation, plan, active, actor)


def _create_meeting(event: SyncEvent, reservation: Reservation, plan: SyncPlan, active, actor) -> PushResult:
    """One POST (``post_create``: with a credential that can write where the plan says, else
    the mode table's fallback). Its link and the room's answer (when the response carries
    it) are recorded by the worker with the event's end (``reservation_record_push``: one
    transaction)."""
    tz_name = timezone_of(reservation.room)
    created, plan, why = post_create(
        event, plan, active, actor,
        lambda p: payloads.create_payload(reservation, p, tz_name=tz_name, sync_event_id=event.pk),
    )
    link = created_link(created, plan)
    answer = answer_in(reservation, created, plan_organizer_is_room=plan.organizer_is_room)
    pending = answer in ("", "tentative") and reservation.state == State.AWAITING_CONFIRMATION
    return PushResult({**summary(created, answer=PENDING_ANSWER if pending else answer), **why}, link=link, answer=answer)


def post_create(event: SyncEvent, plan: SyncPlan, active, actor, make_body: Callable[[SyncPlan], dict]) -> tuple[dict, SyncPlan, dict]:
    """POST a new meeting into the plan's mailbox; return Graph's answer, the plan it was made
    with and why that credential (kept on the sync event).

    1. The system credential is chosen per mailbox (``mailbox_reach``): the delegated user in
       its own mailbox and the rooms it is a delegate of, app-only elsewhere; a credential
       Graph refuses (403) gives way to the next one;
    2. where none can write into an employee's calendar, the mode table's fallback
       (``modes.fallback_plan``): the organizer account organizes, the employee is invited;
    3. a personal token is never swapped for another identity (SPEC §3): its 403 stands."""
    current, notes = plan, []
    while True:
        if current.credential == Credential.SYSTEM:
            reach = mailbox_reach(active, current.mailbox)
            candidates: tuple[str | None, ...] = reach.credentials
            notes.append(f"{current.mailbox}: {reach.why}")
        else:
            candidates = (None,)
        refused: AccessDenied | None = None
        for credential in candidates:
            body = make_body(current)
            event.request_payload = body
            fastpaths.update_row(SyncEvent, event.pk, {"request_payload": body})
            client = client_for_plan(current, active, actor) if credential is None else mailbox_client(active, current.mailbox, credential)
            try:
                # A second attempt, or an admin's re-process of one that failed: the last may have landed.
                created, found = create_once(client, current.mailbox, body, retried=event.attempts > 1 or bool(event.error))
            except AccessDenied as exc:
                refused = exc
                notes.append(f"{credential} refused by Graph on {current.mailbox} ({exc.status} {exc.code})")
                continue
            why = {"credential": credential or str(current.credential), "credential_why": "; ".join(notes)}
            if found:
                why["found_by_transaction_id"] = body.get("transactionId", "")
                # The meeting is what an earlier attempt sent (maybe an older version of the
                # reservation), not this body: the next update's diff must not trust it.
                event.request_payload = {"transactionId": body.get("transactionId", ""), "found": "fields as an earlier attempt wrote them"}
                SyncEvent.objects.filter(pk=event.pk).update(request_payload=event.request_payload)
            if current is not plan:
                why["fallback"] = (
                    f"No credential could write to {plan.mailbox}'s calendar: the organizer account {current.organizer} "
                    f"organizes the meeting and {plan.mailbox} is invited."
                )
            return created, current, why
        fallback = fallback_plan(current, active.accounts) if current is plan else None
        if fallback is None:
            error = refused or PermanentSyncError(f"No credential can write to {notes[-1]}.", cause=f"no-credential:{current.sync_mailbox}")
            error.mailbox = current.mailbox  # the admins' alert names it
            raise error
        current = fallback


SETTLE_SECONDS = 2.0  # before looking a create up: a POST that timed out may still be landing


def may_have_landed(error: GraphError) -> bool:
    """No answer, or a 5xx other than 503: Graph may have made the meeting all the same.
    (429 and 503 say the request was not processed.)"""
    return error.status == 0 or (error.status >= 500 and error.status != 503)


def create_once(client, mailbox: str, body: dict, *, retried: bool) -> tuple[dict, bool]:
    """POST a new meeting so that a retry never makes a second one (SPEC §4); return the event
    and whether it was found rather than made.

    Graph documents ``transactionId`` only as avoiding redundant POSTs — not what a repeat
    gets — so a POST that may have landed (``may_have_landed``: the client's own retries are
    off for it) is looked up by its ``transactionId`` before it is sent again or the push
    gives up; so is a create the worker retries (the last push may have died after Graph
    made it). Throttling (429/503) is retried after Retry-After; a 4xx is Graph's answer."""
    txn = body.get("transactionId") or ""
    if retried and txn:
        found = meetings.by_transaction_id(client, mailbox, txn)
        if found:
            return found, True
    attempt = 0
    while True:
        attempt += 1
        try:
            return client.post(users_path(mailbox, "events"), json=body, attempts=1), False
        except GraphError as exc:
            landed = may_have_landed(exc)
            if not (exc.transient or landed):
                raise
            if landed and txn:
                client.pause(max(SETTLE_SECONDS, min(exc.retry_after or 0.0, client.max_retry_after)), reason="create_settle")
                found = meetings.by_transaction_id(client, mailbox, txn)
                if found:
                    return found, True
            if not exc.transient or attempt >= client.max_attempts:
                raise
            if not landed:
                client.pause(client.backoff(attempt, exc.retry_after), reason="retry_after" if exc.retry_after is not None else "backoff")


def created_link(created: dict, plan: SyncPlan) -> ExchangeIds:
    """Where the meeting Graph just made lives (the organizer's copy)."""
    return ExchangeIds(
        event_id=created["id"], change_key=created.get("changeKey", ""), ical_uid=created.get("iCalUId", ""),
        mailbox=plan.mailbox.lower(), organizer=(plan.organizer or "").lower(), sync_mailbox=plan.sync_mailbox,
        online_meeting_url=(created.get("onlineMeeting") or {}).get("joinUrl") or "",
    )


# --- update ---------------------------------------------------------------------------------


def push_update(event: SyncEvent, reservation: Reservation) -> dict | PushResult:
    if reservation.origin == Origin.EXCHANGE:
        return {"note": "Outlook-origin meetings are not edited from the product"}
    if reservation.state == State.CANCELLED:
        return {"note": "reservation cancelled; its delete event cancels the meeting"}
    active = provider(reservation.room)
    plan, actor = plan_for(event, reservation, reservation.room, active)
    if not reservation.event_id:
        # The create never reached Exchange (error, or a crash before the link was stored): this update creates it.
        return _create_meeting(event, reservation, plan, active, actor)
    previous_room_id = SyncEventDetails.of(event).previous_room_id
    room_changed = bool(previous_room_id) and previous_room_id != reservation.room_id
    previous_room = Room.objects.filter(pk=previous_room_id).first() if room_changed else None
    old_room_organized = previous_room is not None and previous_room.mailbox and previous_room.mailbox.lower() == reservation.organizer.lower()
    if room_changed and (old_room_organized or plan.organizer_is_room or _organizer_changes(previous_room, reservation, plan)):
        # Room mailboxes organize: cancel the old room's meeting, the new room organizes a new one.
        # So too for a move between a room without a mailbox (the organizer account's meeting)
        # and one with a mailbox, where SPEC §3 names another organizer.
        old_client = client_for_plan(system_plan(reservation.mailbox), active, None)
        meetings.cancel(old_client, reservation.mailbox, reservation.event_id, f"Moved to {reservation.room.name}.")
        outcomes.unlink_exchange(reservation)
        result = _create_meeting(event, reservation, plan, active, actor)
        result.response = {"cancelled_previous": True, **result.response}
        return result
    desired = payloads.event_payload(reservation, plan, tz_name=timezone_of(reservation.room))
    # The meeting keeps its organizer: recompute attendees against the linked organizer.
    desired["attendees"] = payloads.attendees_for(
        room=reservation.room, requested_for=reservation.requested_for, attendees=list(reservation.attendees.all()),
        plan=linked_plan(reservation, plan),
    )
    # Only what changed since the last push: each PATCH of a meeting property mails every attendee.
    body = payloads.changed_fields(desired, payloads.pushed_state(pushed_payloads(reservation, event)))
    event.request_payload = body
    SyncEvent.objects.filter(pk=event.pk).update(request_payload=body)
    if not body:
        return {"note": "nothing the meeting shows changed: no update sent"}
    client = client_for_plan(plan, active, actor, link_mailbox=reservation.mailbox)
    updated = meetings.patch(client, reservation.mailbox, reservation.event_id, reservation.change_key, body)
    if updated is None:
        # The meeting vanished in Exchange: the room no longer holds it.
        outcomes.mark_conflicted(reservation, "The meeting no longer exists in Exchange.")
        return {"note": "meeting missing in Exchange"}
    outcomes.set_change_key(reservation, updated.get("changeKey", ""))
    if room_changed and reservation.state == State.AWAITING_CONFIRMATION:
        return summary(updated, answer=room_answer(reservation, updated))
    return summary(updated)


def pushed_payloads(reservation: Reservation, event: SyncEvent) -> list:
    """What the earlier pushes of this reservation sent, oldest first (``payloads.pushed_state``)."""
    return list(
        SyncEvent.objects.filter(
            reservation=reservation, state=SyncEvent.State.PROCESSED, type__in=[SyncEvent.Type.CREATE, SyncEvent.Type.UPDATE], pk__lt=event.pk,
        ).order_by("pk").values_list("request_payload", flat=True)
    )


def _organizer_changes(previous_room: Room | None, reservation: Reservation, plan: SyncPlan) -> bool:
    """A move from a room without a mailbox to one with one (or back) whose plan names another
    organizer than the meeting's: the meeting can't change organizer, so a new one is made.
    Between two rooms without a mailbox the organizer account's meeting is kept (the seed:
    "The meeting in Exchange is retained when changing to a different room")."""
    if previous_room is None or bool(previous_room.mailbox) == bool(reservation.room.mailbox):
        return False
    return bool(reservation.organizer) and reservation.organizer.lower() != (plan.organizer or "").lower()


# --- cancel ---------------------------------------------------------------------------------


def keeps_meeting(event: SyncEvent, reservations) -> bool:
    """The person unticked "also cancel the meeting on people's calendars", and the product may
    choose for these reservations (not a room-organizer meeting, not one created in Outlook:
    the same rule the portal used to offer the choice)."""
    return SyncEventDetails.of(event).cancel_meeting is False and rules.offer_cancel_meeting_choice(reservations)


def release_room_payload(target, plan: SyncPlan, *, attendees, requested_for) -> dict:
    """The meeting without its room: the room leaves the attendees (Exchange tells it, and it
    frees its calendar) and the location is cleared; everyone else keeps the meeting."""
    room_mailbox = (target.room.mailbox or "").lower()
    kept = [
        a for a in payloads.attendees_for(room=target.room, requested_for=requested_for, attendees=attendees, plan=linked_plan(target, plan))
        if (a["emailAddress"]["address"] or "").lower() != room_mailbox
    ]
    return {"attendees": kept, "location": {"displayName": "", "locationType": "default"}, "locations": []}


def push_cancel(event: SyncEvent, reservation: Reservation) -> dict:
    if not reservation.event_id and reservation.origin != Origin.EXCHANGE:
        return {"note": "no meeting in Exchange"}
    active = provider(reservation.room)
    text = comment(event, "The room reservation was cancelled.")
    if reservation.origin == Origin.EXCHANGE:
        return _room_declines(reservation, active, text)
    plan, actor = plan_for(event, reservation, reservation.room, active)
    client = client_for_plan(plan, active, actor, link_mailbox=reservation.mailbox)
    if keeps_meeting(event, [reservation]):
        body = release_room_payload(reservation, plan, attendees=list(reservation.attendees.all()), requested_for=reservation.requested_for)
        event.request_payload = body
        updated = meetings.patch(client, reservation.mailbox, reservation.event_id, reservation.change_key, body)
        if updated is None:
            return {"note": "meeting already gone"}
        outcomes.set_change_key(reservation, updated.get("changeKey", ""))
        return {"released_room": reservation.event_id, **summary(updated)}
    if not meetings.cancel(client, reservation.mailbox, reservation.event_id, text):
        return {"note": "meeting already gone"}
    return {"cancelled": reservation.event_id}


def _room_declines(reservation: Reservation, active, text: str) -> dict:
    """An Outlook-origin meeting: the room declines it (the organizer is told) instead of
    the product cancelling someone else's meeting."""
    room_mailbox = reservation.room.mailbox.lower()
    client = client_for_plan(system_plan(room_mailbox), active, None)
    copy_id = reservation.event_id if reservation.mailbox.lower() == room_mailbox else ""
    if not copy_id and reservation.ical_uid:
        found = meetings.by_ical_uid(client, room_mailbox, reservation.ical_uid, select="id")
        copy_id = found[0]["id"] if found else ""
    if not copy_id:
        return {"note": "the room holds no copy of the meeting"}
    if not meetings.decline(client, room_mailbox, copy_id, text):
        return {"note": "the room's copy is already gone"}
    return {"declined": copy_id}
