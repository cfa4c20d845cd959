"""The employee portal through Django's test client: pages, forms, every error
path shown as a form message, mode restrictions shown before acting, and query
counts that don't grow with the number of rows."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.models import CalendarProvider, PersonalToken
from reservations import rules, selectors, services
from reservations.models import Origin, Reservation, State, SyncEvent, SyncState
from tests.factories import (
    EquipmentFactory,
    FloorFactory,
    ReservationFactory,
    RoomFactory,
    UserFactory,
    days_ahead,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def unreachable_provider(db):
    """A provider whose hosts don't resolve: these tests never reach Exchange."""
    provider = CalendarProvider(
        name="Contoso", active=True, tenant_id="contoso", client_id="wsd-demo-client",
        authority_host="https://login.example.invalid", graph_base_url="https://graph.example.invalid/v1.0",
        delegated_user_email="reservations@contoso.example", organizer_account="reservations@contoso.example",
    )
    provider.client_secret = "demo-secret"
    provider.save()
    return provider


def connect_outlook(user, provider, *, revoked=False) -> PersonalToken:
    return PersonalToken.objects.create(
        user=user, provider=provider, account_email=user.email, token_cache_encrypted=crypto.encrypt("{}"),
        connected_at=timezone.now(), needs_reconnect=revoked,
    )


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def booking(day=1, start="09:00", end="10:00", **extra):
    data = {"subject": "Design review", "date": days_ahead(day, 9).date().isoformat(), "start_time": start, "end_time": end}
    data.update(extra)
    return data


def page(response) -> str:
    return response.content.decode()


# --- sign-in --------------------------------------------------------------------------------


def test_pages_require_sign_in(client, atlas):
    for url in ["/", "/my/", f"/rooms/{atlas.pk}/book/", "/reservations/1/cancel/", "/reservations/1/change/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_sign_in_page_and_wrong_password(client, alice):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and 'autocomplete="current-password"' in page(response)
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and 'role="alert"' in page(response)
    response = client.post("/accounts/login/", {"username": "alice", "password": "demo-password"})
    assert response.status_code == 302 and response["Location"] == "/"


# --- room finder -------------------------------------------------------------------------------


def test_finder_lists_rooms_with_their_day(alice_client, alice, bob, atlas, dojo):
    ReservationFactory(room=atlas, requested_for=bob, start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(1, 14), end=days_ahead(1, 15))
    response = alice_client.get("/", {"date": days_ahead(1, 9).date().isoformat(), "building": "hq"})
    assert response.status_code == 200
    html = page(response)
    assert "Atlas" in html and "Dojo" in html and "2 rooms" in html
    assert "09:00–10:00" in html and "14:00–15:00 (yours)" in html
    assert "Syncs with Outlook" in html and "Not in Outlook" in html


def test_finder_filters(alice_client, hq, atlas, dojo, projector):
    day = days_ahead(1, 9).date().isoformat()
    ReservationFactory(room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10))

    def names(**params):
        html = page(alice_client.get("/", {"date": day, **params}))
        return {name for name in ("Atlas", "Dojo") if f'class="room-name">{name}<' in html}

    assert names(capacity=7) == {"Atlas"}
    assert names(equipment="projector") == {"Atlas"}
    assert names(arrangement="U-shape") == {"Atlas"}
    assert names(floor=atlas.floor_id) == {"Atlas"}
    assert names(free_from="09:30", free_to="10:30", building="hq") == {"Atlas"}
    assert names(free_from="10:00", free_to="11:00", building="hq") == {"Atlas", "Dojo"}


@pytest.mark.parametrize("params", [
    {"capacity": "many"}, {"capacity": "-3"}, {"date": "31/31/2030"}, {"free_from": "10:00"},
    {"free_from": "11:00", "free_to": "10:00"}, {"building": "nowhere"}, {"equipment": "jetpack"},
    {"floor": "abc"}, {"page": "9999"}, {"arrangement": "<script>"},
])
def test_finder_bad_filters_are_form_errors_not_500s(alice_client, atlas, params):
    response = alice_client.get("/", params)
    assert response.status_code == 200
    if "page" not in params:
        assert "Check the filters" in page(response) or "field-error" in page(response)


