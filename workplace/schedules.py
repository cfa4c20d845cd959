"""Periodic tasks in the database (django-celery-beat's DatabaseScheduler), for data migrations.

Beat reads its schedule from the ``django_celery_beat`` tables, so admins change an interval,
pause a job or run it at another time in admin without a deploy. A product task is created
by a data migration under a stable name (``calendar_sync.sweep_sync_events``...), once: a
migration that runs again, or a later deploy, never writes over what an admin changed.
"""

from __future__ import annotations


def add_periodic_tasks(apps, entries: dict[str, dict]) -> None:
    """Create the missing tasks of ``entries`` ({name: {"task": dotted name, "every": seconds}}
    or {"task": ..., "crontab": {"minute": "30", "hour": "1"}} in UTC), leaving any existing one
    (maybe edited by an admin) as it is. ``apps`` is the migration's."""
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, entry in entries.items():
        if task_model.objects.filter(name=name).exists():
            continue
        when = {}
        if "crontab" in entry:
            fields = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*", **entry["crontab"]}
            when["crontab"], _ = crontab_model.objects.get_or_create(timezone="UTC", **fields)
        else:
            when["interval"], _ = interval_model.objects.get_or_create(every=int(entry["every"]), period="seconds")
        task_model.objects.create(name=name, task=entry["task"], enabled=True, description=entry.get("description", ""), **when)


def remove_periodic_tasks(apps, names) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(names)).delete()
