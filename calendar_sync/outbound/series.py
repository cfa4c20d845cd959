"""Pushes of a reservation series and of its occurrences (SPEC §4 "Outbound", recurring).

A series is one recurring meeting in Exchange (its master); an occurrence changed or
cancelled alone becomes an exception of it, found by its original slot in one
``/instances`` listing. A series-wide time change reschedules the master (Exchange
regenerates the occurrences); a series that has begun is split: the old half ends the
day before (``_end_series``), so what is over stays on people's calendars."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from exchange_auth.graph import GraphClient, NotFound, users_path
from exchange_auth.modes import SyncPlan
from reservations.models import (
    ACTIVE_STATES,
    Origin,
    Reservation,
    ReservationSeries,
    State,
    SyncEvent,
)
from reservations.outbox import SyncEventDetails

from ..common import meetings, outcomes
from ..common.answers import room_answer_in
from ..common.clients import system_plan
from ..common.plan import (
    PermanentSyncError,
    client_for_plan,
    linked_plan,
    plan_for,
    provider,
    timezone_of,
)
from . import payloads
from .single import (
    PENDING_ANSWER,
    PushResult,
    comment,
    created_link,
    keeps_meeting,
    post_create,
    release_room_payload,
    summary,
)


def _series_reference(series: ReservationSeries, event: SyncEvent | None = None) -> Reservation | None:
    """The occurrence whose values stand for the series: the first one the change touched
    (a series-wide change writes the same values to every upcoming occurrence), else the
    first upcoming active one, else the first."""
    rows = series.occurrences.select_related("requested_for").prefetch_related("attendees").order_by("start", "id")
    ids = SyncEventDetails.of(event).reservation_ids if event is not None else ()
    return (
        (rows.filter(pk__in=ids).first() if ids else None)
        or rows.filter(state__in=ACTIVE_STATES, end__gt=timezone.now()).first()
        or rows.first()
    )


def _series_attendees(series: ReservationSeries, event: SyncEvent | None = None):
    reference = _series_reference(series, event)
    return (list(reference.attendees.all()) if reference else []), (reference.body if reference else "")


def push_series_create(event: SyncEvent, series: ReservationSeries) -> dict | PushResult:
    if series.event_id:
        return {"note": "already linked", "event_id": series.event_id}
    active = provider(series.room)
    plan, actor = plan_for(event, series, series.room, active)
    attendees, body_text = _series_attendees(series)
    created, plan, why = post_create(
        event, plan, active, actor,
        lambda p: payloads.series_create_payload(series, p, room=series.room, attendees=attendees, sync_event_id=event.pk, body=body_text),
    )
    # The master's link, the meeting's home on every occurrence (their own instance ids are
    # looked up when one changes) and the room's answer on the waiting ones: recorded by the
    # worker with the event's end (``series_record_push``: one transaction).
    answer = room_answer_in(series.room, created, organizer_is_room=plan.organizer_is_room)
    waiting = answer in ("", "tentative") and series.occurrences.filter(state=State.AWAITING_CONFIRMATION).exists()
    return PushResult({**summary(created, answer=PENDING_ANSWER if waiting else answer or None), **why}, link=created_link(created, plan), answer=answer)


def push_series_update(event: SyncEvent, series: ReservationSeries) -> dict:
    """A series-wide change: subject, body, location, attendees and the pattern on the master.

    A time change (``details["reschedules"]``) reschedules the master: Exchange regenerates
    its occurrences, so the occurrences' own instance ids and the copies recorded for them
    are forgotten (the occurrence events queued behind this one re-apply what deviates).
    ``details["action"] == "end"``: the series was split, its rest moved to a new series
    (``_end_series``)."""
    if series.origin == Origin.EXCHANGE:
        return {"note": "Outlook-origin meetings are not edited from the product"}
    if SyncEventDetails.of(event).action == "end":
        return _end_series(event, series)
    if not series.event_id:
        return push_series_create(event, series)
    active = provider(series.room)
    plan, actor = plan_for(event, series, series.room, active)
    attendees, body_text = _series_attendees(series, event)
    reference = _series_reference(series, event)
    body = {"subject": series.subject, "body": payloads.text_body(body_text), "recurrence": payloads.recurrence_for(series),
            "start": payloads.graph_time(series.first_start, series.timezone), "end": payloads.graph_time(series.first_end, series.timezone),
            "location": payloads.location_for(series.room), "locations": [payloads.location_for(series.room)],
            # The meeting keeps its organizer: attendees are worked out against the linked one.
            "attendees": payloads.attendees_for(
                room=series.room, requested_for=reference.requested_for if reference else series.requested_for,
                attendees=attendees, plan=linked_plan(series, plan),
            )}
    # Only what changed since the last push: each PATCH of a meeting property mails every attendee.
    body = payloads.changed_fields(body, payloads.pushed_state(_pushed_series_payloads(series, event)))
    event.request_payload = body
    if not body:
        return {"note": "nothing the meeting shows changed: no update sent"}
    client = client_for_plan(plan, active, actor, link_mailbox=series.mailbox)
    updated = meetings.patch(client, series.mailbox, series.event_id, series.change_key, body)
    if updated is None:
        return {"note": "meeting already gone"}
    outcomes.set_change_key(series, updated.get("changeKey", ""))
    if SyncEventDetails.of(event).reschedules:
        outcomes.unlink_instances(series)
        outcomes.forget_copies(series.occurrences.values_list("pk", flat=True))
    return summary(updated)


def _pushed_series_payloads(series: ReservationSeries, event: SyncEvent) -> list:
    """What the earlier pushes of the series' master sent, oldest first (``payloads.pushed_state``)."""
    return list(
        SyncEvent.objects.filter(
            series=series, reservation__isnull=True, state=SyncEvent.State.PROCESSED,
            type__in=[SyncEvent.Type.CREATE, SyncEvent.Type.UPDATE], pk__lt=event.pk,
        ).order_by("pk").values_list("request_payload", flat=True)
    )