def test_finder_floor_of_another_building(alice_client, atlas):
    other = FloorFactory(name="Ground")
    response = alice_client.get("/", {"building": "hq", "floor": other.pk})
    assert "is not in HQ" in page(response)


def test_finder_query_count_does_not_grow_with_rooms(alice_client, django_assert_max_num_queries, hq, projector):
    screen = EquipmentFactory(slug="screen", name="Screen")
    for index in range(30):
        room = RoomFactory(building=hq, name=f"Room {index:02}", equipment=[projector, screen], arrangements=["Boardroom"])
        for hour in (9, 11, 15):
            ReservationFactory(room=room, start=days_ahead(1, hour), end=days_ahead(1, hour + 1))
    with django_assert_max_num_queries(14):
        response = alice_client.get("/", {"date": days_ahead(1, 9).date().isoformat(), "building": "hq"})
    assert response.status_code == 200 and page(response).count('class="block') == 25 * 3  # first page


# --- booking ----------------------------------------------------------------------------------


def test_book_form_shows_times_in_the_building_time_zone(alice_client, atlas):
    response = alice_client.get(f"/rooms/{atlas.pk}/book/", {"date": "2030-05-04", "start": "09:30", "end": "10:30"})
    html = page(response)
    assert response.status_code == 200
    assert "Europe/Berlin" in html and 'value="09:30"' in html and 'value="2030-05-04"' in html
    assert "This reservation is for" in html  # Normal mode: on-behalf allowed
    assert 'name="frequency"' in html


def test_book_a_synced_room(alice_client, alice, atlas):
    response = alice_client.post(f"/rooms/{atlas.pk}/book/", booking(attendees="bob@contoso.example, Carol <carol@contoso.example>"))
    assert response.status_code == 302 and response["Location"] == "/my/"
    reservation = Reservation.objects.get()
    assert reservation.start == days_ahead(1, 9) and reservation.end == days_ahead(1, 10)
    assert reservation.state == State.AWAITING_CONFIRMATION and reservation.requested_for == alice
    assert sorted(a.email for a in reservation.attendees.all()) == ["bob@contoso.example", "carol@contoso.example"]
    my = page(alice_client.get("/my/"))
    assert "Awaiting confirmation from the room" in my or "Awaiting confirmation" in my
    assert "Sending to Outlook" in my


def test_book_for_someone_else_in_normal_mode(alice_client, alice, bob, atlas):
    response = alice_client.post(f"/rooms/{atlas.pk}/book/", booking(requested_for=bob.pk))
    assert response.status_code == 302
    assert Reservation.objects.get().requested_for == bob


def test_book_a_weekly_series(alice_client, atlas):
    data = booking(frequency="weekly", interval=1, ends="count", count=4)
    response = alice_client.post(f"/rooms/{atlas.pk}/book/", data, follow=True)
    assert "4 occurrences" in page(response)
    assert Reservation.objects.filter(series__isnull=False).count() == 4


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"subject": ""}, "subject", "This field is required"),
    ({"date": "tomorrow"}, "date", "Enter a valid date"),
    ({"start_time": "25:00"}, "start_time", "Enter a valid time"),
    ({"end_time": "08:00"}, "end_time", "The end must be after the start"),
    ({"attendees": "bob@, not an address"}, "attendees", "Not an email address"),
    ({"frequency": "weekly", "ends": "until"}, "until", "Give the date the series ends on"),
    ({"frequency": "weekly", "ends": "count"}, "count", "Give the number of occurrences"),
    ({"frequency": "yearly"}, "frequency", "Select a valid choice"),
    ({"interval": "0", "frequency": "daily", "ends": "count", "count": "3"}, "interval", "greater than or equal to 1"),
    ({"requested_for": "999999"}, "requested_for", "Select a valid choice"),
    ({"arrangement": "999999"}, "arrangement", "Select a valid choice"),
    ({"subject": "x" * 300}, "subject", "at most 255 characters"),
])
def test_booking_form_errors(alice_client, atlas, data, field, message):
    response = alice_client.post(f"/rooms/{atlas.pk}/book/", booking(**data))
    assert response.status_code == 200
    assert message in page(response), page(response)
    assert field in response.context["form"].errors
    assert not Reservation.objects.exists()


