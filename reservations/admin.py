"""Admin for reservations and series. (Sync events' admin is calendar_sync's.)"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from reservations import feeds, services
from reservations.exceptions import ReservationError
from reservations.models import Attendee, CalendarFeed, Reservation, ReservationSeries
from workplace.admin_filters import CappedRelatedFieldListFilter
from workplace.models import Arrangement, Room
from workplace.zones import local_time


class AttendeeInline(admin.TabularInline):
    model = Attendee
    extra = 0


class SubsourceFilter(admin.SimpleListFilter):
    """Subsources with a name for the empty one (a filter link without text is unreadable to screen readers)."""

    title = "subsource"
    parameter_name = "subsource"

    def lookups(self, request, model_admin):
        values = Reservation.objects.order_by("subsource").values_list("subsource", flat=True).distinct()
        return [(value or "-", value or "(none)") for value in values]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(subsource="" if value == "-" else value)


def _unquoted(text: str) -> str:
    """A search term as Django's admin search takes it: "a phrase" in quotes is one term."""
    return unescape_string_literal(text) if len(text) > 1 and text[0] in "\"'" and text[-1] == text[0] else text


class ReservationAdminForm(forms.ModelForm):
    """The arrangement is one of the reservation's room's (a handful), not a select of every
    room's layouts (2,000 rooms, each with its own)."""

    class Meta:
        model = Reservation
        exclude: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("arrangement")
        if field is None:
            return
        room = self.data.get(self.add_prefix("room")) if self.is_bound else self.instance.room_id
        room = int(room) if str(room or "").isdigit() else None
        field.queryset = Arrangement.objects.filter(room_id=room).select_related("room") if room else Arrangement.objects.none()
        field.help_text = "One of the room's layouts (a new reservation: save it with its room, then choose)."


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    form = ReservationAdminForm
    list_display = ["subject", "room", "starts", "ends", "requested_for", "state", "approval_state", "sync_state", "source", "subsource", "origin"]
    list_filter = ["state", "approval_state", "sync_state", "source", SubsourceFilter, "kind", "origin", ("room__building", CappedRelatedFieldListFilter),
                   ("room", CappedRelatedFieldListFilter), ("start", admin.DateFieldListFilter)]
    # What the search looks in; get_search_results says how (index-friendly).
    search_fields = ["subject", "room__name", "requested_for__username", "requested_for__email", "requested_by__email", "event_id", "ical_uid"]
    # Said under the box by admin/reservations/reservation/change_list.html (not search_help_text:
    # its aria-describedby on the icon-labelled box is a serious axe-core violation, label-title-only).
    search_hint = ("Search finds words of the subject; the start of a room's name, or of a person's username or e-mail "
                   "(organizer or requester); a whole Graph event id or iCalUId.")
    date_hierarchy = "start"
    list_select_related = ["room__building", "requested_for"]
    # Hundreds of thousands of rows: no second count(*) of the whole table on every page.
    show_full_result_count = False
    # 2,000 rooms, thousands of people and series: boxes that search, not selects.
    autocomplete_fields = ["room", "requested_by", "requested_for", "series"]
    readonly_fields = ["created_at", "updated_at", "cancelled_at", "approval_requested_at", "approval_decided_by"]
    inlines = [AttendeeInline]
    actions = ["approve_selected", "decline_selected"]

    def get_search_results(self, request, queryset, search_term):
        """Each arm is one an index serves, and none joins another table into the scan: the
        Graph event id and iCalUId whole (rsv_event_id, rsv_ical_uid); the rooms whose name and
        the people whose username or e-mail start with what was typed, found first in their own
        small tables (then rsv_room_time, rsv_requested_for_start and requested_by's index);
        the subject holding every word typed ("a phrase" in quotes as one), as Django's search."""
        term = _unquoted(search_term.strip())
        if not term:
            return queryset, False
        people = get_user_model().objects.filter(Q(username__istartswith=term) | Q(email__istartswith=term)).values("pk")
        rooms = Room.objects.filter(name__istartswith=term).values("pk")
        words = Q()
        for word in smart_split(search_term):
            words &= Q(subject__icontains=_unquoted(word))
        found = words | Q(event_id=term) | Q(ical_uid=term) | Q(room__in=rooms) | Q(requested_for__in=people) | Q(requested_by__in=people)
        return queryset.filter(found), False

    @admin.display(description="Start (building time)", ordering="start")
    def starts(self, obj: Reservation) -> str:
        return local_time(obj.start, obj.room.building.timezone)

    @admin.display(description="End (building time)", ordering="end")
    def ends(self, obj: Reservation) -> str:
        return local_time(obj.end, obj.room.building.timezone)
    fieldsets = [
        (None, {"fields": ["room", "arrangement", "subject", "body", "start", "end", "series", "original_start"]}),
        ("People", {"fields": ["requested_by", "requested_for", "kind"]}),
        ("State", {"fields": ["state", "state_reason", "approval_state", "approval_requested_at", "approval_decided_by", "source", "subsource", "created_at", "updated_at", "cancelled_at"]}),
        ("Exchange", {"fields": ["sync_state", "sync_error", "origin", "sync_mailbox", "mailbox", "organizer", "event_id", "change_key", "ical_uid"]}),
    ]

    def _decide(self, request, queryset, approve: bool) -> None:
        """Approve / decline the selected reservations waiting for the product's approval (as the
        portal's Approvals page does); the others are named and left alone."""
        done, skipped = 0, []
        for reservation in queryset.select_related("room__building", "requested_for", "requested_by"):
            try:
                if approve:
                    services.reservation_approve(actor=request.user, reservation=reservation)
                else:
                    services.reservation_decline(actor=request.user, reservation=reservation)
                done += 1
            except ReservationError as exc:
                skipped.append(f"{reservation.subject} ({reservation.pk}): {exc.message}")
        if done:
            self.message_user(request, f"{'Approved' if approve else 'Declined'} {done} reservation(s).", messages.SUCCESS)
        for line in skipped:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Approve selected reservations (waiting for approval in the product)")
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Decline selected reservations (waiting for approval in the product)")
    def decline_selected(self, request, queryset):
        self._decide(request, queryset, approve=False)


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
    list_display = ["subject", "room", "frequency", "interval", "first_starts", "until", "count", "requested_for"]
    list_filter = ["frequency", ("room", CappedRelatedFieldListFilter)]
    search_fields = ["subject", "requested_for__email", "room__name", "event_id", "ical_uid"]
    list_select_related = ["room__building", "requested_for"]
    autocomplete_fields = ["room", "requested_by", "requested_for"]
    inlines = [OccurrenceInline]

    @admin.display(description="First start (building time)", ordering="first_start")
    def first_starts(self, obj: ReservationSeries) -> str:
        return local_time(obj.first_start, obj.room.building.timezone)


