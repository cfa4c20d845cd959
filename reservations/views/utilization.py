"""Utilization (staff only, ``/utilization/``): the figures of ``reservations.utilization`` for a
period and a building or floor, drawn as server-rendered SVG — a weekday × hour heatmap of the
booked hours and a bar per room (booked, of which checked in, and released) — with tables
beside them, and the same figures per room as CSV (``?format=csv``)."""

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from reservations.utilization import UtilizationUnavailable, utilization
from workplace.models import Building, Floor, Room

MAX_PERIOD_DAYS = 366
DEFAULT_DAYS = 28
CHART_ROOMS = 30
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class RoomChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name  # Room.__str__ reads the building: a query per option


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    building = forms.ModelChoiceField(queryset=Building.objects.order_by("name"), required=False, empty_label="All buildings")
    floor = forms.ModelChoiceField(queryset=Floor.objects.select_related("building").order_by("building__name", "level"), required=False, empty_label="All floors")
    # The list offers the chosen floor's or building's rooms (500 rooms are no list); a room
    # alone (a bar's link) is accepted too.
    room = RoomChoiceField(queryset=Room.objects.none(), required=False, empty_label="All rooms")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        data = self.data if self.is_bound else {}
        offered = Room.objects.order_by("name")
        for key, lookup in (("floor", "floor_id"), ("building", "building_id")):
            value = data.get(key)
            if value and str(value).isdigit():
                offered = offered.filter(**{lookup: int(value)})
                break
        else:
            if not (data.get("room") and str(data.get("room")).isdigit()):
                offered = offered.none()  # choose a building or floor first (500 rooms are no list)
            else:
                offered = offered.filter(pk=int(data["room"]))
        self.fields["room"].queryset = offered

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The period ends before it starts.")
            elif (end - start).days + 1 > MAX_PERIOD_DAYS:
                self.add_error("end", f"Choose at most {MAX_PERIOD_DAYS} days.")
        building, floor = data.get("building"), data.get("floor")
        if building and floor and floor.building_id != building.pk:
            self.add_error("floor", "This floor is in another building.")
        room = data.get("room")
        if room and ((building and room.building_id != building.pk) or (floor and room.floor_id != floor.pk)):
            self.add_error("room", "This room is in another building or on another floor.")
        return data


def _default_period() -> dict:
    today = timezone.localdate()
    return {"start": today - dt.timedelta(days=DEFAULT_DAYS - 1), "end": today}


_TENTH = Decimal("0.1")


def _hours(value: float) -> str:
    """``value|floatformat:1`` (the page's hours: half up, one decimal, this site's en-us
    format) without the filter's per-call localisation work — ~400 calls on a page; the tests
    hold the two equal. Anything but a finite non-negative number goes to the filter itself."""
    if isinstance(value, float) and 0 <= value < 1e15:
        return f"{Decimal(repr(value)).quantize(_TENTH, ROUND_HALF_UP):f}"
    return str(floatformat(value, 1))


