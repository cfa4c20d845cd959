"""The portal's reservation detail page (/reservations/<id>/): what an employee sees about
one reservation, who may see it, attendees' answers (unknown for Outlook meetings) and a
fixed number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reservations.models import Attendee, Origin, ReservationSeries, State, SyncEvent, SyncState
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_owner_sees_everything_about_the_reservation(alice_client, alice, bob, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, subject="Design review", body="Agenda: mock-ups",
                           start=days_ahead(2, 9), end=days_ahead(2, 10, 30), sync_state=SyncState.SYNCED)
    Attendee.objects.create(reservation=r, email="bob@contoso.example", name="Bob", response=Attendee.Response.ACCEPTED)
    Attendee.objects.create(reservation=r, email="carol@contoso.example", response=Attendee.Response.NONE)

    html = page(alice_client.get(f"/reservations/{r.pk}/"))

    assert "Design review" in html and "Agenda: mock-ups" in html
    assert "Atlas" in html and "HQ" in html and "1st floor" in html
    assert "09:00" in html and "10:30" in html and "Europe/Berlin" in html  # building-local times
    assert "In sync" in html and "Confirmed" in html
    assert '<th scope="col">Answer</th>' in html and "Accepted" in html and "No answer yet" in html
    # Free/busy is filled in by the script; without it the column stays hidden.
    assert f'data-attendees-url="/api/v1/reservations/{r.pk}/attendees/"' in html
    assert '<th scope="col" data-availability hidden>Availability</th>' in html
    assert 'role="status" aria-live="polite"' in html
    assert f'href="/reservations/{r.pk}/change/"' in html and f'href="/reservations/{r.pk}/cancel/"' in html


def test_someone_else_s_reservation_is_404(client, outsider, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice)
    client.force_login(outsider)
    assert client.get(f"/reservations/{r.pk}/").status_code == 404
    assert client.get("/reservations/999999/").status_code == 404


def test_the_person_who_booked_for_someone_else_sees_it_too(client, alice, bob, atlas):
    r = ReservationFactory(room=atlas, requested_for=bob, requested_by=alice, subject="For Bob")
    client.force_login(alice)
    assert "booked by Alice" in page(client.get(f"/reservations/{r.pk}/"))


def test_sign_in_required(client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice)
    response = client.get(f"/reservations/{r.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_outlook_meetings_show_unknown_answers(alice_client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, origin=Origin.EXCHANGE, source="outlook")
    Attendee.objects.create(reservation=r, email="bob@contoso.example", response=Attendee.Response.ACCEPTED)
    html = page(alice_client.get(f"/reservations/{r.pk}/"))
    assert "Created in Outlook" in html
    assert 'class="response response-unknown">Unknown<' in html and "Accepted" not in html


def test_cancelled_reservation_shows_reason_and_offers_no_actions(alice_client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, state=State.CANCELLED, state_reason="Room closed for works",
                           cancelled_at=timezone.now())
    html = page(alice_client.get(f"/reservations/{r.pk}/"))
    assert "Room closed for works" in html and "Cancelled" in html
    assert f'href="/reservations/{r.pk}/change/"' not in html and f'href="/reservations/{r.pk}/cancel/"' not in html
    assert "This reservation is cancelled." in html


def test_sync_errors_and_series_are_explained(alice_client, alice, atlas):
    series = ReservationSeries.objects.create(
        room=atlas, subject="Weekly", frequency="weekly", interval=1, count=3, first_start=days_ahead(1, 9),
        first_end=days_ahead(1, 10), timezone="Europe/Berlin", requested_by=alice, requested_for=alice,
    )
    rows = [ReservationFactory(room=atlas, requested_for=alice, subject="Weekly", series=series, start=days_ahead(1 + 7 * n, 9))
            for n in range(3)]
    second = rows[1]
    second.sync_state, second.sync_error = SyncState.ERROR, "Graph said 403 ErrorAccessDenied"
    second.save()
    SyncEvent.objects.create(reservation=second, type="update", state="error", attempts=10, error="ErrorAccessDenied")

    html = page(alice_client.get(f"/reservations/{second.pk}/"))

    # Employees read a plain sentence; Graph's raw answer stays in the admin (issue 14, item 6).
    assert "Sync error" in html and "Outlook refused access to this calendar" in html and "Gave up after 10 attempts" in html
    assert "ErrorAccessDenied" not in html and "403" not in html
    assert 'id="series-info"' in html and "occurrence 2 of 3" in html and "3 still to come" in html


def test_my_reservations_links_each_row_to_its_page(alice_client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice, subject="Linked")
    assert f'href="/reservations/{r.pk}/"' in page(alice_client.get("/my/"))


def test_the_query_count_does_not_grow_with_attendees(alice_client, alice, atlas):
    r = ReservationFactory(room=atlas, requested_for=alice)
    Attendee.objects.create(reservation=r, email="a0@contoso.example")
    with CaptureQueriesContext(connection) as few:
        page(alice_client.get(f"/reservations/{r.pk}/"))
    for n in range(1, 30):
        Attendee.objects.create(reservation=r, email=f"a{n}@contoso.example")
    with CaptureQueriesContext(connection) as many:
        assert page(alice_client.get(f"/reservations/{r.pk}/")).count("<tr data-email=") == 30
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
