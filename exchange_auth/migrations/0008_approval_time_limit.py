"""The instance property ``sn_wsd_rsvsync.approval_time_limit`` (seconds a pending approval may
wait before the reservation is rejected; default 48 hours), listed for the admin like the others."""

from django.db import migrations

NAME = "sn_wsd_rsvsync.approval_time_limit"


def add_property(apps, schema_editor):
    InstanceProperty = apps.get_model("exchange_auth", "InstanceProperty")
    InstanceProperty.objects.using(schema_editor.connection.alias).get_or_create(name=NAME, defaults={"value": "172800"})


def remove_property(apps, schema_editor):
    apps.get_model("exchange_auth", "InstanceProperty").objects.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("exchange_auth", "0007_checkin_properties")]
    operations = [migrations.RunPython(add_property, remove_property)]
