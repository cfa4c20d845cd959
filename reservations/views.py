"""The employee portal: find a room, book, my reservations, change, cancel.

Views stay thin: a form parses input, one service call writes, a
``ReservationError`` from the service goes back on the form as a message (never
a server error page). What the sync mode allows is asked of
``rules.ui_capabilities`` before the page is drawn, so restricted actions are
hidden or disabled with their reason.
"""

import datetime as dt
import zoneinfo
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from exchange_auth import properties
from exchange_auth.credentials import CredentialError
from reservations import feeds, parsing, portal_selectors, rules, selectors, services
from reservations.exceptions import ReservationError, SlotTaken
from reservations.forms import CancelForm, FinderForm, ReservationForm
from reservations.models import ACTIVE_STATES, Attendee, Kind, Origin, Reservation, Source, State
from reservations.templatetags.portal import state_label
from workplace.models import Arrangement, Room

FINDER_PAGE_SIZE = 25
MY_PAGE_SIZE = 50


def _user_tz(user) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(user.profile.timezone)
    except Exception:  # no profile row, or a zone this machine lacks
        return timezone.get_default_timezone()


# --- room finder -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD"])
def finder(request: HttpRequest) -> HttpResponse:
    arrangement_names = list(Arrangement.objects.order_by("name").values_list("name", flat=True).distinct())
    form = FinderForm(request.GET or None, arrangement_names=arrangement_names)
    filters: dict = {}
    building = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        building = data["building"]
        filters = {
            "building": building, "floor": data["floor"], "capacity_min": data["capacity"],
            "equipment": [e.slug for e in data["equipment"]], "arrangement": data["arrangement"] or None,
        }
    tz = building.tzinfo if building else _user_tz(request.user)
    day = (form.cleaned_data.get("date") if form.is_bound and form.is_valid() else None) or timezone.now().astimezone(tz).date()
    free_from = free_to = None
    if form.is_bound and form.is_valid() and form.cleaned_data["free_from"]:
        free_from = dt.datetime.combine(day, form.cleaned_data["free_from"], tzinfo=tz)
        free_to = dt.datetime.combine(day, form.cleaned_data["free_to"], tzinfo=tz)
    rooms = (
        selectors.room_list_available(**filters, free_from=free_from, free_to=free_to)
        if not form.is_bound or form.is_valid() else Room.objects.none()
    )
    page = Paginator(rooms, FINDER_PAGE_SIZE).get_page(request.GET.get("page"))
    page_rooms = list(page.object_list)
    bookings = portal_selectors.room_day_bookings(rooms=page_rooms, day=day, user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    book_query = {"date": day.isoformat()}
    if free_from:
        book_query.update(start=free_from.strftime("%H:%M"), end=free_to.strftime("%H:%M"))
    book_suffix = "?" + urlencode(book_query)
    first, last = portal_selectors.DAY_VIEW_START_HOUR, portal_selectors.DAY_VIEW_END_HOUR
    context = {
        "form": form, "page": page, "day": day, "tz_name": str(tz),
        "rows": [_finder_row(room, bookings.get(room.pk, []), book_suffix) for room in page_rooms],
        "query": query.urlencode(),
        "hours": [{"hour": h, "left": round((h - first) / (last - first) * 100, 2)} for h in range(first, last + 1, 2)],
        "free_from": free_from, "free_to": free_to,
        "caps": rules.ui_capabilities(request.user),
    }
    return render(request, "reservations/finder.html", context)


def _finder_row(room: Room, bookings: list[dict], book_suffix: str) -> dict:
    """What the finder draws for a room, worked out here rather than in template loops
    (the page lists many rooms)."""
    booked = ", ".join(
        f"{b['start']:%H:%M}–{b['end']:%H:%M}" + (" (yours)" if b["mine"] else "") for b in bookings
    )
    return {
        "room": room, "bookings": bookings, "book_url": reverse("portal:book", args=[room.pk]) + book_suffix,
        "equipment": ", ".join(e.name for e in room.equipment.all()),
        "layouts": ", ".join(a.name for a in room.arrangements.all()),
        "booked": f"Booked: {booked}" if booked else "Free all day",
    }


# --- a room's week: book from a free hour -----------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD"])
def room_week(request: HttpRequest, room_id: int) -> HttpResponse:
    """A room's week (``?week=`` any day of it; this week by default), hour by hour: busy
    hours show what holds them where the viewer may see it, a free hour is a link to the
    booking form for that hour — plain links, so keyboard and no-JavaScript use work alike."""
    room = _get_room(room_id)
    tz = room.building.tzinfo
    try:
        day = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.now().astimezone(tz).date()
    monday = day - dt.timedelta(days=day.weekday())
    week = portal_selectors.room_week(room=room, monday=monday, user=request.user)
    book_url = reverse("portal:book", args=[room.pk])
    for row in week["rows"]:
        for cell in row["cells"]:
            if not cell.get("busy") and not cell["past"]:
                cell["book_url"] = book_url + "?" + urlencode(
                    {"date": cell["day"].isoformat(), "start": f"{cell['start']:%H:%M}", "end": f"{cell['end']:%H:%M}"})
    context = {
        "room": room, "week": week, "monday": monday,
        "previous": (monday - dt.timedelta(days=7)).isoformat(), "next": (monday + dt.timedelta(days=7)).isoformat(),
    }
    return render(request, "reservations/room_week.html", context)


# --- book and change ----------------------------------------------------------------------------


def _get_room(room_id: int) -> Room:
    room = selectors.room_queryset().filter(pk=room_id, reservable=True).first()
    if room is None:
        raise Http404("No such room.")
    return room


def _initial_times(request: HttpRequest, tz) -> dict:
    """Prefill from the finder (?date=&start=&end=), else the next half hour for an hour."""
    initial = {}
    now = timezone.now().astimezone(tz)
    start = (now + dt.timedelta(minutes=30 - now.minute % 30)).replace(second=0, microsecond=0)
    initial["date"] = parsing.day_or_none(request.GET.get("date")) or start.date()
    for key, default in (("start", start.time()), ("end", (start + dt.timedelta(hours=1)).time())):
        try:
            initial[f"{key}_time"] = dt.time.fromisoformat(request.GET[key])
        except (KeyError, ValueError):
            initial[f"{key}_time"] = default
    return initial


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def book(request: HttpRequest, room_id: int) -> HttpResponse:
    room = _get_room(room_id)
    tz = room.building.tzinfo
    caps = rules.ui_capabilities(request.user, room=room)
    alternatives: list[dict] = []
    if request.method == "POST":
        form = ReservationForm(request.POST, room=room, tz=tz, caps=caps)
        if form.is_valid():
            data = form.cleaned_data
            try:
                reservation = services.reservation_create(
                    actor=request.user, room=room, start=data["start"], end=data["end"], subject=data["subject"],
                    body=data["body"], arrangement=data["arrangement"], requested_for=data["requested_for"] or request.user,
                    attendees=[{"email": email} for email in data["attendees"]],
                    kind=Kind.GROUP if data["group"] else Kind.STANDARD, source=Source.PORTAL,
                    recurrence=form.recurrence(), online_meeting=data["online_meeting"] and room.is_synced,
                )
            except ReservationError as exc:
                form.add_service_error(exc)
                alternatives = _alternative_bookings(request, room, exc)
            except CredentialError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _booked_message(reservation))
                return redirect("portal:my_reservations")
    else:
        form = ReservationForm(room=room, tz=tz, caps=caps, initial={**_initial_times(request, tz), "arrangement": room.default_arrangement()})
    context = {"form": form, "room": room, "caps": caps, "editing": None, "freebusy_url": _freebusy_api_url(),
               "alternatives": alternatives}
    return render(request, "reservations/book.html", context, status=200)


