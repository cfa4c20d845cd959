"""Mounted at /outlook/ by workplace.urls."""

from django.urls import path

from exchange_auth import views

app_name = "exchange_auth"

urlpatterns = [
    path("", views.connection, name="connection"),
    path("connect/", views.connect, name="connect"),
    path("disconnect/", views.disconnect, name="disconnect"),
    path("callback/", views.callback, name="callback"),
    path("providers/<int:pk>/connect/", views.provider_connect, name="provider_connect"),
]
