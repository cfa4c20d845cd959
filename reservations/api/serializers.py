"""Input and output shapes of the v1 API. Input serializers only parse; the
services decide (HackSoft "thin APIs")."""

import copy

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange_auth.modes import REST_API_SUBSOURCE
from reservations.api.fields import AwareDateTimeField, DayField, IdField, PersonField, SubjectField
from reservations.checkin_window import CheckInRules
from reservations.fastpaths import reservation_to_dict
from reservations.models import ApprovalState, Attendee, CheckInChannel, Kind, Source, State
from reservations.recurrence import FREQUENCIES, INDEXES, Recurrence
from workplace import day_hours
from workplace.models import Arrangement, BookingType, Room

# --- fields ------------------------------------------------------------------------------


class ApiOnlyChoiceField(serializers.CharField):
    """``source`` / ``subsource``: set by the server. Sending the value the API
    sets anyway is accepted (so a GET body can be sent back); any other is refused."""

    def __init__(self, *, fixed: str, **kwargs):
        self.fixed = fixed
        super().__init__(required=False, allow_blank=True, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value != self.fixed:
            raise serializers.ValidationError(f"Set by the server: reservations made through the API always carry {self.fixed!r}.")
        return value


# --- input -------------------------------------------------------------------------------


class AttendeeInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(choices=[Attendee.Type.REQUIRED, Attendee.Type.OPTIONAL], default=Attendee.Type.REQUIRED)


class RecurrenceInputSerializer(serializers.Serializer):
    frequency = serializers.ChoiceField(choices=FREQUENCIES)
    interval = serializers.IntegerField(min_value=1, max_value=99, default=1)
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=7), required=False, default=list, max_length=7)
    until = DayField(required=False, allow_null=True, default=None)
    count = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    index = serializers.ChoiceField(
        choices=INDEXES, required=False, allow_null=True, default=None,
        help_text="Monthly only: on the first/second/third/fourth/last of a weekday (weekdays: one ISO day, "
                  "default the first day's) — Graph's relativeMonthly; absent: the same day of the month.",
    )


def _room_field(**kwargs):
    return serializers.PrimaryKeyRelatedField(
        queryset=Room.objects.select_related("building").prefetch_related("arrangements"), pk_field=IdField(), **kwargs
    )


@extend_schema_field(AttendeeInputSerializer(many=True))
class AttendeesField(serializers.ListField):
    """Attendees, validated by ``AttendeeInputSerializer`` only when some are sent:
    the nested serializer is built on demand, not on every request."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.DictField(), max_length=500, **kwargs)

    def to_internal_value(self, data):
        items = super().to_internal_value(data)
        if not items:
            return []
        nested = AttendeeInputSerializer(data=items, many=True)
        if not nested.is_valid():
            raise serializers.ValidationError(nested.errors)
        return nested.validated_data


@extend_schema_field(RecurrenceInputSerializer)
class RecurrenceField(serializers.DictField):
    """A recurrence pattern, validated by ``RecurrenceInputSerializer`` when sent."""

    def to_internal_value(self, data):
        nested = RecurrenceInputSerializer(data=super().to_internal_value(data))
        if not nested.is_valid():
            raise serializers.ValidationError(nested.errors)
        return nested.validated_data


class FreshFieldsMixin:
    """Each instance's fields as shallow copies of the declared ones, instead of DRF's deep
    copy (``Field.__deepcopy__`` re-runs ``__init__`` with deep-copied arguments; building the
    fields was the biggest serializer cost of a booking).

    A declared field is never bound (DRF binds copies), so its copy starts unbound and
    ``bind`` sets the copy's own name, parent, label and source. What the copies share with
    the declared field is only read while parsing: error messages, validators, choices, a
    ListField/DictField's child (stateless), a queryset (``get_queryset`` clones it with
    ``.all()`` per call). Safe while no declared field's validation writes to the field:
    true of every field declared on the classes using this mixin (DRF's own field types
    and the parsers above), and asserted by tests/reservations/test_api_serializers.py."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Validators are computed lazily on first use; compute them now, so that no
        # validation (in any thread) writes to a shared field.
        for field in cls._declared_fields.values():
            for part in (field, getattr(field, "child", None)):
                if part is not None:
                    part.validators  # noqa: B018 (the property caches them)

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class ReservationCreateSerializer(FreshFieldsMixin, serializers.Serializer):
    room = IdField(help_text="Room id.")
    arrangement = serializers.PrimaryKeyRelatedField(queryset=Arrangement.objects.all(), pk_field=IdField(), required=False, allow_null=True, default=None)
    subject = SubjectField(max_length=255)
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    requested_for = PersonField(required=False, default=None)
    attendees = AttendeesField(required=False, default=list)
    kind = serializers.ChoiceField(choices=Kind.choices, default=Kind.STANDARD)
    recurrence = RecurrenceField(required=False, allow_null=True, default=None)
    online_meeting = serializers.BooleanField(default=False, help_text="A Teams meeting: its join link comes from Exchange (online_meeting_url).")
    source = ApiOnlyChoiceField(fixed=Source.REST_API)
    subsource = ApiOnlyChoiceField(fixed=REST_API_SUBSOURCE)

    def recurrence_value(self) -> Recurrence | None:
        data = self.validated_data.get("recurrence")
        if not data:
            return None
        return Recurrence(
            frequency=data["frequency"], interval=data["interval"], weekdays=tuple(data["weekdays"]),
            until=data["until"], count=data["count"], index=data.get("index"),
        )


class ReservationUpdateSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["occurrence", "series"], default="occurrence")
    room = _room_field(required=False)
    arrangement = serializers.PrimaryKeyRelatedField(queryset=Arrangement.objects.all(), pk_field=IdField(), required=False, allow_null=True)
    subject = SubjectField(max_length=255, required=False)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    start = AwareDateTimeField(required=False)
    end = AwareDateTimeField(required=False)
    requested_for = PersonField(required=False)
    attendees = AttendeesField(required=False)
    source = ApiOnlyChoiceField(fixed=Source.REST_API)
    subsource = ApiOnlyChoiceField(fixed=REST_API_SUBSOURCE)

    CHANGEABLE = ("room", "arrangement", "subject", "body", "start", "end", "requested_for", "attendees")

    def changes(self) -> dict:
        return {key: value for key, value in self.validated_data.items() if key in self.CHANGEABLE}


CANCEL_MEETING_HELP = ("Also cancel the meeting on people's calendars (default). false keeps the meeting and only releases the room; refused with 400 where the product can't choose: a meeting the room organizes is always cancelled, one created in Outlook is declined by the room.")


class CancelSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["occurrence", "series"], default="occurrence")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    cancel_meeting = serializers.BooleanField(required=False, default=True, help_text=CANCEL_MEETING_HELP)


class DeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=400, required=False, allow_blank=True, default="",
                                   help_text="Why (optional): the requester reads it in the email and on the reservation.")


class BulkCancelSerializer(serializers.Serializer):
    ids = serializers.ListField(child=IdField(), min_length=1, max_length=200)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    cancel_meeting = serializers.BooleanField(required=False, default=True, help_text=CANCEL_MEETING_HELP)


class ReservationFilterSerializer(serializers.Serializer):
    state = serializers.MultipleChoiceField(choices=State.choices, required=False)
    room = IdField(required=False)
    series = IdField(required=False)
    requested_for = PersonField(required=False)
    starts_after = AwareDateTimeField(required=False, help_text="Reservations ending after this moment.")
    starts_before = AwareDateTimeField(required=False, help_text="Reservations starting before this moment.")


