"""Issue 16 item 6: no attendee spam. An update PATCHes only the fields that changed (none
when nothing the meeting shows changed); the emulator counts the meeting messages each
attendee receives (GET /_emulator/messages), following Graph's event-update notes.

Real HTTPS to the emulator, real msal, eager Celery."""

from __future__ import annotations

import datetime as dt

import pytest

from reservations import services
from reservations.models import Reservation, SyncEvent
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ALICE, BOB, CAROL = "alice@contoso.example", "bob@contoso.example", "carol@contoso.example"
ATLAS, BOREALIS = "atlas@contoso.example", "borealis@contoso.example"


def received(emulator) -> dict:
    """{address: {kind: n}} without the zeros, then cleared."""
    got = {address: {k: n for k, n in kinds.items() if n} for address, kinds in emulator.messages().items()}
    emulator.clear_messages()
    return {address: kinds for address, kinds in got.items() if kinds}


def test_each_kind_of_change_mails_only_the_attendees_it_concerns(provider, mode, emulator, alice, bob, atlas, borealis, django_capture_on_commit_callbacks):
    mode("Normal")
    start = days_ahead(2, 10)

    def change(**fields) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=r.pk), **fields)
        assert not SyncEvent.objects.filter(reservation_id=r.pk, state__in=["new", "processing", "error"]).exists()
        return received(emulator)

    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                        attendees=[{"email": BOB, "name": "Bob"}])
    assert received(emulator) == {ATLAS: {"invitation": 1}, BOB: {"invitation": 1}}

    other = atlas.arrangements.create(name="Boardroom")
    assert change(arrangement=other) == {}  # nothing the meeting shows: no PATCH at all
    assert SyncEvent.objects.filter(reservation_id=r.pk).latest("pk").response["note"].startswith("nothing the meeting shows changed")
    assert change(body="Agenda: budget") == {ATLAS: {"update": 1}, BOB: {"update": 1}}
    assert change(subject="Weekly sync") == {ATLAS: {"update": 1}, BOB: {"update": 1}}
    assert change(start=start + dt.timedelta(hours=1), end=start + dt.timedelta(hours=2)) == {ATLAS: {"update": 1}, BOB: {"update": 1}}
    # Attendees alone: only the attendee who changed hears of it.
    assert change(attendees=[{"email": BOB, "name": "Bob"}, {"email": CAROL, "name": "Carol"}]) == {CAROL: {"invitation": 1}}
    assert change(attendees=[{"email": BOB, "name": "Bob"}]) == {CAROL: {"cancellation": 1}}
    # Another room: the location every attendee sees changes.
    assert change(room=borealis) == {ATLAS: {"cancellation": 1}, BOREALIS: {"invitation": 1}, BOB: {"update": 1}}
    last = SyncEvent.objects.filter(reservation_id=r.pk).latest("pk").request_payload
    assert set(last) == {"location", "locations", "attendees"}  # not the subject, body or times again

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=Reservation.objects.get(pk=r.pk))
    assert received(emulator) == {BOREALIS: {"cancellation": 1}, BOB: {"cancellation": 1}}


def test_the_emulator_mails_every_attendee_for_a_patch_carrying_unchanged_meeting_fields(provider, emulator):
    """Graph does not compare: a PATCH that carries a meeting property sends the update even when
    its value is what the meeting had (why the product sends only what changed)."""
    from calendar_sync.common.clients import system_client
    from exchange_auth.graph import users_path

    start = days_ahead(3, 9).astimezone(dt.UTC).replace(tzinfo=None)
    when = {"start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(hours=1)).isoformat(), "timeZone": "UTC"}}
    made = emulator.create_event_as(ALICE, {"subject": "Same", **when, "attendees": [{"emailAddress": {"address": BOB}, "type": "required"}]})
    assert received(emulator) == {BOB: {"invitation": 1}}
    client = system_client(provider)
    client.patch(users_path(ALICE, "events", made["id"]), json={"subject": "Same", **when})
    assert received(emulator) == {BOB: {"update": 1}}
    client.patch(users_path(ALICE, "events", made["id"]), json={"showAs": "busy", "categories": ["x"]})
    assert received(emulator) == {}  # the organizer's own item properties: no message


def test_a_series_wide_change_mails_only_what_changed(provider, mode, emulator, alice, bob, atlas, django_capture_on_commit_callbacks):
    from reservations.recurrence import Recurrence

    mode("Normal")
    start = days_ahead(5, 9)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Stand-up",
                                            attendees=[{"email": BOB, "name": "Bob"}], recurrence=Recurrence("daily", count=3))
    assert received(emulator) == {ATLAS: {"invitation": 1}, BOB: {"invitation": 1}}

    def change(**fields) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=first.pk), scope="series", **fields)
        assert not SyncEvent.objects.filter(state__in=["new", "processing", "error"]).exists()
        return received(emulator)

    assert change(arrangement=atlas.arrangements.create(name="Boardroom")) == {}
    assert change(subject="Daily stand-up") == {ATLAS: {"update": 1}, BOB: {"update": 1}}
    last = SyncEvent.objects.filter(series_id=first.series_id, reservation__isnull=True).latest("pk").request_payload
    assert set(last) == {"subject"}
