"""GET /api/v1/freebusy/: input validation (400 in the API's error shape) and free/busy
read from the in-process emulator through the organizer account."""

import datetime as dt
from urllib.parse import urlencode

import pytest

from calendar_sync import freebusy
from reservations import services
from reservations.models import Reservation, SyncEvent
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
    run_nightly,
)
from tests.factories import days_ahead
from tests.waiting import wait_for

URL = "/api/v1/freebusy/"


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def slot():
    start = days_ahead(6, 10)
    return {"start": iso(start), "end": iso(start + dt.timedelta(hours=1))}


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "field"), [
    ({"start": "2030-05-04T09:00:00+02:00", "end": "2030-05-04T10:00:00+02:00"}, "emails"),
    ({"emails": "not-an-email", "start": "2030-05-04T09:00:00+02:00", "end": "2030-05-04T10:00:00+02:00"}, "emails"),
    ({"emails": ",".join(f"p{n}@contoso.example" for n in range(21)), "start": "2030-05-04T09:00:00+02:00", "end": "2030-05-04T10:00:00+02:00"}, "emails"),
    ({"emails": BOB, "start": "2030-05-04T09:00:00", "end": "2030-05-04T10:00:00+02:00"}, "start"),
    ({"emails": BOB, "start": "tomorrow", "end": "2030-05-04T10:00:00+02:00"}, "start"),
    ({"emails": BOB, "start": "2030-05-04T10:00:00+02:00", "end": "2030-05-04T09:00:00+02:00"}, "end"),
    ({"emails": BOB, "start": "2030-05-04T10:00:00+02:00", "end": "2030-05-04T10:00:00+02:00"}, "end"),
    ({"emails": BOB, "start": "2030-05-04T09:00:00+02:00", "end": "2030-05-05T09:00:01+02:00"}, "end"),
])
def test_bad_input_is_400_with_the_field_named(alice_api, params, field):
    response = alice_api.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"message", "extra"} and field in body["extra"], body


@pytest.mark.django_db
def test_sign_in_is_required(anonymous_api, slot):
    assert anonymous_api.get(URL, {"emails": BOB, **slot}).status_code == 401


@pytest.mark.django_db
def test_unknown_for_everyone_without_a_provider(alice_api, slot):
    response = alice_api.get(URL, {"emails": f"{BOB}, {ALICE}", **slot})
    assert response.status_code == 200
    assert response.json()["schedules"] == [{"email": BOB, "availability": "unknown"}, {"email": ALICE, "availability": "unknown"}]


@pytest.mark.django_db(transaction=True)
def test_free_busy_comes_from_exchange_through_the_organizer_account(provider, emulator, alice, atlas, alice_api):
    start = days_ahead(6, 10)
    outlook_meeting(emulator, BOB, [ATLAS], start, subject="Bob is busy")
    params = {"start": iso(start + dt.timedelta(minutes=30)), "end": iso(start + dt.timedelta(hours=2))}

    # Repeated and comma-separated addresses alike, duplicates once, order kept.
    query = urlencode([("emails", f"{BOB},{ALICE}"), ("emails", "nobody@contoso.example"), ("emails", BOB.upper()), *params.items()])
    response = alice_api.get(f"{URL}?{query}")

    assert response.status_code == 200, response.content
    assert response.json()["schedules"] == [
        {"email": BOB, "availability": "busy"},
        {"email": ALICE, "availability": "free"},
        {"email": "nobody@contoso.example", "availability": "unknown"},
    ]

    provider.organizer_account = ""
    provider.save(update_fields=["organizer_account"])
    response = alice_api.get(URL, {"emails": BOB, **params})
    assert response.json()["schedules"] == [{"email": BOB, "availability": "unknown"}]


@pytest.mark.django_db
def test_the_booking_form_offers_the_check_button(client, alice, atlas):
    client.force_login(alice)
    html = client.get(f"/rooms/{atlas.pk}/book/").content.decode()
    assert 'id="check-availability" data-url="/api/v1/freebusy/" data-timezone="Europe/Berlin"' in html
    assert 'id="availability-check-status" role="status" aria-live="polite"' in html


@pytest.mark.django_db
def test_each_user_gets_a_budget_of_exchange_lookups_a_minute(alice_api, bob_api, slot, settings, monkeypatch):
    """Free/busy and attendees' answers ask Exchange: beyond the per-user rate, 429 in the
    API's error shape with Retry-After; another user is not affected."""
    from workplace import throttling

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["exchange_lookups"] == "60/min"  # the documented default
    moment = throttling._now()
    monkeypatch.setattr(throttling, "_now", lambda: moment)  # one window for the whole test
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "exchange_lookups": "3/min"}}
    statuses = [alice_api.get(URL, {"emails": BOB, **slot}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = alice_api.get(URL, {"emails": BOB, **slot})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert set(refused.json()) == {"message", "extra"}
    assert alice_api.get("/api/v1/reservations/999999/attendees/").status_code == 429  # one budget for both endpoints
    assert bob_api.get(URL, {"emails": ALICE, **slot}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_free_busy_comes_from_get_schedule_and_is_unknown_without_an_organizer_account(provider, emulator, alice, bob, atlas):
    start = days_ahead(6, 10)
    outlook_meeting(emulator, BOB, [ATLAS], start, subject="Bob busy")
    availability = freebusy.attendee_availability(start=start, end=start + dt.timedelta(hours=1), emails=[BOB, ALICE, "nobody@contoso.example"])
    assert availability == {BOB: "busy", ALICE: "free", "nobody@contoso.example": "unknown"}
    provider.organizer_account = ""
    provider.save(update_fields=["organizer_account"])
    assert set(freebusy.attendee_availability(start=start, end=start + dt.timedelta(hours=1), emails=[BOB]).values()) == {"unknown"}


@pytest.mark.django_db(transaction=True)
def test_attendee_responses_for_product_meetings_and_unknown_for_outlook_ones(provider, emulator, emulator_server, alice, bob, atlas, alice_api, bob_api):
    start = days_ahead(6, 14)
    ours = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Ours",
                                       attendees=[{"email": BOB}])
    wait_for(lambda: Reservation.objects.get(pk=ours.pk).event_id, message="pushed")
    resp = alice_api.get(f"/api/v1/reservations/{ours.pk}/attendees/?refresh=1")
    assert resp.status_code == 200
    [bob_row] = resp.json()["attendees"]
    assert bob_row["email"] == BOB and bob_row["response"] == "none" and bob_row["availability"] in ("tentative", "busy")
    assert SyncEvent.objects.filter(reservation=ours, type="retrieve_attendees", state="processed").exists()
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(6, 17), people=(ALICE,))
    run_nightly()
    [theirs] = outlook_reservations()
    resp = bob_api.get(f"/api/v1/reservations/{theirs.pk}/attendees/")
    assert [a["response"] for a in resp.json()["attendees"]] == ["unknown"]
