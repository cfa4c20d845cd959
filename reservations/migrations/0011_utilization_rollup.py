# ruff: noqa: S608 (DDL assembled from this file's constants only: column names, the booked states)
"""Issue 15 item 4, speed: a per room, per building-local day rollup of the utilization figures
(``reservations_room_day_usage``), kept in step with ``reservations_reservation`` by
PostgreSQL triggers in the same transaction as every change (inserts, updates, deletes, bulk
``update()``/``bulk_create``/raw SQL alike; TRUNCATE empties it), and backfilled here.

Why: the straightforward queries (``reservations.utilization.direct``) read every reservation
of the period and cut each into clock hours; a year over 500 rooms is ~520,000 reservations
and ~1.3 million hour pieces per page view. The rollup holds one row per room and day that had
booked time (~130,000 for that year), so the page sums those rows instead.

A row (room, day) holds, in integer microseconds (exact: sums of them are the same numbers as
the direct queries' interval sums), for the booked reservations' parts inside that day —
the real-time interval ``[day 00:00, day+1 00:00)`` in the room's building's time zone, the
same instants the page's period boundaries use:

- ``booked_us``, ``checked_in_us`` (those with a check-in), ``released_us`` (from the release,
  or the day's start, to the booked end, for those released for a no-show);
- ``starts*``: reservations (all / checked in / released) starting that day; ``carried*``:
  those that started before that day and still run at its start — a period's count is the
  starts in it plus what is carried into its first day (a reservation counts once);
- ``h00``..``h23``: the heatmap: each part cut into the building-local clock hours it touches
  exactly as the direct heatmap query does (local wall-clock arithmetic, so a night of a DST
  change counts as the direct query counts it).

A second table, ``reservations_room_month_usage``, holds the same sums per room and calendar
month of those days, the heatmap as 7 × 24 weekday-hour columns, updated from the same delta
in the same statement: a period reads its months from it (a year over 500 rooms: ~6,500 rows)
and, from the day rows, the days it adds at its ends or (fewer) leaves out of a month.

Rows whose contributions cancel out (the last reservation of that day was moved or deleted)
are deleted, so the table is always what ``rsv_usage_rebuild`` would compute from scratch.

The day cut and the buildings' zones: a building's time zone change, or a room moved to another
building, rebuilds that building's / room's rows (triggers on workplace_building and
workplace_room). PostgreSQL only (as the utilization page is); nothing on SQLite."""

from django.db import migrations

BOOKED = "('awaiting_confirmation', 'confirmed', 'conflicted', 'released')"
HOURS = [f"h{h:02}" for h in range(24)]
COUNTS = ["starts", "starts_checked_in", "starts_no_show", "carried", "carried_checked_in", "carried_no_show"]
VALUES = ["booked_us", "checked_in_us", "released_us", *COUNTS, *HOURS]
WEEK_HOURS = [f"d{d}h{h:02}" for d in range(1, 8) for h in range(24)]
MONTH_VALUES = ["booked_us", "checked_in_us", "released_us", *COUNTS, *WEEK_HOURS]

CREATE_TABLE = f"""
CREATE TABLE reservations_room_day_usage (
    room_id bigint NOT NULL,
    day date NOT NULL,
    booked_us bigint NOT NULL DEFAULT 0,
    checked_in_us bigint NOT NULL DEFAULT 0,
    released_us bigint NOT NULL DEFAULT 0,
    {", ".join(f"{c} integer NOT NULL DEFAULT 0" for c in COUNTS)},
    {", ".join(f"{h} bigint NOT NULL DEFAULT 0" for h in HOURS)},
    -- Used by reservations.utilization's rollup queries ("utilization totals (rollup)",
    -- "utilization heatmap (rollup)") for one room or a building's/floor's rooms over a period
    -- (nested loop over the rooms, a range of days each), and by the triggers' upserts.
    PRIMARY KEY (room_id, day)
);
-- Used by the same rollup queries over every room (or most of them): the period's days.
CREATE INDEX rsv_usage_day ON reservations_room_day_usage (day);
-- The same sums per room and calendar month (of building-local days), the heatmap per weekday
-- and hour (d1h00 = Mondays 00:00 .. d7h23): a period reads its months from here (a year over
-- 500 rooms: ~6,500 rows), and the days it adds or leaves out at its ends from the day rows.
CREATE TABLE reservations_room_month_usage (
    room_id bigint NOT NULL,
    month date NOT NULL,
    booked_us bigint NOT NULL DEFAULT 0,
    checked_in_us bigint NOT NULL DEFAULT 0,
    released_us bigint NOT NULL DEFAULT 0,
    {", ".join(f"{c} integer NOT NULL DEFAULT 0" for c in COUNTS)},
    {", ".join(f"{h} bigint NOT NULL DEFAULT 0" for h in WEEK_HOURS)},
    -- Used by the rollup queries for a building's/floor's/one room's months, and the upserts.
    PRIMARY KEY (room_id, month)
);
-- Used by the rollup queries over every room: the period's months.
CREATE INDEX rsv_usage_month ON reservations_room_month_usage (month);
COMMENT ON TABLE reservations_room_month_usage IS
    'Utilization rollup per room and building-local month; maintained by triggers on reservations_reservation (migration reservations 0011)';
COMMENT ON TABLE reservations_room_day_usage IS
    'Utilization rollup per room and building-local day; maintained by triggers on reservations_reservation (migration reservations 0011)';
"""

