"""The room panel (issue 15 item 3) without Exchange: device tokens (hashed, shown once,
revocable, kept in a cookie after the first visit, no user session), the page and its state,
book now / extend / end early through the services in a room that doesn't sync, subjects only
where the room allows them, bad input as 4xx JSON, and a bounded number of queries."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from reservations.models import Reservation, Source, State
from tests.booking import book
from tests.factories import ReservationFactory
from workplace.models import RoomPanel, panel_token_digest
from workplace.panels import room_panel_create, room_panel_revoke

pytestmark = pytest.mark.django_db


def panel_client(client, token: str):
    """Sign ``client`` in as the panel the way a tablet does: open the admin's URL once."""
    response = client.get(reverse("portal:panel") + f"?token={token}")
    assert response.status_code == 302 and response["Location"] == reverse("portal:panel")
    return client


def post_action(client, action: str, **fields):
    return client.post(reverse("portal:panel_action", args=[action]), fields)


def minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.fixture
def dojo_panel(dojo):
    return room_panel_create(room=dojo, name="Dojo door")


def test_the_token_is_stored_only_as_a_digest_and_the_panel_has_its_own_identity(dojo_panel):
    panel, token = dojo_panel
    row = RoomPanel.objects.get(pk=panel.pk)
    assert row.token_digest == panel_token_digest(token) != token and token not in row.token_prefix + row.token_digest
    assert row.token_prefix == token[:8]
    assert not panel.user.has_usable_password() and not panel.user.is_staff and panel.user.email == ""
    assert panel.user.profile.has_mailbox is False


def test_the_url_carries_the_token_once_then_a_cookie_and_no_user_session(client, dojo_panel):
    _, token = dojo_panel
    response = client.get(reverse("portal:panel") + f"?token={token}")
    assert response.status_code == 302
    cookie = response.cookies["room_panel"]
    assert cookie.value == token and cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/panel/"
    page = client.get(reverse("portal:panel"))
    assert page.status_code == 200 and b"Dojo" in page.content and b"Free for the rest of the day" in page.content
    assert "_auth_user_id" not in client.session  # no person is signed in
    assert client.get(reverse("portal:my_reservations")).status_code == 302  # the portal still asks to sign in


def test_an_unknown_or_revoked_token_is_refused(client, dojo_panel):
    panel, token = dojo_panel
    assert client.get(reverse("portal:panel") + "?token=not-a-token").status_code == 403
    assert client.get(reverse("portal:panel_state"), HTTP_AUTHORIZATION="Panel nope").status_code == 401
    panel_client(client, token)
    assert client.get(reverse("portal:panel_state")).status_code == 200
    room_panel_revoke(panel=panel)
    page = client.get(reverse("portal:panel"))
    assert page.status_code == 403 and b"signed out" in page.content
    client.cookies["room_panel"] = token  # the tablet still holds the cookie
    refused = client.get(reverse("portal:panel_state"))
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    assert post_action(client, "book", minutes=15).status_code == 401
    assert not Reservation.objects.exists()
    assert client.get(reverse("portal:panel") + f"?token={token}").status_code == 403


def test_book_now_books_up_to_the_next_meeting_with_the_panel_as_requester(client, dojo, dojo_panel, alice):
    panel, token = dojo_panel
    now = minute(timezone.now())
    ReservationFactory(room=dojo, requested_for=alice, subject="Board", start=now + dt.timedelta(minutes=40), end=now + dt.timedelta(minutes=70))
    panel_client(client, token)
    offered = client.get(reverse("portal:panel_state")).json()["actions"]["book_now"]
    assert [o["minutes"] for o in offered] == [15, 30, 60]  # 60 reaches the next meeting: ends at its start
    response = post_action(client, "book", minutes=60)
    assert response.status_code == 200, response.json()
    r = Reservation.objects.get(source=Source.ROOM_PANEL)
    assert (r.requested_by, r.requested_for, r.state) == (panel.user, panel.user, State.CONFIRMED)
    assert r.end == now + dt.timedelta(minutes=40) and r.start in (now, now + dt.timedelta(minutes=1))
    state = response.json()["state"]
    assert state["status"] == "busy" and state["current"]["title"] == "Booked" and state["next"]["title"] == "Booked"
    assert post_action(client, "book", minutes=15).status_code == 409  # the room is taken now


