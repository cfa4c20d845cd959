"""The check-in and no-show instance properties, created with their defaults so the admin
lists them (values written literally, as in 0002)."""

from django.db import migrations

DEFAULTS = {
    "sn_wsd_rsv.checkin_required_default": "false",
    "sn_wsd_rsv.checkin_before_minutes": "10",
    "sn_wsd_rsv.checkin_after_minutes": "15",
    "sn_wsd_rsv.checkin_anyone_at_panel": "true",
    "sn_wsd_rsv.noshow_series_limit": "3",
    "sn_wsd_rsv.noshow_confirm_hours": "24",
}


def create(apps, schema_editor):
    InstanceProperty = apps.get_model("exchange_auth", "InstanceProperty")
    db = schema_editor.connection.alias
    for name, value in DEFAULTS.items():
        InstanceProperty.objects.using(db).get_or_create(name=name, defaults={"value": value})


def drop(apps, schema_editor):
    InstanceProperty = apps.get_model("exchange_auth", "InstanceProperty")
    InstanceProperty.objects.using(schema_editor.connection.alias).filter(name__in=DEFAULTS).delete()


class Migration(migrations.Migration):
    dependencies = [("exchange_auth", "0005_provider_default_many_active")]

    operations = [migrations.RunPython(create, drop)]