def _end_series(event: SyncEvent, series: ReservationSeries) -> dict:
    """The old half of a split series: its pattern ends on ``details["ends_on"]`` (the day
    before the first moved occurrence), so what is over stays on people's calendars. The
    occurrences that moved to the new series are no longer this meeting's: the copies
    recorded for them (the old meeting's occurrences, which Exchange now removes) are
    forgotten, so the inbound pull doesn't take their removal for a cancellation."""
    if not series.event_id:
        return {"note": "no meeting in Exchange"}
    details = SyncEventDetails.of(event)
    end_date = details.ends_on
    active = provider(series.room)
    plan, actor = plan_for(event, series, series.room, active)
    client = client_for_plan(plan, active, actor, link_mailbox=series.mailbox)
    body = {"recurrence": payloads.recurrence_ending(series, end_date)}
    event.request_payload = body
    updated = meetings.patch(client, series.mailbox, series.event_id, series.change_key, body)
    outcomes.forget_copies(details.moved_reservation_ids)
    if updated is None:
        return {"note": "meeting already gone"}
    outcomes.set_change_key(series, updated.get("changeKey", ""))
    return {"ended_series_on": end_date.isoformat(), **summary(updated)}


def _first_cancelled(event: SyncEvent, series: ReservationSeries) -> Reservation | None:
    ids = SyncEventDetails.of(event).reservation_ids
    return Reservation.objects.filter(series=series, pk__in=ids).order_by("start", "id").first() if ids else None


def _has_begun(series: ReservationSeries, first: Reservation, cancelled_ids) -> bool:
    """Occurrences before the first cancelled one stay (they are over, or were kept)."""
    return series.occurrences.filter(start__lt=first.start).exclude(pk__in=cancelled_ids).exclude(state=State.CANCELLED).exists()


