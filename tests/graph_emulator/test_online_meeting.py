"""Teams meetings in the emulator, as Graph makes them: isOnlineMeeting with a provider makes
onlineMeeting (joinUrl), which attendees' copies carry and which stays once made
(Microsoft Learn, "event resource type", v1.0: isOnlineMeeting, onlineMeetingProvider,
onlineMeeting)."""

from __future__ import annotations

from tests.graph_emulator.helpers import ALICE, BOB, meeting


def test_a_teams_meeting_gets_a_join_url(app_graph):
    body = meeting("Teams sync", people=[BOB], isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness")
    ev = app_graph.post(f"/users/{ALICE}/events", body).json()
    assert ev["isOnlineMeeting"] is True and ev["onlineMeetingProvider"] == "teamsForBusiness"
    join = ev["onlineMeeting"]["joinUrl"]
    assert join.startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    again = app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()
    assert again["onlineMeeting"]["joinUrl"] == join
    # Once online, it stays so: a later change keeps the same link.
    patched = app_graph.patch(f"/users/{ALICE}/events/{ev['id']}", {"subject": "Renamed", "isOnlineMeeting": False}).json()
    assert patched["isOnlineMeeting"] is True and patched["onlineMeeting"]["joinUrl"] == join


def test_a_plain_meeting_has_no_online_meeting(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting("In person")).json()
    assert ev["isOnlineMeeting"] is False and ev["onlineMeeting"] is None and ev["onlineMeetingProvider"] == "unknown"
    # isOnlineMeeting without a provider makes no link either.
    ev = app_graph.post(f"/users/{ALICE}/events", meeting("Half asked", isOnlineMeeting=True)).json()
    assert ev["onlineMeeting"] is None


def test_an_unknown_provider_is_refused(app_graph):
    response = app_graph.post(f"/users/{ALICE}/events", meeting("Odd", isOnlineMeeting=True, onlineMeetingProvider="zoom"))
    assert response.status_code == 400


def test_the_calendar_names_its_allowed_providers_per_mailbox(app_graph, emulator_control):
    """allowedOnlineMeetingProviders / defaultOnlineMeetingProvider of the calendar resource
    (https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings), seedable per mailbox;
    a provider the calendar doesn't allow makes no join link."""
    calendar = app_graph.get(f"/users/{ALICE}/calendar").json()
    assert calendar["allowedOnlineMeetingProviders"] == ["teamsForBusiness"] and calendar["defaultOnlineMeetingProvider"] == "teamsForBusiness"
    emulator_control.set_online_meeting_providers(BOB, [])
    bob = app_graph.get(f"/users/{BOB}/calendar").json()
    assert bob["allowedOnlineMeetingProviders"] == [] and bob["defaultOnlineMeetingProvider"] == "unknown"
    assert app_graph.get(f"/users/{ALICE}/calendar").json()["allowedOnlineMeetingProviders"] == ["teamsForBusiness"]
    ev = app_graph.post(f"/users/{BOB}/events", meeting("No Teams here", isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness")).json()
    assert ev["onlineMeeting"] is None
