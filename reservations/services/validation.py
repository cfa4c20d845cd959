"""The rules a reservation's values must meet, and the checks every user-facing service
makes before it writes: the scope, who may manage the row, the attendee list.

Errors are collected per field (``{field: [message, ...]}``) and raised together as one
``InvalidReservation``, so a form or an API client sees every problem at once."""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from reservations.exceptions import InvalidReservation, NotPermitted
from reservations.models import Attendee, Reservation
from reservations.services import clock
from workplace.models import Arrangement, Room

SUBJECT_MAX_LENGTH = 255
BODY_MAX_LENGTH = 10_000
ATTENDEE_NAME_MAX_LENGTH = 200
REASON_MAX_LENGTH = 500
SERIES_SCOPES = ("occurrence", "series")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


# An update argument not given (None is a value: no arrangement).
UNSET: Any = _Unset()


def raise_invalid(errors: dict[str, list[str]]) -> None:
    if not errors:
        return
    if len(errors) == 1:
        [(field, messages)] = errors.items()
        message = messages[0]
    else:
        message = f"The reservation is not valid ({len(errors)} problems)."
    raise InvalidReservation(message, extra=errors)


def check_scope(scope: str, reservation: Reservation) -> None:
    """An update's or cancel's ``scope``: one occurrence, or the series of a recurring one."""
    if scope not in SERIES_SCOPES:
        raise InvalidReservation("Scope must be 'occurrence' or 'series'.", extra={"scope": [f"Choose one of {', '.join(SERIES_SCOPES)}."]})
    if scope == "series" and reservation.series_id is None:
        raise InvalidReservation("This reservation is not part of a series.", extra={"scope": ["Not a recurring reservation."]})


def ensure_may_manage(actor: AbstractBaseUser | None, reservation: Reservation) -> None:
    if actor is None or actor.is_staff:
        return
    if actor.pk in (reservation.requested_by_id, reservation.requested_for_id):
        return
    if _panel_room_id(actor) == reservation.room_id:
        return  # the tablet at the room's door acts on that room's meetings (book now, extend, end early)
    raise NotPermitted("You can only change your own reservations.")


def _panel_room_id(actor: AbstractBaseUser) -> int | None:
    """The room whose panel ``actor`` is the identity of (workplace.RoomPanel.user), else None."""
    try:
        return actor.room_panel.room_id
    except ObjectDoesNotExist:
        return None


def require_aware(errors: dict[str, list[str]], field: str, value: Any, example: str) -> None:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        errors.setdefault(field, []).append(f"Give a date-time with a time-zone offset, e.g. {example}.")


def clean_attendees(attendees: Iterable[Mapping[str, Any]], errors: dict[str, list[str]]) -> list[dict]:
    cleaned: list[dict] = []
    seen: set[str] = set()
    for index, raw in enumerate(attendees):
        email = str(raw.get("email", "")).strip().lower()
        name = str(raw.get("name", "") or "").strip()
        kind = raw.get("type") or Attendee.Type.REQUIRED
        response = raw.get("response") or Attendee.Response.NONE
        key = f"attendees[{index}]"
        try:
            validate_email(email)
        except ValidationError:
            errors.setdefault(key, []).append(f"{email or 'An empty address'} is not a valid email address.")
            continue
        if len(name) > ATTENDEE_NAME_MAX_LENGTH:
            errors.setdefault(key, []).append(f"Names are limited to {ATTENDEE_NAME_MAX_LENGTH} characters.")
        if kind not in Attendee.Type.values:
            errors.setdefault(key, []).append(f"Attendee type must be one of {', '.join(Attendee.Type.values)}.")
        if response not in Attendee.Response.values:
            response = Attendee.Response.UNKNOWN
        if email in seen:
            continue  # the same person twice is one attendee
        seen.add(email)
        cleaned.append({"email": email, "name": name, "type": kind, "response": response})
    return cleaned


def validate(
    *,
    room: Room,
    arrangement: Arrangement | None,
    start: Any,
    end: Any,
    subject: str,
    body: str,
    attendees: list[dict],
    requested_for: AbstractBaseUser,
    errors: dict[str, list[str]],
    strict_time: bool,
    check_start_in_past: bool = True,
) -> None:
    """Point 6 of issue 2: every rule a reservation's values must meet.

    ``strict_time`` is off for Exchange inbound sync (the meeting exists already:
    past meetings, long ones and big ones are recorded as they are)."""
    require_aware(errors, "start", start, "2030-05-04T09:00:00+02:00")
    require_aware(errors, "end", end, "2030-05-04T10:00:00+02:00")
    if not room.reservable:
        errors.setdefault("room", []).append(f"{room.name} can't be reserved.")
    if arrangement is not None and arrangement.room_id != room.pk:
        errors.setdefault("arrangement", []).append(f"This arrangement belongs to another room than {room.name}.")
    if not subject or not subject.strip():
        errors.setdefault("subject", []).append("Give the reservation a subject.")
    elif len(subject) > SUBJECT_MAX_LENGTH:
        errors.setdefault("subject", []).append(f"The subject is limited to {SUBJECT_MAX_LENGTH} characters.")
    if len(body) > BODY_MAX_LENGTH:
        errors.setdefault("body", []).append(f"The description is limited to {BODY_MAX_LENGTH} characters.")
    if not requested_for.is_active:
        errors.setdefault("requested_for", []).append("This person's account is disabled.")
    if "start" in errors or "end" in errors:
        return
    if end <= start:
        errors.setdefault("end", []).append("The end must be after the start.")
        return
    if not strict_time:
        return
    minutes = (end - start).total_seconds() / 60
    if minutes < settings.RESERVATION_MIN_DURATION_MINUTES:
        errors.setdefault("end", []).append(f"A reservation lasts at least {settings.RESERVATION_MIN_DURATION_MINUTES} minutes.")
    if minutes > settings.RESERVATION_MAX_DURATION_MINUTES:
        errors.setdefault("end", []).append(f"A reservation lasts at most {settings.RESERVATION_MAX_DURATION_MINUTES // 60} hours.")
    now = clock.now()
    if check_start_in_past and start < now - dt.timedelta(minutes=1):
        errors.setdefault("start", []).append("You can't book in the past.")
    elif end <= now:
        errors.setdefault("end", []).append("You can't book in the past.")
    if start > now + dt.timedelta(days=settings.RESERVATION_BOOKING_HORIZON_DAYS):
        errors.setdefault("start", []).append(f"Reservations can be made at most {settings.RESERVATION_BOOKING_HORIZON_DAYS} days ahead.")
    seats = arrangement.seats if arrangement is not None else room.capacity
    people = {a["email"] for a in attendees if a["type"] != Attendee.Type.RESOURCE}
    people.add((requested_for.email or f"user:{requested_for.pk}").lower())
    if len(people) > seats:
        errors.setdefault("attendees", []).append(f"{len(people)} people (attendees and the person it is for) don't fit in {seats} seats.")
