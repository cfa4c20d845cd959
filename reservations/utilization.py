"""Room utilization (reads only, issue 15 item 4): per room, floor and building over a period —
hours booked, hours checked in, hours released, the no-show rate — and the peak hours as a
day-of-week × hour grid, each computed by PostgreSQL in one aggregate query (no Python loop
over reservations; the period's rows never leave the database).

The period is a range of days in each building's own time zone (a day in Berlin is not a day
in New York). A reservation counts for the part of it inside the period. Which rows count:

- booked: reservations that held the room (awaiting, confirmed, conflicted) and those
  released for a no-show (they were booked; the release freed the rest);
- checked in: booked reservations someone checked in, for their booked length;
- released: the time a release freed (from the release to the booked end);
- no-show rate: released ÷ (checked in + released): of the reservations whose check-in was
  decided either way, the share nobody came to (rooms without check-in count only what was
  checked in there).

The page reads a rollup (``utilization``): migration 0011's ``reservations_room_day_usage`` (a
row per room and building-local day) and ``reservations_room_month_usage`` (per room and month,
the heatmap in weekday × hour columns), kept in step with the reservations by triggers in the
same transaction as every change; a period is its months plus the days it adds, or minus the
fewer days it leaves out, at each end (``_plan``), so a year over 500 rooms sums ~8,500 rows
instead of cutting ~520,000 reservations into hours. ``direct`` computes the same figures straight from the
reservations — the definition above, as SQL; tests hold the two equal, and
``manage.py rebuild_utilization`` rebuilds (``--check``: compares) the rollup.

Indexes: the direct queries use migration 0009's ``rsv_utilization_range`` (a GiST index on the
reservation's time range, so a period of weeks reads only its rows out of years of them); the
rollup queries its primary key (room_id, day) and ``rsv_usage_day`` (day).

PostgreSQL only (production's database): on SQLite (``make run``'s embedded default)
``utilization`` raises ``UtilizationUnavailable`` and the page says why."""

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection, transaction

from workplace.models import Building, Floor, Room

# States whose reservations were booked (held the room, or were released for a no-show).
BOOKED_STATES = ("awaiting_confirmation", "confirmed", "conflicted", "released")


# Written into the SQL (constants, not parameters): the planner can then use the partial index.
_BOOKED_SQL = "(" + ", ".join(f"'{state}'" for state in BOOKED_STATES) + ")"


class UtilizationUnavailable(Exception):
    """The database can't compute utilization (SQLite)."""


@dataclass
class Figures:
    booked_hours: float = 0.0
    checked_in_hours: float = 0.0
    released_hours: float = 0.0
    reservations: int = 0
    checked_in: int = 0
    no_shows: int = 0

    @property
    def no_show_rate(self) -> float | None:
        """Released ÷ (checked in + released); None when nothing needed a check-in."""
        decided = self.checked_in + self.no_shows
        return self.no_shows / decided if decided else None


@dataclass
class Row:
    """One room, floor or building and its figures."""

    id: int | None
    name: str
    figures: Figures
    building: str = ""
    floor: str = ""


@dataclass
class Utilization:
    start: dt.date
    end: dt.date  # inclusive
    total: Figures
    buildings: list[Row] = field(default_factory=list)
    floors: list[Row] = field(default_factory=list)
    rooms: list[Row] = field(default_factory=list)
    # heatmap[isodow - 1][hour] = booked hours in that hour of that weekday (building-local)
    heatmap: list[list[float]] = field(default_factory=lambda: [[0.0] * 24 for _ in range(7)])

    @property
    def peak_hours(self) -> list[tuple[int, int, float]]:
        """The three busiest (isodow, hour, hours) cells, busiest first."""
        cells = [(d + 1, h, v) for d, row in enumerate(self.heatmap) for h, v in enumerate(row) if v > 0]
        return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))[:3]

    @property
    def heatmap_max(self) -> float:
        return max((v for row in self.heatmap for v in row), default=0.0)


