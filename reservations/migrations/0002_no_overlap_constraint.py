"""No two active reservations overlap in one room, enforced by PostgreSQL.

An exclusion constraint over (room, tstzrange(start, end)) with btree_gist. On
SQLite (the embedded default) writes run in IMMEDIATE transactions instead, so
the service's check-then-insert is serialized (see settings/env.py).
"""

from django.db import migrations

CONSTRAINT = "reservation_no_overlap_in_room"
ACTIVE = "('awaiting_confirmation', 'confirmed', 'conflicted')"


def create_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"""
        ALTER TABLE reservations_reservation
        ADD CONSTRAINT {CONSTRAINT}
        EXCLUDE USING gist (room_id WITH =, tstzrange(start, "end", '[)') WITH &&)
        WHERE (state IN {ACTIVE})
        """
    )


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE reservations_reservation DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("reservations", "0001_initial")]

    operations = [migrations.RunPython(create_constraint, drop_constraint)]
