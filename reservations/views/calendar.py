"""A building's day to book from: rooms as rows, half hours as columns (like Outlook's room
finder), filtered by floor, a day at a time or a week on; free slots link to the booking
form, busy ones say what holds them where the viewer may see it (reservations.calendar_grid)."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods

from reservations import calendar_grid

from .grids import grid_choice


@login_required
@require_http_methods(["GET", "HEAD"])
def building_day(request: HttpRequest) -> HttpResponse:
    choice = grid_choice(request)
    building, floor, day, tz = choice.building, choice.floor, choice.day, choice.tz
    span = building.day_span if building else calendar_grid.DEFAULT_SPAN  # the building's hours
    rows = calendar_grid.day_grid_rows(rooms=choice.rooms, day=day, tz=tz, user=request.user, show_floor=floor is None, span=span)

    def link(**changes) -> str:
        return "?" + urlencode(choice.query(**changes))

    context = {
        "form": choice.form, "building": building, "floor": floor, "day": day, "tz_name": str(tz), "page": choice.page,
        "rows": rows, "rows_html": SafeString("\n".join(row["html"] for row in rows)),
        "hours": calendar_grid.day_grid_hours(span), "slot_minutes": calendar_grid.SLOT_MINUTES,
        "nav": {
            "previous_week": link(date=(day - dt.timedelta(days=7)).isoformat()),
            "previous_day": link(date=(day - dt.timedelta(days=1)).isoformat()),
            "today": link(date=choice.today.isoformat()),
            "next_day": link(date=(day + dt.timedelta(days=1)).isoformat()),
            "next_week": link(date=(day + dt.timedelta(days=7)).isoformat()),
        },
        "page_query": link(),
    }
    return render(request, "reservations/building_day.html", context)
