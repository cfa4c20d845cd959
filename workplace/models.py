"""The space directory: buildings, floors, rooms, arrangements, equipment, people."""

import datetime as dt
import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from knox.models import AbstractAuthToken

from workplace import day_hours


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin).")


class Building(models.Model):
    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=40, unique=True)
    address = models.CharField(max_length=255, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # The calendar provider (Microsoft 365 tenant) whose Exchange holds this building's rooms;
    # empty: the default provider. A string reference: workplace imports nothing of exchange_auth.
    calendar_provider = models.ForeignKey(
        "exchange_auth.CalendarProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="buildings",
        help_text="The tenant whose Exchange holds this building's rooms; empty: the default calendar provider.",
    )
    nightly_time = models.TimeField(
        null=True, blank=True,
        help_text="Local time of the nightly reconcile of this building's rooms; empty: CALENDAR_SYNC_NIGHTLY_TIME (02:30).",
    )
    # The hours the portal's calendar grids (the day grid, a room's week, the building's week)
    # show, building-local; on the half hour; an end of 00:00 is midnight (workplace.day_hours).
    day_starts = models.TimeField(
        default=day_hours.DEFAULT_STARTS,
        help_text="Local time the portal's calendars of this building start each day, on the hour or half hour (00:00 for a 24-hour site).",
    )
    day_ends = models.TimeField(
        default=day_hours.DEFAULT_ENDS,
        help_text="Local time they end, on the hour or half hour, after the start; 00:00 means until midnight (24:00).",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            # What Building.clean checks of the order, kept by the database for writes that skip it.
            models.CheckConstraint(
                condition=Q(day_ends=dt.time(0)) | Q(day_starts__lt=F("day_ends")), name="building_day_ends_after_it_starts",
                violation_error_message="The day must end after it starts (00:00 means until midnight).",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        found = day_hours.errors(self.day_starts, self.day_ends)
        if found:
            raise ValidationError(found)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def day_span(self) -> tuple[int, int]:
        """(start, end) of the grids' day in minutes after local midnight; an end of 00:00 is 1440."""
        return day_hours.span(self.day_starts, self.day_ends)


class Floor(models.Model):
    building = models.ForeignKey(Building, on_delete=models.CASCADE, related_name="floors")
    name = models.CharField(max_length=60)
    level = models.IntegerField(default=0)

    class Meta:
        ordering = ["building__name", "level"]
        constraints = [
            models.UniqueConstraint(fields=["building", "name"], name="floor_unique_name_per_building"),
        ]

    def __str__(self) -> str:
        return f"{self.building.name} / {self.name}"


class Equipment(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "equipment"

    def __str__(self) -> str:
        return self.name


class BookingType(models.TextChoices):
    """Graph's ``bookingType`` of a room: https://learn.microsoft.com/en-us/graph/api/resources/room?view=graph-rest-1.0"""

    UNKNOWN = "unknown", "Unknown"
    STANDARD = "standard", "Standard"
    RESERVED = "reserved", "Reserved"


class Room(models.Model):
    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="rooms")
    floor = models.ForeignKey(Floor, on_delete=models.PROTECT, related_name="rooms", null=True, blank=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    equipment = models.ManyToManyField(Equipment, blank=True, related_name="rooms")
    # The room's Exchange address; blank when the room has no mailbox.
    mailbox = models.EmailField(blank=True, default="")
    sync_enabled = models.BooleanField(default=False, help_text=(
        "Keep this room's reservations in sync with Exchange. Without a mailbox, the calendar provider's organizer account "
        "organizes their meetings (the room named in the location) and changes belong in the product."))
    group_reservations_enabled = models.BooleanField(default=False)
    reservable = models.BooleanField(default=True)
    # From Exchange's room directory (Graph places, ``manage.py sync_rooms``); see
    # EXCHANGE_FIELDS for what an import refreshes and ``kept_fields`` for what it leaves alone.
    wheelchair_accessible = models.BooleanField(default=False)
    booking_type = models.CharField(
        max_length=10, choices=BookingType.choices, default=BookingType.STANDARD,
        help_text="Exchange's bookingType: standard, or reserved (booked for one person or team only).",
    )
    room_list = models.CharField(max_length=254, blank=True, default="", help_text="The Exchange room list (its address) the room belongs to.")
    exchange_id = models.CharField(max_length=200, blank=True, default="", help_text="The room's id in Graph's places service.")
    directory_provider = models.ForeignKey(
        "exchange_auth.CalendarProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="imported_rooms",
        help_text="The calendar provider whose room directory this room was imported from.",
    )
    exchange_synced_at = models.DateTimeField(null=True, blank=True, help_text="When a room import last found the room in Exchange.")
    exchange_gone = models.BooleanField(
        default=False, verbose_name="gone from Exchange",
        help_text="The last room import didn't find this room in Exchange's directory (it is kept, never deleted).",
    )
    exchange_values = models.JSONField(default=dict, blank=True, help_text="The room as Exchange's directory described it at the last import.")
    kept_fields = models.JSONField(
        default=list, blank=True, help_text="Fields an admin set by hand: room imports keep the product's value of these.",
    )
    exchange_differences = models.JSONField(
        default=dict, blank=True, help_text="Where the product's room differs from Exchange's: {field: {product, exchange}}.",
    )

    # What a room import takes from Exchange (unless an admin set it by hand: ``kept_fields``).
    EXCHANGE_FIELDS = ("name", "capacity", "building", "floor", "equipment", "wheelchair_accessible", "booking_type", "room_list")
    # None: the instance property sn_wsd_rsv.checkin_required_default decides
    # (reservations.services.checkin.checkin_required).
    checkin_required = models.BooleanField(
        null=True, blank=True, default=None,
        help_text="Reservations must be checked in or they are released. Empty: the instance default (sn_wsd_rsv.checkin_required_default).",
    )
    # Approval inside the product: a booking of this room waits (awaiting_approval, holding the
    # room, nothing written to Exchange) until a member of ``approvers`` approves it in the portal.
    needs_approval = models.BooleanField(
        default=False, help_text="Bookings wait until one of the room's approvers approves them in the portal (Approvals).",
    )
    approvers = models.ForeignKey(
        "auth.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="approved_rooms",
        help_text="The group whose members approve or decline this room's bookings (needed when the room needs approval).",
    )
    # One privacy setting for everything that shows a room's bookings to passers-by: the portal's
    # calendars (anyone but the people booked and staff see "Busy") and the room panel at the
    # door ("Booked"), and the room's iCalendar feed when CALENDAR_FEED_ROOM_SUBJECTS is on.
    # Off by default: people walking past need not learn what is discussed inside.
    show_subjects = models.BooleanField(
        default=False,
        help_text="Everyone sees this room's meeting subjects: in the portal's calendars, on the room panel at the door "
                  "and in the room's calendar feed (when feeds may show subjects). Otherwise only the people booked "
                  "(and staff) see them in the portal; others see \"Busy\", the panel \"Booked\", the feed \"Reserved\".",
    )

    class Meta:
        ordering = ["building__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["building", "name"], name="room_unique_name_per_building"),
            # Inbound sync finds the room by its mailbox: at most one room per mailbox.
            models.UniqueConstraint(fields=["mailbox"], condition=~Q(mailbox=""), name="room_unique_mailbox"),
        ]
        indexes = [
            # Room finder filters by building and capacity.
            models.Index(fields=["building", "capacity"], name="room_building_capacity"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.building.name})"

    def clean(self) -> None:
        if self.floor_id and self.building_id and self.floor.building_id != self.building_id:
            raise ValidationError({"floor": "This floor belongs to another building."})
        if self.mailbox:
            self.mailbox = self.mailbox.strip().lower()

    @property
    def has_mailbox(self) -> bool:
        return bool(self.mailbox)

    @property
    def is_synced(self) -> bool:
        """Its reservations are meetings in Exchange: a room with a mailbox is invited to them;
        one without is named in their location and the provider's organizer account
        organizes them (README "Rooms without a mailbox")."""
        return self.sync_enabled

    @property
    def is_monitored(self) -> bool:
        """Exchange is watched for changes to its meetings: only a room mailbox's calendar is;
        the organizer account's calendar is not watched for rooms without one."""
        return self.sync_enabled and bool(self.mailbox)

    def default_arrangement(self) -> "Arrangement | None":
        for arrangement in self.arrangements.all():
            if arrangement.is_default:
                return arrangement
        return None


class RoomImport(models.Model):
    """One run of a room import from a provider's Exchange directory (``manage.py sync_rooms``,
    the admin action, the nightly job): what it found and did."""

    provider = models.ForeignKey("exchange_auth.CalendarProvider", on_delete=models.CASCADE, related_name="room_imports")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=20, default="command", help_text="command, admin or nightly.")
    room_lists = models.PositiveIntegerField(default=0)
    seen = models.PositiveIntegerField(default=0, help_text="Rooms Exchange listed.")
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    gone = models.PositiveIntegerField(default=0, help_text="Rooms newly missing from Exchange (flagged, not deleted).")
    pushed = models.PositiveIntegerField(default=0, help_text="Rooms whose capacity, equipment or floor were written back to Exchange.")
    error = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True, help_text="Per room: new, changed (what), gone, pushed, push refused.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Room import from {self.provider} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        return (f"{self.seen} room(s) in {self.room_lists} room list(s): {self.new} new, {self.changed} changed, "
                f"{self.gone} gone from Exchange, {self.pushed} pushed back")


class Arrangement(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="arrangements")
    name = models.CharField(max_length=60)
    capacity = models.PositiveIntegerField(null=True, blank=True, help_text="Seats in this layout; blank = the room's capacity.")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["room", "name"], name="arrangement_unique_name_per_room"),
            models.UniqueConstraint(fields=["room"], condition=Q(is_default=True), name="arrangement_one_default_per_room"),
        ]

    def __str__(self) -> str:
        return f"{self.room.name}: {self.name}"

    @property
    def seats(self) -> int:
        return self.capacity or self.room.capacity


