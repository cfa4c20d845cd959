"""Change-notification subscriptions (SPEC §4 "Inbound") on every synced room mailbox and,
where the mode needs it, on the organizer mailbox.

Which mailboxes (``subscribed_mailboxes``):
- every synced room mailbox (``synced_mailboxes``), kind ``room``;
- the provider's service account (its organizer account, else its delegated user), kind
  ``organizer``, when at least one room is synced and (``organizer_mailboxes``):
  1. the mode is Strict and rooms don't organize their own meetings: the service account
     organizes every product meeting of a synced room (sync mailbox ``other``); with rooms
     organizing, synced rooms (they all have a mailbox) organize their own;
  2. the mode is Normal and some active person has no mailbox (no email address, or a
     profile saying so): the service account organizes their meetings (the table's
     fallback); when everyone has one, Normal mode writes into their own calendars;
  3. in any mode, while active product meetings that are not over live in its calendar:
     Personal-mode blockers, REST bookings for someone without a mailbox, meetings booked
     before the mode or a profile changed. Personal mode otherwise writes into employees'
     own calendars, which are never subscribed. (Rule 3 also covers the delegated user
     when it differs from the organizer account: Personal-mode blockers go to it first.)
  A mailbox that becomes wanted gets its subscription from the next beat (at most 15
  minutes) at the latest; its first round reads the whole window, so nothing is missed.
  Its notifications are reconciled by ``calendar_sync.organizer_sync``: attendees'
  answers and cancellations of the product's meetings.

Services (keyword-only, STYLE 1):
- ``subscription_ensure_all``: every wanted mailbox has a live subscription (created when
  missing, renewed when it expires soon); subscriptions of mailboxes no longer wanted are
  deleted. Run on provider activation, when the sync mode changes, by beat, and by
  ``manage.py sync_subscriptions``.
- ``subscription_create`` / ``subscription_renew`` / ``subscription_reauthorize``.
- ``lifecycle_handle``: reauthorizationRequired → reauthorize and renew;
  missed → full resync of that mailbox; subscriptionRemoved → recreate and resync.
A renewal that fails is recorded on the subscription and the admins are told.

Which credential subscribes (``subscription_credential``): Graph lets a delegated token
subscribe only to the signed-in user's own mailbox (Outlook change notifications refuse
shared and delegated folders, whatever the .Shared permissions say), so the connected
delegated user subscribes its own mailbox and every other mailbox (the rooms) is subscribed
with the app-only credential, even while the system credential is the delegated user.
The row records which one (``Subscription.credential``): Graph lets only the creator renew,
reauthorize or delete a subscription. Reading a room's calendar as its delegate is allowed,
so the pulls keep using the system client.

Polling: when no subscription can be made for a wanted mailbox (no usable app-only
credential, or Graph answers 403 on create) the mailbox gets a ``polling`` row with the
reason, the admins are told once, and the beat task ``inbound_tasks.poll_unsubscribed``
pulls it every CALENDAR_SYNC_POLL_SECONDS (the same coalesced pull a notification queues).
The next ``subscription_ensure_all`` that can subscribe it does, and the polling stops.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import mail_admins, send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.credentials import CredentialError, app_token
from exchange_auth.graph import AccessDenied, GraphError, NotFound
from exchange_auth.modes import Mode
from exchange_auth.providers import active_provider
from reservations.models import ACTIVE_STATES, Reservation
from workplace.models import Room

from .clients import credential_client
from .models import Subscription, WebhookNotification, hash_client_state

logger = logging.getLogger("calendar_sync.subscriptions")

CHANGE_TYPES = "created,updated,deleted"


def lifetime_minutes() -> int:
    """Graph allows just under 3 days for Outlook resources with lifecycle URLs (4230 min)."""
    return int(getattr(settings, "CALENDAR_SYNC_SUBSCRIPTION_MINUTES", 4200))


def renew_margin() -> dt.timedelta:
    """Renew a subscription when it expires within this (beat runs every 15 minutes)."""
    return dt.timedelta(minutes=int(getattr(settings, "CALENDAR_SYNC_SUBSCRIPTION_RENEW_MINUTES", 24 * 60)))


def poll_seconds() -> int:
    """How often a mailbox that can't be subscribed is pulled instead."""
    return int(getattr(settings, "CALENDAR_SYNC_POLL_SECONDS", 60))