class RoomFilterSerializer(serializers.Serializer):
    building = serializers.CharField(required=False, help_text="Building code, e.g. hq.")
    floor = IdField(required=False)
    capacity_min = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
    equipment = serializers.CharField(required=False, help_text="Comma-separated equipment slugs; a room must have all.")
    arrangement = serializers.CharField(required=False)
    free_from = AwareDateTimeField(required=False)
    free_to = AwareDateTimeField(required=False)

    def validate(self, attrs):
        has_from, has_to = "free_from" in attrs, "free_to" in attrs
        if has_from != has_to:
            raise serializers.ValidationError({"free_to" if has_from else "free_from": ["Give both free_from and free_to."]})
        if has_from and attrs["free_to"] <= attrs["free_from"]:
            raise serializers.ValidationError({"free_to": ["free_to must be after free_from."]})
        return attrs


class AvailabilityFilterSerializer(serializers.Serializer):
    date = DayField(required=False, help_text="Day in the building's time zone (default: today).")


# --- output ------------------------------------------------------------------------------


class AttendeeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    type = serializers.CharField()
    response = serializers.CharField()


class SyncSerializer(serializers.Serializer):
    state = serializers.CharField(source="sync_state")
    sync_mailbox = serializers.CharField()
    event_id = serializers.CharField()
    change_key = serializers.CharField()
    ical_uid = serializers.CharField()
    last_error = serializers.CharField(source="sync_error")


class SeriesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    frequency = serializers.CharField()
    interval = serializers.IntegerField()
    weekdays = serializers.ListField(child=serializers.IntegerField())
    index = serializers.SerializerMethodField(help_text="Monthly by position: first .. last; null: same day of the month.")
    until = serializers.DateField()
    count = serializers.IntegerField()

    def get_index(self, series) -> str | None:
        return series.index or None


class CheckInStatusSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="The room requires check-in: without one by `closes` the reservation is released.")
    opens = serializers.DateTimeField(allow_null=True, help_text="When check-in opens (null when not required).")
    closes = serializers.DateTimeField(allow_null=True, help_text="When check-in closes (null when not required).")
    checked_in_at = serializers.DateTimeField(allow_null=True)
    channel = serializers.ChoiceField(choices=[("", "not checked in"), *CheckInChannel.choices], help_text="Where it was checked in; empty if not.")
    released_at = serializers.DateTimeField(allow_null=True, help_text="When it was released for want of a check-in.")


class ReservationSerializer(serializers.Serializer):
    """Times come in the building's time zone with their offset.

    A plain Serializer, not a ModelSerializer: this shape is rendered on every
    create, and model introspection on each instantiation is what a hot path
    can do without."""

    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    arrangement = serializers.IntegerField(source="arrangement_id", allow_null=True)
    subject = serializers.CharField()
    body = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    requested_for = PersonField()
    requested_by = PersonField()
    attendees = AttendeeSerializer(many=True)
    kind = serializers.ChoiceField(choices=Kind.choices)
    source = serializers.ChoiceField(choices=Source.choices)
    subsource = serializers.CharField()
    state = serializers.ChoiceField(choices=State.choices)
    state_reason = serializers.CharField()
    approval_state = serializers.ChoiceField(
        choices=ApprovalState.choices,
        help_text="External approval (SPEC §2): awaiting_approval while the room's delegate in Exchange, or its approvers "
                  "in the product, decide; then accepted or declined. not_required for rooms without approval.",
    )
    origin = serializers.CharField()
    series = SeriesSerializer(allow_null=True)
    online_meeting = serializers.BooleanField()
    online_meeting_url = serializers.CharField(help_text="The Teams join link once Exchange made it, else empty.")
    sync = SyncSerializer(source="*")
    check_in = CheckInStatusSerializer(source="*")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance):
        # The fields above document the shape (OpenAPI); an ORM bypass builds it
        # (reservations.fastpaths says why). The check-in properties are read once per
        # serializer (a listing's rows share the child serializer).
        if getattr(self, "_checkin_rules", None) is None:
            self._checkin_rules = CheckInRules.now()
        return reservation_to_dict(instance, self._checkin_rules)


