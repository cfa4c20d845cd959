"""The upgrade that makes a room's two subject-privacy flags one (workplace 0011): the portal's
``show_subjects`` and the panel's ``panel_shows_subjects`` become ``show_subjects``, used by the
portal's calendars and the room panel alike. Conservative: a room that hid subjects anywhere
keeps hiding them; the old field is gone."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("workplace", "0010_room_show_subjects")
AFTER = ("workplace", "0011_room_one_show_subjects")
FLAGS = {  # room: (show_subjects in the portal, panel_shows_subjects)
    "both": (True, True),
    "portal only": (True, False),
    "panel only": (False, True),
    "neither": (False, False),
}


def test_a_room_shows_subjects_after_the_upgrade_only_if_it_showed_them_everywhere(migrator):
    old = migrator.apply_initial_migration(BEFORE)
    Building, Room = old.apps.get_model("workplace", "Building"), old.apps.get_model("workplace", "Room")
    hq = Building.objects.create(name="HQ", code="hq")
    for name, (portal, panel) in FLAGS.items():
        Room.objects.create(building=hq, name=name, capacity=4, show_subjects=portal, panel_shows_subjects=panel)

    new = migrator.apply_tested_migration(AFTER)

    Room = new.apps.get_model("workplace", "Room")
    assert dict(Room.objects.values_list("name", "show_subjects")) == {
        "both": True, "portal only": False, "panel only": False, "neither": False,
    }
    assert "panel_shows_subjects" not in {field.name for field in Room._meta.get_fields()}


def test_the_downgrade_gives_both_flags_the_merged_value(migrator):
    new = migrator.apply_initial_migration(AFTER)
    Building, Room = new.apps.get_model("workplace", "Building"), new.apps.get_model("workplace", "Room")
    hq = Building.objects.create(name="HQ", code="hq")
    Room.objects.create(building=hq, name="open", capacity=4, show_subjects=True)
    Room.objects.create(building=hq, name="private", capacity=4, show_subjects=False)

    old = migrator.apply_tested_migration(BEFORE)

    Room = old.apps.get_model("workplace", "Room")
    assert {r.name: (r.show_subjects, r.panel_shows_subjects) for r in Room.objects.all()} == {
        "open": (True, True), "private": (False, False),
    }
