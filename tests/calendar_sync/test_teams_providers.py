"""Teams meetings: the booking confirmation email carries the join link, and a Teams meeting is
refused (API 400, form error, nothing booked) when the calendar that will organize the meeting
doesn't list teamsForBusiness in allowedOnlineMeetingProviders (read once with the push's own
credential, then cached)."""

from __future__ import annotations

import pytest
from django.core import mail

from reservations.models import Reservation
from tests.booking import book
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db
URL = "/api/v1/reservations/"
ALICE = "alice@contoso.example"


def calendar_reads(emulator, mailbox: str) -> list[dict]:
    return [e for e in emulator.request_log()["entries"] if e["endpoint"].endswith("/calendar") and e["mailbox"] == mailbox]


def body(atlas, **extra) -> dict:
    return {"room": atlas.pk, "subject": "Remote sync", "start": days_ahead(2, 9).isoformat(), "end": days_ahead(2, 10).isoformat(), **extra}


def test_the_confirmation_email_carries_the_teams_join_link(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    r = book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, subject="Remote review",
             online_meeting=True, confirmed=True)
    assert r.online_meeting_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    [message] = [m for m in mail.outbox if m.subject.startswith("Reservation confirmed")]
    assert message.to == [ALICE] and message.subject == "Reservation confirmed: Remote review"
    assert f"Join the Teams meeting: {r.online_meeting_url}" in message.body
    assert "Atlas" in message.body and "(Europe/Berlin)" in message.body or atlas.building.timezone in message.body


def test_a_plain_booking_confirmation_has_no_join_line(provider, mode, emulator, alice, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    book(capture_on_commit=django_capture_on_commit_callbacks, actor=alice, room=atlas, subject="In person", confirmed=True)
    [message] = [m for m in mail.outbox if m.subject.startswith("Reservation confirmed")]
    assert "Teams" not in message.body


def test_the_api_refuses_teams_where_the_calendar_does_not_allow_it(alice_api, provider, mode, emulator, atlas):
    mode("Normal")  # the meeting goes in Alice's own calendar
    emulator.set_online_meeting_providers(ALICE, [])
    emulator.clear_request_log()
    response = alice_api.post(URL, body(atlas, online_meeting=True), format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert {"message", "extra"} <= set(answer) and "doesn't allow Teams" in answer["message"]
    assert "doesn't allow Teams" in answer["extra"]["online_meeting"][0] and ALICE in answer["message"]
    assert not Reservation.objects.exists()
    [read] = calendar_reads(emulator, ALICE)
    assert read["status"] == 200 and set(read["select"].split(",")) == {"allowedOnlineMeetingProviders", "defaultOnlineMeetingProvider"}
    assert alice_api.post(URL, body(atlas, online_meeting=True), format="json").status_code == 400
    assert len(calendar_reads(emulator, ALICE)) == 1  # cached: asked once
    # Without Teams the same booking goes through.
    assert alice_api.post(URL, body(atlas), format="json").status_code == 201


def test_teams_is_allowed_by_default(alice_api, provider, mode, emulator, atlas):
    mode("Normal")
    response = alice_api.post(URL, body(atlas, online_meeting=True), format="json")
    assert response.status_code == 201, response.content
    assert calendar_reads(emulator, ALICE)


def test_in_strict_mode_the_room_calendar_decides(alice_api, provider, mode, emulator, atlas):
    mode("Strict")
    emulator.set_online_meeting_providers(ALICE, [])  # not Alice's calendar: the room (or the service account) organizes
    assert alice_api.post(URL, body(atlas, online_meeting=True), format="json").status_code == 201
    emulator.set_online_meeting_providers(atlas.mailbox, ["skypeForConsumer"], "skypeForConsumer")
    emulator.set_online_meeting_providers(provider.organizer_account, ["skypeForConsumer"], "skypeForConsumer")
    from django.core.cache import cache
    cache.clear()
    response = alice_api.post(URL, body(atlas, online_meeting=True, start=days_ahead(3, 9).isoformat(), end=days_ahead(3, 10).isoformat()), format="json")
    assert response.status_code == 400 and "online_meeting" in response.json()["extra"]


def test_the_portal_form_shows_the_refusal_on_the_teams_field(client, alice, provider, mode, emulator, atlas):
    mode("Normal")
    emulator.set_online_meeting_providers(ALICE, [])
    client.force_login(alice)
    response = client.post(f"/rooms/{atlas.pk}/book/", {
        "subject": "Remote review", "date": days_ahead(2, 9).date().isoformat(), "start_time": "09:00", "end_time": "10:00",
        "arrangement": atlas.default_arrangement().pk, "online_meeting": "on",
    })
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_online_meeting_error"' in html and "doesn&#x27;t allow Teams" in html
    assert not Reservation.objects.exists()
