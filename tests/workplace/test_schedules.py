"""Periodic tasks live in the database (django-celery-beat): created once by a data
migration under stable names, editable by admins, never written over by beat or a deploy."""

import importlib

import pytest
from django.apps import apps as global_apps
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from calendar_sync.apps import BEAT_SCHEDULE as SYNC_SCHEDULE
from exchange_auth.apps import BEAT_SCHEDULE as AUTH_SCHEDULE
from reservations.apps import BEAT_SCHEDULE as RESERVATIONS_SCHEDULE
from workplace.celery import app

pytestmark = pytest.mark.django_db

# Every data migration that creates periodic tasks (a task added to an app needs one).
MIGRATIONS = [importlib.import_module(name) for name in (
    "workplace.migrations.0005_periodic_tasks",
    "calendar_sync.migrations.0006_periodic_sync_rooms",
    "reservations.migrations.0007_periodic_release_no_shows",
)]
EXPECTED = {**SYNC_SCHEDULE, **AUTH_SCHEDULE, **RESERVATIONS_SCHEDULE}


def run_migration():
    for migration in MIGRATIONS:
        migration.forwards(global_apps, None)


def test_the_migration_creates_every_periodic_task_of_the_code():
    """(tests/calendar_sync/test_preflight.py's expiry warning: the daily warn_credential_expiry here.)"""
    PeriodicTask.objects.all().delete()
    run_migration()
    app.loader.import_default_modules()
    rows = {t.name: t for t in PeriodicTask.objects.select_related("interval", "crontab")}
    assert set(rows) == set(EXPECTED)  # a task added to an app's BEAT_SCHEDULE needs its migration
    for name, entry in EXPECTED.items():
        assert rows[name].task == entry["task"] and rows[name].task in app.tasks, name
        if "crontab" in entry:
            cron = rows[name].crontab
            assert {k: getattr(cron, k) for k in entry["crontab"]} == entry["crontab"] and str(cron.timezone) == "UTC", name
        else:
            assert rows[name].interval.period == "seconds" and rows[name].interval.every == int(entry["schedule"]), name
        assert rows[name].enabled and rows[name].description


# Beat's scheduler closes the connection between looks (close_old_connections): a real commit.
@pytest.mark.django_db(transaction=True)
def test_an_admins_change_survives_the_migration_and_beat_starting():
    PeriodicTask.objects.all().delete()
    run_migration()
    task = PeriodicTask.objects.get(name="calendar_sync.sweep_inbox")
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
    task.save()
    PeriodicTask.objects.filter(name="exchange_auth.warn_credential_expiry").update(enabled=False)

    run_migration()  # a second run (or a later deploy) adds only what is missing
    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.setup_schedule()  # what `celery beat` does at start
    assert PeriodicTask.objects.get(name="calendar_sync.sweep_inbox").interval.every == 300
    assert not PeriodicTask.objects.get(name="exchange_auth.warn_credential_expiry").enabled
    schedule = scheduler.all_as_schedule()
    assert schedule["calendar_sync.sweep_inbox"].schedule.run_every.total_seconds() == 300
    assert "exchange_auth.warn_credential_expiry" not in schedule  # paused by the admin
    assert "calendar_sync.sweep_sync_events" in schedule


def test_beat_uses_the_database_scheduler():
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert not any(name.startswith(("calendar_sync.", "exchange_auth.", "reservations.")) for name in app.conf.beat_schedule)