def test_service_errors_are_form_messages(alice_client, alice, bob, atlas, dojo, settings):
    ReservationFactory(room=atlas, requested_for=bob, start=days_ahead(1, 9), end=days_ahead(1, 10))
    taken = alice_client.post(f"/rooms/{atlas.pk}/book/", booking())
    assert taken.status_code == 200 and "Atlas is already booked" in page(taken)
    past = alice_client.post(f"/rooms/{dojo.pk}/book/", booking(day=-2))
    assert "You can&#x27;t book in the past" in page(past)
    crowd = ", ".join(f"guest{i}@contoso.example" for i in range(9))
    crowded = alice_client.post(f"/rooms/{dojo.pk}/book/", booking(attendees=crowd))
    assert "don&#x27;t fit in 6 seats" in page(crowded)
    assert "attendees" in crowded.context["form"].errors
    far = alice_client.post(f"/rooms/{dojo.pk}/book/", booking(day=settings.RESERVATION_BOOKING_HORIZON_DAYS + 5))
    assert "days ahead" in page(far)
    series_clash = alice_client.post(f"/rooms/{atlas.pk}/book/", booking(day=-6, frequency="daily", ends="count", count=3))
    assert series_clash.status_code == 200 and Reservation.objects.count() == 1
    group = alice_client.post(f"/rooms/{dojo.pk}/book/", booking(group="on"))
    assert "doesn&#x27;t take group reservations" in page(group)
    assert Reservation.objects.count() == 1


def test_unknown_or_unreservable_room_is_404(alice_client, hq):
    closed = RoomFactory(building=hq, name="Storage", reservable=False)
    assert alice_client.get(f"/rooms/{closed.pk}/book/").status_code == 404
    assert alice_client.get("/rooms/999999/book/").status_code == 404


# --- Personal mode: restrictions visible before acting --------------------------------------------


def test_personal_mode_hides_on_behalf_and_a_crafted_post_is_a_form_error(alice_client, mode, unreachable_provider, alice, bob, atlas, dojo):
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    form = page(alice_client.get(f"/rooms/{atlas.pk}/book/"))
    assert 'name="requested_for"' not in form and 'id="on-behalf-hidden"' in form
    assert "can only be made for yourself" in form
    crafted = alice_client.post(f"/rooms/{atlas.pk}/book/", booking(requested_for=bob.pk))
    assert crafted.status_code == 200 and "can only be made for yourself" in page(crafted)
    assert 'role="alert"' in page(crafted) and not Reservation.objects.exists()
    # a room that isn't synced still takes on-behalf bookings
    assert 'name="requested_for"' in page(alice_client.get(f"/rooms/{dojo.pk}/book/"))
    assert alice_client.post(f"/rooms/{dojo.pk}/book/", booking(requested_for=bob.pk)).status_code == 302


def test_personal_mode_without_outlook_disables_booking_with_the_reason(alice_client, mode, unreachable_provider, alice, atlas):
    mode("Personal")
    html = page(alice_client.get(f"/rooms/{atlas.pk}/book/"))
    assert 'id="outlook-required"' in html and "Connect your Outlook account first" in html
    assert 'id="book-submit" disabled' in html
    assert 'data-state="not_connected"' in html  # header badge
    refused = alice_client.post(f"/rooms/{atlas.pk}/book/", booking())
    assert "Connect your Outlook account first" in page(refused) and not Reservation.objects.exists()


def test_revoked_outlook_shows_the_reconnect_prompt(alice_client, mode, unreachable_provider, alice, atlas):
    mode("Personal")
    connect_outlook(alice, unreachable_provider, revoked=True)
    html = page(alice_client.get(f"/rooms/{atlas.pk}/book/"))
    assert "reconnect Outlook" in html and 'data-state="reconnect"' in html and "Reconnect Outlook</button>" in html


