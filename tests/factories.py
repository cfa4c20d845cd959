"""factory-boy factories for the space directory and reservations."""

import datetime as dt
import zoneinfo

import factory
from django.contrib.auth import get_user_model

from reservations.models import Attendee, Reservation
from workplace.models import Arrangement, Building, Equipment, Floor, Profile, Room

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def days_ahead(days: int, hour: int, minute: int = 0, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    """An aware datetime ``days`` from today at ``hour:minute`` local (Berlin by default)."""
    day = dt.datetime.now(tz).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@contoso.example")
    first_name = factory.LazyAttribute(lambda o: o.username.capitalize())
    password = factory.django.Password("demo-password")
    profile = factory.RelatedFactory("tests.factories.ProfileFactory", factory_related_name="user")


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory, profile=None)
    timezone = "Europe/Berlin"


class BuildingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Building
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Building {n}")
    code = factory.Sequence(lambda n: f"b{n}")
    timezone = "Europe/Berlin"


class FloorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Floor

    building = factory.SubFactory(BuildingFactory)
    name = factory.Sequence(lambda n: f"Floor {n}")
    level = factory.Sequence(lambda n: n)


class EquipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Equipment
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"thing-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").capitalize())


class RoomFactory(factory.django.DjangoModelFactory):
    """A reservable room with a default arrangement; ``synced=True`` gives it a mailbox."""

    class Meta:
        model = Room
        skip_postgeneration_save = True

    class Params:
        synced = factory.Trait(
            mailbox=factory.LazyAttribute(lambda o: f"{o.name.lower()}@contoso.example"),
            sync_enabled=True,
        )

    building = factory.SubFactory(BuildingFactory)
    floor = None
    name = factory.Sequence(lambda n: f"Room{n}")
    capacity = 8
    reservable = True

    @factory.post_generation
    def arrangements(self, create, extracted, **kwargs):
        if not create:
            return
        Arrangement.objects.create(room=self, name="Default", is_default=True)
        for name in extracted or ():
            Arrangement.objects.create(room=self, name=name)

    @factory.post_generation
    def equipment(self, create, extracted, **kwargs):
        if create and extracted:
            self.equipment.set(extracted)


class ReservationFactory(factory.django.DjangoModelFactory):
    """A confirmed reservation written directly (no service): for reads and fixtures."""

    class Meta:
        model = Reservation

    room = factory.SubFactory(RoomFactory)
    subject = factory.Sequence(lambda n: f"Meeting {n}")
    start = factory.LazyFunction(lambda: days_ahead(1, 9))
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(hours=1))
    requested_for = factory.SubFactory(UserFactory)
    requested_by = factory.LazyAttribute(lambda o: o.requested_for)
    state = "confirmed"


class AttendeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attendee

    reservation = factory.SubFactory(ReservationFactory)
    email = factory.Sequence(lambda n: f"guest{n}@contoso.example")
