"""The nightly room import: every active provider's Exchange room directory (``rooms.import_rooms``)."""

import logging

from celery import shared_task

from exchange_auth.providers import active_providers

from .rooms import DirectoryError, import_rooms

log = logging.getLogger(__name__)


@shared_task(name="calendar_sync.directory.tasks.sync_rooms", ignore_result=True)
def sync_rooms() -> dict:
    """Import each active provider's rooms; a provider that fails is logged and the others go on."""
    out = {}
    for provider in active_providers():
        try:
            run, _result = import_rooms(provider, trigger="nightly")
        except DirectoryError as exc:
            log.warning("Room import from %s failed: %s", provider.name, exc)
            out[provider.name] = f"failed: {exc}"
            continue
        out[provider.name] = run.summary
    return out
