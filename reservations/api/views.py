"""The v1 REST API. Each view parses input, calls one service or selector, and
serializes the result. Errors take one shape (see ``errors.py``).

Decisions an API client relies on:

* Reservations made or changed here always carry source ``rest_api`` and
  subsource ``sn_wsd_rest_api``. Sending another value for ``source`` or
  ``subsource`` is refused with 400 (sending those very values is accepted).
* An employee sees and changes the reservations they made or that are for
  them; someone else's reservation answers 404, as if it did not exist (its
  existence is nobody else's business). Staff see and change all.
"""

import datetime as dt

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_auth.modes import REST_API_SUBSOURCE
from reservations import fastpaths, feeds, rules, selectors, services
from reservations.api import pagination
from reservations.api.serializers import (
    AvailabilityFilterSerializer,
    AvailabilitySerializer,
    BulkCancelSerializer,
    CancelResultSerializer,
    CancelSerializer,
    DeclineSerializer,
    ErrorSerializer,
    FeedSerializer,
    ReservationCreateSerializer,
    ReservationFilterSerializer,
    ReservationSerializer,
    ReservationUpdateSerializer,
    RoomFilterSerializer,
    RoomSerializer,
)
from reservations.exceptions import InvalidReservation
from reservations.models import ACTIVE_STATES, CheckInChannel, Source
from workplace.throttling import SharedScopedRateThrottle

API_CHANNEL = {"source": Source.REST_API, "subsource": REST_API_SUBSOURCE}
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}
# What a request with a body can also get: too large (413), not JSON or a form (415).
BODY_ERRORS = {**ERRORS, 413: ErrorSerializer, 415: ErrorSerializer}


def _query(serializer_class, request):
    """Validate query parameters; repeated keys (state=a&state=b) become lists."""
    data = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        data[key] = values if key == "state" else values[-1]
    if "state" in data:
        data["state"] = [part for value in data["state"] for part in value.split(",") if part]
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _paginated(view: APIView, request, queryset, serializer_class):
    paginator = pagination.Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def _visible_reservation(request, reservation_id: int):
    reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise NotFound("No such reservation.")
    return reservation


def _fresh(reservation_id: int):
    return selectors.reservation_queryset().get(pk=reservation_id)


class RoomListView(APIView):
    @extend_schema(
        parameters=[RoomFilterSerializer, *pagination.PARAMETERS],
        responses={200: pagination.page_of(RoomSerializer), **ERRORS}, summary="Find rooms", operation_id="v1_rooms_list",
    )
    def get(self, request):
        filters = _query(RoomFilterSerializer, request)
        equipment = [slug.strip() for slug in filters.get("equipment", "").split(",") if slug.strip()]
        rooms = selectors.room_list_available(
            building=filters.get("building"), floor=filters.get("floor"), capacity_min=filters.get("capacity_min"),
            equipment=equipment, arrangement=filters.get("arrangement"),
            free_from=filters.get("free_from"), free_to=filters.get("free_to"),
        )
        return _paginated(self, request, rooms, RoomSerializer)


class RoomDetailView(APIView):
    @extend_schema(responses={200: RoomSerializer, **ERRORS}, summary="One room")
    def get(self, request, room_id: int):
        room = selectors.room_queryset().filter(pk=room_id).first()
        if room is None:
            raise NotFound("No such room.")
        return Response(RoomSerializer(room).data)


class RoomAvailabilityView(APIView):
    @extend_schema(parameters=[AvailabilityFilterSerializer], responses={200: AvailabilitySerializer, **ERRORS}, summary="A room's busy slots on a day")
    def get(self, request, room_id: int):
        room = selectors.room_queryset().filter(pk=room_id).first()
        if room is None:
            raise NotFound("No such room.")
        tz = room.building.tzinfo
        day = _query(AvailabilityFilterSerializer, request).get("date") or dt.datetime.now(tz).date()
        start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
        busy = selectors.room_busy_slots(room=room, start=start, end=start + dt.timedelta(days=1))
        data = {
            "room": room.pk,
            "date": day.isoformat(),
            "timezone": room.building.timezone,
            "busy": [{"start": r.start.astimezone(tz).isoformat(), "end": r.end.astimezone(tz).isoformat(), "state": r.state} for r in busy],
        }
        return Response(data)


