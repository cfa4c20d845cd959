"""Fixtures and helpers for the inbound sync tests: Outlook users acting in the emulator,
the product's webhook served by ``live_server`` and subscriptions on the room mailboxes."""

from __future__ import annotations

import datetime as dt

import pytest

from calendar_sync.common.clients import system_client
from calendar_sync.inbound import tasks as inbound_tasks
from exchange_auth.graph import users_path
from reservations.models import Reservation
from tests.waiting import wait_for  # noqa: F401 - re-exported for the tests

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
ATLAS = "atlas@contoso.example"
BOREALIS = "borealis@contoso.example"


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


@pytest.fixture(name="subscribed")
def subscribed_fixture(settings, live_server, provider, atlas):
    """The webhook is live and Atlas' mailbox is subscribed (handshake done by the emulator)."""
    settings.PUBLIC_BASE_URL = live_server.url
    counts = inbound_tasks.subscriptions_ensure(provider=provider)
    assert counts["created"] >= 1, counts
    return provider
