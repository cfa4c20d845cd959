"""Providers: secrets encrypted at rest, one active provider, validation."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, transaction

from exchange_auth import crypto
from exchange_auth.models import CalendarProvider
from exchange_auth.providers import NoActiveProvider, active_provider, require_active_provider
from tests.exchange_auth.conftest import make_provider


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test-only, fixed names
        return cursor.fetchone()[0]


def test_client_secret_is_not_stored_in_plaintext(db):
    provider = make_provider("https://login.example.invalid", client_secret="s3cret-value-42")
    raw = _raw("exchange_auth_calendarprovider", "client_secret_encrypted", provider.pk)
    assert "s3cret-value-42" not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert CalendarProvider.objects.get(pk=provider.pk).client_secret == "s3cret-value-42"


def test_repr_and_str_never_show_the_secret(db):
    provider = make_provider("https://login.example.invalid", client_secret="s3cret-value-42")
    assert "s3cret" not in repr(provider) and "s3cret" not in str(provider)


def test_token_caches_are_encrypted_too(offline_provider):
    offline_provider.delegated_token_cache = '{"RefreshToken": {"x": {"secret": "rt-value"}}}'
    offline_provider.save()
    raw = _raw("exchange_auth_calendarprovider", "delegated_token_cache_encrypted", offline_provider.pk)
    assert "rt-value" not in raw
    assert "rt-value" in CalendarProvider.objects.get(pk=offline_provider.pk).delegated_token_cache


def test_crypto_round_trip_and_key_rotation(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEY = old_key
    stored = crypto.encrypt("secret")
    settings.TOKEN_ENCRYPTION_KEY = f"{new_key},{old_key}"
    assert crypto.decrypt(stored) == "secret"
    settings.TOKEN_ENCRYPTION_KEY = new_key
    with pytest.raises(crypto.DecryptionError, match="TOKEN_ENCRYPTION_KEY"):
        crypto.decrypt(stored)


def test_missing_or_bad_key_fails_loudly(settings):
    settings.TOKEN_ENCRYPTION_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="TOKEN_ENCRYPTION_KEY must be set"):
        crypto.encrypt("x")
    settings.TOKEN_ENCRYPTION_KEY = "not-a-key"
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        crypto.encrypt("x")


def test_only_one_default_provider_database_constraint(offline_provider):
    CalendarProvider.objects.filter(pk=offline_provider.pk).update(is_default=True)
    second = CalendarProvider(name="Fabrikam", tenant_id="fabrikam", client_id="c", active=True, is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_only_one_default_provider_clear_validation_error(offline_provider):
    CalendarProvider.objects.filter(pk=offline_provider.pk).update(is_default=True)
    second = CalendarProvider(name="Fabrikam", tenant_id="fabrikam", client_id="c", active=True, is_default=True)
    with pytest.raises(ValidationError) as excinfo:
        second.full_clean()
    assert "Another calendar provider is the default" in str(excinfo.value.message_dict["is_default"])


def test_active_provider(db):
    assert active_provider() is None
    with pytest.raises(NoActiveProvider, match="No calendar provider is active"):
        require_active_provider()
    make_provider("https://login.example.invalid", name="Old", active=False)
    current = make_provider("https://login.example.invalid", name="Current")
    assert active_provider() == current


def test_authority_host_must_be_https(db):
    provider = CalendarProvider(name="P", tenant_id="t", client_id="c", authority_host="http://login.example")
    with pytest.raises(ValidationError) as excinfo:
        provider.full_clean()
    assert "https://" in str(excinfo.value.message_dict["authority_host"])


def test_defaults_are_microsofts_public_cloud(db):
    provider = CalendarProvider(name="P", tenant_id="t", client_id="c")
    assert provider.authority_host == "https://login.microsoftonline.com"
    assert provider.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert provider.authority == "https://login.microsoftonline.com/t"
