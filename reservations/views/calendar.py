"""A building's day to book from: rooms as rows, half hours as columns (like Outlook's room
finder), filtered by floor, a day at a time or a week on; free slots link to the booking
form, busy ones say what holds them where the viewer may see it (reservations.calendar_grid)."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from reservations import calendar_grid
from reservations.forms import CalendarForm
from workplace import catalogue
from workplace.models import Room

from .common import FINDER_PAGE_SIZE, page_of


@login_required
@require_http_methods(["GET", "HEAD"])
def building_day(request: HttpRequest) -> HttpResponse:
    listed = catalogue.catalogue()  # cached lists: no query for the buildings and floors
    buildings = listed.bookable_buildings
    code = request.GET.get("building") or ""
    building = next((b for b in buildings if b.code == code), None) if code else (buildings[0] if buildings else None)
    floors = listed.floors_of(building) if building else []
    params = request.GET.copy()
    if building is not None and not code:
        params["building"] = building.code
    form = CalendarForm(params, buildings=buildings, floors=floors)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    floor = next((f for f in floors if f.pk == data.get("floor")), None)
    tz = building.tzinfo if building else timezone.get_default_timezone()
    day = data.get("date") or timezone.now().astimezone(tz).date()
    rooms = Room.objects.none()
    if building is not None and valid:
        rooms = (Room.objects.filter(building=building, reservable=True)
                 .only("id", "name", "capacity", "building_id", "floor_id", "show_subjects")
                 .order_by("floor__level", "floor__name", "name"))
        if floor is not None:
            rooms = rooms.filter(floor=floor)
    page = page_of(rooms, FINDER_PAGE_SIZE, request.GET.get("page"))
    page_rooms = list(page.object_list)
    floor_of = {f.pk: f for f in floors}
    for room in page_rooms:  # from the cached lists, not a join per row
        room.building = building
        if room.floor_id in floor_of or not room.floor_id:  # else (lists older than the room) Django reads it
            room.floor = floor_of.get(room.floor_id)
    rows = calendar_grid.day_grid_rows(rooms=page_rooms, day=day, tz=tz, user=request.user, show_floor=floor is None)

    def link(**changes) -> str:
        query = {"building": building.code if building else "", "floor": floor.pk if floor else "", "date": day.isoformat()}
        query.update(changes)
        return "?" + urlencode({k: v for k, v in query.items() if v})

    today = timezone.now().astimezone(tz).date()
    context = {
        "form": form, "building": building, "floor": floor, "day": day, "tz_name": str(tz), "page": page,
        "rows": rows, "hours": calendar_grid.day_grid_hours(), "slot_minutes": calendar_grid.SLOT_MINUTES,
        "nav": {
            "previous_week": link(date=(day - dt.timedelta(days=7)).isoformat()),
            "previous_day": link(date=(day - dt.timedelta(days=1)).isoformat()),
            "today": link(date=today.isoformat()),
            "next_day": link(date=(day + dt.timedelta(days=1)).isoformat()),
            "next_week": link(date=(day + dt.timedelta(days=7)).isoformat()),
        },
        "page_query": link(),
    }
    return render(request, "reservations/building_day.html", context)
