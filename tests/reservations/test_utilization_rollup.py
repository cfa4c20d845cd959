"""The utilization rollup (migration reservations 0011: ``reservations_room_day_usage`` kept by
triggers) gives exactly the figures of the straightforward queries (``utilization.direct``) —
hours booked, checked in and released, counts, no-show rate, peak hours, the weekday × hour
heatmap in the building's zone, a row per room — on varied data (series, released, cancelled,
rejected, meetings across midnight and the Berlin DST nights, a meeting of several days,
microsecond ends), for many periods and every filter, and stays so after edits that move,
shorten, check in, release, cancel, move to another room or building, delete, bulk-update,
bulk-create, change a building's zone; the table always equals a rebuild from scratch. Reads
stay at three queries (and a SET LOCAL) whatever the number of rooms and reservations."""

import datetime as dt
import random
import zoneinfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations.models import Reservation, ReservationSeries
from reservations.utilization import direct, utilization
from tests.factories import BuildingFactory, FloorFactory, ReservationFactory, RoomFactory

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
SPRING = dt.date(2030, 3, 31)  # Berlin: 02:00 → 03:00
AUTUMN = dt.date(2030, 10, 27)  # Berlin: 03:00 → 02:00
NY_SPRING, NY_AUTUMN = dt.date(2030, 3, 10), dt.date(2030, 11, 3)  # New York's changes
STATES = ["confirmed"] * 6 + ["awaiting_confirmation", "conflicted", "released", "released", "cancelled", "rejected"]


def at(day: dt.date, hour: int, minute: int = 0, tz=BERLIN, fold: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, fold=fold), tzinfo=tz).astimezone(dt.UTC)


def rollup_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM reservations_room_day_usage ORDER BY room_id, day")
        days = cursor.fetchall()
        cursor.execute("SELECT * FROM reservations_room_month_usage ORDER BY room_id, month")
        return days + cursor.fetchall()


def assert_rollup_is_a_rebuild():
    """What the triggers kept equals what a rebuild from the reservations computes."""
    kept = rollup_rows()
    with connection.cursor() as cursor:
        cursor.execute("SELECT rsv_usage_rebuild(NULL)")
    assert kept == rollup_rows()


PERIODS = [
    (dt.date(2030, 3, 25), dt.date(2030, 4, 7)),  # around the spring change
    (SPRING, SPRING), (SPRING - dt.timedelta(days=1), SPRING),
    (dt.date(2030, 10, 21), dt.date(2030, 11, 3)),  # around the autumn change
    (AUTUMN, AUTUMN), (AUTUMN + dt.timedelta(days=1), AUTUMN + dt.timedelta(days=2)),
    (dt.date(2030, 3, 1), dt.date(2030, 11, 30)),  # everything, whole months (the month rollup)
    (dt.date(2030, 2, 27), dt.date(2030, 12, 2)), (dt.date(2030, 3, 2), dt.date(2030, 10, 31)),  # part-months at the ends
    (dt.date(2030, 3, 28), dt.date(2030, 4, 30)), (dt.date(2030, 4, 1), dt.date(2030, 4, 30)),  # the workshop carried into a whole month
    (dt.date(2030, 3, 10), dt.date(2030, 5, 29)), (dt.date(2030, 3, 2), dt.date(2030, 3, 30)),  # months minus days at the ends
    (dt.date(2030, 3, 29), dt.date(2030, 3, 31)), (dt.date(2030, 10, 3), dt.date(2030, 11, 28)),
    (dt.date(2030, 3, 28), dt.date(2030, 3, 28)),  # one day, cutting through the long meeting
    (dt.date(2030, 3, 8), dt.date(2030, 3, 11)), (dt.date(2030, 11, 3), dt.date(2030, 11, 4)),  # New York's changes
    (dt.date(2031, 1, 1), dt.date(2031, 1, 7)),  # nothing
]


def assert_same_everywhere(places):
    for start, end in PERIODS:
        for scope in [{}, {"building": places["hq"]}, {"building": places["harbor"]}, {"floor": places["first"]},
                      {"room": places["rooms"][0]}, {"room": places["rooms"][-1]}]:
            fast, slow = utilization(start=start, end=end, **scope), direct(start=start, end=end, **scope)
            assert fast == slow, (start, end, scope)  # every figure of every row, the heatmap, exactly
            assert fast.peak_hours == slow.peak_hours


