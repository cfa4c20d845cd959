"""Inbound sync state (SPEC §4 "Inbound"): subscriptions, the webhook inbox, the delta
link per subscribed mailbox, the meetings seen in subscribed calendars, and the nightly runs.

The outbox (``SyncEvent``) lives in ``reservations``; everything here is ours."""

from __future__ import annotations

import hashlib
import hmac

from django.db import models
from django.db.models import Q


def hash_client_state(secret: str) -> str:
    """We keep only a hash of each subscription's clientState (it is a shared secret)."""
    return hashlib.sha256((secret or "").encode()).hexdigest()


class Subscription(models.Model):
    """A Graph change-notification subscription on one mailbox's events: a synced room's, or
    the organizer mailbox's (the provider's service account, where the mode needs it)."""

    class Kind(models.TextChoices):
        ROOM = "room", "room mailbox"
        ORGANIZER = "organizer", "organizer mailbox"

    class Status(models.TextChoices):
        ACTIVE = "active"
        FAILED = "failed", "failed (renewal or creation failed)"
        REMOVED = "removed", "removed (deleted or replaced)"
        # No subscription can be made (no usable app-only credential, or Graph refused it):
        # the mailbox is pulled every CALENDAR_SYNC_POLL_SECONDS instead. No Graph id.
        POLLING = "polling", "polling (no subscription possible)"

    class Credential(models.TextChoices):
        """Who created the subscription in Graph; renewals and the deletion use the same one."""

        APP = "app", "app-only"
        DELEGATED = "delegated", "delegated user"
        SYSTEM = "", "system credential (before this was recorded)"

    provider = models.ForeignKey("exchange_auth.CalendarProvider", on_delete=models.CASCADE, related_name="subscriptions")
    mailbox = models.EmailField()
    # What the mailbox is to us: its notifications are reconciled by inbound.room_calendar
    # (room) or inbound.organizer_calendar (organizer).
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ROOM)
    graph_id = models.CharField(max_length=200, blank=True, default="", help_text="Graph's subscription id.")
    resource = models.CharField(max_length=300)
    client_state_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    credential = models.CharField(max_length=10, choices=Credential.choices, blank=True, default="")
    polling_reason = models.TextField(blank=True, default="", help_text="Why the mailbox is polled instead of subscribed.")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    last_lifecycle_event = models.CharField(max_length=40, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mailbox", "-created_at"]
        constraints = [
            # The webhook finds the subscription of a notification by Graph's id.
            models.UniqueConstraint(fields=["graph_id"], condition=~Q(graph_id=""), name="subscription_unique_graph_id"),
            # At most one live subscription per mailbox and provider (ensure_all relies on it).
            models.UniqueConstraint(fields=["provider", "mailbox"], condition=Q(status="active"), name="subscription_one_active_per_mailbox"),
            models.UniqueConstraint(fields=["provider", "mailbox"], condition=Q(status="polling"), name="subscription_one_polling_per_mailbox"),
        ]
        indexes = [
            # The renewal job scans active subscriptions by expiry.
            models.Index(fields=["status", "expires_at"], name="subscription_status_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox} ({self.status})"

    def client_state_matches(self, received: str | None) -> bool:
        """Constant-time comparison of what a notification carries with our secret."""
        return hmac.compare_digest(hash_client_state(received or ""), self.client_state_hash or "")


class WebhookNotification(models.Model):
    """The inbox: every genuine notification, stored before the 202 is sent."""

    class Kind(models.TextChoices):
        CHANGE = "change"
        LIFECYCLE = "lifecycle"

    class State(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored"

    received_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHANGE)
    subscription = models.ForeignKey(Subscription, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    subscription_graph_id = models.CharField(max_length=200, blank=True, default="")
    mailbox = models.EmailField(blank=True, default="")
    change_type = models.CharField(max_length=20, blank=True, default="")
    lifecycle_event = models.CharField(max_length=40, blank=True, default="")
    event_id = models.CharField(max_length=512, blank=True, default="")
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    processed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The pull marks a mailbox's received notifications processed; the sweeper finds stale ones.
            models.Index(fields=["mailbox", "state", "received_at"], name="inbox_mailbox_state"),
            models.Index(fields=["state", "received_at"], name="inbox_state_received"),
        ]

    def __str__(self) -> str:
        what = self.lifecycle_event or self.change_type
        return f"{what} on {self.mailbox or '?'} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class MailboxDeltaState(models.Model):
    """Where the last delta round of one subscribed mailbox ended (its deltaLink) and how it went.
    Per provider: two tenants' mailboxes are two calendars even where an address repeats."""

    provider = models.ForeignKey("exchange_auth.CalendarProvider", on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    mailbox = models.EmailField()
    delta_link = models.TextField(blank=True, default="")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    pulls = models.PositiveIntegerField(default=0)
    full_syncs = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["mailbox"]
        verbose_name = "mailbox delta state"
        constraints = [
            # delta.pull_mailbox's get_or_create: one state per (provider, mailbox) — and per mailbox for
            # rows from before providers were told apart (NULLs are distinct in a plain unique constraint).
            models.UniqueConstraint(fields=["provider", "mailbox"], condition=Q(provider__isnull=False), name="mailboxdeltastate_one_per_provider_mailbox"),
            models.UniqueConstraint(fields=["mailbox"], condition=Q(provider__isnull=True), name="mailboxdeltastate_one_per_unowned_mailbox"),
        ]

    def __str__(self) -> str:
        return self.mailbox


class RoomEvent(models.Model):
    """A meeting seen in a room calendar: what we last saw and which reservation it is.

    "Seen before" in the nightly row of the table means a row here; the change key
    lets a pull skip meetings that did not change (the product's own echoes included).
    The organizer mailbox's copies of the product's meetings are kept here too (their
    ``mailbox`` is the organizer's; meetings linked to no reservation get no row there)."""

    mailbox = models.EmailField()
    event_id = models.CharField(max_length=512)
    ical_uid = models.CharField(max_length=512, blank=True, default="")
    change_key = models.CharField(max_length=255, blank=True, default="")
    reservation = models.ForeignKey("reservations.Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    subject = models.CharField(max_length=255, blank=True, default="")
    organizer = models.EmailField(blank=True, default="")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    # What reconciliation decided last time: created, updated, echo, declined, deferred, cancelled ...
    outcome = models.CharField(max_length=40, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    deferrals = models.PositiveSmallIntegerField(default=0)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mailbox", "start"]
        constraints = [
            # One row per meeting copy; a redelivered pull updates it.
            models.UniqueConstraint(fields=["mailbox", "event_id"], name="roomevent_unique_copy"),
        ]
        indexes = [
            # Reconciliation looks copies up by iCalUId; the full resync sweeps a mailbox's live rows.
            models.Index(fields=["mailbox", "ical_uid"], name="roomevent_mailbox_ical"),
            models.Index(fields=["mailbox", "removed_at", "start"], name="roomevent_mailbox_live"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.event_id[:12]} in {self.mailbox}"


class NightlyRun(models.Model):
    """One nightly reconcile per building and local date, or per organizer mailbox and the
    local date of the building whose pass took it along (``calendar_sync.nightly``); the
    unique constraints are the claims."""

    building = models.ForeignKey("workplace.Building", on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    mailbox = models.EmailField(blank=True, default="", help_text="An organizer mailbox's run (no building).")
    # The organizer mailbox's provider (two tenants' organizer accounts are two mailboxes).
    provider = models.ForeignKey("exchange_auth.CalendarProvider", on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    local_date = models.DateField()
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-local_date"]
        constraints = [
            # PostgreSQL and SQLite treat NULLs as distinct: organizer mailbox rows (no building) never clash here.
            models.UniqueConstraint(fields=["building", "local_date"], name="nightlyrun_once_per_day"),
            # The claim of an organizer mailbox's nightly round (``nightly.claim_mailbox``).
            models.UniqueConstraint(fields=["mailbox", "local_date"], condition=~models.Q(mailbox="") & Q(provider__isnull=True), name="nightlyrun_mailbox_once_per_day"),
            models.UniqueConstraint(fields=["provider", "mailbox", "local_date"], condition=~models.Q(mailbox="") & Q(provider__isnull=False),
                                    name="nightlyrun_provider_mailbox_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.building or self.mailbox} {self.local_date}"


class NightlyChunk(models.Model):
    """A share of a building's nightly run: up to ``CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS`` rooms, one
    ``nightly_chunk`` task, so several workers share a building's night. ``started_at`` is the
    claim (with a lease: a chunk whose worker died runs again); the run finishes with its last chunk."""

    run = models.ForeignKey(NightlyRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    room_ids = models.JSONField(default=list)
    started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="nightlychunk_once_per_run")]

    def __str__(self) -> str:
        return f"{self.run} #{self.index}"