# The parts of one reservation per building-local day, with their figures (one row a day it
# touches). Inlined by the planner into the queries below (a LANGUAGE sql set-returning
# function). Candidate days run from the day before the local start date (a midnight that
# happens twice or not at all) to the local end date; only those it overlaps are kept.
_HEAT_COLUMNS = ",\n               ".join(
    f"COALESCE(SUM(c.us) FILTER (WHERE c.hour = {h}), 0)::bigint AS h{h:02}" for h in range(24)
)
CREATE_PIECES = f"""
CREATE FUNCTION rsv_usage_pieces(p_room bigint, p_start timestamptz, p_end timestamptz, p_state text,
                                 p_checked_in_at timestamptz, p_released_at timestamptz)
RETURNS TABLE (day date, booked_us bigint, checked_in_us bigint, released_us bigint,
               starts integer, starts_checked_in integer, starts_no_show integer,
               carried integer, carried_checked_in integer, carried_no_show integer,
               {", ".join(f"{h} bigint" for h in HOURS)})
LANGUAGE sql STABLE AS $$
    SELECT d.day,
           (EXTRACT(EPOCH FROM LEAST(p_end, d.hi) - GREATEST(p_start, d.lo)) * 1000000)::bigint,
           CASE WHEN p_checked_in_at IS NOT NULL
                THEN (EXTRACT(EPOCH FROM LEAST(p_end, d.hi) - GREATEST(p_start, d.lo)) * 1000000)::bigint ELSE 0 END,
           CASE WHEN p_state = 'released'
                THEN (EXTRACT(EPOCH FROM GREATEST(LEAST(p_end, d.hi) - GREATEST(GREATEST(p_start, d.lo), p_released_at),
                                                  INTERVAL '0')) * 1000000)::bigint ELSE 0 END,
           (p_start >= d.lo)::int, (p_start >= d.lo AND p_checked_in_at IS NOT NULL)::int,
           (p_start >= d.lo AND p_state = 'released')::int,
           (p_start < d.lo)::int, (p_start < d.lo AND p_checked_in_at IS NOT NULL)::int,
           (p_start < d.lo AND p_state = 'released')::int,
           {", ".join(f"heat.{h}" for h in HOURS)}
      FROM workplace_room rm
      JOIN workplace_building b ON b.id = rm.building_id
     CROSS JOIN LATERAL (
           SELECT (p_start AT TIME ZONE b.timezone)::date - 1 AS first_day,
                  (p_end AT TIME ZONE b.timezone)::date AS last_day) span
     CROSS JOIN LATERAL (
           SELECT span.first_day + i AS day,
                  (span.first_day + i)::timestamp AT TIME ZONE b.timezone AS lo,
                  (span.first_day + i + 1)::timestamp AT TIME ZONE b.timezone AS hi
             FROM generate_series(0, span.last_day - span.first_day) AS i) d
     CROSS JOIN LATERAL (
           SELECT GREATEST(p_start, d.lo) AT TIME ZONE b.timezone AS s,
                  LEAST(p_end, d.hi) AT TIME ZONE b.timezone AS e) l
     CROSS JOIN LATERAL (
           SELECT {_HEAT_COLUMNS}
             FROM (SELECT EXTRACT(HOUR FROM h)::int AS hour,
                          (EXTRACT(EPOCH FROM LEAST(l.e, h + INTERVAL '1 hour') - GREATEST(l.s, h)) * 1000000)::bigint AS us
                     FROM generate_series(date_trunc('hour', l.s), l.e - INTERVAL '1 microsecond', INTERVAL '1 hour') AS h) c) heat
     WHERE rm.id = p_room AND p_state IN {BOOKED} AND p_end > d.lo AND p_start < d.hi
$$;
"""

