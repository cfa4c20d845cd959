"""Change-notification subscriptions on the synced room mailboxes (SPEC §4 "Inbound").

Services (keyword-only, STYLE 1):
- ``subscription_ensure_all``: every synced room mailbox has a live subscription
  (created when missing, renewed when it expires soon); subscriptions of rooms no
  longer synced are deleted. Run on provider activation, by beat, and by
  ``manage.py sync_subscriptions``.
- ``subscription_create`` / ``subscription_renew`` / ``subscription_reauthorize``.
- ``lifecycle_handle``: reauthorizationRequired → reauthorize and renew;
  missed → full resync of that mailbox; subscriptionRemoved → recreate and resync.
A renewal that fails is recorded on the subscription and the admins are told.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import mail_admins, send_mail
from django.urls import reverse
from django.utils import timezone

from exchange_auth.providers import active_provider
from workplace.models import Room

from .clients import system_client
from .graph import GraphError, NotFound
from .models import Subscription, WebhookNotification, hash_client_state

logger = logging.getLogger("calendar_sync.subscriptions")

CHANGE_TYPES = "created,updated,deleted"


def lifetime_minutes() -> int:
    """Graph allows just under 3 days for Outlook resources with lifecycle URLs (4230 min)."""
    return int(getattr(settings, "CALENDAR_SYNC_SUBSCRIPTION_MINUTES", 4200))


def renew_margin() -> dt.timedelta:
    """Renew a subscription when it expires within this (beat runs every 15 minutes)."""
    return dt.timedelta(minutes=int(getattr(settings, "CALENDAR_SYNC_SUBSCRIPTION_RENEW_MINUTES", 24 * 60)))


def notification_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook")


def lifecycle_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook-lifecycle")


def synced_mailboxes() -> list[str]:
    return sorted({m.lower() for m in Room.objects.filter(sync_enabled=True).exclude(mailbox="").values_list("mailbox", flat=True)})


def _expiry() -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=lifetime_minutes())


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- services --------------------------------------------------------------------------------


def subscription_create(*, provider, mailbox: str) -> Subscription:
    """POST /subscriptions for ``mailbox``'s events with a fresh secret clientState.
    Graph validates our endpoint (handshake) before it answers. Raises GraphError."""
    mailbox = mailbox.lower()
    secret = secrets.token_urlsafe(48)[:96]
    resource = f"users/{mailbox}/events"
    body = {
        "changeType": CHANGE_TYPES, "notificationUrl": notification_url(), "lifecycleNotificationUrl": lifecycle_url(),
        "resource": resource, "expirationDateTime": _iso(_expiry()), "clientState": secret,
        "latestSupportedTlsVersion": "v1_2",
    }
    created = system_client(provider).post("/subscriptions", json=body)
    # The previous live subscription of this mailbox (if any) is replaced.
    Subscription.objects.filter(provider=provider, mailbox=mailbox, status=Subscription.Status.ACTIVE).update(status=Subscription.Status.REMOVED)
    sub = Subscription.objects.create(
        provider=provider, mailbox=mailbox, graph_id=created["id"], resource=resource, client_state_hash=hash_client_state(secret),
        expires_at=_parse(created.get("expirationDateTime")), renewed_at=timezone.now(),
    )
    logger.info("subscription %s created for %s", sub.graph_id, mailbox)
    return sub


def subscription_renew(*, subscription: Subscription) -> Subscription:
    """PATCH the expiry. A subscription Graph no longer knows is recreated (and the
    mailbox resynced); any other failure is recorded and the admins alerted."""
    client = system_client(subscription.provider)
    try:
        updated = client.patch(f"/subscriptions/{subscription.graph_id}", json={"expirationDateTime": _iso(_expiry())})
    except NotFound:
        return _recreate(subscription, why="Graph no longer knows the subscription")
    except GraphError as exc:
        _failed(subscription, f"Renewal failed: {exc}")
        raise
    subscription.expires_at = _parse(updated.get("expirationDateTime")) or subscription.expires_at
    subscription.renewed_at = timezone.now()
    subscription.last_error = ""
    subscription.status = Subscription.Status.ACTIVE
    subscription.save(update_fields=["expires_at", "renewed_at", "last_error", "status"])
    return subscription


def subscription_reauthorize(*, subscription: Subscription) -> Subscription:
    """reauthorizationRequired: POST .../reauthorize, then extend the expiry."""
    client = system_client(subscription.provider)
    try:
        client.post(f"/subscriptions/{subscription.graph_id}/reauthorize")
    except NotFound:
        return _recreate(subscription, why="reauthorization found no subscription")
    except GraphError as exc:
        _failed(subscription, f"Reauthorization failed: {exc}")
        raise
    return subscription_renew(subscription=subscription)


def subscription_delete(*, subscription: Subscription) -> None:
    try:
        system_client(subscription.provider).delete(f"/subscriptions/{subscription.graph_id}")
    except NotFound:
        pass
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED)


def subscription_ensure_all(*, provider=None) -> dict:
    """Create what is missing, renew what expires soon, drop what is no longer synced."""
    provider = provider or active_provider()
    counts = {"created": 0, "renewed": 0, "deleted": 0, "failed": 0}
    if provider is None or not provider.active:
        return counts
    wanted = set(synced_mailboxes())
    live = {s.mailbox: s for s in Subscription.objects.select_related("provider").filter(provider=provider, status=Subscription.Status.ACTIVE)}
    soon = timezone.now() + renew_margin()
    for mailbox in sorted(wanted):
        sub = live.get(mailbox)
        try:
            if sub is None or sub.expires_at is None or sub.expires_at <= timezone.now():
                subscription_create(provider=provider, mailbox=mailbox)
                counts["created"] += 1
                if sub is None:
                    _resync(mailbox)  # anything booked before we listened
            elif sub.expires_at <= soon:
                subscription_renew(subscription=sub)
                counts["renewed"] += 1
        except GraphError as exc:
            counts["failed"] += 1
            if sub is None:
                _alert(f"Could not subscribe to {mailbox}", f"Creating the change-notification subscription failed: {exc}")
            logger.warning("subscription for %s: %s", mailbox, exc)
    for mailbox, sub in live.items():
        if mailbox not in wanted:
            try:
                subscription_delete(subscription=sub)
                counts["deleted"] += 1
            except GraphError as exc:
                logger.warning("deleting subscription of %s: %s", mailbox, exc)
    return counts


def lifecycle_handle(*, notification: WebhookNotification) -> str:
    """Act on one lifecycle notification (idempotent enough to run twice)."""
    sub = notification.subscription
    event = notification.lifecycle_event
    outcome = "ignored"
    if sub is None:
        outcome = "no subscription"
    elif event == "reauthorizationRequired":
        if sub.status == Subscription.Status.ACTIVE:
            subscription_reauthorize(subscription=sub)
        outcome = "reauthorized"
    elif event == "missed":
        _resync(sub.mailbox)
        outcome = "resynced"
    elif event == "subscriptionRemoved":
        if sub.status == Subscription.Status.ACTIVE:
            _recreate(sub, why="Graph removed the subscription")
        outcome = "recreated"
    if sub is not None:
        Subscription.objects.filter(pk=sub.pk).update(last_lifecycle_event=event)
    WebhookNotification.objects.filter(pk=notification.pk).update(
        state=WebhookNotification.State.PROCESSED, processed_at=timezone.now(), note=outcome,
    )
    return outcome


# --- helpers -----------------------------------------------------------------------------------


def _recreate(subscription: Subscription, *, why: str) -> Subscription:
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED, last_error=why)
    try:
        fresh = subscription_create(provider=subscription.provider, mailbox=subscription.mailbox)
    except GraphError as exc:
        _failed(subscription, f"{why}; recreating it failed: {exc}")
        raise
    _resync(subscription.mailbox)  # notifications may have been lost meanwhile
    return fresh


def _resync(mailbox: str) -> None:
    from . import inbound_tasks

    inbound_tasks.request_pull(mailbox, full=True)


def _failed(subscription: Subscription, message: str) -> None:
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(last_error=message[:2000], last_error_at=now, status=Subscription.Status.FAILED)
    subscription.last_error, subscription.last_error_at, subscription.status = message, now, Subscription.Status.FAILED
    logger.error("subscription %s (%s): %s", subscription.graph_id, subscription.mailbox, message)
    _alert(f"Calendar subscription failing for {subscription.mailbox}", message)


def _alert(subject: str, message: str) -> None:
    """Tell the admins: settings.ADMINS through mail_admins, and every active staff user."""
    body = f"{message}\n\nOutlook bookings of this room are not picked up in real time until this is fixed. See Calendar sync → Subscriptions in the admin."
    try:
        mail_admins(subject, body, fail_silently=True)
        staff = sorted(set(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)))
        if staff:
            send_mail(f"[Workplace] {subject}", body, settings.DEFAULT_FROM_EMAIL, staff, fail_silently=True)
    except Exception:
        logger.exception("could not alert the admins about: %s", subject)
