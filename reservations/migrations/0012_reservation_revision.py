# ruff: noqa: S608 (DDL assembled from this file's constants only: the table and its column names)
"""A reservation's revision: the iCalendar feeds' SEQUENCE (RFC 5545 §3.8.7.4), one more at
every change a feed shows. It used to be the seconds between creation and the last change, so
two changes within one second gave the same SEQUENCE and calendar apps kept the first.

The counter is kept by the database, in the statement that makes the change, so every path
counts alike (``save()``, bulk ``update()``, raw SQL, another process): a trigger compares the
row before and after and adds one when any of the columns below changed; otherwise it keeps
the stored value, so a write from a stale instance can't lower it. PostgreSQL: a BEFORE UPDATE
trigger; SQLite (the embedded default): an AFTER UPDATE trigger that rewrites the column
(SQLite's triggers don't recurse unless asked to).

Existing rows start at today's formula, so no UID's SEQUENCE goes down across this migration."""

from django.db import migrations, models

# What a feed shows of a reservation (reservations.ical): its time, room, subject, state
# (a cancellation too), and the user feed's description (body, reason, Teams link, for whom).
VISIBLE = ["start", "end", "room_id", "subject", "state", "body", "state_reason", "online_meeting_url", "requested_for_id"]
TABLE = "reservations_reservation"


def _changed(old: str, new: str) -> str:
    return " OR ".join(f'{old}."{c}" IS DISTINCT FROM {new}."{c}"' for c in VISIBLE)


def _changed_sqlite() -> str:
    return " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in VISIBLE)


PG_CREATE = f"""
CREATE OR REPLACE FUNCTION rsv_revision_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + CASE WHEN {_changed("OLD", "NEW")} THEN 1 ELSE 0 END;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS rsv_revision ON {TABLE};
CREATE TRIGGER rsv_revision BEFORE UPDATE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION rsv_revision_bump();
"""
PG_DROP = f"DROP TRIGGER IF EXISTS rsv_revision ON {TABLE}; DROP FUNCTION IF EXISTS rsv_revision_bump();"

SQLITE_CREATE = f"""
CREATE TRIGGER rsv_revision AFTER UPDATE ON {TABLE} FOR EACH ROW
WHEN NEW.revision IS NOT OLD.revision OR {_changed_sqlite()}
BEGIN
    UPDATE {TABLE} SET revision = OLD.revision + (CASE WHEN {_changed_sqlite()} THEN 1 ELSE 0 END) WHERE id = NEW.id;
END
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS rsv_revision"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # Today's SEQUENCE: max(0, whole seconds from creation to the last change), set-based.
        schema_editor.execute(
            f"UPDATE {TABLE} SET revision = GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (updated_at - created_at))))::bigint",
        )
        schema_editor.execute(PG_CREATE)
    elif vendor == "sqlite":
        Reservation = apps.get_model("reservations", "Reservation")
        rows = list(Reservation.objects.only("id", "created_at", "updated_at"))
        for row in rows:
            row.revision = max(0, int((row.updated_at - row.created_at).total_seconds()))
        Reservation.objects.bulk_update(rows, ["revision"], batch_size=500)
        schema_editor.execute(SQLITE_CREATE)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0011_utilization_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="revision",
            field=models.PositiveBigIntegerField(
                default=0, editable=False,
                help_text="The feeds' SEQUENCE: one more at every change a feed shows (kept by a database trigger).",
            ),
        ),
        migrations.RunPython(create, drop),
    ]