def test_personal_mode_group_reservation_disabled_with_reason(alice_client, mode, unreachable_provider, alice, hq):
    mode("Personal")
    connect_outlook(alice, unreachable_provider)
    room = RoomFactory(building=hq, name="Agora", synced=True, group_reservations_enabled=True)
    html = page(alice_client.get(f"/rooms/{room.pk}/book/"))
    assert "Group reservations aren&#x27;t available for Agora" in html
    assert 'name="group"' not in html


# --- my reservations ----------------------------------------------------------------------------


def test_my_reservations_shows_state_and_sync_status(alice_client, alice, bob, atlas, dojo):
    ReservationFactory(room=atlas, requested_for=alice, subject="Awaiting", state=State.AWAITING_CONFIRMATION,
                       sync_state=SyncState.PENDING, start=days_ahead(1, 8), end=days_ahead(1, 9))
    ReservationFactory(room=atlas, requested_for=alice, subject="Confirmed one", sync_state=SyncState.SYNCED,
                       start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=atlas, requested_for=alice, subject="Declined", state=State.REJECTED,
                       state_reason="The room declined: it is booked then.", start=days_ahead(1, 10), end=days_ahead(1, 11))
    ReservationFactory(room=atlas, requested_for=alice, subject="Missing", state=State.CONFLICTED,
                       state_reason="The meeting is missing from the room calendar.", start=days_ahead(1, 11), end=days_ahead(1, 12))
    failing = ReservationFactory(room=atlas, requested_for=alice, subject="Failing", sync_state=SyncState.ERROR,
                                 sync_error="Graph said 503", start=days_ahead(1, 12), end=days_ahead(1, 13))
    SyncEvent.objects.create(reservation=failing, type="create", state="new", attempts=3,
                             next_attempt_at=timezone.now() + dt.timedelta(minutes=5), error="503 Service Unavailable")
    gave_up = ReservationFactory(room=atlas, requested_for=alice, subject="Gave up", sync_state=SyncState.ERROR,
                                 sync_error="Graph said 500", start=days_ahead(1, 13), end=days_ahead(1, 14))
    SyncEvent.objects.create(reservation=gave_up, type="create", state="error", attempts=10, error="500")
    ReservationFactory(room=dojo, requested_for=bob, subject="Bob's own")
    ReservationFactory(room=dojo, requested_for=bob, requested_by=alice, subject="Booked for Bob", start=days_ahead(2, 9), end=days_ahead(2, 10))

    html = page(alice_client.get("/my/"))
    assert "Bob&#x27;s own" not in html and "Booked for Bob" in html and "for Bob" in html
    assert "Awaiting confirmation" in html and "Waiting for the room to accept" in html
    assert "In sync" in html
    assert "Rejected" in html and "The room declined: it is booked then." in html
    assert "Conflicted" in html and "missing from the room calendar" in html
    assert "Sync error" in html and "Attempt 3 of 10; next try" in html
    assert "Gave up after 10 attempts" in html
    assert 'data-state="rejected"' in html


def test_my_reservations_query_count_does_not_grow(alice_client, alice, atlas, dojo, mode, unreachable_provider):
    """Capabilities are worked out once per kind of row (room, where its meeting lives, whose it is),
    not once per row: 4 rows or 50, the same number of queries."""
    mode("Personal")
    connect_outlook(alice, unreachable_provider)

    def add_days(days):
        for day in days:
            room = atlas if day % 2 else dojo
            row = ReservationFactory(room=room, requested_for=alice, start=days_ahead(day, 9), end=days_ahead(day, 10),
                                     sync_mailbox="user", mailbox=alice.email, organizer=alice.email, event_id=f"E{day}")
            SyncEvent.objects.create(reservation=row, type="create", state="processed", attempts=1)
            ReservationFactory(room=room, requested_for=alice, start=days_ahead(day, 11), end=days_ahead(day, 12))

    add_days([1, 2])
    with CaptureQueriesContext(connection) as few:
        assert page(alice_client.get("/my/")).count('name="ids"') == 4
    add_days(range(3, 31))
    with CaptureQueriesContext(connection) as many:
        assert page(alice_client.get("/my/")).count('name="ids"') == 50
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def _rows_in_many_rooms(alice, bob, hq, first_day: int, rooms: int) -> None:
    """Per room: alice's own-calendar meeting, a meeting not yet placed by sync, one she booked for bob,
    and one created in Outlook; each room synced and distinct."""
    for n in range(rooms):
        day = first_day + n
        room = RoomFactory(building=hq, name=f"Room {first_day}-{n}", synced=True)
        ReservationFactory(room=room, requested_for=alice, start=days_ahead(day, 8), end=days_ahead(day, 9),
                           sync_mailbox="user", mailbox=alice.email, organizer=alice.email, event_id=f"E{day}")
        ReservationFactory(room=room, requested_for=alice, start=days_ahead(day, 10), end=days_ahead(day, 11))
        ReservationFactory(room=room, requested_for=bob, requested_by=alice, start=days_ahead(day, 12), end=days_ahead(day, 13))
        ReservationFactory(room=room, requested_for=alice, start=days_ahead(day, 14), end=days_ahead(day, 15), origin=Origin.EXCHANGE,
                           sync_mailbox="other", mailbox=room.mailbox, organizer="carol@fabrikam.example", event_id=f"X{day}")


