"""The emulator is as strict as Graph v1.0 (DESIGN "Fidelity"; issue 18 item 11): what v1.0 lacks is
neither served nor accepted, and the URL forms Microsoft's own clients send are understood."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.graph_emulator.helpers import ALICE, ATLAS, BOB, meeting
from tests.waiting import wait_for

WINDOW = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name ReservationId"


def weekly(subject="Weekly", **extra):
    body = meeting(subject, start="2030-01-07T09:00:00", end="2030-01-07T09:30:00", **extra)
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                          "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3}}
    return body


def expiry(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- events: v1.0 properties only ---------------------------------------------------------------


def test_events_carry_no_beta_properties(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting()).json()
    master = app_graph.post(f"/users/{ALICE}/events", weekly()).json()
    occurrences = app_graph.get(f"/users/{ALICE}/calendarView?{WINDOW}").json()["value"]
    for item in [ev, master, *occurrences]:
        assert "uid" not in item and "occurrenceId" not in item


def test_an_unknown_or_beta_select_is_refused(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting()).json()
    for path in (f"/users/{ALICE}/events/{ev['id']}", f"/users/{ALICE}/events", f"/users/{ALICE}/calendarView?{WINDOW}&"):
        sep = "" if path.endswith("&") else "?"
        r = app_graph.get(f"{path}{sep}$select=id,iCalUId,uid")
        assert r.status_code == 400, path
        assert r.json()["error"]["code"] == "RequestBroker--ParseUri" and "'uid'" in r.json()["error"]["message"]
    ok = app_graph.get(f"/users/{ALICE}/events/{ev['id']}?$select=id,iCalUId,seriesMasterId,responseStatus")
    assert ok.status_code == 200 and set(ok.json()) >= {"id", "iCalUId", "responseStatus"}
    assert app_graph.get(f"/users/{ALICE}?$select=displayName,nonsense").status_code == 400
    assert app_graph.get("/places/microsoft.graph.room?$select=emailAddress,isManaged").status_code == 400


def test_series_master_lists_cancelled_occurrences(app_graph):
    master = app_graph.post(f"/users/{ALICE}/events", weekly()).json()
    assert master["type"] == "seriesMaster" and master["cancelledOccurrences"] == []
    second = app_graph.get(f"/users/{ALICE}/events/{master['id']}/instances?{WINDOW}").json()["value"][1]
    assert second["seriesMasterId"] == master["id"]
    assert app_graph.delete(f"/users/{ALICE}/events/{second['id']}").status_code == 204
    after = app_graph.get(f"/users/{ALICE}/events/{master['id']}").json()
    assert after["cancelledOccurrences"] == [f"OID.{master['id']}.2030-01-14"]


def test_transaction_id_only_when_set(app_graph):
    plain = app_graph.post(f"/users/{ALICE}/events", meeting(people=[BOB])).json()
    assert "transactionId" not in plain
    with_txn = app_graph.post(f"/users/{ALICE}/events", meeting(transactionId="txn-7")).json()
    assert with_txn["transactionId"] == "txn-7"
    copy = wait_for(lambda: [e for e in app_graph.get(f"/users/{BOB}/events").json()["value"] if e["iCalUId"] == plain["iCalUId"]])
    assert "transactionId" not in copy[0]


def test_malformed_ids_are_400_and_unknown_wellformed_ids_404(app_graph):
    ev = app_graph.post(f"/users/{ALICE}/events", meeting()).json()
    r = app_graph.get(f"/users/{ALICE}/events/E1")
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidIdMalformed"
    assert app_graph.patch(f"/users/{ALICE}/events/not-an-id", {"subject": "x"}).json()["error"]["code"] == "ErrorInvalidIdMalformed"
    app_graph.delete(f"/users/{ALICE}/events/{ev['id']}")
    gone = app_graph.get(f"/users/{ALICE}/events/{ev['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"


# -- places ----------------------------------------------------------------------------------------


def test_rooms_have_v1_place_properties_and_take_the_graph_alias(app_graph):
    full = app_graph.get("/places/microsoft.graph.room")
    alias = app_graph.get("/places/graph.room")
    assert full.status_code == alias.status_code == 200
    assert full.json()["value"] == alias.json()["value"]
    room = next(r for r in full.json()["value"] if r["emailAddress"] == ATLAS)
    assert "isManaged" not in room
    assert room["placeId"] and room["teamsEnabledState"] in ("unknown", "enabled", "disabled")
    lists = app_graph.get("/places/graph.roomList").json()["value"]
    assert lists and all(r["@odata.type"] == "#microsoft.graph.roomList" and "placeId" in r for r in lists)


# -- getSchedule -------------------------------------------------------------------------------------


def test_schedule_shows_working_elsewhere_as_4_and_windows_zones(app_graph, emulator_control):
    emulator_control.seed({"users": [{"upn": "carol@contoso.example", "timeZone": "America/New_York"}]})
    app_graph.post(f"/users/{ALICE}/events", meeting(start="2030-01-07T09:00:00", end="2030-01-07T10:00:00", showAs="workingElsewhere"))
    r = app_graph.post(f"/users/{ALICE}/calendar/getSchedule", {
        "schedules": [ALICE, "carol@contoso.example"],
        "startTime": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 60,
    })
    alice, carol = r.json()["value"]
    assert alice["availabilityView"] == "040"
    assert set(alice["scheduleItems"][0]) == {"isPrivate", "status", "subject", "location", "start", "end"}
    assert carol["workingHours"]["timeZone"]["name"] == "Eastern Standard Time"


# -- subscriptions -----------------------------------------------------------------------------------


def subscribe(app_graph, url, minutes=60, **extra):
    return app_graph.post("/subscriptions", {"changeType": "created,updated,deleted", "notificationUrl": url,
                                             "resource": f"/users/{ATLAS}/events", "expirationDateTime": expiry(minutes), **extra})


def test_outlook_event_subscriptions_last_up_to_10080_minutes(app_graph, webhook):
    assert subscribe(app_graph, webhook.url + "/notify", minutes=10070).status_code == 201
    assert subscribe(app_graph, webhook.url + "/notify", minutes=10090).status_code == 400


def test_lifecycle_url_cannot_be_patched(app_graph, webhook):
    sub = subscribe(app_graph, webhook.url + "/notify", lifecycleNotificationUrl=webhook.url + "/lifecycle").json()
    r = app_graph.patch(f"/subscriptions/{sub['id']}", {"lifecycleNotificationUrl": webhook.url + "/other"})
    assert r.status_code == 400
    assert app_graph.get(f"/subscriptions/{sub['id']}").json()["lifecycleNotificationUrl"] == webhook.url + "/lifecycle"
    assert app_graph.patch(f"/subscriptions/{sub['id']}", {"expirationDateTime": expiry(120)}).status_code == 200


def test_http_notification_urls_need_the_development_flag(app_graph, webhook, emulator_control):
    # The test run allows http on loopback only (tests/conftest.py), as make run does.
    assert emulator_control.config()["http_notification_urls"] == "loopback"
    assert subscribe(app_graph, webhook.url + "/notify").status_code == 201
    remote = subscribe(app_graph, "http://hooks.contoso.example/notify")
    assert remote.status_code == 400 and "HTTPS" in remote.json()["error"]["message"]
    emulator_control.configure(http_notification_urls="refuse")  # Graph itself
    refused = subscribe(app_graph, webhook.url + "/notify")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ValidationError"
    assert webhook.validations == [webhook.validations[0]]  # no handshake was even tried for the refused ones
    emulator_control.reset()
    assert emulator_control.config()["http_notification_urls"] == "loopback"  # the process's setting survives a reset


# -- delta -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,status,code", [(None, 400, "syncStateNotFound"), ("gone", 410, "SyncStateNotFound")])
def test_expired_delta_token(app_graph, emulator_control, mode, status, code):
    if mode:
        emulator_control.configure(delta_expired_mode=mode)
    first = app_graph.get(f"/users/{ATLAS}/calendarView/delta?{WINDOW}").json()
    emulator_control.expire_delta_tokens(ATLAS)
    r = app_graph.get(first["@odata.deltaLink"])
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_delta_function_with_parentheses(app_graph):
    app_graph.post(f"/users/{ATLAS}/events", meeting())
    plain = app_graph.get(f"/users/{ATLAS}/calendarView/delta?{WINDOW}")
    called = app_graph.get(f"/users/{ATLAS}/calendarView/delta()?{WINDOW}")
    assert plain.status_code == called.status_code == 200
    assert [e["id"] for e in called.json()["value"]] == [e["id"] for e in plain.json()["value"]]


# -- $batch ------------------------------------------------------------------------------------------


def test_batch_items_run_concurrently_and_are_throttled_one_by_one(app_graph, emulator_control):
    emulator_control.configure(latency_ms=300)
    requests = [{"id": str(i), "method": "GET", "url": f"/users/{ATLAS}/events?$top=1"} for i in range(10)]
    started = datetime.now(UTC)
    body = app_graph.post("/$batch", {"requests": requests}).json()
    elapsed = (datetime.now(UTC) - started).total_seconds()
    statuses = sorted(r["status"] for r in body["responses"])
    assert statuses.count(200) == 4 and statuses.count(429) == 6  # 4 concurrent requests per mailbox
    throttled = next(r for r in body["responses"] if r["status"] == 429)
    assert throttled["headers"]["Retry-After"] and throttled["body"]["error"]["code"] == "ApplicationThrottled"
    assert elapsed < 2  # in parallel, not 10 x 300 ms


def test_batch_depends_on_still_orders(app_graph, emulator_control):
    emulator_control.configure(latency_ms=50)
    body = app_graph.post("/$batch", {"requests": [
        {"id": "1", "method": "POST", "url": f"/users/{ALICE}/events", "body": meeting("First"), "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "GET", "url": f"/users/{ALICE}/events?$select=subject", "dependsOn": ["1"]},
    ]}).json()
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["1"]["status"] == 201 and [e["subject"] for e in by_id["2"]["body"]["value"]] == ["First"]


# -- the booking attendant ---------------------------------------------------------------------------


def test_the_attendant_answers_after_the_configured_delay(app_graph, emulator_control):
    emulator_control.configure(attendant_delay_seconds=1.0)
    ev = app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS])).json()

    def room_answer():
        return app_graph.get(f"/users/{ALICE}/events/{ev['id']}").json()["attendees"][0]["status"]["response"]

    assert room_answer() == "none"
    assert not [e for e in app_graph.get(f"/users/{ATLAS}/events").json()["value"] if e["iCalUId"] == ev["iCalUId"]]
    wait_for(lambda: room_answer() == "accepted", timeout=5)


# -- URL forms and extended properties ----------------------------------------------------------------


def test_events_through_the_calendar_id(app_graph):
    calendar = app_graph.get(f"/users/{ALICE}/calendar").json()
    created = app_graph.post(f"/users/{ALICE}/calendars/{calendar['id']}/events", meeting("Via calendar"))
    assert created.status_code == 201
    listed = app_graph.get(f"/users/{ALICE}/calendars/{calendar['id']}/events").json()["value"]
    assert [e["subject"] for e in listed] == ["Via calendar"]
    view = app_graph.get(f"/users/{ALICE}/calendars/{calendar['id']}/calendarView?{WINDOW}").json()["value"]
    assert [e["id"] for e in view] == [created.json()["id"]]
    assert app_graph.get(f"/users/{ALICE}/calendars/{calendar['id']}").json()["id"] == calendar["id"]
    other = app_graph.get(f"/users/{ALICE}/calendars/{'AAMkAG' + 'A' * 58}/events")
    assert other.status_code == 404


def test_single_value_extended_properties_are_stored_and_expanded(app_graph):
    body = meeting(singleValueExtendedProperties=[{"id": PROP, "value": "r-42"}])
    ev = app_graph.post(f"/users/{ALICE}/events", body).json()
    assert "singleValueExtendedProperties" not in ev  # returned only when expanded
    expand = f"$expand=singleValueExtendedProperties($filter=id eq '{PROP}')"
    got = app_graph.get(f"/users/{ALICE}/events/{ev['id']}?{expand}").json()
    assert got["singleValueExtendedProperties"] == [{"id": PROP, "value": "r-42"}]
    listed = app_graph.get(f"/users/{ALICE}/events?{expand}").json()["value"]
    assert listed[0]["singleValueExtendedProperties"][0]["value"] == "r-42"
    other = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Other"
    assert "singleValueExtendedProperties" not in app_graph.get(
        f"/users/{ALICE}/events/{ev['id']}?$expand=singleValueExtendedProperties($filter=id eq '{other}')").json()
    bad = app_graph.post(f"/users/{ALICE}/events", meeting(singleValueExtendedProperties=[{"id": "ReservationId", "value": "x"}]))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "ErrorInvalidExtendedProperty"
