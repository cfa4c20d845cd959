"""Change-notification subscriptions on the mailboxes inbound sync listens to.

Which mailboxes (``subscribed_mailboxes``): every synced room, and the provider's organizer
mailbox whenever the product's meetings live there (Strict mode without room organizers,
someone without a mailbox, live meetings in its calendar). Which credential: Graph lets a
delegated token subscribe only to the signed-in user's own mailbox, so every other one is
subscribed app-only, and renewed or deleted by the credential that created it. A mailbox
that can't be subscribed gets a ``polling`` row (the admins told once) and is pulled every
``CALENDAR_SYNC_POLL_SECONDS``. Nothing here queues a pull: the functions that want one
say so in the ``Pulls`` they are handed, and the task queues them.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from exchange_auth.credentials import CredentialError, app_token
from exchange_auth.graph import AccessDenied, GraphError, NotFound
from exchange_auth.providers import active_providers
from workplace.mail import tell_admins

from .. import conf
from ..common.clients import credential_client
from ..models import Subscription, WebhookNotification, hash_client_state
from .mailboxes import delegated_mailbox, subscribed_mailboxes

logger = logging.getLogger("calendar_sync.subscriptions")

CHANGE_TYPES = "created,updated,deleted"


@dataclass
class Pulls:
    """Mailboxes a subscription change wants pulled (results flow up: the task queues them)."""

    changed: set[str] = field(default_factory=set)  # what changed since the last pull
    full: set[str] = field(default_factory=set)  # a full round: notifications may have been lost

    def pull(self, mailbox: str) -> None:
        self.changed.add(mailbox.lower())

    def resync(self, mailbox: str) -> None:
        self.full.add(mailbox.lower())


class CannotSubscribe(Exception):
    """No subscription can be made for this mailbox now: it is polled instead. ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def notification_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook")


def lifecycle_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook-lifecycle")


def refused_reason(exc: GraphError) -> str:
    """Why Graph refused a subscription create (400), and what fixes it."""
    return (
        f"Graph refused the subscription ({exc.code or 'HTTP 400'}: {exc.message}). Graph must reach "
        f"{notification_url()} over HTTPS with a publicly trusted certificate and get the validation token echoed within "
        "10 seconds: set PUBLIC_BASE_URL to the public https:// address of a reverse proxy or tunnel in front of the app"
    )


def subscription_credential(provider, mailbox: str) -> str:
    """The credential that may subscribe to ``mailbox``: the delegated user for its own
    mailbox, app-only for any other. Raises ``CannotSubscribe`` when the app-only token
    can't be had (no client secret, refused)."""
    if mailbox.lower() == delegated_mailbox(provider):
        return Subscription.Credential.DELEGATED
    try:
        app_token(provider)
    except CredentialError as exc:
        raise CannotSubscribe(f"no app-only credential to subscribe with ({exc.message})") from None
    return Subscription.Credential.APP


def _effective_credential(subscription: Subscription) -> str:
    """What a row created before credentials were recorded was created with: the system credential then."""
    if subscription.credential:
        return subscription.credential
    return Subscription.Credential.DELEGATED if subscription.provider.delegated_connected else Subscription.Credential.APP


def _client(subscription: Subscription):
    return credential_client(subscription.provider, subscription.credential)


def _expiry() -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=conf.get().subscription_minutes)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- services --------------------------------------------------------------------------------


