"""Reservations, recurring series, attendees and the sync outbox.

Times are stored in UTC. The Exchange link (mailbox, event id, change key,
iCalUId, organizer, origin) lives on the reservation; the outbox rows
(``SyncEvent``) are written in the same transaction as the change they carry.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from workplace.models import Arrangement, Room


class Kind(models.TextChoices):
    STANDARD = "standard"
    BLOCKER = "blocker"
    GROUP = "group"
    ON_BEHALF = "on_behalf"


class Source(models.TextChoices):
    PORTAL = "portal"
    EVENT_PLANNER = "event_planner"
    QUICK_RESERVATION = "quick_reservation"
    MOBILE = "mobile"
    REST_API = "rest_api"
    OUTLOOK = "outlook"
    # A tablet at the room's door (workplace.RoomPanel): not a person acting in person, so the
    # mode table treats it like the REST API (system credential).
    ROOM_PANEL = "room_panel"


class State(models.TextChoices):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CONFLICTED = "conflicted"
    CANCELLED = "cancelled"
    # Not checked in by the end of its check-in window: the room was given back (checkin.py).
    RELEASED = "released"


# States that hold the room. The exclusion constraint (migration 0002) lists the same states:
# a released or cancelled row no longer holds its slot.
ACTIVE_STATES = (State.AWAITING_CONFIRMATION, State.CONFIRMED, State.CONFLICTED)


class CheckInChannel(models.TextChoices):
    """Where a check-in was made (reservations.services.checkin)."""

    PORTAL = "portal"
    API = "api"
    QR = "qr", "QR code / short URL"
    ROOM_PANEL = "room_panel", "room panel"


class ApprovalState(models.TextChoices):
    """External approval (SPEC §2): a room's delegate in Exchange, or its approvers in the product."""

    NOT_REQUIRED = "not_required", "Not required"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    ACCEPTED = "accepted", "Approved"
    DECLINED = "declined", "Declined"


class SyncMailbox(models.TextChoices):
    USER = "user", "user (employee's own calendar)"
    OTHER = "other", "other (delegated, organizer or room mailbox)"


class Origin(models.TextChoices):
    APP = "app"
    EXCHANGE = "exchange"


class SyncState(models.TextChoices):
    NOT_SYNCED = "not_synced", "not synced"
    PENDING = "pending"
    SYNCED = "synced"
    ERROR = "error"


class ExchangeLink(models.Model):
    """Where the meeting lives in Exchange. Shared by reservations and series."""

    mailbox = models.EmailField(blank=True, default="", help_text="Mailbox that holds the event.")
    sync_mailbox = models.CharField(max_length=8, choices=SyncMailbox.choices, blank=True, default="")
    event_id = models.CharField(max_length=512, blank=True, default="")
    change_key = models.CharField(max_length=255, blank=True, default="")
    ical_uid = models.CharField(max_length=512, blank=True, default="")
    organizer = models.EmailField(blank=True, default="")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.APP)
    # A Teams meeting (Graph: isOnlineMeeting + onlineMeetingProvider teamsForBusiness) and the
    # join link Graph made for it (onlineMeeting.joinUrl), read back from the create's answer.
    online_meeting = models.BooleanField(default=False, help_text="A Teams meeting was asked for.")
    online_meeting_url = models.CharField(max_length=2048, blank=True, default="", help_text="Teams join link (Graph's onlineMeeting.joinUrl).")

    class Meta:
        abstract = True


