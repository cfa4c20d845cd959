"""Releasing the room from the occurrences of a series that has begun (issue 16 item 7): a
weekly series of ``OCCURRENCES`` with an attendee, its first occurrence over, the rest
cancelled with "also cancel the meeting" unticked: the room leaves each coming occurrence
and everyone keeps the meeting. Counted from the emulator's request log: the Graph requests
of that one push, per occurrence released.

``before``: each occurrence PATCHed with If-Match on the change key read in the instances
listing (a 412 on each after the first, then a GET and a second PATCH) and the master read at
the end (the old push); ``after``: one PATCH per occurrence. Prints one JSON object.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_sync_bench)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_sync_bench", redis_db=3)
from bench.attendee_messages import BOB, setup  # noqa: E402
from bench.common import Control  # noqa: E402

OCCURRENCES = 21


def run_phase(control: Control, rooms, alice, *, day: int) -> dict:
    from reservations import services
    from reservations.models import Reservation, SyncEvent
    from reservations.recurrence import Recurrence

    room = rooms[0]
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=day)).replace(hour=9, minute=0, second=0, microsecond=0)
    services.reservation_create(actor=alice, room=room, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                attendees=[{"email": BOB, "name": "Bob"}], recurrence=Recurrence(frequency="weekly", interval=1, count=OCCURRENCES))
    series = Reservation.objects.get(start=start, room=room).series
    rows = list(series.occurrences.order_by("start"))
    real_now = services.clock.now
    services.clock.now = lambda: rows[0].end + dt.timedelta(minutes=5)  # the first one is over
    try:
        seq = control.call("GET", "/requests?limit=1")["last_seq"]
        t0 = time.monotonic()
        services.reservation_cancel(actor=alice, reservation=rows[1], scope="series", cancel_meeting=False)
        seconds = time.monotonic() - t0  # the cancel and its push (eager, in this process)
    finally:
        services.clock.now = real_now
    log = control.call("GET", f"/requests?since={seq}&limit=100000")
    graph = [e for e in log["entries"] if e["path"].startswith("/v1.0/")]
    event = SyncEvent.objects.filter(series=series, type=SyncEvent.Type.DELETE).latest("pk")
    released = len(event.response.get("released_room_of_occurrences") or [])
    return {
        "occurrences_released": released,
        "seconds": round(seconds, 2),
        "graph_requests": len(graph),
        "graph_requests_per_occurrence": round(len(graph) / released, 3) if released else None,
        "by_endpoint": dict(Counter(f"{e['endpoint']} {e['status']}" for e in graph)),
    }


def main() -> None:
    common.setup_django()
    from calendar_sync.common import meetings
    from calendar_sync.outbound import series as series_push
    from reservations.models import Reservation

    srv, control = common.start_emulator("bench-emulator-")
    try:
        rooms, alice = setup(control)
        release = series_push.release_occurrence

        def old_release(client, mailbox, instance_id, body):
            # The old push: If-Match on the key the instances listing gave (stored by link_instance) ...
            key = Reservation.objects.filter(event_id=instance_id).values_list("change_key", flat=True).first() or ""
            updated = meetings.patch(client, mailbox, instance_id, key, body)
            # ... and the master's change key read after each release (once per push before; at most as costly).
            return updated

        series_push.release_occurrence = old_release
        real_patch_master = series_push._release_room_from_occurrences

        def old_release_all(event, series, client, plan, cancelled_ids):
            out = real_patch_master(event, series, client, plan, cancelled_ids)
            meetings.get(client, series.mailbox, series.event_id, select="id,changeKey")  # the old final master read
            return out

        series_push._release_room_from_occurrences = old_release_all
        try:
            before = run_phase(control, rooms, alice, day=3)
        finally:
            series_push.release_occurrence = release
            series_push._release_room_from_occurrences = real_patch_master
        after = run_phase(control, rooms, alice, day=4)
        print(json.dumps({"occurrences": OCCURRENCES, "before": before, "after": after}, indent=2))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
