"""GET /api/v1/people/?search=: the attendee picker's people — the product's own people and the
tenant's directory through Graph's /users?$search (ConsistencyLevel: eventual, cached per tenant
and query), without service accounts and room mailboxes."""

import pytest

from calendar_sync import people as directory
from tests.factories import RoomFactory, UserFactory

URL = "/api/v1/people/"


def searches(emulator) -> list[dict]:
    return [e for e in emulator.request_log()["entries"] if e["endpoint"] == "GET /v1.0/users"]


@pytest.mark.django_db
def test_local_and_directory_people_merge(alice_api, bob, provider, emulator):
    emulator.clear_request_log()
    response = alice_api.get(URL, {"search": "bo"})
    assert response.status_code == 200, response.content
    body = response.json()
    by_email = {p["email"]: p for p in body["results"]}
    assert by_email["bob@contoso.example"]["source"] == "user"  # has an account here
    assert by_email["bob@contoso.example"]["job_title"] == "Designer"  # the directory adds what it knows
    boris = by_email["boris.novak@contoso.example"]
    assert boris == {"name": "Boris Novak", "email": "boris.novak@contoso.example", "source": "directory", "job_title": "Facilities"}
    assert body["directory_answered"] is True
    [sent] = searches(emulator)
    assert sent["status"] == 200 and sent["consistency_level"] == "eventual"
    assert sent["search"] == '"displayName:bo" OR "mail:bo"'
    assert set(sent["select"].split(",")) == {"id", "displayName", "mail", "userPrincipalName", "jobTitle"}


@pytest.mark.django_db
def test_a_cached_answer_asks_graph_once(alice_api, provider, emulator):
    emulator.clear_request_log()
    first = alice_api.get(URL, {"search": "carol"}).json()
    again = alice_api.get(URL, {"search": "Carol"}).json()  # the same query, any case
    assert [p["email"] for p in first["results"]] == ["carol.chen@contoso.example"] == [p["email"] for p in again["results"]]
    assert len(searches(emulator)) == 1
    alice_api.get(URL, {"search": "dora"})
    assert len(searches(emulator)) == 2  # another query asks again


@pytest.mark.django_db
def test_service_accounts_rooms_and_admins_are_left_out(alice_api, provider, emulator, admin):
    RoomFactory(name="Borealis", mailbox="borealis@contoso.example")
    UserFactory(username="reservations", email=provider.delegated_user_email or "reservations@contoso.example", first_name="Room")
    results = alice_api.get(URL, {"search": "bor"}).json()["results"]
    assert [p["email"] for p in results] == ["boris.novak@contoso.example"]  # not the Borealis room mailbox
    assert alice_api.get(URL, {"search": "room"}).json()["results"] == []  # "Room Reservations", the service account
    admins = alice_api.get(URL, {"search": "admin"}).json()["results"]
    assert admin.email and all(p["source"] == "directory" for p in admins)  # the superuser's account isn't offered (the directory's person is)


@pytest.mark.django_db
def test_directory_down_still_finds_local_people(alice_api, bob, provider, emulator):
    emulator.inject_fault(method="GET", path="/users$", status=503, count=10)
    body = alice_api.get(URL, {"search": "bo"}).json()
    assert [p["email"] for p in body["results"]] == ["bob@contoso.example"] and body["directory_answered"] is False
    emulator.clear_faults()
    assert "boris.novak@contoso.example" in [p["email"] for p in alice_api.get(URL, {"search": "bo"}).json()["results"]]  # a failure isn't cached


@pytest.mark.django_db
def test_without_a_provider_only_local_people(alice_api, bob):
    body = alice_api.get(URL, {"search": "bob"}).json()
    assert [p["email"] for p in body["results"]] == ["bob@contoso.example"] and body["directory_answered"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"search": ""}, {"search": "b"}, {"search": '""'}, {"search": "x" * 201}, {"search": "a\x00b"}])
def test_bad_search_is_400(alice_api, params):
    response = alice_api.get(URL, params)
    assert response.status_code == 400 and set(response.json()) == {"message", "extra"}


@pytest.mark.django_db
def test_quotes_and_backslashes_cannot_break_out_of_the_clause(alice_api, provider, emulator):
    emulator.clear_request_log()
    assert alice_api.get(URL, {"search": 'bo" OR "mail:a'}).status_code == 200
    [sent] = searches(emulator)
    assert sent["status"] == 200 and sent["search"] == '"displayName:bo OR mail:a" OR "mail:bo OR mail:a"'
    assert directory.clean_query('a\\"b') == "a b"


@pytest.mark.django_db
def test_sign_in_is_required(anonymous_api):
    assert anonymous_api.get(URL, {"search": "bo"}).status_code == 401