class ReservationSeries(ExchangeLink):
    """A recurring reservation. Each occurrence is a ``Reservation`` row pointing here."""

    class Frequency(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"

    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="series")
    subject = models.CharField(max_length=255)
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    interval = models.PositiveSmallIntegerField(default=1)
    # ISO weekdays (1 = Monday) for weekly series; empty = the weekday of the first occurrence.
    weekdays = models.JSONField(default=list, blank=True)
    # Monthly series on a weekday's position ("second", "last": Graph's relativeMonthly, with the
    # weekday in ``weekdays``); empty: on the same day of the month (absoluteMonthly).
    index = models.CharField(max_length=6, blank=True, default="")
    until = models.DateField(null=True, blank=True)
    count = models.PositiveSmallIntegerField(null=True, blank=True)
    first_start = models.DateTimeField()
    first_end = models.DateTimeField()
    timezone = models.CharField(max_length=64, help_text="Time zone the pattern is expanded in (the building's).")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_for = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The no-show rule (reservations.services.release): after N consecutive released occurrences
    # the organizer is asked to confirm the series by noshow_confirm_by, else the rest is released.
    noshow_confirmation_requested_at = models.DateTimeField(null=True, blank=True)
    noshow_confirm_by = models.DateTimeField(null=True, blank=True, help_text="Deadline to confirm the series after repeated no-shows.")
    noshow_confirmed_at = models.DateTimeField(null=True, blank=True, help_text="When the organizer last confirmed the series is still needed.")

    class Meta:
        verbose_name_plural = "reservation series"
        indexes = [
            # Inbound reconciliation finds an occurrence's series by the iCalUId its copy names
            # (calendar_sync.inbound.copies.of_series_named).
            models.Index(fields=["ical_uid"], name="series_ical_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.frequency})"


class Reservation(ExchangeLink):
    # No single-column index on room or requested_for: rsv_room_time and rsv_requested_for_start
    # (Meta.indexes) lead with them and serve every lookup by either (and the PROTECT checks),
    # so a second index would only cost every booking two more index inserts.
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="reservations", db_index=False)
    arrangement = models.ForeignKey(Arrangement, on_delete=models.PROTECT, related_name="reservations", null=True, blank=True)
    series = models.ForeignKey(ReservationSeries, on_delete=models.CASCADE, related_name="occurrences", null=True, blank=True)
    # The occurrence's slot as the pattern produced it; Graph identifies exceptions by it.
    original_start = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    start = models.DateTimeField()
    end = models.DateTimeField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations_requested")
    requested_for = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations", db_index=False)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.STANDARD)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PORTAL)
    subsource = models.CharField(max_length=40, blank=True, default="")
    state = models.CharField(max_length=24, choices=State.choices, default=State.CONFIRMED)
    approval_state = models.CharField(max_length=20, choices=ApprovalState.choices, default=ApprovalState.NOT_REQUIRED)
    # When the approval was asked for (the room's delegate in Exchange answered tentative, or the
    # booking was made on a room that needs approval): ``approval_time_limit`` counts from here.
    approval_requested_at = models.DateTimeField(null=True, blank=True)
    # Who approved or declined it in the product (empty: a delegate in Exchange, or not decided).
    approval_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="approvals_decided",
    )
    state_reason = models.CharField(max_length=500, blank=True, default="", help_text="Why it was rejected, conflicted or cancelled.")
    sync_state = models.CharField(max_length=12, choices=SyncState.choices, default=SyncState.NOT_SYNCED)
    sync_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Check-in (reservations.services.checkin): when, through which channel and by whom (None at
    # a room panel); released_at: when the release job gave the room back for want of one.
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checked_in_channel = models.CharField(max_length=12, choices=CheckInChannel.choices, blank=True, default="")
    checked_in_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)
    # The feeds' SEQUENCE (RFC 5545 §3.8.7.4): one more at every change a feed shows (time,
    # room, subject, state, description), counted by a database trigger on every UPDATE
    # (migration 0012), so bulk updates count too; what an instance holds may be stale.
    revision = models.PositiveBigIntegerField(
        default=0, editable=False,
        help_text="The feeds' SEQUENCE: one more at every change a feed shows (kept by a database trigger).",
    )

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="reservation_end_after_start"),
            # The no-overlap exclusion constraint is created by migration 0002 on PostgreSQL only.
        ]
        indexes = [
            # Availability and the room day view: active reservations of a room in a time range.
            models.Index(fields=["room", "start", "end"], name="rsv_room_time"),
            # "My reservations".
            models.Index(fields=["requested_for", "start"], name="rsv_requested_for_start"),
            # Inbound reconciliation finds a reservation by its Graph event id / iCalUId.
            models.Index(fields=["event_id"], name="rsv_event_id"),
            models.Index(fields=["ical_uid"], name="rsv_ical_uid"),
            # Confirmation checks scan awaiting reservations.
            models.Index(fields=["state", "created_at"], name="rsv_state_created"),
            # The release job: active, not checked-in reservations by start (release.py's due scan).
            models.Index(fields=["start"], condition=Q(checked_in_at__isnull=True, state__in=ACTIVE_STATES), name="rsv_checkin_due"),
            # Meta.ordering over every reservation (admin's changelist, staff's API list): a page
            # of 300,000 rows read in order, not sorted whole (~0.7 s at that size without it).
            models.Index(fields=["start", "id"], name="rsv_start_id"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} in {self.room.name} at {self.start:%Y-%m-%d %H:%M} UTC"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class Attendee(models.Model):
    class Type(models.TextChoices):
        REQUIRED = "required"
        OPTIONAL = "optional"
        RESOURCE = "resource"

    class Response(models.TextChoices):
        NONE = "none"
        ORGANIZER = "organizer"
        ACCEPTED = "accepted"
        TENTATIVE = "tentativelyAccepted", "tentative"
        DECLINED = "declined"
        NOT_RESPONDED = "notResponded", "not responded"
        UNKNOWN = "unknown"

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="attendees")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True, default="")
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.REQUIRED)
    response = models.CharField(max_length=20, choices=Response.choices, default=Response.NONE)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reservation", "email"], name="attendee_unique_per_reservation"),
        ]

    def __str__(self) -> str:
        return self.email