def subscription_create(*, provider, mailbox: str, kind: str = Subscription.Kind.ROOM, credential: str | None = None) -> Subscription:
    """POST /subscriptions for ``mailbox``'s events with a fresh secret clientState, as
    ``credential`` (default: ``subscription_credential``). Graph validates our endpoint
    (handshake) before it answers. A mailbox that was polled stops being polled.
    Raises ``CannotSubscribe`` (no credential, or Graph refused it: 403, or 400 for an http URL
    or a failed validation handshake) or GraphError."""
    mailbox = mailbox.lower()
    if credential is None:
        credential = subscription_credential(provider, mailbox)
    secret = secrets.token_urlsafe(48)[:96]
    resource = f"users/{mailbox}/events"
    body = {
        "changeType": CHANGE_TYPES, "notificationUrl": notification_url(), "lifecycleNotificationUrl": lifecycle_url(),
        "resource": resource, "expirationDateTime": _iso(_expiry()), "clientState": secret,
        "latestSupportedTlsVersion": "v1_2",
    }
    label = Subscription.Credential(credential).label
    try:
        created = credential_client(provider, credential).post("/subscriptions", json=body)
    except AccessDenied as exc:
        raise CannotSubscribe(f"Graph refused the subscription with the {label} credential ({exc})") from exc
    except GraphError as exc:
        if exc.status != 400:
            raise
        # Graph refused the request itself: an http URL, or our endpoint failed the validation handshake.
        raise CannotSubscribe(refused_reason(exc)) from exc
    except CredentialError as exc:
        raise CannotSubscribe(f"no {label} token to subscribe with ({exc.message})") from exc
    # The previous live subscription of this mailbox (if any) is replaced, and polling stops.
    Subscription.objects.filter(provider=provider, mailbox=mailbox, status__in=[Subscription.Status.ACTIVE, Subscription.Status.POLLING]).update(
        status=Subscription.Status.REMOVED)
    sub = Subscription.objects.create(
        provider=provider, mailbox=mailbox, kind=kind, graph_id=created["id"], resource=resource, client_state_hash=hash_client_state(secret),
        expires_at=_parse(created.get("expirationDateTime")), renewed_at=timezone.now(), credential=credential,
    )
    logger.info("subscription %s created for %s (%s) with the %s credential", sub.graph_id, mailbox, kind, label)
    return sub


def subscription_renew(*, subscription: Subscription, pulls: Pulls) -> Subscription:
    """PATCH the expiry. A subscription Graph no longer knows is recreated (and the
    mailbox resynced); any other failure is recorded and the admins alerted."""
    try:
        updated = _client(subscription).patch(f"/subscriptions/{subscription.graph_id}", json={"expirationDateTime": _iso(_expiry())})
    except NotFound:
        return _recreate(subscription, why="Graph no longer knows the subscription", pulls=pulls)
    except (GraphError, CredentialError) as exc:
        _failed(subscription, f"Renewal failed: {exc}")
        raise
    subscription.expires_at = _parse(updated.get("expirationDateTime")) or subscription.expires_at
    subscription.renewed_at = timezone.now()
    subscription.last_error = ""
    subscription.status = Subscription.Status.ACTIVE
    subscription.save(update_fields=["expires_at", "renewed_at", "last_error", "status"])
    return subscription


def subscription_reauthorize(*, subscription: Subscription, pulls: Pulls) -> Subscription:
    """reauthorizationRequired: POST .../reauthorize, then extend the expiry."""
    try:
        _client(subscription).post(f"/subscriptions/{subscription.graph_id}/reauthorize")
    except NotFound:
        return _recreate(subscription, why="reauthorization found no subscription", pulls=pulls)
    except (GraphError, CredentialError) as exc:
        _failed(subscription, f"Reauthorization failed: {exc}")
        raise
    return subscription_renew(subscription=subscription, pulls=pulls)


def subscription_delete(*, subscription: Subscription) -> None:
    """DELETE it in Graph with the credential that created it (a polling row has nothing there)."""
    if subscription.graph_id and subscription.status != Subscription.Status.POLLING:
        try:
            _client(subscription).delete(f"/subscriptions/{subscription.graph_id}")
        except NotFound:
            pass
        except CredentialError as exc:
            # Nobody can delete it in Graph now; it expires on its own.
            logger.warning("subscription %s of %s left to expire in Graph: %s", subscription.graph_id, subscription.mailbox, exc.message)
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED)