@pytest.mark.parametrize("sync_mode", ["Normal", "Strict", "Personal"])
def test_my_reservations_query_count_does_not_grow_with_distinct_rooms(alice_client, alice, hq, mode, unreachable_provider, sync_mode):
    mode(sync_mode)
    if sync_mode == "Strict":
        unreachable_provider.rooms_organize_own_meetings = True
        unreachable_provider.save()
    connect_outlook(alice, unreachable_provider)
    bob = UserFactory(username="bob")

    _rows_in_many_rooms(alice, bob, hq, first_day=1, rooms=2)
    with CaptureQueriesContext(connection) as few:
        assert page(alice_client.get("/my/")).count('name="ids"') >= 1
    _rows_in_many_rooms(alice, bob, hq, first_day=3, rooms=10)
    with CaptureQueriesContext(connection) as many:
        alice_client.get("/my/")

    assert len(many) == len(few), [q["sql"][:150] for q in many.captured_queries]


@pytest.mark.parametrize("sync_mode", ["Normal", "Strict", "Personal"])
def test_capabilities_many_at_once_answer_as_one_at_a_time(alice, hq, mode, unreachable_provider, sync_mode, django_assert_max_num_queries):
    mode(sync_mode)
    connect_outlook(alice, unreachable_provider, revoked=sync_mode == "Personal")
    bob = UserFactory(username="bob")
    _rows_in_many_rooms(alice, bob, hq, first_day=1, rooms=3)
    rows = list(selectors.reservation_visible_to(user=alice))
    one_at_a_time = {row.pk: rules.ui_capabilities(alice, reservation=row) for row in rows}

    rows = list(selectors.reservation_visible_to(user=alice))
    # profiles, provider, Outlook connection and its reconnect flag, and (the cache is filled only
    # after commit) the mode and blocker-user properties
    with django_assert_max_num_queries(6):
        many = rules.ui_capabilities_many(alice, rows)

    assert many == one_at_a_time


def test_my_reservations_shows_disabled_actions_with_reasons(alice_client, mode, unreachable_provider, alice, bob, atlas):
    mode("Strict")
    ReservationFactory(room=atlas, requested_for=alice, subject="Own calendar", sync_mailbox="user", mailbox=alice.email,
                       organizer=alice.email, event_id="E1")
    ReservationFactory(room=atlas, requested_for=alice, subject="From Outlook", origin=Origin.EXCHANGE, sync_mailbox="other",
                       mailbox=atlas.mailbox, organizer=alice.email, event_id="E2", start=days_ahead(2, 9), end=days_ahead(2, 10))
    html = page(alice_client.get("/my/"))
    assert "in Strict mode such reservations can&#x27;t be changed here" in html
    assert "This meeting was created in Outlook: change it in Outlook." in html
    assert html.count('class="btn btn-small" disabled') >= 3  # change + cancel of the first, change of the second


# --- change -------------------------------------------------------------------------------------


