"""The benches' seeding through the emulator's own calendar on its loop (bench/common.py
``seed_events`` and ``update_events``): the same meetings as one HTTPS create each would make,
the rooms' attendant answering, the organizer's changes reaching the rooms' copies."""

from __future__ import annotations

import datetime as dt

from bench import common

ORGANIZER = "alice@contoso.example"
ROOMS = [f"seed-room-{i}@contoso.example" for i in range(3)]


def _meeting(room: str, k: int) -> dict:
    start = dt.datetime(2031, 3, 3, 8) + dt.timedelta(hours=k)
    return {"subject": f"seeded {room.split('@')[0]} #{k}", "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=45)).isoformat(), "timeZone": "UTC"}}


def _room_copies(srv, room: str) -> list:
    return srv.call(lambda: list(srv.store.mailboxes[srv.store.find_user(room).id].events.values()))


def test_seeded_meetings_are_answered_by_their_rooms(emulator_server, emulator):
    emulator.seed({"rooms": [{"upn": room, "capacity": 4} for room in ROOMS]})
    payloads = [_meeting(room, k) for k in range(7) for room in ROOMS]
    ids = common.seed_events(emulator_server, ORGANIZER, payloads, batch=5)  # batches smaller than the list

    organizer = emulator_server.call(lambda: dict(emulator_server.store.mailboxes[emulator_server.store.find_user(ORGANIZER).id].events))
    assert len(ids) == len(set(ids)) == len(payloads)
    assert [organizer[event_id].subject for event_id in ids] == [p["subject"] for p in payloads]
    for room in ROOMS:
        copies = _room_copies(emulator_server, room)
        assert len(copies) == 7
        assert {c.response["response"] for c in copies} == {"accepted"}
    answers = {a["emailAddress"]["address"]: a["status"]["response"] for event_id in ids for a in organizer[event_id].attendees}
    assert set(answers.values()) == {"accepted"}


def test_updated_meetings_reach_the_rooms_copies(emulator_server, emulator):
    emulator.seed({"rooms": [{"upn": room, "capacity": 4} for room in ROOMS]})
    ids = common.seed_events(emulator_server, ORGANIZER, [_meeting(room, k) for k in range(2) for room in ROOMS])
    changed = ids[::2]
    common.update_events(emulator_server, ORGANIZER, changed, {"subject": "changed in Outlook"}, batch=2)

    subjects = sorted(c.subject for room in ROOMS for c in _room_copies(emulator_server, room))
    assert subjects.count("changed in Outlook") == len(changed)
    assert len(subjects) == len(ids)
