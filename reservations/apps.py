from django.apps import AppConfig

# The periodic tasks of this app, under stable names; they live in the database
# (django-celery-beat: migration 0007_periodic_release_no_shows creates them).
BEAT_SCHEDULE = {
    # Not checked in by the window's end: released within a minute (reservations.tasks).
    "reservations.release_no_shows": {"task": "reservations.tasks.release_no_shows", "schedule": 30.0},
}


class ReservationsConfig(AppConfig):
    name = "reservations"
