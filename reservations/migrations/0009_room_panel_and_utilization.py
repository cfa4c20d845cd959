"""Issue 15, items 3 and 4: the room panel's source (``room_panel``) and the index the
utilization queries use.

``rsv_utilization_range`` — used by ``reservations.utilization`` queries 1 ("utilization
totals") and 2 ("utilization heatmap"): their ``tstzrange(start, "end") && tstzrange(lo, hi)``
picks a period's reservations out of years of them with a bitmap scan of this GiST index
(EXPLAIN in bench/utilization.py shows it). Partial: only the states those queries count
(booked ones and those released for a no-show). PostgreSQL only, like the exclusion
constraint of 0002; SQLite has no range types (and no utilization page)."""

from django.db import migrations, models

INDEX = "rsv_utilization_range"
BOOKED = "('awaiting_confirmation', 'confirmed', 'conflicted', 'released')"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"""CREATE INDEX IF NOT EXISTS {INDEX} ON reservations_reservation
            USING gist (tstzrange(start, "end", '[)')) WHERE state IN {BOOKED}"""
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0008_approvals"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reservation",
            name="source",
            field=models.CharField(choices=[("portal", "Portal"), ("event_planner", "Event Planner"), ("quick_reservation", "Quick Reservation"), ("mobile", "Mobile"), ("rest_api", "Rest Api"), ("outlook", "Outlook"), ("room_panel", "Room Panel")], default="portal", max_length=20),
        ),
        migrations.RunPython(create_index, drop_index),
    ]
