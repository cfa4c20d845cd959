"""My reservations, their live status, my calendar feed, a reservation's page, my Outlook connection."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from exchange_auth import properties
from reservations import feeds, portal_selectors, rules
from reservations.checkin_window import CheckInRules
from reservations.models import ACTIVE_STATES, Attendee, Origin, Reservation, State
from reservations.templatetags.portal import state_label

# The states a reservation leaves by itself (the room answers, the push goes through): the
# pages poll while one of theirs is in one of them.
from .checkin import checkin_info
from .common import MY_PAGE_SIZE, state_word, user_tz

MOVING_STATES = {State.AWAITING_CONFIRMATION}

MAX_STATUS_IDS = 100

RESPONSE_LABELS = {
    Attendee.Response.NONE: "No answer yet",
    Attendee.Response.ORGANIZER: "Organizer",
    Attendee.Response.ACCEPTED: "Accepted",
    Attendee.Response.TENTATIVE: "Tentative",
    Attendee.Response.DECLINED: "Declined",
    Attendee.Response.NOT_RESPONDED: "Not responded",
    Attendee.Response.UNKNOWN: "Unknown",
}


@login_required
@require_http_methods(["GET", "HEAD"])
def my_reservations(request: HttpRequest) -> HttpResponse:
    show = "all" if request.GET.get("show") == "all" else "upcoming"
    rows = portal_selectors.my_reservations(user=request.user, show=show)
    page = Paginator(rows, MY_PAGE_SIZE).get_page(request.GET.get("page"))
    page_rows = list(page.object_list)
    caps = portal_selectors.capabilities_for(actor=request.user, reservations=page_rows)
    now = timezone.now()
    rules = CheckInRules.now()
    items = []
    for row in page_rows:
        row_caps = dict(caps[row.pk])
        if row.state not in ACTIVE_STATES or row.end <= now:
            reason = f"This reservation is {state_word(row)}."
            row_caps.update(can_edit=False, can_cancel=False, edit_reason=reason, cancel_reason=reason)
        items.append({"r": row, "caps": row_caps, "ci": checkin_info(row, request.user, rules, now), "local_start": row.start.astimezone(row.room.building.tzinfo),
                      "local_end": row.end.astimezone(row.room.building.tzinfo)})
    context = {
        "items": items, "page": page, "show": show, "user_tz": user_tz(request.user),
        "max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT),
        "any_cancellable": any(item["caps"]["can_cancel"] for item in items),
        "feed": _feed_context(request),
    }
    return render(request, "reservations/my_reservations.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
def reservation_status(request: HttpRequest) -> JsonResponse:
    """The live status of "my reservations" and the detail page: ``?ids=1,2,3`` (at most 100;
    ``detail=1`` for the detail page's wording) → each visible reservation's state and sync
    status, as the page draws them. Short polls, so it works behind any WSGI server."""
    ids = []
    for value in request.GET.get("ids", "").split(",")[:MAX_STATUS_IDS]:
        if value.strip().isdigit():
            ids.append(int(value))
    if not ids:
        return JsonResponse({"reservations": []}, headers={"Cache-Control": "no-store"})
    context = {"max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT), "user_tz": user_tz(request.user),
               "detail": request.GET.get("detail") == "1", "user": request.user}
    rows = []
    for row in portal_selectors.reservation_statuses(user=request.user, ids=ids):
        item = {**context, "r": row}
        rows.append({
            "id": row.pk, "state": row.state, "state_label": state_label(row.state), "sync": row.sync_state,
            "moving": row.state in MOVING_STATES or row.sync_state == "pending",
            "state_html": render_to_string("reservations/_state_status.html", item),
            "sync_html": render_to_string("reservations/_sync_status.html", item),
        })
    return JsonResponse({"reservations": rows}, headers={"Cache-Control": "no-store"})


def _feed_context(request: HttpRequest) -> dict:
    """The "Calendar feed" section: the employee's feed URL (decrypted for them alone)."""
    feed = feeds.calendar_feed_for(user=request.user)
    if feed is None:
        return {"exists": False}
    token = feeds.calendar_feed_token(feed=feed)
    if token is None:  # the encryption key changed: only a reset gives a working link again
        return {"exists": True, "unreadable": True, "feed": feed}
    url = feeds.feed_url(token=token, request=request)
    return {"exists": True, "feed": feed, "url": url, "webcal": "webcal://" + url.split("://", 1)[1]}


@login_required
@require_POST
def my_feed(request: HttpRequest) -> HttpResponse:
    """Create or reset (``action=reset``) the employee's feed link, or turn it off (``action=delete``)."""
    if request.POST.get("action") == "delete":
        if feeds.calendar_feed_delete(user=request.user):
            messages.success(request, "Your calendar feed is off; its link no longer works.")
    else:
        link = feeds.calendar_feed_rotate(user=request.user)
        messages.success(request, "Your calendar feed link is ready." if link.created
                         else "Your calendar feed has a new link; the old one stopped working. Update it in your calendar app.")
    return redirect(reverse("portal:my_reservations") + "#calendar-feed")


@login_required
@require_http_methods(["GET", "HEAD"])
def reservation_detail(request: HttpRequest, reservation_id: int) -> HttpResponse:
    """Everything about one reservation. Attendees' answers are the stored ones for meetings
    the product created and "unknown" for meetings made in Outlook (SPEC §4); their free/busy
    is filled in by the page's script from the attendees API (hidden without JavaScript)."""
    reservation = portal_selectors.reservation_detail(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise Http404("No such reservation.")
    caps = dict(rules.ui_capabilities(request.user, reservation=reservation))
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        reason = f"This reservation is {state_word(reservation)}."
        caps.update(can_edit=False, can_cancel=False, edit_reason=reason, cancel_reason=reason)
    tz = reservation.room.building.tzinfo
    from_outlook = reservation.origin == Origin.EXCHANGE
    attendees = []
    for attendee in reservation.attendees.all():
        response = Attendee.Response.UNKNOWN if from_outlook else attendee.response
        attendees.append({"a": attendee, "response": response, "response_label": RESPONSE_LABELS.get(response, response)})
    context = {
        "r": reservation, "caps": caps, "attendees": attendees, "from_outlook": from_outlook,
        "local_start": reservation.start.astimezone(tz), "local_end": reservation.end.astimezone(tz),
        "series": portal_selectors.series_summary(reservation=reservation),
        "max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT), "user_tz": user_tz(request.user),
        "attendees_api": _attendees_api_url(reservation),
        "state_word": state_word(reservation),
        "ci": checkin_info(reservation, request.user, CheckInRules.now(), timezone.now()),
    }
    return render(request, "reservations/detail.html", context)


def _attendees_api_url(reservation: Reservation) -> str:
    """calendar_sync's attendees endpoint, by URL name (no import of calendar_sync); without
    it the page simply has no availability column."""
    try:
        return reverse("reservation-attendees", args=[reservation.pk])
    except NoReverseMatch:
        return ""


def outlook_settings(request: HttpRequest) -> HttpResponse:
    """The Outlook settings page is exchange_auth's (/outlook/); kept as a portal name."""
    return redirect(reverse("exchange_auth:connection"))
