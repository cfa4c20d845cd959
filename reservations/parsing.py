"""The one place where what a caller typed becomes a time, an id, a day or a subject.

The REST API (``reservations.api.fields``) and the portal's forms and views read their
input through these functions, so an impossible value ("2030-02-30", an offset of
+25:00, "²" as an id, the year 9999) is a refusal with a message everywhere, never a
``ValueError`` or ``OverflowError`` deep in a view.

Each function raises ``django.core.exceptions.ValidationError`` with a message for the
person who sent the value; the callers turn it into their own shape (a 400 in the API,
a form error in the portal).
"""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date as django_parse_date
from django.utils.dateparse import parse_datetime as django_parse_datetime

from workplace.text import one_line

# Days and moments the product handles: far enough either way for any real booking or
# filter, and far enough from datetime's limits that a day's end, a time-zone
# conversion or the next occurrence can't overflow.
EARLIEST_DAY = dt.date(1900, 1, 1)
LATEST_DAY = dt.date(9998, 12, 31)
RANGE_TEXT = f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"

# Ids are PostgreSQL bigints: ASCII digits only ("²".isdigit() is true in Python).
MAX_ID = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")

NAIVE = "Give a time-zone offset, e.g. 2030-05-04T09:00:00+02:00 or …Z."
NOT_A_TIME = "Not a time: use ISO 8601 with an offset, e.g. 2030-05-04T09:00:00+02:00."
NOT_A_DAY = "Not a date: use YYYY-MM-DD, e.g. 2030-05-04."
NOT_AN_ID = "Give a whole number from 1 up."


def _in_range(day: dt.date, what: str) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValidationError(f"{what} must be {RANGE_TEXT}.", code="out_of_range")


def aware_datetime(value: str | dt.datetime) -> dt.datetime:
    """An aware datetime from ISO 8601 text with an offset (or an aware datetime)."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = django_parse_datetime(value.strip())
        except ValueError:  # well-formed but impossible: Feb 30, 09:60, an offset of +25:00
            raise ValidationError(NOT_A_TIME, code="invalid") from None
        if parsed is None:
            raise ValidationError(NOT_A_TIME, code="invalid")
    else:
        raise ValidationError(NOT_A_TIME, code="invalid")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(NAIVE, code="naive")
    _in_range(parsed.date(), "A time")
    return parsed


def day(value: str | dt.date) -> dt.date:
    """A calendar day from ``YYYY-MM-DD`` (or a date)."""
    if isinstance(value, dt.datetime):
        raise ValidationError(NOT_A_DAY, code="invalid")
    if isinstance(value, dt.date):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = django_parse_date(value.strip())
        except ValueError:  # 2030-02-30
            raise ValidationError(NOT_A_DAY, code="invalid") from None
        if parsed is None:
            raise ValidationError(NOT_A_DAY, code="invalid")
    else:
        raise ValidationError(NOT_A_DAY, code="invalid")
    _in_range(parsed, "A date")
    return parsed


def day_or_none(value: str | None) -> dt.date | None:
    """``day`` for optional input (a query parameter): None when missing or unreadable."""
    if value is None:
        return None
    try:
        return day(value)
    except ValidationError:
        return None


def object_id(value: str | int) -> int:
    """A database id: a whole number from 1 to the bigint maximum, ASCII digits only."""
    if isinstance(value, bool):
        raise ValidationError(NOT_AN_ID, code="invalid")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValidationError(NOT_AN_ID, code="invalid")
    if not 1 <= number <= MAX_ID:
        raise ValidationError(NOT_AN_ID, code="invalid")
    return number


def subject(value: str) -> str:
    """A reservation's subject as one line (it becomes an email subject and a calendar title)."""
    return one_line(value)


def looks_like_id(value: str) -> bool:
    """True for text that is an id (ASCII digits), false for anything else (an email ...)."""
    return bool(_ASCII_DIGITS.fullmatch(value.strip()))
