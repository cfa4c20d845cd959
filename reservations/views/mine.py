"""My reservations, their live status, my calendar feed, a reservation's page, my Outlook connection."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from exchange_auth import properties
from reservations import feeds, portal_selectors, rules, status_html
from reservations.checkin_window import CheckInRules
from reservations.links import id_url
from reservations.models import ACTIVE_STATES, Attendee, Origin, Reservation, State
from reservations.templatetags.portal import state_label

# The states a reservation leaves by itself (the room answers, the push goes through): the
# pages poll while one of theirs is in one of them.
from .checkin import checkin_info
from .common import MY_PAGE_SIZE, signed_in_user, state_word, user_tz

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
    user = signed_in_user(request)
    page = portal_selectors.my_reservations_page(user=user, show=show, number=request.GET.get("page"), per_page=MY_PAGE_SIZE)
    page_rows = page.object_list
    caps = portal_selectors.capabilities_for(actor=user, reservations=page_rows)
    now = timezone.now()
    checkin_rules = CheckInRules.now()
    shared = {
        "user": user, "user_tz": user_tz(user), "max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT),
        "next": escape(request.get_full_path()), "is_staff": user.is_staff,
        "urls": {name: id_url(name, _ID_MARK).split(str(_ID_MARK)) for name in _ROW_URLS},
        "days": [str(WEEKDAYS_ABBR[n]) for n in range(7)], "months": {n: str(MONTHS_3[n]).title() for n in range(1, 13)},
    }
    rows, any_cancellable = [], False
    for row in page_rows:
        row_caps = caps[row.pk]
        if row.state not in ACTIVE_STATES or row.end <= now:
            reason = f"This reservation is {state_word(row)}."
            row_caps = {**row_caps, "can_edit": False, "can_cancel": False, "edit_reason": reason, "cancel_reason": reason}
        any_cancellable = any_cancellable or row_caps["can_cancel"]
        rows.append(_my_row(row, row_caps, checkin_info(row, user, checkin_rules, now), shared))
    context = {
        "rows": rows, "page": page, "show": show, "any_cancellable": any_cancellable, "feed": _feed_context(request),
    }
    return render(request, "reservations/my_reservations.html", context)


_ID_MARK = 918273645546372819  # an id no row has: where each row's id goes in its links
_ROW_URLS = ("portal:check_in", "portal:change", "portal:cancel", "portal:reservation_detail")


def _hm(value: dt.datetime) -> str:
    return f"{value.hour:02}:{value.minute:02}"


def _my_row(r: Reservation, caps: dict, ci: dict, shared: dict) -> SafeString:
    """A row of "my reservations" as HTML, written here rather than in template loops (50 rows a
    page made most of the page's time: issue 14's speed target). Every value from the database
    is escaped; the state and sync cells are the live-status poll's (``status_html``)."""
    pk, user, urls = r.pk, shared["user"], shared["urls"]

    def url(name: str) -> str:
        head, tail = urls[name]
        return f"{head}{pk}{tail}"

    subject = escape(r.subject)
    room = r.room
    building = room.building
    tz = building.tzinfo
    start, end = r.start.astimezone(tz), r.end.astimezone(tz)
    series = r.series_id is not None
    who = ""
    if r.requested_for_id != user.pk:
        person = r.requested_for
        who = f" · for {escape(person.get_full_name() or person.username)}"
    elif r.requested_by_id != user.pk:
        person = r.requested_by
        who = f" · booked by {escape(person.get_full_name() or person.username)}"
    if r.origin == "exchange":
        who += " · created in Outlook"
    can_cancel = caps["can_cancel"]
    select_off = "" if can_cancel else f' disabled title="{escape(caps["cancel_reason"])}"'
    actions = []
    if ci["can"]:
        actions.append(f'<button type="submit" class="btn btn-small btn-primary" formaction="{url("portal:check_in")}" '
                       f'name="next" value="{shared["next"]}" id="check-in-{pk}">Check in</button>')
    elif ci["checked_in_at"]:
        actions.append(f'<span class="small muted" id="checked-in-{pk}">Checked in {_hm(ci["checked_in_at"])}</span>')
    elif ci["upcoming"]:
        actions.append(f'<span class="small muted">Check in from {_hm(ci["opens"])}</span>')
    still_there = r.state not in ("cancelled", "rejected", "released")
    if caps["can_edit"]:
        actions.append(f'<a class="btn btn-small" href="{url("portal:change")}">Change</a>')
    elif still_there:
        actions.append(f'<button type="button" class="btn btn-small" disabled aria-describedby="edit-reason-{pk}">Change</button>'
                       f'<p class="small muted reason-note" id="edit-reason-{pk}">{escape(caps["edit_reason"])}</p>')
    if can_cancel:
        actions.append(f'<a class="btn btn-small btn-danger-ghost" href="{url("portal:cancel")}" data-dialog>'
                       f'{"Cancel…" if series else "Cancel"}</a>')
    elif still_there:
        actions.append(f'<button type="button" class="btn btn-small" disabled aria-describedby="cancel-reason-{pk}">Cancel</button>')
        if caps["cancel_reason"] != caps["edit_reason"]:
            actions.append(f'<p class="small muted reason-note" id="cancel-reason-{pk}">{escape(caps["cancel_reason"])}</p>')
    when = f"{shared['days'][start.weekday()]} {start.day} {shared['months'][start.month]}, {_hm(start)}–{_hm(end)}"
    state, sync = escape(r.state), escape(r.sync_state)
    state_html = status_html.state_status(r)
    sync_html = status_html.sync_status(r, max_attempts=shared["max_attempts"], user_tz=shared["user_tz"], is_staff=shared["is_staff"])
    return mark_safe(  # noqa: S308 - every value above is escaped or ours
        f'<tr id="rsv-{pk}" data-state="{state}" data-sync="{sync}">'
        f'<td class="sel"><input type="checkbox" name="ids" value="{pk}" id="sel-{pk}" aria-label="Select “{subject}”"{select_off}></td>'
        f'<td data-label="Reservation"><a class="subject" href="{url("portal:reservation_detail")}"><strong>{subject}</strong></a>'
        + (' <span class="tag" title="Recurring">↻ series</span>' if series else "")
        + f'<div class="muted small">{escape(room.name)} · {escape(building.name)}{who}</div></td>'
        f'<td data-label="When"><time datetime="{r.start.isoformat()}">{when}</time> <span class="muted small">{escape(building.timezone)}</span></td>'
        f'<td data-label="Status" data-live="state" data-rsv="{pk}">{state_html}</td>'
        f'<td data-label="Outlook sync" class="sync" data-live="sync" data-rsv="{pk}">{sync_html}</td>'
        f'<td class="row-actions">{" ".join(actions)}</td></tr>\n'
    )


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
