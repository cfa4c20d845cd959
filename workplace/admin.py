"""Admin for the space directory, for people (profile inline on the user) and their API tokens."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from knox.models import get_digest_token
from knox.settings import CONSTANTS

from workplace.models import ApiToken, Arrangement, Building, Equipment, Floor, Profile, Room


class FloorInline(admin.TabularInline):
    model = Floor
    extra = 0


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "timezone", "address", "provider_shown"]
    list_select_related = ["calendar_provider"]
    list_filter = ["calendar_provider"]
    search_fields = ["name", "code", "address"]

    @admin.display(description="Calendar provider", ordering="calendar_provider__name")
    def provider_shown(self, obj) -> str:
        """The building's own provider, or that the default one serves it."""
        return str(obj.calendar_provider.name) if obj.calendar_provider_id else "(default provider)"
    prepopulated_fields = {"code": ["name"]}
    inlines = [FloorInline]


@admin.register(Floor)
class FloorAdmin(admin.ModelAdmin):
    list_display = ["name", "building", "level"]
    list_filter = ["building"]
    search_fields = ["name", "building__name"]
    list_select_related = ["building"]


@admin.register(Equipment)
class EquipmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class ArrangementInline(admin.TabularInline):
    model = Arrangement
    extra = 0
    min_num = 1


class RoomAdminForm(forms.ModelForm):
    """The room, and who approves its bookings: the members of its approvers group are edited
    here (the group "Approvers of <room>" is made when the room has none yet)."""

    approver_users = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Approvers",
        help_text="The people who approve or decline this room's bookings (members of its approvers group).",
        widget=FilteredSelectMultiple("approvers", is_stacked=False),
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
    list_display = ["name", "building", "floor", "capacity", "mailbox", "sync_enabled", "needs_approval", "group_reservations_enabled", "reservable"]
    list_filter = ["building", "sync_enabled", "needs_approval", "reservable", "group_reservations_enabled", "equipment"]
    search_fields = ["name", "mailbox", "building__name"]
    list_select_related = ["building", "floor"]
    filter_horizontal = ["equipment"]
    inlines = [ArrangementInline]
    fieldsets = [
        (None, {"fields": ["building", "floor", "name", "description", "capacity", "equipment", "reservable"]}),
        ("Exchange", {"fields": ["mailbox", "sync_enabled", "group_reservations_enabled"]}),
        ("Approval", {
            "fields": ["needs_approval", "approver_users", "approvers"],
            "description": "Bookings of a room that needs approval wait until one of its approvers approves them in the "
                           "portal (Approvals); only then is the meeting written to Outlook.",
        }),
    ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        form.save_approvers(form.instance)


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
