"""The upgrade: the per-provider strict_mode checkbox becomes the instance property
sn_wsd_rsvsync.sync_integration_mode (0002) and the column is dropped (0003)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("exchange_auth", "0001_initial")
AFTER = ("exchange_auth", "0003_remove_provider_strict_mode")
MODE = "sn_wsd_rsvsync.sync_integration_mode"


def _upgrade(migrator, providers: list[dict]) -> tuple[str, object]:
    old_state = migrator.apply_initial_migration(BEFORE)
    CalendarProvider = old_state.apps.get_model("exchange_auth", "CalendarProvider")
    for values in providers:
        CalendarProvider.objects.create(tenant_id="contoso", client_id="wsd", **values)
    new_state = migrator.apply_tested_migration(AFTER)
    InstanceProperty = new_state.apps.get_model("exchange_auth", "InstanceProperty")
    return InstanceProperty.objects.get(name=MODE).value, new_state


def test_strict_mode_on_an_active_provider_becomes_strict(migrator):
    mode, state = _upgrade(migrator, [
        {"name": "Contoso", "active": True, "strict_mode": True},
        {"name": "Old", "active": False, "strict_mode": False},
    ])
    assert mode == "Strict"
    CalendarProvider = state.apps.get_model("exchange_auth", "CalendarProvider")
    assert "strict_mode" not in {field.name for field in CalendarProvider._meta.get_fields()}
    assert CalendarProvider.objects.count() == 2  # providers survive the upgrade


def test_strict_mode_only_on_an_inactive_provider_becomes_normal(migrator):
    mode, _ = _upgrade(migrator, [
        {"name": "Contoso", "active": True, "strict_mode": False},
        {"name": "Old", "active": False, "strict_mode": True},
    ])
    assert mode == "Normal"


def test_no_strict_mode_anywhere_becomes_normal(migrator):
    mode, _ = _upgrade(migrator, [{"name": "Contoso", "active": True, "strict_mode": False}])
    assert mode == "Normal"


def test_no_providers_at_all_becomes_normal(migrator):
    mode, state = _upgrade(migrator, [])
    assert mode == "Normal"
    InstanceProperty = state.apps.get_model("exchange_auth", "InstanceProperty")
    assert InstanceProperty.objects.get(name="sn_wsd_rsvsync.max_event_retry_count").value == "10"


def test_downgrade_gives_the_active_provider_strict_mode_back(migrator):
    old_state = migrator.apply_initial_migration(AFTER)
    CalendarProvider = old_state.apps.get_model("exchange_auth", "CalendarProvider")
    InstanceProperty = old_state.apps.get_model("exchange_auth", "InstanceProperty")
    CalendarProvider.objects.create(name="Contoso", tenant_id="contoso", client_id="wsd", active=True)
    InstanceProperty.objects.filter(name=MODE).update(value="Strict")
    state = migrator.apply_tested_migration(BEFORE)
    CalendarProvider = state.apps.get_model("exchange_auth", "CalendarProvider")
    assert CalendarProvider.objects.get(name="Contoso").strict_mode is True


def test_admin_no_longer_shows_strict_mode():
    from exchange_auth.admin import CalendarProviderForm

    assert "strict_mode" not in CalendarProviderForm.base_fields
