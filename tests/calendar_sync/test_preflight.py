"""The preflight (issue 18, item 9): for the configured mode, each thing a real tenant can lack,
checked against the emulator with the credential each job uses, and the fix for each; shown in
the admin and by ``manage.py outlook_preflight`` (non-zero exit on any failed check). The
credential's expiry warns the admins 30 and 7 days before (a daily beat task)."""

from __future__ import annotations

import datetime as dt
import time
from io import StringIO
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from calendar_sync.preflight import FAIL, OK, WARN, preflight_run
from exchange_auth import credentials
from exchange_auth.expiry import credential_expiry_warn
from exchange_auth.views import redirect_uri
from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.calendar_sync.inbound_helpers import ATLAS
from tests.exchange_auth.conftest import sign_in
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db(transaction=True)

DELEGATE = "reservations@contoso.example"


@pytest.fixture
def webhook(settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server


def by_name(result) -> dict:
    return {check.name: check for check in result.checks}


def statuses(result) -> dict:
    return {check.name: check.status for check in result.checks}


def run_command() -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("outlook_preflight", stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


def test_the_demo_tenant_passes_and_says_what_is_only_a_warning(webhook, emulator, provider, atlas):
    result = preflight_run(provider)

    got = statuses(result)
    assert result.ok, [c for c in result.checks if c.status == FAIL]
    assert got["App-only token"] == got["Application permissions"] == got[f"App-only access to {ATLAS}"] == OK
    assert got["Organizer account"] == got["Test subscription"] == OK
    assert got["Webhook URL is HTTPS"] == WARN  # http, which only the emulator accepts
    assert got["Client secret expiry"] == WARN and "expiry date" in by_name(result)["Client secret expiry"].fix
    assert got["Delegated user"] == WARN  # named, not connected
    assert not emulator.subscriptions()  # the test subscription was deleted
    ok, out = run_command()
    assert ok and "✓ Test subscription" in out and "⚠ Webhook URL is HTTPS" in out


def test_missing_application_permissions_are_named_with_the_fix(webhook, emulator, provider, atlas):
    emulator.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET, "app_roles": ["Calendars.ReadWrite"]}]})

    check = by_name(preflight_run(provider))["Application permissions"]

    assert check.status == FAIL and "lacks Place.Read.All" in check.detail
    assert "API permissions" in check.fix and "Grant admin consent" in check.fix
    ok, out = run_command()
    assert not ok and "✗ Application permissions" in out and "fix: In Entra ID" in out


def test_a_room_outside_the_application_access_policy_fails_with_the_fix(webhook, emulator, provider, atlas):
    emulator.set_access_policy(DEMO_CLIENT_ID, ["borealis@contoso.example", DELEGATE])

    result = preflight_run(provider)

    check = by_name(result)[f"App-only access to {ATLAS}"]
    assert check.status == FAIL and "ErrorAccessDenied" in check.detail
    assert "New-ApplicationAccessPolicy" in check.fix and f"Test-ApplicationAccessPolicy -Identity {ATLAS}" in check.fix
    assert by_name(result)["Test subscription"].status == FAIL  # the same policy refuses the subscription
    assert not result.ok


def test_the_delegated_users_delegate_access_to_each_room(webhook, emulator, emulator_server, provider, atlas):
    emulator.seed({"rooms": [{"upn": "annex@contoso.example", "delegates": []}]})
    RoomFactory(building=atlas.building, name="Annex", synced=True)
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=DELEGATE)
    location = sign_in(emulator_server, flow["auth_uri"], login=DELEGATE)
    credentials.connect_delegated_user(provider, credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query))))
    provider.refresh_from_db()

    got = by_name(preflight_run(provider))

    assert got["Delegated user"].status == OK
    assert got[f"Delegate access of {DELEGATE} to {ATLAS}"].status == OK
    annex = got[f"Delegate access of {DELEGATE} to annex@contoso.example"]
    assert annex.status == FAIL and "Add-MailboxFolderPermission -Identity annex@contoso.example:\\Calendar" in annex.fix


