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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

common.configure("wp_sync_bench", redis_db=3)
Control = common.Control

DOMAIN = common.DOMAIN
ROOM, OTHER_ROOM = f"bench-room-a@{DOMAIN}", f"bench-room-b@{DOMAIN}"
BOB, CAROL = f"bench-bob@{DOMAIN}", f"bench-carol@{DOMAIN}"


def setup(control: Control):
    common.wipe_reservations()
    control.call("POST", "/reset", {"seed": "demo"})
    control.call("POST", "/seed", {
        "rooms": [{"upn": ROOM, "displayName": "Bench A", "capacity": 8}, {"upn": OTHER_ROOM, "displayName": "Bench B", "capacity": 8}],
        "users": [{"upn": f"bench-alice@{DOMAIN}"}, {"upn": BOB}, {"upn": CAROL}],
    })
    rooms = common.synced_rooms(common.building("bench", "Bench tower"), [("Bench A", ROOM), ("Bench B", OTHER_ROOM)],
                                arrangements=("Default", "Boardroom"))
    [user] = common.people(["bench-alice"])
    common.normal_mode()
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
    common.setup_django()
    from calendar_sync.outbound import single

    srv, control = common.start_emulator("bench-emulator-")
    try:
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
