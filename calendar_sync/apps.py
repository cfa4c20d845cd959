from django.apps import AppConfig

OUTBOUND = "calendar_sync.outbound.tasks"
INBOUND = "calendar_sync.inbound.tasks"

# Beat schedules this app adds (SPEC §4): names are stable so deployments can override them.
BEAT_SCHEDULE = {
    "calendar_sync.sweep_sync_events": {"task": f"{OUTBOUND}.sweep_sync_events", "schedule": 60.0},
    "calendar_sync.check_awaiting_reservations": {"task": f"{OUTBOUND}.check_awaiting_reservations", "schedule": 600.0},
    "calendar_sync.clean_up_unanswered_reservations": {"task": f"{OUTBOUND}.clean_up_unanswered_reservations", "schedule": 600.0},
    # Inbound: subscriptions renewed before expiry, lost pulls re-queued, the 02:30 building-local nightly pass.
    "calendar_sync.ensure_subscriptions": {"task": f"{INBOUND}.ensure_subscriptions", "schedule": 900.0},
    "calendar_sync.sweep_inbox": {"task": f"{INBOUND}.sweep_inbox", "schedule": 60.0},
    "calendar_sync.run_nightly_reconcile": {"task": f"{INBOUND}.run_nightly_reconcile", "schedule": 900.0},
}


class CalendarSyncConfig(AppConfig):
    name = "calendar_sync"
    verbose_name = "Calendar sync"

    def ready(self) -> None:
        # Imports of our modules here, not at the top: they load models, which Django allows
        # only once the app registry is ready (this method).
        from django.conf import settings
        from django.db.models.signals import post_save

        from exchange_auth.models import CalendarProvider, InstanceProperty
        from reservations.online_meetings import register_check
        from reservations.outbox import register_listener

        from . import conf
        from .common.online_providers import teams_refusal
        from .inbound.tasks import on_property_saved, on_provider_saved
        from .outbound.tasks import enqueue_push

        # 0. A bad CALENDAR_SYNC_* setting fails the start, naming the setting.
        sync = conf.get()
        # 1. Every sync event the reservation services record is pushed after commit.
        register_listener(enqueue_push)
        # 1b. A Teams meeting is refused where the organizing calendar doesn't allow Teams.
        register_check(teams_refusal)
        # 2. Inbound: an activated provider subscribes to the room (and organizer) mailboxes;
        #    a change of sync mode adds or drops the organizer mailbox's subscription.
        post_save.connect(on_provider_saved, sender=CalendarProvider, dispatch_uid="calendar_sync.provider_activated")
        post_save.connect(on_property_saved, sender=InstanceProperty, dispatch_uid="calendar_sync.sync_mode_changed")
        # 3. Our periodic jobs, without overwriting what a deployment configured. Mailboxes that
        #    can't be subscribed are polled every CALENDAR_SYNC_POLL_SECONDS.
        BEAT_SCHEDULE.setdefault("calendar_sync.poll_unsubscribed", {
            "task": f"{INBOUND}.poll_unsubscribed", "schedule": float(sync.poll_seconds),
        })
        for name, entry in BEAT_SCHEDULE.items():
            settings.CELERY_BEAT_SCHEDULE.setdefault(name, entry)
        try:
            from workplace.celery import app  # optional: management commands run without Celery

            for name, entry in BEAT_SCHEDULE.items():
                app.conf.beat_schedule.setdefault(name, entry)
        except Exception:  # noqa: S110 - the Celery app is optional for management commands
            pass