class ReservationListView(APIView):
    @extend_schema(
        parameters=[ReservationFilterSerializer, *pagination.PARAMETERS],
        responses={200: pagination.page_of(ReservationSerializer), **ERRORS}, operation_id="v1_reservations_list",
        summary="My reservations (staff: everyone's)",
    )
    def get(self, request):
        filters = _query(ReservationFilterSerializer, request)
        rows = selectors.reservation_list_for_user(
            user=request.user, states=filters.get("state", ()), room=filters.get("room"),
            starts_after=filters.get("starts_after"), starts_before=filters.get("starts_before"),
            series=filters.get("series"), requested_for=filters.get("requested_for"),
        )
        return _paginated(self, request, rows, ReservationSerializer)

    @extend_schema(request=ReservationCreateSerializer, responses={201: ReservationSerializer, **BODY_ERRORS}, summary="Book a room (optionally recurring)")
    def post(self, request):
        serializer = ReservationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        found = fastpaths.room_for_booking(room_id=data["room"])
        if found is None:
            raise ValidationError({"room": [f"No room has the id {data['room']}."]})
        room, default_arrangement = found
        reservation = services.reservation_create(
            actor=request.user, room=room, arrangement=data["arrangement"] or default_arrangement, subject=data["subject"],
            body=data["body"], start=data["start"], end=data["end"], requested_for=data["requested_for"],
            attendees=data["attendees"], kind=data["kind"], recurrence=serializer.recurrence_value(), online_meeting=data["online_meeting"], **API_CHANNEL,
        )
        return Response(ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)


class ReservationDetailView(APIView):
    @extend_schema(responses={200: ReservationSerializer, **ERRORS}, summary="One reservation")
    def get(self, request, reservation_id: int):
        return Response(ReservationSerializer(_visible_reservation(request, reservation_id)).data)

    @extend_schema(
        request=ReservationUpdateSerializer,
        responses={200: ReservationSerializer, **BODY_ERRORS},
        summary="Change a reservation (scope=series: every coming occurrence)",
    )
    def patch(self, request, reservation_id: int):
        reservation = _visible_reservation(request, reservation_id)
        serializer = ReservationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.reservation_update(
            actor=request.user, reservation=reservation, scope=serializer.validated_data["scope"],
            **serializer.changes(), **API_CHANNEL,
        )
        return Response(ReservationSerializer(_fresh(reservation.pk)).data)


def _cancel_meeting(serializer, reservations) -> dict:
    """``cancel_meeting=false`` (keep the meeting, release the room) where the product can
    choose for every reservation cancelled (the portal's "also cancel the meeting on people's
    calendars" box, SPEC §3); elsewhere it would be silently ignored, so it is refused."""
    if serializer.validated_data["cancel_meeting"]:
        return {}
    active = [row for row in reservations if row.state in ACTIVE_STATES]
    if active and not rules.offer_cancel_meeting_choice(active):
        raise InvalidReservation(
            "The meeting can't be kept: a meeting the room organizes is cancelled with the reservation, one created in "
            "Outlook is declined by the room, and a room that doesn't sync has no meeting.",
            extra={"cancel_meeting": ["Leave it out or send true for these reservations."]},
        )
    return {"cancel_meeting": False}


class ReservationCancelView(APIView):
    @extend_schema(request=CancelSerializer, responses={200: CancelResultSerializer, **BODY_ERRORS}, summary="Cancel a reservation or its series")
    def post(self, request, reservation_id: int):
        reservation = _visible_reservation(request, reservation_id)
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scope = serializer.validated_data["scope"]
        affected = [reservation]
        if scope == "series" and reservation.series_id:
            affected = list(selectors.reservation_queryset().filter(
                series_id=reservation.series_id, state__in=ACTIVE_STATES, end__gt=timezone.now())) or affected
        cancelled = services.reservation_cancel(
            actor=request.user, reservation=reservation, scope=scope,
            reason=serializer.validated_data["reason"], **_cancel_meeting(serializer, affected), **API_CHANNEL,
        )
        rows = selectors.reservation_queryset().filter(pk__in=[r.pk for r in cancelled] or [reservation.pk])
        return Response({"cancelled": ReservationSerializer(rows, many=True).data})


class ReservationCheckInView(APIView):
    # Per employee, shared with the portal's and the QR code's check-ins (429 with Retry-After beyond it).
    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "check_in"

    @extend_schema(
        request=None, responses={200: ReservationSerializer, **BODY_ERRORS, 429: ErrorSerializer}, summary="Check a reservation in",
        description=(
            "Within its check-in window (from `check_in.opens` to `check_in.closes`), by its requested-for employee, its "
            "requester or an attendee. Checking in twice is harmless (the first stays). 409 `outside_window` / `released` "
            "/ `not_active` otherwise; a reservation not checked in by `closes` is released and its room freed. "
            "Rate-limited per employee (`API_CHECK_INS_PER_MINUTE`, shared with the portal's and the QR code's "
            "check-ins): 429 with `Retry-After` beyond it."
        ),
    )
    def post(self, request, reservation_id: int):
        # Attendees may check in without seeing the reservation otherwise; to anyone else who
        # can't see it, it doesn't exist (404); staff who can are told they may not (403).
        reservation = selectors.reservation_queryset().filter(pk=reservation_id).first()
        if reservation is None or not (
            services.may_check_in(reservation, request.user, CheckInChannel.API)
            or selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id) is not None
        ):
            raise NotFound("No such reservation.")
        services.check_in(reservation, actor=request.user, channel=CheckInChannel.API)
        return Response(ReservationSerializer(_fresh(reservation.pk)).data)


