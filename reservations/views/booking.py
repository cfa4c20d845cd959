"""Booking a room and changing a reservation (a clash offers the nearest alternatives)."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from exchange_auth.credentials import CredentialError
from reservations import parsing, rules, services
from reservations.exceptions import ReservationError, SlotTaken
from reservations.forms import ReservationForm
from reservations.models import ACTIVE_STATES, Kind, Reservation, Source, State
from workplace.models import Room

from .common import freebusy_api_url, get_reservation, get_room, people_api_url, state_word


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
    room = get_room(room_id)
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
    context = {"form": form, "room": room, "caps": caps, "editing": None, "freebusy_url": freebusy_api_url(), "people_url": people_api_url(),
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
        layout = other.get("arrangement")
        label = f"Book {other['name']} ({other['capacity']} seats" + (f", {layout['name']} for {layout['seats']}" if layout else "") + ") at the same time"
        options.append({"label": label, "action": reverse("portal:book", args=[other["id"]]),
                        "fields": posted + ([("arrangement", str(layout["id"]))] if layout else [])})
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


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def change(request: HttpRequest, reservation_id: int) -> HttpResponse:
    reservation = get_reservation(request, reservation_id)
    room = reservation.room
    tz = room.building.tzinfo
    caps = rules.ui_capabilities(request.user, reservation=reservation)
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        caps = {**caps, "can_edit": False, "edit_reason": f"This reservation is {state_word(reservation)}; it can't be changed."}
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
    context = {"form": form, "room": room, "caps": caps, "editing": reservation, "freebusy_url": freebusy_api_url(), "people_url": people_api_url()}
    return render(request, "reservations/book.html", context)