def _alternative_bookings(request: HttpRequest, room: Room, exc: ReservationError) -> list[dict]:
    """A clash's next steps as one-click bookings: the same request posted to another room
    (its default layout), or to this room at its next free slot."""
    found = (exc.extra or {}).get("alternatives") if isinstance(exc, SlotTaken) else None
    if not found:
        return []
    posted = [(key, value) for key in request.POST for value in request.POST.getlist(key)
              if key not in ("csrfmiddlewaretoken", "arrangement")]
    same_layout = [("arrangement", v) for v in request.POST.getlist("arrangement")]
    options = []
    for other in found.get("rooms", []):
        options.append({"label": f"Book {other['name']} ({other['capacity']} seats) at the same time",
                        "action": reverse("portal:book", args=[other["id"]]), "fields": posted})
    if found.get("next_free"):
        start = dt.datetime.fromisoformat(found["next_free"]["start"])
        end = dt.datetime.fromisoformat(found["next_free"]["end"])
        moved = [(k, v) for k, v in posted if k not in ("date", "start_time", "end_time")]
        moved += [("date", start.date().isoformat()), ("start_time", f"{start:%H:%M}"), ("end_time", f"{end:%H:%M}")]
        options.append({"label": f"Book {room.name} {start:%a %-d %b, %H:%M}–{end:%H:%M} ({room.building.timezone}), its next free time",
                        "action": reverse("portal:book", args=[room.pk]), "fields": moved + same_layout})
    return options


