"""The emulator and the product checked against Microsoft's Graph v1.0 metadata (issue 18 item 12).

The schema is ``tests/graph_schema/v1_0_types.json``, extracted from Microsoft's CSDL by
``bin/extract_graph_schema.py`` (run it again when the metadata moves on). It checks that:

1. every response type the product reads, as the emulator answers it, has only properties its
   v1.0 type has, each of the right type (enums among their members, null only where nullable);
2. every ``$select`` the product sends names only v1.0 properties: the literals in its source,
   and what the emulator's request log records during the product's own flows;
3. the emulator's own lists of selectable properties are the metadata's.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest

from graph_emulator import serialize
from graph_emulator.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from graph_emulator.testing import app_token, make_session
from tests.graph_emulator.helpers import (
    ALICE,
    ATLAS,
    BOB,
    BOREALIS,
    Graph,
    Webhook,
    meeting,
)
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "graph_schema" / "v1_0_types.json").read_text())["types"]
WINDOW = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"
_TIME_OF_DAY = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")


# --- the validator -----------------------------------------------------------------------------


def properties(type_name: str) -> dict:
    return SCHEMA[type_name]["properties"]


def check(value, type_name: str, path: str = "$") -> list[str]:
    """Problems of ``value`` against v1.0's ``type_name`` (an entity, complex or enum type, or Edm.*)."""
    if type_name.startswith("Collection("):
        if not isinstance(value, list):
            return [f"{path}: expected a collection of {type_name[11:-1]}, got {value!r}"]
        return [p for i, item in enumerate(value) for p in check(item, type_name[11:-1], f"{path}[{i}]")]
    if type_name.startswith("Edm."):
        return _check_edm(value, type_name, path)
    spec = SCHEMA.get(type_name)
    if spec is None:
        return []  # a type the fixture doesn't describe (not one the product reads)
    if spec["kind"] == "enum":
        members = set(spec["members"])
        ok = isinstance(value, str) and all(v.strip() in members for v in value.split(","))
        return [] if ok else [f"{path}: {value!r} is not a {type_name} ({sorted(members)})"]
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object, got {value!r}"]
    odata_type = value.get("@odata.type")
    if odata_type:
        derived = odata_type.lstrip("#").removeprefix("microsoft.graph.")
        if derived != type_name and derived in SCHEMA:
            if derived not in _descendants(type_name):
                return [f"{path}: @odata.type {odata_type} is not a {type_name}"]
            type_name, spec = derived, SCHEMA[derived]
    problems = []
    props = spec["properties"]
    for key, item in value.items():
        if key.startswith("@") or "@" in key:
            continue  # annotations (@odata.etag, @removed, property@odata.context)
        if key in spec["navigation"]:
            continue
        if key not in props:
            # Graph declares event and its kin OpenType, yet serves only their declared properties; only a
            # type open by design with none declared (resourceData) is a bag.
            if not (spec["open"] and not props):
                problems.append(f"{path}.{key}: microsoft.graph.{type_name} has no property '{key}' in v1.0")
            continue
        prop = props[key]
        if item is None:
            if not prop["nullable"] or prop["type"].startswith("Collection("):
                problems.append(f"{path}.{key}: null, but {prop['type']} is not nullable")
            continue
        problems += check(item, prop["type"], f"{path}.{key}")
    return problems


def _descendants(type_name: str) -> set[str]:
    out = set()
    for child in SCHEMA.get(type_name, {}).get("derived", []):
        out |= {child} | _descendants(child)
    return out


def _check_edm(value, edm: str, path: str) -> list[str]:
    ok = {
        "Edm.String": lambda v: isinstance(v, str),
        "Edm.Boolean": lambda v: isinstance(v, bool),
        "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Edm.Int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Edm.Double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Edm.DateTimeOffset": _is_instant,
        "Edm.Date": lambda v: isinstance(v, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)),
        "Edm.TimeOfDay": lambda v: isinstance(v, str) and bool(_TIME_OF_DAY.match(v)),
        "Edm.Guid": _is_guid,
    }.get(edm, lambda v: True)
    return [] if ok(value) else [f"{path}: {value!r} is not an {edm}"]