def test_extend_and_end_early_in_a_room_that_does_not_sync(client, dojo, dojo_panel, alice):
    _, token = dojo_panel
    now = minute(timezone.now())
    r = book(actor=alice, room=dojo, start=now, end=now + dt.timedelta(minutes=30))
    panel_client(client, token)
    assert post_action(client, "extend", reservation=r.pk, minutes=30).status_code == 200
    r.refresh_from_db()
    assert r.end == now + dt.timedelta(minutes=60)
    assert post_action(client, "end", reservation=r.pk).status_code == 200
    r.refresh_from_db()
    assert r.end == now + dt.timedelta(minutes=5) and r.state == State.CONFIRMED  # a reservation lasts at least 5 minutes


def test_subjects_show_only_where_the_room_allows(client, dojo, dojo_panel, alice):
    _, token = dojo_panel
    now = minute(timezone.now())
    ReservationFactory(room=dojo, requested_for=alice, subject="Salary review", start=now + dt.timedelta(hours=1), end=now + dt.timedelta(hours=2))
    panel_client(client, token)
    state = client.get(reverse("portal:panel_state")).json()
    assert state["next"]["title"] == "Booked" and "Salary review" not in str(state)
    assert b"Salary review" not in client.get(reverse("portal:panel")).content
    dojo.show_subjects = True  # the room's one privacy setting: the portal's calendars and the panel
    dojo.save(update_fields=["show_subjects"])
    assert client.get(reverse("portal:panel_state")).json()["next"]["title"] == "Salary review"
    assert b"Salary review" in client.get(reverse("portal:panel")).content


def test_one_privacy_setting_governs_the_portal_grid_the_panel_and_the_api(client, dojo, dojo_panel, alice, bob):
    """``Room.show_subjects`` is the only switch: off, a passer-by sees "Busy" in the portal and
    "Booked" at the door; on, the subject everywhere. The API reports the setting."""
    _, token = dojo_panel
    # Tomorrow at 10:00 in the room's zone: inside the grid's hours whatever the time of the run
    # (now + 1 h fell past the grid's last hour in the evening), and still the panel's next meeting.
    tz = dojo.building.tzinfo
    tomorrow = timezone.localtime(timezone.now(), tz).date() + dt.timedelta(days=1)
    start = dt.datetime.combine(tomorrow, dt.time(10), tzinfo=tz)
    ReservationFactory(room=dojo, requested_for=alice, requested_by=alice, subject="Salary review", start=start, end=start + dt.timedelta(hours=1))
    tablet, person = client.__class__(), client.__class__()
    panel_client(tablet, token)
    person.force_login(bob)  # not booked, not staff
    grid = reverse("portal:room_week", args=[dojo.pk])
    week = {"week": timezone.localtime(start, dojo.building.tzinfo).date().isoformat()}

    def seen() -> tuple[bool, bool, bool]:
        api = person.get(reverse("api:room-detail", args=[dojo.pk])).json()
        return ("Salary review" in person.get(grid, week).content.decode(),
                tablet.get(reverse("portal:panel_state")).json()["next"]["title"] == "Salary review",
                api["show_subjects"])

    assert seen() == (False, False, False)
    dojo.show_subjects = True
    dojo.save(update_fields=["show_subjects"])
    assert seen() == (True, True, True)


@pytest.mark.parametrize("action, fields", [
    ("book", {"minutes": "45"}), ("book", {"minutes": "abc"}), ("book", {}), ("book", {"minutes": "١٥"}),
    ("extend", {"reservation": "x", "minutes": "15"}), ("extend", {"reservation": "99999", "minutes": "15"}),
    ("end", {"reservation": "-1"}), ("end", {}),
])
def test_bad_input_is_a_4xx_with_the_apis_error_shape_and_changes_nothing(client, dojo_panel, action, fields):
    _, token = dojo_panel
    panel_client(client, token)
    response = post_action(client, action, **fields)
    assert 400 <= response.status_code < 500
    assert set(response.json()) >= {"message", "extra"}
    assert not Reservation.objects.exists()


