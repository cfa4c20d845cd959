from django.urls import include, path

app_name = "calendar_sync"

urlpatterns: list = [
    path("", include("calendar_sync.inbound.urls")),
]
