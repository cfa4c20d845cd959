"""Instance properties, and the upgrade of the per-provider strict mode.

``sn_wsd_rsvsync.sync_integration_mode`` becomes ``Strict`` when any *active*
provider had strict mode on, else ``Normal``. The other properties are created
with their defaults so the admin lists every one of them. Values are written
here literally (not imported from ``exchange_auth.properties``) so the
migration keeps doing what it did when the code moves on.
"""

from django.db import migrations, models

DEFAULTS = {
    "sn_wsd_rsvsync.max_event_retry_count": "10",
    "sn_wsd_rsvsync.exchange_callback_time_limit": "18000",
    "sn_wsd_rsvsync.use_user_default_tz": "false",
    "sn_wsd_rsvsync.create_blocking_rsv": "true",
    "sn_wsd_rsvsync.past_sync_period_months": "2",
    "sn_wsd_rsv.blocker_user": "",
}


def strict_mode_to_property(apps, schema_editor):
    CalendarProvider = apps.get_model("exchange_auth", "CalendarProvider")
    InstanceProperty = apps.get_model("exchange_auth", "InstanceProperty")
    db = schema_editor.connection.alias
    strict = CalendarProvider.objects.using(db).filter(active=True, strict_mode=True).exists()
    InstanceProperty.objects.using(db).update_or_create(
        name="sn_wsd_rsvsync.sync_integration_mode", defaults={"value": "Strict" if strict else "Normal"}
    )
    for name, value in DEFAULTS.items():
        InstanceProperty.objects.using(db).get_or_create(name=name, defaults={"value": value})


def property_to_strict_mode(apps, schema_editor):
    """Backwards: the active provider gets strict mode back when the property says Strict."""
    CalendarProvider = apps.get_model("exchange_auth", "CalendarProvider")
    InstanceProperty = apps.get_model("exchange_auth", "InstanceProperty")
    db = schema_editor.connection.alias
    mode = (
        InstanceProperty.objects.using(db)
        .filter(name="sn_wsd_rsvsync.sync_integration_mode")
        .values_list("value", flat=True)
        .first()
    )
    CalendarProvider.objects.using(db).filter(active=True).update(strict_mode=(mode == "Strict"))


class Migration(migrations.Migration):

    dependencies = [
        ("exchange_auth", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name='InstanceProperty',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=120, unique=True)),
                ('value', models.TextField(blank=True, default='')),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name_plural': 'instance properties',
                'ordering': ['name'],
            },
        ),
        migrations.RunPython(strict_mode_to_property, property_to_strict_mode),
    ]