class ReservationBulkCancelView(APIView):
    @extend_schema(request=BulkCancelSerializer, responses={200: CancelResultSerializer, **BODY_ERRORS}, summary="Cancel several reservations at once (all or none)", operation_id="reservations_bulk_cancel")
    def post(self, request):
        serializer = BulkCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = serializer.validated_data["ids"]
        visible = list(selectors.reservation_visible_to(user=request.user).filter(pk__in=ids))
        missing = sorted(set(ids) - {r.pk for r in visible})
        if missing:
            raise NotFound("No such reservation: " + ", ".join(map(str, missing)))
        cancelled = services.reservation_cancel_many(
            actor=request.user, reservations=visible, reason=serializer.validated_data["reason"],
            **_cancel_meeting(serializer, visible), **API_CHANNEL,
        )
        rows = selectors.reservation_queryset().filter(pk__in=[r.pk for r in cancelled])
        return Response({"cancelled": ReservationSerializer(rows, many=True).data})


def _feed_data(request, feed, token: str | None) -> dict:
    url = feeds.feed_url(token=token, request=request) if token else None
    return {"kind": feed.kind, "url": url, "created_at": feed.created_at, "rotated_at": feed.rotated_at, "last_accessed_at": feed.last_accessed_at}


class MyFeedView(APIView):
    """The caller's iCalendar feed. POST creates it or resets its link (the old URL stops
    working at once) and answers with the new URL; GET shows the current one."""

    @extend_schema(request=None, responses={200: FeedSerializer, 201: FeedSerializer, **ERRORS}, summary="Create my calendar feed, or reset its link")
    def post(self, request):
        link = feeds.calendar_feed_rotate(user=request.user)
        return Response(FeedSerializer(_feed_data(request, link.feed, link.token)).data,
                        status=status.HTTP_201_CREATED if link.created else status.HTTP_200_OK)

    @extend_schema(responses={200: FeedSerializer, **ERRORS}, summary="My calendar feed")
    def get(self, request):
        feed = feeds.calendar_feed_for(user=request.user)
        if feed is None:
            raise NotFound("You have no calendar feed; POST to create one.")
        return Response(FeedSerializer(_feed_data(request, feed, feeds.calendar_feed_token(feed=feed))).data)

    @extend_schema(request=None, responses={204: None, **ERRORS}, summary="Turn my calendar feed off")
    def delete(self, request):
        if not feeds.calendar_feed_delete(user=request.user):
            raise NotFound("You have no calendar feed.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _for_approver(request, reservation_id: int):
    reservation = selectors.reservation_get_for_approver(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise NotFound("No such reservation.")
    return reservation


class ApprovalListView(APIView):
    @extend_schema(
        parameters=pagination.PARAMETERS, responses={200: pagination.page_of(ReservationSerializer), **ERRORS},
        operation_id="v1_approvals_list", summary="Bookings waiting for my approval (rooms I approve; staff: every room's)",
    )
    def get(self, request):
        return _paginated(self, request, selectors.approvals_pending_for(user=request.user), ReservationSerializer)


class ReservationApproveView(APIView):
    @extend_schema(
        request=None, responses={200: ReservationSerializer, **ERRORS},
        summary="Approve a booking of a room that needs approval (its approvers; a series as a whole)",
    )
    def post(self, request, reservation_id: int):
        reservation = services.reservation_approve(actor=request.user, reservation=_for_approver(request, reservation_id))
        return Response(ReservationSerializer(_fresh(reservation.pk)).data)


class ReservationDeclineView(APIView):
    @extend_schema(
        request=DeclineSerializer, responses={200: ReservationSerializer, **BODY_ERRORS},
        summary="Decline a booking of a room that needs approval (its approvers; a series as a whole)",
    )
    def post(self, request, reservation_id: int):
        reservation = _for_approver(request, reservation_id)
        serializer = DeclineSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reservation = services.reservation_decline(actor=request.user, reservation=reservation, reason=serializer.validated_data["reason"])
        return Response(ReservationSerializer(_fresh(reservation.pk)).data)


class PingView(APIView):
    """A trivial authenticated endpoint: who am I (also the benchmark's ceiling)."""

    @extend_schema(responses={200: dict}, summary="Who am I")
    def get(self, request):
        return Response({"user": request.user.get_username(), "staff": request.user.is_staff})

