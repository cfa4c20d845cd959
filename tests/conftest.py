"""Shared fixtures: the demo tenant's named people (alice, bob, an admin, an outsider),
the HQ building with a synced room (Atlas) and one without a mailbox (Dojo), and
API clients authenticated by token as each person."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import BuildingFactory, EquipmentFactory, FloorFactory, RoomFactory, UserFactory


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", first_name="Alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", first_name="Bob")


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", first_name="Admin", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Someone with an account who has nothing to do with anyone's reservations."""
    return UserFactory(username="outsider", email="outsider@fabrikam.example", first_name="Olga")


@pytest.fixture
def hq(db):
    return BuildingFactory(name="HQ", code="hq", timezone="Europe/Berlin")


@pytest.fixture
def projector(db):
    return EquipmentFactory(slug="projector", name="Projector")


@pytest.fixture
def atlas(hq, projector):
    """8 seats, room mailbox, synced with Exchange, projector, U-shape layout."""
    floor = FloorFactory(building=hq, name="1st floor", level=1)
    return RoomFactory(building=hq, floor=floor, name="Atlas", capacity=8, synced=True, equipment=[projector], arrangements=["U-shape"])


@pytest.fixture
def dojo(hq):
    """6 seats, no mailbox, not synced."""
    return RoomFactory(building=hq, name="Dojo", capacity=6)


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_as():
    """api_as(alice) -> an APIClient sending alice's token."""
    return _client_for


@pytest.fixture
def alice_api(alice):
    return _client_for(alice)


@pytest.fixture
def bob_api(bob):
    return _client_for(bob)


@pytest.fixture
def admin_api(admin):
    return _client_for(admin)


@pytest.fixture
def anonymous_api():
    return APIClient()
