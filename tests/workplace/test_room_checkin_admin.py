"""The room's admin page: the check-in setting and the QR code for the door (SVG made on
the server) with the room's short check-in URL."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_room_admin_shows_the_check_in_setting_and_a_printable_qr_code(client, admin, dojo, settings):
    settings.PUBLIC_BASE_URL = "https://rooms.contoso.example"
    client.force_login(admin)
    page = client.get(f"/admin/workplace/room/{dojo.pk}/change/").content.decode()
    assert 'name="checkin_required"' in page
    assert '<svg' in page and "<title>Check in to Dojo</title>" in page
    assert f"https://rooms.contoso.example/r/{dojo.pk}/" in page


def test_the_admin_sets_check_in_required_per_room(client, admin, dojo):
    client.force_login(admin)
    form = client.get(f"/admin/workplace/room/{dojo.pk}/change/").context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "equipment"}
    data.update({"building": dojo.building_id, "checkin_required": "true", "arrangements-TOTAL_FORMS": "0",
                 "arrangements-INITIAL_FORMS": "0", "arrangements-MIN_NUM_FORMS": "0", "arrangements-MAX_NUM_FORMS": "1000"})
    response = client.post(f"/admin/workplace/room/{dojo.pk}/change/", data)
    dojo.refresh_from_db()
    assert response.status_code in (200, 302)
    if response.status_code == 200:  # the inline's management form differs: the form says why
        pytest.fail(str(response.context["adminform"].form.errors) + str([f.errors for f in response.context["inline_admin_formsets"]]))
    assert dojo.checkin_required is True
