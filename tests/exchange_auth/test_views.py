"""Connect, reconnect and disconnect Outlook from the portal, and the admin's
provider screens, through the real emulator sign-in page."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from exchange_auth import credentials, properties
from exchange_auth.models import CalendarProvider, PersonalToken
from tests.exchange_auth.conftest import callback_path, make_provider, sign_in

ALICE = "alice@contoso.example"
CHANGELIST = "/admin/exchange_auth/calendarprovider/"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", ALICE, "demo-password")


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("admin", "admin@contoso.example", "demo-password")


def connect_through_portal(client, emulator_server, login: str = ALICE):
    start = client.post("/outlook/connect/")
    assert start.status_code == 302 and start["Location"].startswith(emulator_server.base_url)
    location = sign_in(emulator_server, start["Location"], login=login)
    assert location.startswith("http://127.0.0.1:8000/outlook/callback/?")
    return client.get(callback_path(location), follow=True)


def test_connection_page_requires_sign_in(client):
    response = client.get("/outlook/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_employee_connects_outlook(client, emulated, provider, alice):
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Personal")
    client.force_login(alice)
    page = client.get("/outlook/")
    assert b"Outlook is not connected" in page.content and b"Connect Outlook" in page.content
    response = connect_through_portal(client, emulated)
    assert b"Outlook is connected as alice@contoso.example" in response.content
    assert b'data-state="connected"' in response.content
    assert credentials.personal_token(provider, alice).identity == ALICE


def test_revoked_connection_shows_reconnect_prompt_and_reconnect_works(client, emulated, provider, alice, emulator):
    client.force_login(alice)
    connect_through_portal(client, emulated)
    emulator.revoke_consent(ALICE, "wsd-demo-client")
    with pytest.raises(credentials.ReconnectRequired):
        credentials.personal_token(provider, alice, force_refresh=True)
    page = client.get("/outlook/")
    assert b'data-state="reconnect"' in page.content and b"Reconnect Outlook" in page.content
    response = connect_through_portal(client, emulated)  # signing in again grants consent again
    assert b'data-state="connected"' in response.content
    assert credentials.personal_token(provider, alice).kind == "personal"


def test_signing_in_as_someone_else_is_refused(client, emulated, provider, alice):
    client.force_login(alice)
    response = connect_through_portal(client, emulated, login="bob@contoso.example")
    assert b"you are alice@contoso.example" in response.content
    assert not PersonalToken.objects.exists()


def test_disconnect(client, emulated, provider, alice):
    client.force_login(alice)
    connect_through_portal(client, emulated)
    response = client.post("/outlook/disconnect/", follow=True)
    assert b"Outlook is disconnected" in response.content and b'data-state="not_connected"' in response.content
    assert not PersonalToken.objects.filter(user=alice).exists()


def test_callback_without_a_started_sign_in_is_refused(client, provider, alice):
    client.force_login(alice)
    response = client.get("/outlook/callback/?code=stolen&state=x", follow=True)
    assert b"was not expected" in response.content
    assert not PersonalToken.objects.exists()


def test_callback_with_a_forged_state_is_refused(client, emulated, provider, alice):
    client.force_login(alice)
    start = client.post("/outlook/connect/")
    location = sign_in(emulated, start["Location"], login=ALICE)
    forged = callback_path(location).replace("state=", "state=forged")
    response = client.get(forged, follow=True)
    assert b"doesn&#x27;t match the sign-in that was started" in response.content
    assert not PersonalToken.objects.exists()


def test_a_forged_error_link_does_not_cancel_the_sign_in_in_progress(client, emulated, provider, alice):
    client.force_login(alice)
    start = client.post("/outlook/connect/")
    location = sign_in(emulated, start["Location"], login=ALICE)
    forged = client.get("/outlook/callback/?error=access_denied&error_description=x&state=forged", follow=True)
    assert b"doesn&#x27;t match the sign-in that was started" in forged.content
    response = client.get(callback_path(location), follow=True)  # the real answer still completes it
    assert b"Outlook is connected as alice@contoso.example" in response.content


def test_an_error_with_the_right_state_ends_the_sign_in_with_the_reason(client, emulated, provider, alice):
    client.force_login(alice)
    client.post("/outlook/connect/")
    state = client.session["exchange_auth_flow"]["flow"]["state"]
    response = client.get(f"/outlook/callback/?error=access_denied&error_description=No+consent&state={state}", follow=True)
    assert b"Sign-in was refused: access_denied: No consent" in response.content
    assert "exchange_auth_flow" not in client.session


# --- admin ---------------------------------------------------------------------------------------


def test_starting_the_delegated_sign_in_takes_a_post_not_a_link(client, admin_user, offline_provider):
    client.force_login(admin_user)
    assert client.get(reverse("exchange_auth:provider_connect", args=[offline_provider.pk])).status_code == 405
    assert "exchange_auth_flow" not in client.session


def test_admin_form_never_shows_the_secret(client, admin_user, offline_provider):
    client.force_login(admin_user)
    page = client.get(f"{CHANGELIST}{offline_provider.pk}/change/")
    assert page.status_code == 200
    assert b"demo-secret" not in page.content and offline_provider.client_secret_encrypted.encode() not in page.content
    assert b"stored (encrypted)" in page.content
    assert b"strict_mode" not in page.content


def _form_data(provider: CalendarProvider, **changes) -> dict:
    data = {
        "name": provider.name, "active": "on", "tenant_id": provider.tenant_id, "client_id": provider.client_id,
        "client_secret": "", "authority_host": provider.authority_host, "graph_base_url": provider.graph_base_url,
        "delegated_user_email": provider.delegated_user_email, "organizer_account": provider.organizer_account,
        "sync_window_past_days": 60, "sync_window_future_days": 365,
    }
    data.update(changes)
    return data


def test_admin_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(client, admin_user, offline_provider):
    client.force_login(admin_user)
    url = f"{CHANGELIST}{offline_provider.pk}/change/"
    assert client.post(url, _form_data(offline_provider)).status_code == 302
    assert CalendarProvider.objects.get(pk=offline_provider.pk).client_secret == "demo-secret"
    assert client.post(url, _form_data(offline_provider, client_secret="rotated-secret")).status_code == 302
    assert CalendarProvider.objects.get(pk=offline_provider.pk).client_secret == "rotated-secret"


def test_admin_new_provider_needs_a_secret(client, admin_user, db):
    client.force_login(admin_user)
    blank = CalendarProvider(name="New", tenant_id="t", client_id="c")
    response = client.post(f"{CHANGELIST}add/", _form_data(blank, active=""))
    assert response.status_code == 200 and b"Enter the app registration" in response.content


def test_admin_test_connection_ok(client, admin_user, provider):
    client.force_login(admin_user)
    response = client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [provider.pk]}, follow=True)
    text = response.content.decode()
    assert "Connected to tenant contoso" in text and "atlas@contoso.example" in text


def test_admin_test_connection_reports_a_wrong_secret(client, admin_user, emulated, db):
    provider = make_provider(emulated.base_url, client_secret="wrong")
    client.force_login(admin_user)
    response = client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [provider.pk]}, follow=True)
    assert "Wrong client secret for app wsd-demo-client" in response.content.decode()


def test_admin_test_connection_reports_an_unreachable_host(client, admin_user, db):
    provider = make_provider("https://127.0.0.1:9")
    client.force_login(admin_user)
    response = client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [provider.pk]}, follow=True)
    assert "Can&#x27;t reach 127.0.0.1:9" in response.content.decode()


def test_admin_connects_the_delegated_user(client, admin_user, emulated, provider):
    client.force_login(admin_user)
    start = client.post(CHANGELIST, {"action": "connect_delegated_user", "_selected_action": [provider.pk]})
    assert start.status_code == 302 and "login_hint=reservations%40contoso.example" in start["Location"]
    location = sign_in(emulated, start["Location"], login="reservations@contoso.example")
    response = client.get(callback_path(location), follow=True)
    assert "Delegated user reservations@contoso.example is connected" in response.content.decode()
    provider.refresh_from_db()
    assert credentials.system_token(provider).kind == "delegated"
    # The test connection action now checks the delegated user too.
    response = client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [provider.pk]}, follow=True)
    assert "Delegated user reservations@contoso.example is connected" in response.content.decode()


def test_employee_can_not_connect_the_delegated_user(client, alice, provider):
    client.force_login(alice)
    response = client.post(reverse("exchange_auth:provider_connect", args=[provider.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_property_form_validates_by_type(client, admin_user, db):
    client.force_login(admin_user)
    from exchange_auth.models import InstanceProperty

    row = InstanceProperty.objects.get(name=properties.SYNC_INTEGRATION_MODE)
    url = f"/admin/exchange_auth/instanceproperty/{row.pk}/change/"
    response = client.post(url, {"name": row.name, "value": "Lenient"})
    assert response.status_code == 200
    assert "must be one of Strict, Personal, Normal" in response.content.decode()
    response = client.post(url, {"name": row.name, "value": "strict"})
    assert response.status_code == 302
    assert properties.sync_mode().value == "Strict"
