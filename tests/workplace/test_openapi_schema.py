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