def test_change_a_reservation(alice_client, alice, dojo):
    row = ReservationFactory(room=dojo, requested_for=alice, subject="Old", start=days_ahead(1, 9), end=days_ahead(1, 10))
    form = page(alice_client.get(f"/reservations/{row.pk}/change/"))
    assert 'value="Old"' in form and 'value="09:00"' in form
    response = alice_client.post(f"/reservations/{row.pk}/change/", booking(subject="New", start="10:00", end="11:30"))
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.subject, row.start, row.end) == ("New", days_ahead(1, 10), days_ahead(1, 11, 30))


def test_change_errors_are_form_messages(alice_client, alice, bob, dojo):
    row = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=dojo, requested_for=bob, start=days_ahead(1, 11), end=days_ahead(1, 12))
    taken = alice_client.post(f"/reservations/{row.pk}/change/", booking(start="11:00", end="12:00"))
    assert taken.status_code == 200 and "Dojo is already booked" in page(taken)
    bad = alice_client.post(f"/reservations/{row.pk}/change/", booking(start="xx"))
    assert "Enter a valid time" in page(bad)
    assert alice_client.get("/reservations/999999/change/").status_code == 404
    bobs = ReservationFactory(room=dojo, requested_for=bob, start=days_ahead(3, 9), end=days_ahead(3, 10))
    assert alice_client.get(f"/reservations/{bobs.pk}/change/").status_code == 404


def test_change_of_an_outlook_meeting_is_refused_with_differences(alice_client, alice, atlas, monkeypatch):
    row = ReservationFactory(room=atlas, requested_for=alice, subject="Outlook meeting", origin=Origin.EXCHANGE,
                             sync_mailbox="other", mailbox=atlas.mailbox, event_id="E1")
    html = page(alice_client.get(f"/reservations/{row.pk}/change/"))
    assert 'id="edit-blocked"' in html and "change it in Outlook" in html and "<fieldset disabled>" in html
    # Even when the page is bypassed, the service's refusal lists each difference.
    monkeypatch.setattr(rules, "ui_capabilities", lambda *a, **k: {**_caps(), "can_edit": True})
    refused = alice_client.post(f"/reservations/{row.pk}/change/", booking(subject="Renamed", start="10:00", end="11:00"))
    text = page(refused)
    assert refused.status_code == 200 and "created in Outlook" in text
    assert "<strong>subject</strong>: Outlook meeting → Renamed" in text and "<strong>time</strong>" in text
    row.refresh_from_db()
    assert row.subject == "Outlook meeting"


def _caps():
    return {"mode": "Normal", "can_book_on_behalf": True, "on_behalf_reason": "", "can_group": True, "group_reason": "",
            "outlook_connection_required": False, "outlook_reason": "", "can_edit": True, "edit_reason": "",
            "can_cancel": True, "cancel_reason": "", "offer_cancel_meeting_choice": False}


def test_change_moves_a_reservation_to_another_room_of_the_building(alice_client, alice, hq, atlas, dojo):
    RoomFactory(name="Elsewhere")  # another building: not offered
    row = ReservationFactory(room=dojo, requested_for=alice, subject="Retro", start=days_ahead(1, 9), end=days_ahead(1, 10),
                             arrangement=dojo.default_arrangement())
    html = page(alice_client.get(f"/reservations/{row.pk}/change/"))
    assert 'name="room"' in html and "Atlas (8 seats, Outlook room)" in html and "Elsewhere" not in html
    assert "puts the meeting in Outlook" in html  # what the move does, before the person acts

    response = alice_client.post(f"/reservations/{row.pk}/change/", booking(subject="Retro", room=atlas.pk, arrangement=row.arrangement_id))
    assert response.status_code == 302, page(response)
    row.refresh_from_db()
    assert row.room == atlas and row.arrangement == atlas.default_arrangement()  # the new room's default layout
    assert row.state == State.AWAITING_CONFIRMATION
    event = SyncEvent.objects.get(reservation=row)
    assert event.type == "create" and event.details["previous_room_id"] == dojo.pk  # a new meeting for a synced room


