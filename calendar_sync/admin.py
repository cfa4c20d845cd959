"""Calendar sync's admin (Django discovers this module): the outbox and its processing,
inbound sync's subscriptions, inbox, delta state, recorded copies and nightly runs, and the
calendar provider's preflight page (its checks need calendar_sync: the webhook and subscriptions),
and the Sync health page (/admin/sync-health/: the figures /metrics exports, at a glance)."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from exchange_auth.admin import CalendarProviderAdmin
from exchange_auth.models import CalendarProvider
from exchange_auth.providers import active_providers
from observability import metrics
from workplace.admin import RoomAdmin
from workplace.models import Room

from . import health
from .directory.rooms import DirectoryError, import_rooms
from .inbound import admin as inbound_admin  # noqa: F401 - registers its ModelAdmins
from .outbound import admin as outbound_admin  # noqa: F401 - registers its ModelAdmins
from .preflight import preflight_run


class CalendarProviderWithPreflightAdmin(CalendarProviderAdmin):
    """exchange_auth's provider admin, plus a Preflight page (a link on the provider and an action)."""

    actions = [*CalendarProviderAdmin.actions, "preflight", "import_rooms"]
    readonly_fields = [*CalendarProviderAdmin.readonly_fields, "preflight_link"]
    fieldsets = [(None, {"fields": ["preflight_link"]}), *CalendarProviderAdmin.fieldsets]

    def get_urls(self):
        view = self.admin_site.admin_view(self.preflight_view)
        return [path("<int:object_id>/preflight/", view, name="exchange_auth_calendarprovider_preflight"), *super().get_urls()]

    @admin.display(description="Preflight")
    def preflight_link(self, obj: CalendarProvider) -> str:
        if not obj.pk:
            return "available once saved"
        url = reverse("admin:exchange_auth_calendarprovider_preflight", args=[obj.pk])
        return format_html('<a href="{}">Run the preflight</a>: permissions, access policy, delegate access, organizer, webhook, expiry', url)

    @admin.action(description="Preflight (everything the tenant must allow, with fixes)")
    def preflight(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one provider to run its preflight.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:exchange_auth_calendarprovider_preflight", args=[queryset.get().pk]))

    def preflight_view(self, request, object_id: int):
        provider = get_object_or_404(CalendarProvider, pk=object_id)
        if not self.has_change_permission(request, provider):
            return HttpResponseRedirect(reverse("admin:index"))
        context = {**self.admin_site.each_context(request), "provider": provider, "result": preflight_run(provider),
                   "opts": self.model._meta, "title": f"Preflight of {provider.name}"}
        return TemplateResponse(request, "admin/calendar_sync/preflight.html", context)


    @admin.action(description="Import rooms from Exchange (room directory)")
    def import_rooms(self, request, queryset):
        run_imports(self, request, list(queryset))


def run_imports(model_admin, request, providers) -> None:
    """The admin's room import: one run per provider, its counts as a message (the run's
    per-room details under Room imports)."""
    for provider in providers:
        try:
            run, _result = import_rooms(provider, trigger="admin")
        except DirectoryError as exc:
            model_admin.message_user(request, f"{provider.name}: room import failed: {exc}", messages.ERROR)
            continue
        url = reverse("admin:workplace_roomimport_change", args=[run.pk])
        model_admin.message_user(request, format_html('{}: {} (<a href="{}">per room</a>)', provider.name, run.summary, url))


class RoomWithImportAdmin(RoomAdmin):
    """workplace's room admin, plus "Import rooms from Exchange": whichever rooms are ticked,
    every active provider's directory is imported (with no room yet, use the same action on
    the calendar provider)."""

    actions = [*RoomAdmin.actions, "import_from_exchange"]

    @admin.action(description="Import rooms from Exchange (every active provider)")
    def import_from_exchange(self, request, queryset):
        providers = active_providers()
        if not providers:
            self.message_user(request, "No calendar provider is active.", messages.WARNING)
            return
        run_imports(self, request, providers)


admin.site.unregister(CalendarProvider)
admin.site.register(CalendarProvider, CalendarProviderWithPreflightAdmin)
admin.site.unregister(Room)
admin.site.register(Room, RoomWithImportAdmin)


# --- Sync health: the figures of /metrics at a glance (calendar_sync.health) ---------------


def sync_health_view(request):
    figures = health.figures()
    snap = figures.counters
    graph = {}
    for (_method, status, mailbox_class), n in sorted(snap.counters[metrics.GRAPH_REQUESTS.name].items()):
        row = graph.setdefault(mailbox_class, {"ok": 0, "throttled": 0, "failed": 0})
        key = "ok" if status.startswith(("2", "3")) else "throttled" if status == "429" else "failed"
        row[key] += int(n)
    lag = snap.histograms[metrics.NOTIFICATION_LAG.name].get((), None)
    context = {
        **admin.site.each_context(request),
        "title": "Sync health",
        "figures": figures,
        "pushes": {labels[0]: int(n) for labels, n in snap.counters[metrics.PUSHES.name].items()},
        "pulls": sorted((labels, int(n)) for labels, n in snap.counters[metrics.PULLS.name].items()),
        "graph": sorted(graph.items()),
        "retry_wait": round(sum(snap.counters[metrics.GRAPH_RETRY_WAIT.name].values()), 1),
        "lag_count": int(lag[2]) if lag else 0,
        "lag_mean": round(lag[1] / lag[2], 2) if lag and lag[2] else None,
        "subscriptions": sorted(figures.subscriptions.items()),
    }
    return TemplateResponse(request, "admin/calendar_sync/sync_health.html", context)


_site_urls = admin.site.get_urls


def _urls_with_sync_health():
    return [path("sync-health/", admin.site.admin_view(sync_health_view), name="sync_health"), *_site_urls()]


admin.site.get_urls = _urls_with_sync_health
admin.site.index_template = "admin/calendar_sync/index.html"  # Django's index, with the link to it