class CannotSubscribe(Exception):
    """No subscription can be made for this mailbox now: it is polled instead. ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def notification_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook")


def lifecycle_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("calendar_sync:webhook-lifecycle")


def synced_mailboxes() -> list[str]:
    """The synced rooms' mailboxes."""
    return sorted({m.lower() for m in Room.objects.filter(sync_enabled=True).exclude(mailbox="").values_list("mailbox", flat=True)})


def service_accounts(provider) -> list[str]:
    """The mailboxes that hold meetings on the product's behalf: the table's service account
    (organizer account, else delegated user) first, then the delegated user if it differs
    (Personal-mode blockers live there, ``exchange_auth.modes.plan_sync`` step 1)."""
    if provider is None:
        return []
    accounts = provider.accounts
    found = [accounts.service_account, accounts.delegated_user]
    return list(dict.fromkeys(a.strip().lower() for a in found if a and a.strip()))


def organizer_mailboxes(provider, *, rooms: list[str] | None = None) -> list[str]:
    """The organizer mailbox(es) to subscribe to (rules 1–3 of the module docstring)."""
    rooms = synced_mailboxes() if rooms is None else rooms
    accounts = [a for a in service_accounts(provider) if a not in rooms]
    if not rooms or not accounts:
        return []
    mode = properties.sync_mode()
    organizes = (mode is Mode.STRICT and not provider.rooms_organize_own_meetings) or (mode is Mode.NORMAL and _someone_without_mailbox())
    main = service_accounts(provider)[0]
    wanted = [main] if organizes and main in accounts else []
    wanted += [a for a in accounts if a not in wanted and _holds_live_meetings(a)]
    return wanted


def _holds_live_meetings(mailbox: str) -> bool:
    """Active product meetings that are not over live in ``mailbox`` (rule 3)."""
    return Reservation.objects.filter(mailbox__iexact=mailbox, state__in=ACTIVE_STATES, end__gt=timezone.now()).exists()


def _someone_without_mailbox() -> bool:
    """An active person the mode table would give the service account as organizer (as
    ``push`` decides it: no email address, or a profile without a mailbox)."""
    people = get_user_model().objects.filter(is_active=True)
    return people.filter(Q(email="") | Q(profile__has_mailbox=False)).exists()


def subscribed_mailboxes(provider) -> dict[str, str]:
    """{mailbox: Subscription.Kind} of every mailbox that should have a live subscription."""
    rooms = synced_mailboxes()
    wanted = dict.fromkeys(rooms, Subscription.Kind.ROOM)
    for mailbox in organizer_mailboxes(provider, rooms=rooms):
        wanted.setdefault(mailbox, Subscription.Kind.ORGANIZER)
    return wanted


def is_organizer_mailbox(provider, mailbox: str) -> bool:
    """Whether ``mailbox`` is one of the provider's service accounts (its pulls reconcile only
    the product's meetings there, ``calendar_sync.organizer_sync``)."""
    return mailbox.lower() in service_accounts(provider)


def delegated_mailbox(provider) -> str:
    """The connected delegated user's own mailbox ('' when none is connected)."""
    if provider is None or not provider.delegated_connected:
        return ""
    return (provider.delegated_connected_as or provider.delegated_user_email or "").strip().lower()


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
    return timezone.now() + dt.timedelta(minutes=lifetime_minutes())


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- services --------------------------------------------------------------------------------


def subscription_create(*, provider, mailbox: str, kind: str = Subscription.Kind.ROOM, credential: str | None = None) -> Subscription:
    """POST /subscriptions for ``mailbox``'s events with a fresh secret clientState, as
    ``credential`` (default: ``subscription_credential``). Graph validates our endpoint
    (handshake) before it answers. A mailbox that was polled stops being polled.
    Raises ``CannotSubscribe`` (no credential, or Graph refused it: 403) or GraphError."""
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