def _booked_message(reservation: Reservation) -> str:
    count = reservation.series.occurrences.count() if reservation.series_id else 1
    what = f"{count} occurrences of “{reservation.subject}”" if count > 1 else f"“{reservation.subject}”"
    if reservation.state == State.AWAITING_CONFIRMATION:
        return f"Booked {what} in {reservation.room.name}. Awaiting confirmation from the room."
    return f"Booked {what} in {reservation.room.name}."


def _get_reservation(request: HttpRequest, reservation_id: int) -> Reservation:
    reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise Http404("No such reservation.")
    return reservation


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def change(request: HttpRequest, reservation_id: int) -> HttpResponse:
    reservation = _get_reservation(request, reservation_id)
    room = reservation.room
    tz = room.building.tzinfo
    caps = rules.ui_capabilities(request.user, reservation=reservation)
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        caps = {**caps, "can_edit": False, "edit_reason": f"This reservation is {_state_word(reservation)}; it can't be changed."}
    if request.method == "POST" and caps["can_edit"]:
        form = ReservationForm(request.POST, room=room, tz=tz, editing=reservation, caps=caps)
        if form.is_valid():
            data = form.cleaned_data
            current = sorted(a.email for a in reservation.attendees.all() if a.type != "resource")
            changes = {
                "subject": data["subject"], "body": data["body"], "start": data["start"], "end": data["end"],
                "arrangement": data["arrangement"],
            }
            new_room = data.get("room") or room
            if new_room.pk != room.pk:
                changes["room"] = new_room
                if data["arrangement"] is None:
                    del changes["arrangement"]  # the service gives the new room's default layout
            if sorted(set(data["attendees"])) != current:
                changes["attendees"] = [{"email": email} for email in data["attendees"]]
            try:
                services.reservation_update(
                    actor=request.user, reservation=reservation, scope=data.get("scope") or "occurrence",
                    source=Source.PORTAL, **changes,
                )
            except ReservationError as exc:
                form.add_service_error(exc)
                if getattr(exc, "differences", None):
                    form.differences = exc.differences
            except CredentialError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Changed “{data['subject']}”.")
                return redirect("portal:my_reservations")
    else:
        start, end = reservation.start.astimezone(tz), reservation.end.astimezone(tz)
        form = ReservationForm(room=room, tz=tz, editing=reservation, caps=caps, initial={
            "subject": reservation.subject, "body": reservation.body, "date": start.date(), "room": room,
            "start_time": start.time(), "end_time": end.time(), "arrangement": reservation.arrangement,
            "attendees": "\n".join(a.email for a in reservation.attendees.all() if a.type != "resource"),
            "scope": "occurrence",
        })
    context = {"form": form, "room": room, "caps": caps, "editing": reservation, "freebusy_url": _freebusy_api_url()}
    return render(request, "reservations/book.html", context)


