"""The v1 REST API as a client sees it: statuses and JSON bodies."""

import datetime as dt

import pytest

from reservations.models import Reservation
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

URL = "/api/v1/reservations/"


def payload(room, **overrides):
    body = {
        "room": room.pk,
        "subject": "Design review",
        "start": days_ahead(1, 9).isoformat(),
        "end": days_ahead(1, 10).isoformat(),
    }
    body.update(overrides)
    return body


def assert_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    return body


# --- authentication --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/reservations/", "/api/v1/rooms/", "/api/v1/me/", "/api/v1/reservations/1/"])
def test_anonymous_gets_401_json(anonymous_api, path):
    response = anonymous_api.get(path)
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_gets_401(anonymous_api, alice):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(anonymous_api.get(URL), 401)


# --- create --------------------------------------------------------------------------------


def test_create_returns_the_contract_shape(alice_api, alice, atlas):
    response = alice_api.post(URL, payload(atlas, attendees=[{"email": "bob@contoso.example", "name": "Bob"}]), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "room", "arrangement", "subject", "body", "start", "end", "requested_for", "attendees", "kind", "source", "subsource", "state", "sync"}
    assert (body["source"], body["subsource"]) == ("rest_api", "sn_wsd_rest_api")
    assert body["start"] == days_ahead(1, 9).isoformat()  # building-local with its offset
    assert body["requested_for"] == "alice@contoso.example"
    assert body["state"] == "awaiting_confirmation"
    assert body["sync"] == {"state": "pending", "sync_mailbox": "", "event_id": "", "change_key": "", "ical_uid": "", "last_error": ""}
    assert body["attendees"] == [{"email": "bob@contoso.example", "name": "Bob", "type": "required", "response": "none"}]
    row = Reservation.objects.get(pk=body["id"])
    assert (row.source, row.subsource, row.requested_by) == ("rest_api", "sn_wsd_rest_api", alice)


