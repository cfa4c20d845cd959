"""Directory, places, calendarView paging, calendarView/delta, getSchedule and $batch."""

from __future__ import annotations

from tests.graph_emulator.helpers import ALICE, ATLAS, BOB, BOREALIS, COSMOS, meeting
from tests.waiting import wait_for

WINDOW = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"


def test_users_and_me(app_graph, as_user):
    r = app_graph.get("/users")
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#users")
    upns = [u["userPrincipalName"] for u in body["value"]]
    assert ALICE in upns and ATLAS in upns
    alice = app_graph.get(f"/users/{ALICE}").json()
    assert {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
            "preferredLanguage", "surname", "userPrincipalName", "id"} <= set(alice)
    assert alice["displayName"] == "Alice Anders"
    assert app_graph.get(f"/users/{alice['id']}").json()["mail"] == ALICE
    me = as_user(BOB).get("/me").json()
    assert me["displayName"] == "Bob Berg"
    assert as_user(BOB).get(f"/users/{ALICE}").status_code == 403  # User.Read covers only /me
    missing = app_graph.get("/users/nobody@contoso.example")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    filtered = app_graph.get(f"/users?$filter=mail eq '{BOB}'&$select=displayName").json()["value"]
    assert filtered == [{"displayName": "Bob Berg", "id": me["id"]}]


def test_places_rooms(app_graph, as_user):
    rooms = app_graph.get("/places/microsoft.graph.room").json()
    by_mail = {r["emailAddress"]: r for r in rooms["value"]}
    assert set(by_mail) == {ATLAS, BOREALIS, COSMOS}
    atlas = by_mail[ATLAS]
    assert atlas["@odata.type"] == "#microsoft.graph.room" and atlas["capacity"] == 8 and atlas["building"] == "HQ"
    assert by_mail[BOREALIS]["capacity"] == 4 and by_mail[COSMOS]["capacity"] == 12
    assert {"address", "bookingType", "displayName", "floorNumber", "isWheelChairAccessible", "tags"} <= set(atlas)
    assert app_graph.get("/places/microsoft.graph.roomlist").json()["value"]
    assert as_user(ALICE).get("/places/microsoft.graph.room").status_code == 403


def test_calendar_view_paging(app_graph):
    for i in range(7):
        app_graph.post(f"/users/{ALICE}/events", meeting(f"M{i}", start=f"2030-01-{10 + i}T09:00:00", end=f"2030-01-{10 + i}T10:00:00"))
    app_graph.post(f"/users/{ALICE}/events", meeting("Outside", start="2030-03-01T09:00:00", end="2030-03-01T10:00:00"))
    page = app_graph.get(f"/users/{ALICE}/calendarView?{WINDOW}", headers={"Prefer": "odata.maxpagesize=3"}).json()
    subjects = [e["subject"] for e in page["value"]]
    while "@odata.nextLink" in page:
        page = app_graph.get(page["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"}).json()
        subjects += [e["subject"] for e in page["value"]]
    assert subjects == [f"M{i}" for i in range(7)]
    top = app_graph.get(f"/users/{ALICE}/calendarView?{WINDOW}&$top=2&$select=subject,start").json()
    assert len(top["value"]) == 2 and set(top["value"][0]) == {"@odata.etag", "id", "subject", "start"}
    assert "@odata.nextLink" in top
    filt = app_graph.get(f"/users/{ALICE}/calendarView?{WINDOW}&$filter=subject eq 'M3'").json()
    assert [e["subject"] for e in filt["value"]] == ["M3"]