def test_the_change_form_says_what_a_room_move_does_to_the_meeting(alice_client, mode, unreachable_provider, alice, atlas):
    row = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(1, 9), end=days_ahead(1, 10),
                             sync_mailbox="other", mailbox="reservations@contoso.example", organizer="reservations@contoso.example", event_id="E1")
    mode("Strict")
    assert "The Outlook meeting is kept: only its room changes" in page(alice_client.get(f"/reservations/{row.pk}/change/"))
    unreachable_provider.rooms_organize_own_meetings = True
    unreachable_provider.save()
    html = page(alice_client.get(f"/reservations/{row.pk}/change/"))
    assert "moving to another room with a mailbox cancels this meeting and that room sends everyone a new invitation" in html


def test_a_room_move_into_a_taken_slot_is_a_form_message(alice_client, alice, bob, hq, dojo):
    other = RoomFactory(building=hq, name="Kiva")
    ReservationFactory(room=other, requested_for=bob, start=days_ahead(1, 9), end=days_ahead(1, 10))
    row = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9), end=days_ahead(1, 10))
    response = alice_client.post(f"/reservations/{row.pk}/change/", booking(room=other.pk))
    assert response.status_code == 200 and "Kiva is already booked" in page(response)
    row.refresh_from_db()
    assert row.room == dojo


def test_change_a_whole_series(alice_client, alice, dojo):
    first = services.reservation_create(actor=alice, room=dojo, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Daily",
                                        recurrence=__import__("reservations.recurrence").recurrence.Recurrence(frequency="daily", count=3))
    html = page(alice_client.get(f"/reservations/{first.pk}/change/"))
    assert "This and all later occurrences" in html
    response = alice_client.post(f"/reservations/{first.pk}/change/", booking(subject="Daily standup", scope="series"))
    assert response.status_code == 302
    assert set(Reservation.objects.values_list("subject", flat=True)) == {"Daily standup"}


# --- cancel -------------------------------------------------------------------------------------


def test_single_cancel_dialog_offers_the_meeting_choice_for_own_meetings(alice_client, mode, unreachable_provider, alice, atlas):
    mode("Normal")
    row = ReservationFactory(room=atlas, requested_for=alice, sync_mailbox="user", mailbox=alice.email,
                             organizer=alice.email, event_id="E1")
    html = page(alice_client.get(f"/reservations/{row.pk}/cancel/"))
    assert 'data-dialog-kind="single"' in html and "Also cancel the meeting on people&#x27;s calendars" in html
    response = alice_client.post(f"/reservations/{row.pk}/cancel/", {"cancel_meeting": "on", "reason": "Not needed"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == State.CANCELLED and row.state_reason == "Not needed"
    assert SyncEvent.objects.filter(reservation=row, type="delete").exists()


def test_cancel_dialog_hides_the_choice_for_room_organizer_meetings(alice_client, mode, unreachable_provider, alice, atlas):
    mode("Strict")
    unreachable_provider.rooms_organize_own_meetings = True
    unreachable_provider.save()
    row = ReservationFactory(room=atlas, requested_for=alice, sync_mailbox="other", mailbox=atlas.mailbox,
                             organizer=atlas.mailbox, event_id="E1")
    html = page(alice_client.get(f"/reservations/{row.pk}/cancel/"))
    assert "Also cancel the meeting" not in html and "The room organizes this meeting" in html
    assert alice_client.post(f"/reservations/{row.pk}/cancel/", {}).status_code == 302


def test_recurring_cancel_dialog(alice_client, alice, atlas):
    from reservations.recurrence import Recurrence

    first = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 9), end=days_ahead(1, 10), subject="Weekly",
                                        recurrence=Recurrence(frequency="weekly", count=3))
    html = page(alice_client.get(f"/reservations/{first.pk}/cancel/"))
    assert 'data-dialog-kind="recurring"' in html and "Every remaining occurrence of the series" in html and "(3 left)" in html
    assert "Also cancel the meeting on people&#x27;s calendars" in html
    alice_client.post(f"/reservations/{first.pk}/cancel/", {"scope": "occurrence"})
    assert Reservation.objects.filter(state=State.CANCELLED).count() == 1
    second = Reservation.objects.filter(state__in=["awaiting_confirmation"]).first()
    alice_client.post(f"/reservations/{second.pk}/cancel/", {"scope": "series"})
    assert Reservation.objects.filter(state=State.CANCELLED).count() == 3


