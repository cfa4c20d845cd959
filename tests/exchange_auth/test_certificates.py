"""Certificate credentials for app-only tokens (issue 18, item 6): many tenants forbid client
secrets. The admin uploads a PEM (certificate + key) in the provider form; the key is stored only
encrypted and never shown back, the thumbprint and expiry are. msal signs a client assertion with
it ({"private_key", "thumbprint"}), and the emulator verifies it against the certificate registered
on the app, as Entra ID does: a wrong key is AADSTS700027. Real msal, real HTTPS."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from exchange_auth import certificates, credentials, graph_check
from exchange_auth.admin import CalendarProviderForm
from exchange_auth.credentials import CredentialError
from exchange_auth.models import CalendarProvider
from tests.exchange_auth.certificate_helpers import bundle, cert_pem, certificate, new_key
from tests.exchange_auth.conftest import make_provider

CERT_APP = "wsd-cert-client"  # an app registration with no secret at all: only its certificate proves it
CHANGELIST = "/admin/exchange_auth/calendarprovider/"


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def cert(key):
    return certificate(key)


@pytest.fixture
def cert_app(emulator_control, cert):
    emulator_control.seed({"apps": [{"client_id": CERT_APP, "secret": None, "certificates": [cert_pem(cert)]}]})
    return CERT_APP


def cert_provider(emulated, key, cert, **overrides) -> CalendarProvider:
    provider = make_provider(emulated.base_url, client_id=CERT_APP, client_secret="", **overrides)
    provider.set_client_certificate(certificates.parse_pem(bundle(key, cert)))
    provider.save()
    return provider


def test_an_app_only_token_comes_with_the_certificate_alone(emulated, cert_app, key, cert, db):
    provider = cert_provider(emulated, key, cert)

    token = credentials.app_token(provider)

    assert token.kind == "app" and token.identity == CERT_APP
    report = graph_check.test_connection(provider)
    assert report.ok, report.message
    assert {"atlas@contoso.example", "borealis@contoso.example", "cosmos@contoso.example"} <= set(report.rooms)


def test_a_key_the_app_does_not_know_is_refused_with_a_sentence(emulated, cert_app, db):
    other_key = new_key()
    provider = cert_provider(emulated, other_key, certificate(other_key))

    with pytest.raises(CredentialError) as excinfo:
        credentials.app_token(provider)

    assert excinfo.value.cause == "wrong_certificate"
    assert "The certificate was refused for app wsd-cert-client" in excinfo.value.message
    assert "AADSTS700027" in excinfo.value.message and "The key was not found" in excinfo.value.message


def test_a_certificate_registered_later_is_accepted(emulated, emulator_control, key, cert, db):
    emulator_control.seed({"apps": [{"client_id": CERT_APP, "secret": None}]})
    provider = cert_provider(emulated, key, cert)
    with pytest.raises(CredentialError):
        credentials.app_token(provider)

    emulator_control._call("POST", f"apps/{CERT_APP}/certificates", {"certificate": cert_pem(cert)})
    credentials.forget_cached_apps()

    assert credentials.app_token(provider).kind == "app"


def test_the_private_key_is_stored_encrypted_and_never_in_repr(emulated, cert_app, key, cert, db):
    provider = cert_provider(emulated, key, cert)
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_certificate_key_encrypted, client_certificate_pem FROM exchange_auth_calendarprovider WHERE id = %s",
                       [provider.pk])
        stored_key, stored_cert = cursor.fetchone()
    assert "PRIVATE KEY" not in stored_key and stored_key.startswith("gAAAA")  # Fernet
    assert "PRIVATE KEY" not in stored_cert and "BEGIN CERTIFICATE" in stored_cert
    assert "PRIVATE" not in repr(certificates.parse_pem(bundle(key, cert)))
    assert provider.client_certificate_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303


# --- the provider form --------------------------------------------------------------------------


def form_data(**extra) -> dict:
    return {
        "name": "Contoso (certificate)", "tenant_id": "contoso", "client_id": CERT_APP,
        "authority_host": "https://login.example.invalid", "graph_base_url": "https://graph.example.invalid/v1.0",
        "sync_window_past_days": 60, "sync_window_future_days": 365, **extra,
    }


def upload(data: bytes) -> dict:
    return {"client_certificate": SimpleUploadedFile("wsd-sync.pem", data, content_type="application/x-pem-file")}


def test_the_form_takes_a_pem_instead_of_a_secret(db, key, cert):
    form = CalendarProviderForm(data=form_data(), files=upload(bundle(key, cert)))
    assert form.is_valid(), form.errors
    provider = form.save()
    assert provider.has_client_certificate and not provider.has_client_secret
    assert provider.client_certificate_expires_at == cert.not_valid_after_utc


@pytest.mark.parametrize(("make", "error"), [
    (lambda key, cert: bundle(new_key(), cert), "The private key does not belong to the certificate"),
    (lambda key, cert: bundle(key, certificate(key, days=-1, start_days_ago=30)), "The certificate expired on"),
    (lambda key, cert: cert_pem(cert).encode(), "The file holds no private key"),
    (lambda key, cert: b"not a pem", "The file holds no PEM certificate"),
])
def test_the_form_refuses_a_pem_that_cannot_work(db, key, cert, make, error):
    form = CalendarProviderForm(data=form_data(), files=upload(make(key, cert)))
    assert not form.is_valid()
    assert error in " ".join(form.errors["client_certificate"])


def test_neither_secret_nor_certificate_is_refused(db):
    form = CalendarProviderForm(data=form_data())
    assert not form.is_valid() and "or upload a certificate" in " ".join(form.errors["client_secret"])


def test_the_admin_shows_thumbprint_and_expiry_never_the_key(client, emulated, cert_app, key, cert, db):
    admin = get_user_model().objects.create_superuser("admin", "admin@contoso.example", "demo-password")
    provider = cert_provider(emulated, key, cert)
    client.force_login(admin)

    page = client.get(f"{CHANGELIST}{provider.pk}/change/").content.decode()

    assert provider.client_certificate_thumbprint in page
    assert f"expires {cert.not_valid_after_utc:%Y-%m-%d}" in page
    assert "PRIVATE KEY" not in page and provider.client_certificate_key_encrypted not in page
    assert 'enctype="multipart/form-data"' in page


def test_the_admin_uploads_a_certificate(client, emulated, db, key, cert):
    admin = get_user_model().objects.create_superuser("admin", "admin@contoso.example", "demo-password")
    client.force_login(admin)
    data = form_data(authority_host=emulated.base_url, graph_base_url=f"{emulated.base_url}/v1.0", **upload(bundle(key, cert)))

    response = client.post(f"{CHANGELIST}add/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    provider = CalendarProvider.objects.get(name="Contoso (certificate)")
    assert provider.has_client_certificate and provider.client_certificate_expires_at > dt.datetime.now(dt.UTC)