def test_delta_initial_incremental_removed_and_expired(app_graph, emulator_control):
    ids = [app_graph.post(f"/users/{ATLAS}/events", meeting(f"D{i}", start=f"2030-01-{10 + i}T09:00:00",
                                                                end=f"2030-01-{10 + i}T10:00:00")).json()["id"] for i in range(5)]
    url = f"/users/{ATLAS}/calendarView/delta?{WINDOW}"
    seen, pages = [], 0
    page = app_graph.get(url, headers={"Prefer": "odata.maxpagesize=2"}).json()
    while True:
        pages += 1
        seen += [e["id"] for e in page["value"]]
        if "@odata.deltaLink" in page:
            break
        assert "$skiptoken=" in page["@odata.nextLink"]
        page = app_graph.get(page["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert sorted(seen) == sorted(ids) and pages == 3
    delta_link = page["@odata.deltaLink"]
    assert "$deltatoken=" in delta_link
    quiet = app_graph.get(delta_link).json()
    assert quiet["value"] == [] and "@odata.deltaLink" in quiet
    app_graph.patch(f"/users/{ATLAS}/events/{ids[0]}", {"subject": "D0 changed"})
    app_graph.delete(f"/users/{ATLAS}/events/{ids[1]}")
    new = app_graph.post(f"/users/{ATLAS}/events", meeting("New", start="2030-01-20T09:00:00", end="2030-01-20T10:00:00")).json()
    changes = app_graph.get(quiet["@odata.deltaLink"]).json()
    by_id = {c["id"]: c for c in changes["value"]}
    assert by_id[ids[0]]["subject"] == "D0 changed"
    assert by_id[ids[1]] == {"@odata.type": "#microsoft.graph.event", "id": ids[1], "@removed": {"reason": "deleted"}}
    assert by_id[new["id"]]["subject"] == "New"
    assert len(by_id) == 3
    emulator_control.expire_delta_tokens(ATLAS)
    gone = app_graph.get(changes["@odata.deltaLink"])
    assert gone.status_code == 400 and gone.json()["error"]["code"] == "syncStateNotFound"  # the default mode
    assert app_graph.get(f"/users/{ATLAS}/calendarView/delta?$deltatoken=unknown").status_code == 400


def test_get_schedule(app_graph):
    app_graph.post(f"/users/{ATLAS}/events", meeting("Busy", start="2030-01-07T09:00:00", end="2030-01-07T10:00:00"))
    app_graph.post(f"/users/{ATLAS}/events", {**meeting("Maybe", start="2030-01-07T11:00:00", end="2030-01-07T11:30:00"),
                                              "showAs": "tentative"})
    r = app_graph.post(f"/users/{ALICE}/calendar/getSchedule", {
        "schedules": [ATLAS, BOREALIS, "ghost@contoso.example"],
        "startTime": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-01-07T12:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 30,
    }, headers={"Prefer": 'outlook.timezone="W. Europe Standard Time"'})
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("Collection(microsoft.graph.scheduleInformation)")
    atlas, borealis, ghost = body["value"]
    assert atlas["scheduleId"] == ATLAS and atlas["availabilityView"] == "00220010"
    assert [i["status"] for i in atlas["scheduleItems"]] == ["busy", "tentative"]
    assert atlas["scheduleItems"][0]["start"] == {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    assert atlas["workingHours"]["daysOfWeek"][0] == "monday" and atlas["workingHours"]["timeZone"]["name"]
    assert borealis["availabilityView"] == "00000000" and borealis["scheduleItems"] == []
    assert ghost["error"]["responseCode"]
    bad = app_graph.post(f"/users/{ALICE}/calendar/getSchedule", {"schedules": [ATLAS]})
    assert bad.status_code == 400


def test_batch_with_depends_on(app_graph):
    ev = meeting("Batched")
    r = app_graph.post("/$batch", {"requests": [
        {"id": "1", "method": "POST", "url": f"/users/{ALICE}/events", "body": ev, "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "GET", "url": f"/users/{ALICE}/events?$select=subject", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users/nobody@contoso.example/events"},
        {"id": "4", "method": "GET", "url": f"/users/{ALICE}", "dependsOn": ["3"]},
    ]})
    assert r.status_code == 200
    res = {x["id"]: x for x in r.json()["responses"]}
    assert res["1"]["status"] == 201 and res["1"]["body"]["subject"] == "Batched"
    assert res["2"]["status"] == 200 and [e["subject"] for e in res["2"]["body"]["value"]] == ["Batched"]
    assert res["3"]["status"] == 404 and res["3"]["body"]["error"]["code"]
    assert res["4"]["status"] == 424
    assert "headers" in res["1"] and "Location" in res["1"]["headers"]
    too_many = app_graph.post("/$batch", {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
    assert app_graph.post("/$batch", {"nope": []}).status_code == 400
    bad_dep = app_graph.post("/$batch", {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]})
    assert bad_dep.status_code == 400


def test_attendant_notifies_the_organizer_within_a_batch(app_graph):
    r = app_graph.post("/$batch", {"requests": [
        {"id": "a", "method": "POST", "url": f"/users/{ALICE}/events", "body": meeting("One", rooms=[COSMOS]),
         "headers": {"Content-Type": "application/json"}},
        {"id": "b", "method": "POST", "url": f"/users/{BOB}/events", "body": meeting("Two", rooms=[COSMOS]),
         "headers": {"Content-Type": "application/json"}},
    ]}).json()
    a, b = (x["body"] for x in r["responses"])
    wait_for(lambda: app_graph.get(f"/users/{ALICE}/events/{a['id']}").json()["attendees"][0]["status"]["response"] == "accepted")
    wait_for(lambda: app_graph.get(f"/users/{BOB}/events/{b['id']}").json()["attendees"][0]["status"]["response"] == "declined")
