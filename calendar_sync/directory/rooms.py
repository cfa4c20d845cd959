"""The room directory from Exchange: import and refresh rooms and room lists from Graph's
places service, and optionally push the product's capacity, equipment and floor back.

Graph (app-only, Place.Read.All; the push needs Place.ReadWrite.All):

- ``GET /places/microsoft.graph.roomList``, then each list's rooms with
  ``GET /places/{roomlist-emailaddress}/microsoft.graph.roomlist/rooms``, then every room
  with ``GET /places/microsoft.graph.room`` (rooms in no list), each collection paged
  (100 per page by default; ``@odata.nextLink``):
  https://learn.microsoft.com/en-us/graph/api/place-list?view=graph-rest-1.0
- ``PATCH /places/{id}`` with ``@odata.type`` and only the properties that differ:
  https://learn.microsoft.com/en-us/graph/api/place-update?view=graph-rest-1.0

What an import does with each room Exchange lists (matched by place id, else mailbox):

- new: created with ``sync_enabled`` off (an admin enables it), building and floor made
  as needed, tags and audio/video/display device names as equipment;
- known: the fields in ``Room.EXCHANGE_FIELDS`` take Exchange's value, except those in
  ``kept_fields`` (an admin set them by hand; a room made by hand before its first import
  keeps every field that differs). What still differs is stored in
  ``exchange_differences`` for the admin;
- rooms imported from this provider before and not listed now are flagged
  ``exchange_gone``, never deleted.

With the provider's ``push_rooms_to_exchange``, a room whose capacity, equipment or floor
differs afterwards is PATCHed with the product's values (a 403 is reported per room: the
app lacks Place.ReadWrite.All).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from exchange_auth.graph import GraphError
from workplace.directory import differences, product_values, same
from workplace.models import BookingType, Building, Equipment, Floor, Room, RoomImport

from ..common.clients import credential_client

ROOM_LISTS = "/places/microsoft.graph.roomList"
ROOMS = "/places/microsoft.graph.room"
PAGE = {"$top": "100"}
# The fields the import reads (v1.0 room properties).
ROOM_SELECT = ("id,displayName,emailAddress,capacity,building,floorNumber,floorLabel,tags,audioDeviceName,"
               "videoDeviceName,displayDeviceName,isWheelChairAccessible,bookingType")
# What the push may write back: SPEC of the issue, "capacity, equipment and floor".
PUSHED_FIELDS = ("capacity", "equipment", "floor")


class DirectoryError(Exception):
    """Graph refused or failed the listing: nothing was changed."""


def rooms_in_list_path(address: str) -> str:
    return f"/places/{address}/microsoft.graph.roomlist/rooms"


@dataclass
class ImportResult:
    room_lists: int = 0
    seen: int = 0
    new: list[str] = field(default_factory=list)
    changed: dict[str, dict] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    push_refused: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        line = (f"{self.seen} room(s) in {self.room_lists} room list(s): {len(self.new)} new, {len(self.changed)} changed, "
                f"{len(self.gone)} gone from Exchange, {len(self.pushed)} pushed back")
        if self.push_refused:
            line += f", {len(self.push_refused)} push(es) refused"
        return line


# --- Exchange's values, the product's values --------------------------------------------------


def _text(value) -> str:
    return (value or "").strip() if isinstance(value, str) else ""


def floor_label(place: dict) -> str:
    label, number = _text(place.get("floorLabel")), place.get("floorNumber")
    return label or (f"Floor {number}" if isinstance(number, int) else "")


def exchange_values(place: dict, room_list: str) -> dict:
    """A Graph room as the product's fields (JSON values, comparable with ``product_values``)."""
    equipment = {_text(t) for t in place.get("tags") or [] if _text(t)}
    equipment |= {_text(place.get(k)) for k in ("audioDeviceName", "videoDeviceName", "displayDeviceName") if _text(place.get(k))}
    number = place.get("floorNumber")
    booking = _text(place.get("bookingType")).lower()
    return {
        "name": _text(place.get("displayName")) or _text(place.get("emailAddress")),
        "capacity": place.get("capacity") if isinstance(place.get("capacity"), int) and place.get("capacity") > 0 else None,
        "building": _text(place.get("building")),
        "floor": {"name": floor_label(place), "level": number if isinstance(number, int) else 0} if floor_label(place) else None,
        "equipment": sorted(equipment, key=str.lower),
        "wheelchair_accessible": bool(place.get("isWheelChairAccessible")),
        "booking_type": booking if booking in BookingType.values else BookingType.STANDARD,
        "room_list": room_list,
        # Not the product's fields: what the push compares device names against.
        "_devices": sorted({_text(place.get(k)) for k in ("audioDeviceName", "videoDeviceName", "displayDeviceName")} - {""}),
    }


# --- writing the product's rooms --------------------------------------------------------------


