"""Issue 18 item 10: one instance, two Microsoft 365 tenants (SPEC §7 "Several providers").

HQ belongs to the default provider (Contoso: the session's emulator), Harbor to Fabrikam (a
second emulator process with its own tenant, directory, app registration and Graph
endpoint; the same CA). Bookings reach each building's own tenant; each tenant's rooms are
subscribed in that tenant, and an Outlook booking there is reconciled against its own
provider. Real HTTPS, real msal, the real webhook (``live_server``), eager Celery."""

from __future__ import annotations

import datetime as dt

import pytest

from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import MailboxDeltaState, Subscription
from exchange_auth.models import CalendarProvider, PersonalToken
from exchange_auth.providers import default_provider, provider_for_room
from graph_emulator.seed import FABRIKAM_CLIENT_ID, FABRIKAM_CLIENT_SECRET
from reservations.exceptions import RuleViolation
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    outlook_meeting,
    outlook_reservations,
    room_copies,
)
from tests.exchange_auth.conftest import callback_path, sign_in
from tests.factories import BuildingFactory, RoomFactory, UserFactory, days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = "alice@contoso.example"
DANA = "dana@fabrikam.example"
HUDSON = "hudson@fabrikam.example"
ATLAS = "atlas@contoso.example"


@pytest.fixture(scope="module")
def fabrikam_server(emulator_server):
    """The Fabrikam tenant's emulator: its own process state and port, the session's CA."""
    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="fabrikam", state_dir=str(emulator_server.state_dir),
                         config={"http_notification_urls": "loopback"})  # the webhook is http://127.0.0.1 here
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fabrikam_control(fabrikam_server):
    from graph_emulator.testing import EmulatorControl

    control = EmulatorControl(fabrikam_server.base_url, fabrikam_server.ca_path)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def fabrikam(fabrikam_control, fabrikam_server, provider):
    base = fabrikam_server.base_url.rstrip("/")
    other = CalendarProvider(
        name="Fabrikam", active=True, tenant_id="fabrikam", client_id=FABRIKAM_CLIENT_ID, authority_host=base,
        graph_base_url=f"{base}/v1.0", delegated_user_email="reservations@fabrikam.example",
        organizer_account="reservations@fabrikam.example",
    )
    other.client_secret = FABRIKAM_CLIENT_SECRET
    other.save()
    return other


@pytest.fixture
def hudson(fabrikam):
    harbor = BuildingFactory(name="Harbor", code="harbor", timezone="America/New_York", calendar_provider=fabrikam)
    return RoomFactory(building=harbor, name="Hudson", capacity=10, mailbox=HUDSON, sync_enabled=True)


@pytest.fixture
def dana(db):
    return UserFactory(username="dana", email=DANA, first_name="Dana")


def events_of(srv, mailbox: str) -> list:
    def read():
        user = srv.store.find_user(mailbox)
        return [] if user is None else [e for e in srv.store.mailboxes[user.id].events.values() if not e.is_cancelled]

    return srv.call(read)


def test_each_building_reaches_its_own_tenant(provider, fabrikam, emulator, emulator_server, fabrikam_server, mode, alice, dana, atlas, hudson, django_capture_on_commit_callbacks):
    mode("Normal")
    assert default_provider() == provider  # the demo provider is the default (seed_provider)
    assert provider_for_room(atlas) == provider and provider_for_room(hudson) == fabrikam

    in_hq = book(actor=alice, room=atlas, start=days_ahead(2, 10), subject=f"{alice.username}'s meeting", capture_on_commit=django_capture_on_commit_callbacks)
    in_harbor = book(actor=dana, room=hudson, start=days_ahead(2, 10), subject=f"{dana.username}'s meeting", capture_on_commit=django_capture_on_commit_callbacks)

    assert in_hq.event_id and in_harbor.event_id, (in_hq.sync_events.last().error, in_harbor.sync_events.last().error)
    assert [e.id for e in events_of(emulator_server, ALICE)] == [in_hq.event_id]
    assert [e.id for e in events_of(fabrikam_server, DANA)] == [in_harbor.event_id]
    assert events_of(emulator_server, DANA) == [] and events_of(fabrikam_server, ALICE) == []
    # Each room's booking attendant (in its own tenant) got the invitation.
    assert len(wait_for(lambda: room_copies(fabrikam_server, HUDSON), message="hudson's copy")) == 1


