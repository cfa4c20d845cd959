"""Admin for reservations and series. (Sync events' admin is calendar_sync's.)"""

from django.contrib import admin

from reservations.models import Attendee, Reservation, ReservationSeries


class AttendeeInline(admin.TabularInline):
    model = Attendee
    extra = 0


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["subject", "room", "start", "end", "requested_for", "state", "sync_state", "source", "subsource", "origin"]
    list_filter = ["state", "sync_state", "source", "subsource", "kind", "origin", "room__building", "room", ("start", admin.DateFieldListFilter)]
    search_fields = ["subject", "requested_for__username", "requested_for__email", "requested_by__email", "room__name", "event_id", "ical_uid"]
    date_hierarchy = "start"
    list_select_related = ["room__building", "requested_for"]
    raw_id_fields = ["requested_by", "requested_for", "series"]
    readonly_fields = ["created_at", "updated_at", "cancelled_at"]
    inlines = [AttendeeInline]
    fieldsets = [
        (None, {"fields": ["room", "arrangement", "subject", "body", "start", "end", "series", "original_start"]}),
        ("People", {"fields": ["requested_by", "requested_for", "kind"]}),
        ("State", {"fields": ["state", "state_reason", "approval_state", "source", "subsource", "created_at", "updated_at", "cancelled_at"]}),
        ("Exchange", {"fields": ["sync_state", "sync_error", "origin", "sync_mailbox", "mailbox", "organizer", "event_id", "change_key", "ical_uid"]}),
    ]


class OccurrenceInline(admin.TabularInline):
    model = Reservation
    fields = ["start", "end", "subject", "state", "sync_state"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReservationSeries)
class ReservationSeriesAdmin(admin.ModelAdmin):
    list_display = ["subject", "room", "frequency", "interval", "first_start", "until", "count", "requested_for"]
    list_filter = ["frequency", "room"]
    search_fields = ["subject", "requested_for__email", "room__name", "event_id", "ical_uid"]
    list_select_related = ["room__building", "requested_for"]
    raw_id_fields = ["requested_by", "requested_for"]
    inlines = [OccurrenceInline]
