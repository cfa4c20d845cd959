"""Expanding a recurrence pattern into occurrence slots.

Patterns follow Outlook's: daily / weekly (on chosen weekdays) / monthly, either on
the same day of the month (Graph's ``absoluteMonthly``; the last day of a month too short
for it) or on a weekday in a position of the month, "the 2nd Tuesday", "the last Friday"
(``index`` + one weekday: Graph's ``relativeMonthly``), every ``interval`` units, ending on a date (``until``,
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
# A relative monthly pattern's position of the weekday in the month, as Graph's weekIndex
# (https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern): "last" is the
# month's last such weekday, whether the 4th or the 5th.
INDEXES = ("first", "second", "third", "fourth", "last")


@dataclass(frozen=True)
class Recurrence:
    frequency: str
    interval: int = 1
    # ISO weekdays (1 = Monday .. 7 = Sunday), weekly only; empty = the first day's weekday.
    weekdays: tuple[int, ...] = field(default_factory=tuple)
    until: dt.date | None = None
    count: int | None = None
    # Monthly only: "first" .. "last" — on that weekday (``weekdays``, one; empty = the first
    # day's weekday) of the month; None = on the first day's day of the month.
    index: str | None = None


def index_of(day: dt.date) -> str:
    """The position of ``day``'s weekday in its month: the 29th–31st are "last"."""
    return INDEXES[min((day.day - 1) // 7, 4)]


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
    if recurrence.index is not None:
        if recurrence.frequency != "monthly":
            errors["recurrence.index"] = ["A position in the month (index) applies to monthly series only."]
        elif recurrence.index not in INDEXES:
            errors["recurrence.index"] = [f"Choose one of {', '.join(INDEXES)}."]
    if recurrence.weekdays:
        if recurrence.frequency == "monthly" and recurrence.index is not None:
            if len(set(recurrence.weekdays)) != 1:
                errors["recurrence.weekdays"] = ["A monthly series by position meets on one weekday (e.g. [2] for Tuesday)."]
        elif recurrence.frequency != "weekly":
            errors["recurrence.weekdays"] = ["Weekdays apply to weekly series, or to monthly ones with an index."]
        if any(day not in range(1, 8) for day in recurrence.weekdays):
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


def _weekday_in_month(year: int, month: int, weekday: int, index: str) -> dt.date:
    """The ``index`` ISO ``weekday`` of the month: first .. fourth, or the last one."""
    first = dt.date(year, month, 1)
    day = first + dt.timedelta(days=(weekday - first.isoweekday()) % 7)
    if index == "last":
        while (day + dt.timedelta(days=7)).month == month:
            day += dt.timedelta(days=7)
        return day
    return day + dt.timedelta(weeks=INDEXES.index(index))


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
    elif recurrence.index is not None:
        # Graph's relativeMonthly: in every interval-th month from the first day's, the index-th
        # weekday; the first occurrence is the first such day on or after the first day.
        weekday = recurrence.weekdays[0] if recurrence.weekdays else first_day.isoweekday()
        months = 0
        while True:
            month_index = first_day.month - 1 + months
            day = _weekday_in_month(first_day.year + month_index // 12, month_index % 12 + 1, weekday, recurrence.index)
            if day >= first_day:
                yield day
            months += step
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