# --- my reservations -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD"])
def my_reservations(request: HttpRequest) -> HttpResponse:
    show = "all" if request.GET.get("show") == "all" else "upcoming"
    rows = portal_selectors.my_reservations(user=request.user, show=show)
    page = Paginator(rows, MY_PAGE_SIZE).get_page(request.GET.get("page"))
    page_rows = list(page.object_list)
    caps = portal_selectors.capabilities_for(actor=request.user, reservations=page_rows)
    now = timezone.now()
    items = []
    for row in page_rows:
        row_caps = dict(caps[row.pk])
        if row.state not in ACTIVE_STATES or row.end <= now:
            reason = f"This reservation is {_state_word(row)}."
            row_caps.update(can_edit=False, can_cancel=False, edit_reason=reason, cancel_reason=reason)
        items.append({"r": row, "caps": row_caps, "local_start": row.start.astimezone(row.room.building.tzinfo),
                      "local_end": row.end.astimezone(row.room.building.tzinfo)})
    context = {
        "items": items, "page": page, "show": show, "user_tz": _user_tz(request.user),
        "max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT),
        "any_cancellable": any(item["caps"]["can_cancel"] for item in items),
        "feed": _feed_context(request),
    }
    return render(request, "reservations/my_reservations.html", context)


# The states a reservation leaves by itself (the room answers, the push goes through): the
# pages poll while one of theirs is in one of them.
MOVING_STATES = {State.AWAITING_CONFIRMATION}
MAX_STATUS_IDS = 100


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
    context = {"max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT), "user_tz": _user_tz(request.user),
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


# --- one reservation ---------------------------------------------------------------------------


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
def reservation_detail(request: HttpRequest, reservation_id: int) -> HttpResponse:
    """Everything about one reservation. Attendees' answers are the stored ones for meetings
    the product created and "unknown" for meetings made in Outlook (SPEC §4); their free/busy
    is filled in by the page's script from the attendees API (hidden without JavaScript)."""
    reservation = portal_selectors.reservation_detail(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise Http404("No such reservation.")
    caps = dict(rules.ui_capabilities(request.user, reservation=reservation))
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        reason = f"This reservation is {_state_word(reservation)}."
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
        "max_attempts": properties.get(properties.MAX_EVENT_RETRY_COUNT), "user_tz": _user_tz(request.user),
        "attendees_api": _attendees_api_url(reservation),
        "state_word": _state_word(reservation),
    }
    return render(request, "reservations/detail.html", context)


def _freebusy_api_url() -> str:
    try:
        return reverse("freebusy")
    except NoReverseMatch:
        return ""


def _attendees_api_url(reservation: Reservation) -> str:
    """calendar_sync's attendees endpoint, by URL name (no import of calendar_sync); without
    it the page simply has no availability column."""
    try:
        return reverse("reservation-attendees", args=[reservation.pk])
    except NoReverseMatch:
        return ""


def _state_word(reservation: Reservation) -> str:
    if reservation.state in ACTIVE_STATES and reservation.end <= timezone.now():
        return "over"
    return reservation.get_state_display().replace("_", " ").lower()


# --- cancel (single, recurring, multi-select) ------------------------------------------------------


def _cancel_kwargs(form: CancelForm, offered: bool) -> dict:
    """The service's arguments. "Also cancel the meeting on people's calendars" is passed only
    where it was offered (an unticked box is ``cancel_meeting=False``); elsewhere the service's
    default applies and the rules decide what happens to the meeting."""
    kwargs = {"reason": form.cleaned_data.get("reason") or ""}
    if offered:
        kwargs["cancel_meeting"] = bool(form.cleaned_data.get("cancel_meeting"))
    return kwargs


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request: HttpRequest, reservation_id: int) -> HttpResponse:
    """The single and recurring cancel dialogs (a page without JavaScript)."""
    reservation = _get_reservation(request, reservation_id)
    caps = rules.ui_capabilities(request.user, reservation=reservation)
    remaining = []
    if reservation.series_id:
        remaining = list(
            Reservation.objects.filter(series_id=reservation.series_id, state__in=ACTIVE_STATES, end__gt=timezone.now())
            .select_related("room__building").order_by("start")
        )
    offer = rules.offer_cancel_meeting_choice(remaining) if len(remaining) > 1 else caps["offer_cancel_meeting_choice"]
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        caps = {**caps, "can_cancel": False, "cancel_reason": f"This reservation is {_state_word(reservation)}; it can't be cancelled."}
    form = CancelForm(request.POST if request.method == "POST" else None, initial={"scope": "occurrence"})
    if request.method == "POST" and caps["can_cancel"] and form.is_valid():
        scope = form.cleaned_data.get("scope") or "occurrence"
        try:
            done = services.reservation_cancel(
                actor=request.user, reservation=reservation, scope=scope if reservation.series_id else "occurrence",
                source=Source.PORTAL, **_cancel_kwargs(form, offer),
            )
        except ReservationError as exc:
            form.add_error(None, exc.message)
        except CredentialError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _cancelled_message(done, reservation))
            return redirect("portal:my_reservations")
    context = {
        "reservation": reservation, "caps": caps, "form": form, "offer_cancel_meeting": offer,
        "remaining": remaining, "dialog": "recurring" if reservation.series_id else "single",
        "local_start": reservation.start.astimezone(reservation.room.building.tzinfo),
        "local_end": reservation.end.astimezone(reservation.room.building.tzinfo),
    }
    return render(request, "reservations/cancel.html", context)


