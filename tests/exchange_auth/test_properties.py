"""Instance properties: typed values, defaults, validation, the cache and its invalidation."""

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from exchange_auth import properties
from exchange_auth.models import InstanceProperty
from exchange_auth.modes import Mode

pytestmark = pytest.mark.django_db


def test_defaults_from_the_spec():
    InstanceProperty.objects.all().delete()
    assert properties.sync_mode() is Mode.NORMAL
    assert properties.get(properties.MAX_EVENT_RETRY_COUNT) == 10
    assert properties.get(properties.EXCHANGE_CALLBACK_TIME_LIMIT) == 18000
    assert properties.get(properties.USE_USER_DEFAULT_TZ) is False
    assert properties.get(properties.CREATE_BLOCKING_RSV) is True
    assert properties.get(properties.PAST_SYNC_PERIOD_MONTHS) == 2
    assert properties.get(properties.BLOCKER_USER) == ""


def test_the_migration_lists_every_property_for_the_admin():
    assert set(InstanceProperty.objects.values_list("name", flat=True)) == set(properties.SPECS)


def test_set_value_is_typed():
    assert properties.set_value(properties.SYNC_INTEGRATION_MODE, "personal") == "Personal"
    assert properties.sync_mode() is Mode.PERSONAL
    properties.set_value(properties.USE_USER_DEFAULT_TZ, True)
    assert InstanceProperty.objects.get(name=properties.USE_USER_DEFAULT_TZ).value == "true"
    assert properties.get(properties.USE_USER_DEFAULT_TZ) is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (properties.SYNC_INTEGRATION_MODE, "Lenient", "must be one of Strict, Personal, Normal"),
        (properties.MAX_EVENT_RETRY_COUNT, "ten", "must be a whole number"),
        (properties.MAX_EVENT_RETRY_COUNT, "0", "must be at least 1"),
        (properties.USE_USER_DEFAULT_TZ, "maybe", "must be true or false"),
        (properties.BLOCKER_USER, "not-an-email", "must be an email address"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(name, value, message):
    with pytest.raises(ValidationError, match=message):
        properties.set_value(name, value)
    row = InstanceProperty(name=name, value=value)
    with pytest.raises(ValidationError) as excinfo:
        row.full_clean(validate_unique=False)
    assert message in " ".join(excinfo.value.message_dict["value"])


def test_unknown_property_name():
    with pytest.raises(KeyError, match="Unknown instance property"):
        properties.get("sn_wsd_rsvsync.nope")


def test_value_is_cached_after_commit_and_an_edit_invalidates(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert properties.sync_mode() is Mode.NORMAL
    assert cache.get(properties.CACHE_PREFIX + properties.SYNC_INTEGRATION_MODE) == {"value": "Normal"}
    # Written around the service (a raw UPDATE): the cache still answers.
    InstanceProperty.objects.filter(name=properties.SYNC_INTEGRATION_MODE).update(value="Strict")
    assert properties.sync_mode() is Mode.NORMAL
    # An edit through the model (the admin) drops the cached value.
    row = InstanceProperty.objects.get(name=properties.SYNC_INTEGRATION_MODE)
    row.value = "Personal"
    with django_capture_on_commit_callbacks(execute=True):
        row.save()
    assert cache.get(properties.CACHE_PREFIX + properties.SYNC_INTEGRATION_MODE) is None
    assert properties.sync_mode() is Mode.PERSONAL


def test_uncommitted_values_are_never_cached():
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Strict")
    assert properties.sync_mode() is Mode.STRICT  # read inside the test's transaction
    assert cache.get(properties.CACHE_PREFIX + properties.SYNC_INTEGRATION_MODE) is None


def test_invalid_row_written_around_validation_falls_back_to_default():
    InstanceProperty.objects.filter(name=properties.MAX_EVENT_RETRY_COUNT).update(value="lots")
    assert properties.get(properties.MAX_EVENT_RETRY_COUNT) == 10


def test_get_many_reads_what_get_reads_in_one_query(django_assert_num_queries):
    properties.set_value(properties.CHECKIN_AFTER_MINUTES, 20)
    with django_assert_num_queries(1):
        values = properties.get_many(properties.CHECKIN_REQUIRED_DEFAULT, properties.CHECKIN_BEFORE_MINUTES, properties.CHECKIN_AFTER_MINUTES)
    assert values == (False, 10, 20)
    InstanceProperty.objects.filter(name=properties.CHECKIN_BEFORE_MINUTES).update(value="many")
    assert properties.get_many(properties.CHECKIN_BEFORE_MINUTES) == (10,)  # invalid row: the default
