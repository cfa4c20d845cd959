"""What the product's room looks like next to Exchange's directory entry (the room import's
values, ``Room.exchange_values``): the comparison the import and the admin both use, and the
admin's hand edits that imports then keep (``Room.kept_fields``). No Graph here: the import
itself is ``calendar_sync.directory.rooms``."""

from workplace.models import Room


def product_values(room: Room) -> dict:
    return {
        "name": room.name,
        "capacity": room.capacity,
        "building": room.building.name,
        "floor": {"name": room.floor.name, "level": room.floor.level} if room.floor_id else None,
        "equipment": sorted((e.name for e in room.equipment.all()), key=str.lower),
        "wheelchair_accessible": room.wheelchair_accessible,
        "booking_type": room.booking_type,
        "room_list": room.room_list,
    }


def same(name: str, product, exchange) -> bool:
    if name == "equipment":
        return {e.lower() for e in product or []} == {e.lower() for e in exchange or []}
    if name == "building":
        return (product or "").lower() == (exchange or "").lower()
    return product == exchange


def differences(room: Room, ex: dict) -> dict:
    """Where the product's room differs from Exchange's (fields Exchange has a value for)."""
    mine = product_values(room)
    out = {}
    for name in Room.EXCHANGE_FIELDS:
        theirs = ex.get(name)
        if theirs in (None, "") and name not in ("wheelchair_accessible", "equipment"):
            continue
        if not same(name, mine[name], theirs):
            out[name] = {"product": mine[name], "exchange": theirs}
    return out


def keep_hand_set(room: Room, fields: list[str]) -> None:
    """An admin changed ``fields`` of an imported room by hand: later imports keep them."""
    fields = [f for f in fields if f in Room.EXCHANGE_FIELDS]
    if room.exchange_synced_at is None:
        return
    room.kept_fields = sorted(set(room.kept_fields or []) | set(fields))
    room.exchange_differences = differences(room, room.exchange_values or {})
    Room.objects.filter(pk=room.pk).update(kept_fields=room.kept_fields, exchange_differences=room.exchange_differences)


def take_exchange_values(room: Room) -> None:
    """Forget the hand edits: the next import sets every field from Exchange."""
    Room.objects.filter(pk=room.pk).update(kept_fields=[])
