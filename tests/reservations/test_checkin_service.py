"""The check-in service: its window, who may check in from which channel, what it records,
and what it refuses (nothing written then)."""

import datetime as dt

import pytest

from exchange_auth import properties
from reservations.exceptions import CheckInRefused
from reservations.models import CheckInChannel, Reservation, State
from reservations.services import checkin
from tests.booking import book
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def required_dojo(dojo):
    dojo.checkin_required = True
    dojo.save()
    return dojo


@pytest.fixture
def meeting(alice, bob, required_dojo):
    """Alice's meeting tomorrow 09:00 Berlin, booked by Bob for her, with Carol attending."""
    return book(actor=bob, room=required_dojo, requested_for=alice, attendees=[{"email": "carol@contoso.example", "name": "Carol"}])


def test_the_window_follows_the_instance_properties(meeting):
    opens, closes = checkin.checkin_window(meeting)
    assert (opens, closes) == (meeting.start - dt.timedelta(minutes=10), meeting.start + dt.timedelta(minutes=15))
    properties.set_value(properties.CHECKIN_BEFORE_MINUTES, 5)
    properties.set_value(properties.CHECKIN_AFTER_MINUTES, 30)
    assert checkin.checkin_window(meeting) == (meeting.start - dt.timedelta(minutes=5), meeting.start + dt.timedelta(minutes=30))


def test_a_room_says_whether_check_in_is_required_else_the_instance_default(dojo):
    assert dojo.checkin_required is None and checkin.checkin_required(dojo) is False
    properties.set_value(properties.CHECKIN_REQUIRED_DEFAULT, True)
    assert checkin.checkin_required(dojo) is True
    dojo.checkin_required = False
    assert checkin.checkin_required(dojo) is False


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_requested_for_requester_and_attendee_may_check_in_and_it_is_recorded(meeting, who, alice, bob):
    from tests.factories import UserFactory

    people = {"alice": alice, "bob": bob, "carol": UserFactory(username="carol")}
    at = meeting.start - dt.timedelta(minutes=3)
    row = checkin.check_in(meeting, actor=people[who], channel=CheckInChannel.PORTAL, now=at)
    stored = Reservation.objects.get(pk=meeting.pk)
    assert (stored.checked_in_at, stored.checked_in_channel, stored.checked_in_by) == (at, "portal", people[who])
    assert row.checked_in_at == at


def test_someone_else_may_not_and_nothing_is_written(meeting, outsider):
    with pytest.raises(CheckInRefused) as refused:
        checkin.check_in(meeting, actor=outsider, channel=CheckInChannel.API, now=meeting.start)
    assert (refused.value.code, refused.value.status_code) == ("not_permitted", 403)
    assert Reservation.objects.get(pk=meeting.pk).checked_in_at is None


def test_at_the_panel_anyone_may_unless_the_property_says_no(meeting):
    row = checkin.check_in(meeting, actor=None, channel=CheckInChannel.ROOM_PANEL, now=meeting.start)
    assert (row.checked_in_channel, row.checked_in_by) == ("room_panel", None)
    Reservation.objects.filter(pk=meeting.pk).update(checked_in_at=None, checked_in_channel="")
    properties.set_value(properties.CHECKIN_ANYONE_AT_PANEL, False)
    with pytest.raises(CheckInRefused, match="Only the people"):
        checkin.check_in(meeting, actor=None, channel=CheckInChannel.ROOM_PANEL, now=meeting.start)


@pytest.mark.parametrize(("minutes", "says"), [(-11, "opens at 08:50"), (15, "closed at 09:15"), (40, "closed at 09:15")])
def test_outside_the_window_is_refused_with_its_times(meeting, alice, minutes, says):
    with pytest.raises(CheckInRefused, match=says) as refused:
        checkin.check_in(meeting, actor=alice, channel=CheckInChannel.QR, now=meeting.start + dt.timedelta(minutes=minutes))
    assert refused.value.code == "outside_window" and set(refused.value.extra) == {"opens", "closes"}
    assert Reservation.objects.get(pk=meeting.pk).checked_in_at is None


def test_the_window_edges_are_inside(meeting, alice):
    checkin.check_in(meeting, actor=alice, channel=CheckInChannel.QR, now=meeting.start - dt.timedelta(minutes=10))
    assert Reservation.objects.get(pk=meeting.pk).checked_in_channel == "qr"


def test_checking_in_twice_keeps_the_first(meeting, alice, bob):
    first = meeting.start - dt.timedelta(minutes=1)
    checkin.check_in(meeting, actor=alice, channel=CheckInChannel.API, now=first)
    again = checkin.check_in(meeting, actor=bob, channel=CheckInChannel.PORTAL, now=meeting.start)
    assert (again.checked_in_at, again.checked_in_channel, again.checked_in_by_id) == (first, "api", alice.pk)


def test_a_released_reservation_cannot_be_checked_in(meeting, alice):
    Reservation.objects.filter(pk=meeting.pk).update(state=State.RELEASED, released_at=meeting.start + dt.timedelta(minutes=15))
    with pytest.raises(CheckInRefused, match="released at 09:15") as refused:
        checkin.check_in(meeting, actor=alice, channel=CheckInChannel.PORTAL, now=meeting.start + dt.timedelta(minutes=10))
    assert (refused.value.code, refused.value.status_code) == ("released", 409)


def test_a_cancelled_one_neither(meeting, alice):
    Reservation.objects.filter(pk=meeting.pk).update(state=State.CANCELLED)
    with pytest.raises(CheckInRefused, match="cancelled") as refused:
        checkin.check_in(meeting, actor=alice, channel=CheckInChannel.PORTAL, now=meeting.start)
    assert refused.value.code == "not_active"


def test_a_room_without_required_check_in_records_one_until_the_end(dojo, alice):
    row = book(actor=alice, room=dojo)
    checkin.check_in(row, actor=alice, channel=CheckInChannel.PORTAL, now=row.start + dt.timedelta(minutes=50))
    assert Reservation.objects.get(pk=row.pk).checked_in_at is not None


def test_a_booking_made_after_its_start_gets_its_window_from_its_creation(required_dojo, alice):
    row = book(actor=alice, room=required_dojo, start=days_ahead(1, 9))
    late = row.start + dt.timedelta(minutes=30)
    Reservation.objects.filter(pk=row.pk).update(created_at=late)
    row.refresh_from_db()
    assert checkin.checkin_window(row)[1] == late + dt.timedelta(minutes=15)


def test_an_unknown_channel_is_a_400(meeting, alice):
    with pytest.raises(CheckInRefused) as refused:
        checkin.check_in(meeting, actor=alice, channel="telepathy", now=meeting.start)
    assert refused.value.status_code == 400
