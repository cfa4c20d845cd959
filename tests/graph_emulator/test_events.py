"""Events: shapes, change keys, If-Match, transactionId, time zones, permissions, the booking attendant."""

from __future__ import annotations

import pytest

from tests.graph_emulator.helpers import (
    ALICE,
    ATLAS,
    BOB,
    BOREALIS,
    RESERVATIONS,
    meeting,
)
from tests.waiting import wait_for

EVENT_KEYS = {
    "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories",
    "originalStartTimeZone", "originalEndTimeZone", "iCalUId", "reminderMinutesBeforeStart", "isReminderOn",
    "hasAttachments", "subject", "bodyPreview", "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer",
    "responseRequested", "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl", "isOnlineMeeting",
    "onlineMeetingProvider", "allowNewTimeProposals", "isDraft", "hideAttendees", "responseStatus", "body", "start",
    "end", "location", "locations", "recurrence", "attendees", "organizer",
}


def room_copy(g, room, ical):
    events = g.get(f"/users/{room}/events").json()["value"]
    return next((e for e in events if e["iCalUId"] == ical), None)


def test_create_event_shape(app_graph):
    r = app_graph.post(f"/users/{ALICE}/events", meeting(tz="W. Europe Standard Time", people=[BOB]))
    assert r.status_code == 201
    ev = r.json()
    assert EVENT_KEYS <= set(ev)
    assert ev["@odata.context"].endswith("/$entity")
    assert ev["@odata.etag"] == f'W/"{ev["changeKey"]}"'
    assert len(ev["id"]) > 60 and ev["type"] == "singleInstance" and ev["isOrganizer"] is True
    assert ev["start"] == {"dateTime": "2030-01-07T09:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    assert ev["organizer"] == {"emailAddress": {"name": "Alice Anders", "address": ALICE}}
    assert ev["responseStatus"]["response"] == "organizer"
    assert ev["attendees"][0]["status"]["response"] == "none" and ev["attendees"][0]["type"] == "required"
    assert ev["body"]["contentType"] == "html" and ev["bodyPreview"] == "About Planning"
    assert r.headers["Location"]
    got = app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()
    assert got["start"] == {"dateTime": "2030-01-07T08:00:00.0000000", "timeZone": "UTC"}  # default: UTC
    assert got["id"] == ev["id"] and got["iCalUId"] == ev["iCalUId"]


def test_prefer_timezone_windows_and_iana(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(start="2030-07-01T10:00:00", end="2030-07-01T11:00:00",
                                                           tz="Europe/Berlin")).json()
    for tz, local in (("Pacific Standard Time", "01:00"), ("America/New_York", "04:00"), ("UTC", "08:00")):
        r = app_graph.get(f"/users/{ALICE}/events/{ev['id']}", headers={"Prefer": f'outlook.timezone="{tz}"'})
        assert r.json()["start"]["dateTime"][11:16] == local and r.json()["start"]["timeZone"] == tz
        assert tz in r.headers["Preference-Applied"]
    bad = app_graph.post(f"/users/{ALICE}/events", meeting(tz="Mars/Olympus"))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "TimeZoneNotSupportedException"


def test_patch_changes_change_key_and_if_match(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting()).json()
    r = app_graph.patch(f"/users/{ALICE}/events/{ev['id']}", {"subject": "Renamed"}, headers={"If-Match": ev["@odata.etag"]})
    assert r.status_code == 200
    patched = r.json()
    assert patched["subject"] == "Renamed" and patched["id"] == ev["id"]
    assert patched["changeKey"] != ev["changeKey"] and patched["lastModifiedDateTime"] >= ev["lastModifiedDateTime"]
    stale = app_graph.patch(f"/users/{ALICE}/events/{ev['id']}", {"subject": "Again"}, headers={"If-Match": ev["@odata.etag"]})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    stale_delete = app_graph.delete(f"/users/{ALICE}/events/{ev['id']}", headers={"If-Match": ev["@odata.etag"]})
    assert stale_delete.status_code == 412
    assert app_graph.delete(f"/users/{ALICE}/events/{ev['id']}", headers={"If-Match": patched["@odata.etag"]}).status_code == 204
    gone = app_graph.get(f"/users/{ALICE}/events/{ev['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"


def test_transaction_id_deduplicates(app_graph):
    body = meeting(transactionId="txn-42")
    first = app_graph.post(f"/users/{ALICE}/events", body)
    again = app_graph.post(f"/users/{ALICE}/events", body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and again.json()["transactionId"] == "txn-42"
    assert len(app_graph.get(f"/users/{ALICE}/events").json()["value"]) == 1
    other_mailbox = app_graph.post(f"/users/{BOB}/events", body)
    assert other_mailbox.json()["id"] != first.json()["id"]


def test_permissions(as_user, app_graph):
    alice, bob, delegate = as_user(ALICE), as_user(BOB), as_user(RESERVATIONS)
    assert alice.post("/me/events", meeting()).status_code == 201
    assert alice.get("/me/calendar/events").status_code == 200
    denied = alice.get(f"/users/{BOB}/events")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
    assert alice.post(f"/users/{ATLAS}/events", meeting()).status_code == 403
    assert bob.get(f"/users/{BOB}/calendarView?startDateTime=2030-01-01&endDateTime=2030-02-01").status_code == 200
    assert delegate.post(f"/users/{ATLAS}/events", meeting()).status_code == 201  # delegate on every room
    assert delegate.get(f"/users/{ALICE}/events").status_code == 403
    assert app_graph.get(f"/users/{BOB}/events").status_code == 200
    assert app_graph.get("/me/events").status_code == 400  # /me needs a delegated token


def test_application_access_policy(app_graph, emulator_control):
    emulator_control.set_access_policy("wsd-demo-client", [ATLAS])
    assert app_graph.get(f"/users/{ATLAS}/events").status_code == 200
    r = app_graph.get(f"/users/{BOREALIS}/events")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_attendant_accepts_when_free_and_declines_on_conflict(app_graph):
    first = app_graph.post(f"/users/{ALICE}/events", meeting("First", rooms=[ATLAS], people=[BOB])).json()
    assert first["attendees"][0]["status"]["response"] == "none"  # the room answers after the request
    org = wait_for(lambda: (e := app_graph.get(f"/users/{ALICE}/events/{first['id']}").json())
                   and e["attendees"][0]["status"]["response"] == "accepted" and e)
    assert org["changeKey"] != first["changeKey"]
    copy = room_copy(app_graph, ATLAS, first["iCalUId"])
    assert copy["id"] != first["id"] and copy["isOrganizer"] is False
    assert copy["organizer"]["emailAddress"]["address"] == ALICE
    assert copy["responseStatus"]["response"] == "accepted" and copy["showAs"] == "busy"
    bob_copy = next(e for e in app_graph.get(f"/users/{BOB}/events").json()["value"] if e["iCalUId"] == first["iCalUId"])
    assert bob_copy["responseStatus"]["response"] == "notResponded"

    clash = app_graph.post(f"/users/{BOB}/events", meeting("Clash", start="2030-01-07T09:30:00", end="2030-01-07T10:30:00",
                                                            rooms=[ATLAS])).json()
    declined = wait_for(lambda: (e := app_graph.get(f"/users/{BOB}/events/{clash['id']}").json())
                        and e["attendees"][0]["status"]["response"] == "declined" and e)
    assert declined["attendees"][0]["emailAddress"]["address"] == ATLAS
    assert room_copy(app_graph, ATLAS, clash["iCalUId"]) is None  # declined meetings leave the room's calendar


def test_update_moves_meeting_and_room_rechecks(app_graph):
    a = app_graph.post(f"/users/{ALICE}/events", meeting("A", rooms=[ATLAS])).json()
    b = app_graph.post(f"/users/{BOB}/events", meeting("B", start="2030-01-07T11:00:00", end="2030-01-07T12:00:00", rooms=[ATLAS])).json()
    wait_for(lambda: room_copy(app_graph, ATLAS, b["iCalUId"]))
    app_graph.patch(f"/users/{BOB}/events/{b['id']}", {"start": {"dateTime": "2030-01-07T09:15:00", "timeZone": "UTC"},
                                                        "end": {"dateTime": "2030-01-07T09:45:00", "timeZone": "UTC"}})
    wait_for(lambda: app_graph.get(f"/users/{BOB}/events/{b['id']}").json()["attendees"][0]["status"]["response"] == "declined")
    assert room_copy(app_graph, ATLAS, b["iCalUId"]) is None
    app_graph.patch(f"/users/{ALICE}/events/{a['id']}", {"subject": "A, renamed"})
    wait_for(lambda: (c := room_copy(app_graph, ATLAS, a["iCalUId"])) and c["subject"] == "A, renamed")


def test_cancel_propagates(app_graph, as_user):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS], people=[BOB])).json()
    wait_for(lambda: room_copy(app_graph, ATLAS, ev["iCalUId"]))
    bob_copy = next(e for e in app_graph.get(f"/users/{BOB}/events").json()["value"] if e["iCalUId"] == ev["iCalUId"])
    not_org = app_graph.post(f"/users/{BOB}/events/{bob_copy['id']}/cancel", {"Comment": "no"})
    assert not_org.status_code == 400
    r = app_graph.post(f"/users/{ALICE}/events/{ev['id']}/cancel", {"Comment": "Sorry"})
    assert r.status_code == 202 and r.content == b""
    assert app_graph.get(f"/users/{ALICE}/events/{ev['id']}").status_code == 404
    cancelled = app_graph.get(f"/users/{BOB}/events/{bob_copy['id']}").json()
    assert cancelled["isCancelled"] is True and cancelled["subject"].startswith("Canceled: ")
    assert room_copy(app_graph, ATLAS, ev["iCalUId"]) is None


