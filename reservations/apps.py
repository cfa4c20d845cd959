from django.apps import AppConfig

# Beat schedules this app adds; names are stable so deployments can override them.
BEAT_SCHEDULE = {
    # Not checked in by the window's end: released within a minute (reservations.tasks).
    "reservations.release_no_shows": {"task": "reservations.tasks.release_no_shows", "schedule": 30.0},
}


class ReservationsConfig(AppConfig):
    name = "reservations"

    def ready(self) -> None:
        from django.conf import settings

        for name, entry in BEAT_SCHEDULE.items():
            settings.CELERY_BEAT_SCHEDULE.setdefault(name, entry)
