"""calendar_sync's REST endpoints (free/busy comes from Exchange, so they live here).

GET /api/v1/reservations/{id}/attendees/: each attendee's answer and free/busy.

``?refresh=1`` reads the answers from Exchange first (meetings the product created);
``availability`` comes from getSchedule through the organizer account ("unknown"
without one). Visibility is the reservations API's: someone else's reservation is 404.

GET /api/v1/freebusy/?emails=a,b&start=ISO&end=ISO: free/busy of up to 20 people over at
most 24 hours (the booking form's "check attendees' availability"); "unknown" for everyone
without an organizer account.

GET /api/v1/people/?search=bo: people by name or email for the attendee picker: the product's
own people and each tenant's directory (Graph's /users?$search, cached a few minutes).

All three ask Exchange, so each user gets API_EXCHANGE_LOOKUPS_PER_MINUTE calls a minute (60) across
them (the people search its own API_PEOPLE_SEARCHES_PER_MINUTE, 240); beyond it 429 with
Retry-After and the API's error shape. Counted atomically in the shared cache
(workplace.throttling), so the limits hold across web processes and hosts."""

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_auth.providers import provider_for_room
from reservations import selectors
from reservations.api.serializers import AwareDateTimeField, ErrorSerializer
from reservations.models import Attendee, Origin
from workplace.throttling import SharedScopedRateThrottle

from . import freebusy, people

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
    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "exchange_lookups"

    @extend_schema(
        summary="A reservation's attendees: their answers and free/busy",
        parameters=[OpenApiParameter("refresh", OpenApiTypes.BOOL, description="Read the answers from Exchange first.")],
        responses={200: ReservationAttendeesSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 429: ErrorSerializer},
    )
    def get(self, request, pk: int):
        reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=pk)
        if reservation is None:
            raise NotFound("No such reservation.")
        if request.query_params.get("refresh") in ("1", "true", "yes"):
            freebusy.attendee_responses_refresh(reservation=reservation)
            reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=pk)
        attendees = list(reservation.attendees.all())
        availability = freebusy.attendee_availability(start=reservation.start, end=reservation.end, emails=[a.email for a in attendees],
                                                      provider=provider_for_room(reservation.room))  # the room's tenant knows its people
        from_outlook = reservation.origin == Origin.EXCHANGE
        return Response(ReservationAttendeesSerializer({
            "reservation": reservation.pk,
            "attendees": [
                {"email": a.email, "name": a.name, "type": a.type, "response": "unknown" if from_outlook else a.response,
                 "availability": availability.get(a.email.lower(), "unknown")}
                for a in attendees
            ],
        }).data)


FREEBUSY_MAX_EMAILS = 20
FREEBUSY_MAX_RANGE = dt.timedelta(hours=24)


class FreeBusyQuerySerializer(serializers.Serializer):
    emails = serializers.CharField(help_text=f"Comma-separated email addresses (at most {FREEBUSY_MAX_EMAILS}).")
    start = AwareDateTimeField(help_text="ISO 8601 with an offset, e.g. 2030-05-04T09:00:00+02:00.")
    end = AwareDateTimeField(help_text="ISO 8601 with an offset; after start, at most 24 hours later.")

    def validate_emails(self, value: str) -> list[str]:
        emails, seen, bad = [], set(), []
        for part in value.replace(";", ",").split(","):
            email = part.strip()
            if not email:
                continue
            try:
                validate_email(email)
            except DjangoValidationError:
                bad.append(email)
                continue
            if email.lower() not in seen:
                seen.add(email.lower())
                emails.append(email)
        if bad:
            raise serializers.ValidationError([f"Not an email address: {email}" for email in bad[:5]])
        if not emails:
            raise serializers.ValidationError("Give at least one email address.")
        if len(emails) > FREEBUSY_MAX_EMAILS:
            raise serializers.ValidationError(f"At most {FREEBUSY_MAX_EMAILS} addresses at a time (got {len(emails)}).")
        return emails

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        if attrs["end"] - attrs["start"] > FREEBUSY_MAX_RANGE:
            raise serializers.ValidationError({"end": ["At most 24 hours after start."]})
        return attrs


class ScheduleSerializer(serializers.Serializer):
    email = serializers.EmailField()
    availability = serializers.ChoiceField(
        choices=AVAILABILITY, help_text='The busiest state in the range; "unknown" without an organizer account or for addresses Exchange doesn\'t know.',
    )


class FreeBusySerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    schedules = ScheduleSerializer(many=True)


class FreeBusyView(APIView):
    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "exchange_lookups"

    @extend_schema(
        summary="People's free/busy over a time range (at most 24 hours, 20 people)",
        parameters=[FreeBusyQuerySerializer],
        responses={200: FreeBusySerializer, 400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 429: ErrorSerializer},
    )
    def get(self, request):
        params = request.query_params
        data = {key: params.getlist(key)[-1] for key in params}
        if "emails" in params:  # emails=a,b and emails=a&emails=b alike
            data["emails"] = ",".join(params.getlist("emails"))
        query = FreeBusyQuerySerializer(data=data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        availability = freebusy.attendee_availability(start=data["start"], end=data["end"], emails=data["emails"])
        return Response(FreeBusySerializer({
            "start": data["start"], "end": data["end"],
            "schedules": [{"email": email, "availability": availability.get(email.lower(), "unknown")} for email in data["emails"]],
        }).data)


class PeopleQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        max_length=200, trim_whitespace=True,
        help_text=f"What was typed: the start of a name, a word of it, or of an email address (at least {people.MIN_QUERY} characters).",
    )

    def validate_search(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        query = people.clean_query(value)
        if len(query) < people.MIN_QUERY:
            raise serializers.ValidationError(f"Type at least {people.MIN_QUERY} characters.")
        return query


class PersonSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.EmailField()
    source = serializers.ChoiceField(choices=["user", "directory"], help_text='"user": has an account here; "directory": found in the organization\'s directory.')
    job_title = serializers.CharField(allow_blank=True)


class PeopleSerializer(serializers.Serializer):
    search = serializers.CharField()
    results = PersonSerializer(many=True)
    directory_answered = serializers.BooleanField(help_text="False when a tenant's directory couldn't be asked (its people are missing).")


class PeopleView(APIView):
    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "people_search"

    @extend_schema(
        summary="Find people by name or email (the product's people and the organization's directory)",
        parameters=[PeopleQuerySerializer],
        responses={200: PeopleSerializer, 400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 429: ErrorSerializer},
    )
    def get(self, request):
        query = PeopleQuerySerializer(data={key: request.query_params.getlist(key)[-1] for key in request.query_params})
        query.is_valid(raise_exception=True)
        found, answered = people.people_search(query.validated_data["search"])
        return Response(PeopleSerializer({
            "search": query.validated_data["search"], "results": [p.as_dict() for p in found], "directory_answered": answered,
        }).data)
