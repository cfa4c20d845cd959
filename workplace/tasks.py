"""Email delivery retries (see workplace.mail)."""

import logging

from celery import shared_task
from django.core.mail import EmailMessage

from workplace import mail

logger = logging.getLogger("workplace.mail")

RETRY_SECONDS = 60
MAX_RETRIES = 8  # about 4 hours with the backoff below


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def deliver_email(self, data: dict) -> None:
    """Send one message the transport refused earlier; retry with backoff, then log an error."""
    message = EmailMessage(
        subject=data["subject"], body=data["body"], from_email=data["from_email"], to=data["to"], cc=data["cc"],
        bcc=data["bcc"], reply_to=data["reply_to"], headers=data["headers"],
    )
    mail.make_safe(message)
    try:
        mail.delivery_connection(fail_silently=False).send_messages([message])
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            logger.error("email %r to %s not delivered after %d attempts: %s", message.subject, message.to, MAX_RETRIES + 1, exc)
            return
        raise self.retry(exc=exc, countdown=RETRY_SECONDS * 2**self.request.retries) from exc
