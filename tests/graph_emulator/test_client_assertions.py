"""The token endpoint verifies a certificate's signed client assertion as Entra ID does
(https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials): RFC 7523
JWT, header x5t = base64url SHA-1 thumbprint (RS256) or x5t#S256 (PS256), aud = the token
endpoint, iss = sub = the client id, jti, exp/nbf; the key of a certificate registered on the app.
Refusals are invalid_client with Entra's AADSTS codes (700027 for the key)."""

from __future__ import annotations

import base64
import time
import uuid

import jwt
import msal
import pytest
from cryptography.hazmat.primitives import hashes

from graph_emulator.seed import DEMO_TENANT_ID
from tests.exchange_auth.certificate_helpers import cert_pem, certificate, key_pem, new_key

APP = "wsd-cert-client"


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def cert(key):
    return certificate(key)


@pytest.fixture
def registered(emulator_control, cert):
    emulator_control.seed({"apps": [{"client_id": APP, "secret": None, "certificates": [cert_pem(cert)]}]})


def token_endpoint(emulator_server) -> str:
    return f"{emulator_server.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"


def x5t(cert, digest=None) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(digest or hashes.SHA1())).decode().rstrip("=")  # noqa: S303


def assertion(emulator_server, key, cert, **claims) -> str:
    now = time.time()
    payload = {"aud": token_endpoint(emulator_server), "iss": APP, "sub": APP, "jti": str(uuid.uuid4()), "exp": now + 600, "nbf": now - 5}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"x5t": x5t(cert)})


def post(http, emulator_server, client_assertion: str) -> tuple[int, dict]:
    r = http.post(token_endpoint(emulator_server), data={
        "grant_type": "client_credentials", "client_id": APP, "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": client_assertion,
    }, timeout=10)
    return r.status_code, r.json()


def test_a_good_assertion_gets_an_app_token(http, emulator_server, registered, key, cert):
    status, body = post(http, emulator_server, assertion(emulator_server, key, cert))
    assert status == 200 and body["token_type"] == "Bearer"


@pytest.mark.parametrize(("claims", "code"), [
    ({"aud": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"}, 50012),
    ({"iss": "someone-else"}, 700021),
    ({"sub": "someone-else"}, 700021),
    ({"jti": None}, 50027),
    # Times relative to when the test runs (not to the import of this module: a long run would
    # put a fixed "nbf in ten minutes" in the past).
    ({"exp": -60}, 700024),
    ({"nbf": +600}, 700024),
])
def test_claims_are_checked(http, emulator_server, registered, key, cert, claims, code):
    claims = {k: time.time() + v if k in ("exp", "nbf") else v for k, v in claims.items()}
    status, body = post(http, emulator_server, assertion(emulator_server, key, cert, **claims))
    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [code])


def test_a_key_that_is_not_the_registered_certificates_is_aadsts700027(http, emulator_server, registered, cert):
    status, body = post(http, emulator_server, assertion(emulator_server, new_key(), cert))  # the right x5t, the wrong signature
    assert (status, body["error_codes"]) == (401, [700027])
    assert "did not match the expected signature" in body["error_description"]
    other = new_key()
    status, body = post(http, emulator_server, assertion(emulator_server, other, certificate(other)))  # a certificate the app doesn't have
    assert (status, body["error_codes"]) == (401, [700027]) and "The key was not found" in body["error_description"]


def test_an_expired_registered_certificate_is_refused(http, emulator_server, emulator_control, key):
    old = certificate(key, days=-1, start_days_ago=30)
    emulator_control.seed({"apps": [{"client_id": APP, "secret": None, "certificates": [cert_pem(old)]}]})
    status, body = post(http, emulator_server, assertion(emulator_server, key, old))
    assert (status, body["error_codes"]) == (401, [700027]) and "The key used is expired" in body["error_description"]


def test_msal_with_ps256_and_the_sha256_thumbprint_works_too(emulator_server, registered, key, cert):
    from graph_emulator.testing import make_session

    app = msal.ConfidentialClientApplication(
        APP, client_credential={"private_key": key_pem(key), "public_certificate": cert_pem(cert)},
        authority=f"{emulator_server.base_url}/{DEMO_TENANT_ID}", instance_discovery=False, http_client=make_session(emulator_server.ca_path),
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result


def test_an_expired_client_secret_is_aadsts7000222(http, emulator_server, emulator_control):
    emulator_control.seed({"apps": [{"client_id": "old-secret-app", "secret": "s3cret", "secret_expires_at": time.time() - 60}]})
    r = http.post(token_endpoint(emulator_server), data={"grant_type": "client_credentials", "client_id": "old-secret-app",
                                                 "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"}, timeout=10)
    assert r.status_code == 401 and r.json()["error_codes"] == [7000222]
