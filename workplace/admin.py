"""Admin for the space directory, for people (profile inline on the user) and their API tokens."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
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


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "building", "floor", "capacity", "mailbox", "sync_enabled", "group_reservations_enabled", "reservable"]
    list_filter = ["building", "sync_enabled", "reservable", "group_reservations_enabled", "equipment"]
    search_fields = ["name", "mailbox", "building__name"]
    list_select_related = ["building", "floor"]
    filter_horizontal = ["equipment"]
    inlines = [ArrangementInline]
    fieldsets = [
        (None, {"fields": ["building", "floor", "name", "description", "capacity", "equipment", "reservable", "show_subjects"]}),
        ("Exchange", {"fields": ["mailbox", "sync_enabled", "group_reservations_enabled"]}),
    ]


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
