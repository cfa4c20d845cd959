"""Inbound sync benchmark (issue 6): Outlook bookings reach the product through change
notifications, a real Celery worker (Redis) pulls and reconciles; then a nightly pass
over many rooms where nothing changed.

1. Real time: 200 Outlook meetings on 20 room mailboxes, created through the emulator
   (as their organizers would in Outlook). The product's webhook is served over HTTP by
   a threaded WSGI server in this process; subscriptions are made through Graph with the
   validation handshake. Figures:
   - ``notification_to_reservation_ms`` p50/p99: from the first stored notification of
     the room's copy to the reservation row (targets ≤ 1000 / ≤ 3000 ms);
   - ``outlook_to_reservation_ms``: from the Outlook create call to the reservation row;
   - ``graph_requests_per_change``: Graph requests the product made during the phase
     (emulator request log: token and control calls left out) / 200.
2. Nightly: 50 rooms × 200 events, already reconciled once; the nightly pass runs with
   nothing changed. Figures: seconds, delta rounds (GET calendarView/delta) per room,
   Graph requests. Target: at most one delta round per room, under 5 s.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_inbound_bench),
BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/11). The database is created and migrated if
needed; its reservations and inbound state are wiped first. Prints one JSON object.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_inbound_bench", redis_db=11)

Control = common.Control
DOMAIN = common.DOMAIN
RT_ROOMS, RT_MEETINGS, RT_PACE_SECONDS = 20, 200, 0.05
NIGHT_ROOMS, NIGHT_EVENTS = 50, 200
wait = common.wait_for


def pct(values: list[float], p: float) -> float:
    return round(common.percentile(values, p), 1)


def graph_calls(control: Control) -> list[dict]:
    entries = control.call("GET", "/requests?limit=200000")["entries"]
    return [e for e in entries if "/oauth2/" not in e["path"] and not e["path"].startswith("/_emulator") and not e.get("batch")]


def reset(control: Control) -> None:
    from calendar_sync.models import (
        MailboxDeltaState,
        NightlyRun,
        RoomEvent,
        Subscription,
        WebhookNotification,
    )
    from workplace.models import Room

    common.wipe_reservations(WebhookNotification, Subscription, RoomEvent, MailboxDeltaState, NightlyRun)
    Room.objects.filter(building__code__in=["rt-room", "night-room"]).delete()  # the emulator forgets them on reset
    control.call("POST", "/reset", {"seed": "demo"})


def make_rooms(control: Control, *, prefix: str, count: int, building_name: str):
    control.call("POST", "/seed", {"rooms": [{"upn": f"{prefix}-{i:02d}@{DOMAIN}", "displayName": f"{prefix} {i:02d}", "capacity": 8} for i in range(count)]})
    found = common.building(prefix, building_name)
    return found, common.synced_rooms(found, [(f"{prefix} {i:02d}", f"{prefix}-{i:02d}@{DOMAIN}") for i in range(count)])


def make_organizers(control: Control, count: int = 10) -> list[str]:
    control.call("POST", "/seed", {"users": [{"upn": f"bench-org-{i:02d}@{DOMAIN}"} for i in range(count)]})
    return [user.email for user in common.people([f"bench-org-{i:02d}" for i in range(count)], timezone=None)]


def graph_time(moment: dt.datetime) -> dict:
    return {"dateTime": moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def meeting(organizer: str, room: str, start: dt.datetime, subject: str) -> dict:
    return {"subject": subject, "start": graph_time(start), "end": graph_time(start + dt.timedelta(minutes=50)),
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}]}


# --- 1. real time --------------------------------------------------------------------------------


def realtime(control: Control, srv) -> dict:
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState, WebhookNotification
    from reservations.models import Reservation

    _building, rooms = make_rooms(control, prefix="rt-room", count=RT_ROOMS, building_name="Real-time tower")
    organizers = make_organizers(control)
    counts = inbound_tasks.subscriptions_ensure()
    assert counts["created"] == RT_ROOMS, counts
    wait(lambda: MailboxDeltaState.objects.filter(full_syncs__gte=1).count() >= RT_ROOMS, 60, "initial syncs")
    control.call("DELETE", "/requests")
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    sent: dict[str, float] = {}
    started = time.monotonic()
    for n in range(RT_MEETINGS):
        room = rooms[n % RT_ROOMS]
        k = n // RT_ROOMS
        start = base + dt.timedelta(hours=k)
        t = time.time()
        created = control.call("POST", f"/users/{organizers[n % len(organizers)]}/events", meeting(organizers[n % len(organizers)], room.mailbox, start, f"rt #{n:03d}"))
        sent[created["iCalUId"]] = t
        time.sleep(RT_PACE_SECONDS)
    wait(lambda: Reservation.objects.filter(source="outlook").count() >= RT_MEETINGS, 120, "all reservations")
    seconds = time.monotonic() - started
    time.sleep(1)  # let trailing notifications and pulls finish before reading the log
    calls = graph_calls(control)
    reservations = list(Reservation.objects.filter(source="outlook").values("event_id", "ical_uid", "created_at"))
    first_seen = {}
    for event_id, received in WebhookNotification.objects.filter(kind="change", change_type="created").order_by("received_at").values_list("event_id", "received_at"):
        first_seen.setdefault(event_id, received)
    notif_ms = [(r["created_at"] - first_seen[r["event_id"]]).total_seconds() * 1000 for r in reservations if r["event_id"] in first_seen]
    outlook_ms = [(r["created_at"].timestamp() - sent[r["ical_uid"]]) * 1000 for r in reservations if r["ical_uid"] in sent]
    kinds = Counter(f"{e['method']} {'delta' if 'calendarView/delta' in e['path'] else e['path'].rsplit('/', 1)[-1] if e['method'] != 'GET' else 'other'}" for e in calls)
    return {
        "meetings": RT_MEETINGS, "rooms": RT_ROOMS, "reservations": len(reservations),
        "duplicates": len(reservations) - len({r["ical_uid"] for r in reservations}),
        "seconds": round(seconds, 2),
        "notifications_stored": WebhookNotification.objects.filter(kind="change").count(),
        "notification_to_reservation_ms": {"p50": pct(notif_ms, 50), "p99": pct(notif_ms, 99), "max": round(max(notif_ms), 1),
                                           "mean": round(statistics.mean(notif_ms), 1), "n": len(notif_ms)},
        "outlook_to_reservation_ms": {"p50": pct(outlook_ms, 50), "p99": pct(outlook_ms, 99)},
        "graph_requests": len(calls),
        "graph_requests_per_change": round(len(calls) / RT_MEETINGS, 3),
        "graph_requests_by_kind": dict(kinds),
    }


# --- 2. nightly with nothing changed ---------------------------------------------------------------------


def nightly_unchanged(control: Control, srv) -> dict:
    from calendar_sync.inbound import nightly
    from calendar_sync.inbound import tasks as inbound_tasks
    from calendar_sync.models import MailboxDeltaState
    from reservations.models import Reservation

    building, rooms = make_rooms(control, prefix="night-room", count=NIGHT_ROOMS, building_name="Night tower")
    organizers = make_organizers(control)
    base = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)

    def create_all():
        store, calendar = srv.ctx.store, srv.ctx.calendar
        for i, room in enumerate(rooms):
            for k in range(NIGHT_EVENTS):
                start = base + dt.timedelta(days=k // 10, hours=k % 10)
                organizer = store.find_user(organizers[(i + k) % len(organizers)])
                calendar.create(organizer, meeting(organizer.upn, room.mailbox, start, f"night {i:02d}/{k:03d}"))
        return True

    srv.call(create_all)
    # 1. Prime: the worker reconciles every room once (10,000 reservations).
    primed_at = time.monotonic()
    mailboxes = [r.mailbox for r in rooms]
    wait(lambda: srv.call(lambda: all(len(srv.ctx.store.mailboxes[srv.ctx.store.find_user(m).id].events) == NIGHT_EVENTS for m in mailboxes)), 120, "room copies")
    for mailbox in mailboxes:
        inbound_tasks.request_pull(mailbox, full=True)
    wait(lambda: MailboxDeltaState.objects.filter(mailbox__in=mailboxes, full_syncs__gte=1).count() == NIGHT_ROOMS, 900, "priming")
    prime_seconds = time.monotonic() - primed_at
    booked = Reservation.objects.filter(room__building=building).count()
    # 2. The nightly pass, nothing changed.
    control.call("DELETE", "/requests")
    started = time.monotonic()
    summary = nightly.run_building(building)
    seconds = time.monotonic() - started
    calls = graph_calls(control)
    rounds = Counter(e["path"].split("/users/", 1)[-1].split("/", 1)[0] for e in calls if "calendarView/delta" in e["path"])
    return {
        "rooms": NIGHT_ROOMS, "events_per_room": NIGHT_EVENTS, "reservations_primed": booked,
        "priming_seconds": round(prime_seconds, 1),
        "seconds": round(seconds, 2),
        "delta_requests": sum(rounds.values()),
        "max_delta_requests_per_room": max(rounds.values()) if rounds else 0,
        "graph_requests": len(calls),
        "events_read": summary.get("events", 0),
        "unchanged": summary.get("unchanged", 0),
        "changes": {k: v for k, v in summary.items() if k not in ("rooms", "events", "requests", "unchanged")},
    }


def main() -> None:
    common.setup_django()
    from django.conf import settings

    # The webhook is served over http on loopback here; Graph (and the emulator by default) refuse
    # an http notificationUrl, the emulator's development flag lets loopback through (as the tests do).
    srv, control = common.start_emulator("bench-inbound-", config={"http_notification_urls": "loopback"})
    settings.ALLOWED_HOSTS = ["*"]
    httpd, url = common.serve_app()
    settings.PUBLIC_BASE_URL = url
    workers = []
    try:
        from workplace.celery import app

        app.conf.task_always_eager = False
        reset(control)
        common.normal_mode()
        common.flush_redis()
        workers = common.start_workers(srv, 1, concurrency=4, name="bench-inbound",
                                       settings_module="tests.calendar_sync.inbound_worker_settings")
        results = {"realtime": realtime(control, srv)}
        results["nightly_nothing_changed"] = nightly_unchanged(control, srv)
        results["load"] = common.load()
        print(json.dumps(results, indent=2))
    finally:
        common.stop_workers(workers, grace=20)
        httpd.shutdown()
        srv.stop()


if __name__ == "__main__":
    main()
