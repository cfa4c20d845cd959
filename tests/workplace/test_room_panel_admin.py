"""Room panels in admin: adding one shows its sign-in URL once (only a digest is stored);
the revoke action stops it at once; the room's privacy setting is in the room's form."""

import re

import pytest
from django.urls import reverse

from workplace.models import RoomPanel

pytestmark = pytest.mark.django_db


def test_admin_adds_a_panel_sees_its_url_once_and_revokes_it(client, admin, dojo):
    client.force_login(admin)
    response = client.post(reverse("admin:workplace_roompanel_add"), {"room": dojo.pk, "name": "Dojo door"}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    [url] = re.findall(r"<code>(http://[^<]+/panel/\?token=[^<]+)</code>", text)
    token = url.split("token=", 1)[1]
    panel = RoomPanel.objects.get(name="Dojo door")
    assert panel.room == dojo and token not in panel.token_digest and panel.token_prefix == token[:8]
    assert token not in client.get(reverse("admin:workplace_roompanel_change", args=[panel.pk])).content.decode()  # never again

    tablet = client.__class__()
    assert tablet.get(reverse("portal:panel") + f"?token={token}").status_code == 302
    assert tablet.get(reverse("portal:panel_state")).status_code == 200
    response = client.post(reverse("admin:workplace_roompanel_changelist"), {"action": "revoke", "_selected_action": [panel.pk]}, follow=True)
    assert "1 panel(s) revoked" in response.content.decode()
    assert tablet.get(reverse("portal:panel_state")).status_code == 401


def test_the_rooms_form_has_one_privacy_setting_for_the_portal_and_the_panel(client, admin, dojo):
    client.force_login(admin)
    page = client.get(reverse("admin:workplace_room_change", args=[dojo.pk])).content.decode()
    assert page.count('name="show_subjects"') == 1 and "on the room panel at the door" in page
    assert "panel_shows_subjects" not in page
