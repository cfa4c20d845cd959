"""What the beat pulls again without a notification: mailboxes that can't be subscribed
(their ``polling`` row), and mailboxes whose notifications a lost pull left unanswered."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ..models import Subscription, WebhookNotification


def polled_mailboxes(provider) -> list[str]:
    """Each mailbox of ``provider`` that is polled instead of subscribed."""
    if provider is None or not provider.active:
        return []
    return sorted(set(Subscription.objects.filter(provider=provider, status=Subscription.Status.POLLING).values_list("mailbox", flat=True)))


def _unanswered(kind: str, grace_seconds: float):
    return WebhookNotification.objects.filter(
        kind=kind, state=WebhookNotification.State.RECEIVED, received_at__lte=timezone.now() - timedelta(seconds=grace_seconds),
    )


def unanswered_mailboxes(grace_seconds: float) -> list[str]:
    """Mailboxes with change notifications still unanswered after ``grace_seconds`` (their
    pull was lost with a killed worker)."""
    return sorted(set(_unanswered(WebhookNotification.Kind.CHANGE, grace_seconds).values_list("mailbox", flat=True).distinct()))


def unanswered_lifecycle(grace_seconds: float) -> list[int]:
    """Lifecycle notifications still unhandled after ``grace_seconds``."""
    return list(_unanswered(WebhookNotification.Kind.LIFECYCLE, grace_seconds).values_list("pk", flat=True))