@pytest.fixture
def places(alice):
    hq = BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin")
    harbor = BuildingFactory(name="Harbor", code="harbor", timezone="America/New_York")
    first, second = FloorFactory(building=hq, name="1st", level=1), FloorFactory(building=hq, name="2nd", level=2)
    rooms = [RoomFactory(building=hq, floor=first, name="Atlas"), RoomFactory(building=hq, floor=first, name="Borealis"),
             RoomFactory(building=hq, floor=second, name="Cirrus"), RoomFactory(building=harbor, name="Hudson"),
             RoomFactory(building=harbor, name="Lexington")]
    return {"hq": hq, "harbor": harbor, "first": first, "second": second, "rooms": rooms, "alice": alice}


@pytest.fixture
def varied(places):
    """Random but reproducible reservations around both DST changes (one after the other per
    room, as the no-overlap constraint wants), plus the awkward ones by hand."""
    rng = random.Random(15)
    alice = places["alice"]
    made = []
    for room in places["rooms"]:
        tz = BERLIN if room.building_id == places["hq"].pk else NEW_YORK
        for around in (SPRING, AUTUMN) + ((NY_SPRING, NY_AUTUMN) if tz is NEW_YORK else ()):
            cursor = at(around - dt.timedelta(days=4), 7, tz=tz)
            for _ in range(22):
                cursor += dt.timedelta(minutes=rng.choice([0, 15, 30, 45, 90, 240, 600]))
                length = dt.timedelta(minutes=rng.choice([15, 30, 45, 60, 90, 120, 180, 300]), microseconds=rng.choice([0, 0, 0, 417]))
                state = rng.choice(STATES)
                checked = cursor + dt.timedelta(minutes=2) if state != "released" and rng.random() < 0.4 else None
                released = cursor + dt.timedelta(minutes=rng.choice([10, 15]), microseconds=rng.randrange(10**6)) if state == "released" else None
                made.append(ReservationFactory(room=room, requested_for=alice, start=cursor, end=cursor + length, state=state,
                                               checked_in_at=checked, released_at=released))
                cursor += length
    atlas, hudson = places["rooms"][0], places["rooms"][3]
    # across the spring night (01:30 → 03:30 local is one real hour) and the autumn night twice over
    made.append(ReservationFactory(room=atlas, requested_for=alice, start=at(SPRING, 1, 30) - dt.timedelta(days=7),
                                   end=at(SPRING, 3, 30) - dt.timedelta(days=7)))  # an ordinary night a week before
    made.append(ReservationFactory(room=hudson, requested_for=alice, start=at(SPRING, 23, tz=NEW_YORK) - dt.timedelta(days=1),
                                   end=at(SPRING, 1, 30, tz=NEW_YORK)))  # New York across midnight
    # a meeting of several days across the spring change (a workshop), released on its second day
    made.append(ReservationFactory(room=places["rooms"][2], requested_for=alice, start=at(dt.date(2030, 3, 27), 16),
                                   end=at(dt.date(2030, 4, 1), 11), state="released",
                                   released_at=at(dt.date(2030, 3, 28), 9)))
    # a weekly series of six, one occurrence cancelled, one released, one checked in
    first = dt.date(2030, 11, 18)
    series = ReservationSeries.objects.create(room=places["rooms"][4], subject="Weekly", frequency="weekly", until=first + dt.timedelta(weeks=5),
                                              first_start=at(first, 9, tz=NEW_YORK), first_end=at(first, 10, tz=NEW_YORK),
                                              timezone="America/New_York", requested_by=alice, requested_for=alice)
    for week in range(6):
        day = dt.date(2030, 11, 18) + dt.timedelta(weeks=week)
        made.append(ReservationFactory(room=places["rooms"][4], requested_for=alice, series=series, subject="Weekly",
                                       start=at(day, 9, tz=NEW_YORK), end=at(day, 10, tz=NEW_YORK),
                                       state=["confirmed", "cancelled", "released", "confirmed", "confirmed", "confirmed"][week],
                                       released_at=at(day, 9, 15, tz=NEW_YORK) if week == 2 else None,
                                       checked_in_at=at(day, 9, 1, tz=NEW_YORK) if week == 3 else None))
    return made


def test_the_rollup_gives_the_direct_figures_exactly(places, varied):
    assert len(rollup_rows()) > 50
    assert_same_everywhere(places)
    assert_rollup_is_a_rebuild()
    # not vacuous: the figures are there, and the DST nights are in them
    whole = utilization(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30))
    assert whole.total.booked_hours > 100 and whole.total.no_shows > 5 and whole.total.checked_in > 5
    spring = utilization(start=dt.date(2030, 3, 27), end=dt.date(2030, 4, 1), room=places["rooms"][2])
    assert spring.total.reservations >= 1 and spring.total.released_hours > 0


