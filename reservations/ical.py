"""The iCalendar text of a feed (RFC 5545, with the icalendar package).

Times are UTC (``...Z``), so no VTIMEZONE is needed. Each reservation is one VEVENT
(an occurrence of a series too: the feed lists what is booked, not the pattern):

* UID ``reservation-<id>@<host of PUBLIC_BASE_URL>``: stable for the reservation's whole
  life. The Graph iCalUId is not used: it changes when a move to another room replaces
  the Outlook meeting, and calendar apps would then see a new event.
* DTSTAMP and LAST-MODIFIED are the row's ``updated_at`` (no METHOD, so RFC 5545 makes
  DTSTAMP the last change), SEQUENCE the row's ``revision``: one more at every change a feed
  shows (time, room, subject, state, description; a database trigger counts them, migration
  0012), so two changes within a second give two SEQUENCE values; it only grows, and the
  same rows always give the same bytes (the ETag is their hash).
* STATUS: confirmed → CONFIRMED; awaiting confirmation or conflicted → TENTATIVE;
  cancelled or rejected → CANCELLED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.conf import settings
from icalendar import Calendar, Event

from reservations.models import CalendarFeed, Reservation, State

PRODID = "-//Workplace reservations//Calendar feed 1.0//EN"
ROOM_PLACEHOLDER_SUBJECT = "Reserved"
# How often calendar apps are asked to poll (RFC 7986 REFRESH-INTERVAL, Outlook's X-PUBLISHED-TTL).
REFRESH_INTERVAL = dt.timedelta(minutes=30)

_STATUS = {
    State.CONFIRMED: "CONFIRMED",
    State.AWAITING_CONFIRMATION: "TENTATIVE",
    State.CONFLICTED: "TENTATIVE",
    State.CANCELLED: "CANCELLED",
    State.REJECTED: "CANCELLED",
    State.RELEASED: "CANCELLED",
}
_STATE_WORDS = {
    State.CONFIRMED: "Confirmed",
    State.AWAITING_CONFIRMATION: "Awaiting confirmation from the room",
    State.CONFLICTED: "Conflicted (the meeting is missing from the room's calendar)",
    State.CANCELLED: "Cancelled",
    State.REJECTED: "Rejected",
    State.RELEASED: "Released: nobody checked in",
}


def uid_host() -> str:
    return urlsplit(settings.PUBLIC_BASE_URL).hostname or "workplace.invalid"


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def location(reservation: Reservation) -> str:
    room = reservation.room
    parts = [room.name, room.floor.name if room.floor_id else "", room.building.name]
    return ", ".join(p for p in parts if p)


def calendar_name(feed: CalendarFeed) -> str:
    if feed.user_id:
        return f"Room reservations – {_person(feed.user)}"
    return f"{feed.room.name} ({feed.room.building.name})"


def _description(reservation: Reservation, *, detail_url: str) -> str:
    lines = [f"Status: {_STATE_WORDS.get(reservation.state, reservation.state)}"]
    if reservation.state_reason and reservation.state != State.CONFIRMED:
        lines.append(f"Reason: {reservation.state_reason}")
    lines.append(f"Room: {location(reservation)} (times in {reservation.room.building.timezone})")
    if reservation.requested_for_id != reservation.requested_by_id:
        lines.append(f"For {_person(reservation.requested_for)}, booked by {_person(reservation.requested_by)}")
    people = [a.email for a in reservation.attendees.all() if a.type != "resource"]
    if people:
        lines.append("Attendees: " + ", ".join(people))
    if reservation.online_meeting_url:
        lines.append(f"Join the Teams meeting: {reservation.online_meeting_url}")
    if reservation.series_id:
        lines.append("Part of a recurring reservation")
    if reservation.origin == "exchange":
        lines.append("Created in Outlook")
    if reservation.body:
        lines += ["", reservation.body]
    if detail_url:
        lines += ["", detail_url]
    return "\n".join(lines)


def feed_ical(feed: CalendarFeed, reservations: Iterable[Reservation], *, detail_url: Callable[[Reservation], str]) -> bytes:
    """The feed as bytes. ``detail_url(reservation)`` is the portal link put on the user's
    own events (room feeds carry no link and, by default, no subject)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    name = calendar_name(feed)
    cal.add("x-wr-calname", name)
    cal.add("name", name)
    cal.add("x-wr-caldesc", "Room reservations (read-only). Change them in the Workplace portal.")
    cal.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH_INTERVAL)
    host = uid_host()
    # A room's feed names meetings only where the instance allows it for feeds and the room's
    # privacy setting (Room.show_subjects, as in the portal and on its panel) does too.
    show_subjects = bool(feed.user_id) or (settings.CALENDAR_FEED_ROOM_SUBJECTS and feed.room.show_subjects)
    for r in reservations:
        event = Event()
        event.add("uid", f"reservation-{r.pk}@{host}")
        changed = _utc(r.updated_at)
        event.add("dtstamp", changed)
        event.add("last-modified", changed)
        event.add("created", _utc(r.created_at))
        event.add("sequence", r.revision)
        event.add("dtstart", _utc(r.start))
        event.add("dtend", _utc(r.end))
        event.add("summary", r.subject if show_subjects else ROOM_PLACEHOLDER_SUBJECT)
        event.add("location", location(r))
        event.add("status", _STATUS.get(r.state, "TENTATIVE"))
        event.add("transp", "TRANSPARENT" if _STATUS.get(r.state) == "CANCELLED" else "OPAQUE")
        if feed.user_id:
            url = detail_url(r)
            event.add("description", _description(r, detail_url=url))
            if url:
                event.add("url", url)
            if r.online_meeting_url:  # Outlook's own property for the Teams link, besides the description's line
                event.add("x-microsoft-skypeteamsmeetingurl", r.online_meeting_url)
        else:
            event.add("class", "PUBLIC" if show_subjects else "PRIVATE")
        cal.add_component(event)
    return cal.to_ical()
