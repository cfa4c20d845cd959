"""Fixtures for calendar sync: the demo rooms beyond Atlas, the organizer account's person, and
the live webhook with its subscriptions (``subscribed``: Atlas; ``listening``: Strict mode,
Atlas and the organizer mailbox).

The emulator (``emulator_server``, and ``emulator``: reset, with its control API), the demo
``provider``, ``mode`` and the Celery ``worker`` come from tests/conftest.py."""

from __future__ import annotations

import pytest

from calendar_sync.inbound import tasks as inbound_tasks
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


@pytest.fixture(name="subscribed")
def subscribed_fixture(settings, live_server, provider, atlas):
    """The webhook is live and Atlas' mailbox is subscribed (handshake done by the emulator)."""
    settings.PUBLIC_BASE_URL = live_server.url
    counts = inbound_tasks.subscriptions_ensure(provider=provider)
    assert counts["created"] >= 1, counts
    return provider


@pytest.fixture
def strict(mode):
    mode("Strict")


@pytest.fixture
def listening(settings, live_server, provider, strict, atlas):
    """Strict mode (reservations@ organizes Atlas' meetings); the webhook is live; Atlas and
    the organizer mailbox are subscribed, and each one's first full round has run."""
    settings.PUBLIC_BASE_URL = live_server.url
    counts = inbound_tasks.subscriptions_ensure(provider=provider)
    assert counts == {"created": 2, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
    return provider
