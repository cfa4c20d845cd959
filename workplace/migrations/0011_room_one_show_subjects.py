"""One privacy setting for a room's subjects (issue 15): ``show_subjects`` (the portal's calendars)
and ``panel_shows_subjects`` (the room panel) become ``show_subjects``, used by both.

Merged conservatively: a room that hid subjects anywhere keeps hiding them (subjects are shown
only where both were on). Going back gives both fields the merged value."""

from django.db import migrations, models


def merge(apps, schema_editor):
    Room = apps.get_model("workplace", "Room")
    Room.objects.filter(show_subjects=True, panel_shows_subjects=False).update(show_subjects=False)


def split(apps, schema_editor):
    Room = apps.get_model("workplace", "Room")
    Room.objects.update(panel_shows_subjects=models.F("show_subjects"))


class Migration(migrations.Migration):

    dependencies = [
        ("workplace", "0010_room_show_subjects"),
    ]

    operations = [
        migrations.RunPython(merge, split, elidable=False),
        migrations.RemoveField(model_name="room", name="panel_shows_subjects"),
        migrations.AlterField(
            model_name="room",
            name="show_subjects",
            field=models.BooleanField(
                default=False,
                help_text="Everyone sees this room's meeting subjects: in the portal's calendars, on the room panel at the door "
                          "and in the room's calendar feed (when feeds may show subjects). Otherwise only the people booked "
                          "(and staff) see them in the portal; others see \"Busy\", the panel \"Booked\", the feed \"Reserved\".",
            ),
        ),
    ]
