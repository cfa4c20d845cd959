from django.apps import AppConfig

# Beat schedules this app adds (SPEC §4): names are stable so deployments can override them.
BEAT_SCHEDULE = {
    "calendar_sync.sweep_sync_events": {"task": "calendar_sync.tasks.sweep_sync_events", "schedule": 60.0},
    "calendar_sync.check_awaiting_reservations": {"task": "calendar_sync.tasks.check_awaiting_reservations", "schedule": 600.0},
    "calendar_sync.clean_up_unanswered_reservations": {"task": "calendar_sync.tasks.clean_up_unanswered_reservations", "schedule": 600.0},
    # Inbound (issue 6): subscriptions renewed before expiry, lost pulls re-queued, the 02:30 building-local nightly pass.
    "calendar_sync.ensure_subscriptions": {"task": "calendar_sync.inbound_tasks.ensure_subscriptions", "schedule": 900.0},
    "calendar_sync.sweep_inbox": {"task": "calendar_sync.inbound_tasks.sweep_inbox", "schedule": 60.0},
    "calendar_sync.run_nightly_reconcile": {"task": "calendar_sync.inbound_tasks.run_nightly_reconcile", "schedule": 900.0},
}


class CalendarSyncConfig(AppConfig):
    name = "calendar_sync"
    verbose_name = "Calendar sync"

    def ready(self) -> None:
        from django.conf import settings

        from reservations.outbox import register_listener

        from .tasks import enqueue_push

        # 1. Every sync event the reservation services record is pushed after commit.
        register_listener(enqueue_push)
        # 1b. Inbound: an activated provider subscribes to the room (and organizer) mailboxes;
        #     a change of sync mode adds or drops the organizer mailbox's subscription.
        from django.db.models.signals import post_save

        from exchange_auth.models import CalendarProvider, InstanceProperty

        from .inbound_tasks import on_property_saved, on_provider_saved

        post_save.connect(on_provider_saved, sender=CalendarProvider, dispatch_uid="calendar_sync.provider_activated")
        post_save.connect(on_property_saved, sender=InstanceProperty, dispatch_uid="calendar_sync.sync_mode_changed")
        # 2. Our periodic jobs, without overwriting what a deployment configured. Mailboxes that
        #    can't be subscribed are polled every CALENDAR_SYNC_POLL_SECONDS.
        BEAT_SCHEDULE.setdefault("calendar_sync.poll_unsubscribed", {
            "task": "calendar_sync.inbound_tasks.poll_unsubscribed", "schedule": float(getattr(settings, "CALENDAR_SYNC_POLL_SECONDS", 60)),
        })
        for name, entry in BEAT_SCHEDULE.items():
            settings.CELERY_BEAT_SCHEDULE.setdefault(name, entry)
        try:
            from workplace.celery import app

            for name, entry in BEAT_SCHEDULE.items():
                app.conf.beat_schedule.setdefault(name, entry)
        except Exception:  # noqa: S110 - the Celery app is optional for management commands
            pass
