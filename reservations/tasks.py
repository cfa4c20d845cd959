"""Periodic jobs of reservations: the release of no-shows (``services.release``).

``release_no_shows`` runs every ``RELEASE_EVERY_SECONDS`` (beat, see ``apps.py``), so a
reservation is released within a minute of its check-in window closing. It releases batches
until none is due, then the series whose no-show confirmation deadline passed. Safe to run on
several workers at once and to retry: every batch claims its rows with SKIP LOCKED."""

from celery import shared_task

from reservations.services import release

RELEASE_EVERY_SECONDS = 30.0
MAX_BATCHES = 100  # a run stops after this many batches; the next run goes on


@shared_task(name="reservations.tasks.release_no_shows", ignore_result=True, acks_late=True)
def release_no_shows() -> dict:
    released = 0
    for _ in range(MAX_BATCHES):
        batch = release.release_due()
        released += len(batch)
        if len(batch) < release.BATCH:
            break
    series = release.release_unconfirmed_series()
    return {"released": released, "series_released": len(series)}
