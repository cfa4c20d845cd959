"""The instance properties there are (SPEC §3): names, types, defaults, allowed values.

Pure data: ``SPECS`` maps each name to its ``PropertySpec``, which parses the
admin's text into a typed value (or says what is wrong with it) and back. The
stored values and their caches are ``exchange_auth.properties``; this module
imports no models, so ``models`` can validate a row against it.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from exchange_auth.modes import Mode

SYNC_INTEGRATION_MODE = "sn_wsd_rsvsync.sync_integration_mode"
MAX_EVENT_RETRY_COUNT = "sn_wsd_rsvsync.max_event_retry_count"
EXCHANGE_CALLBACK_TIME_LIMIT = "sn_wsd_rsvsync.exchange_callback_time_limit"
USE_USER_DEFAULT_TZ = "sn_wsd_rsvsync.use_user_default_tz"
CREATE_BLOCKING_RSV = "sn_wsd_rsvsync.create_blocking_rsv"
PAST_SYNC_PERIOD_MONTHS = "sn_wsd_rsvsync.past_sync_period_months"
BLOCKER_USER = "sn_wsd_rsv.blocker_user"
# Check-in and the release of no-shows (reservations.services.checkin / release).
CHECKIN_REQUIRED_DEFAULT = "sn_wsd_rsv.checkin_required_default"
CHECKIN_BEFORE_MINUTES = "sn_wsd_rsv.checkin_before_minutes"
CHECKIN_AFTER_MINUTES = "sn_wsd_rsv.checkin_after_minutes"
CHECKIN_ANYONE_AT_PANEL = "sn_wsd_rsv.checkin_anyone_at_panel"
NOSHOW_SERIES_LIMIT = "sn_wsd_rsv.noshow_series_limit"
NOSHOW_CONFIRM_HOURS = "sn_wsd_rsv.noshow_confirm_hours"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class PropertySpec:
    name: str
    type: str  # "choice" | "int" | "bool" | "email"
    default: Any
    description: str
    choices: tuple[str, ...] = field(default=())
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw``, or ValidationError with a sentence an admin understands."""
        text = (raw or "").strip()
        if self.type == "choice":
            for choice in self.choices:
                if text.lower() == choice.lower():
                    return choice
            raise ValidationError(f"{self.name} must be one of {', '.join(self.choices)} (got {text!r}).")
        if self.type == "int":
            try:
                number = int(text)
            except ValueError:
                raise ValidationError(f"{self.name} must be a whole number (got {text!r}).") from None
            if self.minimum is not None and number < self.minimum:
                raise ValidationError(f"{self.name} must be at least {self.minimum} (got {number}).")
            if self.maximum is not None and number > self.maximum:
                raise ValidationError(f"{self.name} must be at most {self.maximum} (got {number}).")
            return number
        if self.type == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValidationError(f"{self.name} must be true or false (got {text!r}).")
        if self.type == "email":
            if not text:
                return ""
            try:
                validate_email(text)
            except ValidationError:
                raise ValidationError(f"{self.name} must be an email address or empty (got {text!r}).") from None
            return text.lower()
        raise AssertionError(f"unknown property type {self.type}")

    def serialize(self, value: Any) -> str:
        if self.type == "bool":
            return "true" if value else "false"
        return str(value)


SPECS: dict[str, PropertySpec] = {
    spec.name: spec
    for spec in (
        PropertySpec(
            SYNC_INTEGRATION_MODE, "choice", Mode.NORMAL.value,
            "How reservations sync with Exchange: Normal, Strict or Personal (see the mode table).",
            choices=(Mode.STRICT.value, Mode.PERSONAL.value, Mode.NORMAL.value),
        ),
        PropertySpec(
            MAX_EVENT_RETRY_COUNT, "int", 10,
            "Attempts before a sync event is marked error (an admin can re-process it).", minimum=1, maximum=100,
        ),
        PropertySpec(
            EXCHANGE_CALLBACK_TIME_LIMIT, "int", 18000,
            "Seconds to wait for the room's answer before an awaiting reservation is rejected.", minimum=60,
        ),
        PropertySpec(
            USE_USER_DEFAULT_TZ, "bool", False,
            "Show and write meeting times in the requested-for user's time zone instead of the building's.",
        ),
        PropertySpec(
            CREATE_BLOCKING_RSV, "bool", True,
            "Create a blocking reservation when a meeting booked in Outlook can't be linked to a reservation.",
        ),
        PropertySpec(
            PAST_SYNC_PERIOD_MONTHS, "int", 2,
            "How many months back the nightly sync looks.", minimum=0, maximum=24,
        ),
        PropertySpec(
            BLOCKER_USER, "email", "",
            "Invitee of blocker reservations in Personal mode instead of the requested-for user (optional).",
        ),
        PropertySpec(
            CHECKIN_REQUIRED_DEFAULT, "bool", False,
            "Reservations of rooms that don't say otherwise must be checked in, or they are released.",
        ),
        PropertySpec(
            CHECKIN_BEFORE_MINUTES, "int", 10,
            "Check-in opens this many minutes before a reservation starts.", minimum=0, maximum=240,
        ),
        PropertySpec(
            CHECKIN_AFTER_MINUTES, "int", 15,
            "Check-in closes this many minutes after a reservation starts; not checked in by then, it is released.",
            minimum=1, maximum=240,
        ),
        PropertySpec(
            CHECKIN_ANYONE_AT_PANEL, "bool", True,
            "Anyone at a room's panel may check its meeting in (else only its people, at the portal, QR code or API).",
        ),
        PropertySpec(
            NOSHOW_SERIES_LIMIT, "int", 3,
            "After this many consecutive released occurrences the organizer is asked to confirm the series.",
            minimum=1, maximum=50,
        ),
        PropertySpec(
            NOSHOW_CONFIRM_HOURS, "int", 24,
            "Hours the organizer has to confirm a series after repeated no-shows; unconfirmed, the rest is released.",
            minimum=1, maximum=24 * 14,
        ),
    )
}


def spec_for(name: str) -> PropertySpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"Unknown instance property {name!r}; known: {', '.join(SPECS)}") from None