def test_responses_update_organizer(app_graph, as_user):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(people=[BOB])).json()
    bob = as_user(BOB)
    copy = wait_for(lambda: next((e for e in bob.get("/me/events").json()["value"] if e["iCalUId"] == ev["iCalUId"]), None))
    assert bob.post(f"/me/events/{copy['id']}/tentativelyAccept", {"comment": "maybe", "sendResponse": True}).status_code == 202
    org = app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()
    assert org["attendees"][0]["status"]["response"] == "tentativelyAccepted" and org["changeKey"] != ev["changeKey"]
    mine = bob.get(f"/me/events/{copy['id']}").json()
    assert mine["responseStatus"]["response"] == "tentativelyAccepted" and mine["changeKey"] != copy["changeKey"]
    assert app_graph.post(f"/users/{ALICE}/events/{ev['id']}/accept", {"sendResponse": True}).status_code == 400


def test_control_api_answers_as_an_attendee_in_outlook(app_graph, emulator_control):
    ev = app_graph.post(f"/users/{RESERVATIONS}/events", meeting(people=[ALICE, BOB])).json()

    def copy_of(who):
        return next((e for e in app_graph.get(f"/users/{who}/events").json()["value"] if e["iCalUId"] == ev["iCalUId"]), None)

    wait_for(lambda: copy_of(ALICE) and copy_of(BOB))
    answered = emulator_control.respond_as(ALICE, ev["iCalUId"], "accept")
    assert answered == {"user": ALICE, "event_id": copy_of(ALICE)["id"], "response": "accepted"}
    emulator_control.respond_as(BOB, ev["iCalUId"], "tentativelyAccept")
    org = app_graph.get(f"/users/{RESERVATIONS}/events/{ev['id']}").json()
    answers = {a["emailAddress"]["address"]: a["status"]["response"] for a in org["attendees"]}
    assert answers == {ALICE: "accepted", BOB: "tentativelyAccepted"} and org["changeKey"] != ev["changeKey"]
    # Without sendResponse the organizer is not told; declining takes the meeting off the attendee's calendar.
    emulator_control.respond_as(BOB, ev["iCalUId"], "decline", send_response=False)
    assert copy_of(BOB) is None
    org = app_graph.get(f"/users/{RESERVATIONS}/events/{ev['id']}").json()
    assert {a["emailAddress"]["address"]: a["status"]["response"] for a in org["attendees"]}[BOB] == "tentativelyAccepted"
    # The organizer can't answer its own meeting; an unknown meeting or action is refused.
    for user, ical, action, status in ((RESERVATIONS, ev["iCalUId"], "accept", 400), (ALICE, "no-such-meeting", "accept", 404),
                                       (ALICE, ev["iCalUId"], "maybe", 400)):
        with pytest.raises(RuntimeError, match=rf"\({status}\)"):
            emulator_control.respond_as(user, ical, action)