def _heatmap_cells(result) -> SafeString:
    """The 168 cells' markup, made here in one pass (no template nodes, no filter calls per cell)."""
    top = result.heatmap_max or 1.0
    parts = []
    for day, row in enumerate(result.heatmap):
        name = WEEKDAYS[day]
        for hour, value in enumerate(row):
            if value:
                opacity = round(0.08 + 0.92 * value / top, 3)
                cls = f'cell" fill-opacity="{opacity}'
            else:
                cls = "cell empty"
            parts.append(f'<rect x="{44 + hour * 26}" y="{22 + day * 26}" width="24" height="24" rx="3" class="{cls}">'
                         f"<title>{name} {hour:02d}:00: {_hours(value)} h booked</title></rect>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers and the constant weekday names only)


def _room_bars(result) -> tuple[SafeString, int]:
    """The busiest CHART_ROOMS rooms' bars (booked, of which checked in, and released at the
    end), made here in one pass; the room names escaped. Returns the markup and the chart's
    height."""
    rows = sorted(result.rooms, key=lambda r: (-r.figures.booked_hours, r.building, r.name))[:CHART_ROOMS]
    top = max((r.figures.booked_hours for r in rows), default=0) or 1.0
    width = 520
    parts = []
    for index, row in enumerate(rows):
        f = row.figures
        label = f"{row.name} ({row.building})"
        released_w = round(width * f.released_hours / top, 1)
        parts.append(
            f'<g transform="translate(0 {8 + index * 24})"><text x="220" y="15" text-anchor="end" class="axis">'
            f"{escape(Truncator(label).chars(34))}</text>\n"
            f'      <rect x="228" y="2" width="{round(width * f.booked_hours / top, 1)}" height="18" class="bar-booked">'
            f"<title>{escape(label)}: {_hours(f.booked_hours)} h booked</title></rect>\n"
            f'      <rect x="228" y="2" width="{round(width * f.checked_in_hours / top, 1)}" height="18" class="bar-checked">'
            f"<title>{_hours(f.checked_in_hours)} h checked in</title></rect>\n      "
        )
        if released_w:
            # released time is part of the booked time: drawn at the booked bar's end
            released_x = round(228 + width * (f.booked_hours - f.released_hours) / top, 1)
            parts.append(f'<rect x="{released_x}" y="2" width="{released_w}" height="18" class="bar-released">'
                         f"<title>{_hours(f.released_hours)} h released</title></rect>")
        parts.append(f'\n      <text x="752" y="15" text-anchor="end" class="axis">{_hours(f.booked_hours)} h</text></g>')
    return mark_safe("".join(parts)), 16 + len(rows) * 24  # noqa: S308 (numbers; names escaped)


def _rate(figures) -> str:
    """The no-show rate as ``{% widthratio rate 1 100 %} %`` shows it, or a dash."""
    rate = figures.no_show_rate
    return "—" if rate is None else f"{round((float(rate) / 1.0) * 100)} %"


def _place_rows(result) -> SafeString:
    """The table's building and floor rows, made here in one pass; the names escaped."""
    def cells(f) -> str:
        return (f"<td>{_hours(f.booked_hours)}</td><td>{_hours(f.checked_in_hours)}</td><td>{_hours(f.released_hours)}</td>"
                f"<td>{_rate(f)}</td></tr>")

    buildings = "".join(f'<tr class="building-row"><th scope="row">{escape(row.name)}</th>{cells(row.figures)}' for row in result.buildings)
    floors = "".join(f'<tr class="floor-row"><th scope="row">{escape(row.building)} · {escape(row.name)}</th>{cells(row.figures)}'
                     for row in result.floors)
    return mark_safe(buildings + "\n    " + floors)  # noqa: S308 (numbers; names escaped)


def _csv(result) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="utilization-{result.start}-{result.end}.csv"'
    writer = csv.writer(response)
    writer.writerow(["building", "floor", "room", "room_id", "booked_hours", "checked_in_hours", "released_hours",
                     "reservations", "checked_in", "no_shows", "no_show_rate"])
    for row in result.rooms:
        f = row.figures
        rate = "" if f.no_show_rate is None else f"{f.no_show_rate:.3f}"
        writer.writerow([row.building, row.floor, row.name, row.id, f"{f.booked_hours:.2f}", f"{f.checked_in_hours:.2f}",
                         f"{f.released_hours:.2f}", f.reservations, f.checked_in, f.no_shows, rate])
    return response


@staff_member_required
def utilization_page(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET or None, initial=_default_period())
    if request.GET:
        if not form.is_valid():
            return render(request, "reservations/utilization.html", {"form": form}, status=400)
        period = form.cleaned_data
    else:
        period = {**_default_period(), "building": None, "floor": None, "room": None}
    try:
        result = utilization(start=period["start"], end=period["end"], building=period["building"], floor=period["floor"],
                             room=period.get("room"))
    except UtilizationUnavailable as exc:
        return render(request, "reservations/utilization.html", {"form": form, "unavailable": str(exc)})
    if request.GET.get("format") == "csv":
        return _csv(result)
    bars, bars_height = _room_bars(result)
    query = request.GET.copy()
    query["format"] = "csv"
    for key, value in period.items():
        if key in ("start", "end"):
            query[key] = value.isoformat()
    return render(request, "reservations/utilization.html", {
        "form": form, "result": result, "cells": _heatmap_cells(result), "weekdays": WEEKDAYS, "hours": range(24),
        "bars": bars, "bars_height": bars_height, "place_rows": _place_rows(result), "chart_rooms": CHART_ROOMS, "csv_query": query.urlencode(),
        "peaks": [(WEEKDAYS[d - 1], h, v) for d, h, v in result.peak_hours],
    })
