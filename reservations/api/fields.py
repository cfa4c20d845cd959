"""The API's fields for a time, a day, an id and a person: thin DRF wrappers around
``reservations.parsing`` (shared with the portal), so every endpoint reads them alike."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reservations import parsing


def _refuse(exc: DjangoValidationError):
    raise serializers.ValidationError(exc.messages) from None


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a naive time is refused rather than guessed, an impossible
    one (Feb 30, 09:60, +25:00) is refused rather than crashing."""

    def to_internal_value(self, value):
        try:
            parsed = parsing.aware_datetime(value)
        except DjangoValidationError as exc:
            _refuse(exc)
        return self.enforce_timezone(parsed)


class DayField(serializers.DateField):
    """``YYYY-MM-DD`` within the days the product handles (no overflow at the year 9999)."""

    def to_internal_value(self, value):
        try:
            return parsing.day(value)
        except DjangoValidationError as exc:
            _refuse(exc)


class IdField(serializers.IntegerField):
    """A database id: 1 up to the bigint maximum, ASCII digits or a JSON integer."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", parsing.MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return parsing.object_id(data)
        except DjangoValidationError as exc:
            _refuse(exc)


class SubjectField(serializers.CharField):
    """A subject, made one line ("Line1\nBcc: x" is "Line1 Bcc: x"): it becomes an email's subject."""

    def to_internal_value(self, data):
        return parsing.subject(super().to_internal_value(data))


@extend_schema_field(OpenApiTypes.STR)
class PersonField(serializers.Field):
    """A person by email address (or user id). Shown as the email address."""

    default_error_messages = {
        "unknown": "No active person has the address {value}.",
        "ambiguous": "Several people share the address {value}; use their user id.",
        "invalid": "Give an email address or a user id.",
    }

    def to_internal_value(self, data):
        users = get_user_model().objects.filter(is_active=True)
        if isinstance(data, int) and not isinstance(data, bool):
            found = list(users.filter(pk=data)[:2]) if 1 <= data <= parsing.MAX_ID else []
        elif isinstance(data, str) and data.strip():
            value = data.strip()
            if "\x00" in value:  # PostgreSQL can't even compare text with a NUL in it
                self.fail("invalid")
            if parsing.looks_like_id(value):
                number = int(value)
                found = list(users.filter(pk=number)[:2]) if 1 <= number <= parsing.MAX_ID else []
            else:
                found = list(users.filter(email__iexact=value)[:2])
        else:
            self.fail("invalid")
        if not found:
            self.fail("unknown", value=data)
        if len(found) > 1:
            self.fail("ambiguous", value=data)
        return found[0]

    def to_representation(self, value):
        return value.email or value.get_username()
