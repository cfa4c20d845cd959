"""Admin for the sync outbox/log (the model lives in reservations; its processing is ours)."""

from django.contrib import admin, messages

from reservations.models import SyncEvent
from workplace.admin_filters import CappedRelatedFieldListFilter

from .tasks import reprocess


@admin.register(SyncEvent)
class SyncEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "state", "reservation", "series", "attempts", "next_attempt_at", "short_error", "created_at", "processed_at")
    list_filter = ("state", "type", ("created_at", admin.DateFieldListFilter), ("reservation__room__building", CappedRelatedFieldListFilter),
                   ("reservation__room", CappedRelatedFieldListFilter))
    # The Graph event id whole (the reservation's rsv_event_id index), not any part of it.
    search_fields = ("=id", "=reservation__id", "reservation__subject", "reservation__event_id__exact", "error")
    date_hierarchy = "created_at"
    list_select_related = ("reservation__room", "series")
    # Hundreds of thousands of rows: no second count(*) of the whole table on every page.
    show_full_result_count = False
    raw_id_fields = ("reservation", "series")
    readonly_fields = ("type", "state", "reservation", "series", "details", "attempts", "next_attempt_at", "request_payload", "response", "error", "created_at", "updated_at", "processed_at")
    actions = ["reprocess_selected"]

    @admin.display(description="error")
    def short_error(self, obj: SyncEvent) -> str:
        return (obj.error or "")[:80]

    @admin.action(description="Re-process selected sync events (errors and stuck new ones)")
    def reprocess_selected(self, request, queryset):
        ids = list(queryset.filter(state__in=[SyncEvent.State.ERROR, SyncEvent.State.NEW]).values_list("pk", flat=True))
        n = reprocess(ids)
        skipped = queryset.count() - n
        self.message_user(request, f"Queued {n} sync event(s) for another push." + (f" {skipped} skipped (processing or processed)." if skipped else ""), messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