class ArrangementSerializer(serializers.ModelSerializer):
    seats = serializers.IntegerField()

    class Meta:
        model = Arrangement
        fields = ["id", "name", "seats", "is_default"]


class RoomSerializer(serializers.ModelSerializer):
    building = serializers.SlugRelatedField(slug_field="code", read_only=True)
    timezone = serializers.CharField(source="building.timezone")
    # The building's hours (Building.day_starts/day_ends), read-only like the rest of the building
    # here: buildings are edited in the admin, not through the API.
    day_starts = serializers.SerializerMethodField(
        help_text="When the portal's calendars of the room's building start each day, HH:MM local time (e.g. 07:00; 00:00 "
                  "for a 24-hour site).")
    day_ends = serializers.SerializerMethodField(
        help_text="When they end, HH:MM local time, after day_starts; 24:00 means until midnight.")
    floor = serializers.StringRelatedField(allow_null=True, help_text="null for a room without a floor.")
    mailbox = serializers.CharField(help_text="The room's Exchange mailbox; empty for a room without one.")
    equipment = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    arrangements = ArrangementSerializer(many=True)
    synced = serializers.BooleanField(source="is_synced", help_text="Its reservations are meetings in Exchange.")
    outlook_changes_synced = serializers.BooleanField(
        source="is_monitored",
        help_text="Changes made in Outlook to its meetings reach the product. False for a synced room without a mailbox: "
                  "the provider's organizer account organizes its meetings and its calendar is not watched, so change "
                  "those reservations here, not in Outlook.",
    )
    floor_level = serializers.IntegerField(source="floor.level", allow_null=True, help_text="The floor's number; null without a floor.")
    wheelchair_accessible = serializers.BooleanField()
    booking_type = serializers.ChoiceField(choices=BookingType.choices, help_text="Exchange's bookingType: standard or reserved.")
    room_list = serializers.CharField(help_text="The Exchange room list (its address) the room is in; empty if none.")
    gone_from_exchange = serializers.BooleanField(
        source="exchange_gone", help_text="The last room import didn't find the room in Exchange's directory.")
    checkin_required = serializers.SerializerMethodField(
        help_text="Reservations of this room must be checked in (the room's setting, else the instance default).",
    )
    show_subjects = serializers.BooleanField(
        help_text="The room's privacy setting: everyone sees its meetings' subjects (the portal's calendars, the room panel "
                  "at the door); otherwise only the people booked and staff do, others see \"Busy\" (the panel \"Booked\").",
    )

    class Meta:
        model = Room
        fields = [
            "id", "name", "building", "timezone", "day_starts", "day_ends", "floor", "floor_level", "capacity", "equipment", "arrangements", "mailbox",
            "synced", "outlook_changes_synced", "group_reservations_enabled", "wheelchair_accessible", "booking_type", "room_list",
            "gone_from_exchange", "checkin_required", "show_subjects",
        ]
        read_only_fields = fields

    def get_day_starts(self, room: Room) -> str:
        return day_hours.clock(room.building.day_span[0])

    def get_day_ends(self, room: Room) -> str:
        return day_hours.clock(room.building.day_span[1])

    def get_checkin_required(self, room: Room) -> bool:
        if getattr(self, "_checkin_rules", None) is None:
            self._checkin_rules = CheckInRules.now()
        return self._checkin_rules.required(room)


class BusySlotSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    state = serializers.CharField()


class AvailabilitySerializer(serializers.Serializer):
    room = serializers.IntegerField()
    date = serializers.DateField()
    timezone = serializers.CharField()
    busy = BusySlotSerializer(many=True)


class CancelResultSerializer(serializers.Serializer):
    cancelled = ReservationSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    extra = serializers.DictField()


class FeedSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user", "room"])
    url = serializers.URLField(allow_null=True, help_text="The secret iCalendar URL; null when it can't be decrypted any more (reset it).")
    created_at = serializers.DateTimeField()
    rotated_at = serializers.DateTimeField(allow_null=True)
    last_accessed_at = serializers.DateTimeField(allow_null=True)
