"""A building's (or floor's) week to book from: rooms as rows, the days of the week as column
groups with their working hours (like Outlook's scheduling grid), filtered by floor, Monday to
Friday or the whole week, a week at a time; free hours and half hours link to the booking form,
busy ones say what holds them where the viewer may see it (reservations.building_week)."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from reservations import building_week as grid
from reservations.forms import CalendarForm
from workplace import catalogue
from workplace.models import Room

from .common import FINDER_PAGE_SIZE, page_of


@login_required
@require_http_methods(["GET", "HEAD"])
def building_week(request: HttpRequest) -> HttpResponse:
    """``?building=`` (its code; the first by default), ``floor=``, ``date=`` (any day of the
    week; this week by default), ``days=7`` for the weekend too, ``page=``."""
    listed = catalogue.catalogue()  # cached lists: no query for the buildings and floors
    buildings = listed.bookable_buildings
    code = request.GET.get("building") or ""
    building = next((b for b in buildings if b.code == code), None) if code else (buildings[0] if buildings else None)
    floors = listed.floors_of(building) if building else []
    params = request.GET.copy()
    if building is not None and not code:
        params["building"] = building.code
    form = CalendarForm(params, buildings=buildings, floors=floors)
    form.fields["date"].label = "Week of"
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    floor = next((f for f in floors if f.pk == data.get("floor")), None)
    tz = building.tzinfo if building else timezone.get_default_timezone()
    today = timezone.now().astimezone(tz).date()
    day = data.get("date") or today
    monday = day - dt.timedelta(days=day.weekday())
    n_days = grid.FULL_WEEK if request.GET.get("days") == "7" else grid.WORK_WEEK
    days = grid.week_days(monday, n_days)
    rooms = Room.objects.none()
    if building is not None and valid:
        rooms = (Room.objects.filter(building=building, reservable=True)
                 .only("id", "name", "capacity", "show_subjects", "building_id", "floor_id")
                 .order_by("floor__level", "floor__name", "name"))
        if floor is not None:
            rooms = rooms.filter(floor=floor)
    page = page_of(rooms, FINDER_PAGE_SIZE, request.GET.get("page"))  # the rows and their count in one query
    page_rooms = list(page.object_list)
    floor_of = {f.pk: f for f in floors}
    for room in page_rooms:  # from the cached lists, not a join per row
        room.building = building
        if room.floor_id in floor_of or not room.floor_id:  # else (lists older than the room) Django reads it
            room.floor = floor_of.get(room.floor_id)
    rows = grid.week_rows(rooms=page_rooms, days=days, tz=tz, user=request.user, show_floor=floor is None)

    def link(**changes) -> str:
        query = {"building": building.code if building else "", "floor": floor.pk if floor else "",
                 "date": monday.isoformat(), "days": "7" if n_days == grid.FULL_WEEK else ""}
        query.update(changes)
        return "?" + urlencode({k: v for k, v in query.items() if v})

    this_monday = today - dt.timedelta(days=today.weekday())
    day_grid = reverse("portal:building_day")
    head = grid.week_head(days=days, day_urls=[day_grid + link(date=d.isoformat(), days="") for d in days], today=today)
    context = {
        "form": form, "building": building, "floor": floor, "monday": monday, "days": days, "n_days": n_days,
        "tz_name": str(tz), "page": page, "rows": rows, "head": head, "hours_per_day": grid.HOURS,
        "total_columns": n_days * grid.HOURS + 1,
        "work_start": f"{grid.WORK_START_HOUR:02d}:00", "work_end": f"{grid.WORK_END_HOUR:02d}:00",
        "nav": {
            "previous_week": link(date=(monday - dt.timedelta(days=7)).isoformat()),
            "this_week": link(date=this_monday.isoformat()),
            "next_week": link(date=(monday + dt.timedelta(days=7)).isoformat()),
            "work_week": link(days=""),
            "full_week": link(days="7"),
            "day": link(date=(today if monday == this_monday else monday).isoformat(), days=""),
        },
        "is_this_week": monday == this_monday,
        "page_query": link(),
    }
    return render(request, "reservations/building_week.html", context)
