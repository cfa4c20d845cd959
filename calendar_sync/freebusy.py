"""Attendees' free/busy (getSchedule through the organizer account) and their answers to
the product's meetings (SPEC §4, last paragraph).

- ``attendee_availability``: {email: free | tentative | busy | oof | workingElsewhere |
  unknown}. "unknown" for everyone when the provider has no organizer account or Graph
  can't answer, and for addresses Exchange doesn't know.
- ``attendee_responses_refresh``: reads the organizer's copy of a meeting the product
  created and stores each attendee's response (logged as a ``retrieve_attendees``
  sync event). Meetings created in Outlook keep "unknown": the product is not their
  organizer and doesn't read other people's mailboxes for it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from exchange_auth.graph import GraphError, users_path
from exchange_auth.providers import active_providers, provider_for_room
from reservations import services
from reservations.models import Attendee, Origin, Reservation, SyncEvent

from .common.clients import mailbox_client, system_client

logger = logging.getLogger("calendar_sync.freebusy")

UNKNOWN = "unknown"
# availabilityView digits (Graph): 0 free, 1 tentative, 2 busy, 3 oof, 4 workingElsewhere.
_DIGITS = {"0": "free", "1": "tentative", "2": "busy", "3": "oof", "4": "workingElsewhere"}
_RANK = {"free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}


def _iso(value: dt.datetime) -> dict:
    return {"dateTime": value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def attendee_availability(*, start: dt.datetime, end: dt.datetime, emails: list[str], provider=None) -> dict[str, str]:
    """Each person's availability in the window. With ``provider`` its tenant is asked; else the
    default provider's, then each other active provider's for the people still unknown (a
    company with two tenants: a person is in one of them) — one getSchedule per tenant asked."""
    emails = [e.lower() for e in emails if e]
    result = dict.fromkeys(emails, UNKNOWN)
    for tenant in [provider] if provider is not None else active_providers():
        unknown = [e for e in emails if result[e] == UNKNOWN]
        if not unknown:
            break
        result.update(_schedule(tenant, start=start, end=end, emails=unknown))
    return result


def _schedule(provider, *, start: dt.datetime, end: dt.datetime, emails: list[str]) -> dict[str, str]:
    """One getSchedule through ``provider``'s organizer account: {email: availability} for those it answered."""
    result: dict[str, str] = {}
    organizer = (getattr(provider, "organizer_account", "") or "").lower() if provider else ""
    if not emails or not organizer:
        return result
    interval = max(5, min(1440, int((end - start).total_seconds() // 60) or 5))
    try:
        body = system_client(provider).post(
            users_path(organizer, "calendar", "getSchedule"),
            json={"schedules": emails[:100], "startTime": _iso(start), "endTime": _iso(end), "availabilityViewInterval": interval},
        )
    except GraphError as exc:
        logger.warning("getSchedule through %s failed: %s", organizer, exc)
        return result
    for info in (body or {}).get("value", []):
        address = (info.get("scheduleId") or "").lower()
        if address not in emails or info.get("error"):
            continue
        view = info.get("availabilityView") or ""
        states = [_DIGITS.get(d, UNKNOWN) for d in view]
        known = [s for s in states if s != UNKNOWN]
        result[address] = max(known, key=_RANK.__getitem__) if known else UNKNOWN
    return result


def attendee_responses_refresh(*, reservation: Reservation) -> dict[str, str]:
    """{email: response} after reading the organizer's meeting (unknown for Outlook meetings)."""
    attendees = list(reservation.attendees.all())
    if reservation.origin == Origin.EXCHANGE or not (reservation.event_id and reservation.mailbox):
        return {a.email: (a.response if reservation.origin == Origin.APP else Attendee.Response.UNKNOWN) for a in attendees}
    provider = provider_for_room(reservation.room)
    if provider is None:
        return {a.email: a.response for a in attendees}
    log = SyncEvent.objects.create(type=SyncEvent.Type.RETRIEVE_ATTENDEES, reservation=reservation, state=SyncEvent.State.PROCESSING,
                                   attempts=1, details={"mailbox": reservation.mailbox})
    try:
        meeting = mailbox_client(provider, reservation.mailbox).get(users_path(reservation.mailbox, "events", reservation.event_id), params={"$select": "id,attendees"})
    except GraphError as exc:
        SyncEvent.objects.filter(pk=log.pk).update(state=SyncEvent.State.ERROR, error=str(exc)[:2000], response=exc.as_dict())
        return {a.email: a.response for a in attendees}
    responses = {
        (a.get("emailAddress") or {}).get("address", "").lower(): ((a.get("status") or {}).get("response") or "none")
        for a in (meeting or {}).get("attendees", [])
    }
    mine = {a.email.lower() for a in attendees}
    services.reservation_set_attendee_responses(reservation=reservation, responses={k: v for k, v in responses.items() if k in mine})
    SyncEvent.objects.filter(pk=log.pk).update(state=SyncEvent.State.PROCESSED, response={"attendees": responses}, processed_at=timezone.now())
    return {a.email: a.response for a in reservation.attendees.all()}
