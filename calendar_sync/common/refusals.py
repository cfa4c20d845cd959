"""A push Exchange refused for good: what the employee reads and what the admins are told.

A permanent refusal (403 from Graph, no credential that can write where the mode table
says, a credential that must be reconnected, a 4xx that retrying won't change) never
leaves a reservation silently awaiting the room's answer: the outbound worker ends it
``rejected`` with ``employee_reason`` as its reason (shown in the portal and as
``state_reason`` in the API, and mailed), and ``alert_admins_once`` tells the admins —
once per cause, not once per booking: fifty bookings refused for one missing permission
are one mail.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache

from exchange_auth.credentials import CredentialError, ReconnectRequired
from exchange_auth.graph import AccessDenied, GraphError
from workplace.mail import tell_admins

logger = logging.getLogger("calendar_sync")

ALERT_DEDUPE_SECONDS = 24 * 3600  # the same cause mails the admins again a day later if it persists

_TOLD = "Your administrators have been told. Please book again once they have fixed it, or choose a room without Outlook sync."


def employee_reason(error: BaseException, *, room_name: str) -> str:
    """One sentence (two at most) an employee understands: what didn't happen, and what now."""
    if isinstance(error, ReconnectRequired):
        return f"{room_name} could not be booked in Outlook: {error}"
    if isinstance(error, AccessDenied) or getattr(error, "cause", "").startswith("no-credential"):
        return f"{room_name} could not be booked in Outlook: the booking system is not allowed to write to the calendar it needs. {_TOLD}"
    if isinstance(error, CredentialError):
        return f"{room_name} could not be booked in Outlook: the booking system's connection to Outlook needs an administrator's attention. {_TOLD}"
    if isinstance(error, GraphError):
        return f"{room_name} could not be booked in Outlook: Outlook refused the booking ({error.status} {error.code}). {_TOLD}"
    return f"{room_name} could not be booked in Outlook. {_TOLD}"


def cause_of(error: BaseException, *, provider_id: int | None, mailbox_kind: str) -> str:
    """What the admins fix, as a key: the same refusal for many bookings is one cause.
    ``mailbox_kind``: "user" (people's calendars) or "other" (rooms, the organizer account)."""
    if isinstance(error, GraphError):
        what = f"graph:{error.status}:{error.code}"
    else:
        what = f"{type(error).__name__}:{getattr(error, 'cause', '') or str(error)}"
    return f"{provider_id or '-'}:{mailbox_kind}:{what}"


def needs_admins(error: BaseException) -> bool:
    """An employee's own expired Outlook connection is theirs to fix (they are told how)."""
    return not isinstance(error, ReconnectRequired)


def alert_admins_once(cause: str, subject: str, message: str) -> bool:
    """Mail settings.ADMINS (mail_admins) and every active staff user, once per ``cause`` a
    day (the first worker to add the cache key sends it). True when this call sent it."""
    key = "calendar_sync:alert:" + hashlib.sha256(cause.encode()).hexdigest()[:32]
    if not cache.add(key, 1, timeout=ALERT_DEDUPE_SECONDS):
        return False
    tell_admins(subject, f"{message}\n\nFurther bookings refused for the same cause are not mailed again today. See Calendar sync → Sync events in the admin.")
    return True


def admin_advice(error: BaseException, *, mailbox: str) -> str:
    """How to fix it, for the admins' mail."""
    if isinstance(error, AccessDenied) or getattr(error, "cause", "").startswith("no-credential"):
        return (
            f"Graph refused writing to {mailbox}. The delegated user can write only to its own calendar and the room mailboxes "
            "it is a delegate of; people's calendars need the app-only credential (the provider's client secret, with the "
            "Calendars.ReadWrite application permission, and the mailbox inside the application access policy's scope), "
            "or an organizer account (then the product organizes through it and invites the employee)."
        )
    if isinstance(error, CredentialError):
        return "The provider's credential must be fixed or connected again (Calendar providers in the admin)."
    return "Retrying won't change Graph's answer; the sync event shows the request and the response."
