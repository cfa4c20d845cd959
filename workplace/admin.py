"""Admin for the space directory, for people (profile inline on the user) and their API tokens."""

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from knox.models import get_digest_token
from knox.settings import CONSTANTS

from workplace import day_hours
from workplace.admin_filters import CappedRelatedFieldListFilter
from workplace.directory import keep_hand_set, take_exchange_values
from workplace.models import (
    ApiToken,
    Arrangement,
    Building,
    Equipment,
    Floor,
    Profile,
    Room,
    RoomImport,
    RoomPanel,
)
from workplace.panels import room_panel_create, room_panel_revoke


class FloorInline(admin.TabularInline):
    model = Floor
    extra = 0


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "timezone", "hours_shown", "nightly_time", "address", "provider_shown"]
    list_select_related = ["calendar_provider"]
    list_filter = ["calendar_provider"]
    search_fields = ["name", "code", "address"]

    @admin.display(description="Calendar hours")
    def hours_shown(self, obj) -> str:
        """The hours the portal's grids show, an end of 00:00 as 24:00 (workplace.day_hours)."""
        start, end = obj.day_span
        return f"{day_hours.clock(start)}–{day_hours.clock(end)}"

    @admin.display(description="Calendar provider", ordering="calendar_provider__name")
    def provider_shown(self, obj) -> str:
        """The building's own provider, or that the default one serves it."""
        return str(obj.calendar_provider.name) if obj.calendar_provider_id else "(default provider)"
    prepopulated_fields = {"code": ["name"]}
    inlines = [FloorInline]


@admin.register(Floor)
class FloorAdmin(admin.ModelAdmin):
    list_display = ["name", "building", "level"]
    list_filter = [("building", CappedRelatedFieldListFilter)]
    search_fields = ["name", "building__name"]
    list_select_related = ["building"]
    autocomplete_fields = ["building"]

    def get_queryset(self, request):
        # A floor's name says its building: the room form's floor box lists floors too.
        return super().get_queryset(request).select_related(*self.list_select_related)


@admin.register(Equipment)
class EquipmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class ArrangementInline(admin.TabularInline):
    model = Arrangement
    extra = 0
    min_num = 1


def _shown(value) -> str:
    if isinstance(value, dict):
        return f"{value.get('name')} (level {value.get('level')})"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return "—" if value in (None, "") else str(value)


class ApproverCandidatesView(AutocompleteJsonView):
    """What the approvers box offers as the admin types (Django's autocomplete JSON, for
    select2): active people, found by the people admin's search fields, a page at a time."""

    def process_request(self, request):
        people = get_user_model()
        return request.GET.get("term", ""), self.admin_site.get_model_admin(people), None, people._meta.pk.attname

    def get_queryset(self):
        queryset = self.model_admin.get_queryset(self.request).filter(is_active=True).order_by("username")
        queryset, duplicates = self.model_admin.get_search_results(self.request, queryset, self.term)
        return queryset.distinct() if duplicates else queryset


class ApproversWidget(AutocompleteSelectMultiple):
    """Django's autocomplete box over the members of a group (``Group.user``, the reverse of
    ``User.groups``), asking ApproverCandidatesView: thousands of people are never one select."""

    def __init__(self):
        super().__init__(Group._meta.get_field("user"), admin.site)

    def get_url(self):
        return reverse(f"{self.admin_site.name}:workplace_room_approver_candidates")


