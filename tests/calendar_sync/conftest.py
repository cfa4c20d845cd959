"""Fixtures for calendar sync: the demo rooms beyond Atlas and the organizer account's person.

The emulator (``emulator_server``, and ``emulator``: reset, with its control API), the demo
``provider``, ``mode`` and the Celery ``worker`` come from tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.factories import FloorFactory, RoomFactory


@pytest.fixture
def borealis(hq):
    floor = FloorFactory(building=hq, name="2nd floor", level=2)
    return RoomFactory(building=hq, floor=floor, name="Borealis", capacity=4, synced=True)


@pytest.fixture
def cosmos(hq):
    return RoomFactory(building=hq, name="Cosmos", capacity=12, synced=True, arrangements=["Boardroom"])


@pytest.fixture
def reservations_user(db):
    from tests.factories import UserFactory

    return UserFactory(username="reservations", first_name="Reservations")
