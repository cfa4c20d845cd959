"""The room directory from Exchange (issue 16 item 1): ``manage.py sync_rooms``, the admin
action and the nightly job import rooms and room lists from the emulator's places service
over HTTPS with real MSAL; hand-set fields are kept, gone rooms flagged, and the push-back
PATCHes the emulator (refused without Place.ReadWrite.All)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from graph_emulator.seed import DEMO_APP_ROLES, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from workplace.models import Room, RoomImport

pytestmark = pytest.mark.django_db

DOMAIN = "contoso.example"


def many_rooms(count: int, *, list_of=lambda i: f"tower-rooms@{DOMAIN}" if i % 2 else f"annex-rooms@{DOMAIN}") -> list[dict]:
    return [{
        "upn": f"r{i:03d}@{DOMAIN}", "displayName": f"Room {i:03d}", "capacity": 2 + i % 10, "floorNumber": i % 5,
        "floorLabel": f"F{i % 5}", "building": "Tower" if i % 2 else "Annex", "roomList": list_of(i),
        "roomListName": "Tower rooms" if i % 2 else "Annex rooms",
        "tags": ["Whiteboard"] if i % 3 == 0 else [], "audioDeviceName": "Speakerphone" if i % 4 == 0 else None,
        "videoDeviceName": None, "displayDeviceName": "Surface Hub" if i % 7 == 0 else None,
        "isWheelChairAccessible": i % 2 == 0, "bookingType": "reserved" if i == 5 else "standard",
    } for i in range(count)]


def sync(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_rooms", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def place_requests(emulator) -> list[dict]:
    return [e for e in emulator.request_log(limit=5000)["entries"] if "/places" in e["path"]]


def test_sync_rooms_pages_across_more_than_100_rooms_and_maps_every_field(provider, emulator):
    # 120 rooms in two room lists, and 15 in none (found by /places/microsoft.graph.room).
    emulator.seed({"rooms": many_rooms(120) + many_rooms(135, list_of=lambda i: None)[120:]})
    emulator.clear_request_log()
    out, err = sync()
    assert "138 room(s) in 3 room list(s): 138 new, 0 changed, 0 gone from Exchange" in out  # + the demo's 3 (HQ list)
    assert "[##############################] 138/138" in err  # the progress bar
    assert Room.objects.count() == 138 and not Room.objects.filter(sync_enabled=True).exists()  # new rooms arrive unsynced
    log = place_requests(emulator)
    lists = [e for e in log if e["path"].endswith("/microsoft.graph.roomlist/rooms")]
    assert {e["path"] for e in lists} == {f"/v1.0/places/{a}/microsoft.graph.roomlist/rooms"
                                           for a in (f"annex-rooms@{DOMAIN}", f"tower-rooms@{DOMAIN}", f"hq-rooms@{DOMAIN}")}
    all_rooms = [e for e in log if e["path"].endswith("/places/microsoft.graph.room")]
    assert len(all_rooms) == 2, "138 rooms at 100 per page: the second page came from @odata.nextLink"
    assert all(e["status"] == 200 for e in log)

    room = Room.objects.select_related("building", "floor").get(mailbox=f"r012@{DOMAIN}")
    assert (room.name, room.capacity, room.building.name, room.floor.name, room.floor.level) == ("Room 012", 4, "Annex", "F2", 2)
    assert sorted(e.name for e in room.equipment.all()) == ["Speakerphone", "Whiteboard"]
    assert room.wheelchair_accessible and room.room_list == f"annex-rooms@{DOMAIN}" and room.exchange_id
    assert Room.objects.get(mailbox=f"r005@{DOMAIN}").booking_type == "reserved"
    assert sorted(e.name for e in Room.objects.get(mailbox=f"r007@{DOMAIN}").equipment.all()) == ["Surface Hub"]
    assert Room.objects.get(mailbox=f"r130@{DOMAIN}").room_list == ""
    run = RoomImport.objects.get()
    assert (run.seen, run.new, run.changed, run.gone, run.room_lists) == (138, 138, 0, 0, 3)

    # A second run changes nothing.
    out, _ = sync("--provider", provider.name)
    assert "138 new" not in out and "0 new, 0 changed, 0 gone" in out


def test_changed_rooms_update_except_hand_set_fields_and_the_admin_sees_what_differs(provider, emulator, admin, client):
    emulator.seed({"rooms": many_rooms(3)})
    sync()
    room = Room.objects.get(mailbox=f"r001@{DOMAIN}")
    client.force_login(admin)
    # The admin sets the capacity by hand in the room's change form.
    form = client.get(f"/admin/workplace/room/{room.pk}/change/")
    assert form.status_code == 200
    data = {
        "building": room.building_id, "floor": room.floor_id or "", "name": room.name, "description": "", "capacity": 30,
        "equipment": [e.pk for e in room.equipment.all()], "wheelchair_accessible": "", "reservable": "on", "mailbox": room.mailbox,
        "booking_type": room.booking_type, "room_list": room.room_list,
        "arrangements-TOTAL_FORMS": "1", "arrangements-INITIAL_FORMS": "0", "arrangements-MIN_NUM_FORMS": "1",
        "arrangements-MAX_NUM_FORMS": "1000", "arrangements-0-name": "Default", "arrangements-0-is_default": "on",
    }
    response = client.post(f"/admin/workplace/room/{room.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    room.refresh_from_db()
    assert "capacity" in room.kept_fields

    # Exchange changes the room: capacity, name, floor and a tag.
    changed = many_rooms(3)[1] | {"capacity": 12, "displayName": "Room One", "floorNumber": 4, "floorLabel": "F4", "tags": ["Whiteboard"]}
    emulator.seed({"rooms": [changed]})
    out, _ = sync()
    assert "0 new, 1 changed" in out
    room.refresh_from_db()
    assert room.capacity == 30  # kept: set by hand
    assert (room.name, room.floor.level) == ("Room One", 4)  # Exchange's
    assert "Whiteboard" in {e.name for e in room.equipment.all()}
    assert room.exchange_differences == {"capacity": {"product": 30, "exchange": 12}}
    run = RoomImport.objects.first()
    assert run.details["changed"][room.mailbox]["updated"]["name"] == {"was": "Room 001", "now": "Room One"}

    # The admin sees it: the list's column, the change form's table, the run's per-room page.
    listing = client.get("/admin/workplace/room/").content.decode()
    assert "capacity" in listing
    page = client.get(f"/admin/workplace/room/{room.pk}/change/").content.decode()
    assert "<td>capacity</td><td>30</td><td>12</td>" in page
    detail = client.get(f"/admin/workplace/roomimport/{run.pk}/change/").content.decode()
    assert "name: Room 001 → Room One" in detail and "capacity kept (Exchange: 12)" in detail

    # "Take Exchange's values": the next import sets the capacity from Exchange.
    client.post("/admin/workplace/room/", {"action": "use_exchange_values", "_selected_action": [room.pk]})
    sync()
    room.refresh_from_db()
    assert room.capacity == 12 and room.exchange_differences == {}


def test_a_room_made_by_hand_keeps_its_fields_when_exchange_first_lists_it(provider, emulator, hq):
    from tests.factories import RoomFactory

    mine = RoomFactory(building=hq, name="Atlas (HQ 1)", capacity=10, mailbox=f"atlas@{DOMAIN}", synced=True)
    out, _ = sync()
    assert "2 new, 1 changed" in out
    mine.refresh_from_db()
    assert (mine.name, mine.capacity, mine.sync_enabled) == ("Atlas (HQ 1)", 10, True)
    assert set(mine.exchange_differences) >= {"name", "capacity"} and set(mine.kept_fields) >= {"name", "capacity"}
    assert mine.exchange_differences["capacity"] == {"product": 10, "exchange": 8}


def test_rooms_gone_from_exchange_are_flagged_never_deleted_and_filterable(provider, emulator, admin, client, django_assert_max_num_queries):
    emulator.seed({"rooms": many_rooms(4)})
    sync()
    emulator.reset()  # Exchange now has only the demo's three rooms
    out, _ = sync()
    assert "0 new, 0 changed, 4 gone from Exchange" in out
    assert Room.objects.count() == 7
    assert set(Room.objects.filter(exchange_gone=True).values_list("mailbox", flat=True)) == {f"r00{i}@{DOMAIN}" for i in range(4)}
    out, _ = sync()
    assert "0 gone from Exchange" in out  # flagged once

    client.force_login(admin)
    with django_assert_max_num_queries(12):
        page = client.get("/admin/workplace/room/?exchange_gone__exact=1").content.decode()
    assert "Room 000" in page and "Atlas" not in page
    # Back in Exchange: the flag clears and the room counts as changed.
    emulator.seed({"rooms": many_rooms(1)})
    out, _ = sync()
    assert "1 changed" in out and not Room.objects.get(mailbox=f"r000@{DOMAIN}").exchange_gone


def test_admin_action_and_nightly_job_import(provider, emulator, admin, client):
    from calendar_sync.apps import BEAT_SCHEDULE
    from calendar_sync.directory.tasks import sync_rooms

    client.force_login(admin)
    response = client.post("/admin/exchange_auth/calendarprovider/", {"action": "import_rooms", "_selected_action": [provider.pk]}, follow=True)
    assert "3 room(s) in 1 room list(s): 3 new" in response.content.decode()
    emulator.seed({"rooms": many_rooms(2)})
    atlas = Room.objects.get(mailbox=f"atlas@{DOMAIN}")
    response = client.post("/admin/workplace/room/", {"action": "import_from_exchange", "_selected_action": [atlas.pk]}, follow=True)
    assert "2 new" in response.content.decode()
    emulator.seed({"rooms": many_rooms(3)})
    assert "1 new" in sync_rooms()[provider.name]
    assert list(RoomImport.objects.values_list("trigger", flat=True)) == ["nightly", "admin", "admin"]
    assert BEAT_SCHEDULE["calendar_sync.sync_rooms"]["task"] == "calendar_sync.directory.tasks.sync_rooms"


def _with_place_write(emulator) -> None:
    emulator.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET,
                             "app_roles": [*DEMO_APP_ROLES, "Place.ReadWrite.All"]}]})


def test_push_back_patches_exchange_with_the_products_capacity_equipment_and_floor(provider, emulator, hq, projector):
    from workplace.models import Floor

    _with_place_write(emulator)
    provider.push_rooms_to_exchange = True
    provider.save()
    sync()
    room = Room.objects.get(mailbox=f"atlas@{DOMAIN}")
    room.capacity = 9
    room.floor = Floor.objects.create(building=room.building, name="Mezzanine", level=7)
    room.save()
    room.equipment.add(projector)
    from workplace.directory import keep_hand_set

    keep_hand_set(room, ["capacity", "floor", "equipment"])
    emulator.clear_request_log()
    out, _ = sync()
    assert "1 pushed back" in out
    patches = [e for e in place_requests(emulator) if e["method"] == "PATCH"]
    assert [(e["path"], e["status"]) for e in patches] == [(f"/v1.0/places/{room.exchange_id}", 200)]
    place = next(u for u in emulator.snapshot()["users"] if u["upn"] == f"atlas@{DOMAIN}")["room"]
    assert (place["capacity"], place["floorNumber"], place["floorLabel"], place["tags"]) == (9, 7, "Mezzanine", ["Projector"])
    room.refresh_from_db()
    assert room.exchange_differences == {}
    out, _ = sync()
    assert "0 pushed back" in out  # nothing differs any more


def test_push_back_is_refused_without_place_readwrite_all(provider, emulator):
    provider.push_rooms_to_exchange = True
    provider.save()
    sync()
    room = Room.objects.get(mailbox=f"atlas@{DOMAIN}")
    Room.objects.filter(pk=room.pk).update(capacity=9)
    from workplace.directory import keep_hand_set

    room.refresh_from_db()
    keep_hand_set(room, ["capacity"])
    emulator.clear_request_log()
    out, _ = sync()
    assert "0 pushed back, 1 push(es) refused" in out and "push refused for atlas@contoso.example: 403" in out
    assert [e["status"] for e in place_requests(emulator) if e["method"] == "PATCH"] == [403]
    assert RoomImport.objects.first().details["push_refused"][room.mailbox].startswith("403")
    place = next(u for u in emulator.snapshot()["users"] if u["upn"] == f"atlas@{DOMAIN}")["room"]
    assert place["capacity"] == 8


def test_the_api_shows_the_rooms_directory_fields(provider, emulator, alice_api):
    emulator.seed({"rooms": many_rooms(1)})
    sync()
    room = Room.objects.get(mailbox=f"r000@{DOMAIN}")
    body = alice_api.get(f"/api/v1/rooms/{room.pk}/").json()
    assert (body["wheelchair_accessible"], body["booking_type"], body["room_list"], body["gone_from_exchange"], body["floor_level"]) == (
        True, "standard", f"annex-rooms@{DOMAIN}", False, 0)
    listed = alice_api.get("/api/v1/rooms/", {"page_size": 100}).json()
    assert any(r["id"] == room.pk and r["outlook_changes_synced"] is False for r in listed["results"])


def test_without_place_read_all_the_import_fails_cleanly_and_changes_nothing(provider, emulator):
    from django.core.management.base import CommandError

    emulator.seed({"apps": [{"client_id": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET, "app_roles": ["Calendars.ReadWrite"]}]})
    with pytest.raises(CommandError, match="1 of 1 provider"):
        sync()
    assert not Room.objects.exists()
    run = RoomImport.objects.get()
    assert run.error.startswith("403 ErrorAccessDenied") and run.finished_at is not None