def _cancelled_message(done: list[Reservation], reservation: Reservation) -> str:
    if not done:
        return f"“{reservation.subject}” was already cancelled."
    if len(done) == 1:
        return f"Cancelled “{done[0].subject}”."
    return f"Cancelled {len(done)} reservations."


def _selected_ids(request: HttpRequest) -> list[int]:
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(parsing.object_id(value))
        except ValidationError:
            continue
    return sorted(set(ids))[:500]


@login_required
@require_POST
def cancel_selected(request: HttpRequest) -> HttpResponse:
    """The multi-select cancel dialog: the selection arrives from "my reservations"; a second
    POST with ``confirm`` cancels them all (or none, when one is refused)."""
    ids = _selected_ids(request)
    rows = list(
selectors.reservation_visible_to(user=request.user).filter(pk__in=ids).order_by("start")
    )
    if not rows:
        messages.error(request, "Choose at least one reservation to cancel.")
        return redirect("portal:my_reservations")
    caps = portal_selectors.capabilities_for(actor=request.user, reservations=rows)
    # The choice is offered only when the product can choose for every selected reservation.
    offer = all(caps[row.pk]["offer_cancel_meeting_choice"] for row in rows)
    refused = [(row, caps[row.pk]["cancel_reason"]) for row in rows if not caps[row.pk]["can_cancel"]]
    form = CancelForm(request.POST if "confirm" in request.POST else None)
    if "confirm" in request.POST and form.is_valid():
        try:
            done = services.reservation_cancel_many(
                actor=request.user, reservations=rows, source=Source.PORTAL, **_cancel_kwargs(form, offer)
            )
        except ReservationError as exc:
            form.add_error(None, exc.message)
        except CredentialError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _cancelled_message(done, rows[0]))
            return redirect("portal:my_reservations")
    items = [{"r": row, "local_start": row.start.astimezone(row.room.building.tzinfo),
              "local_end": row.end.astimezone(row.room.building.tzinfo)} for row in rows]
    # The note says which of the selection the room handles (room-organized or made in Outlook), not
    # a general rule that may apply to none of them (rooms outside Outlook have no meeting at all).
    handled_by_room = [row for row in rows if row.room.is_synced and not caps[row.pk]["offer_cancel_meeting_choice"]]
    context = {"items": items, "form": form, "offer_cancel_meeting": offer, "refused": refused, "dialog": "multi",
               "handled_by_room": handled_by_room}
    return render(request, "reservations/cancel_selected.html", context)


def outlook_settings(request: HttpRequest) -> HttpResponse:
    """The Outlook settings page is exchange_auth's (/outlook/); kept as a portal name."""
    return redirect(reverse("exchange_auth:connection"))
