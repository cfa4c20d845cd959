"""A room whose bookings its delegates approve (Set-CalendarProcessing -AllBookInPolicy $false
-ResourceDelegates ...): a free slot's request is answered tentative and held tentatively on the
room's calendar until a delegate accepts or declines the room's copy; a conflict is still
declined by the booking attendant; an approval given stands while the slot stays."""

from __future__ import annotations

import pytest

from tests.graph_emulator.helpers import ALICE, ATLAS, BOB, meeting
from tests.waiting import wait_for


def room_copy(g, ical):
    return next((e for e in g.get(f"/users/{ATLAS}/events").json()["value"] if e["iCalUId"] == ical), None)


def room_answer(g, event) -> str:
    return g.get(f"/users/{ALICE}/events/{event['id']}").json()["attendees"][0]["status"]["response"]


def test_a_delegate_approves_the_tentative_request(app_graph, emulator_control, as_user):
    assert emulator_control.set_booking_delegates(ATLAS, [BOB]) == {"room": ATLAS, "booking_delegates": [BOB]}
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS])).json()
    copy = wait_for(lambda: room_copy(app_graph, ev["iCalUId"]))
    assert (copy["responseStatus"]["response"], copy["showAs"]) == ("tentativelyAccepted", "tentative")
    wait_for(lambda: room_answer(app_graph, ev) == "tentativelyAccepted")
    # The tentative hold blocks the slot: another request for it is declined by the attendant.
    clash = app_graph.post(f"/users/{BOB}/events", meeting("Clash", rooms=[ATLAS])).json()
    wait_for(lambda: app_graph.get(f"/users/{BOB}/events/{clash['id']}").json()["attendees"][0]["status"]["response"] == "declined")

    delegate = as_user(BOB)  # Bob reaches the room's calendar as its delegate
    assert delegate.post(f"/users/{ATLAS}/events/{copy['id']}/accept", {"sendResponse": True}).status_code == 202
    assert room_answer(app_graph, ev) == "accepted"
    assert room_copy(app_graph, ev["iCalUId"])["showAs"] == "busy"
    # A change that keeps the slot leaves the approval standing; a new slot asks again.
    assert app_graph.patch(f"/users/{ALICE}/events/{ev['id']}", {"subject": "Renamed"}).status_code == 200
    wait_for(lambda: room_copy(app_graph, ev["iCalUId"])["subject"] == "Renamed")
    assert room_answer(app_graph, ev) == "accepted"
    moved = meeting(start="2030-01-08T09:00:00", end="2030-01-08T10:00:00")
    assert app_graph.patch(f"/users/{ALICE}/events/{ev['id']}", {"start": moved["start"], "end": moved["end"]}).status_code == 200
    wait_for(lambda: room_answer(app_graph, ev) == "tentativelyAccepted")


def test_a_delegate_declines(app_graph, emulator_control, as_user):
    emulator_control.set_booking_delegates(ATLAS, [BOB])
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS])).json()
    copy = wait_for(lambda: room_copy(app_graph, ev["iCalUId"]))
    assert as_user(BOB).post(f"/users/{ATLAS}/events/{copy['id']}/decline", {"comment": "Board only", "sendResponse": True}).status_code == 202
    assert room_answer(app_graph, ev) == "declined" and room_copy(app_graph, ev["iCalUId"]) is None
    # Alice is no delegate of Atlas: she can't answer for it.
    ev2 = app_graph.post(f"/users/{ALICE}/events", meeting("Second", start="2030-01-09T09:00:00", end="2030-01-09T10:00:00", rooms=[ATLAS])).json()
    copy2 = wait_for(lambda: room_copy(app_graph, ev2["iCalUId"]))
    assert as_user(ALICE).post(f"/users/{ATLAS}/events/{copy2['id']}/accept", {"sendResponse": True}).status_code == 403


def test_booking_delegates_bad_input(emulator_control):
    for room, body in ((ATLAS, "bob"), (ALICE, [BOB]), (ATLAS, [1])):
        with pytest.raises(RuntimeError, match=r"\(400\)"):
            emulator_control._call("POST", f"rooms/{room}/booking_delegates", {"delegates": body})
    assert emulator_control.set_booking_delegates(ATLAS, [])["booking_delegates"] == []
    assert emulator_control.state()["mailboxes"][ATLAS]["booking_delegates"] == []
