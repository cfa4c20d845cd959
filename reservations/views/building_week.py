"""A building's (or floor's) week to book from: rooms as rows, the days of the week as column
groups with the building's hours (like Outlook's scheduling grid), filtered by floor, Monday to
Friday or the whole week, a week at a time; free hours and half hours link to the booking form,
busy ones say what holds them where the viewer may see it (reservations.building_week)."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods

from reservations import building_week as grid
from workplace import day_hours

from .grids import grid_choice


@login_required
@require_http_methods(["GET", "HEAD"])
def building_week(request: HttpRequest) -> HttpResponse:
    """``?building=`` (its code; the first by default), ``floor=``, ``date=`` (any day of the
    week; this week by default), ``days=7`` for the weekend too, ``page=``."""
    choice = grid_choice(request, date_label="Week of")
    building, floor, tz, today = choice.building, choice.floor, choice.tz, choice.today
    monday = choice.day - dt.timedelta(days=choice.day.weekday())
    n_days = grid.FULL_WEEK if request.GET.get("days") == "7" else grid.WORK_WEEK
    days = grid.week_days(monday, n_days)
    span = building.day_span if building else grid.DEFAULT_SPAN  # the building's hours
    rows = grid.week_rows(rooms=choice.rooms, days=days, tz=tz, user=request.user, show_floor=floor is None, span=span)
    hours = grid.hours_per_day(span)

    def link(**changes) -> str:
        return "?" + urlencode(choice.query(**{"date": monday.isoformat(), "days": "7" if n_days == grid.FULL_WEEK else "", **changes}))

    this_monday = today - dt.timedelta(days=today.weekday())
    day_grid = reverse("portal:building_day")
    head = grid.week_head(days=days, day_urls=[day_grid + link(date=d.isoformat(), days="") for d in days], today=today, span=span)
    context = {
        "form": choice.form, "building": building, "floor": floor, "monday": monday, "days": days, "n_days": n_days,
        "tz_name": str(tz), "page": choice.page, "rows": rows, "rows_html": SafeString("\n".join(row["html"] for row in rows)),
        "head": head, "hours_per_day": hours, "hour_columns": n_days * hours,
        "total_columns": n_days * hours + 1,
        "work_start": day_hours.clock(span[0]), "work_end": day_hours.clock(span[1]),
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