# JIT is off in these functions: the planner's row guesses for generate_series and the
# transition tables put even a one-row change above jit_above_cost, and compiling (~0.5 s
# measured) cost a thousand times the upsert.
#
# Adds a signed set of reservations' pieces ("changed": room_id, start, end, state,
# checked_in_at, released_at, sign) to the rollup in one upsert (rows locked in (room, day)
# order: two transactions touching the same rows wait rather than deadlock), then deletes the
# rows that became empty. Groups whose signed sums are all zero (an update that changed
# nothing the figures use) touch nothing.
_SUMS = ",\n               ".join(f"SUM(c.sign * p.{v}) AS {v}" for v in VALUES)
_NONZERO = " OR ".join(f"SUM(c.sign * p.{v}) <> 0" for v in VALUES)
_MONTH_SUMS = ", ".join([*(f"SUM(d.{v})" for v in VALUES[:9]),
                         *(f"COALESCE(SUM(d.h{h:02}) FILTER (WHERE EXTRACT(ISODOW FROM d.day) = {day}), 0)"
                           for day in range(1, 8) for h in range(24))])
_SET = ", ".join(f"{v} = u.{v} + EXCLUDED.{v}" for v in VALUES)
_MONTH_SET = ", ".join(f"{v} = u.{v} + EXCLUDED.{v}" for v in MONTH_VALUES)


def apply_changed(changed_sql: str) -> str:
    return f"""
    WITH changed AS ({changed_sql}),
    delta AS MATERIALIZED (
        SELECT c.room_id, p.day,
               {_SUMS}
          FROM changed c
         CROSS JOIN LATERAL rsv_usage_pieces(c.room_id, c.start, c."end", c.state, c.checked_in_at, c.released_at) p
         GROUP BY c.room_id, p.day
        HAVING {_NONZERO}
    ),
    up AS (
        INSERT INTO reservations_room_day_usage AS u (room_id, day, {", ".join(VALUES)})
        SELECT d.room_id, d.day, {", ".join(f"d.{v}" for v in VALUES)} FROM delta d
         ORDER BY d.room_id, d.day
        ON CONFLICT (room_id, day) DO UPDATE SET {_SET}
        RETURNING u.room_id, u.day, u.booked_us
    ),
    up_month AS (
        INSERT INTO reservations_room_month_usage AS u (room_id, month, {", ".join(MONTH_VALUES)})
        SELECT d.room_id, date_trunc('month', d.day)::date, {_MONTH_SUMS}
          FROM delta d
         GROUP BY 1, 2
         ORDER BY 1, 2
        ON CONFLICT (room_id, month) DO UPDATE SET {_MONTH_SET}
        RETURNING u.room_id, u.month, u.booked_us
    )
    SELECT (SELECT array_agg(up.room_id) FROM up WHERE up.booked_us = 0),
           (SELECT array_agg(up.day) FROM up WHERE up.booked_us = 0),
           (SELECT array_agg(up_month.room_id) FROM up_month WHERE up_month.booked_us = 0),
           (SELECT array_agg(up_month.month) FROM up_month WHERE up_month.booked_us = 0)
      INTO emptied_rooms, emptied_days, emptied_month_rooms, emptied_months;
    IF emptied_rooms IS NOT NULL THEN
        DELETE FROM reservations_room_day_usage u
         USING unnest(emptied_rooms, emptied_days) AS e(room_id, day)
         WHERE u.room_id = e.room_id AND u.day = e.day AND u.booked_us = 0;
    END IF;
    IF emptied_month_rooms IS NOT NULL THEN
        DELETE FROM reservations_room_month_usage u
         USING unnest(emptied_month_rooms, emptied_months) AS e(room_id, month)
         WHERE u.room_id = e.room_id AND u.month = e.month AND u.booked_us = 0;
    END IF;
    """


_COLUMNS = 'room_id, start, "end", state, checked_in_at, released_at'
_RELEVANT = '(n.room_id, n.start, n."end", n.state, n.checked_in_at, n.released_at) IS DISTINCT FROM (o.room_id, o.start, o."end", o.state, o.checked_in_at, o.released_at)'