def subscription_renew(*, subscription: Subscription) -> Subscription:
    """PATCH the expiry. A subscription Graph no longer knows is recreated (and the
    mailbox resynced); any other failure is recorded and the admins alerted."""
    try:
        updated = _client(subscription).patch(f"/subscriptions/{subscription.graph_id}", json={"expirationDateTime": _iso(_expiry())})
    except NotFound:
        return _recreate(subscription, why="Graph no longer knows the subscription")
    except (GraphError, CredentialError) as exc:
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
    try:
        _client(subscription).post(f"/subscriptions/{subscription.graph_id}/reauthorize")
    except NotFound:
        return _recreate(subscription, why="reauthorization found no subscription")
    except (GraphError, CredentialError) as exc:
        _failed(subscription, f"Reauthorization failed: {exc}")
        raise
    return subscription_renew(subscription=subscription)


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


def subscription_ensure_all(*, provider=None) -> dict:
    """Create what is missing, renew what expires soon, drop what is no longer wanted."""
    provider = provider or active_provider()
    counts = {"created": 0, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
    if provider is None or not provider.active:
        return counts
    wanted = subscribed_mailboxes(provider)
    rows = Subscription.objects.select_related("provider").filter(provider=provider)
    live = {s.mailbox: s for s in rows.filter(status=Subscription.Status.ACTIVE)}
    polled = {s.mailbox: s for s in rows.filter(status=Subscription.Status.POLLING)}
    now = timezone.now()
    soon = now + renew_margin()
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
                    subscription_renew(subscription=sub)
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
                _pull(mailbox)  # what changed since the last poll
            elif sub is None:
                _resync(mailbox)  # anything booked (or answered) before we listened
        except CannotSubscribe as exc:
            counts["polling"] += 1
            _poll(provider, mailbox, kind=kind, reason=exc.reason)
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
        fresh = subscription_create(provider=subscription.provider, mailbox=subscription.mailbox, kind=subscription.kind)
    except CannotSubscribe as exc:
        return _poll(subscription.provider, subscription.mailbox, kind=subscription.kind, reason=f"{why}; {exc.reason}")
    except GraphError as exc:
        _failed(subscription, f"{why}; recreating it failed: {exc}")
        raise
    _resync(subscription.mailbox)  # notifications may have been lost meanwhile
    return fresh


def _delete_quietly(subscription: Subscription) -> None:
    try:
        subscription_delete(subscription=subscription)
    except GraphError as exc:
        Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.REMOVED)
        logger.warning("deleting the replaced subscription %s of %s: %s", subscription.graph_id, subscription.mailbox, exc)


def _poll(provider, mailbox: str, *, kind: str, reason: str) -> Subscription:
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
    logger.warning("no subscription for %s: polling it every %s s (%s)", mailbox, poll_seconds(), reason)
    _alert(
        f"Polling {mailbox}: no change-notification subscription",
        f"No change-notification subscription could be made for {mailbox}: {reason}.\n"
        f"Its calendar is read every {poll_seconds()} s instead (CALENDAR_SYNC_POLL_SECONDS). Subscriptions on mailboxes other "
        "than the delegated user's own need the app-only credential (the provider's client secret, with application "
        "permission to the mailbox); the next subscription run after that is fixed subscribes it and the polling stops.",
        kind=kind,
    )
    _resync(mailbox)
    return row


def _pull(mailbox: str) -> None:
    from . import inbound_tasks

    inbound_tasks.request_pull(mailbox)


def _resync(mailbox: str) -> None:
    from . import inbound_tasks

    inbound_tasks.request_pull(mailbox, full=True)


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
    body = f"{message}\n\n{_CONSEQUENCE.get(kind, _CONSEQUENCE[Subscription.Kind.ROOM])} until this is fixed. See Calendar sync → Subscriptions in the admin."
    try:
        mail_admins(subject, body, fail_silently=True)
        staff = sorted(set(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)))
        if staff:
            send_mail(f"[Workplace] {subject}", body, settings.DEFAULT_FROM_EMAIL, staff, fail_silently=True)
    except Exception:
        logger.exception("could not alert the admins about: %s", subject)