class RoomFeedForm(forms.ModelForm):
    """Adding a feed here makes a room's feed (employees make their own in the portal)."""

    class Meta:
        model = CalendarFeed
        fields = ["room"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["room"].required = True
        self.fields["room"].queryset = self.fields["room"].queryset.filter(calendar_feed__isnull=True).select_related("building")
        # The autocomplete offers every room; one that has its feed is refused here.
        self.fields["room"].error_messages["invalid_choice"] = "This room has its feed already: reset its link on that feed instead."


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Feeds at secret URLs. A room feed's URL is shown to admins; an employee's only to its
    owner (an admin can reset it, e.g. when it leaked, without seeing the new one)."""

    list_display = ["owner", "kind", "created_at", "rotated_at", "last_accessed_at"]
    list_filter = [("room", admin.EmptyFieldListFilter), ("user", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "user__email", "room__name", "room__building__name"]
    list_select_related = ["user", "room__building"]
    autocomplete_fields = ["room"]
    actions = ["reset_links"]
    readonly_fields = ["owner", "feed_url", "created_at", "rotated_at", "last_accessed_at", "content_changed_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RoomFeedForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["room"] if obj is None else self.readonly_fields

    @admin.display(description="owner")
    def owner(self, obj: CalendarFeed) -> str:
        if obj.user_id:
            return f"{obj.user.get_full_name() or obj.user.get_username()} (employee)"
        return f"{obj.room.name}, {obj.room.building.name} (room)"

    @admin.display(description="feed URL")
    def feed_url(self, obj: CalendarFeed) -> str:
        if obj.user_id:
            return "Shown only to the employee, in the portal."
        token = feeds.calendar_feed_token(feed=obj)
        if token is None:
            return "Can't be decrypted with TOKEN_ENCRYPTION_KEY: reset the link."
        # No request here: the address the site is published at.
        return format_html('<input type="text" value="{}" readonly size="80" aria-label="Feed URL">', feeds.feed_url(token=token))

    def save_model(self, request, obj, form, change):
        """Only adding saves (the change page is read-only); the token is made by the service,
        hashed and encrypted, never by the form."""
        if change:
            return
        link = feeds.calendar_feed_rotate(room=form.cleaned_data["room"])
        obj.pk, obj.room, obj.created_at = link.feed.pk, link.feed.room, link.feed.created_at
        obj._state.adding = False
        url = feeds.feed_url(token=link.token, request=request)
        self.message_user(request, format_html("Feed of {}: {}", link.feed.room, url), messages.SUCCESS)

    @admin.action(description="Reset the links of the selected feeds (old URLs stop working)")
    def reset_links(self, request, queryset):
        for feed in queryset.select_related("user", "room__building"):
            link = feeds.calendar_feed_rotate(user=feed.user, room=feed.room)
            if feed.room_id:
                url = feeds.feed_url(token=link.token, request=request)
                self.message_user(request, format_html("New link for {}: {}", feed.room, url), messages.SUCCESS)
            else:
                self.message_user(request, f"New link for {feed.user}'s feed (shown to them in the portal).", messages.SUCCESS)
