"""Issue 14, item 6: admin shows times in the building's zone (each reservation's own building's,
the admin's profile zone when set, else the buildings' common zone), with the zone named —
never UTC "Dec. 1, 2026, 11:33 p.m.."; the API stays ISO 8601 with offsets. Item 10: the
provider's page has Test connection and one "Client secret"."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calendar_sync.models import Subscription
from reservations.models import SyncEvent
from tests.factories import BuildingFactory, FloorFactory, ReservationFactory, RoomFactory
from workplace import zones

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2026, 12, 1, 23, 33, tzinfo=dt.UTC)  # Berlin: 2 Dec 00:33 CET


@pytest.fixture
def berlin_reservation(alice, atlas):
    assert atlas.building.timezone == "Europe/Berlin"
    return ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Late review",
                              start=WHEN, end=WHEN + dt.timedelta(hours=1))


def test_the_reservation_list_shows_each_building_time_with_its_zone(client, admin, berlin_reservation):
    ny = BuildingFactory(name="NYC", timezone="America/New_York")
    room = RoomFactory(building=ny, floor=FloorFactory(building=ny, name="5"), name="Hudson")
    ReservationFactory(room=room, requested_for=admin, requested_by=admin, subject="Standup", start=WHEN, end=WHEN + dt.timedelta(hours=1))
    client.force_login(admin)
    with CaptureQueriesContext(connection) as two_rows:
        html = client.get("/admin/reservations/reservation/").content.decode()
    for n in range(3):
        ReservationFactory(room=room, requested_for=admin, requested_by=admin, subject=f"More {n}",
                           start=WHEN + dt.timedelta(days=n + 1), end=WHEN + dt.timedelta(days=n + 1, hours=1))
    with CaptureQueriesContext(connection) as five_rows:
        client.get("/admin/reservations/reservation/")
    assert len(five_rows) == len(two_rows)  # no query per row
    assert "2 Dec 2026, 00:33 CET (Europe/Berlin)" in html
    assert "1 Dec 2026, 18:33 EST (America/New_York)" in html
    assert "p.m." not in html and "Dec. 1" not in html


def test_admin_pages_use_the_admin_profile_zone_else_the_buildings(client, admin, berlin_reservation, provider):
    event = SyncEvent.objects.create(type=SyncEvent.Type.CREATE, reservation=berlin_reservation, state=SyncEvent.State.PROCESSED)
    SyncEvent.objects.filter(pk=event.pk).update(created_at=WHEN)
    Subscription.objects.create(provider=provider, mailbox="atlas@contoso.example", resource="/users/atlas/events", expires_at=WHEN)
    admin.profile.timezone = "UTC"  # no zone of their own
    admin.profile.save()
    client.force_login(admin)
    # Every building is in Berlin: that zone, named.
    for url in ("/admin/reservations/syncevent/", "/admin/calendar_sync/subscription/", "/admin/reservations/reservationseries/"):
        html = client.get(url).content.decode()
        assert "p.m." not in html, url
    assert "2 Dec 2026, 00:33 CET" in client.get("/admin/reservations/syncevent/").content.decode()
    assert "2 Dec 2026, 00:33 CET" in client.get("/admin/calendar_sync/subscription/").content.decode()
    # The admin's own zone wins when set.
    admin.profile.timezone = "Asia/Tokyo"
    admin.profile.save()
    assert "2 Dec 2026, 08:33 JST" in client.get("/admin/calendar_sync/subscription/").content.decode()


def test_zone_for_falls_back_to_utc_when_buildings_differ(admin, atlas):
    admin.profile.timezone = "UTC"  # no zone of their own
    admin.profile.save()
    assert zones.zone_for(admin) == "Europe/Berlin"  # the one building's
    BuildingFactory(name="NYC", timezone="America/New_York")
    assert zones.zone_for(admin) == "UTC"
    assert zones.local_time(WHEN, "Europe/Berlin") == "2 Dec 2026, 00:33 CET (Europe/Berlin)"


def test_the_api_stays_iso_with_offsets(alice_api, berlin_reservation):
    body = alice_api.get(f"/api/v1/reservations/{berlin_reservation.pk}/").json()
    assert dt.datetime.fromisoformat(body["start"]) == WHEN and body["start"][-6] in "+-" or body["start"].endswith("Z")


def test_the_provider_page_has_test_connection_and_one_client_secret(client, admin, provider, emulator):
    client.force_login(admin)
    url = f"/admin/exchange_auth/calendarprovider/{provider.pk}/change/"
    html = client.get(url).content.decode()
    assert 'id="test-connection"' in html
    assert html.count(">Client secret<") + html.count(">Client secret:<") == 1, "the label once"
    assert "Stored secret" in html
    assert client.get(f"/admin/exchange_auth/calendarprovider/{provider.pk}/test-connection/").status_code == 405
    response = client.post(f"/admin/exchange_auth/calendarprovider/{provider.pk}/test-connection/")
    assert response.status_code == 302 and response.url == url
    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "success" and provider.name in str(message)