def test_the_autumn_night_in_the_heatmap_as_the_direct_query_counts_it(places):
    """02:30 CEST → 02:15 CET (45 real minutes): the direct heatmap's wall-clock pieces, negative
    one included, are what the rollup gives."""
    atlas = places["rooms"][0]
    ReservationFactory(room=atlas, requested_for=places["alice"], start=at(AUTUMN, 2, 30), end=at(AUTUMN, 2, 15, fold=1))
    ReservationFactory(room=atlas, requested_for=places["alice"], start=at(AUTUMN, 1, 0), end=at(AUTUMN, 2, 0))
    ReservationFactory(room=atlas, requested_for=places["alice"], start=at(SPRING, 1, 30), end=at(SPRING, 3, 30))
    for day in (AUTUMN, SPRING):
        fast, slow = utilization(start=day, end=day), direct(start=day, end=day)
        assert fast == slow
    autumn = utilization(start=AUTUMN, end=AUTUMN)
    assert autumn.total.booked_hours == pytest.approx(1.75)
    assert autumn.heatmap[6][2] == pytest.approx(-0.25)  # what the definition says for that night
    spring = utilization(start=SPRING, end=SPRING)
    assert spring.total.booked_hours == pytest.approx(1.0) and sum(spring.heatmap[6]) == pytest.approx(2.0)


def test_edits_keep_it_exact(places, varied):
    rng = random.Random(7)
    rows = list(Reservation.objects.order_by("pk"))
    booked = [r for r in rows if r.state in ("confirmed", "awaiting_confirmation", "conflicted")]
    # move one a day later and later in the day (saved through the ORM, all columns)
    moving = booked[3]
    gap = dt.timedelta(days=1, hours=0)
    free = not Reservation.objects.filter(room=moving.room, state__in=["confirmed", "awaiting_confirmation", "conflicted"],
                                          start__lt=moving.end + gap, end__gt=moving.start + gap).exclude(pk=moving.pk).exists()
    if free:
        moving.start, moving.end = moving.start + gap, moving.end + gap
        moving.save()
    # shorten one to 5 minutes; end one at a microsecond (end early)
    booked[5].end = booked[5].start + dt.timedelta(minutes=5)
    booked[5].save(update_fields=["end"])
    booked[6].end = booked[6].start + dt.timedelta(minutes=7, microseconds=123)
    booked[6].save()
    # check one in, release one, cancel one, reject one
    Reservation.objects.filter(pk=booked[7].pk).update(checked_in_at=booked[7].start, checked_in_channel="portal")
    Reservation.objects.filter(pk=booked[8].pk).update(state="released", released_at=booked[8].start + dt.timedelta(minutes=15))
    Reservation.objects.filter(pk=booked[9].pk).update(state="cancelled")
    # a cancelled one booked again
    cancelled = next(r for r in rows if r.state == "cancelled")
    if not Reservation.objects.filter(room=cancelled.room, state__in=["confirmed", "awaiting_confirmation", "conflicted"],
                                      start__lt=cancelled.end, end__gt=cancelled.start).exists():
        Reservation.objects.filter(pk=cancelled.pk).update(state="confirmed")
    # another room, in the other building (New York)
    mover = next(r for r in booked[10:] if r.room.building_id == places["hq"].pk)
    target = places["rooms"][4]
    if not Reservation.objects.filter(room=target, state__in=["confirmed", "awaiting_confirmation", "conflicted"],
                                      start__lt=mover.end, end__gt=mover.start).exists():
        mover.room = target
        mover.save()
    # delete some, one by one and in bulk
    booked[11].delete()
    Reservation.objects.filter(pk__in=[r.pk for r in rng.sample(booked[12:], 8)]).delete()
    # a bulk update of many rows at once (a sync state: changes nothing) and of times (everything a minute earlier in one room)
    Reservation.objects.update(sync_state="synced")
    Reservation.objects.filter(room=places["rooms"][1]).update(start=models_f("start") - dt.timedelta(minutes=1),
                                                                end=models_f("end") - dt.timedelta(minutes=1))
    # bulk_create
    Reservation.objects.bulk_create([
        Reservation(room=places["rooms"][2], subject="Bulk", start=at(dt.date(2030, 6, 3 + i), 23), end=at(dt.date(2030, 6, 4 + i), 1),
                    requested_by=places["alice"], requested_for=places["alice"], state="confirmed")
        for i in range(4)
    ])
    assert_same_everywhere(places)
    assert_rollup_is_a_rebuild()
    june = utilization(start=dt.date(2030, 6, 4), end=dt.date(2030, 6, 4), room=places["rooms"][2])
    assert june.total.booked_hours == pytest.approx(2.0) and june.total.reservations == 2  # one carried in, one starting


