"""Personal mode with an employee's own Outlook token, end to end against the emulator:
alice connects Outlook through the emulator's sign-in page, books in the portal, and the
meeting is written to her own calendar with her own token; she changes and cancels it
with her token; a revoked token makes the push fail with "reconnect Outlook" and never
falls back to another identity. Also: every change is pushed with the credential of the
change itself (its actor and channel), not of the original booking."""

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.urls import reverse

from exchange_auth import credentials
from exchange_auth.models import PersonalToken
from exchange_auth.views import redirect_uri
from graph_emulator.testing import EmulatorControl
from reservations import services
from reservations.models import Reservation, State, SyncEvent, SyncState
from tests.calendar_sync.test_push_emulator import answers, meetings
from tests.exchange_auth.conftest import sign_in
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"


@pytest.fixture
def alice_outlook(provider, emulator_server, alice):
    """alice connects her own Outlook account: the authorization-code flow through the emulator."""
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=ALICE)
    location = sign_in(emulator_server, flow["auth_uri"], login=ALICE)
    connection = credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query)))
    return credentials.connect_personal(provider, alice, connection)


@pytest.fixture
def alice_portal(client, alice):
    client.force_login(alice)
    return client


def writes(emulator, mailbox: str = ALICE, *, refused: bool = False) -> list[tuple]:
    """(method, last path segment, whose token) of each write Graph carried out in ``mailbox``'s
    events (a 412 is retried on a fresh change key and not listed); with ``refused``, (method, status)
    of the ones it refused."""
    entries = [e for e in emulator.request_log()["entries"]
               if e["method"] in ("POST", "PATCH", "DELETE") and e["mailbox"] == mailbox and "/events" in e["path"]]
    if refused:
        return [(e["method"], e["status"]) for e in entries if e["status"] >= 400]
    return [(e["method"], e["path"].rsplit("/", 1)[-1], e["user"]) for e in entries if e["status"] < 400]


def form(start: dt.datetime, **extra) -> dict:
    data = {"subject": "Design review", "date": start.date().isoformat(), "start_time": start.strftime("%H:%M"),
            "end_time": (start + dt.timedelta(hours=1)).strftime("%H:%M")}
    data.update(extra)
    return data


def test_alice_books_changes_and_cancels_in_her_own_calendar_with_her_own_token(provider, mode, emulator, emulator_server, alice, alice_outlook, alice_portal, atlas, django_capture_on_commit_callbacks):
    mode("Personal")
    start = days_ahead(3, 10)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_portal.post(reverse("portal:book", args=[atlas.pk]), form(start))
    assert response.status_code == 302, response.content.decode()[:2000]
    r = Reservation.objects.get(subject="Design review")
    assert (r.mailbox, r.organizer, r.sync_mailbox) == (ALICE, ALICE, "user")
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.id == r.event_id and meeting.organizer["address"] == ALICE
    assert [(a["emailAddress"]["address"], a["type"]) for a in meeting.attendees] == [("atlas@contoso.example", "resource")]
    assert writes(emulator) == [("POST", "events", ALICE)]  # alice's token, nobody else's
    assert answers(r).state == State.CONFIRMED

    later = start + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_portal.post(reverse("portal:change", args=[r.pk]), form(later, subject="Design review (moved)"))
    assert response.status_code == 302, response.content.decode()[:2000]
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.subject == "Design review (moved)" and meeting.start == later

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_portal.post(reverse("portal:cancel", args=[r.pk]), {"reason": "Done", "cancel_meeting": "on"})
    assert response.status_code == 302
    r.refresh_from_db()
    assert r.state == State.CANCELLED and r.sync_state == SyncState.SYNCED
    assert meetings(emulator_server, ALICE) == []
    assert writes(emulator) == [("POST", "events", ALICE), ("PATCH", r.event_id, ALICE), ("POST", "cancel", ALICE)]


def test_a_revoked_token_fails_the_push_with_reconnect_outlook_and_never_uses_another_identity(provider, mode, emulator, emulator_server, alice, alice_outlook, atlas, django_capture_on_commit_callbacks):
    mode("Personal")
    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(4, 10), end=days_ahead(4, 11), subject="Sync", source="portal")
    r.refresh_from_db()
    assert r.event_id and r.sync_state == SyncState.SYNCED
    EmulatorControl(emulator_server.base_url, emulator_server.ca_path).revoke_consent(ALICE, "wsd-demo-client")
    emulator.clear_request_log()

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_update(actor=alice, reservation=r, subject="Sync (renamed)", source="portal")

    event = r.sync_events.order_by("-pk").first()
    r.refresh_from_db()
    assert event.state == SyncEvent.State.ERROR  # permanent: retrying can't help, only reconnecting
    assert "reconnect Outlook" in event.error
    assert r.sync_state == SyncState.ERROR and "reconnect Outlook" in r.sync_error
    assert PersonalToken.objects.get(user=alice).needs_reconnect
    # Graph refused alice's old token once; nothing else was tried in her calendar.
    assert writes(emulator, refused=True) == [("PATCH", 401)]
    assert writes(emulator) == []
    [meeting] = meetings(emulator_server, ALICE)
    assert meeting.subject == "Sync"


# --- the credential of the change, not of the booking (SPEC §3) --------------------------------------


def test_the_sync_event_names_who_acted_and_through_which_channel(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(5, 10), end=days_ahead(5, 11), subject="Sync", source="portal")
        services.reservation_update(actor=alice, reservation=r, subject="Sync 2", source="rest_api", subsource="sn_wsd_rest_api")
        services.reservation_cancel(actor=alice, reservation=r, source="mobile")
    create, update, delete = r.sync_events.order_by("pk")
    assert {k: create.details[k] for k in ("actor_id", "source", "subsource", "system")} == {"actor_id": alice.pk, "source": "portal", "subsource": "", "system": False}
    assert {k: update.details[k] for k in ("actor_id", "source", "subsource")} == {"actor_id": alice.pk, "source": "rest_api", "subsource": "sn_wsd_rest_api"}
    assert {k: delete.details[k] for k in ("actor_id", "source", "subsource")} == {"actor_id": alice.pk, "source": "mobile", "subsource": ""}


def test_a_portal_change_of_an_api_booking_is_written_with_alices_own_token(provider, mode, emulator, emulator_server, alice, alice_outlook, atlas, django_capture_on_commit_callbacks):
    """Booked through the REST API (system credential, in alice's calendar); changed by alice in
    the portal: Personal mode writes that change with her own token."""
    mode("Personal")
    with django_capture_on_commit_callbacks(execute=True):
        r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(6, 10), end=days_ahead(6, 11), subject="API booking",
                                        source="rest_api", subsource="sn_wsd_rest_api")
    r.refresh_from_db()
    assert (r.mailbox, r.sync_mailbox) == (ALICE, "user")

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_update(actor=alice, reservation=r, subject="Changed in the portal", source="portal")
    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_cancel(actor=alice, reservation=r, source="portal")

    assert writes(emulator) == [("POST", "events", None), ("PATCH", r.event_id, ALICE), ("POST", "cancel", ALICE)]
    assert meetings(emulator_server, ALICE) == []
