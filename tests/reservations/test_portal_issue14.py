"""Issue 14 through Django's test client: the weekly series' weekdays, sign-in by email,
the live-status endpoint (visible rows only, a fixed number of queries), plain sync
errors, and the help texts aria-describedby names."""

import datetime as dt

import pytest
from django.contrib.auth import authenticate
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import formats

from exchange_auth.models import CalendarProvider
from reservations.models import Reservation, ReservationSeries, State, SyncEvent, SyncState
from reservations.sync_messages import FALLBACK, plain_sync_error
from tests.factories import BERLIN, ReservationFactory, RoomFactory, UserFactory, days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def next_monday() -> dt.date:
    today = dt.datetime.now(BERLIN).date()
    return today + dt.timedelta(days=7 - today.weekday())


def test_a_weekly_series_on_monday_and_wednesday_without_javascript(alice_client, dojo):
    monday = next_monday()
    response = alice_client.post(f"/rooms/{dojo.pk}/book/", {
        "subject": "Stand-up", "date": monday.isoformat(), "start_time": "09:00", "end_time": "09:15",
        "arrangement": dojo.default_arrangement().pk, "frequency": "weekly", "interval": "1",
        "weekdays": ["1", "3"], "ends": "count", "count": "6",
    })
    assert response.status_code == 302
    days = [r.start.astimezone(BERLIN).date() for r in Reservation.objects.order_by("start")]
    assert days == [monday + dt.timedelta(days=d) for d in (0, 2, 7, 9, 14, 16)]
    assert ReservationSeries.objects.get().weekdays == [1, 3]


def test_weekdays_are_ignored_for_a_monthly_series(alice_client, dojo):
    monday = next_monday()
    alice_client.post(f"/rooms/{dojo.pk}/book/", {
        "subject": "Review", "date": monday.isoformat(), "start_time": "09:00", "end_time": "10:00",
        "arrangement": dojo.default_arrangement().pk, "frequency": "monthly", "weekdays": ["3"], "ends": "count", "count": "2",
    })
    assert Reservation.objects.count() == 2 and ReservationSeries.objects.get().weekdays == []


def test_the_booking_form_draws_weekdays_and_help_text_ids_match(alice_client, dojo):
    html = alice_client.get(f"/rooms/{dojo.pk}/book/").content.decode()
    assert 'id="weekdays"' in html and 'value="3"' in html and "Wednesday" in html
    assert 'aria-describedby="id_date_helptext"' in html and 'id="id_date_helptext"' in html
    assert 'aria-describedby="id_attendees_helptext"' in html and 'id="id_attendees_helptext"' in html


@pytest.mark.parametrize("login", ["alice@contoso.example", "ALICE@contoso.EXAMPLE", "alice", "Alice"])
def test_sign_in_by_email_or_username(alice, login):
    assert authenticate(username=login, password="demo-password") == alice


def test_sign_in_refuses_a_wrong_password_an_inactive_user_and_a_shared_email(alice, bob):
    assert authenticate(username="alice@contoso.example", password="wrong") is None
    UserFactory(username="carol", email="shared@contoso.example")
    UserFactory(username="carol2", email="Shared@contoso.example")
    assert authenticate(username="shared@contoso.example", password="demo-password") is None
    assert authenticate(username="carol", password="demo-password") is not None
    bob.is_active = False
    bob.save()
    assert authenticate(username="bob@contoso.example", password="demo-password") is None