def test_utc_input_is_accepted(alice_api, dojo):
    start = days_ahead(1, 9).astimezone(dt.UTC)
    response = alice_api.post(URL, payload(dojo, start=start.strftime("%Y-%m-%dT%H:%M:%SZ"), end=(start + dt.timedelta(hours=1)).isoformat()), format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field", ["source", "subsource"])
def test_callers_cant_choose_source_or_subsource(alice_api, dojo, field):
    body = assert_error(alice_api.post(URL, payload(dojo, **{field: "portal"}), format="json"), 400)
    assert field in body["extra"]
    assert not Reservation.objects.exists()


def test_sending_the_api_values_back_is_fine(alice_api, dojo):
    response = alice_api.post(URL, payload(dojo, source="rest_api", subsource="sn_wsd_rest_api"), format="json")
    assert response.status_code == 201


def test_booking_for_a_colleague_by_email(alice_api, bob, dojo):
    body = alice_api.post(URL, payload(dojo, requested_for="BOB@contoso.example"), format="json").json()
    assert (body["requested_for"], body["requested_by"], body["kind"]) == ("bob@contoso.example", "alice@contoso.example", "on_behalf")


BAD_INPUT = [
    ("missing room", lambda room: {k: v for k, v in payload(room).items() if k != "room"}, "room"),
    ("unknown room", lambda room: {**payload(room), "room": 999999}, "room"),
    ("room as text", lambda room: {**payload(room), "room": "atlas"}, "room"),
    ("naive time", lambda room: payload(room, start="2031-01-01T09:00:00", end="2031-01-01T10:00:00"), "start"),
    ("not a time", lambda room: payload(room, start="tomorrow"), "start"),
    ("end before start", lambda room: payload(room, start=days_ahead(1, 10).isoformat(), end=days_ahead(1, 9).isoformat()), "end"),
    ("too short", lambda room: payload(room, end=days_ahead(1, 9, 1).isoformat()), "end"),
    ("too long", lambda room: payload(room, start=days_ahead(1, 6).isoformat(), end=days_ahead(1, 20).isoformat()), "end"),
    ("in the past", lambda room: payload(room, start=days_ahead(-2, 9).isoformat(), end=days_ahead(-2, 10).isoformat()), "start"),
    ("too far ahead", lambda room: payload(room, start=days_ahead(500, 9).isoformat(), end=days_ahead(500, 10).isoformat()), "start"),
    ("empty subject", lambda room: payload(room, subject=""), "subject"),
    ("subject too long", lambda room: payload(room, subject="x" * 300), "subject"),
    ("body too long", lambda room: payload(room, body="x" * 10_001), "body"),
    ("too many attendees", lambda room: payload(room, attendees=[{"email": f"p{i}@contoso.example"} for i in range(7)]), "attendees"),
    ("bad attendee", lambda room: payload(room, attendees=[{"email": "nope"}]), "attendees[0].email"),
    ("unknown person", lambda room: payload(room, requested_for="ghost@contoso.example"), "requested_for"),
    ("unknown kind", lambda room: payload(room, kind="party"), "kind"),
    ("blocker by employee", lambda room: payload(room, kind="blocker"), "kind"),
    ("bad recurrence", lambda room: payload(room, recurrence={"frequency": "daily"}), "recurrence"),
    ("recurrence count too high", lambda room: payload(room, recurrence={"frequency": "daily", "count": 500}), "recurrence.count"),
    ("arrangement of another room", lambda room: payload(room, arrangement=999999), "arrangement"),
]


@pytest.mark.parametrize(("case", "make", "field"), BAD_INPUT, ids=[c for c, _, _ in BAD_INPUT])
def test_every_invalid_input_is_400_with_a_message(alice_api, dojo, case, make, field):
    body = assert_error(alice_api.post(URL, make(dojo), format="json"), 400)
    assert field in body["extra"], body
    assert not Reservation.objects.exists()


def test_a_room_that_cant_be_reserved_is_400(alice_api, dojo):
    dojo.reservable = False
    dojo.save(update_fields=["reservable"])
    body = assert_error(alice_api.post(URL, payload(dojo), format="json"), 400)
    assert body["message"] == "Dojo can't be reserved."


def test_malformed_json_and_wrong_media_type(alice_api, dojo):
    assert_error(alice_api.post(URL, data="{not json", content_type="application/json"), 400)
    assert_error(alice_api.post(URL, data="<xml/>", content_type="application/xml"), 415)
    assert_error(alice_api.post(URL, data=[1, 2], format="json"), 400)


def test_a_taken_slot_is_409_naming_it(alice_api, bob_api, dojo):
    assert alice_api.post(URL, payload(dojo), format="json").status_code == 201

    body = assert_error(bob_api.post(URL, payload(dojo, start=days_ahead(1, 9, 30).isoformat(), end=days_ahead(1, 10, 30).isoformat()), format="json"), 409)

    assert body["message"].startswith("Dojo is already booked")
    assert body["code"] == "slot_taken"
    # In the building's zone with its offset, as the message and every other time of the API (issue 14).
    assert body["extra"]["conflicts"][0]["conflicting_end"] == days_ahead(1, 10).isoformat()


def test_a_recurring_series_with_a_conflict_is_409_per_occurrence(alice_api, bob_api, dojo):
    bob_api.post(URL, payload(dojo, start=days_ahead(2, 9).isoformat(), end=days_ahead(2, 10).isoformat()), format="json")

    body = assert_error(alice_api.post(URL, payload(dojo, recurrence={"frequency": "daily", "count": 3}), format="json"), 409)

    assert [c["occurrence"] for c in body["extra"]["conflicts"]] == [2]
    assert Reservation.objects.count() == 1


def test_a_recurring_series_is_created(alice_api, dojo):
    response = alice_api.post(URL, payload(dojo, recurrence={"frequency": "weekly", "count": 4}), format="json")

    assert response.status_code == 201, response.content
    series = response.json()["series"]
    assert series["frequency"] == "weekly" and series["count"] == 4
    listed = alice_api.get(URL, {"series": series["id"]}).json()
    assert listed["count"] == 4


# --- read, change, cancel, permissions ------------------------------------------------------


def test_employees_see_their_own_and_staff_see_all(alice, bob, alice_api, admin_api, dojo):
    mine = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9))
    for_me = ReservationFactory(room=dojo, requested_for=alice, requested_by=bob, start=days_ahead(1, 11))
    ReservationFactory(room=dojo, requested_for=bob, start=days_ahead(1, 13))

    assert {r["id"] for r in alice_api.get(URL).json()["results"]} == {mine.pk, for_me.pk}
    assert admin_api.get(URL).json()["count"] == 3
    assert admin_api.get(URL, {"requested_for": "bob@contoso.example"}).json()["count"] == 1


