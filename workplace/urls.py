"""Root URLconf. Apps are included by dotted string so wiring adds no import arrows."""

from django.contrib import admin
from django.urls import include, path

from workplace.views import healthz, metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("calendar_sync.api_urls")),
    path("api/", include("reservations.api.urls")),
    path("outlook/", include("exchange_auth.urls")),
    path("sync/", include("calendar_sync.urls")),
    path("", include("reservations.urls")),
]


# API clients get JSON for unknown URLs; people get Django's page (a dotted string, like the includes).
handler404 = "reservations.api.errors.not_found"
