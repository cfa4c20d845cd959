"""The in-process cache in front of the shared one: bookings read the sync mode without a
Redis round trip, an edit in this process is seen at once, an edit elsewhere within
INSTANCE_PROPERTY_LOCAL_SECONDS, and a rolled-back edit never lingers."""

import pytest
from django.core.cache import cache
from django.db import transaction

from exchange_auth import properties
from exchange_auth.models import InstanceProperty
from exchange_auth.modes import Mode

pytestmark = pytest.mark.django_db

KEY = properties.CACHE_PREFIX + properties.SYNC_INTEGRATION_MODE


@pytest.fixture(autouse=True)
def local_cache(settings):
    settings.INSTANCE_PROPERTY_LOCAL_SECONDS = 3
    properties.forget_local()
    cache.clear()
    yield
    properties.forget_local()
    cache.clear()


@pytest.fixture
def shared_reads(monkeypatch):
    """How many times the shared cache (Redis) is asked."""
    calls = []
    real_get = cache.get

    def counting_get(key, *args, **kwargs):
        calls.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(properties.cache, "get", counting_get)
    return calls


def test_repeated_reads_ask_neither_redis_nor_the_database(django_capture_on_commit_callbacks, django_assert_num_queries, shared_reads):
    with django_capture_on_commit_callbacks(execute=True):
        assert properties.sync_mode() is Mode.NORMAL  # first read: shared cache, then the row
    assert cache.get(KEY) == {"value": "Normal"}
    shared_reads.clear()

    with django_assert_num_queries(0):
        for _ in range(50):
            assert properties.sync_mode() is Mode.NORMAL
    assert shared_reads == []


def test_an_edit_in_this_process_is_seen_at_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert properties.sync_mode() is Mode.NORMAL
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Strict")
    assert properties.sync_mode() is Mode.STRICT
    # ... and through the model (the admin's form saves the row).
    row = InstanceProperty.objects.get(name=properties.SYNC_INTEGRATION_MODE)
    row.value = "Personal"
    with django_capture_on_commit_callbacks(execute=True):
        row.save()
    assert properties.sync_mode() is Mode.PERSONAL


def test_a_rolled_back_edit_never_lingers(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert properties.sync_mode() is Mode.NORMAL
        try:
            with transaction.atomic():
                properties.set_value(properties.SYNC_INTEGRATION_MODE, "Strict")
                assert properties.sync_mode() is Mode.STRICT  # this transaction sees its own edit
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert properties.sync_mode() is Mode.NORMAL
    assert properties.sync_mode() is Mode.NORMAL
    assert cache.get(KEY) == {"value": "Normal"}


def test_an_edit_in_another_process_is_seen_within_the_lifetime(django_capture_on_commit_callbacks, monkeypatch):
    with django_capture_on_commit_callbacks(execute=True):
        assert properties.sync_mode() is Mode.NORMAL
    # Another process (the admin's web worker) saves the row and drops the shared value.
    InstanceProperty.objects.filter(name=properties.SYNC_INTEGRATION_MODE).update(value="Strict")
    cache.delete(KEY)
    assert properties.sync_mode() is Mode.NORMAL  # still this process's copy, for a few seconds

    later = properties.time.monotonic() + 3.1
    monkeypatch.setattr(properties.time, "monotonic", lambda: later)
    assert properties.sync_mode() is Mode.STRICT


def test_switched_off_every_read_asks_the_shared_cache(settings, django_capture_on_commit_callbacks, shared_reads):
    settings.INSTANCE_PROPERTY_LOCAL_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        properties.sync_mode()
    shared_reads.clear()
    properties.sync_mode()
    properties.sync_mode()
    assert len(shared_reads) == 2