def test_alice_cant_see_change_or_cancel_bobs_reservation(alice_api, bob, dojo):
    theirs = ReservationFactory(room=dojo, requested_for=bob)
    detail = f"{URL}{theirs.pk}/"

    assert_error(alice_api.get(detail), 404)
    assert_error(alice_api.patch(detail, {"subject": "Mine"}, format="json"), 404)
    assert_error(alice_api.post(f"{detail}cancel/"), 404)
    assert_error(alice_api.post(f"{URL}cancel/", {"ids": [theirs.pk]}, format="json"), 404)
    theirs.refresh_from_db()
    assert (theirs.subject, theirs.state) != ("Mine", "cancelled")


def test_patch_changes_only_what_is_sent(alice_api, dojo):
    created = alice_api.post(URL, payload(dojo, body="Agenda"), format="json").json()

    response = alice_api.patch(f"{URL}{created['id']}/", {"subject": "Renamed", "end": days_ahead(1, 11).isoformat()}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["subject"], body["body"], body["end"]) == ("Renamed", "Agenda", days_ahead(1, 11).isoformat())


def test_patch_refuses_a_subsource_change_and_bad_values(alice_api, dojo):
    created = alice_api.post(URL, payload(dojo), format="json").json()
    detail = f"{URL}{created['id']}/"

    assert "subsource" in assert_error(alice_api.patch(detail, {"subsource": "portal"}, format="json"), 400)["extra"]
    assert "end" in assert_error(alice_api.patch(detail, {"end": days_ahead(1, 8).isoformat()}, format="json"), 400)["extra"]
    assert "scope" in assert_error(alice_api.patch(detail, {"scope": "series", "subject": "x"}, format="json"), 400)["extra"]
    assert Reservation.objects.get().subsource == "sn_wsd_rest_api"


def test_patch_into_a_taken_slot_is_409(alice_api, dojo):
    alice_api.post(URL, payload(dojo, start=days_ahead(1, 11).isoformat(), end=days_ahead(1, 12).isoformat()), format="json")
    created = alice_api.post(URL, payload(dojo), format="json").json()

    assert_error(alice_api.patch(f"{URL}{created['id']}/", {"end": days_ahead(1, 11, 30).isoformat()}, format="json"), 409)


def test_cancel_and_cancel_again(alice_api, dojo):
    created = alice_api.post(URL, payload(dojo), format="json").json()

    response = alice_api.post(f"{URL}{created['id']}/cancel/", {"reason": "No longer needed"}, format="json")
    assert response.status_code == 200
    assert response.json()["cancelled"][0]["state"] == "cancelled"
    assert alice_api.post(f"{URL}{created['id']}/cancel/").status_code == 200  # idempotent
    assert_error(alice_api.patch(f"{URL}{created['id']}/", {"subject": "Back"}, format="json"), 409)


def test_bulk_cancel(alice_api, dojo):
    ids = [alice_api.post(URL, payload(dojo, start=days_ahead(d, 9).isoformat(), end=days_ahead(d, 10).isoformat()), format="json").json()["id"] for d in (1, 2)]

    response = alice_api.post(f"{URL}cancel/", {"ids": ids}, format="json")

    assert response.status_code == 200
    assert sorted(r["id"] for r in response.json()["cancelled"]) == sorted(ids)
    assert_error(alice_api.post(f"{URL}cancel/", {"ids": []}, format="json"), 400)


def test_staff_change_anyones_reservation(admin_api, bob, dojo):
    theirs = ReservationFactory(room=dojo, requested_for=bob)
    assert admin_api.patch(f"{URL}{theirs.pk}/", {"subject": "Fixed"}, format="json").json()["subject"] == "Fixed"


