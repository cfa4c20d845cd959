"""The Celery app ``workplace``: ``celery -A workplace worker`` / ``celery -A workplace beat``."""

import os

from celery import Celery

from observability import celery_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

app = Celery("workplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The correlation id of the request that queued a task follows it into the worker.
celery_context.connect()
