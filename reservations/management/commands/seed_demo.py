"""``manage.py seed_demo``: the demo tenant (DESIGN "Demo tenant"), idempotent.

People alice, bob, admin and reservations (password ``demo-password``), the HQ
building (Europe/Berlin) with Atlas, Borealis and Cosmos (room mailboxes,
synced) and Dojo (no mailbox), a second building in New York, equipment,
arrangements, a few reservations, and the calendar provider pointing at the
emulator (``exchange_auth.demo.seed_provider``, when that app provides it).

It lives in ``reservations`` because it books demo reservations through the
services, and ``workplace`` imports no other app of ours.
"""

import datetime as dt
import importlib

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from reservations import services
from reservations.models import Reservation
from reservations.recurrence import Recurrence
from workplace.models import Arrangement, Building, Equipment, Floor, Profile, Room

DOMAIN = "contoso.example"
PASSWORD = "demo-password"

PEOPLE = [
    # username, first, last, time zone, staff
    ("alice", "Alice", "Anders", "Europe/Berlin", False),
    ("bob", "Bob", "Berg", "America/New_York", False),
    ("admin", "Ada", "Admin", "Europe/Berlin", True),
    ("reservations", "Reservations", "Service", "UTC", False),
]
EQUIPMENT = [("projector", "Projector"), ("whiteboard", "Whiteboard"), ("video-conference", "Video conference"), ("display", "Display"), ("phone", "Conference phone")]
BUILDINGS = [
    ("HQ", "hq", "Europe/Berlin", "1 Contoso Platz, Berlin", [("Ground floor", 0), ("1st floor", 1), ("2nd floor", 2)]),
    ("Harbor", "harbor", "America/New_York", "200 Water Street, New York", [("10th floor", 10)]),
]
ROOMS = [
    # building, floor, name, capacity, mailbox, synced, group, equipment, arrangements [(name, seats, default)]
    ("hq", "1st floor", "Atlas", 8, f"atlas@{DOMAIN}", True, False, ["projector", "whiteboard", "video-conference"],
     [("Boardroom", 8, True), ("U-shape", 6, False)]),
    ("hq", "1st floor", "Borealis", 4, f"borealis@{DOMAIN}", True, False, ["display", "phone"], [("Default", None, True)]),
    ("hq", "2nd floor", "Cosmos", 12, f"cosmos@{DOMAIN}", True, True, ["projector", "video-conference", "phone"],
     [("Theatre", 12, True), ("Classroom", 8, False), ("U-shape", 10, False)]),
    ("hq", "Ground floor", "Dojo", 6, "", False, False, ["whiteboard"], [("Default", None, True)]),
    ("harbor", "10th floor", "Hudson", 10, "", False, False, ["display", "video-conference"], [("Boardroom", 10, True)]),
    ("harbor", "10th floor", "Liberty", 4, "", False, False, ["whiteboard"], [("Default", None, True)]),
]


class Command(BaseCommand):
    help = "Create or refresh the demo tenant's people, buildings, rooms, provider and reservations."

    def handle(self, *args, **options):
        people = self._people()
        rooms = self._directory()
        provider = self._provider()
        booked = self._reservations(people, rooms)
        self.stdout.write(self.style.SUCCESS(
            f"Demo tenant ready: {len(people)} people, {len(rooms)} rooms, "
            f"provider: {provider or 'not available'}, {booked} demo reservations added."
        ))

    @transaction.atomic
    def _people(self) -> dict:
        User = get_user_model()
        people = {}
        for username, first, last, tz, staff in PEOPLE:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@{DOMAIN}"})
            user.email, user.first_name, user.last_name = f"{username}@{DOMAIN}", first, last
            user.is_staff = user.is_superuser = staff
            user.is_active = True
            if created or not user.check_password(PASSWORD):
                user.set_password(PASSWORD)
            user.save()
            Profile.objects.update_or_create(user=user, defaults={"timezone": tz, "has_mailbox": True})
            people[username] = user
        return people

    @transaction.atomic
    def _directory(self) -> dict:
        equipment = {slug: Equipment.objects.update_or_create(slug=slug, defaults={"name": name})[0] for slug, name in EQUIPMENT}
        buildings, floors = {}, {}
        for name, code, tz, address, building_floors in BUILDINGS:
            building, _ = Building.objects.update_or_create(code=code, defaults={"name": name, "timezone": tz, "address": address})
            buildings[code] = building
            for floor_name, level in building_floors:
                floors[(code, floor_name)] = Floor.objects.update_or_create(building=building, name=floor_name, defaults={"level": level})[0]
        rooms = {}
        for code, floor_name, name, capacity, mailbox, synced, group, kit, arrangements in ROOMS:
            room, _ = Room.objects.update_or_create(
                building=buildings[code], name=name,
                defaults={
                    "floor": floors[(code, floor_name)], "capacity": capacity, "mailbox": mailbox, "sync_enabled": synced,
                    "group_reservations_enabled": group, "reservable": True,
                },
            )
            room.equipment.set([equipment[slug] for slug in kit])
            room.arrangements.exclude(name__in=[a[0] for a in arrangements]).filter(reservations__isnull=True).delete()
            room.arrangements.update(is_default=False)
            for arrangement_name, seats, default in arrangements:
                Arrangement.objects.update_or_create(room=room, name=arrangement_name, defaults={"capacity": seats, "is_default": default})
            rooms[name] = room
        return rooms

    def _provider(self):
        """The auth app's hook: ``exchange_auth.demo.seed_provider()`` creates the emulator's provider."""
        try:
            demo = importlib.import_module("exchange_auth.demo")
        except ImportError:
            return None
        return demo.seed_provider()

    def _reservations(self, people: dict, rooms: dict) -> int:
        """A few bookings in the coming days, made once (a demo user who has any keeps theirs)."""
        if Reservation.objects.filter(requested_for__in=[people["alice"], people["bob"]]).exists():
            return 0
        tz = rooms["Atlas"].building.tzinfo
        today = dt.datetime.now(tz).date()

        def at(days: int, hour: int, minute: int = 0) -> dt.datetime:
            day = today + dt.timedelta(days=days)
            while day.isoweekday() > 5:  # working days only
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)

        plans = [
            dict(actor=people["alice"], room=rooms["Dojo"], start=at(1, 10), end=at(1, 11), subject="Sprint planning",
                 attendees=[{"email": f"bob@{DOMAIN}", "name": "Bob Berg"}]),
            dict(actor=people["alice"], room=rooms["Atlas"], start=at(2, 14), end=at(2, 15, 30), subject="Customer demo",
                 body="Walk-through of the new release.", attendees=[{"email": f"bob@{DOMAIN}", "name": "Bob Berg"}]),
            dict(actor=people["bob"], room=rooms["Borealis"], start=at(1, 9), end=at(1, 9, 30), subject="Team stand-up",
                 recurrence=Recurrence("weekly", weekdays=(1, 3, 5), count=6)),
            dict(actor=people["bob"], room=rooms["Dojo"], start=at(3, 13), end=at(3, 14), subject="1:1 with Alice",
                 attendees=[{"email": f"alice@{DOMAIN}", "name": "Alice Anders"}]),
        ]
        booked = 0
        for plan in plans:
            try:
                services.reservation_create(source="portal", **plan)
                booked += 1
            except Exception as exc:  # noqa: BLE001 - a demo booking that can't be made is skipped, not fatal
                self.stderr.write(f"skipped demo reservation {plan['subject']!r}: {exc}")
        return booked
