"""The portal header's default provider, read through the shared cache
(exchange_auth.providers.cached_default_provider_id): no query once cached, dropped when a
provider is saved or deleted, never filled from inside a transaction."""

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from exchange_auth.models import CalendarProvider
from exchange_auth.providers import DEFAULT_PROVIDER_CACHE_KEY, cached_default_provider_id
from tests.exchange_auth.conftest import make_provider

pytestmark = pytest.mark.django_db(transaction=True)  # outside a transaction, as a request is


def test_cached_after_the_first_read():
    provider = make_provider("https://login.example.invalid")
    assert cached_default_provider_id() == provider.pk
    with CaptureQueriesContext(connection) as queries:
        assert cached_default_provider_id() == provider.pk
    assert len(queries) == 0
    assert cache.get(DEFAULT_PROVIDER_CACHE_KEY) == provider.pk


def test_no_active_provider_is_cached_too_and_a_new_one_is_seen():
    assert cached_default_provider_id() is None
    with CaptureQueriesContext(connection) as queries:
        assert cached_default_provider_id() is None
    assert len(queries) == 0
    provider = make_provider("https://login.example.invalid")  # post_save drops the cached "none"
    assert cached_default_provider_id() == provider.pk


def test_saving_a_provider_drops_the_cached_default():
    first = make_provider("https://login.example.invalid")
    second = make_provider("https://login.example.invalid", name="Fabrikam", tenant_id="fabrikam")
    assert cached_default_provider_id() == first.pk  # by name, neither flagged default
    second.is_default = True
    second.save()
    assert cached_default_provider_id() == second.pk
    second.active = False
    second.save()
    assert cached_default_provider_id() == first.pk


def test_deleting_the_provider_drops_the_cached_default():
    provider = make_provider("https://login.example.invalid")
    assert cached_default_provider_id() == provider.pk
    provider.delete()
    assert cached_default_provider_id() is None


def test_a_read_inside_a_transaction_is_not_cached():
    provider = make_provider("https://login.example.invalid")
    with transaction.atomic():
        CalendarProvider.objects.filter(pk=provider.pk).update(active=False)  # uncommitted, no signal
        assert cached_default_provider_id() is None
        assert cache.get(DEFAULT_PROVIDER_CACHE_KEY) is None
        transaction.set_rollback(True)
    assert cached_default_provider_id() == provider.pk


def test_the_cached_value_holds_no_secret():
    make_provider("https://login.example.invalid", client_secret="s3cret-value-42")
    cached_default_provider_id()
    assert isinstance(cache.get(DEFAULT_PROVIDER_CACHE_KEY), int)
