"""The Celery app ``workplace``: ``celery -A workplace worker`` / ``celery -A workplace beat``."""

import os

from celery import Celery, signals

from observability import celery_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

app = Celery("workplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The correlation id of the request that queued a task follows it into the worker.
celery_context.connect()


def close_old_connections(sender=None, **kwargs) -> None:
    """Before and after each task (in the thread that runs it), the connections a request would
    close: older than DATABASE_CONN_MAX_AGE (0 by default: every one, as Celery's fixup did),
    unusable after an error, or left in a transaction. Celery's fixup no longer closes them at
    every task (settings.CELERY_DB_REUSE_MAX), so a worker's threads keep theirs for the age the
    setting allows. Not for eager tasks: they run inside the caller's request or transaction."""
    request = getattr(sender, "request", None)
    if getattr(request, "is_eager", False):
        return
    from django import db

    db.close_old_connections()


signals.task_prerun.connect(close_old_connections, weak=False, dispatch_uid="workplace.db_prerun")
signals.task_postrun.connect(close_old_connections, weak=False, dispatch_uid="workplace.db_postrun")
