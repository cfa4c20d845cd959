"""The Celery app ``workplace``: ``celery -A workplace worker`` / ``celery -A workplace beat``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

app = Celery("workplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
