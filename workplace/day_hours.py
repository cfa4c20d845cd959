"""A building's day as the portal's calendar grids draw it (``Building.day_starts`` /
``day_ends``, building-local wall-clock times on the half hour): its span in minutes after
local midnight, and what makes a pair of times valid.

"Until midnight" is written as an end of 00:00 (the booking form's rule too: a meeting
ending at 00:00 ends the next day), so 00:00–00:00 is the whole day (a 24/7 site). The API
shows that end as "24:00"."""

import datetime as dt

STEP_MINUTES = 30  # the day grid's slot: the hours start and end on one of its boundaries
DEFAULT_STARTS = dt.time(7)  # the grids' hours before they were the building's
DEFAULT_ENDS = dt.time(21)
MIDNIGHT = dt.time(0)
DAY_MINUTES = 24 * 60


def minutes(starts: dt.time, ends: dt.time) -> tuple[int, int]:
    """(start, end) in minutes after local midnight, an end of 00:00 as 1440 (24:00)."""
    start = starts.hour * 60 + starts.minute
    end = ends.hour * 60 + ends.minute
    return start, end or DAY_MINUTES


def errors(starts: dt.time | None, ends: dt.time | None) -> dict[str, str]:
    """{field: message} of what is wrong with the pair; empty when it is valid."""
    found = {}
    for field, value in (("day_starts", starts), ("day_ends", ends)):
        if value is not None and (value.minute % STEP_MINUTES or value.second or value.microsecond):
            found[field] = "Use a whole or half hour (e.g. 06:00 or 06:30)."
    if starts is not None and ends is not None and not found:
        start, end = minutes(starts, ends)
        if start >= end:
            found["day_ends"] = "The day must end after it starts (00:00 means until midnight)."
    return found


def span(starts: dt.time, ends: dt.time) -> tuple[int, int]:
    """``minutes`` of a valid pair; the default hours for one that isn't (a row written past
    ``Building.clean``, e.g. by ``QuerySet.update``): a grid always has slots to draw."""
    if errors(starts, ends):
        return minutes(DEFAULT_STARTS, DEFAULT_ENDS)
    return minutes(starts, ends)


def clock(minute: int) -> str:
    """"HH:MM" of minutes after midnight; 1440 as "24:00"."""
    return f"{minute // 60:02d}:{minute % 60:02d}"
