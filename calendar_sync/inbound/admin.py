"""Admin for inbound sync: subscriptions (room and organizer mailboxes) with their health,
the webhook inbox, delta state per mailbox, meetings seen in subscribed calendars, nightly runs. Registered from
``calendar_sync.admin``."""

from django.contrib import admin, messages
from django.contrib.admin.utils import label_for_field
from django.utils import timezone

from exchange_auth.graph import GraphError
from workplace.admin_filters import CappedAllValuesFieldListFilter

from .. import conf
from ..models import (
    MailboxDeltaState,
    NightlyChunk,
    NightlyRun,
    RoomEvent,
    Subscription,
    WebhookNotification,
)
from .tasks import request_pull, subscription_renew


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def polling_health(obj: Subscription) -> str:
    """A polled mailbox's health line (the admin's list and ``manage.py sync_subscriptions``)."""
    return f"⟳ polling every {conf.get().poll_seconds} s: {obj.polling_reason}"


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnly):
    list_display = ("mailbox", "kind", "status", "credential", "health", "expires_at", "last_notification_at", "last_lifecycle_event", "short_error", "renewed_at")
    list_filter = ("kind", "status", "credential", "provider")
    search_fields = ("mailbox", "graph_id")
    readonly_fields = [f.name for f in Subscription._meta.fields if f.name != "client_state_hash"]
    exclude = ("client_state_hash",)
    actions = ["renew_selected", "resync_selected"]

    def changelist_view(self, request, extra_context=None):
        # Each column's label, for the phone layout's cards (change_list.html of this model).
        labels = [(field, str(label_for_field(field, Subscription, self)).capitalize()) for field in self.list_display]
        return super().changelist_view(request, {**(extra_context or {}), "card_labels": labels})

    @admin.display(description="health")
    def health(self, obj: Subscription) -> str:
        if obj.status == Subscription.Status.POLLING:
            return polling_health(obj)
        if obj.status != Subscription.Status.ACTIVE:
            return "✗ " + obj.get_status_display()
        if obj.expires_at is None or obj.expires_at <= timezone.now():
            return "✗ expired"
        if obj.last_error:
            return "! error"
        hours = (obj.expires_at - timezone.now()).total_seconds() / 3600
        return f"✓ ok ({hours:.0f} h left)"

    @admin.display(description="last error")
    def short_error(self, obj: Subscription) -> str:
        return (obj.last_error or "")[:80]

    @admin.action(description="Renew selected subscriptions now")
    def renew_selected(self, request, queryset):
        ok = failed = 0
        for sub in queryset.select_related("provider").filter(status__in=[Subscription.Status.ACTIVE, Subscription.Status.FAILED]):
            try:
                subscription_renew(subscription=sub)
                ok += 1
            except GraphError:
                failed += 1
        self.message_user(request, f"Renewed {ok}; {failed} failed (see last error).", messages.SUCCESS if not failed else messages.WARNING)

    @admin.action(description="Full resync of the selected mailboxes")
    def resync_selected(self, request, queryset):
        mailboxes = sorted(set(queryset.values_list("mailbox", flat=True)))
        for mailbox in mailboxes:
            request_pull(mailbox, full=True)
        self.message_user(request, f"Queued a full resync of {len(mailboxes)} mailbox(es).", messages.SUCCESS)


@admin.register(WebhookNotification)
class WebhookNotificationAdmin(ReadOnly):
    list_display = ("id", "received_at", "kind", "mailbox", "change_type", "lifecycle_event", "state", "processed_at", "note")
    list_filter = ("kind", "state", "change_type", "lifecycle_event")
    search_fields = ("mailbox", "event_id", "subscription_graph_id")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in WebhookNotification._meta.fields]
    # The inbox grows by every notification: no second count(*) of it on every page.
    show_full_result_count = False


@admin.register(MailboxDeltaState)
class MailboxDeltaStateAdmin(ReadOnly):
    list_display = ("mailbox", "last_pull_at", "last_full_sync_at", "pulls", "full_syncs", "last_error")
    search_fields = ("mailbox",)
    readonly_fields = [f.name for f in MailboxDeltaState._meta.fields]


@admin.register(RoomEvent)
class RoomEventAdmin(ReadOnly):
    list_display = ("mailbox", "subject", "start", "end", "organizer", "outcome", "reservation", "removed_at", "last_seen_at")
    # One mailbox per synced room (2,000): the first ones listed, a box for the others.
    list_filter = ("outcome", ("mailbox", CappedAllValuesFieldListFilter))
    search_fields = ("mailbox", "subject", "organizer", "event_id", "ical_uid")
    raw_id_fields = ("reservation",)
    # The reservation's str() names its room.
    list_select_related = ("reservation__room",)
    show_full_result_count = False
    readonly_fields = [f.name for f in RoomEvent._meta.fields]


class NightlyChunkInline(admin.TabularInline):
    model = NightlyChunk
    extra = 0
    can_delete = False
    fields = readonly_fields = ("index", "room_ids", "started_at", "attempts", "finished_at", "summary")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(NightlyRun)
class NightlyRunAdmin(ReadOnly):
    list_display = ("building", "mailbox", "local_date", "started_at", "finished_at", "summary")
    list_select_related = ("building", "provider")
    readonly_fields = [f.name for f in NightlyRun._meta.fields]
    inlines = [NightlyChunkInline]