def _room_declines_series(event: SyncEvent, series: ReservationSeries, rows: list[Reservation] | None = None) -> dict:
    """A series made in Outlook, cancelled in the product: someone else's meeting, so the room
    declines rather than the product cancelling it (as for a single Outlook meeting,
    ``single._room_declines``): the whole series on its master's copy when nothing of it stays
    booked, else each cancelled occurrence on its own copy (an answer to an occurrence's id is
    that occurrence's alone: https://learn.microsoft.com/en-us/graph/api/event-decline?view=graph-rest-1.0)."""
    active = provider(series.room)
    client = client_for_plan(system_plan(series.room.mailbox.lower()), active, None)
    text = comment(event, "The room reservation was cancelled.")
    if rows is None and not series.occurrences.filter(state__in=ACTIVE_STATES, end__gt=timezone.now()).exists():
        declined = meetings.decline(client, series.room.mailbox, series.event_id, text)
        return {"declined": series.event_id} if declined else {"note": "the room's copy is already gone"}
    if rows is None:
        rows = list(Reservation.objects.filter(series=series, pk__in=SyncEventDetails.of(event).reservation_ids))
    return {"declined": [row.event_id for row in rows if row.event_id and meetings.decline(client, series.room.mailbox, row.event_id, text)]}


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
    if series.origin == Origin.EXCHANGE:
        return _room_declines_series(event, series)
    active = provider(series.room)
    plan, actor = plan_for(event, series, series.room, active)
    client = client_for_plan(plan, active, actor, link_mailbox=series.mailbox)
    cancelled_ids = SyncEventDetails.of(event).reservation_ids
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
        updated = meetings.patch(client, series.mailbox, series.event_id, series.change_key, body)
        if updated is None:
            return {"note": "meeting already gone"}
        outcomes.set_change_key(series, updated.get("changeKey", ""))
        return {"released_room": series.event_id, **summary(updated)}
    if first is not None:
        slot = first.original_start or first.start
        if has_begun:
            end_date = slot.astimezone(ZoneInfo(series.timezone)).date() - timedelta(days=1)
            body = {"recurrence": payloads.recurrence_ending(series, end_date)}
            event.request_payload = body
            updated = meetings.patch(client, series.mailbox, series.event_id, series.change_key, body)
            if updated is None:
                return {"note": "meeting already gone"}
            outcomes.set_change_key(series, updated.get("changeKey", ""))
            return {"ended_series_on": end_date.isoformat(), **summary(updated)}
    if not meetings.cancel(client, series.mailbox, series.event_id, comment(event, "The recurring room reservation was cancelled.")):
        return {"note": "meeting already gone"}
    return {"cancelled": series.event_id}


def _release_room_from_occurrences(event: SyncEvent, series: ReservationSeries, client: GraphClient, plan: SyncPlan, cancelled_ids) -> dict:
    """The rest of a series that has begun is cancelled and the meeting kept: the room leaves
    each cancelled occurrence alone (an exception of the series: attendees without the room,
    location cleared). Exchange sends the room a cancellation of just those occurrences, so
    its calendar frees them while the occurrences that are over keep the room everywhere.

    Each occurrence is found by its stored instance id, else in one ``/instances`` listing of
    the slots they span; its instance id and change key are stored as a change of that
    occurrence alone stores them. One PATCH per occurrence (``release_occurrence``): about one
    Graph request per occurrence with the listing. An occurrence already gone from the series is
    skipped. A retried event patches the same occurrences again with the same body: harmless."""
    rows = list(
        Reservation.objects.filter(series=series, pk__in=cancelled_ids)
        .select_related("room", "requested_for").prefetch_related("attendees").order_by("start", "id")
    )
    unlinked = [r for r in rows if not r.event_id or r.event_id == series.event_id]
    found = meetings.find_instances(client, series.mailbox, series.event_id, unlinked)
    if found is None:
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
        updated = release_occurrence(client, series.mailbox, instance_id, body)
        if updated is None:
            missing.append(reservation.pk)
            continue
        outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
        released.append(instance_id)
    event.request_payload = {"occurrences": bodies}
    # The master's change key moved with each exception; the series' next PATCH (If-Match) meets a
    # 412 and re-reads it then (``meetings.patch``): not read here, once per push for nothing.
    return {"released_room_of_occurrences": released, "occurrences_not_found": missing}


def release_occurrence(client: GraphClient, mailbox: str, instance_id: str, body: dict) -> dict | None:
    """One PATCH per occurrence, without If-Match. A plain occurrence carries the master's change
    key, which every new exception moves: If-Match on the keys read once would meet a 412 on each
    occurrence after the first (three calls apiece). The body only takes the room off that
    occurrence (the product's decision, whatever else changed), as ``push_occurrence`` releases
    one occurrence."""
    return meetings.patch_plain(client, mailbox, instance_id, body)