class _Directory:
    """Buildings, floors and equipment found or made during one import (one query each, once)."""

    def __init__(self, provider):
        self.provider = provider
        self.buildings = {b.name.lower(): b for b in Building.objects.all()}
        self.equipment = {e.name.lower(): e for e in Equipment.objects.all()}
        self.floors = {(f.building_id, f.name.lower()): f for f in Floor.objects.all()}

    def building(self, name: str) -> Building:
        name = name or "Exchange rooms"
        found = self.buildings.get(name.lower())
        if found is None:
            code = slugify(name)[:40] or "building"
            while Building.objects.filter(code=code).exists():
                code = f"{code[:36]}-{Building.objects.count()}"
            found = Building.objects.create(name=name, code=code, calendar_provider=None if self.provider.is_default else self.provider)
            self.buildings[name.lower()] = found
        return found

    def floor(self, building: Building, value: dict | None) -> Floor | None:
        if not value:
            return None
        found = self.floors.get((building.pk, value["name"].lower()))
        if found is None:
            found = Floor.objects.create(building=building, name=value["name"][:60], level=value["level"])
            self.floors[(building.pk, value["name"].lower())] = found
        elif found.level != value["level"]:
            found.level = value["level"]
            found.save(update_fields=["level"])
        return found

    def equipment_of(self, names: list[str]) -> list[Equipment]:
        out = []
        for name in names:
            found = self.equipment.get(name.lower())
            if found is None:
                slug = slugify(name)[:60] or "equipment"
                if Equipment.objects.filter(slug=slug).exists():
                    slug = f"{slug[:50]}-{Equipment.objects.count()}"
                found = Equipment.objects.create(name=name[:60], slug=slug)
                self.equipment[name.lower()] = found
            out.append(found)
        return out


def _apply(directory: _Directory, room: Room, ex: dict, fields: list[str]) -> None:
    """Set ``fields`` of ``room`` to Exchange's values (saved by the caller, equipment here)."""
    for name in fields:
        value = ex.get(name)
        if name == "name" and value:
            room.name = value[:120]
        elif name == "capacity" and value:
            room.capacity = value
        elif name == "building" and value:
            room.building = directory.building(value)
            if room.floor_id and room.floor.building_id != room.building.pk:
                room.floor = None
        elif name == "floor" and value:
            room.floor = directory.floor(room.building, value)
        elif name in ("wheelchair_accessible", "booking_type", "room_list"):
            setattr(room, name, value)
    if "building" in fields and "floor" not in fields and room.floor_id and room.floor.building_id != room.building.pk:
        room.floor = None


def _unique_name(room: Room, name: str) -> str:
    taken = Room.objects.filter(building=room.building, name=name).exclude(pk=room.pk).exists()
    return f"{name} ({room.mailbox})"[:120] if taken else name


def upsert_room(directory: _Directory, place: dict, room_list: str, now, result: ImportResult, known: dict) -> Room | None:
    mailbox = _text(place.get("emailAddress")).lower()
    place_id = _text(place.get("id"))
    if not mailbox:
        return None  # a room Graph lists without a mailbox can't be matched or booked through Exchange
    ex = exchange_values(place, room_list)
    room = known.get(("id", place_id)) or known.get(("mailbox", mailbox))
    if room is None:
        room = Room(mailbox=mailbox, exchange_id=place_id, sync_enabled=False, capacity=ex["capacity"] or 1,
                    directory_provider=directory.provider)
        room.building = directory.building(ex["building"])
        _apply(directory, room, ex, [f for f in Room.EXCHANGE_FIELDS if f not in ("building", "equipment")])
        room.name = _unique_name(room, room.name)
        room.exchange_values, room.exchange_synced_at, room.kept_fields = ex, now, []
        room.save()
        room.equipment.set(directory.equipment_of(ex["equipment"]))
        room.exchange_differences = differences(room, ex)
        if room.exchange_differences:
            Room.objects.filter(pk=room.pk).update(exchange_differences=room.exchange_differences)
        result.new.append(mailbox)
        return room
    first_import = room.exchange_synced_at is None
    kept = set(room.kept_fields or [])
    if first_import:
        # Made by hand before Exchange's directory was imported: every field that differs was set by hand.
        kept |= set(differences(room, ex))
    before = product_values(room)
    take = [f for f in Room.EXCHANGE_FIELDS if f not in kept]
    _apply(directory, room, ex, [f for f in take if f != "equipment"])
    if "name" in take:
        room.name = _unique_name(room, room.name)
    if "equipment" in take and not same("equipment", before["equipment"], ex["equipment"]):
        room.equipment.set(directory.equipment_of(ex["equipment"]))
        room._prefetched_objects_cache = {}
    room.exchange_id = place_id or room.exchange_id
    room.directory_provider = directory.provider
    was_gone, old_ex = room.exchange_gone, room.exchange_values or {}
    room.exchange_gone = False
    room.exchange_values, room.exchange_synced_at, room.kept_fields = ex, now, sorted(kept)
    room.exchange_differences = differences(room, ex)
    room.save()
    updated = {name: {"was": before[name], "now": value} for name, value in product_values(room).items() if not same(name, before[name], value)}
    exchange_changed = sorted(k for k in Room.EXCHANGE_FIELDS if not same(k, old_ex.get(k), ex.get(k))) if old_ex else []
    if updated or was_gone or exchange_changed or first_import:
        result.changed[mailbox] = {"updated": updated, "kept": room.exchange_differences, "back_in_exchange": was_gone,
                                   "changed_in_exchange": exchange_changed, "first_linked": first_import}
    return room