class RoomAdminForm(forms.ModelForm):
    """The room, and who approves its bookings: the members of its approvers group are edited
    here (the group "Approvers of <room>" is made when the room has none yet)."""

    approver_users = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Approvers",
        help_text="The people who approve or decline this room's bookings (members of its approvers group): type a name to add one.",
        widget=ApproversWidget(),
    )

    class Meta:
        model = Room
        exclude: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approver_users"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        if self.instance.pk and self.instance.approvers_id:
            self.fields["approver_users"].initial = list(self.instance.approvers.user_set.values_list("pk", flat=True))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("needs_approval") and not cleaned.get("approvers") and not cleaned.get("approver_users"):
            self.add_error("approver_users", "A room that needs approval needs at least one approver (or an approvers group).")
        return cleaned

    def save_approvers(self, room: Room) -> None:
        users = self.cleaned_data.get("approver_users")
        if users is None or ("approver_users" not in self.changed_data and not (room.needs_approval and not room.approvers_id)):
            return
        if room.approvers_id is None:
            if not users:
                return
            room.approvers, _ = Group.objects.get_or_create(name=f"Approvers of {room.name} ({room.building.name})"[:150])
            room.save(update_fields=["approvers"])
        room.approvers.user_set.set(users)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomAdminForm
    list_display = ["name", "building", "floor", "capacity", "mailbox", "sync_enabled", "needs_approval", "group_reservations_enabled", "reservable",
                    "exchange_gone", "differs_from_exchange"]
    list_filter = [("building", CappedRelatedFieldListFilter), "sync_enabled", "needs_approval", "reservable", "group_reservations_enabled",
                   "exchange_gone", "booking_type", "equipment"]
    search_fields = ["name", "mailbox", "building__name"]
    # The floor's str() names its building too.
    list_select_related = ["building", "floor__building"]
    filter_horizontal = ["equipment"]
    # Hundreds of floors and approvers groups at 2,000 rooms: boxes that search, not selects.
    autocomplete_fields = ["building", "floor", "approvers"]
    inlines = [ArrangementInline]
    actions = ["use_exchange_values"]
    readonly_fields = ["exchange_id", "directory_provider", "exchange_synced_at", "exchange_gone", "differences_shown", "kept_fields", "check_in_qr"]
    fieldsets = [
        (None, {"fields": ["building", "floor", "name", "description", "capacity", "equipment", "wheelchair_accessible", "reservable", "show_subjects"]}),
        ("Check-in", {"fields": ["checkin_required", "check_in_qr"]}),
        ("Exchange", {"fields": ["mailbox", "sync_enabled", "group_reservations_enabled", "booking_type", "room_list"]}),
        ("Approval", {
            "fields": ["needs_approval", "approver_users", "approvers"],
            "description": "Bookings of a room that needs approval wait until one of its approvers approves them in the "
                           "portal (Approvals); only then is the meeting written to Outlook.",
        }),
        ("Exchange room directory", {"fields": ["exchange_id", "directory_provider", "exchange_synced_at", "exchange_gone", "kept_fields",
                                                "differences_shown"]}),
    ]

    def get_queryset(self, request):
        # A room's name says its building: the autocompletes of reservations, series and feeds list
        # rooms too. (The changelist adds list_select_related only to a queryset that selects none.)
        return super().get_queryset(request).select_related(*self.list_select_related)

    def get_urls(self):
        view = self.admin_site.admin_view(ApproverCandidatesView.as_view(admin_site=self.admin_site))
        return [path("approver-candidates/", view, name="workplace_room_approver_candidates"), *super().get_urls()]

    @admin.display(description="differs from Exchange")
    def differs_from_exchange(self, obj: Room) -> str:
        return ", ".join(sorted(obj.exchange_differences or {})) or "—"

    @admin.display(description="what differs from Exchange")
    def differences_shown(self, obj: Room) -> str:
        diff = obj.exchange_differences or {}
        if not diff:
            return "Nothing (or never imported)."
        return format_html("<table><tr><th>field</th><th>product</th><th>Exchange</th></tr>{}</table>", format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((name, _shown(v.get("product")), _shown(v.get("exchange"))) for name, v in sorted(diff.items()))))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        form.save_approvers(form.instance)
        if change:
            # Fields an admin sets by hand on an imported room are kept by later imports.
            keep_hand_set(form.instance, list(form.changed_data))

    @admin.action(description="Take Exchange's values at the next import (forget hand edits)")
    def use_exchange_values(self, request, queryset):
        for room in queryset:
            take_exchange_values(room)
        self.message_user(request, f"{queryset.count()} room(s) will take Exchange's values at the next room import.")

    @admin.display(description="QR code for the door")
    def check_in_qr(self, room: Room) -> str:
        """The room's short check-in URL and its QR code (SVG made here by segno), to print
        and put on the door: scanned, it opens the check-in for the signed-in employee."""
        if not room.pk:
            return "Save the room first."
        try:
            url = settings.PUBLIC_BASE_URL + reverse("portal:room_check_in", args=[room.pk])
        except NoReverseMatch:
            return "The portal isn't installed."
        svg = segno.make(url, error="m").svg_inline(scale=6, border=2, title=f"Check in to {room.name}")
        return format_html(
            '<div class="room-qr">{}</div><p><a href="{}">{}</a></p><p class="help">Print this page (or the code) for the door.</p>',
            mark_safe(svg), url, url,  # noqa: S308 - segno's own SVG markup; the title is escaped by segno
        )


