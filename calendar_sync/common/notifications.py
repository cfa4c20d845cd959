"""Emails to employees about what Exchange decided (Django's email backend)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger("calendar_sync")


def _tell(reservation, *, subject: str, what: str, reason: str, advice: str = "") -> None:
    """Mail the requested-for employee and the requester (if someone else). The decision stands
    whatever the mail server does; a failure is logged."""
    recipients = sorted({u.email for u in (reservation.requested_for, reservation.requested_by) if u is not None and u.email})
    if not recipients:
        return
    room = reservation.room
    local = reservation.start.astimezone(room.building.tzinfo)
    body = f"Your reservation of {room.name} on {local:%A %d %B %Y at %H:%M} ({room.building.timezone}) {what}.\n\nReason: {reason}\n"
    if advice:
        body += f"\n{advice}"
    try:
        send_mail(f"{subject}: {reservation.subject}", body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        logger.exception("email %r for reservation %s failed", subject, reservation.pk)


def notify_rejected(reservation, reason: str) -> None:
    """The room said no (or never answered)."""
    _tell(reservation, subject="Room not available", what="was rejected", reason=reason,
          advice="Please pick another room or time in the portal.")


def notify_cancelled(reservation, reason: str) -> None:
    """The meeting went in Exchange (cancelled in Outlook, withdrawn by the room)."""
    _tell(reservation, subject="Reservation cancelled", what="was cancelled", reason=reason)
