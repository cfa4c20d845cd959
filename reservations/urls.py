"""The employee portal, mounted at "/" by workplace.urls."""

from django.urls import path

from reservations import feed_views, views

app_name = "portal"

urlpatterns = [
    path("", views.finder, name="finder"),
    path("rooms/<int:room_id>/book/", views.book, name="book"),
    path("calendar/", views.building_day, name="building_day"),
    path("calendar/week/", views.building_week, name="building_week"),
    path("rooms/<int:room_id>/week/", views.room_week, name="room_week"),
    path("my/", views.my_reservations, name="my_reservations"),
    path("my/status/", views.reservation_status, name="reservation_status"),
    path("my/feed/", views.my_feed, name="my_feed"),
    path("feeds/<str:token>.ics", feed_views.calendar_feed, name="calendar_feed"),
    path("reservations/<int:reservation_id>/", views.reservation_detail, name="reservation_detail"),
    path("reservations/<int:reservation_id>/change/", views.change, name="change"),
    path("reservations/<int:reservation_id>/cancel/", views.cancel, name="cancel"),
    path("reservations/cancel/", views.cancel_selected, name="cancel_selected"),
    path("reservations/<int:reservation_id>/check-in/", views.check_in, name="check_in"),
    # The short URL on a room's door (its QR code): the signed-in employee's check-in there.
    path("r/<int:room_id>/", views.room_check_in, name="room_check_in"),
    path("series/<int:series_id>/confirm/", views.series_confirm, name="series_confirm"),
    path("panel/", views.panel, name="panel"),
    path("panel/state/", views.panel_state_view, name="panel_state"),
    path("panel/<slug:action>/", views.panel_action, name="panel_action"),
    path("utilization/", views.utilization_page, name="utilization"),
    path("settings/outlook/", views.outlook_settings, name="outlook_settings"),
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:reservation_id>/", views.decide, name="approval_decide"),
]