# --- pushing back ----------------------------------------------------------------------------


def push_body(room: Room, ex: dict) -> dict:
    """The PATCH body: the product's capacity, equipment (as tags: the device names stay) and
    floor where they differ from Exchange's; {} when nothing does."""
    diff = room.exchange_differences or {}
    body: dict = {}
    if "capacity" in diff:
        body["capacity"] = room.capacity
    if "floor" in diff and room.floor_id:
        body["floorNumber"] = room.floor.level
        body["floorLabel"] = room.floor.name
    if "equipment" in diff:
        devices = {d.lower() for d in ex.get("_devices", [])}
        body["tags"] = [name for name in product_values(room)["equipment"] if name.lower() not in devices]
    return {"@odata.type": "microsoft.graph.room", **body} if body else {}


def push_room(client, room: Room, result: ImportResult) -> None:
    body = push_body(room, room.exchange_values or {})
    if not body:
        return
    try:
        place = client.patch(f"/places/{room.exchange_id or room.mailbox}", json=body)
    except GraphError as exc:
        result.push_refused[room.mailbox] = f"{exc.status} {exc.code}: {exc.message}"
        return
    ex = exchange_values(place or {}, room.room_list)
    room.exchange_values = ex
    room.exchange_differences = differences(room, ex)
    room.save(update_fields=["exchange_values", "exchange_differences"])
    result.pushed.append(room.mailbox)


# --- one import -------------------------------------------------------------------------------


def read_directory(client, progress: Callable[[str], None]) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Every room list, and every room with the list it is in ("" for none)."""
    lists = client.collect(ROOM_LISTS, params=PAGE)
    progress(f"{len(lists)} room list(s)")
    rooms: dict[str, tuple[dict, str]] = {}
    for room_list in lists:
        address = _text(room_list.get("emailAddress")).lower()
        if not address:
            continue
        for place in client.collect(rooms_in_list_path(address), params={**PAGE, "$select": ROOM_SELECT}):
            rooms.setdefault(_text(place.get("id")) or _text(place.get("emailAddress")).lower(), (place, address))
        progress(f"room list {address}: {len(rooms)} room(s) so far")
    for place in client.collect(ROOMS, params={**PAGE, "$select": ROOM_SELECT}):
        rooms.setdefault(_text(place.get("id")) or _text(place.get("emailAddress")).lower(), (place, ""))
    progress(f"{len(rooms)} room(s)")
    return lists, list(rooms.values())


def import_rooms(provider, *, trigger: str = "command", progress: Callable[[str], None] | None = None,
                 room_progress: Callable[[int, int, str], None] | None = None) -> tuple[RoomImport, ImportResult]:
    """One import from ``provider``'s Exchange; the run is recorded as a ``RoomImport``."""
    progress = progress or (lambda _text: None)
    run = RoomImport.objects.create(provider=provider, trigger=trigger)
    result = ImportResult()
    client = credential_client(provider, "app")
    try:
        lists, places = read_directory(client, progress)
    except Exception as exc:  # Graph's refusal, a credential that fails: recorded on the run, nothing changed
        run.error = f"{exc.status} {exc.code}: {exc.message}" if isinstance(exc, GraphError) else str(exc)
        run.finished_at = timezone.now()
        run.save(update_fields=["error", "finished_at"])
        raise DirectoryError(run.error) from exc
    result.room_lists, result.seen = len(lists), len(places)
    now = timezone.now()
    directory = _Directory(provider)
    known: dict = {}
    for room in Room.objects.select_related("building", "floor").prefetch_related("equipment"):
        if room.exchange_id:
            known[("id", room.exchange_id)] = room
        if room.mailbox:
            known[("mailbox", room.mailbox.lower())] = room
    seen: set[int] = set()
    for index, (place, room_list) in enumerate(places, start=1):
        with transaction.atomic():
            room = upsert_room(directory, place, room_list, now, result, known)
        if room is not None:
            seen.add(room.pk)
        if room_progress:
            room_progress(index, len(places), _text(place.get("displayName")))
    gone = Room.objects.filter(directory_provider=provider, exchange_gone=False).exclude(pk__in=seen)
    result.gone = sorted(gone.values_list("mailbox", flat=True))
    gone.update(exchange_gone=True)
    if provider.push_rooms_to_exchange:
        push_client = credential_client(provider, "app")
        for room in Room.objects.filter(pk__in=seen).select_related("building", "floor").prefetch_related("equipment"):
            if set(room.exchange_differences or {}) & set(PUSHED_FIELDS):
                push_room(push_client, room, result)
    run.room_lists, run.seen = result.room_lists, result.seen
    run.new, run.changed, run.gone, run.pushed = len(result.new), len(result.changed), len(result.gone), len(result.pushed)
    run.details = {"new": result.new, "changed": result.changed, "gone": result.gone, "pushed": result.pushed,
                   "push_refused": result.push_refused}
    run.finished_at = timezone.now()
    run.save()
    return run, result