class Profile(models.Model):
    """What the product knows about a person beyond Django's user: time zone and mailbox."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # False for people without an Exchange mailbox (Normal mode then uses the organizer account).
    has_mailbox = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class ApiToken(AbstractAuthToken):
    """A REST API token (django-rest-knox): the database keeps only its SHA-512 digest and
    the first characters (``token_key``, the lookup key), never the token. One per client
    of a person (an integration, a kiosk), named so an admin can tell them apart; revoked
    by deleting it; an optional expiry. Created by ``manage.py create_api_token``."""

    name = models.CharField(max_length=100, help_text="Which client uses it: an integration, a kiosk ...")

    class Meta:
        verbose_name = "API token"
        ordering = ["user", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user}, {self.token_key}…)"

    @property
    def expired(self) -> bool:
        return self.expiry is not None and self.expiry <= timezone.now()


def panel_token_digest(token: str) -> str:
    """The SHA-256 a room panel's token is stored as (the token itself is never kept)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class RoomPanel(models.Model):
    """A tablet at a room's door (the room panel, ``reservations.panel``), signed in with its own
    device token: no person's session. The database keeps only the token's SHA-256
    (``token_digest``, the lookup key) and its first characters (to tell tokens apart); the token
    is shown once, when an admin adds the panel. Revoking stops it at once and is kept as a date.

    ``user`` is the panel's own identity (made with the panel; no password, no mailbox, not
    staff): the requester of what is booked at the door, so a reservation names which panel made
    it, and the mode table has that identity organize through the provider's organizer account."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="panels")
    name = models.CharField(max_length=100, help_text="Which device: e.g. “Atlas door tablet”.")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="room_panel", editable=False)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="Last request from the device (to a minute).")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["room__name", "name"]
        verbose_name = "room panel"

    def __str__(self) -> str:
        return f"{self.name} ({self.room.name})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)