# The period's reservations, clipped to it in each building's zone (``bounds``: the period's
# first and last instant per building, worked out once per building, not per row). The coarse
# UTC range (%(lo)s, %(hi)s: the period widened by a day each side, more than any zone's
# offset) lets the GiST index rsv_utilization_range pick the period's rows out of years of them.
_PERIOD_ROWS = f"""
    bounds AS (
        SELECT b.id AS building_id, b.timezone AS tz,
               (%(start)s::date)::timestamp AT TIME ZONE b.timezone AS first_instant,
               (%(end)s::date + 1)::timestamp AT TIME ZONE b.timezone AS last_instant
          FROM workplace_building b
         WHERE (%(building)s::bigint IS NULL OR b.id = %(building)s::bigint)
    ),
    p AS (
        SELECT r.room_id, bd.tz,
               GREATEST(r.start, bd.first_instant) AS s, LEAST(r."end", bd.last_instant) AS e,
               r.state, r.checked_in_at, r.released_at
          FROM reservations_reservation r
          JOIN workplace_room rm ON rm.id = r.room_id
          JOIN bounds bd ON bd.building_id = rm.building_id
         WHERE tstzrange(r.start, r."end", '[)') && tstzrange(%(lo)s, %(hi)s, '[)')
           AND r.state IN {_BOOKED_SQL}
           AND (%(floor)s::bigint IS NULL OR rm.floor_id = %(floor)s::bigint)
           AND (%(room)s::bigint IS NULL OR rm.id = %(room)s::bigint)
           AND r."end" > bd.first_instant AND r.start < bd.last_instant
    )
"""  # noqa: S608 (only constants are formatted in: BOOKED_STATES; values are parameters)

# Query 1 ("utilization totals"): the figures per room (a hash aggregate over the period's
# rows), then per floor, per building and overall over those few hundred room rows
# (GROUPING SETS), in one statement.
_TOTALS = f"""
    WITH {_PERIOD_ROWS},
    per_room AS (
        -- intervals are summed (cheap), turned into seconds once per room (EXTRACT is numeric)
        SELECT p.room_id,
               EXTRACT(EPOCH FROM SUM(p.e - p.s)) AS booked,
               COALESCE(EXTRACT(EPOCH FROM SUM(p.e - p.s) FILTER (WHERE p.checked_in_at IS NOT NULL)), 0) AS checked_in_s,
               COALESCE(EXTRACT(EPOCH FROM SUM(GREATEST(p.e - GREATEST(p.s, p.released_at), INTERVAL '0'))
                        FILTER (WHERE p.state = 'released')), 0) AS released_s,
               COUNT(*) AS reservations,
               COUNT(*) FILTER (WHERE p.checked_in_at IS NOT NULL) AS checked_in,
               COUNT(*) FILTER (WHERE p.state = 'released') AS no_shows
          FROM p
         GROUP BY p.room_id
    )
    SELECT GROUPING(rm.building_id, rm.floor_id, rm.id) AS level, rm.building_id, rm.floor_id, rm.id,
           SUM(pr.booked) / 3600.0, SUM(pr.checked_in_s) / 3600.0, SUM(pr.released_s) / 3600.0,
           SUM(pr.reservations), SUM(pr.checked_in), SUM(pr.no_shows)
      FROM per_room pr
      JOIN workplace_room rm ON rm.id = pr.room_id
     GROUP BY GROUPING SETS ((rm.building_id, rm.floor_id, rm.id), (rm.building_id, rm.floor_id), (rm.building_id), ())
"""  # noqa: S608 (the constant _PERIOD_ROWS)

# Query 2 ("utilization heatmap"): booked hours per weekday × hour, building-local: each
# reservation is cut into the clock hours it touches (generate_series) and each piece summed.
_HEATMAP = f"""
    WITH {_PERIOD_ROWS},
    l AS (SELECT p.s AT TIME ZONE p.tz AS s, p.e AT TIME ZONE p.tz AS e FROM p)
    SELECT EXTRACT(ISODOW FROM h)::int AS dow, EXTRACT(HOUR FROM h)::int AS hour,
           EXTRACT(EPOCH FROM SUM(LEAST(l.e, h + INTERVAL '1 hour') - GREATEST(l.s, h))) / 3600.0 AS hours
      FROM l, generate_series(date_trunc('hour', l.s), l.e - INTERVAL '1 microsecond', INTERVAL '1 hour') AS h
     GROUP BY 1, 2
"""  # noqa: S608 (the constant _PERIOD_ROWS)