class SyncEvent(models.Model):
    """The outbox and log of every change pushed to (or read from) Exchange."""

    class Type(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        READ = "read"
        RETRIEVE_ATTENDEES = "retrieve_attendees", "retrieve attendees"

    class State(models.TextChoices):
        NEW = "new"
        PROCESSING = "processing"
        PROCESSED = "processed"
        ERROR = "error"

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="sync_events", null=True, blank=True)
    series = models.ForeignKey(ReservationSeries, on_delete=models.CASCADE, related_name="sync_events", null=True, blank=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.NEW)
    # What the change was about, for the worker: reservations.outbox.SyncEventDetails.to_json().
    details = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    request_payload = models.JSONField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The worker and the sweeper claim due events by state and time.
            models.Index(fields=["state", "next_attempt_at"], name="syncevent_state_due"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.state})"


class CalendarFeed(models.Model):
    """A secret iCalendar feed URL: one per employee (their reservations) or per room.

    The URL's token is stored twice, never in clear: its SHA-256 (``token_hash``, the lookup
    key) and a Fernet ciphertext (``token_encrypted``, exchange_auth.crypto) so the owner can
    be shown their link again. A leaked database reveals no working URL without
    TOKEN_ENCRYPTION_KEY. Rotating replaces both in place: the old URL stops at once."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed", null=True, blank=True)
    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="calendar_feed", null=True, blank=True)
    # The feed endpoint finds the row by the hash of the token in the URL (unique index).
    token_hash = models.CharField(max_length=64, unique=True)
    token_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True, help_text="When the link was last reset.")
    last_accessed_at = models.DateTimeField(null=True, blank=True, help_text="Last fetch by a calendar app (to a few minutes).")
    # What was served last: the ETag, and since when the content is the same (Last-Modified).
    content_hash = models.CharField(max_length=64, blank=True, default="")
    content_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(room__isnull=True)) | (Q(user__isnull=True) & Q(room__isnull=False)),
                name="calendarfeed_user_xor_room",
            ),
        ]

    def __str__(self) -> str:
        return f"Feed of {self.user or self.room}"

    @property
    def kind(self) -> str:
        return "user" if self.user_id else "room"
