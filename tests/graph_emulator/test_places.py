"""The emulator's places service as Microsoft documents it: List places (rooms, room lists,
the rooms of a list, 100 per page with ``@odata.nextLink``), Get place, and Update place
(``PATCH /places/{id}``: Place.ReadWrite.All only, the room's documented properties only):
https://learn.microsoft.com/en-us/graph/api/place-list?view=graph-rest-1.0 and
https://learn.microsoft.com/en-us/graph/api/place-update?view=graph-rest-1.0"""

from graph_emulator.seed import DEMO_APP_ROLES, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from graph_emulator.testing import app_token
from tests.graph_emulator.helpers import Graph

D = "contoso.example"


def rooms(count: int) -> list[dict]:
    return [{"upn": f"p{i:03d}@{D}", "displayName": f"P {i:03d}", "roomList": f"big@{D}", "roomListName": "Big list"} for i in range(count)]


def writer(emulator_server, http, emulator_control) -> Graph:
    emulator_control.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET,
                                     "app_roles": [*DEMO_APP_ROLES, "Place.ReadWrite.All"]}]})
    token = app_token(emulator_server.base_url, emulator_server.ca_path, "contoso", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)["access_token"]
    return Graph(emulator_server, http, token)


def test_rooms_page_100_at_a_time_and_follow_next_link(app_graph, emulator_control):
    emulator_control.seed({"rooms": rooms(150)})
    first = app_graph.get("/places/microsoft.graph.room").json()
    assert len(first["value"]) == 100 and "@odata.nextLink" in first
    second = app_graph.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 53 and "@odata.nextLink" not in second  # 150 + the demo's 3
    top = app_graph.get("/places/microsoft.graph.room", params={"$top": "40"}).json()
    assert len(top["value"]) == 40 and "top=40" in top["@odata.nextLink"]


def test_room_lists_and_the_rooms_of_one(app_graph, emulator_control):
    emulator_control.seed({"rooms": rooms(120)})
    lists = app_graph.get("/places/microsoft.graph.roomList").json()["value"]
    assert {(x["emailAddress"], x["displayName"]) for x in lists} == {(f"big@{D}", "Big list"), (f"hq-rooms@{D}", "HQ rooms")}
    assert all(x["@odata.type"] == "#microsoft.graph.roomList" for x in lists)
    page = app_graph.get(f"/places/big@{D}/microsoft.graph.roomlist/rooms").json()
    assert len(page["value"]) == 100 and page["@odata.nextLink"]
    assert len(app_graph.get(page["@odata.nextLink"]).json()["value"]) == 20
    assert len(app_graph.get(f"/places/hq-rooms@{D}/rooms").json()["value"]) == 3
    assert app_graph.get(f"/places/nowhere@{D}/microsoft.graph.roomlist/rooms").status_code == 404


def test_get_place_by_email_and_id(app_graph):
    room = app_graph.get(f"/places/atlas@{D}").json()
    assert room["@odata.type"] == "#microsoft.graph.room" and room["capacity"] == 8
    assert app_graph.get(f"/places/{room['id']}").json()["emailAddress"] == f"atlas@{D}"


def test_update_place_needs_place_readwrite_all(app_graph):
    r = app_graph.patch(f"/places/atlas@{D}", {"@odata.type": "microsoft.graph.room", "capacity": 20})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    assert app_graph.get(f"/places/atlas@{D}").json()["capacity"] == 8


def test_update_place_writes_the_documented_properties_only(emulator_server, http, emulator_control):
    graph = writer(emulator_server, http, emulator_control)
    r = graph.patch(f"/places/atlas@{D}", {"@odata.type": "microsoft.graph.room", "capacity": 20, "floorNumber": 5,
                                           "floorLabel": "5F", "tags": ["bean bags"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["capacity"], body["floorNumber"], body["floorLabel"], body["tags"], body["displayName"]) == (20, 5, "5F", ["bean bags"], "Atlas")
    listed = {p["emailAddress"]: p for p in graph.get("/places/microsoft.graph.room").json()["value"]}
    assert listed[f"atlas@{D}"]["capacity"] == 20
    refused = graph.patch(f"/places/atlas@{D}", {"@odata.type": "microsoft.graph.room", "displayName": "Renamed"})
    assert refused.status_code == 400
    assert graph.patch(f"/places/atlas@{D}", {"@odata.type": "microsoft.graph.room", "capacity": "many"}).status_code == 400
    assert graph.patch(f"/places/atlas@{D}", {"capacity": 3}).status_code == 400  # @odata.type names the type
    assert graph.patch(f"/places/atlas@{D}", {"@odata.type": "microsoft.graph.room", "bookingType": "vip"}).status_code == 400
    assert graph.patch(f"/places/nobody@{D}", {"@odata.type": "microsoft.graph.room", "capacity": 3}).status_code == 404
    assert graph.get(f"/places/atlas@{D}").json()["capacity"] == 20