def test_an_organizer_account_the_tenant_does_not_have(webhook, emulator, provider, atlas):
    provider.organizer_account = "ghost@contoso.example"
    provider.save()

    check = by_name(preflight_run(provider))["Organizer account"]

    assert check.status == FAIL and "ghost@contoso.example" in check.fix


@pytest.mark.parametrize("https_only", [True, False])
def test_a_webhook_graph_cannot_reach_fails_the_test_subscription(settings, live_server, emulator, provider, atlas, https_only):
    if https_only:
        settings.PUBLIC_BASE_URL = live_server.url
        emulator._call("POST", "subscriptions/https_only", {"enabled": True})
        expected = "NotificationUrl scheme='http' is not supported"
    else:
        settings.PUBLIC_BASE_URL = live_server.url + "/nowhere"
        expected = "Subscription validation request failed"

    check = by_name(preflight_run(provider))["Test subscription"]

    assert check.status == FAIL and expected in check.detail and "polled" in check.detail
    assert "PUBLIC_BASE_URL" in check.fix and "reverse proxy or tunnel" in check.fix
    assert not emulator.subscriptions()


def test_an_expired_client_secret_is_a_plain_sentence(webhook, emulator, provider, atlas):
    emulator.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET, "secret_expires_at": time.time() - 60}]})

    result = preflight_run(provider)

    check = by_name(result)["App-only token"]
    assert check.status == FAIL
    assert check.detail.startswith(f"The client secret of app {DEMO_CLIENT_ID} has expired: create a new one")
    assert "AADSTS7000222" in check.detail
    assert by_name(result)["Test subscription"].status == WARN  # nothing to subscribe with


@pytest.mark.parametrize(("days", "status"), [(-1, FAIL), (5, WARN), (25, WARN), (90, OK)])
def test_the_recorded_secret_expiry(webhook, emulator, provider, atlas, days, status):
    provider.client_secret_expires_on = (timezone.now() + dt.timedelta(days=days)).date()
    provider.save()

    assert by_name(preflight_run(provider))["Client secret expiry"].status == status


def test_admins_are_warned_30_and_7_days_before_the_secret_expires_each_once(provider, admin):
    today = timezone.now()
    provider.client_secret_expires_on = (today + dt.timedelta(days=40)).date()
    provider.save()
    assert credential_expiry_warn(now=today) == 0

    assert credential_expiry_warn(now=today + dt.timedelta(days=11)) == 1  # under 30 days left
    assert credential_expiry_warn(now=today + dt.timedelta(days=12)) == 0  # told once
    assert credential_expiry_warn(now=today + dt.timedelta(days=34)) == 1  # under 7 days left
    assert credential_expiry_warn(now=today + dt.timedelta(days=41)) == 1  # expired
    subjects = [m.subject for m in mail.outbox if "client secret" in m.subject]
    assert len(subjects) == 3 and "expires in" in subjects[0] and subjects[-1].endswith("has expired")
    assert "Certificates & secrets" in mail.outbox[-1].body


def test_the_admin_shows_each_check_and_its_fix(client, webhook, emulator, provider, atlas, admin):
    emulator.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET, "app_roles": ["Calendars.ReadWrite"]}]})
    client.force_login(admin)

    change = client.get(f"/admin/exchange_auth/calendarprovider/{provider.pk}/change/").content.decode()
    assert f"/admin/exchange_auth/calendarprovider/{provider.pk}/preflight/" in change
    action = client.post("/admin/exchange_auth/calendarprovider/", {"action": "preflight", "_selected_action": [provider.pk]})
    assert action.status_code == 302 and action["Location"].endswith(f"/{provider.pk}/preflight/")
    page = client.get(action["Location"]).content.decode()

    assert 'data-ok="false"' in page
    assert "✗</td><td>Application permissions" in page and "Grant admin consent" in page
    assert "✓</td><td>App-only token" in page and "⚠</td><td>Webhook URL is HTTPS" in page