def push_occurrence(event: SyncEvent, reservation: Reservation) -> dict:
    """One occurrence changed or cancelled alone: an exception on the series."""
    series = reservation.series
    if event.series_id and event.series_id != series.pk:
        # Recorded before a series-wide time change split the series: the occurrence now belongs
        # to the new series, whose create (and the re-applied exceptions after it) carries it.
        return {"note": f"the occurrence moved to series {series.pk}; nothing to change in the old one"}
    if series.origin == Origin.EXCHANGE:
        # A series made in Outlook: an occurrence cancelled in the product is declined by the
        # room, that occurrence alone (``_room_declines_series``); nothing else is written.
        if event.type != SyncEvent.Type.DELETE:
            return {"note": "Outlook-origin meetings are not edited from the product"}
        return _room_declines_series(event, series, rows=[reservation])
    if not series.event_id:
        if event.type == SyncEvent.Type.DELETE:
            return {"note": "series not in Exchange yet"}
        raise PermanentSyncError("The series hasn't reached Exchange; re-process the series' create first.")
    active = provider(series.room)
    if event.type == SyncEvent.Type.DELETE and Origin.EXCHANGE in (series.origin, reservation.origin):
        return _room_declines_occurrence(event, series, reservation, active)
    plan, actor = plan_for(event, reservation, reservation.room, active)
    client = client_for_plan(plan, active, actor, link_mailbox=series.mailbox)
    instance_id = reservation.event_id if reservation.event_id and reservation.event_id != series.event_id else ""
    if not instance_id:
        found = meetings.find_instances(client, series.mailbox, series.event_id, [reservation])
        if found is None:
            raise NotFound(404, "ErrorItemNotFound", "The series was not found in Exchange.")
        inst = found.get(reservation.pk)
        if inst is None:
            if event.type == SyncEvent.Type.DELETE:
                return {"note": "occurrence not found (already cancelled)"}
            raise NotFound(404, "ErrorItemNotFound", "The occurrence was not found in the series.")
        instance_id = inst["id"]
        outcomes.link_instance(reservation, event_id=instance_id, change_key=inst.get("changeKey", ""))
    if event.type == SyncEvent.Type.DELETE and keeps_meeting(event, [reservation]):
        body = release_room_payload(series, plan, attendees=list(reservation.attendees.all()), requested_for=reservation.requested_for)
        event.request_payload = body
        updated = meetings.patch_plain(client, series.mailbox, instance_id, body)
        if updated is None:
            return {"note": "occurrence already gone"}
        outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
        return {"released_room_of_occurrence": instance_id}
    if event.type == SyncEvent.Type.DELETE or reservation.state == State.CANCELLED:
        if not meetings.cancel(client, series.mailbox, instance_id, comment(event, "This occurrence was cancelled.")):
            return {"note": "occurrence already gone"}
        return {"cancelled_occurrence": instance_id}
    body = payloads.occurrence_patch(reservation, tz_name=timezone_of(reservation.room))
    event.request_payload = body
    updated = client.patch(users_path(series.mailbox, "events", instance_id), json=body)
    outcomes.set_change_key(reservation, (updated or {}).get("changeKey", ""))
    return summary(updated)




def _room_declines_occurrence(event: SyncEvent, series: ReservationSeries, reservation: Reservation, active) -> dict:
    """One occurrence of a series made in Outlook: the room declines that occurrence only (the
    organizer is told; the rest of the series keeps the room). The product never cancels
    someone else's meeting (SPEC §3)."""
    room_mailbox = series.room.mailbox.lower()
    client = client_for_plan(system_plan(room_mailbox), active, None)
    master_id = series.event_id if series.mailbox.lower() == room_mailbox else ""
    if not master_id and series.ical_uid:
        found = meetings.by_ical_uid(client, room_mailbox, series.ical_uid, select="id,type")
        masters = [f for f in found if f.get("type") == "seriesMaster"] or found
        master_id = masters[0]["id"] if masters else ""
    if not master_id:
        return {"note": "the room holds no copy of the series"}
    instances = meetings.find_instances(client, room_mailbox, master_id, [reservation])
    inst = (instances or {}).get(reservation.pk)
    if inst is None:
        return {"note": "the room's occurrence is already gone"}
    if not meetings.decline(client, room_mailbox, inst["id"], comment(event, "The room declined this occurrence.")):
        return {"note": "the room's occurrence is already gone"}
    return {"declined_occurrence": inst["id"]}