def test_room_without_auto_accept_and_delegate_decline(app_graph, emulator_control, as_user):
    emulator_control.set_auto_accept(BOREALIS, False)
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[BOREALIS])).json()
    copy = wait_for(lambda: room_copy(app_graph, BOREALIS, ev["iCalUId"]))
    assert copy["responseStatus"]["response"] == "notResponded"
    assert app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()["attendees"][0]["status"]["response"] == "none"
    delegate = as_user(RESERVATIONS)
    assert delegate.post(f"/users/{BOREALIS}/events/{copy['id']}/decline", {"sendResponse": True}).status_code == 202
    assert app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()["attendees"][0]["status"]["response"] == "declined"
    assert room_copy(app_graph, BOREALIS, ev["iCalUId"]) is None


def test_event_written_by_the_room_itself_skips_the_attendant(as_user, app_graph):
    delegate = as_user(RESERVATIONS)
    ev = delegate.post(f"/users/{ATLAS}/events", meeting("Held by the room", people=[ALICE])).json()
    assert ev["organizer"]["emailAddress"]["address"] == ATLAS and ev["isOrganizer"] is True
    events = app_graph.get(f"/users/{ATLAS}/events").json()["value"]
    assert [e["id"] for e in events] == [ev["id"]]
    assert ev["responseStatus"]["response"] == "organizer"