def test_the_login_page_accepts_the_email(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@contoso.example", "password": "demo-password"})
    assert response.status_code == 302
    assert "Email or username" in client.get("/accounts/login/").content.decode()


def test_live_status_shows_only_my_reservations_in_fixed_queries(alice_client, alice, bob, atlas):
    mine = [ReservationFactory(room=atlas, requested_for=alice, subject=f"Mine {n}", state=State.AWAITING_CONFIRMATION,
                               sync_state=SyncState.PENDING, start=days_ahead(1 + n, 9), end=days_ahead(1 + n, 10)) for n in range(3)]
    SyncEvent.objects.create(reservation=mine[0], type="create", state="new", attempts=2, error="503 Service Unavailable")
    theirs = ReservationFactory(room=atlas, requested_for=bob, requested_by=bob, subject="Bob's", start=days_ahead(9, 9), end=days_ahead(9, 10))
    ids = ",".join(str(r.pk) for r in [*mine, theirs])
    alice_client.get(f"/my/status/?ids={ids}")  # warm: session, provider lookups
    with CaptureQueriesContext(connection) as few:
        body = alice_client.get(f"/my/status/?ids={mine[0].pk}").json()
    with CaptureQueriesContext(connection) as many:
        body = alice_client.get(f"/my/status/?ids={ids}").json()
    assert len(many) == len(few)
    rows = {row["id"]: row for row in body["reservations"]}
    assert set(rows) == {r.pk for r in mine}
    assert rows[mine[0].pk]["moving"] and rows[mine[0].pk]["state_label"] == "Awaiting confirmation"
    assert "503" not in rows[mine[0].pk]["sync_html"] and "busy or unreachable" in rows[mine[0].pk]["sync_html"]

    mine[1].state, mine[1].sync_state = State.CONFIRMED, SyncState.SYNCED
    mine[1].save()
    row = alice_client.get(f"/my/status/?ids={mine[1].pk}").json()["reservations"][0]
    assert not row["moving"] and "Confirmed" in row["state_html"] and "In sync" in row["sync_html"]


def test_live_status_needs_sign_in_and_ignores_junk(alice_client):
    assert Client().get("/my/status/?ids=1").status_code == 302
    assert alice_client.get("/my/status/?ids=x,,-1").json() == {"reservations": []}


@pytest.mark.parametrize(("raw", "plain"), [
    ("Graph said 403 ErrorAccessDenied: Access is denied.", "Outlook refused access"),
    ("503 Service Unavailable", "busy or unreachable"),
    ("ErrorItemNotFound", "doesn't know this calendar"),
    ("something odd", FALLBACK),
])
def test_plain_sync_errors(raw, plain):
    assert plain in plain_sync_error(raw)


def test_my_reservations_shows_plain_errors_and_admins_the_raw_one(client, alice, admin, atlas):
    failing = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Failing", sync_state=SyncState.ERROR,
                                 sync_error="Graph said 403 ErrorAccessDenied")
    client.force_login(alice)
    html = client.get("/my/").content.decode()
    assert "Outlook refused access" in html and "ErrorAccessDenied" not in html
    client.force_login(admin)
    html = client.get(f"/reservations/{failing.pk}/").content.decode()
    assert "Outlook refused access" in html and "ErrorAccessDenied" in html


def test_cancel_selected_names_the_reservations_the_room_handles(client, alice, dojo):
    a = ReservationFactory(room=dojo, requested_for=alice, subject="A")
    b = ReservationFactory(room=dojo, requested_for=alice, subject="B", start=days_ahead(2, 9), end=days_ahead(2, 10))
    client.force_login(alice)
    html = client.post("/reservations/cancel/", {"ids": [a.pk, b.pk]}).content.decode()
    assert "These rooms aren't in Outlook" in html and "organized by a room" not in html


def test_admin_and_outlook_page_times_are_24_hour_with_the_zone_named():
    moment = dt.datetime(2026, 12, 1, 23, 33, tzinfo=dt.UTC)
    assert formats.date_format(moment, "DATETIME_FORMAT") == "1 Dec 2026, 23:33 UTC"


def test_this_reservation_is_for_lists_people_by_name_without_service_accounts(client, alice, bob, admin):
    provider = CalendarProvider(name="Contoso", active=True, tenant_id="contoso", client_id="c",
                                delegated_user_email="reservations@contoso.example", organizer_account="reservations@contoso.example")
    provider.client_secret = "s"
    provider.save()
    UserFactory(username="reservations", first_name="Reservations")
    room = RoomFactory(name="Hall")
    client.force_login(alice)
    html = client.get(f"/rooms/{room.pk}/book/").content.decode()
    options = html[html.index('id="id_requested_for"'):]
    options = options[:options.index("</select>")]
    assert "Bob (bob@contoso.example)" in options and "Alice (alice@contoso.example)" in options
    assert "reservations@contoso.example" not in options and "admin@" not in options
