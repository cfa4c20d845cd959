"""The reservation admin's search at hundreds of thousands of reservations (issue 17): what admins
look for is found — words of the subject, the start of a room's name or of a person's username or
e-mail, a whole Graph event id or iCalUId — by lookups an index serves, with no other table
joined into the scan of reservations."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations.models import SyncEvent
from tests.factories import ReservationFactory, RoomFactory, UserFactory, days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(alice, bob, atlas, hq):
    dojo = RoomFactory(building=hq, name="Dojo")
    carol = UserFactory(username="carol", email="carol.chen@fabrikam.example")
    return {
        "standup": ReservationFactory(room=atlas, requested_for=alice, subject="Team stand-up", start=days_ahead(1, 9),
                                      event_id="AAMkADStandUp==", ical_uid="040000008200E00074C5B7101A82E008STANDUP"),
        "review": ReservationFactory(room=dojo, requested_for=bob, subject="Design review", start=days_ahead(1, 11), event_id="AAMkADReview=="),
        "retro": ReservationFactory(room=dojo, requested_for=carol, requested_by=alice, subject="Retro", start=days_ahead(2, 9)),
    }


def found(client, term: str) -> list[str]:
    response = client.get("/admin/reservations/reservation/", {"q": term})
    assert response.status_code == 200
    return sorted(r.subject for r in response.context["cl"].result_list)


@pytest.mark.parametrize(("term", "subjects"), [
    ("stand-up", ["Team stand-up"]),  # a word of the subject, anywhere in it
    ("review design", ["Design review"]),  # every word, in any order
    ('"design review"', ["Design review"]),  # a phrase in quotes
    ("Doj", ["Design review", "Retro"]),  # the start of the room's name
    ("atlas", ["Team stand-up"]),
    ("alice", ["Retro", "Team stand-up"]),  # requested for alice, or by her
    ("carol.chen@fabrikam.example", ["Retro"]),  # the whole e-mail
    ("carol.c", ["Retro"]),  # its start
    ("bo", ["Design review"]),  # the start of a username
    ("AAMkADReview==", ["Design review"]),  # a whole Graph event id
    ("040000008200E00074C5B7101A82E008STANDUP", ["Team stand-up"]),  # a whole iCalUId
])
def test_the_search_finds_what_admins_look_for(client, admin, booked, term, subjects):
    client.force_login(admin)
    assert found(client, term) == subjects


@pytest.mark.parametrize("term", ["ojo", "fabrikam", "ADReview", "Review=="])
def test_the_middle_of_a_room_name_an_e_mail_or_an_event_id_finds_nothing(client, admin, booked, term):
    """Those are looked up from their start (or whole): what an index finds."""
    client.force_login(admin)
    assert found(client, term) == []


def test_the_search_joins_no_table_into_the_scan_of_reservations(client, admin, booked):
    client.force_login(admin)
    with CaptureQueriesContext(connection) as captured:
        assert found(client, "Dojo") == ["Design review", "Retro"]
    searched = [q["sql"] for q in captured.captured_queries if re.search(r'FROM "reservations_reservation"', q["sql"]) and "LIKE" in q["sql"]]
    assert searched, "the search's queries"
    for sql in searched:
        where = sql.split(" WHERE ", 1)[1]
        # The rooms and people are looked up in their own tables (IN (SELECT U0.id ...)): no
        # condition on a joined room's or person's column.
        assert '"workplace_room"."' not in where and '"auth_user"."' not in where, sql
        assert where.count("IN (SELECT") == 3, sql
        # A leading wildcard only on the reservation's own subject.
        for match in re.finditer(r"(UPPER\(\S+\)) LIKE UPPER\('%", sql):
            assert match.group(1) == 'UPPER("reservations_reservation"."subject"::text)', sql
        assert '"reservations_reservation"."event_id" = \'Dojo\'' in sql


def test_sync_events_are_found_by_the_whole_event_id_of_their_reservation(client, admin, booked):
    event = SyncEvent.objects.create(reservation=booked["review"], type=SyncEvent.Type.CREATE)
    client.force_login(admin)
    listed = client.get("/admin/reservations/syncevent/", {"q": "AAMkADReview=="}).context["cl"].result_list
    assert [e.pk for e in listed] == [event.pk]
    assert list(client.get("/admin/reservations/syncevent/", {"q": "ADReview"}).context["cl"].result_list) == []


def test_the_changelist_says_what_the_search_finds(client, admin, booked):
    client.force_login(admin)
    html = client.get("/admin/reservations/reservation/").content.decode()
    assert "Search finds words of the subject; the start of a room&#x27;s name" in html
