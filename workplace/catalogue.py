"""The space directory's short lists, as the portal's filters show them: buildings (and which of
them have reservable rooms), floors, equipment and the layout names in use, and each
reservable room's equipment and layouts as the finder lists them, read from the shared cache
(Redis) instead of queries on every finder or calendar page (issue 14's page-speed target).

The lists change when an admin (or a room import) edits a building, floor, room, equipment
or layout: the model signals connected in ``apps.py`` call ``invalidate``, which moves the
catalogue to a new version, at once and again when the edit commits. The cached copy
carries the version it was read under and serves only while that is still the version
(both come in one round trip): a copy read before an edit commits is outdated by the
commit's bump and read again. Writes that bypass the signals (``QuerySet.update``,
``bulk_create``, SQL) show once the copy expires (``CACHE_SECONDS``) or after an explicit
``invalidate()``; until then the pages read from the database what the copy lacks.
"""

import dataclasses
import functools
import time

from django.core.cache import cache
from django.db import transaction

from workplace.models import Arrangement, Building, Equipment, Floor, Room

VERSION_KEY = "workplace:catalogue:version"
# Bump the number when ``Catalogue`` changes shape: processes of the previous release keep
# reading (and writing) the old key until they stop.
DATA_KEY = "workplace:catalogue:4"  # 4: Building.day_starts/day_ends
CACHE_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class Catalogue:
    buildings: tuple[Building, ...]  # by name
    floors: tuple[Floor, ...]  # by building name, level (each with its building attached)
    equipment: tuple[Equipment, ...]  # by name
    arrangement_names: tuple[str, ...]  # the distinct layout names of all rooms, sorted
    reservable_building_ids: frozenset[int]  # buildings with at least one reservable room
    # {room id: (its equipment as indexes into ``equipment``, by name; its layouts as indexes
    # into ``arrangement_names``, the default first)}: what a finder row lists, without a query.
    room_facts: dict[int, tuple[tuple[int, ...], tuple[int, ...]]]

    @functools.cached_property
    def _buildings_by_id(self) -> dict[int, Building]:
        return {b.pk: b for b in self.buildings}

    @functools.cached_property
    def _floors_by_id(self) -> dict[int, Floor]:
        return {f.pk: f for f in self.floors}

    def building_by_code(self, code: str) -> Building | None:
        return next((b for b in self.buildings if b.code == code), None)

    def building_by_id(self, pk: int) -> Building | None:
        return self._buildings_by_id.get(pk)

    def floor_by_id(self, pk: int) -> Floor | None:
        return self._floors_by_id.get(pk)

    def floors_of(self, building: Building) -> list[Floor]:
        """A building's floors as the day grid lists them: by level, then name."""
        return sorted((f for f in self.floors if f.building_id == building.pk), key=lambda f: (f.level, f.name))

    @property
    def bookable_buildings(self) -> list[Building]:
        return [b for b in self.buildings if b.pk in self.reservable_building_ids]

    def facts_of(self, room_id: int) -> tuple[list[str], list[str]]:
        """(equipment names by name, layout names default first) of a room."""
        equipment, layouts = self.room_facts.get(room_id, ((), ()))
        return [self.equipment[i].name for i in equipment], [self.arrangement_names[i] for i in layouts]


def _read() -> Catalogue:
    buildings = list(Building.objects.order_by("name"))
    by_id = {b.pk: b for b in buildings}
    floors = list(Floor.objects.order_by("building__name", "level", "name"))
    for floor in floors:  # str(floor) names its building: no query per floor when drawn
        floor.building = by_id[floor.building_id]
    equipment = tuple(Equipment.objects.order_by("name"))
    equipment_index = {e.pk: i for i, e in enumerate(equipment)}
    names = tuple(Arrangement.objects.order_by("name").values_list("name", flat=True).distinct())
    name_index = {name: i for i, name in enumerate(names)}
    held: dict[int, list[int]] = {}
    for room_id, equipment_id in (Room.equipment.through.objects.filter(room__reservable=True)
                                  .order_by("room_id", "equipment__name").values_list("room_id", "equipment_id")):
        held.setdefault(room_id, []).append(equipment_index[equipment_id])
    laid: dict[int, list[int]] = {}
    for room_id, name in (Arrangement.objects.filter(room__reservable=True).order_by("room_id", "-is_default", "name")
                          .values_list("room_id", "name")):
        laid.setdefault(room_id, []).append(name_index[name])
    return Catalogue(
        buildings=tuple(buildings),
        floors=tuple(floors),
        equipment=equipment,
        arrangement_names=names,
        reservable_building_ids=frozenset(Room.objects.filter(reservable=True).values_list("building_id", flat=True).distinct()),
        room_facts={room_id: (tuple(held.get(room_id, ())), tuple(laid.get(room_id, ()))) for room_id in held.keys() | laid.keys()},
    )


# This process's copy: (the version it was read under, the lists, when they were read from the
# database). While the shared version is still that one, and no longer than the shared copy
# lives, the lists are served from here without unpickling the shared copy (about a
# millisecond a page): the same rules as the shared copy's.
_local: tuple[int, Catalogue, float] | None = None


def catalogue() -> Catalogue:
    """The lists: one cache round trip (the version alone, when this process holds the lists
    under it; else with the shared copy), or seven queries when the cache doesn't hold them (or
    holds them under an older version). Callers read the lists, never change them: they are
    shared by the requests of this process."""
    global _local
    held = _local
    if held is not None and time.time() - held[2] < CACHE_SECONDS:
        version = cache.get(VERSION_KEY)
        if version is not None and version == held[0]:
            return held[1]
        found = {VERSION_KEY: version, DATA_KEY: cache.get(DATA_KEY)} if version is not None else {}
    else:
        found = cache.get_many([VERSION_KEY, DATA_KEY])
    version = found.get(VERSION_KEY)
    if version is None:
        # A version no stored copy carries (the clock); add(): processes starting at once agree.
        cache.add(VERSION_KEY, time.time_ns(), None)
        version = cache.get(VERSION_KEY)
    stored = found.get(DATA_KEY)
    if stored is not None and stored[0] == version:
        _local = stored
        return stored[1]
    value, read_at = _read(), time.time()

    def share() -> None:
        global _local
        cache.set(DATA_KEY, (version, value, read_at), CACHE_SECONDS)
        _local = (version, value, read_at)

    # Shared (and kept here) only once committed: inside a transaction that changed the
    # directory, this read may roll back (and its commit moves the version past ``version`` anyway).
    transaction.on_commit(share)
    return value


def invalidate() -> None:
    """The lists changed: the next read builds them again, here at once and everywhere once
    the edit commits."""

    def bump() -> None:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:  # no version yet, or it was evicted: the next read starts a new one
            pass

    bump()
    transaction.on_commit(bump)


def invalidate_on_edit(sender, **kwargs) -> None:
    """``post_save`` / ``post_delete`` of a building, floor, room, equipment or layout, and
    ``m2m_changed`` of a room's equipment (connected in ``apps.py``)."""
    invalidate()
