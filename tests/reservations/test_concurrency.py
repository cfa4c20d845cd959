"""The no-overlap guarantee under real concurrency: 20 threads, each with its own
database connection, book one slot through the API at the same moment."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from reservations import services
from reservations.models import Reservation
from tests.factories import UserFactory, days_ahead

THREADS = 20


def _race(client_for, room, people, slot_start) -> Counter:
    barrier = threading.Barrier(len(people))
    statuses: list[int] = []
    lock = threading.Lock()

    def book(person):
        client = client_for(person)
        body = {"room": room.pk, "subject": f"{person.username}'s meeting", "start": slot_start.isoformat(), "end": days_ahead(1, 10).isoformat()}
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/reservations/", body, format="json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=book, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return Counter(statuses)


@pytest.fixture
def people(transactional_db):
    return [UserFactory(username=f"racer{i}") for i in range(THREADS)]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_bookings_of_one_slot(people, dojo, api_as):
    assert connection.vendor == "postgresql"

    statuses = _race(api_as, dojo, people, days_ahead(1, 9))

    assert statuses == Counter({201: 1, 409: THREADS - 1})
    assert Reservation.objects.filter(room=dojo).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_constraint_alone_holds_when_the_check_is_skipped(people, dojo, api_as, monkeypatch):
    """Without the friendly pre-check every request reaches the INSERT: the
    exclusion constraint refuses all but one, and each refusal is still a 409."""
    monkeypatch.setattr(services, "_conflicts", lambda **kwargs: [])

    statuses = _race(api_as, dojo, people, days_ahead(1, 9, 30))

    assert statuses == Counter({201: 1, 409: THREADS - 1})
    assert Reservation.objects.filter(room=dojo).count() == 1
