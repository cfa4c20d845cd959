"""What a clumsy or hostile client can send the API: every such request is a 400 or 413
in the API's error shape, never a 500 (issue 13, items 1-4 and 6)."""

import json

import pytest

from reservations.models import Reservation
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

URL = "/api/v1/reservations/"


def assert_refused(response, status=400, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    if field is not None:
        assert field in body["extra"], body
    return body


# --- 1. impossible but well-formed times -------------------------------------------------


@pytest.mark.parametrize("value", [
    "2030-02-30T09:00:00+01:00", "2030-05-06T09:00:00+25:00", "2027-01-14T09:60:00-05:00", "9999-12-31T23:00:00-05:00",
])
def test_an_impossible_free_from_on_the_room_finder_is_a_400(alice_api, atlas, value):
    response = alice_api.get("/api/v1/rooms/", {"free_from": value, "free_to": "2030-05-06T10:00:00+02:00"})
    assert_refused(response, field="free_from")


def test_an_impossible_starts_after_on_the_reservation_list_is_a_400(alice_api, alice):
    assert_refused(alice_api.get(URL, {"starts_after": "2030-02-30T00:00:00Z"}), field="starts_after")


def test_booking_with_an_impossible_start_is_a_400_and_books_nothing(alice_api, atlas):
    body = {"room": atlas.pk, "subject": "x", "start": "2027-01-14T09:60:00-05:00", "end": days_ahead(1, 10).isoformat()}
    assert_refused(alice_api.post(URL, body, format="json"), field="start")
    assert not Reservation.objects.exists()


def test_moving_a_reservation_to_an_impossible_time_is_a_400(alice_api, alice, dojo):
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice)
    response = alice_api.patch(f"{URL}{reservation.pk}/", {"start": "2027-01-14T09:60:00-05:00"}, format="json")
    assert_refused(response, field="start")


def test_free_busy_for_an_impossible_start_is_a_400(alice_api, alice):
    response = alice_api.get("/api/v1/freebusy/", {"emails": "bob@contoso.example", "start": "2027-02-30T09:00:00Z", "end": "2027-03-01T09:00:00Z"})
    assert_refused(response, field="start")


def test_a_time_without_an_offset_is_still_refused_with_its_message(alice_api, atlas):
    body = {"room": atlas.pk, "subject": "x", "start": "2030-05-06T09:00:00", "end": "2030-05-06T10:00:00"}
    assert "offset" in assert_refused(alice_api.post(URL, body, format="json"), field="start")["extra"]["start"][0]


# --- 2. ids and people -------------------------------------------------------------------


def test_a_superscript_digit_as_requested_for_is_a_400_on_list_create_and_patch(alice_api, alice, dojo):
    assert_refused(alice_api.get(URL, {"requested_for": "²"}), field="requested_for")
    body = {"room": dojo.pk, "subject": "x", "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat(), "requested_for": "²"}
    assert_refused(alice_api.post(URL, body, format="json"), field="requested_for")
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice)
    assert_refused(alice_api.patch(f"{URL}{reservation.pk}/", {"requested_for": "²"}, format="json"), field="requested_for")


@pytest.mark.parametrize("value", ["²", "99999999999999999999999", "-1", "1.5"])
def test_an_impossible_room_id_filter_is_a_400(alice_api, alice, value):
    assert_refused(alice_api.get(URL, {"room": value}), field="room")


def test_a_huge_requested_for_id_is_unknown_not_a_crash(alice_api, alice):
    assert_refused(alice_api.get(URL, {"requested_for": "9" * 19}), field="requested_for")


# --- 3. days past the calendar's end -------------------------------------------------------


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2030-02-30"])
def test_availability_on_a_day_out_of_range_is_a_400(alice_api, dojo, value):
    assert_refused(alice_api.get(f"/api/v1/rooms/{dojo.pk}/availability/", {"date": value}), field="date")


def test_a_series_until_the_year_9999_is_a_400(alice_api, dojo):
    body = {"room": dojo.pk, "subject": "x", "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat(),
            "recurrence": {"frequency": "daily", "until": "9999-12-31"}}
    assert_refused(alice_api.post(URL, body, format="json"), field="recurrence.until")


# --- 4. requests Django itself refuses ---------------------------------------------------------


def test_more_than_a_thousand_form_fields_is_a_400(alice_api, alice):
    body = "&".join(f"f{i}=x" for i in range(1100))
    response = alice_api.post(URL, body, content_type="application/x-www-form-urlencoded")
    assert_refused(response, 400)


def test_more_than_a_thousand_query_parameters_is_a_400(alice_api, alice):
    assert_refused(alice_api.get(URL + "?" + "&".join(f"f{i}=x" for i in range(1100))), 400)


def test_a_three_megabyte_body_is_a_413(alice_api, alice):
    body = json.dumps({"subject": "x" * (3 * 1024 * 1024)})
    assert_refused(alice_api.post(URL, body, content_type="application/json"), 413)


def test_deeply_nested_json_is_a_400(alice_api, alice):
    assert_refused(alice_api.post(URL, "[" * 5000, content_type="application/json"), 400)


def test_a_deeply_nested_json_body_on_patch_is_a_400(alice_api, alice, dojo):
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice)
    assert_refused(alice_api.patch(f"{URL}{reservation.pk}/", "[" * 5000, content_type="application/json"), 400)


def test_a_bad_request_leaves_no_traceback_in_the_log(alice_api, alice, caplog):
    alice_api.post(URL, "[" * 5000, content_type="application/json")
    assert not [r for r in caplog.records if r.exc_info]


# --- 6. paging ---------------------------------------------------------------------------------


def test_a_huge_limit_is_capped_at_the_documented_maximum(alice_api, alice, dojo):
    for hour in range(8, 11):
        ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, start=days_ahead(1, hour), end=days_ahead(1, hour, 30))
    body = alice_api.get(URL, {"limit": 1000000}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3


def test_a_limit_above_the_cap_returns_one_page_of_the_cap(alice_api, alice, dojo, monkeypatch):
    from reservations.api.pagination import Pagination

    monkeypatch.setattr(Pagination, "max_limit", 2)
    for hour in range(8, 11):
        ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, start=days_ahead(1, hour), end=days_ahead(1, hour, 30))
    body = alice_api.get(URL, {"limit": 1000000}).json()
    assert (body["count"], len(body["results"])) == (3, 2)
    assert "offset=2" in body["next"]


@pytest.mark.parametrize("value", ["²", "9" * 25, -3])
def test_moving_a_reservation_to_an_impossible_room_id_is_a_400(alice_api, alice, dojo, value):
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice)
    assert_refused(alice_api.patch(f"{URL}{reservation.pk}/", {"room": value}, format="json"), field="room")


def test_a_nul_character_in_requested_for_is_a_400_on_booking_and_the_list(alice_api, alice, dojo):
    """Found by the schemathesis tests: PostgreSQL refuses to compare text with a NUL in it."""
    body = {"room": dojo.pk, "subject": "x", "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat(), "requested_for": "\x00b"}
    assert_refused(alice_api.post(URL, body, format="json"), field="requested_for")
    assert_refused(alice_api.get(URL, {"requested_for": "a\x00@contoso.example"}), field="requested_for")


def test_a_body_that_is_not_json_is_a_400_in_the_error_shape(alice_api, alice):
    body = assert_refused(alice_api.post(URL, "{not json", content_type="application/json"), 400)
    assert "JSON parse error" in body["message"]