def test_each_tenants_rooms_are_subscribed_there_and_reconciled_against_their_provider(settings, live_server, provider, fabrikam, emulator, fabrikam_control, fabrikam_server, mode, alice, dana, atlas, hudson):
    mode("Normal")
    settings.PUBLIC_BASE_URL = live_server.url

    counts = inbound_tasks.subscriptions_ensure()  # every active provider

    assert counts["failed"] == 0, counts
    rooms = {(s.provider_id, s.mailbox) for s in Subscription.objects.filter(status="active", kind=Subscription.Kind.ROOM)}
    assert rooms == {(provider.pk, ATLAS), (fabrikam.pk, HUDSON)}
    assert {s["resource"] for s in emulator.subscriptions()} >= {f"users/{ATLAS}/events"}
    assert f"users/{HUDSON}/events" not in {s["resource"] for s in emulator.subscriptions()}
    assert f"users/{HUDSON}/events" in {s["resource"] for s in fabrikam_control.subscriptions()}

    # An Outlook booking in each tenant arrives through that tenant's notification and pull.
    outlook_meeting(fabrikam_control, DANA, [HUDSON], days_ahead(3, 9), subject="Booked in Fabrikam's Outlook")
    outlook_meeting(emulator, ALICE, [ATLAS], days_ahead(3, 9), subject="Booked in Contoso's Outlook")
    found = wait_for(lambda: (lambda rs: rs if len(rs) == 2 else None)(outlook_reservations()), message="both reservations")
    assert {(r.room_id, r.subject) for r in found} == {(hudson.pk, "Booked in Fabrikam's Outlook"), (atlas.pk, "Booked in Contoso's Outlook")}
    # Each mailbox's delta state is its provider's (keyed by provider and mailbox).
    wait_for(lambda: MailboxDeltaState.objects.filter(mailbox=HUDSON).exists(), message="hudson pulled")
    assert {(s.mailbox, s.provider_id) for s in MailboxDeltaState.objects.filter(mailbox__in=[ATLAS, HUDSON])} == {(ATLAS, provider.pk), (HUDSON, fabrikam.pk)}


def test_the_admin_shows_each_buildings_provider(provider, fabrikam, hudson, hq, client, admin):
    client.force_login(admin)
    page = client.get("/admin/workplace/building/").content.decode()
    assert "Fabrikam" in page and "(default provider)" in page
    providers_page = client.get("/admin/exchange_auth/calendarprovider/").content.decode()
    assert "Contoso (emulator)" in providers_page and "Fabrikam" in providers_page


def test_in_personal_mode_an_employee_connects_the_tenant_of_the_room_they_book(client, provider, fabrikam, fabrikam_server, emulator, mode, dana, hudson, atlas, django_capture_on_commit_callbacks):
    """Personal mode writes to the employee's own calendar with their own token: Dana, of
    Fabrikam, connects Fabrikam's tenant (the connection page offers each tenant), and only
    then may book Harbor's room; a Contoso room still needs a Contoso connection."""
    mode("Personal")
    with pytest.raises(RuleViolation, match="Connect your Outlook account first"):
        book(actor=dana, room=hudson, start=days_ahead(3, 10), capture_on_commit=django_capture_on_commit_callbacks)

    client.force_login(dana)
    page = client.get("/outlook/")
    assert f'id="outlook-status-{fabrikam.pk}" data-state="not_connected"'.encode() in page.content
    start = client.post("/outlook/connect/", {"provider": fabrikam.pk})
    assert start.status_code == 302 and start["Location"].startswith(fabrikam_server.base_url)
    client.get(callback_path(sign_in(fabrikam_server, start["Location"], login=DANA)), follow=True)
    assert PersonalToken.objects.get(user=dana).provider == fabrikam
    assert f'id="outlook-status-{fabrikam.pk}" data-state="connected"'.encode() in client.get("/outlook/").content

    booked = book(actor=dana, room=hudson, start=days_ahead(3, 10), capture_on_commit=django_capture_on_commit_callbacks)
    assert booked.event_id and [e.id for e in events_of(fabrikam_server, DANA)] == [booked.event_id]
    with pytest.raises(RuleViolation, match="Connect your Outlook account first"):
        book(actor=dana, room=atlas, start=days_ahead(3, 14), capture_on_commit=django_capture_on_commit_callbacks)


def test_free_busy_asks_each_tenant_for_its_own_people(provider, fabrikam, fabrikam_server, emulator, mode, alice, dana, hudson, django_capture_on_commit_callbacks):
    """A person is in one of the company's tenants: the free/busy answer for Dana (Fabrikam)
    comes from Fabrikam's directory, Alice's from Contoso's."""
    from calendar_sync import freebusy

    mode("Normal")
    start = days_ahead(4, 10)
    book(actor=dana, room=hudson, start=start, capture_on_commit=django_capture_on_commit_callbacks)

    availability = freebusy.attendee_availability(start=start, end=start + dt.timedelta(hours=1), emails=[DANA, ALICE])

    assert availability == {DANA: "busy", ALICE: "free"}
