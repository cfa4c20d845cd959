"""Credentials with real msal against the emulator over real HTTPS."""

import pytest
from django.contrib.auth import get_user_model

from exchange_auth import credentials, demo, graph_check
from exchange_auth.credentials import CredentialError, ReconnectRequired
from exchange_auth.models import CalendarProvider, PersonalToken
from exchange_auth.modes import Mode, ProviderAccounts, plan_sync
from exchange_auth.views import redirect_uri
from tests.exchange_auth.conftest import make_provider, sign_in

ALICE = "alice@contoso.example"


def connect(emulator_server, provider, login: str) -> credentials.Connection:
    """The authorization-code flow, as the views run it, with the person at the sign-in page."""
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=login)
    location = sign_in(emulator_server, flow["auth_uri"], login=login)
    from urllib.parse import parse_qsl, urlsplit

    return credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query)))


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", ALICE, "demo-password")


@pytest.fixture
def delegated(emulated, provider):
    credentials.connect_delegated_user(provider, connect(emulated, provider, "reservations@contoso.example"))
    return provider


# --- app-only ---------------------------------------------------------------------------------


def test_app_token_is_acquired_and_reused_until_near_expiry(provider):
    first = credentials.app_token(provider)
    assert first.kind == "app" and first.identity == "wsd-demo-client"
    assert credentials.app_token(provider) == first  # msal's cache, no second request
    assert credentials.app_token(provider, force_refresh=True) != first
    assert "ey" not in repr(first)  # the repr never shows the token


def test_app_token_is_acquired_once_per_process_by_threads_starting_together(provider, emulator):
    """A threads-pool worker's 8 pushes start cold at once: one openid discovery and one token
    request between them, every thread gets that token (issue 17: one of each per thread)."""
    import threading

    credentials.forget_cached_apps()
    emulator.clear_request_log()
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def push() -> None:
        barrier.wait()
        tokens.append(str(credentials.app_token(provider)))

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 8 and len(set(tokens)) == 1
    endpoints = emulator.request_log(limit=100)["counts"]["by_endpoint"]
    token_requests = sum(n for name, n in endpoints.items() if name.endswith("/token"))
    discoveries = sum(n for name, n in endpoints.items() if "openid-configuration" in name)
    assert (token_requests, discoveries) == (1, 1), endpoints
    # A refresh after a 401 asks again, once; the next callers share the new token.
    fresh = credentials.app_token(provider, force_refresh=True)
    assert str(fresh) != tokens[0] and str(credentials.app_token(provider)) == str(fresh)


def test_app_token_lists_rooms(provider):
    rooms = graph_check.list_rooms(provider, credentials.app_token(provider))
    assert {"atlas@contoso.example", "borealis@contoso.example", "cosmos@contoso.example"} <= {r["emailAddress"] for r in rooms}


def test_wrong_client_secret_is_named(emulated, db):
    provider = make_provider(emulated.base_url, client_secret="not-the-secret")
    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)
    assert excinfo.value.cause == "wrong_secret"
    assert "Wrong client secret for app wsd-demo-client" in excinfo.value.message
    assert "not-the-secret" not in excinfo.value.message


def test_unknown_client_id_is_named(emulated, db):
    provider = make_provider(emulated.base_url, client_id="nobody")
    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)
    assert excinfo.value.cause == "unknown_client" and "Unknown client id nobody" in excinfo.value.message


def test_unknown_tenant_is_named(emulated, db):
    provider = make_provider(emulated.base_url, tenant_id="fabrikam")
    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)
    assert excinfo.value.cause == "unknown_tenant" and "Unknown tenant 'fabrikam'" in excinfo.value.message


def test_unreachable_host_is_named(emulated, db):
    provider = make_provider("https://127.0.0.1:9")
    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)
    assert excinfo.value.cause == "unreachable" and "Can't reach 127.0.0.1:9" in excinfo.value.message


def test_tls_failure_is_named(emulated, provider, settings):
    settings.GRAPH_CA_BUNDLE = ""  # only the system CAs: the emulator's certificate is not trusted
    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)
    assert excinfo.value.cause == "tls" and "TLS failure" in excinfo.value.message


