"""Mounted at /api/ by workplace.urls: /api/v1/..., /api/schema/, /api/docs/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from reservations.api import views

v1 = [
    path("me/", views.PingView.as_view(), name="me"),
    path("feeds/me/", views.MyFeedView.as_view(), name="feed-me"),
    path("rooms/", views.RoomListView.as_view(), name="room-list"),
    path("rooms/<int:room_id>/", views.RoomDetailView.as_view(), name="room-detail"),
    path("rooms/<int:room_id>/availability/", views.RoomAvailabilityView.as_view(), name="room-availability"),
    path("reservations/", views.ReservationListView.as_view(), name="reservation-list"),
    path("reservations/cancel/", views.ReservationBulkCancelView.as_view(), name="reservation-bulk-cancel"),
    path("reservations/<int:reservation_id>/", views.ReservationDetailView.as_view(), name="reservation-detail"),
    path("reservations/<int:reservation_id>/cancel/", views.ReservationCancelView.as_view(), name="reservation-cancel"),
    path("reservations/<int:reservation_id>/check_in/", views.ReservationCheckInView.as_view(), name="reservation-check-in"),
    path("reservations/<int:reservation_id>/approve/", views.ReservationApproveView.as_view(), name="reservation-approve"),
    path("reservations/<int:reservation_id>/decline/", views.ReservationDeclineView.as_view(), name="reservation-decline"),
    path("approvals/", views.ApprovalListView.as_view(), name="approval-list"),
]

app_name = "api"
urlpatterns = [
    *[path(f"v1/{p.pattern}", p.callback, name=p.name) for p in v1],
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from drf-spectacular-sidecar: served locally, no CDN.
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
