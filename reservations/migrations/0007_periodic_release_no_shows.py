"""The release of no-shows (reservations.tasks) as a periodic task in the database, once."""

from django.db import migrations

from workplace.schedules import add_periodic_tasks, remove_periodic_tasks

ENTRIES = {
    "reservations.release_no_shows": {"task": "reservations.tasks.release_no_shows", "every": 30,
                                      "description": "Releases reservations not checked in by the end of their check-in window."},
}


def forwards(apps, schema_editor):
    add_periodic_tasks(apps, ENTRIES)


def backwards(apps, schema_editor):
    remove_periodic_tasks(apps, ENTRIES)


class Migration(migrations.Migration):
    dependencies = [
        ("reservations", "0006_checkin_release"),
        ("workplace", "0005_periodic_tasks"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