# --- the delegated user -----------------------------------------------------------------------------


def test_delegated_user_connects_and_reaches_the_rooms(delegated):
    delegated.refresh_from_db()
    assert delegated.delegated_connected_as == "reservations@contoso.example"
    token = credentials.system_token(delegated)
    assert token.kind == "delegated" and token.identity == "reservations@contoso.example"
    graph_check.check_mailbox_access(delegated, token, "atlas@contoso.example")


def test_delegated_token_touching_another_users_mailbox_is_a_clear_403(delegated):
    token = credentials.delegated_user_token(delegated)
    with pytest.raises(graph_check.GraphCallError) as excinfo:
        graph_check.check_mailbox_access(delegated, token, "bob@contoso.example")
    error = excinfo.value
    assert error.status == 403 and error.code == "ErrorAccessDenied"
    assert "Access denied to /v1.0/users/bob@contoso.example/calendar for the delegated token of reservations@contoso.example" in error.message


def test_delegated_user_must_be_the_configured_account(emulated, provider):
    with pytest.raises(CredentialError, match="Sign in as reservations@contoso.example") as excinfo:
        credentials.connect_delegated_user(provider, connect(emulated, provider, ALICE))
    assert excinfo.value.cause == "wrong_account"


def test_expired_access_token_is_refreshed_silently_and_rotation_persisted(delegated, emulator):
    emulator.configure(access_token_lifetime=120)  # within msal's 5-minute margin: always refresh
    first = credentials.delegated_user_token(delegated)
    blob_before = CalendarProvider.objects.get(pk=delegated.pk).delegated_token_cache_encrypted
    second = credentials.delegated_user_token(delegated)
    assert second != first
    blob_after = CalendarProvider.objects.get(pk=delegated.pk).delegated_token_cache_encrypted
    assert blob_after != blob_before  # the rotated refresh token was written back (encrypted)
    # The emulator allows each refresh token once: a third refresh only works with the stored one.
    third = credentials.delegated_user_token(CalendarProvider.objects.get(pk=delegated.pk))
    graph_check.check_mailbox_access(delegated, third, "atlas@contoso.example")


def test_access_token_expired_at_the_server_is_replaced_on_force_refresh(delegated, emulator):
    token = credentials.delegated_user_token(delegated)
    emulator.expire_tokens(user="reservations@contoso.example")
    with pytest.raises(graph_check.GraphCallError) as excinfo:
        graph_check.check_mailbox_access(delegated, token, "atlas@contoso.example")
    assert excinfo.value.status == 401
    fresh = credentials.delegated_user_token(delegated, force_refresh=True)
    graph_check.check_mailbox_access(delegated, fresh, "atlas@contoso.example")


def test_revoked_delegated_user_asks_the_admin_to_reconnect(delegated, emulator):
    emulator.revoke_consent("reservations@contoso.example", "wsd-demo-client")
    with pytest.raises(CredentialError) as excinfo:
        credentials.system_token(delegated, force_refresh=True)
    assert excinfo.value.cause == "refresh_refused"
    assert "must be connected again" in excinfo.value.message
    assert CalendarProvider.objects.get(pk=delegated.pk).delegated_last_error


def test_system_token_is_app_only_without_delegated_user(provider):
    assert credentials.system_token(provider).kind == "app"


def test_delegated_user_not_connected(provider):
    with pytest.raises(CredentialError, match="Connect delegated user") as excinfo:
        credentials.delegated_user_token(provider)
    assert excinfo.value.cause == "not_connected"


# --- personal tokens ----------------------------------------------------------------------------------


def test_personal_token_connect_and_use(emulated, provider, alice):
    credentials.connect_personal(provider, alice, connect(emulated, provider, ALICE))
    token = credentials.personal_token(provider, alice)
    assert token.kind == "personal" and token.identity == ALICE
    assert graph_check.graph_get(provider, token, "me")["userPrincipalName"] == ALICE
    raw = PersonalToken.objects.values_list("token_cache_encrypted", flat=True).get(user=alice)
    assert "RefreshToken" not in raw and raw.startswith("gAAAA")