def _is_instant(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _is_guid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def assert_v1(value, type_name: str) -> None:
    problems = check(value, type_name)
    assert not problems, "\n".join(problems)


def test_the_validator_catches_what_v1_lacks():
    """The check itself: a beta-only property, a wrong enum member, a null where none is allowed."""
    assert check({"id": "x", "uid": "beta"}, "event") == ["$.uid: microsoft.graph.event has no property 'uid' in v1.0"]
    assert check({"showAs": "away"}, "event")
    assert check({"cancelledOccurrences": None}, "event")
    assert check({"start": {"dateTime": "2030-01-01T00:00:00", "timeZone": "UTC"}, "isAllDay": "no"}, "event")
    assert check({"@odata.type": "#microsoft.graph.room", "isManaged": True}, "place")
    assert not check({"@odata.type": "#microsoft.graph.room", "placeId": "p", "teamsEnabledState": "enabled"}, "place")


# --- 1. what the emulator answers --------------------------------------------------------------------


@pytest.fixture
def graph(emulator_server, emulator_control):
    emulator_control.reset()
    session = make_session(emulator_server.ca_path)
    token = app_token(emulator_server.base_url, emulator_server.ca_path, "contoso", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)["access_token"]
    yield Graph(emulator_server, session, token)
    session.close()


def ok(response) -> dict:
    assert response.status_code < 300, response.text
    return response.json()


def test_event_responses_are_v1_events(graph):
    single = ok(graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS], people=[BOB], transactionId="t-1")))
    series_body = meeting("Weekly", rooms=[BOREALIS], start="2030-01-07T09:00:00", end="2030-01-07T09:30:00")
    series_body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                                 "range": {"type": "endDate", "startDate": "2030-01-07", "endDate": "2030-02-04", "recurrenceTimeZone": "UTC"}}
    master = ok(graph.post(f"/users/{ALICE}/events", series_body))
    wait_for(lambda: graph.get(f"/users/{ATLAS}/events").json()["value"])
    instances = ok(graph.get(f"/users/{ALICE}/events/{master['id']}/instances?{WINDOW}"))["value"]
    graph.delete(f"/users/{ALICE}/events/{instances[1]['id']}")
    bodies = [single, master, *instances,
              ok(graph.get(f"/users/{ALICE}/events/{single['id']}")),
              ok(graph.get(f"/users/{ALICE}/events/{master['id']}")),
              *ok(graph.get(f"/users/{ALICE}/events"))["value"],
              *ok(graph.get(f"/users/{ALICE}/calendarView?{WINDOW}", headers={"Prefer": 'outlook.timezone="UTC"'}))["value"],
              *ok(graph.get(f"/users/{ATLAS}/calendarView?{WINDOW}"))["value"],
              *ok(graph.get(f"/users/{BOB}/events"))["value"],
              *ok(graph.get(f"/users/{ATLAS}/calendarView/delta?{WINDOW}"))["value"]]
    for body in bodies:
        assert_v1(body, "event")
    assert_v1(ok(graph.get(f"/users/{ALICE}/calendar")), "calendar")


def test_place_user_subscription_and_schedule_responses_are_v1(graph, emulator_control):
    for room in ok(graph.get("/places/microsoft.graph.room"))["value"]:
        assert_v1(room, "room")
    for room_list in ok(graph.get("/places/microsoft.graph.roomList"))["value"]:
        assert_v1(room_list, "roomList")
    for user in ok(graph.get("/users"))["value"]:
        assert_v1(user, "user")
    assert_v1(ok(graph.get(f"/users/{ALICE}")), "user")
    graph.post(f"/users/{ALICE}/events", meeting(showAs="workingElsewhere"))
    schedule = ok(graph.post(f"/users/{ALICE}/calendar/getSchedule", {
        "schedules": [ALICE, ATLAS, "nobody@contoso.example"],
        "startTime": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-01-07T12:00:00", "timeZone": "UTC"}, "availabilityViewInterval": 30,
    }))
    for info in schedule["value"]:
        assert_v1(info, "scheduleInformation")
    hook = Webhook()
    try:
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sub = ok(graph.post("/subscriptions", {"changeType": "created,updated,deleted", "notificationUrl": hook.url + "/notify",
                                              "lifecycleNotificationUrl": hook.url + "/lifecycle",
                                              "resource": f"/users/{ATLAS}/events", "expirationDateTime": expiry, "clientState": "s"}))
        assert_v1(sub, "subscription")
        for listed in ok(graph.get("/subscriptions"))["value"]:
            assert_v1(listed, "subscription")
        graph.post(f"/users/{ATLAS}/events", meeting("Notified"))
        notifications = wait_for(lambda: hook.items("/notify"), timeout=10)
        emulator_control.trigger_lifecycle(sub["id"], "reauthorizationRequired")
        lifecycle = wait_for(lambda: hook.items("/lifecycle"), timeout=10)
    finally:
        hook.close()
    for item in notifications + lifecycle:
        assert_v1(item, "changeNotification")


# --- 2. what the product selects ---------------------------------------------------------------------

# "...?$select=a,b" in a URL, {"$select": "a,b"}, select="a,b" (the meetings helpers) and FOO_SELECT = "a,b"
_SELECT_LITERALS = [
    re.compile(r"\$select=([A-Za-z][A-Za-z,/.]*)"),
    re.compile(r"[\"']\$select[\"']\s*:\s*[\"']([A-Za-z][A-Za-z,/.]*)[\"']"),
    re.compile(r"\bselect=[\"']([A-Za-z][A-Za-z,/.]*)[\"']"),
    re.compile(r"\b\w*SELECT\s*=\s*[\"']([A-Za-z][A-Za-z,/.]*)[\"']"),
]


