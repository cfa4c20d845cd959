"""What the building day grid and the building week share: the building, floor and day chosen
(``?building=`` its code, the first bookable one by default; ``floor=``; ``date=``), read
against the cached lists of ``workplace.catalogue`` (no query for the buildings and floors),
and the page of the building's (or floor's) reservable rooms (one query)."""

import dataclasses
import datetime as dt

from django.core.paginator import Page
from django.http import HttpRequest
from django.utils import timezone

from reservations import calendar_grid
from reservations.forms import CalendarForm
from workplace import catalogue
from workplace.models import Building, Floor

from .common import FINDER_PAGE_SIZE


@dataclasses.dataclass
class GridChoice:
    form: CalendarForm
    building: Building | None
    floor: Floor | None  # None: all floors
    tz: dt.tzinfo  # the building's
    today: dt.date  # in tz
    day: dt.date  # the day chosen (today by default)
    page: Page
    rooms: list[calendar_grid.GridRoom]  # the page's rows

    def query(self, **changes) -> dict[str, str]:
        """The choice as query parameters, with ``changes``; the empty ones left out."""
        query = {"building": self.building.code if self.building else "", "floor": str(self.floor.pk) if self.floor else "",
                 "date": self.day.isoformat()}
        query.update(changes)
        return {k: v for k, v in query.items() if v}


def grid_choice(request: HttpRequest, *, date_label: str | None = None) -> GridChoice:
    listed = catalogue.catalogue()
    buildings = listed.bookable_buildings
    code = request.GET.get("building") or ""
    building = next((b for b in buildings if b.code == code), None) if code else (buildings[0] if buildings else None)
    floors = listed.floors_of(building) if building else []
    params = request.GET
    if building is not None and not code:
        params = params.copy()
        params["building"] = building.code
    form = CalendarForm(params, buildings=buildings, floors=floors)
    if date_label:
        form.fields["date"].label = date_label
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    floor = next((f for f in floors if f.pk == data.get("floor")), None)
    tz = building.tzinfo if building else timezone.get_default_timezone()
    today = timezone.now().astimezone(tz).date()
    if building is not None and valid:
        page, rooms = calendar_grid.room_page(building_id=building.pk, floor_id=floor.pk if floor else None, floors=floors,
                                              per_page=FINDER_PAGE_SIZE, number=request.GET.get("page"))
    else:
        page, rooms = calendar_grid.empty_page(FINDER_PAGE_SIZE), []
    return GridChoice(form=form, building=building, floor=floor, tz=tz, today=today, day=data.get("date") or today,
                      page=page, rooms=rooms)
