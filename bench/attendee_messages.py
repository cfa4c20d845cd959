"""Attendee messages per kind of change (issue 16 item 6): one reservation with an attendee
and a room mailbox, changed one way at a time through the services (eager pushes to the
emulator over HTTPS); after each change the emulator's count of meeting messages each
attendee received (GET /_emulator/messages: invitation, update, cancellation).

``before``: every update PATCHes the whole payload (the old push); ``after``: only the fields
that changed. Prints one JSON object: for each phase and change, the messages per attendee
by kind (zeros left out), and ``update_messages_per_attendee`` summed over the changes.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wp_sync_bench); the
database is created and migrated if needed and its reservations are wiped first."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wp_sync_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"

from outbound import Control, ensure_database  # noqa: E402  (bench/outbound.py)

DOMAIN = "contoso.example"
ROOM, OTHER_ROOM = f"bench-room-a@{DOMAIN}", f"bench-room-b@{DOMAIN}"
BOB, CAROL = f"bench-bob@{DOMAIN}", f"bench-carol@{DOMAIN}"


def setup(control: Control):
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from exchange_auth import properties
    from exchange_auth.demo import seed_provider
    from reservations.models import Reservation, ReservationSeries, SyncEvent
    from workplace.models import Arrangement, Building, Profile, Room

    cache.clear()
    SyncEvent.objects.all().delete()
    Reservation.objects.all().delete()
    ReservationSeries.objects.all().delete()
    control.call("POST", "/reset", {"seed": "demo"})
    control.call("POST", "/seed", {
        "rooms": [{"upn": ROOM, "displayName": "Bench A", "capacity": 8}, {"upn": OTHER_ROOM, "displayName": "Bench B", "capacity": 8}],
        "users": [{"upn": f"bench-alice@{DOMAIN}"}, {"upn": BOB}, {"upn": CAROL}],
    })
    building, _ = Building.objects.get_or_create(code="bench", defaults={"name": "Bench tower", "timezone": "Europe/Amsterdam"})
    rooms = []
    for name, mailbox in (("Bench A", ROOM), ("Bench B", OTHER_ROOM)):
        room, _ = Room.objects.update_or_create(building=building, name=name, defaults={"capacity": 8, "mailbox": mailbox, "sync_enabled": True})
        Arrangement.objects.get_or_create(room=room, name="Default", defaults={"is_default": True})
        Arrangement.objects.get_or_create(room=room, name="Boardroom")
        rooms.append(room)
    user, _ = get_user_model().objects.get_or_create(username="bench-alice", defaults={"email": f"bench-alice@{DOMAIN}"})
    Profile.objects.get_or_create(user=user, defaults={"timezone": "Europe/Amsterdam"})
    seed_provider()
    properties.set_value(properties.SYNC_INTEGRATION_MODE, "Normal")
    return rooms, user


def run_phase(control: Control, rooms, alice, *, day: int) -> dict:
    from reservations import services
    from reservations.models import Reservation

    room, other = rooms
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=day)).replace(hour=9, minute=0, second=0, microsecond=0)

    def received() -> dict:
        got = control.call("GET", "/messages")["messages"]
        control.call("DELETE", "/messages")
        return {a: {k: n for k, n in kinds.items() if n} for a, kinds in got.items() if any(kinds.values())}

    r = services.reservation_create(actor=alice, room=room, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                    attendees=[{"email": BOB, "name": "Bob"}])
    out = {"create": received()}
    changes = [
        ("arrangement", {"arrangement": room.arrangements.get(name="Boardroom")}),
        ("body", {"body": "Agenda: budget"}),
        ("subject", {"subject": "Weekly sync"}),
        ("time", {"start": start + dt.timedelta(hours=1), "end": start + dt.timedelta(hours=2)}),
        ("attendee_added", {"attendees": [{"email": BOB, "name": "Bob"}, {"email": CAROL, "name": "Carol"}]}),
        ("attendee_removed", {"attendees": [{"email": BOB, "name": "Bob"}]}),
        ("room", {"room": other}),
    ]
    for name, fields in changes:
        services.reservation_update(actor=alice, reservation=Reservation.objects.get(pk=r.pk), **fields)
        out[name] = received()
    services.reservation_cancel(actor=alice, reservation=Reservation.objects.get(pk=r.pk))
    out["cancel"] = received()
    updates = {}
    for name, _ in changes:
        for address, kinds in out[name].items():
            updates[address] = updates.get(address, 0) + kinds.get("update", 0)
    return {"messages": out, "update_messages_per_attendee": updates,
            "update_messages_to_bob_per_change": {name: out[name].get(BOB, {}).get("update", 0) for name, _ in changes}}


def main() -> None:
    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from calendar_sync.outbound import single
    from graph_emulator import EmulatorServer

    srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tempfile.mkdtemp(prefix="bench-emulator-"))
    srv.start()
    settings.GRAPH_CA_BUNDLE = str(srv.ca_path)
    settings.GRAPH_EMULATOR_URL = srv.base_url
    try:
        control = Control(srv.base_url, srv.ca_path)
        rooms, alice = setup(control)
        changed_fields = single.payloads.changed_fields
        single.payloads.changed_fields = lambda desired, pushed: dict(desired)  # the old push: the whole payload
        try:
            before = run_phase(control, rooms, alice, day=3)
        finally:
            single.payloads.changed_fields = changed_fields
        after = run_phase(control, rooms, alice, day=4)
        print(json.dumps({"before": before, "after": after}, indent=2))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
