"""Check-in from each channel an employee uses — the portal (my reservations, the detail
page), the QR code / short URL on the door, the REST API — and the series no-show rule with
its email, confirm link and deadline. (The room panel is issue 15's other half.)"""

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone

from reservations.models import Reservation, ReservationSeries, State
from reservations.recurrence import Recurrence
from reservations.services import release
from tests.booking import book
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(dojo):
    dojo.checkin_required = True
    dojo.save()
    return dojo


@pytest.fixture
def now_meeting(alice, room):
    """Alice's meeting in Dojo that started 3 minutes ago (its window is open)."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=3)
    row = book(actor=alice, room=room, start=start + dt.timedelta(hours=2), hours=1, attendees=[{"email": "carol@contoso.example"}])
    # Booked yesterday, started three minutes ago (the service refuses to book the past).
    Reservation.objects.filter(pk=row.pk).update(start=start, end=start + dt.timedelta(hours=1), created_at=start - dt.timedelta(days=1))
    row.refresh_from_db()
    return row


def test_portal_my_reservations_and_detail_offer_check_in_and_it_is_recorded(client, alice, now_meeting, django_assert_max_num_queries):
    client.force_login(alice)
    page = client.get("/my/").content.decode()
    assert f'id="check-in-{now_meeting.pk}"' in page
    detail = client.get(f"/reservations/{now_meeting.pk}/").content.decode()
    assert 'id="detail-check-in"' in detail and "Open until" in detail

    response = client.post(f"/reservations/{now_meeting.pk}/check-in/", {"next": "/my/"})
    assert response.status_code == 302 and response["Location"] == "/my/"
    row = Reservation.objects.get(pk=now_meeting.pk)
    assert (row.checked_in_channel, row.checked_in_by) == ("portal", alice)
    page = client.get("/my/").content.decode()
    assert f'id="checked-in-{now_meeting.pk}"' in page and "Checked in to" in page


def test_my_reservations_costs_the_same_queries_with_more_rows(client, alice, room):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    base = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    book(actor=alice, room=room, start=base)
    with CaptureQueriesContext(connection) as few:
        client.get("/my/")
    for i in range(1, 8):
        book(actor=alice, room=room, start=base + dt.timedelta(hours=2 * i))
    with CaptureQueriesContext(connection) as many:
        client.get("/my/")
    assert len(many) == len(few)


def test_the_portal_refuses_outside_the_window_as_a_message(client, alice, room):
    client.force_login(alice)
    later = book(actor=alice, room=room, start=timezone.now() + dt.timedelta(hours=3))
    response = client.post(f"/reservations/{later.pk}/check-in/", follow=True)
    assert "Check-in opens at" in response.content.decode()
    assert Reservation.objects.get(pk=later.pk).checked_in_at is None


def test_portal_check_in_by_someone_else_is_a_404(client, outsider, now_meeting):
    client.force_login(outsider)
    assert client.post(f"/reservations/{now_meeting.pk}/check-in/").status_code == 404


def test_the_qr_url_signs_in_then_checks_in_the_employees_meeting(client, alice, room, now_meeting):
    url = f"/r/{room.pk}/"
    assert client.get(url).status_code == 302  # to the sign-in page, then back here
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert f'id="checkin-button-{now_meeting.pk}"' in page
    closes = timezone.localtime(now_meeting.start + dt.timedelta(minutes=15), room.building.tzinfo)
    assert f"Check-in closes at {closes:%H:%M}" in page  # the building's time, like the meeting's
    done = client.post(url, {"reservation": now_meeting.pk})
    assert done.status_code == 200 and "Checked in to" in done.content.decode()
    row = Reservation.objects.get(pk=now_meeting.pk)
    assert (row.checked_in_channel, row.checked_in_by) == ("qr", alice)


def test_the_qr_page_lets_an_attendee_check_in_and_tells_a_stranger_there_is_nothing(client, room, now_meeting, outsider):
    carol = UserFactory(username="carol")
    client.force_login(carol)
    assert client.post(f"/r/{room.pk}/", {"reservation": now_meeting.pk}).status_code == 200
    assert Reservation.objects.get(pk=now_meeting.pk).checked_in_by == carol
    client.force_login(outsider)
    assert 'id="checkin-none"' in client.get(f"/r/{room.pk}/").content.decode()
    refused = client.post(f"/r/{room.pk}/", {"reservation": now_meeting.pk})
    assert refused.status_code == 409 and 'id="checkin-error"' in refused.content.decode()
    assert client.post(f"/r/{room.pk}/", {"reservation": "x'; drop"}).status_code == 409


def test_the_api_checks_in_and_answers_with_the_check_in(alice_api, now_meeting):
    response = alice_api.post(f"/api/v1/reservations/{now_meeting.pk}/check_in/")
    assert response.status_code == 200, response.content
    body = response.json()["check_in"]
    assert body["required"] is True and body["channel"] == "api" and body["checked_in_at"]
    assert alice_api.post(f"/api/v1/reservations/{now_meeting.pk}/check_in/").status_code == 200  # again: harmless


def test_the_api_refusals_are_json(alice_api, bob_api, room, alice, now_meeting):
    assert bob_api.post(f"/api/v1/reservations/{now_meeting.pk}/check_in/").status_code == 404
    assert alice_api.post("/api/v1/reservations/999999/check_in/").status_code == 404
    later = book(actor=alice, room=room, start=timezone.now() + dt.timedelta(hours=3))
    refused = alice_api.post(f"/api/v1/reservations/{later.pk}/check_in/")
    assert refused.status_code == 409
    assert refused.json()["message"].startswith("Check-in opens at") and set(refused.json()["extra"]) == {"opens", "closes"}
    Reservation.objects.filter(pk=now_meeting.pk).update(state=State.RELEASED, released_at=timezone.now())
    gone = alice_api.post(f"/api/v1/reservations/{now_meeting.pk}/check_in/")
    assert gone.status_code == 409 and "released" in gone.json()["message"]


def test_rooms_in_the_api_say_whether_check_in_is_required(alice_api, room, atlas):
    rooms = {r["name"]: r["checkin_required"] for r in alice_api.get("/api/v1/rooms/").json()["results"]}
    assert rooms == {"Atlas": False, "Dojo": True}


# --- the series rule -------------------------------------------------------------------------


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a job and what it does after commit (its emails)."""
    def run(job, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return job(**kwargs)
    return run


def test_the_third_no_show_asks_the_organizer_and_the_confirm_link_keeps_the_series(client, alice, bob, room, settings, committed):
    first_start = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    first = book(actor=bob, room=room, start=first_start, requested_for=alice, subject="Daily stand-up",
                 recurrence=Recurrence(frequency="daily", interval=1, count=6))
    series = ReservationSeries.objects.get(pk=first.series_id)
    rows = list(series.occurrences.order_by("start"))
    mail.outbox.clear()
    for i in range(2):
        assert [r.pk for r in committed(release.release_due, now=rows[i].start + dt.timedelta(minutes=16))] == [rows[i].pk]
    assert [m.subject for m in mail.outbox] == ["Room released: Daily stand-up"] * 2  # no question yet
    mail.outbox.clear()

    with_commit = committed(release.release_due, now=rows[2].start + dt.timedelta(minutes=16))
    assert [r.pk for r in with_commit] == [rows[2].pk]
    asked = [m for m in mail.outbox if m.subject.startswith("Still need")]
    assert len(asked) == 1 and sorted(asked[0].to) == ["alice@contoso.example", "bob@contoso.example"]
    assert "last 3 meetings" in asked[0].body
    link = re.search(r"https?://\S+/series/\d+/confirm/", asked[0].body).group(0)
    series.refresh_from_db()
    assert series.noshow_confirm_by == rows[2].start + dt.timedelta(minutes=16, hours=24)

    path = link.split(settings.PUBLIC_BASE_URL, 1)[1]
    client.force_login(alice)
    assert 'id="series-confirm"' in client.get(path).content.decode()
    assert client.post(path).status_code == 302
    series.refresh_from_db()
    assert series.noshow_confirmed_at is not None and series.noshow_confirm_by is None
    # Past the deadline nothing more is released for the series.
    assert committed(release.release_unconfirmed_series, now=rows[2].start + dt.timedelta(days=2)) == []
    assert [r.state for r in series.occurrences.order_by("start")][3:] == [State.CONFIRMED] * 3


def test_unconfirmed_by_the_deadline_the_rest_of_the_series_is_released(alice, room, committed):
    first_start = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    first = book(actor=alice, room=room, start=first_start, subject="Weekly", recurrence=Recurrence(frequency="daily", interval=1, count=5))
    series = ReservationSeries.objects.get(pk=first.series_id)
    rows = list(series.occurrences.order_by("start"))
    for i in range(3):
        committed(release.release_due, now=rows[i].start + dt.timedelta(minutes=16))
    series.refresh_from_db()
    deadline = series.noshow_confirm_by
    assert committed(release.release_unconfirmed_series, now=deadline - dt.timedelta(minutes=1)) == []
    mail.outbox.clear()
    # The deadline passes between the 4th occurrence's end and the 5th: the 5th is released.
    done = committed(release.release_unconfirmed_series, now=deadline)
    assert [s.pk for s in done] == [series.pk]
    states = [r.state for r in series.occurrences.order_by("start")]
    assert states[:3] == [State.RELEASED] * 3 and states[-1] == State.RELEASED
    assert [m.subject for m in mail.outbox] == ["Series released: Weekly"]
    assert committed(release.release_unconfirmed_series, now=deadline + dt.timedelta(hours=1)) == []  # once


def test_someone_else_cannot_open_the_confirm_page(client, outsider, alice, room):
    first = book(actor=alice, room=room, start=timezone.now() + dt.timedelta(days=1), recurrence=Recurrence(frequency="daily", interval=1, count=2))
    client.force_login(outsider)
    assert client.get(f"/series/{first.series_id}/confirm/").status_code == 404
    assert client.post(f"/series/{first.series_id}/confirm/").status_code == 404