# The same two figures from the rollup (migration 0011, kept in step by triggers): the period's
# months and edge days of the chosen rooms — ~8,500 rows for a year over 500 rooms instead of
# ~520,000 reservations cut into ~1.3 million hour pieces. The numbers are the direct queries'
# exactly: integer microsecond sums turned into seconds with six decimals (what
# EXTRACT(EPOCH FROM interval) gives), then divided the same way. A reservation counts once:
# where it starts in the period, plus what is carried into its first day. Indexes: the edge
# days by rsv_usage_day (day) over all rooms (bitmap OR of the ranges) or the day table's
# primary key (room_id, day) for a building's/floor's/one room's rooms; the months by
# rsv_usage_month (month) or reservations_room_month_usage's primary key (room_id, month).
_FILTERS = """
           AND (%(building)s::bigint IS NULL OR rm.building_id = %(building)s::bigint)
           AND (%(floor)s::bigint IS NULL OR rm.floor_id = %(floor)s::bigint)
           AND (%(room)s::bigint IS NULL OR rm.id = %(room)s::bigint)"""
# The day rows a period adds (+1) or takes out of its months (-1), see _plan; the period's
# first day is read too (sign 0 unless it is added) for what is carried into it.
_DAY_SIGN = """CASE WHEN u.day BETWEEN %(plus1_from)s::date AND %(plus1_to)s::date
                      OR u.day BETWEEN %(plus2_from)s::date AND %(plus2_to)s::date THEN 1
                    WHEN u.day BETWEEN %(minus1_from)s::date AND %(minus1_to)s::date
                      OR u.day BETWEEN %(minus2_from)s::date AND %(minus2_to)s::date THEN -1 ELSE 0 END"""
_DAY_ROWS = f"""
          FROM reservations_room_day_usage u
          JOIN workplace_room rm ON rm.id = u.room_id
         WHERE (u.day BETWEEN %(plus1_from)s::date AND %(plus1_to)s::date OR u.day BETWEEN %(plus2_from)s::date AND %(plus2_to)s::date
                OR u.day BETWEEN %(minus1_from)s::date AND %(minus1_to)s::date
                OR u.day BETWEEN %(minus2_from)s::date AND %(minus2_to)s::date OR u.day = %(start)s::date){_FILTERS}"""
_MONTH_ROWS = f"""
          FROM reservations_room_month_usage m
          JOIN workplace_room rm ON rm.id = m.room_id
         WHERE m.month >= %(months_from)s::date AND m.month < %(months_to)s::date{_FILTERS}"""

# Query 1 from the rollup ("utilization totals (rollup)"): per room, the months plus the days
# added minus those left out; a reservation counts once: where it starts in the period, plus
# what is carried into its first day.
_TOTALS_ROLLUP = f"""
    WITH d AS (
        SELECT u.room_id, s.sign, u.day = %(start)s::date AS first_day, u.booked_us, u.checked_in_us, u.released_us,
               u.starts, u.starts_checked_in, u.starts_no_show, u.carried, u.carried_checked_in, u.carried_no_show
          {_DAY_ROWS.replace("FROM reservations_room_day_usage u", "FROM reservations_room_day_usage u CROSS JOIN LATERAL (SELECT " + _DAY_SIGN + " AS sign) s", 1)}
        UNION ALL
        SELECT m.room_id, 1, false, m.booked_us, m.checked_in_us, m.released_us,
               m.starts, m.starts_checked_in, m.starts_no_show, 0, 0, 0
          {_MONTH_ROWS}
    ),
    per_room AS (
        SELECT d.room_id,
               SUM(d.sign * d.booked_us)::numeric * 0.000001 AS booked,
               SUM(d.sign * d.checked_in_us)::numeric * 0.000001 AS checked_in_s,
               SUM(d.sign * d.released_us)::numeric * 0.000001 AS released_s,
               SUM(d.sign * d.starts) + COALESCE(SUM(d.carried) FILTER (WHERE d.first_day), 0) AS reservations,
               SUM(d.sign * d.starts_checked_in) + COALESCE(SUM(d.carried_checked_in) FILTER (WHERE d.first_day), 0) AS checked_in,
               SUM(d.sign * d.starts_no_show) + COALESCE(SUM(d.carried_no_show) FILTER (WHERE d.first_day), 0) AS no_shows
          FROM d
         GROUP BY d.room_id
    )
    SELECT GROUPING(rm.building_id, rm.floor_id, rm.id) AS level, rm.building_id, rm.floor_id, rm.id,
           SUM(pr.booked) / 3600.0, SUM(pr.checked_in_s) / 3600.0, SUM(pr.released_s) / 3600.0,
           SUM(pr.reservations), SUM(pr.checked_in), SUM(pr.no_shows)
      FROM per_room pr
      JOIN workplace_room rm ON rm.id = pr.room_id
     GROUP BY GROUPING SETS ((rm.building_id, rm.floor_id, rm.id), (rm.building_id, rm.floor_id), (rm.building_id), ())
"""  # noqa: S608 (constants only)