def test_recurring_series_occurrences(app_graph):
    body = meeting("Weekly", start="2030-01-07T09:00:00", end="2030-01-07T09:30:00", tz="W. Europe Standard Time")
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                          "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4}}
    master = app_graph.post(f"/users/{ALICE}/events", body).json()
    assert master["type"] == "seriesMaster" and master["recurrence"]["pattern"]["type"] == "weekly"
    view = app_graph.get(f"/users/{ALICE}/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z").json()
    occ = view["value"]
    assert [o["start"]["dateTime"][:10] for o in occ] == ["2030-01-07", "2030-01-14", "2030-01-21", "2030-01-28"]
    assert all(o["type"] == "occurrence" and o["seriesMasterId"] == master["id"] for o in occ)
    one = app_graph.get(f"/users/{ALICE}/events/{occ[1]['id']}").json()
    assert one["id"] == occ[1]["id"]
    assert app_graph.patch(f"/users/{ALICE}/events/{occ[1]['id']}", {"subject": "Moved"}).json()["type"] == "exception"
    assert app_graph.delete(f"/users/{ALICE}/events/{occ[2]['id']}").status_code == 204
    view = app_graph.get(f"/users/{ALICE}/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z").json()
    assert [o["subject"] for o in view["value"]] == ["Weekly", "Moved", "Weekly"]


def test_rescheduling_a_series_discards_its_exceptions_and_cutting_its_range_keeps_them(app_graph):
    body = meeting("Weekly", start="2030-01-07T09:00:00", end="2030-01-07T09:30:00", tz="W. Europe Standard Time")
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                          "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4}}
    master = app_graph.post(f"/users/{ALICE}/events", body).json()
    window = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"

    def view():
        return app_graph.get(f"/users/{ALICE}/calendarView?{window}").json()["value"]

    occ = view()
    app_graph.patch(f"/users/{ALICE}/events/{occ[1]['id']}", {"subject": "Moved"})
    app_graph.delete(f"/users/{ALICE}/events/{occ[2]['id']}")
    cut = {**master["recurrence"], "range": {"type": "endDate", "startDate": "2030-01-07", "endDate": "2030-01-28",
                                             "recurrenceTimeZone": "W. Europe Standard Time"}}
    app_graph.patch(f"/users/{ALICE}/events/{master['id']}", {"recurrence": cut, "subject": "Weekly"})
    assert [o["subject"] for o in view()] == ["Weekly", "Moved", "Weekly"]  # a new end keeps the exceptions

    app_graph.patch(f"/users/{ALICE}/events/{master['id']}", {
        "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-01-07T10:30:00", "timeZone": "W. Europe Standard Time"},
    })
    after = view()
    assert [(o["subject"], o["type"], o["start"]["dateTime"][:16]) for o in after] == [
        ("Weekly", "occurrence", f"2030-01-{day}T09:00") for day in ("07", "14", "21", "28")
    ]  # 10:00 W. Europe = 09:00 UTC; the moved and the cancelled occurrence are plain ones again