CREATE_TRIGGER_FUNCTION = f"""
CREATE FUNCTION rsv_usage_on_change() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    emptied_rooms bigint[];
    emptied_days date[];
    emptied_month_rooms bigint[];
    emptied_months date[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        {apply_changed(f"SELECT {_COLUMNS}, 1 AS sign FROM new_rows WHERE state IN {BOOKED}")}
    ELSIF TG_OP = 'DELETE' THEN
        {apply_changed(f"SELECT {_COLUMNS}, -1 AS sign FROM old_rows WHERE state IN {BOOKED}")}
    ELSE
        -- only the rows whose figures' columns changed (a subject edit, a sync state: nothing)
        {apply_changed(f'''
            SELECT n.room_id, n.start, n."end", n.state, n.checked_in_at, n.released_at, 1 AS sign
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {_RELEVANT} AND n.state IN {BOOKED}
            UNION ALL
            SELECT o.room_id, o.start, o."end", o.state, o.checked_in_at, o.released_at, -1
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {_RELEVANT} AND o.state IN {BOOKED}''')}
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION rsv_usage_on_truncate() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    TRUNCATE reservations_room_day_usage, reservations_room_month_usage;
    RETURN NULL;
END
$$;

-- Recomputes the rows of some rooms (NULL: every room) from their reservations: the backfill
-- (this migration, manage.py rebuild_utilization) and a zone change of their building.
CREATE FUNCTION rsv_usage_rebuild(p_rooms bigint[]) RETURNS void LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    emptied_rooms bigint[];
    emptied_days date[];
    emptied_month_rooms bigint[];
    emptied_months date[];
BEGIN
    IF p_rooms IS NULL THEN
        TRUNCATE reservations_room_day_usage, reservations_room_month_usage;
    ELSE
        DELETE FROM reservations_room_day_usage WHERE room_id = ANY(p_rooms);
        DELETE FROM reservations_room_month_usage WHERE room_id = ANY(p_rooms);
    END IF;
    {apply_changed(f'''SELECT {_COLUMNS}, 1 AS sign FROM reservations_reservation
                        WHERE state IN {BOOKED} AND (p_rooms IS NULL OR room_id = ANY(p_rooms))''')}
END
$$;

CREATE FUNCTION rsv_usage_on_room_move() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM rsv_usage_rebuild(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;

CREATE FUNCTION rsv_usage_on_zone_change() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM rsv_usage_rebuild(ARRAY(SELECT id FROM workplace_room WHERE building_id = NEW.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER rsv_usage_insert AFTER INSERT ON reservations_reservation
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rsv_usage_on_change();
CREATE TRIGGER rsv_usage_update AFTER UPDATE ON reservations_reservation
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rsv_usage_on_change();
CREATE TRIGGER rsv_usage_delete AFTER DELETE ON reservations_reservation
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rsv_usage_on_change();
CREATE TRIGGER rsv_usage_truncate AFTER TRUNCATE ON reservations_reservation
    FOR EACH STATEMENT EXECUTE FUNCTION rsv_usage_on_truncate();
CREATE TRIGGER rsv_usage_room_move AFTER UPDATE OF building_id ON workplace_room
    FOR EACH ROW WHEN (OLD.building_id IS DISTINCT FROM NEW.building_id) EXECUTE FUNCTION rsv_usage_on_room_move();
CREATE TRIGGER rsv_usage_zone_change AFTER UPDATE OF timezone ON workplace_building
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION rsv_usage_on_zone_change();
"""

DROP = """
DROP TRIGGER IF EXISTS rsv_usage_zone_change ON workplace_building;
DROP TRIGGER IF EXISTS rsv_usage_room_move ON workplace_room;
DROP TRIGGER IF EXISTS rsv_usage_truncate ON reservations_reservation;
DROP TRIGGER IF EXISTS rsv_usage_delete ON reservations_reservation;
DROP TRIGGER IF EXISTS rsv_usage_update ON reservations_reservation;
DROP TRIGGER IF EXISTS rsv_usage_insert ON reservations_reservation;
DROP FUNCTION IF EXISTS rsv_usage_on_zone_change();
DROP FUNCTION IF EXISTS rsv_usage_on_room_move();
DROP FUNCTION IF EXISTS rsv_usage_rebuild(bigint[]);
DROP FUNCTION IF EXISTS rsv_usage_on_truncate();
DROP FUNCTION IF EXISTS rsv_usage_on_change();
DROP FUNCTION IF EXISTS rsv_usage_pieces(bigint, timestamptz, timestamptz, text, timestamptz, timestamptz);
DROP TABLE IF EXISTS reservations_room_day_usage;
DROP TABLE IF EXISTS reservations_room_month_usage;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # These tables and functions are no Django models: tools that drop the models' tables and
    # migrate again (django-test-migrations' migrator) leave them behind; start clean.
    schema_editor.execute(DROP)
    for sql in (CREATE_TABLE, CREATE_PIECES, CREATE_TRIGGER_FUNCTION):
        schema_editor.execute(sql)
    schema_editor.execute("SELECT rsv_usage_rebuild(NULL)")  # the backfill, set-based


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(DROP)


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0010_series_monthly_index"),
        ("workplace", "0010_room_show_subjects"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
