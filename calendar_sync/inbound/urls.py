"""Inbound sync's URLs, included from ``calendar_sync.urls`` (mounted at /sync/)."""

from django.urls import path

from . import webhook

urlpatterns = [
    path("webhook/", webhook.notifications, name="webhook"),
    path("webhook/lifecycle/", webhook.notifications, name="webhook-lifecycle"),
]
