"""Emails to employees about what Exchange decided (Django's email backend)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger("calendar_sync")


def notify_rejected(reservation, reason: str) -> None:
    """Tell the requested-for employee (and the requester, if someone else) that the room said no."""
    recipients = sorted({u.email for u in (reservation.requested_for, reservation.requested_by) if u is not None and u.email})
    if not recipients:
        return
    local = reservation.start.astimezone(reservation.room.building.tzinfo)
    subject = f"Room not available: {reservation.subject}"
    body = (
        f"Your reservation of {reservation.room.name} on {local:%A %d %B %Y at %H:%M} ({reservation.room.building.timezone}) "
        f"was rejected.\n\nReason: {reason}\n\n"
        "Please pick another room or time in the portal."
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:  # an SMTP hiccup must not undo the rejection; it's logged
        logger.exception("rejection email for reservation %s failed", reservation.pk)
