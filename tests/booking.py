"""``book()``: a reservation made through the service, as the portal and the API make one.

One helper for every package's tests. Keyword-only; what a test doesn't name is the usual
booking: tomorrow 09:00 Berlin for ``hours`` (1), subject "Planning"; any other field goes to
``reservation_create`` as is (``attendees``, ``requested_for``, ``kind``, ``recurrence``,
``source``...). The reservation returned is read again from the database (``.series`` too).

- ``capture_on_commit``: pytest-django's ``django_capture_on_commit_callbacks``; the
  after-commit work (the push to Exchange) then runs before ``book()`` returns.
- ``confirmed=True``: wait until the room has accepted, reading its answer as the worker's
  scheduled check does (``confirm.check_answers``) — for tests where eager Celery pushes."""

from __future__ import annotations

import contextlib
import datetime as dt

from calendar_sync.outbound import confirm
from reservations import services
from reservations.models import Reservation, State
from tests.factories import days_ahead
from tests.waiting import wait_for


def book(*, actor, room, start: dt.datetime | None = None, end: dt.datetime | None = None, hours: float = 1,
         subject: str = "Planning", capture_on_commit=None, confirmed: bool = False, **fields) -> Reservation:
    start = start or days_ahead(1, 9)
    end = end or start + dt.timedelta(hours=hours)
    after_commit = capture_on_commit(execute=True) if capture_on_commit else contextlib.nullcontext()
    with after_commit:
        reservation = services.reservation_create(actor=actor, room=room, start=start, end=end, subject=subject, **fields)
    if confirmed:
        def accepted() -> bool:
            confirm.check_answers()
            return Reservation.objects.get(pk=reservation.pk).state == State.CONFIRMED

        wait_for(accepted, message="room accepted the product's meeting")
    reservation.refresh_from_db()
    return reservation
