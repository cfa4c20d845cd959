"""The space directory: buildings, floors, rooms, arrangements, equipment, people."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from knox.models import AbstractAuthToken


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

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


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


class Room(models.Model):
    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="rooms")
    floor = models.ForeignKey(Floor, on_delete=models.PROTECT, related_name="rooms", null=True, blank=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    equipment = models.ManyToManyField(Equipment, blank=True, related_name="rooms")
    # The room's Exchange address; blank when the room has no mailbox.
    mailbox = models.EmailField(blank=True, default="")
    sync_enabled = models.BooleanField(default=False, help_text="Keep this room's reservations in sync with Exchange.")
    group_reservations_enabled = models.BooleanField(default=False)
    reservable = models.BooleanField(default=True)
    show_subjects = models.BooleanField(
        default=False,
        help_text="Everyone sees reservations' subjects in the portal's calendars; otherwise only the people "
                  "booked (and staff) do, others see \"Busy\".",
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
        if self.sync_enabled and not self.mailbox:
            raise ValidationError({"sync_enabled": "A room can only be synced when it has a room mailbox."})
        if self.mailbox:
            self.mailbox = self.mailbox.strip().lower()

    @property
    def has_mailbox(self) -> bool:
        return bool(self.mailbox)

    @property
    def is_synced(self) -> bool:
        return self.sync_enabled and bool(self.mailbox)

    def default_arrangement(self) -> "Arrangement | None":
        for arrangement in self.arrangements.all():
            if arrangement.is_default:
                return arrangement
        return None


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
