"""The sync worker's link services: clearing a link, and linking a series' occurrences at once."""

import datetime as dt

import pytest

from reservations import services
from reservations.recurrence import Recurrence
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"


def test_unlink_forgets_the_meeting_which_link_with_empty_values_cannot(alice, atlas):
    r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Planning")
    services.reservation_link_exchange(reservation=r, event_id="AAMk1", change_key="ck1", ical_uid="uid1", mailbox=ALICE, organizer=ALICE, sync_mailbox="user")
    services.reservation_link_exchange(reservation=r, event_id="", change_key="")  # empty keeps what is stored
    r.refresh_from_db()
    assert (r.event_id, r.change_key) == ("AAMk1", "ck1")

    assert services.reservation_unlink_exchange(reservation=r)

    assert (r.event_id, r.change_key, r.ical_uid, r.mailbox, r.organizer, r.sync_mailbox) == ("", "", "", "", "", "")
    r.refresh_from_db()
    assert (r.event_id, r.change_key, r.ical_uid, r.mailbox, r.organizer, r.sync_mailbox) == ("", "", "", "", "", "")
    assert r.origin == "app"


def test_a_series_meeting_home_is_written_on_every_occurrence_at_once(alice, atlas, django_assert_num_queries):
    start = days_ahead(2, 9)
    first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                        recurrence=Recurrence(frequency="weekly", interval=1, count=4))
    series = first.series
    services.reservation_link_exchange(reservation=series.occurrences.order_by("start").last(), event_id="instance-4", change_key="ck4")

    with django_assert_num_queries(3):  # savepoint, one UPDATE, release
        n = services.series_link_occurrences(series=series, ical_uid="uid-series", mailbox=ALICE, organizer=ALICE, sync_mailbox="user")

    assert n == 4
    rows = list(series.occurrences.order_by("start"))
    assert {(r.ical_uid, r.mailbox, r.organizer, r.sync_mailbox) for r in rows} == {("uid-series", ALICE, ALICE, "user")}
    assert [r.event_id for r in rows] == ["", "", "", "instance-4"]  # an occurrence's own instance id is kept
    assert services.series_link_occurrences(series=series) == 0  # nothing given, nothing written
