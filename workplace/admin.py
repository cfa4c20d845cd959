"""Admin for the space directory and for people (profile inline on the user)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from workplace.models import Arrangement, Building, Equipment, Floor, Profile, Room


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
        (None, {"fields": ["building", "floor", "name", "description", "capacity", "equipment", "reservable"]}),
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
