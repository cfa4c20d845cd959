"""The product's periodic tasks, created once in django-celery-beat's tables (workplace.schedules).

Frozen here on purpose (a migration must not change with the code): the names are the stable
names of calendar_sync.apps.BEAT_SCHEDULE and exchange_auth.apps.BEAT_SCHEDULE, which
tests/workplace/test_schedules.py compares against.
"""

from django.conf import settings
from django.db import migrations

from workplace.schedules import add_periodic_tasks, remove_periodic_tasks

OUTBOUND = "calendar_sync.outbound.tasks"
INBOUND = "calendar_sync.inbound.tasks"


def entries() -> dict[str, dict]:
    return {
        "calendar_sync.sweep_sync_events": {"task": f"{OUTBOUND}.sweep_sync_events", "every": 60,
                                            "description": "Pushes whose task was lost (killed worker) are queued again."},
        "calendar_sync.check_awaiting_reservations": {"task": f"{OUTBOUND}.check_awaiting_reservations", "every": 600,
                                                      "description": "Reads the room's answer to reservations still awaiting confirmation."},
        "calendar_sync.clean_up_unanswered_reservations": {"task": f"{OUTBOUND}.clean_up_unanswered_reservations", "every": 600,
                                                           "description": "Rejects reservations the room never answered within the callback time limit."},
        "calendar_sync.ensure_subscriptions": {"task": f"{INBOUND}.ensure_subscriptions", "every": 900,
                                               "description": "Creates missing Graph subscriptions and renews those expiring soon."},
        "calendar_sync.sweep_inbox": {"task": f"{INBOUND}.sweep_inbox", "every": 60,
                                      "description": "Notifications whose pull was lost get a pull again."},
        "calendar_sync.run_nightly_reconcile": {"task": f"{INBOUND}.run_nightly_reconcile", "every": 900,
                                                "description": "Starts the nightly pass of each building whose nightly time (02:30 or its own) just passed."},
        "calendar_sync.poll_unsubscribed": {"task": f"{INBOUND}.poll_unsubscribed",
                                            "every": int(getattr(settings, "CALENDAR_SYNC_POLL_SECONDS", 60)),
                                            "description": "Pulls the mailboxes that couldn't be subscribed."},
        "exchange_auth.warn_credential_expiry": {"task": "exchange_auth.tasks.warn_credential_expiry", "every": 86400,
                                                 "description": "Warns the admins 30 and 7 days before a client secret or certificate expires."},
    }


def forwards(apps, schema_editor):
    add_periodic_tasks(apps, entries())


def backwards(apps, schema_editor):
    remove_periodic_tasks(apps, entries())


class Migration(migrations.Migration):
    dependencies = [
        ("workplace", "0004_building_nightly_time"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