_HOURS = [f"h{h:02}" for h in range(24)]
# Query 2 from the rollup ("utilization heatmap (rollup)"): the months' 7 × 24 columns summed
# into one row and unpivoted into a row per weekday, plus the day rows' signed hours per weekday.
_HEATMAP_ROLLUP = f"""
    WITH days AS (
        SELECT EXTRACT(ISODOW FROM u.day)::int AS dow, {", ".join(f"SUM(s.sign * u.{h}) AS {h}" for h in _HOURS)}
          {_DAY_ROWS.replace("FROM reservations_room_day_usage u", "FROM reservations_room_day_usage u CROSS JOIN LATERAL (SELECT " + _DAY_SIGN + " AS sign) s", 1)}
         GROUP BY 1
    ),
    months AS (
        SELECT {", ".join(f"SUM(m.d{d}h{h:02}) AS d{d}h{h:02}" for d in range(1, 8) for h in range(24))}
          {_MONTH_ROWS}
    ),
    cells AS (
        SELECT * FROM days
        UNION ALL
        SELECT v.* FROM months CROSS JOIN LATERAL (VALUES
            {", ".join("(" + str(d) + ", " + ", ".join(f"months.d{d}h{h:02}" for h in range(24)) + ")" for d in range(1, 8))}
        ) AS v(dow, {", ".join(_HOURS)})
    )
    SELECT cells.dow, {", ".join(f"COALESCE(SUM(cells.{h}), 0)::numeric * 0.000001 / 3600.0" for h in _HOURS)}
      FROM cells GROUP BY cells.dow
"""  # noqa: S608 (constants only)


def _month_after(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _plan(start: dt.date, end: dt.date) -> dict:
    """How the rollup covers the days start..end: whole months [months_from, months_to), plus
    day ranges added (plus1, plus2) and minus day ranges left out of those months (minus1,
    minus2) — at each end, a part-month is the month minus the days it leaves out when fewer
    than those it has, else its days. Exact either way (integer sums)."""
    plan = dict.fromkeys(("months_from", "months_to", "plus1_from", "plus1_to", "plus2_from", "plus2_to",
                          "minus1_from", "minus1_to", "minus2_from", "minus2_to"))
    first, last = start.replace(day=1), end.replace(day=1)
    first_end, last_end = _month_after(first) - dt.timedelta(days=1), _month_after(last) - dt.timedelta(days=1)
    if first == last:  # one month: its days, or the month minus the days around them
        left_out = (start - first).days + (last_end - end).days
        if left_out < (end - start).days + 1:
            plan.update(months_from=first, months_to=_month_after(first))
            if start > first:
                plan.update(minus1_from=first, minus1_to=start - dt.timedelta(days=1))
            if end < last_end:
                plan.update(minus2_from=end + dt.timedelta(days=1), minus2_to=last_end)
        else:
            plan.update(plus1_from=start, plus1_to=end)
        return plan
    months_from, months_to = first, _month_after(last)
    if start > first:
        if (start - first).days <= (first_end - start).days + 1:
            plan.update(minus1_from=first, minus1_to=start - dt.timedelta(days=1))
        else:
            months_from = _month_after(first)
            plan.update(plus1_from=start, plus1_to=first_end)
    if end < last_end:
        if (last_end - end).days <= (end - last).days + 1:
            plan.update(minus2_from=end + dt.timedelta(days=1), minus2_to=last_end)
        else:
            months_to = last
            plan.update(plus2_from=last, plus2_to=end)
    if months_from < months_to:
        plan.update(months_from=months_from, months_to=months_to)
    return plan


def _params(start: dt.date, end: dt.date, building: Building | None, floor: Floor | None, room: Room | None = None) -> dict:
    lo = dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=1)
    hi = dt.datetime.combine(end, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=2)
    return {
        "start": start, "end": end, "lo": lo, "hi": hi, "states": list(BOOKED_STATES),
        "building": building.pk if building is not None else None, "floor": floor.pk if floor is not None else None,
        "room": room.pk if room is not None else None,
        **_plan(start, end),
    }


