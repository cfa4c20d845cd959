"""seed_demo builds the documented demo tenant and can run again."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from reservations.models import Reservation
from workplace.models import Building, Room

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent():
    call_command("seed_demo", stdout=None)
    first = (get_user_model().objects.count(), Room.objects.count(), Reservation.objects.count())
    call_command("seed_demo")

    assert (get_user_model().objects.count(), Room.objects.count(), Reservation.objects.count()) == first
    alice = get_user_model().objects.get(username="alice")
    assert alice.email == "alice@contoso.example" and alice.check_password("demo-password")
    assert alice.profile.timezone == "Europe/Berlin"
    assert get_user_model().objects.get(username="admin").is_superuser
    assert Building.objects.get(code="hq").timezone == "Europe/Berlin"
    rooms = {r.name: r for r in Room.objects.all()}
    assert (rooms["Atlas"].capacity, rooms["Atlas"].mailbox, rooms["Atlas"].is_synced) == (8, "atlas@contoso.example", True)
    assert (rooms["Borealis"].capacity, rooms["Cosmos"].capacity) == (4, 12)
    assert not rooms["Dojo"].mailbox and not rooms["Dojo"].is_synced
    assert rooms["Atlas"].default_arrangement().name == "Boardroom"
    assert Reservation.objects.filter(series__isnull=False).count() == 6
    assert Reservation.objects.count() == 9
