"""The nightly room import (calendar_sync.directory) as a periodic task in the database, once."""

from django.db import migrations

from workplace.schedules import add_periodic_tasks, remove_periodic_tasks

ENTRIES = {
    "calendar_sync.sync_rooms": {"task": "calendar_sync.directory.tasks.sync_rooms", "crontab": {"minute": "30", "hour": "1"},
                                 "description": "Imports and refreshes rooms and room lists from Exchange (Graph places), 01:30 UTC."},
}


def forwards(apps, schema_editor):
    add_periodic_tasks(apps, ENTRIES)


def backwards(apps, schema_editor):
    remove_periodic_tasks(apps, ENTRIES)


class Migration(migrations.Migration):
    dependencies = [
        ("calendar_sync", "0005_provider_keyed_mailbox_state"),
        ("workplace", "0005_periodic_tasks"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
