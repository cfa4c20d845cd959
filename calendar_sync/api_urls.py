"""calendar_sync's REST endpoints, mounted under /api/v1/ by workplace.urls beside
the reservations API (the root URLconf includes both by dotted string)."""

from django.urls import path

from . import api

urlpatterns = [
    path("people/", api.PeopleView.as_view(), name="people"),
    path("freebusy/", api.FreeBusyView.as_view(), name="freebusy"),
    path("reservations/<int:pk>/attendees/", api.ReservationAttendeesView.as_view(), name="reservation-attendees"),
]
