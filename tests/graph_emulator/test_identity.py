"""Entra ID: discovery, the token endpoint's grants and errors, and real msal against the emulator."""

from __future__ import annotations

import base64
import json
import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import msal
import pytest

from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_TENANT_ID
from tests.graph_emulator.helpers import ALICE, ATLAS, BOB

GRAPH_SCOPES = ["https://graph.microsoft.com/Calendars.ReadWrite"]


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def confidential(emulator_server, http, tenant="contoso"):
    return msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID, client_credential=DEMO_CLIENT_SECRET, authority=f"{emulator_server.base_url}/{tenant}",
        instance_discovery=False, http_client=http,
    )


def sign_in(http, auth_uri: str, username: str, password: str = DEMO_PASSWORD) -> dict:
    """Drive the emulator's HTML sign-in page as a browser would; return the redirect's query."""
    page = http.get(auth_uri, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert ALICE in page.text and BOB in page.text  # the page lists the tenant's users
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    fields = {unescape(k): unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    fields.update({"login": username, "passwd": password})
    base = f"{urlparse(auth_uri).scheme}://{urlparse(auth_uri).netloc}"
    resp = http.post(base + action, data=fields, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text[:500]
    return {k: v[0] for k, v in parse_qs(urlparse(resp.headers["Location"]).query).items()}


def test_discovery_document(emulator_server, http):
    for tenant in ("contoso", "contoso.example", DEMO_TENANT_ID, "organizations"):
        r = http.get(f"{emulator_server.base_url}/{tenant}/v2.0/.well-known/openid-configuration")
        assert r.status_code == 200
        doc = r.json()
        assert doc["issuer"] == f"{emulator_server.base_url}/{DEMO_TENANT_ID}/v2.0"
        assert doc["token_endpoint"].startswith(emulator_server.base_url)
        assert doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
    keys = http.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]


def test_unknown_tenant(emulator_server, http):
    r = http.post(f"{emulator_server.base_url}/fabrikam/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request" and "AADSTS90002" in r.json()["error_description"]
    assert r.json()["error_codes"] == [90002]


def test_msal_client_credentials(emulator_server, http):
    app = confidential(emulator_server, http)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    c = claims(result["access_token"])
    assert c["aud"] == "https://graph.microsoft.com" and c["tid"] == DEMO_TENANT_ID
    assert c["appid"] == DEMO_CLIENT_ID and c["idtyp"] == "app"
    assert set(c["roles"]) == {"Calendars.ReadWrite", "Place.Read.All", "User.Read.All"}
    r = http.get(f"{emulator_server.base_url}/v1.0/users/{ATLAS}/events", headers={"Authorization": f"Bearer {result['access_token']}"})
    assert r.status_code == 200


def test_wrong_client_secret(emulator_server, http):
    app = msal.ConfidentialClientApplication(DEMO_CLIENT_ID, client_credential="nope", authority=f"{emulator_server.base_url}/contoso",
                                             instance_discovery=False, http_client=http)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client" and 7000215 in result["error_codes"]
    r = http.post(f"{emulator_server.base_url}/contoso/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": "nope",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 401


def test_client_credentials_needs_default_scope(emulator_server, http):
    r = http.post(f"{emulator_server.base_url}/contoso/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
        "scope": "https://graph.microsoft.com/Calendars.ReadWrite"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_password_grant_and_errors(emulator_server, http):
    url = f"{emulator_server.base_url}/contoso/oauth2/v2.0/token"
    base = {"grant_type": "password", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
            "username": ALICE, "scope": "https://graph.microsoft.com/.default offline_access openid profile", "client_info": "1"}
    bad = http.post(url, data={**base, "password": "wrong"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant" and "AADSTS50126" in bad.json()["error_description"]
    ok = http.post(url, data={**base, "password": DEMO_PASSWORD}).json()
    assert {"access_token", "refresh_token", "id_token", "client_info", "expires_in", "scope", "token_type"} <= set(ok)
    c = claims(ok["access_token"])
    assert c["upn"] == ALICE and c["idtyp"] == "user" and "Calendars.ReadWrite" in c["scp"].split()
    idt = claims(ok["id_token"])
    assert idt["aud"] == DEMO_CLIENT_ID and idt["preferred_username"] == ALICE
    info = json.loads(base64.urlsafe_b64decode(ok["client_info"] + "=="))
    assert info == {"uid": c["oid"], "utid": DEMO_TENANT_ID}


def test_msal_auth_code_pkce_then_silent_refresh(emulator_server, http, emulator_control):
    emulator_control.configure(access_token_lifetime=60)  # msal refreshes tokens expiring within 5 minutes
    app = confidential(emulator_server, http)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="http://localhost:8000/auth/callback")
    assert "code_challenge=" in flow["auth_uri"]
    reply = sign_in(http, flow["auth_uri"], BOB)
    assert reply["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, reply)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == BOB
    assert result["id_token_claims"]["nonce"]  # msal checked it against the flow's nonce
    first_rt = result["refresh_token"]
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [BOB]
    again = app.acquire_token_silent(GRAPH_SCOPES, account=accounts[0])
    assert again and "access_token" in again
    assert again["access_token"] != result["access_token"]  # the near-expiry token was refreshed
    cached_rts = [rt["secret"] for rt in app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)]
    assert first_rt not in cached_rts  # rotated
    r = http.post(f"{emulator_server.base_url}/contoso/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": first_rt, "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # old refresh token is spent


def test_auth_code_pkce_mismatch_and_bad_code(emulator_server, http):
    app = confidential(emulator_server, http)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="http://127.0.0.1:9999/cb")
    reply = sign_in(http, flow["auth_uri"], ALICE)
    url = f"{emulator_server.base_url}/contoso/oauth2/v2.0/token"
    data = {"grant_type": "authorization_code", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
            "code": reply["code"], "redirect_uri": "http://127.0.0.1:9999/cb", "code_verifier": "x" * 43}
    r = http.post(url, data=data)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and 501481 in r.json()["error_codes"]
    r = http.post(url, data={**data, "code": "not-a-code"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_authorize_rejects_foreign_redirect_and_wrong_password(emulator_server, http):
    app = confidential(emulator_server, http)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="https://evil.example/cb")
    page = http.get(flow["auth_uri"])
    assert page.status_code == 400 and "AADSTS50011" in page.text
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="http://localhost:8000/cb")
    page = http.get(flow["auth_uri"])
    action = unescape(re.search(r'action="([^"]+)"', page.text).group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {unescape(k): unescape(v) for k, v in fields.items()}
    resp = http.post(emulator_server.base_url + action, data={**fields, "login": ALICE, "passwd": "wrong"}, allow_redirects=False)
    assert resp.status_code == 200 and "AADSTS50126" in resp.text


def test_revoked_consent(emulator_server, http, emulator_control):
    emulator_control.configure(access_token_lifetime=60)
    app = confidential(emulator_server, http)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="http://localhost:8000/cb")
    result = app.acquire_token_by_auth_code_flow(flow, sign_in(http, flow["auth_uri"], ALICE))
    token = result["access_token"]
    me = http.get(f"{emulator_server.base_url}/v1.0/me/events", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    emulator_control.revoke_consent(ALICE, DEMO_CLIENT_ID)
    me = http.get(f"{emulator_server.base_url}/v1.0/me/events", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401 and me.json()["error"]["code"] == "InvalidAuthenticationToken"
    silent = app.acquire_token_silent_with_error(GRAPH_SCOPES, account=app.get_accounts()[0])
    assert silent["error"] == "invalid_grant" and "AADSTS65001" in silent["error_description"]


def test_msal_public_client(emulator_server, http, emulator_control):
    emulator_control.configure(access_token_lifetime=60)
    app = msal.PublicClientApplication(DEMO_CLIENT_ID, authority=f"{emulator_server.base_url}/contoso",
                                       instance_discovery=False, http_client=http)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="http://localhost:53100")
    result = app.acquire_token_by_auth_code_flow(flow, sign_in(http, flow["auth_uri"], ALICE))
    assert "access_token" in result, result
    assert claims(result["access_token"])["appidacr"] == "0"
    silent = app.acquire_token_silent(GRAPH_SCOPES, account=app.get_accounts()[0])
    assert silent and silent["access_token"] != result["access_token"]


def test_graph_rejects_missing_bad_and_expired_tokens(emulator_server, http, emulator_control, tokens):
    url = f"{emulator_server.base_url}/v1.0/users/{ALICE}"
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer abc"}, {"Authorization": "Bearer a.b.c"}):
        r = http.get(url, headers=headers)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "InvalidAuthenticationToken"
        assert {"date", "request-id", "client-request-id"} <= set(err["innerError"])
    fresh = http.post(f"{emulator_server.base_url}/contoso/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    assert http.get(url, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    emulator_control.expire_tokens(client_id=DEMO_CLIENT_ID)
    r = http.get(url, headers={"Authorization": f"Bearer {fresh}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


@pytest.mark.parametrize("grant", ["", "device_code"])
def test_unsupported_grants(emulator_server, http, grant):
    r = http.post(f"{emulator_server.base_url}/contoso/oauth2/v2.0/token", data={"grant_type": grant, "client_id": DEMO_CLIENT_ID})
    assert r.status_code == 400 and r.json()["error"] in ("invalid_request", "unsupported_grant_type")
