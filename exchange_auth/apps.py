from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save

# This app's periodic tasks (in the database: migration 0006_periodic_tasks creates them).
BEAT_SCHEDULE = {
    # Daily: warn the admins 30 and 7 days before the client secret or certificate expires.
    "exchange_auth.warn_credential_expiry": {"task": "exchange_auth.tasks.warn_credential_expiry", "schedule": 86400.0},
}


class ExchangeAuthConfig(AppConfig):
    name = "exchange_auth"
    verbose_name = "Exchange credentials and sync mode"

    def ready(self) -> None:
        # Imported here, not at the top: properties imports the models, and models can only
        # be imported once Django has loaded the apps (this module is read before that).
        from exchange_auth import properties, providers
        from exchange_auth.models import CalendarProvider, InstanceProperty

        # An edit that bypasses properties.set_value (the admin's form, a bulk delete, the
        # shell) still drops the cached value.
        for signal in (post_save, post_delete):
            signal.connect(properties.invalidate_on_edit, sender=InstanceProperty, dispatch_uid="exchange_auth.property_invalidate")
            # The portal header's cached default provider (providers.cached_default_provider_id).
            signal.connect(providers.invalidate_cached_provider, sender=CalendarProvider, dispatch_uid="exchange_auth.provider_invalidate")
