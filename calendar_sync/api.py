"""GET /sync/api/reservations/{id}/attendees/: each attendee's answer and free/busy.

``?refresh=1`` reads the answers from Exchange first (meetings the product created);
``availability`` comes from getSchedule through the organizer account ("unknown"
without one). Visibility is the reservations API's: someone else's reservation is 404."""

from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from reservations import selectors
from reservations.models import Origin

from . import freebusy


class ReservationAttendeesView(APIView):
    def get(self, request, pk: int):
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=pk)
        if reservation is None:
            raise NotFound("No such reservation.")
        if request.query_params.get("refresh") in ("1", "true", "yes"):
            freebusy.attendee_responses_refresh(reservation=reservation)
            reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=pk)
        attendees = list(reservation.attendees.all())
        availability = freebusy.attendee_availability(start=reservation.start, end=reservation.end, emails=[a.email for a in attendees])
        from_outlook = reservation.origin == Origin.EXCHANGE
        return Response({
            "reservation": reservation.pk,
            "attendees": [
                {"email": a.email, "name": a.name, "type": a.type, "response": "unknown" if from_outlook else a.response,
                 "availability": availability.get(a.email.lower(), "unknown")}
                for a in attendees
            ],
        })
