"""Only staff reach the admin; every page of ours renders."""

import pytest

from reservations import services
from reservations.recurrence import Recurrence
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


def test_employees_and_anonymous_are_sent_to_login(client, alice):
    assert client.get("/admin/").status_code == 302
    client.force_login(alice)
    response = client.get("/admin/workplace/room/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/workplace/building/", "/admin/workplace/building/add/",
        "/admin/workplace/floor/", "/admin/workplace/equipment/",
        "/admin/workplace/room/", "/admin/workplace/room/add/", "/admin/workplace/room/?sync_enabled__exact=1",
        "/admin/auth/user/", "/admin/auth/user/add/",
        "/admin/reservations/reservation/",
        "/admin/reservations/reservation/?state__exact=confirmed&source__exact=rest_api&subsource__exact=sn_wsd_rest_api",
        "/admin/reservations/reservation/?q=Stand-up",
        "/admin/reservations/reservationseries/",
    ],
)
def test_staff_see_every_page(client, admin, alice, atlas, path):
    services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Stand-up", recurrence=Recurrence("daily", count=2))
    client.force_login(admin)
    assert client.get(path).status_code == 200


def test_change_pages_render(client, admin, alice, atlas):
    reservation = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Stand-up", recurrence=Recurrence("daily", count=2), attendees=[{"email": "bob@contoso.example"}])
    client.force_login(admin)
    for path in (
        f"/admin/reservations/reservation/{reservation.pk}/change/",
        f"/admin/reservations/reservationseries/{reservation.series_id}/change/",
        f"/admin/workplace/room/{atlas.pk}/change/",
        f"/admin/auth/user/{alice.pk}/change/",
    ):
        assert client.get(path).status_code == 200, path