def test_personal_connection_must_be_the_users_own_account(emulated, provider, alice):
    with pytest.raises(CredentialError, match="Sign in with your own account"):
        credentials.connect_personal(provider, alice, connect(emulated, provider, "bob@contoso.example"))
    assert not PersonalToken.objects.exists()


def test_personal_token_refreshes_silently(emulated, provider, alice, emulator):
    emulator.configure(access_token_lifetime=120)
    credentials.connect_personal(provider, alice, connect(emulated, provider, ALICE))
    first = credentials.personal_token(provider, alice)
    second = credentials.personal_token(provider, alice)
    assert first != second
    assert PersonalToken.objects.get(user=alice).refreshed_at is not None
    assert graph_check.graph_get(provider, credentials.personal_token(provider, alice), "me")["mail"] == ALICE


def test_revoked_consent_requires_reconnect(emulated, provider, alice, emulator):
    credentials.connect_personal(provider, alice, connect(emulated, provider, ALICE))
    token = credentials.personal_token(provider, alice)
    emulator.revoke_consent(ALICE, "wsd-demo-client")
    with pytest.raises(graph_check.GraphCallError) as excinfo:  # Graph refuses the old token: 401
        graph_check.graph_get(provider, token, "me")
    assert excinfo.value.status == 401
    with pytest.raises(ReconnectRequired) as excinfo:  # the refresh is refused too
        credentials.personal_token(provider, alice, force_refresh=True)
    assert excinfo.value.user == alice and "reconnect Outlook" in excinfo.value.message
    assert PersonalToken.objects.get(user=alice).needs_reconnect is True
    with pytest.raises(ReconnectRequired):  # and stays so, without calling the emulator again
        credentials.personal_token(provider, alice)
    assert not credentials.has_personal_token(alice, provider)


def test_no_personal_token_requires_connect(provider, alice):
    with pytest.raises(ReconnectRequired, match="Connect your Outlook account"):
        credentials.personal_token(provider, alice)


# --- the plan's credential -------------------------------------------------------------------------------


def _plan(mode, **kwargs):
    values = {"source": "portal", "subsource": "", "kind": "standard", "acting_user": ALICE, "requested_for": ALICE,
              "requested_for_has_mailbox": True, "room_mailbox": "atlas@contoso.example",
              "accounts": ProviderAccounts(delegated_user="reservations@contoso.example")}
    values.update(kwargs)
    return plan_sync(mode=mode, **values)


def test_token_for_personal_plan_is_the_users_own(emulated, provider, alice):
    credentials.connect_personal(provider, alice, connect(emulated, provider, ALICE))
    token = credentials.token_for_plan(_plan(Mode.PERSONAL), provider, alice)
    assert token.kind == "personal" and token.identity == ALICE


def test_personal_plan_never_falls_back_to_another_identity(delegated, alice):
    """Alice has no Outlook connection; the system credential is right there, but not used."""
    with pytest.raises(ReconnectRequired):
        credentials.token_for_plan(_plan(Mode.PERSONAL), delegated, alice)
    with pytest.raises(CredentialError, match="own Outlook connection"):
        credentials.token_for_plan(_plan(Mode.PERSONAL), delegated, None)


def test_token_for_system_plans(delegated, alice):
    for plan in (_plan(Mode.NORMAL), _plan(Mode.STRICT), _plan(Mode.PERSONAL, subsource="sn_wsd_rest_api")):
        assert credentials.token_for_plan(plan, delegated, alice).kind == "delegated"


# --- the demo provider ----------------------------------------------------------------------------------------


def test_seed_provider_is_idempotent_and_works(emulated, db):
    first = demo.seed_provider()
    second = demo.seed_provider()
    assert first.pk == second.pk and CalendarProvider.objects.count() == 1
    assert second.active and second.authority_host == emulated.base_url
    assert credentials.app_token(second).kind == "app"


def test_valid_delegated_token_is_served_without_a_new_request(delegated, emulator):
    first = credentials.delegated_user_token(delegated)
    emulator.clear_request_log()
    assert credentials.delegated_user_token(delegated) == first
    assert emulator.request_log()["total"] == 0  # no discovery, no token request
