"""What a room panel shows (reads only): the room's state now (free / busy / soon busy), the
meeting happening now and the next one, the day's timeline, and which buttons the panel
offers now with why not — asked of the same rules the services enforce
(``rules.ui_capabilities`` with source ``room_panel``), so a refused action is explained on
the panel before anyone taps it. A subject is shown only when the room allows it
(``Room.show_subjects``, the same setting as the portal's calendars); otherwise a busy slot reads "Booked".

Queries: the day's reservations (one), the next one after the day when none is left today
(one), and the rules' look-ups for the meeting happening now (mode, provider: cached)."""

import datetime as dt

from django.conf import settings
from django.utils import formats

from exchange_auth import properties
from reservations import rules
from reservations.checkin_window import CheckInRules
from reservations.models import ACTIVE_STATES, Origin, Reservation
from reservations.services import clock
from reservations.services.panel import (
    BOOK_NOW_MINUTES,
    EXTEND_MINUTES,
    book_now_end,
    end_early_end,
    extend_end,
)
from workplace.models import RoomPanel

# Within this many minutes of the next meeting a free room shows "soon busy" (amber).
SOON_MINUTES = 10
PANEL_SOURCE = "room_panel"


def _hm(moment: dt.datetime, tz) -> str:
    return formats.time_format(moment.astimezone(tz), "H:i")


def _meeting(row: Reservation, *, tz, shows_subjects: bool) -> dict:
    return {
        "checked_in": row.checked_in_at is not None,
        "id": row.pk,
        "start": row.start.isoformat(), "end": row.end.isoformat(),
        "start_label": _hm(row.start, tz), "end_label": _hm(row.end, tz),
        "title": row.subject if shows_subjects else "Booked",
        "from_outlook": row.origin == Origin.EXCHANGE,
        "state": row.state,
    }


def panel_state(panel: RoomPanel, *, now: dt.datetime | None = None) -> dict:
    """Everything the panel draws, as JSON-ready values."""
    room = panel.room
    tz = room.building.tzinfo
    now = now or clock.now()
    local = now.astimezone(tz)
    day_start = dt.datetime.combine(local.date(), dt.time(0), tzinfo=tz)
    day_end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    rows = list(
        Reservation.objects.filter(room_id=room.pk, state__in=ACTIVE_STATES, start__lt=day_end, end__gt=day_start)
        .select_related("room__building", "requested_for__profile", "requested_by")
        .order_by("start", "id")
    )
    current = next((r for r in rows if r.start <= now < r.end), None)
    upcoming = next((r for r in rows if r.start > now), None)
    if upcoming is None:
        upcoming = (
            Reservation.objects.filter(room_id=room.pk, state__in=ACTIVE_STATES, start__gte=day_end)
            .order_by("start", "id").first()
        )
    shows = room.show_subjects

    def meeting(row):
        return None if row is None else _meeting(row, tz=tz, shows_subjects=shows)

    if current is not None:
        status, status_label = "busy", f"Busy until {_hm(current.end, tz)}"
    elif upcoming is not None and upcoming.start - now <= dt.timedelta(minutes=SOON_MINUTES):
        status, status_label = "soon", f"Free until {_hm(upcoming.start, tz)}"
    elif upcoming is not None and upcoming.start < day_end:
        status, status_label = "free", f"Free until {_hm(upcoming.start, tz)}"
    else:
        status, status_label = "free", "Free for the rest of the day"

    first_hour = min([7] + [max(r.start, day_start).astimezone(tz).hour for r in rows])
    last_hour = max([19] + [min(r.end, day_end).astimezone(tz).hour + 1 for r in rows])
    return {
        "room": {"id": room.pk, "name": room.name, "building": room.building.name, "capacity": room.capacity},
        "panel": panel.name,
        "now": now.isoformat(), "clock": _hm(now, tz),
        "date_label": formats.date_format(local, "l j F"),
        "status": status, "status_label": status_label,
        "current": meeting(current),
        "next": meeting(upcoming),
        "next_is_today": upcoming is not None and upcoming.start < day_end,
        "timeline": {
            "start": (day_start + dt.timedelta(hours=first_hour)).isoformat(),
            "end": (day_start + dt.timedelta(hours=min(last_hour, 24))).isoformat(),
            "first_hour": first_hour, "last_hour": min(last_hour, 24),
            "now": now.isoformat(),
            "meetings": [meeting(r) for r in rows],
        },
        "actions": {**_actions(panel, current, upcoming, now=now, tz=tz), **_check_in(current, upcoming, now=now, tz=tz)},
    }


def _check_in(current: Reservation | None, upcoming: Reservation | None, *, now, tz) -> dict:
    """The check-in button: for the meeting now, or the next one once its window has opened,
    in a room that requires check-in (``reservations.checkin_window``; the service decides)."""
    out = {"check_in": None, "check_in_reason": ""}
    rules_now = CheckInRules.now()
    for row in (current, upcoming):
        if row is None or row.checked_in_at is not None or not rules_now.required(row.room):
            continue
        opens, closes = rules_now.window(row)
        closes = min(closes, row.end)
        if not opens <= now < closes:
            continue
        if not properties.get(properties.CHECKIN_ANYONE_AT_PANEL):
            out["check_in_reason"] = "Check in from the portal or with the QR code on the door."
        else:
            out["check_in"] = {"reservation": row.pk, "until": _hm(closes, tz), "start": _hm(row.start, tz)}
        break
    return out


def _actions(panel: RoomPanel, current: Reservation | None, upcoming: Reservation | None, *, now, tz) -> dict:
    minimum = dt.timedelta(minutes=settings.RESERVATION_MIN_DURATION_MINUTES)
    actions: dict = {"book_now": [], "book_now_reason": "", "extend": [], "extend_reason": "", "end_early": False,
                     "end_early_reason": "", "end_early_note": ""}
    if current is None:
        start = now.replace(second=0, microsecond=0)
        ends = []
        for minutes in BOOK_NOW_MINUTES:
            end = book_now_end(panel, minutes, now) if upcoming is not None else start + dt.timedelta(minutes=minutes)
            if end - start >= minimum and end not in [e for _, e in ends]:
                ends.append((minutes, end))
        actions["book_now"] = [{"minutes": m, "until": _hm(e, tz)} for m, e in ends]
        if not ends and upcoming is not None:
            actions["book_now_reason"] = f"The next meeting starts at {_hm(upcoming.start, tz)}."
        return actions
    caps = rules.ui_capabilities(panel.user, reservation=current, source=PANEL_SOURCE)
    if not caps["can_edit"]:
        actions["extend_reason"] = caps["edit_reason"]
    else:
        ends = []
        for minutes in EXTEND_MINUTES:
            end = extend_end(panel, current, minutes)
            if end > current.end and end not in [e for _, e in ends]:
                ends.append((minutes, end))
        actions["extend"] = [{"minutes": m, "until": _hm(e, tz)} for m, e in ends]
        if not ends:
            actions["extend_reason"] = f"The next meeting starts at {_hm(current.end, tz)}."
    if current.origin == Origin.EXCHANGE:
        actions["end_early"] = caps["can_cancel"]
        actions["end_early_reason"] = caps["cancel_reason"]
        actions["end_early_note"] = ("Made in Outlook, so its time can only be changed there: ending it early "
                                     "has the room decline it (the organizer is told).")
    elif not caps["can_edit"]:
        actions["end_early_reason"] = caps["edit_reason"]
    elif end_early_end(current, now) >= current.end:
        actions["end_early_reason"] = "It ends within the minute."
    else:
        actions["end_early"] = True
    return actions