@admin.register(RoomImport)
class RoomImportAdmin(admin.ModelAdmin):
    """Every room import: counts, and per room what was new, changed, gone or pushed back."""

    list_display = ["started_at", "provider", "trigger", "seen", "new", "changed", "gone", "pushed", "error"]
    list_filter = ["provider", "trigger"]
    list_select_related = ["provider"]
    readonly_fields = [f.name for f in RoomImport._meta.fields] + ["details_shown"]
    exclude = ["details"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="per room")
    def details_shown(self, obj: RoomImport) -> str:
        d = obj.details or {}
        rows = [(m, "new", "") for m in d.get("new", [])]
        for mailbox, what in (d.get("changed") or {}).items():
            parts = [f"{k}: {_shown(v['was'])} → {_shown(v['now'])}" for k, v in (what.get("updated") or {}).items()]
            parts += [f"{k} kept (Exchange: {_shown(v['exchange'])})" for k, v in (what.get("kept") or {}).items()]
            rows.append((mailbox, "changed", "; ".join(parts)))
        rows += [(m, "gone from Exchange", "") for m in d.get("gone", [])]
        rows += [(m, "pushed back", "") for m in d.get("pushed", [])]
        rows += [(m, "push refused", why) for m, why in (d.get("push_refused") or {}).items()]
        return format_html("<table>{}</table>", format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows))


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    extra = 1
    max_num = 1


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PersonAdmin(DjangoUserAdmin):
    inlines = [ProfileInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active"]
    # A room that needs approval has its approvers group: as many groups as such rooms.
    list_filter = ["is_staff", "is_superuser", "is_active", ("groups", CappedRelatedFieldListFilter)]
    autocomplete_fields = ["groups"]
    filter_horizontal = ["user_permissions"]


class ApiTokenAddForm(forms.ModelForm):
    """Adding a token generates it; the admin sees it once, in the confirmation message."""

    class Meta:
        model = ApiToken
        fields = ["user", "name", "expiry"]

    def save(self, commit=True):
        token = super().save(commit=False)
        token.digest, self.token = get_digest_token()
        token.token_key = self.token[:CONSTANTS.TOKEN_KEY_LENGTH]
        if commit:
            token.save()
        return token


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every REST API token: whose, which client, when it expires. Delete one to revoke it."""

    list_display = ["name", "user", "token_key", "created", "expiry", "is_expired"]
    list_filter = ["created", "expiry"]
    search_fields = ["name", "token_key", "user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["token_key", "created"]

    @admin.display(boolean=True, description="expired")
    def is_expired(self, obj: ApiToken) -> bool:
        return obj.expired

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user", "name", "expiry"] if obj is None else ["user", "name", "token_key", "created", "expiry"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "token_key", "created"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(request, f"The new token (shown only now, copy it): {form.token}", messages.WARNING)


class RoomPanelAddForm(forms.ModelForm):
    class Meta:
        model = RoomPanel
        fields = ["room", "name"]


@admin.register(RoomPanel)
class RoomPanelAdmin(admin.ModelAdmin):
    """Room panels (tablets at the door): add one to get its sign-in URL (shown once), revoke one
    with the action; a revoked panel's next request is refused and it shows "signed out"."""

    form = RoomPanelAddForm
    list_display = ["name", "room", "token_prefix", "created_at", "last_seen_at", "is_revoked"]
    list_filter = [("room__building", CappedRelatedFieldListFilter), "revoked_at"]
    search_fields = ["name", "room__name", "token_prefix"]
    list_select_related = ["room__building"]
    raw_id_fields = ["room"]
    actions = ["revoke"]

    @admin.display(boolean=True, description="revoked")
    def is_revoked(self, obj: RoomPanel) -> bool:
        return obj.revoked

    def get_fields(self, request, obj=None):
        return ["room", "name"] if obj is None else ["room", "name", "token_prefix", "created_at", "last_seen_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["room", "token_prefix", "created_at", "last_seen_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        panel, token = room_panel_create(room=form.cleaned_data["room"], name=form.cleaned_data["name"])
        obj.pk = panel.pk
        obj.__dict__.update({k: v for k, v in panel.__dict__.items() if not k.startswith("_")})
        obj._state = panel._state  # saved: the admin's "added" page and log point at the new row
        url = request.build_absolute_uri(reverse("portal:panel")) + f"?token={token}"
        self.message_user(
            request,
            format_html("Open this address on the tablet at the door (shown only now, copy it): <code>{}</code>", url),
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected panels (their tablets are signed out at once)")
    def revoke(self, request, queryset):
        panels = list(queryset.filter(revoked_at__isnull=True))
        for panel in panels:
            room_panel_revoke(panel=panel)
        self.message_user(request, f"{len(panels)} panel(s) revoked.")