def test_dropping_the_room_from_one_occurrence_frees_only_that_slot_in_the_rooms_calendar(app_graph):
    """Exchange sends the dropped attendee a cancellation of that occurrence alone: the room's
    calendar loses it (and the slot can be booked), the rest of the series stays; people still
    on the occurrence keep it, with the new attendee list and location."""
    body = meeting("Weekly", start="2030-01-07T09:00:00", end="2030-01-07T09:30:00", rooms=[ATLAS], people=[BOB])
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                          "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3}}
    master = app_graph.post(f"/users/{ALICE}/events", body).json()
    window = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"

    def view(who):
        # v1.0 has no ``uid``: an occurrence names its master, whose iCalUId is the meeting's
        items = app_graph.get(f"/users/{who}/calendarView?{window}").json()["value"]
        masters = {m: app_graph.get(f"/users/{who}/events/{m}?$select=iCalUId").json()["iCalUId"]
                   for m in {o["seriesMasterId"] for o in items if o.get("seriesMasterId")}}
        return [o for o in items if masters.get(o.get("seriesMasterId")) == master["iCalUId"]]

    wait_for(lambda: len(view(ATLAS)) == 3)
    wait_for(lambda: app_graph.get(f"/users/{ALICE}/events/{master['id']}").json()["attendees"][0]["status"]["response"] == "accepted")
    second = view(ALICE)[1]
    r = app_graph.patch(f"/users/{ALICE}/events/{second['id']}", {
        "attendees": [{"type": "required", "emailAddress": {"address": BOB}}, {"type": "required", "emailAddress": {"address": ALICE}}],
        "location": {"displayName": "", "locationType": "default"}, "locations": [],
    }, headers={"If-Match": second["@odata.etag"]})
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "exception" and [a["emailAddress"]["address"] for a in r.json()["attendees"]] == [BOB]

    wait_for(lambda: [o["start"]["dateTime"][:10] for o in view(ATLAS)] == ["2030-01-07", "2030-01-21"])
    organizer = view(ALICE)
    assert [o["start"]["dateTime"][:10] for o in organizer] == ["2030-01-07", "2030-01-14", "2030-01-21"]
    assert ATLAS in [a["emailAddress"]["address"] for a in organizer[0]["attendees"]]
    assert organizer[0]["location"]["displayName"] == "Atlas"
    assert organizer[1]["location"]["displayName"] == "" and organizer[1]["locations"] == []
    bobs = wait_for(lambda: (v := view(BOB)) and len(v) == 3 and v[1]["location"]["displayName"] == "" and v)
    assert [a["emailAddress"]["address"] for a in bobs[1]["attendees"]] == [BOB]

    # The freed slot can be booked; the room keeps the series' other occurrences (its answer stands).
    other = app_graph.post(f"/users/{BOB}/events", meeting("In the freed slot", start="2030-01-14T09:00:00", end="2030-01-14T09:30:00",
                                                            rooms=[ATLAS])).json()
    wait_for(lambda: app_graph.get(f"/users/{BOB}/events/{other['id']}").json()["attendees"][0]["status"]["response"] == "accepted")
    app_graph.patch(f"/users/{ALICE}/events/{master['id']}", {"subject": "Weekly, renamed"})
    wait_for(lambda: [o["subject"] for o in view(ATLAS)] == ["Weekly, renamed"] * 2)
    assert app_graph.get(f"/users/{ALICE}/events/{master['id']}").json()["attendees"][0]["status"]["response"] == "accepted"


def test_malformed_requests(app_graph, http, emulator_server):
    r = app_graph("POST", f"/users/{ALICE}/events", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    r = app_graph.post(f"/users/{ALICE}/events", {"subject": "no times"})
    assert r.status_code == 400 and "error" in r.json()
    r = app_graph.post(f"/users/{ALICE}/events", {**meeting(), "nonsense": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "RequestBodyRead"
    r = app_graph.post(f"/users/{ALICE}/events", {**meeting(), "start": {"dateTime": "tomorrow", "timeZone": "UTC"}})
    assert r.status_code == 400
    assert app_graph.get(f"/users/{ALICE}/events/AAMkAGI2TAAA=").status_code == 400  # not an id Exchange issues
    assert app_graph.get(f"/users/{ALICE}/events/!!").status_code == 400
    assert app_graph.get("/users/nobody@contoso.example/events").status_code == 404
    assert app_graph("PUT", f"/users/{ALICE}/events").status_code == 405
    assert app_graph.get(f"/users/{ALICE}/bogus").status_code == 400
    assert app_graph.get(f"/users/{ALICE}/events?$top=abc").status_code == 400
    assert app_graph.get(f"/users/{ALICE}/calendarView").status_code == 400
    assert app_graph.get(f"/users/{ALICE}/events?$filter=subject%20eq").status_code == 400
