"""reservation_record_push / series_record_push: one push's result (the meeting's link, the
room's answer, the sync state) applied in one transaction, each transition only once."""

import datetime as dt

import pytest

from reservations import services
from reservations.models import Reservation, State
from reservations.recurrence import Recurrence
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
LINK = services.ExchangeIds(event_id="AAMk1", change_key="ck1", ical_uid="uid1", mailbox=ALICE, organizer=ALICE, sync_mailbox="user")
DECLINED = "Atlas declined the meeting: the room is not available at that time."


def waiting(alice, atlas, state=State.AWAITING_CONFIRMATION) -> Reservation:
    r = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Planning")
    Reservation.objects.filter(pk=r.pk).update(state=state)
    r.state = state
    return r


def updates(captured) -> list[str]:
    """The statements that wrote, without the savepoints of the test's transaction."""
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def test_an_accepted_create_is_linked_confirmed_and_synced_in_one_update(alice, atlas, django_assert_num_queries):
    r = waiting(alice, atlas)

    with django_assert_num_queries(3) as captured:  # savepoint, one UPDATE, release
        done = services.reservation_record_push(reservation=r, link=LINK, answer="accepted", sync_state="synced")

    assert done == services.PushRecorded(confirmed=True, rejected=False)
    [update] = updates(captured)
    assert update.startswith('UPDATE "reservations_reservation"')
    stored = Reservation.objects.get(pk=r.pk)
    assert (stored.state, stored.state_reason, stored.sync_state, stored.sync_error) == ("confirmed", "", "synced", "")
    assert (stored.event_id, stored.change_key, stored.ical_uid, stored.mailbox, stored.organizer, stored.sync_mailbox) == (
        "AAMk1", "ck1", "uid1", ALICE, ALICE, "user")
    assert (r.state, r.event_id, r.sync_state) == ("confirmed", "AAMk1", "synced")  # the caller's object follows


def test_a_conflicted_reservation_the_room_accepts_is_confirmed(alice, atlas):
    r = waiting(alice, atlas, state=State.CONFLICTED)

    assert services.reservation_record_push(reservation=r, answer="accepted").confirmed
    assert Reservation.objects.get(pk=r.pk).state == "confirmed"


def test_an_answer_read_twice_changes_the_reservation_once(alice, atlas):
    r = waiting(alice, atlas)
    first = services.reservation_record_push(reservation=r, answer="declined", reason=DECLINED)
    again = services.reservation_record_push(reservation=Reservation.objects.get(pk=r.pk), answer="declined", reason=DECLINED)

    assert first == services.PushRecorded(rejected=True)
    assert again == services.PushRecorded()  # the employee is told once
    stored = Reservation.objects.get(pk=r.pk)
    assert (stored.state, stored.state_reason) == ("rejected", DECLINED)


def test_an_answer_that_no_longer_applies_still_records_the_link_and_sync_state(alice, atlas, django_assert_num_queries):
    r = waiting(alice, atlas, state=State.CONFIRMED)

    with django_assert_num_queries(4) as captured:  # savepoint, the conditional UPDATE (no row), the rest, release
        done = services.reservation_record_push(
            reservation=r, link=LINK, answer="declined", reason=DECLINED, sync_state="error", sync_error="ErrorAccessDenied",
        )

    assert done == services.PushRecorded()
    assert len(updates(captured)) == 2
    stored = Reservation.objects.get(pk=r.pk)
    assert (stored.state, stored.event_id, stored.sync_state, stored.sync_error) == ("confirmed", "AAMk1", "error", "ErrorAccessDenied")


def test_no_answer_yet_changes_no_state(alice, atlas, django_assert_num_queries):
    r = waiting(alice, atlas)

    with django_assert_num_queries(3):
        done = services.reservation_record_push(reservation=r, link=services.ExchangeIds(change_key="ck2"), answer="")

    assert done == services.PushRecorded()
    stored = Reservation.objects.get(pk=r.pk)
    assert (stored.state, stored.change_key, stored.event_id) == ("awaiting_confirmation", "ck2", "")  # empty keeps what is stored


def test_nothing_to_record_writes_nothing(alice, atlas, django_assert_num_queries):
    r = waiting(alice, atlas)

    with django_assert_num_queries(2):  # the savepoint and its release
        assert services.reservation_record_push(reservation=r) == services.PushRecorded()


def test_a_decline_without_a_reason_or_an_unknown_answer_is_refused(alice, atlas):
    r = waiting(alice, atlas)

    with pytest.raises(ValueError, match="reason"):
        services.reservation_record_push(reservation=r, answer="declined")
    with pytest.raises(ValueError, match="answer"):
        services.reservation_record_push(reservation=r, answer="tentativelyAccepted")
    with pytest.raises(ValueError, match="sync state"):
        services.reservation_record_push(reservation=r, sync_state="done")
    assert Reservation.objects.get(pk=r.pk).state == "awaiting_confirmation"


# --- a series ---------------------------------------------------------------------------------


def weekly(alice, atlas, count=3):
    start = days_ahead(2, 9)
    first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                        recurrence=Recurrence(frequency="weekly", interval=1, count=count))
    return first.series


def test_a_series_create_links_the_master_and_its_occurrences_and_confirms_them(alice, atlas):
    series = weekly(alice, atlas)
    rows = list(series.occurrences.order_by("start"))
    services.reservation_cancel(actor=alice, reservation=rows[2])

    done = services.series_record_push(series=series, link=LINK, answer="accepted")

    assert done == services.SeriesPushRecorded(confirmed_ids=(rows[0].pk, rows[1].pk))
    assert (series.event_id, series.change_key) == ("AAMk1", "ck1")
    series.refresh_from_db()
    assert (series.event_id, series.change_key, series.ical_uid, series.organizer) == ("AAMk1", "ck1", "uid1", ALICE)
    stored = list(series.occurrences.order_by("start"))
    assert [r.state for r in stored] == ["confirmed", "confirmed", "cancelled"]
    assert {(r.event_id, r.ical_uid, r.mailbox, r.organizer, r.sync_mailbox) for r in stored} == {("", "uid1", ALICE, ALICE, "user")}


def test_a_series_the_room_declines_is_rejected_once(alice, atlas):
    series = weekly(alice, atlas, count=2)

    first = services.series_record_push(series=series, link=LINK, answer="declined", reason=DECLINED)
    again = services.series_record_push(series=series, link=LINK, answer="declined", reason=DECLINED)

    assert set(first.rejected_ids) == set(series.occurrences.values_list("pk", flat=True)) and not first.confirmed_ids
    assert again == services.SeriesPushRecorded()
    assert set(series.occurrences.values_list("state", "state_reason")) == {("rejected", DECLINED)}
