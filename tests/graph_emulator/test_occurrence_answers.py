"""The emulator's answers to one occurrence of a series, as Graph documents them:

- accept / decline / tentativelyAccept on an occurrence's id answer that occurrence only
  (https://learn.microsoft.com/en-us/graph/api/event-accept?view=graph-rest-1.0 and its siblings);
- ``proposedNewTime`` with decline / tentativelyAccept reaches the organizer's attendee, only
  when the meeting allows new time proposals (``allowNewTimeProposals``);
- the room's attendant answers a series per occurrence within its conflict allowance
  (Set-CalendarProcessing ConflictPercentageAllowed / MaximumConflictInstances), else declines it;
- a person added to one occurrence gets an invitation to that occurrence alone; a person taken
  off one occurrence gets its "Canceled:" copy."""

from __future__ import annotations

from tests.graph_emulator.helpers import ALICE, ATLAS, BOB, RESERVATIONS, meeting
from tests.waiting import wait_for

WINDOW = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"


def weekly(subject="Weekly", count=3, **kw) -> dict:
    body = meeting(subject, start="2030-01-07T09:00:00", end="2030-01-07T09:30:00", **kw)
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                          "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": count}}
    return body


def view(app_graph, who, ical_uid) -> list[dict]:
    """``who``'s occurrences of the series (matched through their masters' iCalUId)."""
    items = app_graph.get(f"/users/{who}/calendarView?{WINDOW}", headers={"Prefer": 'outlook.timezone="UTC"'}).json()["value"]
    masters = {m: app_graph.get(f"/users/{who}/events/{m}?$select=iCalUId").json()["iCalUId"]
               for m in {o["seriesMasterId"] for o in items if o.get("seriesMasterId")}}
    return [o for o in items if masters.get(o.get("seriesMasterId")) == ical_uid]


def status(occurrence: dict, address: str) -> dict:
    return next(a for a in occurrence["attendees"] if a["emailAddress"]["address"] == address)


def bobs_occurrences(app_graph, master) -> list[dict]:
    return wait_for(lambda: (v := view(app_graph, BOB, master["iCalUId"])) and len(v) == 3 and v, message="Bob's copy")


PROPOSAL = {"start": {"dateTime": "2030-01-14T13:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2030-01-14T13:30:00", "timeZone": "UTC"}}


def test_each_answer_to_an_occurrence_is_that_occurrences_alone(app_graph):
    master = app_graph.post(f"/users/{ALICE}/events", weekly(people=[BOB])).json()
    first, second, third = bobs_occurrences(app_graph, master)
    assert app_graph.post(f"/users/{BOB}/events/{first['id']}/accept", {"sendResponse": True}).status_code == 202
    r = app_graph.post(f"/users/{BOB}/events/{second['id']}/tentativelyAccept", {"sendResponse": True, "proposedNewTime": PROPOSAL})
    assert r.status_code == 202, r.text
    assert app_graph.post(f"/users/{BOB}/events/{third['id']}/decline", {"sendResponse": True}).status_code == 202

    bob = view(app_graph, BOB, master["iCalUId"])
    assert [(o["start"]["dateTime"][:10], o["responseStatus"]["response"]) for o in bob] == [
        ("2030-01-07", "accepted"), ("2030-01-14", "tentativelyAccepted")]  # the declined one left his calendar
    alice = view(app_graph, ALICE, master["iCalUId"])
    assert [status(o, BOB)["status"]["response"] for o in alice] == ["accepted", "tentativelyAccepted", "declined"]
    assert status(alice[1], BOB)["proposedNewTime"] == {"start": {"dateTime": "2030-01-14T13:00:00.0000000", "timeZone": "UTC"},
                                                        "end": {"dateTime": "2030-01-14T13:30:00.0000000", "timeZone": "UTC"}}
    assert "proposedNewTime" not in status(alice[0], BOB)
    # The series itself keeps Bob's (missing) answer: only the occurrences were answered.
    series = app_graph.get(f"/users/{ALICE}/events/{master['id']}").json()
    assert status(series, BOB)["status"]["response"] == "none"


def test_a_time_proposal_needs_a_meeting_that_allows_it_and_a_response_sent(app_graph):
    closed = app_graph.post(f"/users/{ALICE}/events", weekly("No proposals", people=[BOB], allowNewTimeProposals=False)).json()
    first = bobs_occurrences(app_graph, closed)[0]
    refused = app_graph.post(f"/users/{BOB}/events/{first['id']}/tentativelyAccept", {"sendResponse": True, "proposedNewTime": PROPOSAL})
    assert refused.status_code == 400 and "new time proposals" in refused.json()["error"]["message"]
    open_ = app_graph.post(f"/users/{ALICE}/events", weekly("Proposals", people=[BOB])).json()
    first = bobs_occurrences(app_graph, open_)[0]
    assert app_graph.post(f"/users/{BOB}/events/{first['id']}/decline", {"sendResponse": False, "proposedNewTime": PROPOSAL}).status_code == 400
    assert app_graph.post(f"/users/{BOB}/events/{first['id']}/accept", {"sendResponse": True, "proposedNewTime": PROPOSAL}).status_code == 400
    bad = {"start": PROPOSAL["end"], "end": PROPOSAL["start"]}
    assert app_graph.post(f"/users/{BOB}/events/{first['id']}/decline", {"sendResponse": True, "proposedNewTime": bad}).status_code == 400
    # Nothing was answered by the refused calls.
    assert [o["responseStatus"]["response"] for o in view(app_graph, BOB, open_["iCalUId"])] == ["notResponded"] * 3


