"""Finding a room: the finder (filters, a day's timeline per room) and a room's week."""

import datetime as dt
from html import escape as html_escape
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods

from reservations import calendar_grid, portal_selectors, rules
from reservations.forms import FinderForm
from reservations.links import id_url
from workplace import catalogue
from workplace.models import Room

from .common import (
    FINDER_PAGE_SIZE,
    get_room,
    user_tz,
)


@login_required
@require_http_methods(["GET", "HEAD"])
def finder(request: HttpRequest) -> HttpResponse:
    listed = catalogue.catalogue()
    form = FinderForm(request.GET or None, catalogue=listed)
    filters: dict = {}
    building = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        building = data["building"]
        filters = {
            "building": building, "floor": data["floor"], "capacity_min": data["capacity"],
            "equipment": [e.slug for e in data["equipment"]], "arrangement": data["arrangement"] or None,
        }
    tz = building.tzinfo if building else user_tz(request.user)
    day = (form.cleaned_data.get("date") if form.is_bound and form.is_valid() else None) or timezone.now().astimezone(tz).date()
    free_from = free_to = None
    if form.is_bound and form.is_valid() and form.cleaned_data["free_from"]:
        free_from = dt.datetime.combine(day, form.cleaned_data["free_from"], tzinfo=tz)
        free_to = dt.datetime.combine(day, form.cleaned_data["free_to"], tzinfo=tz)
    if not form.is_bound or form.is_valid():
        page, page_rooms = portal_selectors.finder_page(
            **filters, free_from=free_from, free_to=free_to, listed=listed, per_page=FINDER_PAGE_SIZE,
            number=request.GET.get("page"))
    else:
        page, page_rooms = calendar_grid.empty_page(FINDER_PAGE_SIZE), []
    bookings = portal_selectors.room_day_bookings(rooms=page_rooms, day=day, user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    book_query = {"date": day.isoformat()}
    if free_from:
        book_query.update(start=free_from.strftime("%H:%M"), end=free_to.strftime("%H:%M"))
    book_suffix = "?" + urlencode(book_query)
    first, last = portal_selectors.DAY_VIEW_START_HOUR, portal_selectors.DAY_VIEW_END_HOUR
    links = {"week": _url_parts("portal:room_week", f"?week={day.isoformat()}"),
             "book": _url_parts("portal:book", escape(book_suffix))}
    context = {
        "form": form, "fields": form.drawn(), "page": page, "day": day, "tz_name": str(tz),
        # The page's rooms as one piece of HTML (no template loop over 25 rows).
        "rows": mark_safe("".join(  # noqa: S308 - each row escapes its values (_finder_row)
            _finder_row(room, bookings.get(room.pk, []), listed.facts_of(room.pk), links) + "\n" for room in page_rooms)),
        "query": query.urlencode(),
        "scale": _scale(first, last),
        "free_from": free_from, "free_to": free_to,
        "caps": rules.ui_capabilities(request.user),
    }
    return render(request, "reservations/finder.html", context)


def _scale(first: int, last: int) -> SafeString:
    """The timeline's hour ticks above the rows (every second hour of the day view)."""
    return mark_safe("".join(  # noqa: S308 - numbers only
        f'<span class="tick" style="left: {round((h - first) / (last - first) * 100, 2)}%">{h}:00</span>'
        for h in range(first, last + 1, 2)))


_ID_MARK = 918273645546372819  # an id no room has: where a row's id goes in its links


def _url_parts(name: str, suffix: str) -> tuple[str, str]:
    """A room link as (head, tail) around the room's id, ``suffix`` (escaped) after it: one
    ``id_url`` per page rather than per row."""
    head, tail = id_url(name, _ID_MARK).split(str(_ID_MARK))
    return html_escape(head), html_escape(tail) + suffix


def _finder_row(room: Room, bookings: list[dict], facts: tuple[list[str], list[str]], links: dict) -> SafeString:
    """A room of the finder as HTML, written here rather than in template loops: the page lists
    25 rooms, and Django's template engine made most of its time (issue 14's speed target).
    Every value from the database is escaped (``html.escape``: what ``django.utils.html.escape``
    does, without its lazy-text wrapper and ``SafeString`` per call)."""
    booked = ", ".join(
        f"{b['start']:%H:%M}–{b['end']:%H:%M}" + (" (yours)" if b["mine"] else "") for b in bookings
    )
    booked = f"Booked: {booked}" if booked else "Free all day"
    name = html_escape(room.name)
    equipment = html_escape(", ".join(facts[0]))
    layouts = html_escape(", ".join(facts[1]))
    if room.is_synced:
        tag = '<span class="tag tag-sync" title="Reservations appear in Outlook">Syncs with Outlook</span>'
    elif room.mailbox:
        tag = '<span class="tag">Mailbox, not synced</span>'
    else:
        tag = '<span class="tag">Not in Outlook</span>'
    where = html_escape(room.building.name) + (f" · {html_escape(room.floor.name)}" if room.floor_id else "")
    blocks = "".join(f'<span class="block{" mine" if b["mine"] else ""}" style="left: {b["left"]}%; width: {b["width"]}%"></span>'
                     for b in bookings)
    (week_head, week_tail), (book_head, book_tail) = links["week"], links["book"]
    pk = room.pk
    return mark_safe(  # noqa: S308 - every value above is escaped or ours
        f'<li class="room card" id="room-{pk}">'
        f'<div class="room-head"><div><h3 class="room-name">{name}</h3>'
        f'<p class="muted small">{where} · {room.capacity} seats</p></div>'
        f'<span class="room-actions"><a class="btn btn-ghost btn-small" href="{week_head}{pk}{week_tail}" aria-label="{name}&#x27;s week">Week</a> '
        f'<a class="btn btn-primary" href="{book_head}{pk}{book_tail}" aria-label="Book {name}">Book</a></span></div>'
        f'<p class="facts small">{tag} '
        + (f'<span><span class="muted">Equipment:</span> {equipment}</span> ' if equipment else "")
        + f'<span><span class="muted">Layouts:</span> {layouts}</span></p>'
        f'<div class="timeline" role="img" aria-label="{booked}">{blocks}</div>'
        f'<p class="small booked-list">{booked}</p></li>'
    )


@login_required
@require_http_methods(["GET", "HEAD"])
def room_week(request: HttpRequest, room_id: int) -> HttpResponse:
    """A room's week (``?week=`` any day of it; this week by default), hour by hour: busy
    hours show what holds them where the viewer may see it, a free hour is a link to the
    booking form for that hour — plain links, so keyboard and no-JavaScript use work alike."""
    room = get_room(room_id, facts=False)
    tz = room.building.tzinfo
    try:
        day = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.now().astimezone(tz).date()
    monday = day - dt.timedelta(days=day.weekday())
    week = calendar_grid.week_grid(room=room, monday=monday, user=request.user)
    context = {
        "room": room, "week": week, "monday": monday,
        "previous": (monday - dt.timedelta(days=7)).isoformat(), "next": (monday + dt.timedelta(days=7)).isoformat(),
    }
    return render(request, "reservations/room_week.html", context)
