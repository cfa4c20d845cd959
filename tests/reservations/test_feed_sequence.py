"""The feeds' SEQUENCE is the reservation's revision (reservations 0012): one more at every
change a feed shows, counted by a database trigger whatever the path (services, bulk update,
a stale instance's save), so two changes within one second give two values and a cancellation
is seen as newer than the last live version (RFC 5545 §3.8.7.4); existing rows start where
the old formula (seconds from creation to the last change) left them."""

import datetime as dt

import icalendar
import pytest
from django.utils import timezone

from reservations import feeds, services
from reservations.models import Reservation, State, SyncState
from tests.factories import ReservationFactory, days_ahead


@pytest.fixture
def alice_feed(alice):
    return f"/feeds/{feeds.calendar_feed_rotate(user=alice).token}.ics"


def sequence(client, feed: str, pk: int) -> tuple[int, str]:
    """(SEQUENCE, STATUS) of reservation ``pk`` in the feed, parsed with icalendar."""
    response = client.get(feed)
    assert response.status_code == 200, response.content[:200]
    for event in icalendar.Calendar.from_ical(response.content).walk("VEVENT"):
        if str(event["UID"]).startswith(f"reservation-{pk}@"):
            return int(event["SEQUENCE"]), str(event["STATUS"])
    raise AssertionError(f"reservation {pk} not in the feed")


@pytest.mark.django_db
def test_two_changes_within_one_second_give_two_sequence_values(client, alice, atlas, alice_feed):
    r = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Planning", start=days_ahead(2, 9))
    first, _ = sequence(client, alice_feed, r.pk)
    services.reservation_update(actor=alice, reservation=r, subject="Planning (moved)", start=days_ahead(2, 10), end=days_ahead(2, 11))
    stamp = Reservation.objects.get(pk=r.pk).updated_at
    second, _ = sequence(client, alice_feed, r.pk)
    services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=r.pk), subject="Planning (final)")
    # Within the same second as the first change (what the old formula counted in): pinned.
    Reservation.objects.filter(pk=r.pk).update(updated_at=stamp)
    third, status = sequence(client, alice_feed, r.pk)
    assert first < second < third and status == "CONFIRMED"


@pytest.mark.django_db
def test_a_cancelled_entry_is_newer_than_its_last_live_one(client, alice, atlas, alice_feed):
    r = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Called off", start=days_ahead(2, 9))
    services.reservation_update(actor=alice, reservation=r, start=days_ahead(2, 10), end=days_ahead(2, 11))
    live, live_status = sequence(client, alice_feed, r.pk)
    services.reservation_cancel(actor=alice, reservation=Reservation.objects.get(pk=r.pk))
    Reservation.objects.filter(pk=r.pk).update(updated_at=Reservation.objects.get(pk=r.pk).created_at)  # no time passed
    cancelled, status = sequence(client, alice_feed, r.pk)
    assert live_status == "CONFIRMED" and status == "CANCELLED" and cancelled > live


@pytest.mark.django_db
def test_only_what_a_feed_shows_counts_and_nothing_lowers_it(alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, subject="Review", start=days_ahead(2, 9))

    def revision() -> int:
        return Reservation.objects.values_list("revision", flat=True).get(pk=r.pk)

    assert revision() == 0
    Reservation.objects.filter(pk=r.pk).update(sync_state=SyncState.SYNCED, sync_error="")  # not in the feed
    assert revision() == 0
    Reservation.objects.filter(pk=r.pk).update(subject="Review!")  # a bulk update counts as well
    Reservation.objects.filter(pk=r.pk).update(state=State.CONFLICTED)
    assert revision() == 2
    stale = Reservation.objects.get(pk=r.pk)
    stale.revision = 0  # as read before the changes
    stale.sync_error = "a note"
    stale.save()
    assert revision() == 2  # a stale instance's write keeps the stored value
    stale.subject = "Review (stale)"
    stale.save()
    assert revision() == 3


@pytest.mark.django_db(transaction=True)
def test_existing_rows_start_from_the_old_formula(migrator):
    old = migrator.apply_initial_migration(("reservations", "0011_utilization_rollup"))
    get = old.apps.get_model
    user = get("auth", "User").objects.create(username="alice", email="alice@contoso.example")
    hq = get("workplace", "Building").objects.create(name="HQ", code="hq")
    room = get("workplace", "Room").objects.create(building=hq, name="Atlas", capacity=4)
    start = timezone.now() + dt.timedelta(days=2)
    Reservation_ = get("reservations", "Reservation")
    ids = {}
    for subject, seconds in (("changed", 3725.9), ("untouched", 0.4), ("clock skew", -3)):
        row = Reservation_.objects.create(room=room, subject=subject, start=start, end=start + dt.timedelta(hours=1),
                                          requested_by=user, requested_for=user)
        Reservation_.objects.filter(pk=row.pk).update(updated_at=row.created_at + dt.timedelta(seconds=seconds))
        ids[subject] = row.pk
        start += dt.timedelta(hours=2)

    new = migrator.apply_tested_migration(("reservations", "0012_reservation_revision"))

    Reservation_ = new.apps.get_model("reservations", "Reservation")
    assert dict(Reservation_.objects.values_list("subject", "revision")) == {"changed": 3725, "untouched": 0, "clock skew": 0}
    Reservation_.objects.filter(pk=ids["changed"]).update(start=start, end=start + dt.timedelta(hours=1))
    assert Reservation_.objects.get(pk=ids["changed"]).revision == 3726  # the trigger carries on from there
