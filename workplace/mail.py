"""Every email the product sends goes through ``SafeEmailBackend`` (settings.EMAIL_BACKEND),
which hands it to the real transport (``EMAIL_DELIVERY_BACKEND``: SMTP, console ...).

1. Headers are made safe first: a subject (or an address) with a line break or another
   control character — a reservation's subject from the API, the portal or Outlook —
   becomes one line. Django would otherwise refuse the whole message (``BadHeaderError``)
   and the person would never hear that their room was declined or cancelled.
2. A message the transport can't send now (SMTP down, a timeout) is not dropped: it is
   queued for ``workplace.tasks.deliver_email``, which retries with backoff and logs an
   error naming the recipients and subject if it finally gives up.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection, mail_admins, send_mail
from django.core.mail.backends.base import BaseEmailBackend

from workplace.text import one_line

logger = logging.getLogger("workplace.mail")

def make_safe(message) -> None:
    """Step 1 of the module doc, in place."""
    message.subject = one_line(message.subject)
    for name in ("to", "cc", "bcc", "reply_to"):
        setattr(message, name, [one_line(address) for address in getattr(message, name) or []])
    message.from_email = one_line(message.from_email) if message.from_email else message.from_email
    message.extra_headers = {one_line(k): one_line(v) for k, v in (message.extra_headers or {}).items()}


def as_data(message) -> dict:
    """What ``deliver_email`` needs to build the message again (JSON for the broker)."""
    return {
        "subject": message.subject, "body": message.body, "from_email": message.from_email, "to": list(message.to),
        "cc": list(message.cc), "bcc": list(message.bcc), "reply_to": list(message.reply_to),
        "headers": dict(message.extra_headers or {}),
    }


def delivery_connection(**kwargs):
    return get_connection(settings.EMAIL_DELIVERY_BACKEND, **kwargs)


class SafeEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            make_safe(message)
            try:
                sent += delivery_connection(fail_silently=False).send_messages([message]) or 0
            except Exception as exc:
                logger.warning("email %r to %s not sent now (%s); queued for a retry", message.subject, message.to, exc)
                _queue_retry(message)
                sent += 1  # accepted: it will be delivered or loudly given up on
        return sent


def _queue_retry(message) -> None:
    from workplace import tasks  # the task module imports this one

    try:
        tasks.deliver_email.apply_async(args=[as_data(message)], countdown=tasks.RETRY_SECONDS)
    except Exception:
        logger.exception("email %r to %s could not be queued for a retry: it is lost", message.subject, message.to)


def tell_admins(subject: str, body: str) -> None:
    """An alert for the people who run the product: settings.ADMINS (``mail_admins``) and
    every active staff user with an address. What the alert is about stands whatever the
    mail server does: a failure is logged. (exchange_auth's expiry warnings keep a copy of
    these lines: the layers don't let exchange_auth import workplace.)"""
    try:
        mail_admins(subject, body, fail_silently=True)
        staff = sorted(set(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)))
        if staff:
            send_mail(f"[Workplace] {subject}", body, settings.DEFAULT_FROM_EMAIL, staff, fail_silently=True)
    except Exception:
        logger.exception("could not alert the admins about: %s", subject)
