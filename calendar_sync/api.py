"""GET /api/v1/reservations/{id}/attendees/: each attendee's answer and free/busy.

``?refresh=1`` reads the answers from Exchange first (meetings the product created);
``availability`` comes from getSchedule through the organizer account ("unknown"
without one). Visibility is the reservations API's: someone else's reservation is 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from reservations import selectors
from reservations.api.serializers import ErrorSerializer
from reservations.models import Attendee, Origin

from . import freebusy

AVAILABILITY = ["free", "tentative", "busy", "oof", "workingElsewhere", "unknown"]


class AttendeeAnswerSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(allow_blank=True)
    type = serializers.ChoiceField(choices=Attendee.Type.choices)
    response = serializers.ChoiceField(
        choices=Attendee.Response.choices, help_text='The attendee\'s answer; "unknown" for meetings created in Outlook.',
    )
    availability = serializers.ChoiceField(
        choices=AVAILABILITY, help_text='Free/busy during the reservation, from Exchange; "unknown" without an organizer account.',
    )


class ReservationAttendeesSerializer(serializers.Serializer):
    reservation = serializers.IntegerField()
    attendees = AttendeeAnswerSerializer(many=True)


class ReservationAttendeesView(APIView):
    @extend_schema(
        summary="A reservation's attendees: their answers and free/busy",
        parameters=[OpenApiParameter("refresh", OpenApiTypes.BOOL, description="Read the answers from Exchange first.")],
        responses={200: ReservationAttendeesSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
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
        return Response(ReservationAttendeesSerializer({
            "reservation": reservation.pk,
            "attendees": [
                {"email": a.email, "name": a.name, "type": a.type, "response": "unknown" if from_outlook else a.response,
                 "availability": availability.get(a.email.lower(), "unknown")}
                for a in attendees
            ],
        }).data)
