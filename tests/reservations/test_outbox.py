"""SyncEventDetails, the outbox's contract: what services store in SyncEvent.details and what
the sync worker reads back, in the stored shape calendar_sync's readers know."""

import datetime as dt

import pytest

from reservations import services
from reservations.models import SyncEvent
from reservations.outbox import SyncEventDetails
from tests.factories import days_ahead


def test_only_keys_that_are_set_are_stored_beside_the_channel():
    details = SyncEventDetails(scope="series", actor_id=7, source="portal", subsource="", system=False, reservation_ids=(3, 4))

    assert details.to_json() == {"scope": "series", "actor_id": 7, "source": "portal", "subsource": "", "system": False, "reservation_ids": [3, 4]}


def test_a_stored_row_reads_back_as_it_was_written():
    details = SyncEventDetails(
        scope="series", actor_id=None, source="portal", subsource="", system=True, action="end", ends_on=dt.date(2030, 5, 3),
        moved_reservation_ids=(5, 6), cancel_meeting=False,
    )

    stored = details.to_json()

    assert stored["ends_on"] == "2030-05-03" and stored["cancel_meeting"] is False
    assert SyncEventDetails.of(stored) == details


def test_older_rows_and_log_events_are_read_with_their_unknown_keys_ignored():
    old = {"scope": "occurrence", "fields": ["start"], "previous_start": "2030-05-04T09:00:00+00:00", "split_into_series_id": 9, "comment": "x"}

    assert SyncEventDetails.of(old) == SyncEventDetails(fields=("start",))
    assert SyncEventDetails.of({"mailbox": "atlas@contoso.example"}) == SyncEventDetails()  # a retrieve-attendees log
    blank = SyncEventDetails.of(None)
    # The defaults are the readers' own: "also cancel the meeting" unless unticked, no subsource recorded.
    assert (blank.cancel_meeting, blank.subsource, blank.system, blank.after_series_id) == (None, None, False, None)


@pytest.mark.django_db
def test_a_services_event_reads_back_through_the_contract(alice, atlas):
    r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Planning")
    services.reservation_cancel(actor=alice, reservation=r, reason="Not needed", cancel_meeting=False)

    create, delete = (SyncEventDetails.of(e) for e in SyncEvent.objects.order_by("pk"))

    assert create == SyncEventDetails(actor_id=alice.pk, source="portal", subsource="", reservation_ids=(r.pk,))
    assert (delete.reason, delete.cancel_meeting, delete.actor_id) == ("Not needed", False, alice.pk)
