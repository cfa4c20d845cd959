"""patternedRecurrence expansion (daily, weekly, absolute/relative monthly and yearly).

Occurrences are produced as local dates in the series' time zone; the series
master's time of day and duration apply to each one, as in Exchange.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, timedelta

from .errors import GraphError

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
PATTERNS = {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
RANGES = {"endDate", "noEnd", "numbered"}
MAX_OCCURRENCES = 2000  # a bound for noEnd series, like Exchange's expansion horizon


def _date(value, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"Invalid recurrence {field}: '{value}'.") from exc


def validate(recurrence: dict) -> dict:
    """Check a patternedRecurrence and return it normalised (documented default values filled)."""
    if not isinstance(recurrence, dict):
        raise GraphError(400, "ErrorInvalidRequest", "recurrence must be an object.")
    pattern = dict(recurrence.get("pattern") or {})
    rng = dict(recurrence.get("range") or {})
    ptype = pattern.get("type")
    if ptype not in PATTERNS:
        raise GraphError(400, "ErrorInvalidRequest", f"Unsupported recurrence pattern type '{ptype}'.")
    rtype = rng.get("type")
    if rtype not in RANGES:
        raise GraphError(400, "ErrorInvalidRequest", f"Unsupported recurrence range type '{rtype}'.")
    try:
        interval = int(pattern.get("interval") or 1)
    except (TypeError, ValueError) as exc:
        raise GraphError(400, "ErrorInvalidRequest", "recurrence interval must be a number.") from exc
    if interval < 1:
        raise GraphError(400, "ErrorInvalidRequest", "recurrence interval must be at least 1.")
    days = [d.lower() for d in pattern.get("daysOfWeek") or []]
    if any(d not in WEEKDAYS for d in days):
        raise GraphError(400, "ErrorInvalidRequest", "Invalid daysOfWeek in recurrence pattern.")
    if ptype in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise GraphError(400, "ErrorInvalidRequest", f"daysOfWeek is required for a {ptype} pattern.")
    if ptype in ("absoluteMonthly", "absoluteYearly") and not pattern.get("dayOfMonth"):
        raise GraphError(400, "ErrorInvalidRequest", f"dayOfMonth is required for a {ptype} pattern.")
    if ptype in ("absoluteYearly", "relativeYearly") and not pattern.get("month"):
        raise GraphError(400, "ErrorInvalidRequest", f"month is required for a {ptype} pattern.")
    start = _date(rng.get("startDate"), "startDate")
    out_range = {
        "type": rtype,
        "startDate": start.isoformat(),
        "endDate": "0001-01-01",
        "recurrenceTimeZone": rng.get("recurrenceTimeZone") or "UTC",
        "numberOfOccurrences": 0,
    }
    if rtype == "endDate":
        end = _date(rng.get("endDate"), "endDate")
        if end < start:
            raise GraphError(400, "ErrorInvalidRequest", "The recurrence range endDate is before its startDate.")
        out_range["endDate"] = end.isoformat()
    if rtype == "numbered":
        try:
            count = int(rng.get("numberOfOccurrences") or 0)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            raise GraphError(400, "ErrorInvalidRequest", "numberOfOccurrences must be at least 1.")
        out_range["numberOfOccurrences"] = count
    out_pattern = {
        "type": ptype,
        "interval": interval,
        "month": int(pattern.get("month") or 0),
        "dayOfMonth": int(pattern.get("dayOfMonth") or 0),
        "daysOfWeek": days,
        "firstDayOfWeek": (pattern.get("firstDayOfWeek") or "sunday").lower(),
        "index": (pattern.get("index") or "first").lower(),
    }
    if out_pattern["firstDayOfWeek"] not in WEEKDAYS or out_pattern["index"] not in INDEXES:
        raise GraphError(400, "ErrorInvalidRequest", "Invalid firstDayOfWeek or index in recurrence pattern.")
    return {"pattern": out_pattern, "range": out_range}


def _nth_weekday(year: int, month: int, days: list[str], index: str) -> list[date]:
    wanted = {WEEKDAYS.index(d) for d in days}
    month_days = [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
    matches = [d for d in month_days if d.weekday() in wanted]
    if not matches:
        return []
    i = INDEXES[index]
    if i == -1:
        return [matches[-1]]
    # with several days (e.g. "weekday"), Exchange picks the n-th matching day
    return [matches[i]] if i < len(matches) else []


def _candidates(pattern: dict, start: date) -> Iterator[date]:
    ptype, interval = pattern["type"], pattern["interval"]
    if ptype == "daily":
        d = start
        while True:
            yield d
            d += timedelta(days=interval)
    elif ptype == "weekly":
        first = WEEKDAYS.index(pattern["firstDayOfWeek"])
        week_start = start - timedelta(days=(start.weekday() - first) % 7)
        order = sorted(WEEKDAYS.index(d) for d in pattern["daysOfWeek"])
        order = sorted(order, key=lambda wd: (wd - first) % 7)
        while True:
            for wd in order:
                d = week_start + timedelta(days=(wd - first) % 7)
                if d >= start:
                    yield d
            week_start += timedelta(weeks=interval)
    elif ptype in ("absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
        yearly = ptype.endswith("Yearly")
        step = interval * 12 if yearly else interval
        year, month = start.year, (pattern["month"] if yearly else start.month)
        if yearly and date(year, month, 1) < date(start.year, start.month, 1):
            year += 1
        for _ in range(100000):
            if ptype.startswith("absolute"):
                # A month too short for dayOfMonth gets its last day (Outlook's rule: day 31 is
                # "the last day of every month", day 29 falls on February 28 outside leap years:
                # https://learn.microsoft.com/en-us/previous-versions/exchange-server/exchange-10/ms528295(v=exchg.10) ;
                # MS-OXCICAL 2.1.3.2.2.3 stores BYMONTHDAY=-1 as day 31).
                d = date(year, month, min(pattern["dayOfMonth"], calendar.monthrange(year, month)[1]))
                if d >= start:
                    yield d
            else:
                for d in _nth_weekday(year, month, pattern["daysOfWeek"], pattern["index"]):
                    if d >= start:
                        yield d
            month += step
            while month > 12:
                month -= 12
                year += 1
            if year > 9000:
                return


def occurrence_dates(recurrence: dict, until: date | None = None) -> Iterator[date]:
    """Dates of the series in order, bounded by its range (and by ``until`` if given)."""
    pattern, rng = recurrence["pattern"], recurrence["range"]
    start = date.fromisoformat(rng["startDate"])
    end = date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else None
    count = rng["numberOfOccurrences"] if rng["type"] == "numbered" else None
    produced = 0
    for d in _candidates(pattern, start):
        if end and d > end:
            return
        if until and d > until:
            return
        if count is not None and produced >= count:
            return
        if produced >= MAX_OCCURRENCES:
            return
        produced += 1
        yield d