def test_list_filters_and_pagination(alice, alice_api, dojo):
    for day in range(1, 6):
        ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(day, 9))
    ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(6, 9), state="cancelled")

    page = alice_api.get(URL, {"limit": 2, "offset": 2}).json()
    assert page["count"] == 6 and len(page["results"]) == 2 and page["next"] and page["previous"]
    assert alice_api.get(URL, {"state": "cancelled"}).json()["count"] == 1
    assert alice_api.get(URL, {"state": "confirmed,cancelled"}).json()["count"] == 6
    assert alice_api.get(URL, {"starts_after": days_ahead(3, 12).isoformat()}).json()["count"] == 3
    assert "state" in assert_error(alice_api.get(URL, {"state": "bogus"}), 400)["extra"]
    assert "starts_after" in assert_error(alice_api.get(URL, {"starts_after": "2031-01-01T09:00"}), 400)["extra"]


def test_listing_costs_a_fixed_number_of_queries(alice, alice_api, dojo, django_assert_max_num_queries):
    for day in range(1, 11):
        reservation = ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(day, 9))
        reservation.attendees.create(email=f"guest{day}@contoso.example")

    # 5, and the check-in properties read once per listing (one query; from the cache outside
    # a test's transaction).
    with django_assert_max_num_queries(6):
        assert alice_api.get(URL).json()["count"] == 10


# --- rooms ---------------------------------------------------------------------------------


def test_room_finder(alice_api, atlas, dojo):
    rooms = alice_api.get("/api/v1/rooms/").json()["results"]
    assert [r["name"] for r in rooms] == ["Atlas", "Dojo"]
    assert rooms[0]["synced"] and rooms[0]["equipment"] == ["projector"] and rooms[0]["timezone"] == "Europe/Berlin"

    def names(**params):
        return [r["name"] for r in alice_api.get("/api/v1/rooms/", params).json()["results"]]

    assert names(capacity_min=7) == ["Atlas"]
    assert names(equipment="projector") == ["Atlas"]
    assert names(arrangement="u-shape") == ["Atlas"]
    assert names(building="hq") == ["Atlas", "Dojo"]
    assert names(building="elsewhere") == []
    alice_api.post(URL, payload(dojo), format="json")
    assert names(free_from=days_ahead(1, 9, 30).isoformat(), free_to=days_ahead(1, 11).isoformat()) == ["Atlas"]
    assert names(free_from=days_ahead(1, 10).isoformat(), free_to=days_ahead(1, 11).isoformat()) == ["Atlas", "Dojo"]
    assert "free_to" in assert_error(alice_api.get("/api/v1/rooms/", {"free_from": days_ahead(1, 9).isoformat()}), 400)["extra"]
    assert "capacity_min" in assert_error(alice_api.get("/api/v1/rooms/", {"capacity_min": "many"}), 400)["extra"]


def test_room_availability(alice_api, dojo):
    alice_api.post(URL, payload(dojo), format="json")
    day = days_ahead(1, 9).date().isoformat()

    body = alice_api.get(f"/api/v1/rooms/{dojo.pk}/availability/", {"date": day}).json()

    assert body["busy"] == [{"start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat(), "state": "confirmed"}]
    assert_error(alice_api.get("/api/v1/rooms/999999/availability/"), 404)
    assert_error(alice_api.get(f"/api/v1/rooms/{dojo.pk}/availability/", {"date": "someday"}), 400)


# --- schema, docs, health --------------------------------------------------------------------


def test_openapi_schema_and_docs(alice_api, client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/reservations/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_unknown_api_path_is_json_404(alice_api):
    assert_error(alice_api.get("/api/v1/nothing-here/"), 404)


def test_method_not_allowed_is_json(alice_api):
    assert_error(alice_api.delete(URL), 405)


def test_booking_costs_few_queries(alice_api, dojo, django_assert_max_num_queries):
    alice_api.get("/api/v1/me/")
    # token, room with its default arrangement, savepoint (the test's transaction),
    # insert, release, at most one for the sync-mode rules, and one for the check-in properties
    # of the answer (both cached outside a test's transaction).
    with django_assert_max_num_queries(7):
        assert alice_api.post(URL, payload(dojo), format="json").status_code == 201