def utilization(*, start: dt.date, end: dt.date, building: Building | None = None, floor: Floor | None = None,
                room: Room | None = None) -> Utilization:
    """The figures for the days ``start``..``end`` (inclusive), for every room (or one building's,
    one floor's, one room's), from the rollup. Three queries (the totals, the heatmap and the
    rooms' names) and the statement that turns JIT and parallel workers off and forces custom plans for them."""
    return _compute(_TOTALS_ROLLUP, _HEATMAP_ROLLUP, start, end, building, floor, room)


def direct(*, start: dt.date, end: dt.date, building: Building | None = None, floor: Floor | None = None,
           room: Room | None = None) -> Utilization:
    """The same figures computed straight from the reservations (the definition; tests compare
    the rollup with it, ``manage.py rebuild_utilization --check`` too)."""
    return _compute(_TOTALS, _HEATMAP, start, end, building, floor, room)


def _compute(totals_sql, heatmap_sql, start, end, building, floor, room) -> Utilization:
    if connection.vendor != "postgresql":
        raise UtilizationUnavailable("Utilization is computed by PostgreSQL; this instance runs on SQLite.")
    params = _params(start, end, building, floor, room)
    # JIT off for these two statements: a year's aggregate is estimated above jit_above_cost
    # and compiling its 40-odd expressions took longer than running it (measured: ~0.5 s of
    # a 0.6 s query on this machine). And a custom plan each time: the connection prepares a
    # statement it has run 5 times (settings/env.py PREPARE_THRESHOLD), and after 5 runs of the
    # prepared statement PostgreSQL may switch to a generic plan, one for any period and any
    # building/floor/room (the ``%(building)s IS NULL OR …`` filters, the day ranges): that plan
    # made the default 28 days' two queries ~90 + ~95 ms instead of ~10 + ~25 ms (measured on
    # the bench's 500 rooms × a year). And no parallel workers: starting them cost more than
    # they saved on these ~10–40 ms statements (measured, 2 cores: one building's year 41–55 ->
    # ~30 ms, the default 28 days 65 -> 36–47 ms, the year over all rooms about even). The
    # settings are local to the transaction (set_config's ``true``), in one statement.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true), "
                       "set_config('max_parallel_workers_per_gather', '0', true)")
        cursor.execute(totals_sql, params)
        totals = cursor.fetchall()
        cursor.execute(heatmap_sql, params)
        heat = cursor.fetchall()
    result = Utilization(start=start, end=end, total=Figures())
    if heatmap_sql is _HEATMAP:
        for dow, hour, hours in heat:
            result.heatmap[dow - 1][hour] = float(hours or 0)
    else:
        for dow, *hours in heat:
            result.heatmap[dow - 1] = [float(value or 0) for value in hours]
    by_room, by_floor, by_building = {}, {}, {}
    for level, building_id, floor_id, room_id, booked, checked_hours, released_hours, count, checked, no_shows in totals:
        figures = Figures(float(booked or 0), float(checked_hours or 0), float(released_hours or 0), int(count or 0), int(checked or 0),
                          int(no_shows or 0))  # an empty period: the overall row of NULL sums
        if level == 0:
            by_room[room_id] = figures
        elif level == 1:
            by_floor[(building_id, floor_id)] = figures
        elif level == 3:
            by_building[building_id] = figures
        else:
            result.total = figures
    rooms = Room.objects.order_by("building__name", "name")
    if building is not None:
        rooms = rooms.filter(building=building)
    if floor is not None:
        rooms = rooms.filter(floor=floor)
    if room is not None:
        rooms = rooms.filter(pk=room.pk)
    buildings_seen: dict[int, str] = {}
    floors_seen: dict[tuple, str] = {}
    # tuples, not model instances: 500 rooms × (room, building, floor) objects cost more than the SQL
    for pk, name, building_id, building_name, floor_id, floor_name in rooms.values_list(
            "id", "name", "building_id", "building__name", "floor_id", "floor__name"):
        buildings_seen[building_id] = building_name
        floors_seen[(building_id, floor_id)] = floor_name if floor_id else "(no floor)"
        result.rooms.append(Row(pk, name, by_room.get(pk, Figures()), building=building_name, floor=floor_name if floor_id else ""))
    result.buildings = [Row(pk, name, by_building.get(pk, Figures())) for pk, name in buildings_seen.items()]
    result.floors = [Row(key[1], name, by_floor.get(key, Figures()), building=buildings_seen[key[0]])
                     for key, name in sorted(floors_seen.items(), key=lambda item: (buildings_seen[item[0][0]], item[1]))]
    return result
