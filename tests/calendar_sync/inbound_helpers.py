"""Helpers for the inbound sync tests: Outlook users acting in the emulator, what the room
and organizer mailboxes hold, and what the product did about it. The fixtures that make the
webhook live and subscribe (``subscribed``, ``listening``) are in tests/calendar_sync/conftest.py."""

from __future__ import annotations

import datetime as dt

from calendar_sync.common.clients import system_client
from calendar_sync.inbound import delta
from calendar_sync.models import MailboxDeltaState, RoomEvent, Subscription, WebhookNotification
from exchange_auth.graph import users_path
from reservations.models import Attendee, Reservation, SyncEvent
from tests.booking import book

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
ATLAS = "atlas@contoso.example"
BOREALIS = "borealis@contoso.example"
ORGANIZER = "reservations@contoso.example"  # the demo provider's organizer account and delegated user


def graph_time(moment: dt.datetime) -> dict:
    return {"dateTime": moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def outlook_meeting(emulator, organizer: str, rooms: list[str], start: dt.datetime, *, hours: float = 1, subject: str = "Outlook meeting",
                    people: tuple[str, ...] = ()) -> dict:
    """``organizer`` books in Outlook: a meeting with the rooms as resource attendees."""
    attendees = [{"emailAddress": {"address": r}, "type": "resource"} for r in rooms]
    attendees += [{"emailAddress": {"address": p}, "type": "required"} for p in people]
    return emulator.create_event_as(organizer, {
        "subject": subject, "start": graph_time(start), "end": graph_time(start + dt.timedelta(hours=hours)), "attendees": attendees,
    })


def outlook_update(provider, mailbox: str, event_id: str, **fields) -> dict:
    """The organizer edits the meeting in Outlook (here: Graph with the app credential)."""
    body = {}
    if "start" in fields:
        body["start"] = graph_time(fields["start"])
        body["end"] = graph_time(fields["end"])
    if "subject" in fields:
        body["subject"] = fields["subject"]
    return system_client(provider).patch(users_path(mailbox, "events", event_id), json=body)


def outlook_cancel(provider, mailbox: str, event_id: str) -> None:
    system_client(provider).post(users_path(mailbox, "events", event_id, "cancel"), json={"Comment": "Not needed any more"})


def room_copies(srv, room: str) -> list:
    def read():
        user = srv.store.find_user(room)
        return [e for e in srv.store.mailboxes[user.id].events.values() if not e.is_cancelled]

    return srv.call(read)


def room_response(srv, organizer: str, ical_uid: str, room: str = ATLAS) -> str:
    def read():
        user = srv.store.find_user(organizer)
        for e in srv.store.mailboxes[user.id].events.values():
            if e.ical_uid == ical_uid:
                for a in e.attendees:
                    if a["emailAddress"]["address"].lower() == room:
                        return a["status"]["response"]
        return "gone"

    return srv.call(read)


def outlook_reservations(**filters):
    return list(Reservation.objects.filter(source="outlook", **filters).order_by("start"))


def run_nightly(mailbox: str = ATLAS) -> dict:
    """The nightly pass's round of one mailbox: a full pull of the sync window, waiting for a
    real-time pull still in flight as the nightly pass does (calendar_sync/inbound/nightly.py)."""
    return delta.pull_mailbox(mailbox, full=True, nightly=True, wait=60).stats


def full_syncs(mailbox: str) -> int:
    return MailboxDeltaState.objects.get(mailbox=mailbox).full_syncs


def echoed(mailbox: str, **filters) -> bool:
    """The product's own meeting echoed back on ``mailbox`` (a ``RoomEvent`` of outcome echo
    matching ``filters``). A pull that ran while the push was still in flight deferred the copy;
    in production the worker re-checks it shortly (``recheck_deferred``, queued by the pull),
    which inline (eager) tasks never queue: this does it, as the worker would."""
    delta.recheck_deferred(mailbox)
    return RoomEvent.objects.filter(mailbox=mailbox, outcome="echo", **filters).exists()


def settled(*mailboxes: str) -> bool:
    """Every notification received so far was answered by a pull."""
    return not WebhookNotification.objects.filter(mailbox__in=mailboxes, state=WebhookNotification.State.RECEIVED).exists()


def pushed_types(r: Reservation) -> list[str]:
    return list(SyncEvent.objects.filter(reservation=r).order_by("id").values_list("type", flat=True))


def answer(r: Reservation, email: str = BOB) -> str:
    return Attendee.objects.get(reservation=r, email=email).response


def bobs_copy_exists(emulator_server, ical_uid: str) -> bool:
    def read():
        user = emulator_server.store.find_user(BOB)
        return emulator_server.store.find_by_ical(user.id, ical_uid) is not None

    return emulator_server.call(read)


def strict_booking(actor, room, start, **fields) -> Reservation:
    """A portal booking in Strict mode, Bob invited; its push runs at once (eager Celery, after commit)."""
    r = book(actor=actor, room=room, start=start, attendees=[{"email": BOB}], confirmed=True, **fields)
    assert (r.mailbox, r.sync_mailbox) == (ORGANIZER, "other")
    return r


def organizer_subscription() -> Subscription:
    return Subscription.objects.get(mailbox=ORGANIZER, status="active")
