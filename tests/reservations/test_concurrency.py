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
    monkeypatch.setattr(services.conflicts, "find_conflicts", lambda **kwargs: [])

    statuses = _race(api_as, dojo, people, days_ahead(1, 9, 30))

    assert statuses == Counter({201: 1, 409: THREADS - 1})
    assert Reservation.objects.filter(room=dojo).count() == 1


# --- a deadlock between racing bookings ---------------------------------------------------
# Racing INSERTs checked by the exclusion constraint can deadlock (PostgreSQL aborts one with
# SQLSTATE 40P01) instead of failing with 23P01; nothing can make the race deadlock on cue, so
# these tests raise a real 40P01 from the server inside the service's transaction.

RAISE_DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"


def _deadlocking(real, times: int):
    """``real``, after raising PostgreSQL's deadlock error ``times`` times (inside the caller's
    transaction, as a refused INSERT would)."""
    calls = {"n": 0}

    def wrapper(**kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            with connection.cursor() as cursor:
                cursor.execute(RAISE_DEADLOCK)
        return real(**kwargs)

    wrapper.calls = calls
    return wrapper


@pytest.mark.django_db(transaction=True)
def test_a_booking_that_loses_a_deadlock_is_run_again(alice, dojo, api_as, monkeypatch):
    create_rows = _deadlocking(services.create._create_rows, times=1)
    monkeypatch.setattr(services.create, "_create_rows", create_rows)
    body = {"room": dojo.pk, "subject": "retried", "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat()}

    response = api_as(alice).post("/api/v1/reservations/", body, format="json")

    assert response.status_code == 201, response.json()
    assert create_rows.calls["n"] == 2
    assert list(Reservation.objects.filter(room=dojo).values_list("subject", flat=True)) == ["retried"]


@pytest.mark.django_db(transaction=True)
def test_a_booking_that_keeps_deadlocking_is_a_409_not_a_500(alice, dojo, api_as, monkeypatch):
    monkeypatch.setattr(services.create, "_create_rows", _deadlocking(services.create._create_rows, times=services.DEADLOCK_RETRIES))
    body = {"room": dojo.pk, "subject": "unlucky", "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat()}

    response = api_as(alice).post("/api/v1/reservations/", body, format="json")

    assert response.status_code == 409
    assert "at the same moment" in response.json()["message"]
    assert not Reservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_move_that_deadlocks_is_a_409_and_changes_nothing(alice, dojo, api_as, monkeypatch):
    start, end = days_ahead(1, 9), days_ahead(1, 10)
    created = api_as(alice).post(
        "/api/v1/reservations/", {"room": dojo.pk, "subject": "mine", "start": start.isoformat(), "end": end.isoformat()}, format="json",
    ).json()
    monkeypatch.setattr(services.update, "_update_rows", _deadlocking(services.update._update_rows, times=1))

    response = api_as(alice).patch(
        f"/api/v1/reservations/{created['id']}/",
        {"start": days_ahead(1, 11).isoformat(), "end": days_ahead(1, 12).isoformat()}, format="json",
    )

    assert response.status_code == 409
    row = Reservation.objects.get(pk=created["id"])
    assert (row.start, row.end) == (start, end)
