"""Time zones and Graph's date-time formats.

Graph takes and returns ``{"dateTime": "2024-05-01T09:00:00.0000000", "timeZone": ...}``
where the zone is a Windows name ("W. Europe Standard Time"), an IANA name
("Europe/Berlin") or "UTC". Internally every instant is an aware UTC datetime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import GraphError
from .windows_zones import WINDOWS_TO_IANA

IANA_TO_WINDOWS = {}
for _win, _iana in WINDOWS_TO_IANA.items():
    IANA_TO_WINDOWS.setdefault(_iana, _win)

_PREFER_TZ = re.compile(r'outlook\.timezone\s*=\s*"?([^",;]+)"?', re.IGNORECASE)
_PAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


@lru_cache(maxsize=512)
def _lookup(name: str) -> tzinfo | None:
    if name.upper() in ("UTC", "ETC/UTC", "Z", "GMT", "COORDINATED UNIVERSAL TIME"):
        return UTC
    iana = WINDOWS_TO_IANA.get(name)
    if iana is None:
        lowered = {k.lower(): v for k, v in WINDOWS_TO_IANA.items()}
        iana = lowered.get(name.lower(), name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def resolve_tz(name: str | None) -> tzinfo:
    """A tzinfo for a Windows or IANA name; 400 TimeZoneNotSupportedException otherwise."""
    if not name:
        return UTC
    tz = _lookup(str(name).strip())
    if tz is None:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        )
    return tz


def now() -> datetime:
    return datetime.now(UTC)


def parse_local(value: str) -> datetime:
    """Parse Graph's dateTime (naive, optional fraction up to 7 digits, optional Z/offset)."""
    if not isinstance(value, str):
        raise GraphError(400, "UnableToDeserializePostBody", "dateTime must be a string.")
    text = value.strip()
    m = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?",
        text,
    )
    if not m:
        raise GraphError(400, "UnableToDeserializePostBody", f"Cannot convert the literal '{value}' to a date-time.")
    date_part, time_part, frac, offset = m.groups()
    time_part = time_part or "00:00:00"
    if len(time_part) == 5:
        time_part += ":00"
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime.fromisoformat(f"{date_part}T{time_part}").replace(microsecond=micro)
        if offset:
            off = offset if offset != "Z" else "+00:00"
            if ":" not in off:
                off = off[:3] + ":" + off[3:]
            dt = datetime.fromisoformat(dt.isoformat() + off)
    except ValueError as exc:
        raise GraphError(400, "UnableToDeserializePostBody", f"Cannot convert the literal '{value}' to a date-time.") from exc
    return dt


def parse_datetime_tz(obj, field: str = "start") -> tuple[datetime, str]:
    """{"dateTime", "timeZone"} -> (aware UTC datetime, the zone name as given)."""
    if not isinstance(obj, dict) or "dateTime" not in obj:
        raise GraphError(400, "ErrorInvalidRequest", f"The '{field}' property requires a dateTime and timeZone.")
    tz_name = obj.get("timeZone") or "UTC"
    tz = resolve_tz(tz_name)
    local = parse_local(obj["dateTime"])
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(UTC), tz_name


def parse_query_instant(value: str | None, name: str) -> datetime:
    """startDateTime/endDateTime query values: ISO 8601; no offset means UTC."""
    if not value:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    try:
        dt = parse_local(value)
    except GraphError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"The value '{value}' of parameter '{name}' is invalid.") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def fmt_local(dt_utc: datetime, tz_name: str | None) -> dict:
    """Aware datetime -> {"dateTime": "...0000000", "timeZone": name} in that zone."""
    tz_name = tz_name or "UTC"
    local = dt_utc.astimezone(resolve_tz(tz_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0", "timeZone": tz_name}


def fmt_z(dt: datetime) -> str:
    """createdDateTime style: 2024-05-01T09:00:00.1234567Z."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def parse_iso(value) -> datetime:
    if not isinstance(value, str):
        raise GraphError(400, "BadRequest", "Expected an ISO 8601 date-time string.")
    dt = parse_local(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def prefer_timezone(prefer: str | None) -> str | None:
    if not prefer:
        return None
    m = _PREFER_TZ.search(prefer)
    if not m:
        return None
    name = m.group(1).strip()
    resolve_tz(name)
    return name


def prefer_pagesize(prefer: str | None) -> int | None:
    if not prefer:
        return None
    m = _PAGESIZE.search(prefer)
    return int(m.group(1)) if m else None


ZERO_TIME = "0001-01-01T00:00:00Z"
DAY = timedelta(days=1)
