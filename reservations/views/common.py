"""What the portal's pages share: the viewer's time zone, loading a room or a reservation the viewer may see."""

import datetime as dt
import zoneinfo

from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet, Window
from django.http import Http404, HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from reservations import selectors
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

FINDER_PAGE_SIZE = 25
MY_PAGE_SIZE = 50


def page_of(rows: QuerySet, per_page: int, number) -> Page:
    """``Paginator(rows, per_page).get_page(number)`` in one query instead of two: the page's
    rows come with the total (a window count), so no COUNT query runs before them. Only an
    empty or out-of-range page costs the count (and the last page's rows)."""
    paginator = Paginator(rows, per_page)
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    bottom = (wanted - 1) * per_page
    found = list(rows.annotate(_page_total=Window(Count("pk")))[bottom:bottom + per_page])
    if found:
        paginator.count = found[0]._page_total  # Paginator.count is a cached_property
        return Page(found, wanted, paginator)
    return paginator.get_page(wanted)


def signed_in_user(request: HttpRequest):
    """``request.user`` itself rather than its lazy proxy (``SimpleLazyObject``: every attribute
    read goes through it; a page of 50 rows, with their capabilities, reads them thousands of times)."""
    user = request.user
    user.is_authenticated  # noqa: B018 - loads the user behind the proxy
    return getattr(user, "_wrapped", user)


def user_tz(user) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(user.profile.timezone)
    except Exception:  # no profile row, or a zone this machine lacks
        return timezone.get_default_timezone()


def get_room(room_id: int, *, facts: bool = True) -> Room:
    """A reservable room with its building and floor; with ``facts`` also its equipment and
    layouts (two more queries: the booking form needs them, the week view doesn't)."""
    rooms = selectors.room_queryset() if facts else Room.objects.select_related("building", "floor")
    room = rooms.filter(pk=room_id, reservable=True).first()
    if room is None:
        raise Http404("No such room.")
    return room


def get_reservation(request: HttpRequest, reservation_id: int) -> Reservation:
    reservation = selectors.reservation_get_for_user(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise Http404("No such reservation.")
    return reservation


def state_word(reservation: Reservation) -> str:
    if reservation.state in ACTIVE_STATES and reservation.end <= timezone.now():
        return "over"
    return reservation.get_state_display().replace("_", " ").lower()
def people_api_url() -> str:
    """The attendee picker's search (calendar_sync's API), or "" where it isn't mounted."""
    try:
        return reverse("people")
    except NoReverseMatch:
        return ""


def freebusy_api_url() -> str:
    try:
        return reverse("freebusy")
    except NoReverseMatch:
        return ""


