from django.apps import AppConfig

OUTBOUND = "calendar_sync.outbound.tasks"
INBOUND = "calendar_sync.inbound.tasks"

# The periodic tasks of this app (SPEC §4), under stable names. They live in the database
# (django-celery-beat; migration 0006_periodic_tasks creates them, admins edit them in
# admin): a task added here needs a data migration too (tests/workplace/test_schedules.py).
BEAT_SCHEDULE = {
    "calendar_sync.sweep_sync_events": {"task": f"{OUTBOUND}.sweep_sync_events", "schedule": 60.0},
    "calendar_sync.check_awaiting_reservations": {"task": f"{OUTBOUND}.check_awaiting_reservations", "schedule": 600.0},
    "calendar_sync.clean_up_unanswered_reservations": {"task": f"{OUTBOUND}.clean_up_unanswered_reservations", "schedule": 600.0},
    # Inbound: subscriptions renewed before expiry, lost pulls re-queued, the 02:30 building-local nightly pass.
    "calendar_sync.ensure_subscriptions": {"task": f"{INBOUND}.ensure_subscriptions", "schedule": 900.0},
    "calendar_sync.sweep_inbox": {"task": f"{INBOUND}.sweep_inbox", "schedule": 60.0},
    "calendar_sync.run_nightly_reconcile": {"task": f"{INBOUND}.run_nightly_reconcile", "schedule": 900.0},
    # Mailboxes that can't be subscribed are polled; the migration takes CALENDAR_SYNC_POLL_SECONDS.
    "calendar_sync.poll_unsubscribed": {"task": f"{INBOUND}.poll_unsubscribed", "schedule": 60.0},
    # The room directory from Exchange, nightly at 01:30 UTC (README "Importing rooms from Exchange").
    # (a crontab in UTC; migration 0006_periodic_sync_rooms)
    "calendar_sync.sync_rooms": {"task": "calendar_sync.directory.tasks.sync_rooms", "crontab": {"minute": "30", "hour": "1"}},
}


class CalendarSyncConfig(AppConfig):
    name = "calendar_sync"
    verbose_name = "Calendar sync"

    def ready(self) -> None:
        # Imports of our modules here, not at the top: they load models, which Django allows
        # only once the app registry is ready (this method).
        from django.db.models.signals import post_save

        from exchange_auth.models import CalendarProvider, InstanceProperty
        from observability import metrics
        from reservations.online_meetings import register_check
        from reservations.outbox import register_listener

        from . import conf, health
        from .common.online_providers import teams_refusal
        from .directory import tasks as directory_tasks  # noqa: F401 - registers the nightly room import
        from .inbound.tasks import on_property_saved, on_provider_saved
        from .outbound.tasks import enqueue_push

        # 0. A bad CALENDAR_SYNC_* setting fails the start, naming the setting.
        conf.get()
        # 1. Every sync event the reservation services record is pushed after commit.
        register_listener(enqueue_push)
        # 1b. A Teams meeting is refused where the organizing calendar doesn't allow Teams.
        register_check(teams_refusal)
        # 2. Inbound: an activated provider subscribes to the room (and organizer) mailboxes;
        #    a change of sync mode adds or drops the organizer mailbox's subscription.
        post_save.connect(on_provider_saved, sender=CalendarProvider, dispatch_uid="calendar_sync.provider_activated")
        post_save.connect(on_property_saved, sender=InstanceProperty, dispatch_uid="calendar_sync.sync_mode_changed")
        # 3. What operators see: /metrics' gauges and the labels of Graph requests.
        metrics.register_gauges("calendar_sync", health.gauges)
        metrics.set_mailbox_classifier(health.mailbox_class)
