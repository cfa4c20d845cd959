"""Check-in in the portal: the button on my reservations and a reservation's page, the page a
room's QR code / short URL opens (``/r/<room id>/``: the signed-in employee's meeting in that
room, checked in with one tap), and the series confirmation asked for after repeated no-shows."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from reservations import selectors
from reservations.checkin_window import CheckInRules
from reservations.exceptions import CheckInRefused, ReservationError
from reservations.models import ACTIVE_STATES, CheckInChannel, Reservation, ReservationSeries, State
from reservations.services import checkin, release
from workplace import throttling

from .common import get_room, user_tz


def checkin_info(row: Reservation, user, rules: CheckInRules, now: dt.datetime) -> dict:
    """What a page shows about a reservation's check-in, and whether its button is offered."""
    required = rules.required(row.room)
    opens, closes = rules.window(row)
    closes = min(closes if required else row.end, row.end)
    tz = row.room.building.tzinfo
    is_open = row.state in ACTIVE_STATES and row.checked_in_at is None and opens <= now < closes
    return {
        "required": required, "opens": opens.astimezone(tz), "closes": closes.astimezone(tz), "open": is_open,
        "checked_in_at": row.checked_in_at.astimezone(tz) if row.checked_in_at else None,
        "channel": row.get_checked_in_channel_display() if row.checked_in_channel else "",
        "released": row.state == State.RELEASED,
        "can": is_open and checkin.may_check_in(row, user, CheckInChannel.PORTAL),
        "upcoming": row.state in ACTIVE_STATES and row.checked_in_at is None and required and now < opens,
    }


def _rate_limited(request: HttpRequest) -> throttling.Refusal | None:
    """One check-in budget per employee, the API's too (``check_in`` in DEFAULT_THROTTLE_RATES)."""
    return throttling.limit(request, "check_in", throttling.user_ident("check_in", request.user.pk))


def _back(request: HttpRequest, reservation_id: int) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("portal:reservation_detail", args=[reservation_id])


@login_required
@require_POST
def check_in(request: HttpRequest, reservation_id: int) -> HttpResponse:
    refused = _rate_limited(request)
    if refused is not None:
        return throttling.too_many(request, refused, template="reservations/too_many_requests.html",
                                   context={"back": _back(request, reservation_id)})
    reservation = selectors.reservation_queryset().filter(pk=reservation_id).first()
    if reservation is None or not checkin.may_check_in(reservation, request.user, CheckInChannel.PORTAL):
        raise Http404("No such reservation.")
    try:
        row = checkin.check_in(reservation, actor=request.user, channel=CheckInChannel.PORTAL)
    except ReservationError as refused:
        messages.error(request, refused.message)
    else:
        at = timezone.localtime(row.checked_in_at, row.room.building.tzinfo)
        messages.success(request, f"Checked in to “{row.subject}” at {at:%H:%M}. The room is yours.")
    return redirect(_back(request, reservation_id))


def _mine_in_room(user, room, now: dt.datetime, rules: CheckInRules) -> list[Reservation]:
    """The signed-in employee's reservations in this room around now: from the window's opening
    (before the start) to the end; released ones too, so the page can say so."""
    email = (user.email or "").strip()
    theirs = Q(requested_for=user) | Q(requested_by=user)
    if email:
        theirs |= Q(attendees__email__iexact=email)
    return list(
        selectors.reservation_queryset().filter(
            theirs, room=room, state__in=[*ACTIVE_STATES, State.RELEASED], start__lte=now + rules.before, end__gt=now,
        ).distinct().order_by("start")[:5]
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def room_check_in(request: HttpRequest, room_id: int) -> HttpResponse:
    """The page behind the QR code on a room's door."""
    room = get_room(room_id)
    now = timezone.now()
    rules = CheckInRules.now()
    error = done = refused = None
    if request.method == "POST":
        refused = _rate_limited(request)
    if refused is not None:
        error = refused.message
    elif request.method == "POST":
        picked = selectors.reservation_queryset().filter(pk=request.POST.get("reservation") or 0, room=room).first() \
            if str(request.POST.get("reservation", "")).isdigit() else None
        if picked is None or not checkin.may_check_in(picked, request.user, CheckInChannel.QR):
            error = "That reservation isn't yours in this room; pick one below."
        else:
            try:
                done = checkin.check_in(picked, actor=request.user, channel=CheckInChannel.QR)
            except CheckInRefused as refused:
                error = refused.message
    rows = _mine_in_room(request.user, room, now, rules)
    items = [{"r": row, "ci": checkin_info(row, request.user, rules, now)} for row in rows]
    for item in items:
        item["ci"]["can"] = item["ci"]["open"] and checkin.may_check_in(item["r"], request.user, CheckInChannel.QR)
    tz = room.building.tzinfo
    context = {
        "room": room, "items": items, "error": error, "done": done, "now": now.astimezone(tz), "user_tz": user_tz(request.user),
        "done_at": done.checked_in_at.astimezone(tz) if done else None,
    }
    if refused is not None:
        return throttling.too_many(request, refused, template="reservations/room_check_in.html", context=context)
    return render(request, "reservations/room_check_in.html", context, status=409 if error else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def series_confirm(request: HttpRequest, series_id: int) -> HttpResponse:
    """The link in the no-show email: the organizer confirms the series is still needed."""
    series = ReservationSeries.objects.select_related("room__building").filter(pk=series_id).first()
    user = request.user
    if series is None or not (user.is_staff or user.pk in (series.requested_for_id, series.requested_by_id)):
        raise Http404("No such series.")
    if request.method == "POST":
        release.series_confirm(series=series, actor=user)
        messages.success(request, f"Thanks: “{series.subject}” keeps its room. Remember to check in at the start.")
        return redirect(reverse("portal:series_confirm", args=[series.pk]))
    tz = series.room.building.tzinfo
    coming = series.occurrences.filter(state__in=ACTIVE_STATES, end__gt=timezone.now()).count()
    context = {
        "series": series, "coming": coming,
        "confirm_by": series.noshow_confirm_by.astimezone(tz) if series.noshow_confirm_by else None,
        "confirmed_at": series.noshow_confirmed_at.astimezone(tz) if series.noshow_confirmed_at else None,
    }
    return render(request, "reservations/series_confirm.html", context)
