"""Expanding a recurrence pattern into occurrence slots.

Patterns follow Outlook's: daily / weekly (on chosen weekdays) / monthly (same
day of the month, the last day of a month too short for it), every ``interval`` units, ending on a date (``until``,
inclusive, building-local) or after ``count`` occurrences. The pattern is
expanded in the building's time zone, so a 09:00 meeting stays at 09:00 local
across daylight-saving changes; the slots come out in UTC.
"""

import calendar
import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from reservations.exceptions import InvalidReservation

FREQUENCIES = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Recurrence:
    frequency: str
    interval: int = 1
    # ISO weekdays (1 = Monday .. 7 = Sunday), weekly only; empty = the first day's weekday.
    weekdays: tuple[int, ...] = field(default_factory=tuple)
    until: dt.date | None = None
    count: int | None = None


@dataclass(frozen=True)
class Slot:
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    original_start: dt.datetime  # the pattern's own start (UTC)


def shift_weekdays(weekdays, days: int) -> list[int]:
    """ISO weekdays ``days`` days on: a Monday/Wednesday series moved by a day runs on
    Tuesday/Thursday."""
    return sorted({(day - 1 + days) % 7 + 1 for day in weekdays})


def validate_recurrence(recurrence: Recurrence, *, first_day: dt.date, max_occurrences: int) -> None:
    errors: dict[str, list[str]] = {}
    if recurrence.frequency not in FREQUENCIES:
        errors["recurrence.frequency"] = [f"Choose one of {', '.join(FREQUENCIES)}."]
    if not 1 <= recurrence.interval <= 99:
        errors["recurrence.interval"] = ["The interval must be between 1 and 99."]
    if recurrence.weekdays:
        if recurrence.frequency != "weekly":
            errors["recurrence.weekdays"] = ["Weekdays apply to weekly series only."]
        elif any(day not in range(1, 8) for day in recurrence.weekdays):
            errors["recurrence.weekdays"] = ["Weekdays are ISO numbers: 1 (Monday) to 7 (Sunday)."]
    if (recurrence.until is None) == (recurrence.count is None):
        errors["recurrence"] = ["Give either an end date (until) or a number of occurrences (count)."]
    elif recurrence.count is not None and not 1 <= recurrence.count <= max_occurrences:
        errors["recurrence.count"] = [f"A series has between 1 and {max_occurrences} occurrences."]
    elif recurrence.until is not None and recurrence.until < first_day:
        errors["recurrence.until"] = ["The series can't end before its first occurrence."]
    if errors:
        raise InvalidReservation("The recurrence pattern is not valid.", extra=errors)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` later; in a month too short for it, that month's
    last day. Outlook's rule for a monthly series on day 29-31 ("Outlook and CDO generate
    recurrences on February 28 for years other than leap years"; "the last day of every month
    can be represented by the value 31 in monthly recurrences":
    https://learn.microsoft.com/en-us/previous-versions/exchange-server/exchange-10/ms528295(v=exchg.10) ,
    and MS-OXCICAL 2.1.3.2.2.3: BYMONTHDAY=-1 is stored as day 31), which Graph's
    ``absoluteMonthly`` pattern with that ``dayOfMonth`` follows."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _candidate_days(recurrence: Recurrence, first_day: dt.date):
    """Every day the pattern produces, in order, starting at ``first_day``."""
    step = recurrence.interval
    if recurrence.frequency == "daily":
        day = first_day
        while True:
            yield day
            day += dt.timedelta(days=step)
    elif recurrence.frequency == "weekly":
        weekdays = sorted(set(recurrence.weekdays)) or [first_day.isoweekday()]
        week_start = first_day - dt.timedelta(days=first_day.weekday())
        while True:
            for weekday in weekdays:
                day = week_start + dt.timedelta(days=weekday - 1)
                if day >= first_day:
                    yield day
            week_start += dt.timedelta(weeks=step)
    else:
        months = 0
        while True:
            yield add_months(first_day, months)
            months += step


def expand(
    recurrence: Recurrence,
    *,
    start: dt.datetime,
    end: dt.datetime,
    tz: zoneinfo.ZoneInfo,
    max_occurrences: int,
) -> list[Slot]:
    """The occurrence slots of a series whose first meeting is ``start``–``end``.

    Occurrences are the pattern's days on or after the first day (Graph's rule),
    each at the first meeting's local wall-clock time and local duration."""
    local_start = start.astimezone(tz).replace(tzinfo=None)
    local_end = end.astimezone(tz).replace(tzinfo=None)
    validate_recurrence(recurrence, first_day=local_start.date(), max_occurrences=max_occurrences)
    duration = local_end - local_start
    slots: list[Slot] = []
    for day in _candidate_days(recurrence, local_start.date()):
        if recurrence.until is not None and day > recurrence.until:
            break
        if recurrence.count is not None and len(slots) >= recurrence.count:
            break
        if len(slots) >= max_occurrences:
            raise InvalidReservation(
                f"A series can have at most {max_occurrences} occurrences; end it earlier.",
                extra={"recurrence.until": [f"This pattern produces more than {max_occurrences} occurrences."]},
            )
        occ_local = dt.datetime.combine(day, local_start.time())
        occ_start = occ_local.replace(tzinfo=tz).astimezone(dt.UTC)
        occ_end = (occ_local + duration).replace(tzinfo=tz).astimezone(dt.UTC)
        slots.append(Slot(start=occ_start, end=occ_end, original_start=occ_start))
    return slots
