"""The services' clock.

Every "now" the services read comes from ``now()`` here, looked up through this module, so
a test moves time for all of them at once (``monkeypatch.setattr(services.clock, "now", ...)``,
e.g. to make a series have begun)."""

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()