def models_f(name):
    from django.db.models import F

    return F(name)


def test_deleting_everything_empties_the_rollup(places, varied):
    Reservation.objects.all().delete()
    assert rollup_rows() == []


def test_a_building_zone_change_and_a_room_moving_building_recompute_its_days(places, varied):
    places["hq"].timezone = "Asia/Tokyo"
    places["hq"].save()
    assert_same_everywhere(places)
    cirrus = places["rooms"][2]
    cirrus.building, cirrus.floor = places["harbor"], None
    cirrus.save()
    assert_same_everywhere(places)
    assert_rollup_is_a_rebuild()


def test_an_edit_the_figures_do_not_use_writes_nothing(places, varied):
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM reservations_room_day_usage ORDER BY room_id, day")
        before = cursor.fetchall()
    one = Reservation.objects.filter(state="confirmed").first()
    one.subject = "Renamed"
    one.save()
    Reservation.objects.update(sync_state="synced", body="x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM reservations_room_day_usage ORDER BY room_id, day")
        assert cursor.fetchall() == before  # no row rewritten: no lock taken, nothing to contend on


def test_reads_are_three_queries_whatever_the_size(places, varied):
    with CaptureQueriesContext(connection) as small:
        utilization(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30))
    for i in range(30):
        RoomFactory(building=places["hq"], floor=places["first"], name=f"Extra {i}")
    with CaptureQueriesContext(connection) as large:
        utilization(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30))
    sql = [q["sql"] for q in large.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(small) == len(large) and len(sql) == 4  # set_config (jit, plan_cache_mode, parallel workers), totals, heatmap, rooms
    assert all("reservations_reservation" not in q for q in sql)  # the rollup only


def test_rebuild_command_restores_and_checks(places, varied, capsys):
    with connection.cursor() as cursor:
        for table in ("reservations_room_day_usage", "reservations_room_month_usage"):
            cursor.execute(f"UPDATE {table} SET booked_us = booked_us + 1 WHERE room_id = %s", [places["rooms"][0].pk])  # noqa: S608
    assert utilization(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30)) != direct(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30))
    with pytest.raises(SystemExit):
        call_command("rebuild_utilization", "--check", "--start", "2030-03-01", "--end", "2030-11-30")
    call_command("rebuild_utilization")
    assert utilization(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30)) == direct(start=dt.date(2030, 3, 1), end=dt.date(2030, 11, 30))
    call_command("rebuild_utilization", "--check", "--start", "2030-03-01", "--end", "2030-11-30")
    assert "equal" in capsys.readouterr().out


def test_the_plan_covers_each_day_of_a_period_once_and_reads_few_days():
    """Months + days added − days left out = exactly the period's days, for 2,000 periods."""
    from collections import Counter

    from reservations.utilization import _month_after, _plan

    def days(a, b):
        return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)] if a else []

    rng = random.Random(3)
    for _ in range(2000):
        start = dt.date(2029, 12, 1) + dt.timedelta(days=rng.randrange(500))
        end = start + dt.timedelta(days=rng.choice([0, 1, 5, 20, 27, 29, 30, 40, 90, 200, 365]))
        plan = _plan(start, end)
        covered = Counter()
        month = plan["months_from"]
        while month is not None and month < plan["months_to"]:
            covered.update(days(month, _month_after(month) - dt.timedelta(days=1)))
            month = _month_after(month)
        for side in ("plus1", "plus2"):
            covered.update(days(plan[f"{side}_from"], plan[f"{side}_to"]))
        for side in ("minus1", "minus2"):
            covered.subtract(days(plan[f"{side}_from"], plan[f"{side}_to"]))
        assert +covered == Counter(days(start, end)), (start, end, plan)
        read = sum(len(days(plan[f"{side}_from"], plan[f"{side}_to"])) for side in ("plus1", "plus2", "minus1", "minus2"))
        assert read <= 32, (start, end, plan)  # at most about half a month at each end
    assert _plan(dt.date(2030, 3, 10), dt.date(2030, 5, 29))["minus2_from"] == dt.date(2030, 5, 30)
