"""Issue 14, item 9 without a browser: ``online_meeting`` in the API and the portal form,
the Graph payload it writes (isOnlineMeeting + teamsForBusiness), and the join link in the
detail page and the calendar feed once Exchange made it."""

import pytest

from calendar_sync.outbound import payloads
from reservations import feeds
from reservations.models import Reservation
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

URL = "/api/v1/reservations/"
JOIN = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0"


def test_the_api_books_a_teams_meeting(alice_api, atlas):
    response = alice_api.post(URL, {"room": atlas.pk, "subject": "Sync", "start": days_ahead(1, 9).isoformat(),
                                    "end": days_ahead(1, 10).isoformat(), "online_meeting": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["online_meeting"] is True and body["online_meeting_url"] == ""
    assert Reservation.objects.get().online_meeting is True


def test_without_it_the_meeting_is_not_online(alice_api, dojo):
    body = alice_api.post(URL, {"room": dojo.pk, "subject": "Sync", "start": days_ahead(1, 9).isoformat(),
                                "end": days_ahead(1, 10).isoformat()}, format="json").json()
    assert body["online_meeting"] is False


def test_the_graph_payload_asks_for_teams_only_when_wanted():
    class Link:
        online_meeting = True

    assert payloads.online_meeting_fields(Link()) == {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}
    Link.online_meeting = False
    assert payloads.online_meeting_fields(Link()) == {}


def test_the_portal_form_books_teams_in_a_synced_room_and_offers_it_only_there(client, alice, atlas, dojo):
    client.force_login(alice)
    assert "Teams meeting" in client.get(f"/rooms/{atlas.pk}/book/").content.decode()
    assert "Teams meeting" not in client.get(f"/rooms/{dojo.pk}/book/").content.decode()
    response = client.post(f"/rooms/{atlas.pk}/book/", {
        "subject": "Remote review", "date": days_ahead(1, 9).date().isoformat(), "start_time": "09:00", "end_time": "10:00",
        "arrangement": atlas.default_arrangement().pk, "online_meeting": "on",
    })
    assert response.status_code == 302
    assert Reservation.objects.get().online_meeting is True


def test_the_detail_page_and_the_feed_show_the_join_link(client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, requested_by=alice, subject="Remote", online_meeting=True)
    client.force_login(alice)
    assert "The join link appears once Outlook" in client.get(f"/reservations/{r.pk}/").content.decode()
    Reservation.objects.filter(pk=r.pk).update(online_meeting_url=JOIN)
    html = client.get(f"/reservations/{r.pk}/").content.decode()
    assert f'href="{JOIN}"' in html and "Join the Teams meeting" in html
    link = feeds.calendar_feed_rotate(user=alice)
    ics = client.get(f"/feeds/{link.token}.ics").content.decode().replace("\r\n ", "")
    assert "X-MICROSOFT-SKYPETEAMSMEETINGURL:" + JOIN in ics and "Join the Teams meeting: " + JOIN in ics