def test_only_the_meeting_happening_now_in_this_room_can_be_extended_or_ended(client, dojo, dojo_panel, alice, atlas):
    _, token = dojo_panel
    later = ReservationFactory(room=dojo, requested_for=alice, start=timezone.now() + dt.timedelta(hours=2), end=timezone.now() + dt.timedelta(hours=3))
    elsewhere = ReservationFactory(room=atlas, requested_for=alice, start=timezone.now() - dt.timedelta(minutes=5), end=timezone.now() + dt.timedelta(hours=1))
    panel_client(client, token)
    assert post_action(client, "end", reservation=later.pk).status_code == 409
    assert post_action(client, "extend", reservation=elsewhere.pk, minutes=15).status_code == 400
    assert Reservation.objects.get(pk=later.pk).end == later.end and Reservation.objects.get(pk=elsewhere.pk).end == elsewhere.end


def test_the_state_costs_the_same_queries_whatever_the_day_holds(client, dojo, dojo_panel, alice, django_assert_max_num_queries):
    _, token = dojo_panel
    panel_client(client, token)
    now = minute(timezone.now())
    local_midnight = timezone.localtime(now, dojo.building.tzinfo).replace(hour=0, minute=0)
    for i in range(12):
        start = local_midnight + dt.timedelta(hours=i * 2)
        ReservationFactory(room=dojo, requested_for=alice, start=start, end=start + dt.timedelta(minutes=50))
    with django_assert_max_num_queries(8):
        state = client.get(reverse("portal:panel_state")).json()
    assert len(state["timeline"]["meetings"]) == 12


@pytest.fixture
def checkin_dojo(dojo):
    dojo.checkin_required = True
    dojo.save(update_fields=["checkin_required"])
    return dojo


def test_check_in_at_the_panel_within_the_window(client, checkin_dojo, dojo_panel, alice):
    _, token = dojo_panel
    now = minute(timezone.now())
    r = book(actor=alice, room=checkin_dojo, start=now + dt.timedelta(minutes=5), hours=1)  # its window opened 10 min before
    panel_client(client, token)
    offered = client.get(reverse("portal:panel_state")).json()["actions"]["check_in"]
    assert offered["reservation"] == r.pk  # the next meeting, its window open
    response = post_action(client, "check-in", reservation=r.pk)
    assert response.status_code == 200, response.json()
    r.refresh_from_db()
    assert r.checked_in_at is not None and r.checked_in_channel == "room_panel" and r.checked_in_by is None
    state = response.json()["state"]
    assert state["actions"]["check_in"] is None and state["next"]["checked_in"] is True


def test_check_in_outside_the_window_or_elsewhere_is_refused(client, checkin_dojo, dojo_panel, alice, atlas):
    _, token = dojo_panel
    later = book(actor=alice, room=checkin_dojo, start=minute(timezone.now()) + dt.timedelta(hours=2), hours=1)
    elsewhere = book(actor=alice, room=atlas, start=minute(timezone.now()) + dt.timedelta(minutes=5), hours=1)
    panel_client(client, token)
    assert client.get(reverse("portal:panel_state")).json()["actions"]["check_in"] is None
    response = post_action(client, "check-in", reservation=later.pk)
    assert response.status_code == 409 and response.json()["code"] == "outside_window" and "opens at" in response.json()["message"]
    assert post_action(client, "check-in", reservation=elsewhere.pk).status_code == 400
    assert not Reservation.objects.filter(checked_in_at__isnull=False).exists()


def test_with_check_in_at_the_panel_turned_off_the_panel_says_where_to_check_in(client, checkin_dojo, dojo_panel, alice):
    from exchange_auth import properties

    properties.set_value(properties.CHECKIN_ANYONE_AT_PANEL, False)
    _, token = dojo_panel
    r = book(actor=alice, room=checkin_dojo, start=minute(timezone.now()) + dt.timedelta(minutes=5), hours=1)
    panel_client(client, token)
    actions = client.get(reverse("portal:panel_state")).json()["actions"]
    assert actions["check_in"] is None and "QR code" in actions["check_in_reason"]
    assert post_action(client, "check-in", reservation=r.pk).status_code == 403
