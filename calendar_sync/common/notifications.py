"""Emails to employees about what Exchange decided (Django's email backend)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger("calendar_sync")


def join_link(reservation) -> str:
    """The Teams join link of the reservation (an occurrence shares its series' link)."""
    series = getattr(reservation, "series", None) if reservation.series_id else None
    return reservation.online_meeting_url or (getattr(series, "online_meeting_url", "") if series is not None else "")


def _tell(reservation, *, subject: str, what: str, reason: str = "", advice: str = "") -> None:
    """Mail the requested-for employee and the requester (if someone else). The decision stands
    whatever the mail server does; a failure is logged."""
    recipients = sorted({u.email for u in (reservation.requested_for, reservation.requested_by) if u is not None and u.email})
    if not recipients:
        return
    room = reservation.room
    local = reservation.start.astimezone(room.building.tzinfo)
    end = reservation.end.astimezone(room.building.tzinfo)
    body = f"Your reservation of {room.name} on {local:%A %d %B %Y at %H:%M}–{end:%H:%M} ({room.building.timezone}) {what}.\n"
    if reason:
        body += f"\nReason: {reason}\n"
    link = join_link(reservation)
    if link and reservation.state in ("confirmed", "awaiting_confirmation"):
        body += f"\nJoin the Teams meeting: {link}\n"
    if advice:
        body += f"\n{advice}"
    try:
        send_mail(f"{subject}: {reservation.subject}", body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        logger.exception("email %r for reservation %s failed", subject, reservation.pk)


def notify_confirmed(reservation) -> None:
    """The room accepted a booking or its change: when and where, and the Teams join link of a Teams meeting."""
    _tell(reservation, subject="Reservation confirmed", what="is confirmed",
          advice="Change or cancel it in the portal (My reservations).")


def notify_rejected(reservation, reason: str) -> None:
    """The room said no (or never answered)."""
    _tell(reservation, subject="Room not available", what="was rejected", reason=reason,
          advice="Please pick another room or time in the portal.")


def notify_cancelled(reservation, reason: str) -> None:
    """The meeting went in Exchange (cancelled in Outlook, withdrawn by the room)."""
    _tell(reservation, subject="Reservation cancelled", what="was cancelled", reason=reason)
