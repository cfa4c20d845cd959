"""What an employee reads about a failed push: a plain sentence and what happens next,
never Graph's raw answer ("403 ErrorAccessDenied …"), which admins keep in the admin
(sync events, the reservation's sync fields)."""

import re

# (pattern in the stored error, the employee's sentence); the first match wins.
PLAIN_SYNC_ERRORS = [
    (r"\b403\b|ErrorAccessDenied|Forbidden|Authorization_RequestDenied",
     "Outlook refused access to this calendar. Your reservation stays booked here; an admin has been told and it is sent again once access is fixed."),
    (r"\b401\b|InvalidAuthenticationToken|invalid_grant|token",
     "The connection to Outlook needs signing in again. Your reservation stays booked here and is sent once it is back."),
    (r"\b404\b|ErrorItemNotFound|ResourceNotFound|MailboxNotEnabled|ErrorInvalidUser",
     "Outlook doesn't know this calendar or meeting. Your reservation stays booked here; an admin has been told."),
    (r"\b409\b|\b412\b|ErrorIrresolvableConflict|PreconditionFailed",
     "The meeting changed in Outlook at the same moment. It is sent again automatically."),
    (r"\b429\b|\b50[0-9]\b|timed? ?out|Timeout|Connection|unreachable|ServiceNotAvailable|TooManyRequests",
     "Outlook is busy or unreachable right now. It is sent again automatically."),
]
FALLBACK = "Outlook couldn't take this change. It is sent again automatically; an admin can see the details."


def plain_sync_error(raw: str) -> str:
    if not raw:
        return ""
    for pattern, sentence in PLAIN_SYNC_ERRORS:
        if re.search(pattern, raw, flags=re.IGNORECASE):
            return sentence
    return FALLBACK
