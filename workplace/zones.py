"""The time zone admin pages and the Outlook page show times in (issue 14, item 6).

Django renders aware datetimes in the *active* zone (settings.TIME_ZONE, UTC, unless one is
activated). For /admin/ and /outlook/ this middleware activates, per request: the signed-in
user's profile zone when they set one (anything but the default UTC); else the buildings' zone
when every building shares one; else UTC. The formats (settings/formats/en) name the zone
("1 Dec 2026, 10:33 CET"). Lists whose rows each belong to a building show each row in its own
building's zone too (``local_time``). The portal keeps its own building-local rendering; the API
stays ISO 8601 with offsets."""

from __future__ import annotations

import zoneinfo

from django.utils import dateformat, timezone

from workplace.models import Building

PREFIXES = ("/admin/", "/outlook/")


def buildings_zone() -> str:
    """The zone every building shares, else "" (one small query)."""
    zones = set(Building.objects.order_by().values_list("timezone", flat=True).distinct()[:2])
    return zones.pop() if len(zones) == 1 else ""


def zone_for(user) -> str:
    profile = getattr(user, "profile", None) if getattr(user, "is_authenticated", False) else None
    mine = getattr(profile, "timezone", "") or ""
    if mine and mine != "UTC":
        return mine
    return buildings_zone() or "UTC"


def local_time(value, zone: str) -> str:
    """``value`` in ``zone``, as the admin shows times, with the zone named: "1 Dec 2026, 10:33 CET (Europe/Berlin)"."""
    if value is None:
        return "-"
    local = value.astimezone(zoneinfo.ZoneInfo(zone))
    return f"{dateformat.format(local, 'j M Y, H:i T')} ({zone})"


class AdminTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if not request.path.startswith(PREFIXES) or not getattr(user, "is_authenticated", False):
            return self.get_response(request)  # the sign-in pages show no stored times
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone_for(user)))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