def subscription_ensure_all(*, pulls: Pulls, provider=None) -> dict:
    """Create what is missing, renew what expires soon, drop what is no longer wanted — for
    ``provider``, else for every active provider (each subscribes its own rooms, in its tenant)."""
    if provider is None:
        totals = {"created": 0, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
        for each in active_providers():
            for key, value in subscription_ensure_all(pulls=pulls, provider=each).items():
                totals[key] = totals.get(key, 0) + value
        return totals
    counts = {"created": 0, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
    if provider is None or not provider.active:
        return counts
    wanted = subscribed_mailboxes(provider)
    rows = Subscription.objects.select_related("provider").filter(provider=provider)
    live = {s.mailbox: s for s in rows.filter(status=Subscription.Status.ACTIVE)}
    polled = {s.mailbox: s for s in rows.filter(status=Subscription.Status.POLLING)}
    now = timezone.now()
    soon = now + dt.timedelta(minutes=conf.get().subscription_renew_minutes)
    for mailbox, kind in sorted(wanted.items()):
        sub = live.get(mailbox)
        if sub is not None and sub.kind != kind:
            # The same address became a room or the organizer account: its notifications follow.
            Subscription.objects.filter(pk=sub.pk).update(kind=kind)
            sub.kind = kind
        try:
            credential, reason = subscription_credential(provider, mailbox), ""
        except CannotSubscribe as exc:
            credential, reason = None, exc.reason
        current = sub is not None and sub.expires_at is not None and sub.expires_at > now
        try:
            if current and (credential is None or credential == _effective_credential(sub)):
                # It lives (a credential it can no longer be renewed with shows at its renewal).
                if sub.expires_at <= soon:
                    subscription_renew(subscription=sub, pulls=pulls)
                    counts["renewed"] += 1
                continue
            if credential is None:
                raise CannotSubscribe(reason)
            subscription_create(provider=provider, mailbox=mailbox, kind=kind, credential=credential)
            counts["created"] += 1
            if sub is not None and current:
                # Replaced by one made with the right credential: the old one goes from Graph.
                _delete_quietly(sub)
            if mailbox in polled:
                pulls.pull(mailbox)  # what changed since the last poll
            elif sub is None:
                pulls.resync(mailbox)  # anything booked (or answered) before we listened
        except CannotSubscribe as exc:
            counts["polling"] += 1
            _poll(provider, mailbox, kind=kind, reason=exc.reason, pulls=pulls)
            if sub is not None:
                _delete_quietly(sub)
        except (GraphError, CredentialError) as exc:
            counts["failed"] += 1
            if sub is None and mailbox not in polled:
                _alert(f"Could not subscribe to {mailbox}", f"Creating the change-notification subscription failed: {exc}", kind=kind)
            logger.warning("subscription for %s: %s", mailbox, exc)
            if mailbox in polled:
                counts["polling"] += 1  # it stays polled until a subscription is made
    for mailbox, sub in live.items():
        if mailbox not in wanted:
            try:
                subscription_delete(subscription=sub)
                counts["deleted"] += 1
            except GraphError as exc:
                logger.warning("deleting subscription of %s: %s", mailbox, exc)
    for mailbox, row in polled.items():
        if mailbox not in wanted:
            Subscription.objects.filter(pk=row.pk).update(status=Subscription.Status.REMOVED)
    return counts


def lifecycle_handle(*, notification: WebhookNotification, pulls: Pulls) -> str:
    """Act on one lifecycle notification (idempotent enough to run twice)."""
    sub = notification.subscription
    event = notification.lifecycle_event
    outcome = "ignored"
    if sub is None:
        outcome = "no subscription"
    elif event == "reauthorizationRequired":
        if sub.status == Subscription.Status.ACTIVE:
            subscription_reauthorize(subscription=sub, pulls=pulls)
        outcome = "reauthorized"
    elif event == "missed":
        pulls.resync(sub.mailbox)
        outcome = "resynced"
    elif event == "subscriptionRemoved":
        if sub.status == Subscription.Status.ACTIVE:
            _recreate(sub, why="Graph removed the subscription", pulls=pulls)
        outcome = "recreated"
    if sub is not None:
        Subscription.objects.filter(pk=sub.pk).update(last_lifecycle_event=event)
    WebhookNotification.objects.filter(pk=notification.pk).update(
        state=WebhookNotification.State.PROCESSED, processed_at=timezone.now(), note=outcome,
    )
    return outcome


# --- helpers -----------------------------------------------------------------------------------


def _recreate(subscription: Subscription, *, why: str, pulls: Pulls) -> Subscription:
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED, last_error=why)
    try:
        fresh = subscription_create(provider=subscription.provider, mailbox=subscription.mailbox, kind=subscription.kind)
    except CannotSubscribe as exc:
        return _poll(subscription.provider, subscription.mailbox, kind=subscription.kind, reason=f"{why}; {exc.reason}", pulls=pulls)
    except GraphError as exc:
        _failed(subscription, f"{why}; recreating it failed: {exc}")
        raise
    pulls.resync(subscription.mailbox)  # notifications may have been lost meanwhile
    return fresh


def _delete_quietly(subscription: Subscription) -> None:
    try:
        subscription_delete(subscription=subscription)
    except GraphError as exc:
        Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED)
        logger.warning("deleting the replaced subscription %s of %s: %s", subscription.graph_id, subscription.mailbox, exc)