def product_selects() -> dict[str, set[str]]:
    """Every $select literal in calendar_sync/ and exchange_auth/ (file → names)."""
    found: dict[str, set[str]] = {}
    for folder in ("calendar_sync", "exchange_auth"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            for m in (m for pattern in _SELECT_LITERALS for m in pattern.finditer(text)):
                names = {n.strip() for n in m.group(1).split(",") if n.strip()}
                found.setdefault(str(source.relative_to(ROOT)), set()).update(names)
    return found


def test_every_select_literal_in_the_product_names_v1_event_properties():
    """The product's selects are on events (the room list and subscriptions take none), except the
    people search's, which is on users (calendar_sync/people.py)."""
    found = product_selects()
    assert found, "no $select found: the scan is broken"
    other_types = {"calendar_sync/people.py": "user", "calendar_sync/common/online_providers.py": "calendar"}
    assert all(found.get(f) for f in other_types), "a $select on users or calendars wasn't found: the scan is broken"
    bad = {f: sorted(names - set(properties(other_types.get(f, "event")))) for f, names in found.items()}
    bad = {f: names for f, names in bad.items() if names}
    assert not bad, f"selects naming no v1.0 event property: {bad}"


_TYPE_OF_ENDPOINT = [
    (re.compile(r"/(events|calendarView)(/\{id\})?(/instances|/delta)?$"), "event"),
    (re.compile(r"/places/"), "room"),
    (re.compile(r"^GET /v1\.0/users(/\{id\})?$"), "user"),
]


@pytest.mark.django_db(transaction=True)
def test_the_selects_of_the_products_flows_name_v1_properties(provider, mode, emulator, emulator_server, alice, bob, atlas):
    """Run the product's Graph flows (push, answer checks, the room check, pulls, cancelling an
    occurrence, the attendees' answers, the room list) and check each $select the emulator saw."""
    from calendar_sync import freebusy
    from calendar_sync.inbound import delta
    from calendar_sync.outbound import confirm
    from exchange_auth.graph_check import test_connection
    from reservations import services
    from reservations.models import Reservation, SyncEvent
    from reservations.recurrence import Recurrence
    from tests.calendar_sync.inbound_helpers import room_copies
    from tests.factories import days_ahead
    from tests.waiting import wait_for

    mode("Normal")
    emulator.clear_request_log()
    start = days_ahead(5, 9)
    single = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Single",
                                         attendees=[{"email": "bob@contoso.example"}])
    first = services.reservation_create(actor=alice, room=atlas, start=start + dt.timedelta(hours=3), end=start + dt.timedelta(hours=4),
                                        subject="Series", recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    def on_the_room_calendar() -> bool:  # pushed (eager Celery after commit), answered by the room's attendant
        uids = set(Reservation.objects.filter(pk__in=[single.pk, first.pk]).values_list("ical_uid", flat=True)) - {""}
        return len(uids) == 2 and uids <= {e.ical_uid for e in room_copies(emulator_server, ATLAS)}

    wait_for(on_the_room_calendar, message="the room's copies")
    confirm.check_room_calendars()  # first, while the reservations still await the room's answer
    confirm.check_answers()
    delta.pull_mailbox(ATLAS, full=True, nightly=True, wait=30)
    single.refresh_from_db()
    freebusy.attendee_responses_refresh(reservation=single)
    services.reservation_cancel(actor=alice, reservation=first.series.occurrences.order_by("start").last(), reason="Away")
    wait_for(lambda: not SyncEvent.objects.filter(state__in=[SyncEvent.State.NEW, SyncEvent.State.PROCESSING]).exists(), message="the cancel pushed")
    delta.pull_mailbox(ATLAS, wait=30)
    assert test_connection(provider).ok
    log = emulator.request_log(limit=5000)["entries"]
    selects = [(e["endpoint"], e["select"]) for e in log if e.get("select")]
    assert selects, "no flow sent a $select: the check is empty"
    problems = []
    for endpoint, select in selects:
        type_name = next((t for pattern, t in _TYPE_OF_ENDPOINT if pattern.search(endpoint)), None)
        assert type_name, f"a $select on an endpoint the check doesn't know: {endpoint}"
        names = {n.strip().split("/")[-1] for n in select.split(",")}
        missing = names - set(properties(type_name))
        if missing:
            problems.append(f"{endpoint} $select={select}: not v1.0 {type_name} properties: {sorted(missing)}")
    assert not problems, "\n".join(problems)


# --- 3. the emulator's lists are the metadata's -------------------------------------------------------


@pytest.mark.parametrize("listed,type_name", [
    (serialize.EVENT_PROPERTIES, "event"), (serialize.ROOM_PROPERTIES, "room"), (serialize.ROOM_LIST_PROPERTIES, "roomList"),
])
def test_the_emulators_selectable_properties_are_v1s(listed, type_name):
    assert set(listed) == set(properties(type_name))


def test_the_emulators_user_properties_exist_in_v1():
    assert set(serialize.USER_PROPERTIES) <= set(properties("user"))