def test_cancel_errors_are_messages(alice_client, mode, unreachable_provider, alice, bob, atlas):
    over = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(-1, 9), end=days_ahead(-1, 10))
    html = page(alice_client.get(f"/reservations/{over.pk}/cancel/"))
    assert 'id="cancel-blocked"' in html and "over" in html
    assert alice_client.post(f"/reservations/{over.pk}/cancel/", {}).status_code == 200
    assert Reservation.objects.get(pk=over.pk).state == State.CONFIRMED
    bad_scope = ReservationFactory(room=atlas, requested_for=alice)
    response = alice_client.post(f"/reservations/{bad_scope.pk}/cancel/", {"scope": "everything", "reason": "x" * 600})
    assert response.status_code == 200 and "Select a valid choice" in page(response)
    mode("Personal")  # alice has no Outlook connection: her own-calendar meeting can't be cancelled here
    own = ReservationFactory(room=atlas, requested_for=alice, sync_mailbox="user", mailbox=alice.email, event_id="E9",
                             start=days_ahead(4, 9), end=days_ahead(4, 10))
    refused = alice_client.post(f"/reservations/{own.pk}/cancel/", {})
    assert "Connect your Outlook account first" in page(refused)
    assert Reservation.objects.get(pk=own.pk).state == State.CONFIRMED


def test_multi_select_cancel(alice_client, alice, atlas, django_assert_max_num_queries):
    rows = [ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(i + 1, 9), end=days_ahead(i + 1, 10),
                               sync_mailbox="user", mailbox=alice.email, organizer=alice.email, event_id=f"E{i}")
            for i in range(6)]
    ids = [row.pk for row in rows]
    with django_assert_max_num_queries(16):
        html = page(alice_client.post("/reservations/cancel/", {"ids": ids}))
    assert 'data-dialog-kind="multi"' in html and "Cancel 6 reservations" in html
    assert "Also cancel the meeting on people&#x27;s calendars" in html
    response = alice_client.post("/reservations/cancel/", {"ids": ids, "confirm": "1", "cancel_meeting": "on"})
    assert response.status_code == 302
    assert Reservation.objects.filter(state=State.CANCELLED).count() == 6


def test_multi_select_cancel_hides_the_choice_when_a_room_organizes_one(alice_client, mode, unreachable_provider, alice, atlas, dojo):
    mode("Strict")
    unreachable_provider.rooms_organize_own_meetings = True
    unreachable_provider.save()
    room_meeting = ReservationFactory(room=atlas, requested_for=alice, sync_mailbox="other", mailbox=atlas.mailbox,
                                      organizer=atlas.mailbox, event_id="E1")
    plain = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(2, 9), end=days_ahead(2, 10))
    html = page(alice_client.post("/reservations/cancel/", {"ids": [room_meeting.pk, plain.pk]}))
    assert "Also cancel the meeting" not in html and 'id="meeting-note"' in html


def test_multi_select_cancel_errors(alice_client, alice, bob, dojo):
    empty = alice_client.post("/reservations/cancel/", {"ids": ["abc"]}, follow=True)
    assert "Choose at least one reservation" in page(empty)
    bobs = ReservationFactory(room=dojo, requested_for=bob)
    nothing = alice_client.post("/reservations/cancel/", {"ids": [bobs.pk], "confirm": "1"}, follow=True)
    assert "Choose at least one reservation" in page(nothing)
    assert Reservation.objects.get(pk=bobs.pk).state == State.CONFIRMED
    mine = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(2, 9), end=days_ahead(2, 10))
    over = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(-2, 9), end=days_ahead(-2, 10))
    refused = alice_client.post("/reservations/cancel/", {"ids": [mine.pk, over.pk], "confirm": "1"})
    assert refused.status_code == 200 and "is over" in page(refused)
    assert Reservation.objects.get(pk=mine.pk).state == State.CONFIRMED  # all or nothing


def test_get_on_post_only_urls_is_405_not_500(alice_client):
    assert alice_client.get("/reservations/cancel/").status_code == 405
    assert alice_client.put("/my/").status_code == 405