def _poll(provider, mailbox: str, *, kind: str, reason: str, pulls: Pulls) -> Subscription:
    """``mailbox`` is polled instead of subscribed (its ``polling`` row, with the reason). The
    admins are told once, when it starts; a pull runs at once (nothing waits for the beat)."""
    mailbox = mailbox.lower()
    reason = reason[:2000]
    row = Subscription.objects.filter(provider=provider, mailbox=mailbox, status=Subscription.Status.POLLING).first()
    if row is not None:
        if (row.polling_reason, row.kind) != (reason, kind):
            Subscription.objects.filter(pk=row.pk).update(polling_reason=reason, kind=kind)
            row.polling_reason, row.kind = reason, kind
        return row
    try:
        with transaction.atomic():
            row = Subscription.objects.create(
                provider=provider, mailbox=mailbox, kind=kind, status=Subscription.Status.POLLING, resource=f"users/{mailbox}/events",
                client_state_hash="", polling_reason=reason,
            )
    except IntegrityError:  # another worker started polling it a moment ago (and told the admins)
        return Subscription.objects.get(provider=provider, mailbox=mailbox, status=Subscription.Status.POLLING)
    logger.warning("no subscription for %s: polling it every %s s (%s)", mailbox, conf.get().poll_seconds, reason)
    _alert(
        f"Polling {mailbox}: no change-notification subscription",
        f"No change-notification subscription could be made for {mailbox}: {reason}.\n"
        f"Its calendar is read every {conf.get().poll_seconds} s instead (CALENDAR_SYNC_POLL_SECONDS). Subscriptions on mailboxes other "
        "than the delegated user's own need the app-only credential (the provider's client secret, with application "
        "permission to the mailbox); the next subscription run after that is fixed subscribes it and the polling stops.",
        kind=kind,
    )
    pulls.resync(mailbox)
    return row


def _failed(subscription: Subscription, message: str) -> None:
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(last_error=message[:2000], last_error_at=now, status=Subscription.Status.FAILED)
    subscription.last_error, subscription.last_error_at, subscription.status = message, now, Subscription.Status.FAILED
    logger.error("subscription %s (%s): %s", subscription.graph_id, subscription.mailbox, message)
    _alert(f"Calendar subscription failing for {subscription.mailbox}", message, kind=subscription.kind)


_CONSEQUENCE = {
    Subscription.Kind.ROOM: "Outlook bookings of this room are not picked up in real time",
    Subscription.Kind.ORGANIZER: "Attendees' answers to the meetings this mailbox organizes, and their cancellation in Outlook, are not picked up in real time",
}


def _alert(subject: str, message: str, *, kind: str = Subscription.Kind.ROOM) -> None:
    """Tell the admins: settings.ADMINS through mail_admins, and every active staff user."""
    tell_admins(subject, f"{message}\n\n{_CONSEQUENCE.get(kind, _CONSEQUENCE[Subscription.Kind.ROOM])} until this is fixed. See Calendar sync → Subscriptions in the admin.")