def test_the_room_declines_conflicting_occurrences_within_its_allowance_and_the_series_beyond_it(app_graph, emulator_control):
    taken = app_graph.post(f"/users/{BOB}/events", meeting("Taken", start="2030-01-14T09:00:00", end="2030-01-14T09:30:00", rooms=[ATLAS])).json()
    wait_for(lambda: status(app_graph.get(f"/users/{BOB}/events/{taken['id']}").json(), ATLAS)["status"]["response"] == "accepted")
    # Exchange's default allowance (0, 0): one conflict declines the whole series.
    refused = app_graph.post(f"/users/{ALICE}/events", weekly("Refused", rooms=[ATLAS])).json()
    wait_for(lambda: status(app_graph.get(f"/users/{ALICE}/events/{refused['id']}").json(), ATLAS)["status"]["response"] == "declined")
    assert view(app_graph, ATLAS, refused["iCalUId"]) == []
    # Within the allowance (1 instance, 34 %: one of three), the room declines that occurrence alone.
    emulator_control.calendar_processing(ATLAS, ConflictPercentageAllowed=34, MaximumConflictInstances=1)
    kept = app_graph.post(f"/users/{ALICE}/events", weekly("Kept", rooms=[ATLAS])).json()
    wait_for(lambda: [status(o, ATLAS)["status"]["response"] for o in view(app_graph, ALICE, kept["iCalUId"])] == ["accepted", "declined", "accepted"])
    assert [o["start"]["dateTime"][:10] for o in view(app_graph, ATLAS, kept["iCalUId"])] == ["2030-01-07", "2030-01-21"]
    # Three conflicts (Taken, and Kept's two) are beyond one instance: declined whole.
    over = app_graph.post(f"/users/{RESERVATIONS}/events", weekly("Over", count=4, rooms=[ATLAS])).json()
    wait_for(lambda: status(app_graph.get(f"/users/{RESERVATIONS}/events/{over['id']}").json(), ATLAS)["status"]["response"] == "declined")


def test_a_person_added_to_one_occurrence_is_invited_to_it_alone_and_gets_its_cancellation_when_removed(app_graph):
    master = app_graph.post(f"/users/{ALICE}/events", weekly(people=[BOB])).json()
    second = view(app_graph, ALICE, master["iCalUId"])[1]
    everyone = [{"type": "required", "emailAddress": {"address": BOB}}, {"type": "required", "emailAddress": {"address": RESERVATIONS}}]
    assert app_graph.patch(f"/users/{ALICE}/events/{second['id']}", {"attendees": everyone}).status_code == 200

    def invitations():
        items = app_graph.get(f"/users/{RESERVATIONS}/calendarView?{WINDOW}").json()["value"]
        return [o for o in items if o["subject"].endswith("Weekly")]

    [invited] = wait_for(invitations, message="the invitation to the one occurrence")
    assert (invited["type"], invited["start"]["dateTime"][:16], invited["isCancelled"]) == ("singleInstance", "2030-01-14T09:00", False)
    assert invited["iCalUId"].startswith(master["iCalUId"])
    # Taken off the occurrence again: a cancellation of it.
    assert app_graph.patch(f"/users/{ALICE}/events/{second['id']}", {"attendees": everyone[:1]}).status_code == 200
    wait_for(lambda: [(o["subject"], o["isCancelled"]) for o in invitations()] == [("Canceled: Weekly", True)], message="its cancellation")


def test_a_person_taken_off_one_occurrence_gets_its_canceled_copy(app_graph):
    master = app_graph.post(f"/users/{ALICE}/events", weekly(people=[BOB, RESERVATIONS])).json()
    bobs_occurrences(app_graph, master)
    second = view(app_graph, ALICE, master["iCalUId"])[1]
    only = [{"type": "required", "emailAddress": {"address": RESERVATIONS}}]
    assert app_graph.patch(f"/users/{ALICE}/events/{second['id']}", {"attendees": only}).status_code == 200
    wait_for(lambda: [(o["subject"], o["isCancelled"]) for o in view(app_graph, BOB, master["iCalUId"])]
             == [("Weekly", False), ("Canceled: Weekly", True), ("Weekly", False)], message="Bob's cancelled occurrence")
    assert [o["isCancelled"] for o in view(app_graph, RESERVATIONS, master["iCalUId"])] == [False, False, False]
