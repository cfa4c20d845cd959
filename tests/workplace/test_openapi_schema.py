"""The whole project's OpenAPI schema (every app's API views) generates and validates cleanly."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_validates_without_errors_or_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    # Any error or warning (e.g. a view whose serializer can't be guessed) or an invalid
    # OpenAPI document makes the command fail.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/reservations/{id}/attendees/" in text and "ReservationAttendees" in text


@pytest.mark.django_db
def test_the_schema_says_lists_come_in_pages_with_limit_and_offset(client):
    """A client generated from the schema reads {count, next, previous, results} (issue 13, item 6)."""
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    for path, row in (("/api/v1/rooms/", "Room"), ("/api/v1/reservations/", "Reservation")):
        get = schema["paths"][path]["get"]
        page = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert set(components[page]["properties"]) == {"count", "next", "previous", "results"}
        assert components[page]["properties"]["results"]["items"]["$ref"].endswith(f"/{row}")
        params = {p["name"]: p for p in get["parameters"]}
        assert {"limit", "offset"} <= set(params)
        assert "at most 200" in params["limit"]["description"]


@pytest.mark.django_db
def test_the_schema_documents_413_and_415_where_a_body_is_sent(client):
    schema = client.get("/api/schema/?format=json").json()
    for path, method in (("/api/v1/reservations/", "post"), ("/api/v1/reservations/{reservation_id}/", "patch"),
                         ("/api/v1/reservations/{reservation_id}/cancel/", "post"), ("/api/v1/reservations/cancel/", "post")):
        assert {"413", "415"} <= set(schema["paths"][path][method]["responses"]), (path, method)
