"""iCalendar feeds at secret URLs: what a calendar app reads (parsed back with icalendar),
privacy of room feeds, rotation, the token at rest, conditional GET, 404s that reveal
nothing, and a query count that doesn't grow with the rows."""

import datetime as dt
import hashlib

import icalendar
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reservations import feeds, ical, services
from reservations.models import (
    Attendee,
    CalendarFeed,
    Origin,
    Reservation,
    ReservationSeries,
    State,
)
from reservations.recurrence import Recurrence
from reservations.services import release
from tests.booking import book
from tests.factories import ReservationFactory, RoomFactory, days_ahead
from workplace.panels import room_panel_create

pytestmark = pytest.mark.django_db


def feed_path(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def parse(response) -> icalendar.Calendar:
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


def events(cal) -> dict[str, icalendar.Event]:
    return {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}


@pytest.fixture
def alice_feed(alice):
    link = feeds.calendar_feed_rotate(user=alice)
    return f"/feeds/{link.token}.ics"


def test_a_user_feed_lists_their_reservations_as_valid_icalendar(client, alice, bob, atlas, alice_feed, settings):
    settings.PUBLIC_BASE_URL = "https://rooms.contoso.example"
    mine = ReservationFactory(room=atlas, requested_for=alice, subject="Design review", start=days_ahead(2, 9), body="Bring the mock-ups")
    Attendee.objects.create(reservation=mine, email="bob@contoso.example")
    ReservationFactory(room=atlas, requested_for=bob, requested_by=alice, subject="Booked for Bob", start=days_ahead(2, 11))
    ReservationFactory(room=atlas, requested_for=alice, subject="Waiting", start=days_ahead(3, 9), state=State.AWAITING_CONFIRMATION)
    ReservationFactory(room=atlas, requested_for=bob, subject="Bob's own", start=days_ahead(2, 13))
    ReservationFactory(room=atlas, requested_for=alice, subject="Too far", start=days_ahead(400, 9))
    ReservationFactory(room=atlas, requested_for=alice, subject="Long ago", start=days_ahead(-40, 9))

    cal = parse(client.get(alice_feed))

    assert str(cal["VERSION"]) == "2.0" and "Workplace reservations" in str(cal["PRODID"])
    assert str(cal["X-WR-CALNAME"]) == "Room reservations – Alice"
    found = events(cal)
    assert set(found) == {"Design review", "Booked for Bob", "Waiting"}
    review = found["Design review"]
    assert str(review["UID"]) == f"reservation-{mine.pk}@rooms.contoso.example"
    assert review.decoded("DTSTART") == days_ahead(2, 9).astimezone(dt.UTC)
    assert review.decoded("DTEND") == days_ahead(2, 10).astimezone(dt.UTC)
    assert review["DTSTART"].to_ical().endswith(b"Z") and b"VTIMEZONE" not in cal.to_ical()  # UTC times
    assert str(review["LOCATION"]) == "Atlas, 1st floor, HQ"
    assert str(review["STATUS"]) == "CONFIRMED" and str(found["Waiting"]["STATUS"]) == "TENTATIVE"
    assert "Bring the mock-ups" in str(review["DESCRIPTION"]) and "bob@contoso.example" in str(review["DESCRIPTION"])
    assert str(review["URL"]).endswith(f"/reservations/{mine.pk}/")
    for key in ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED"):
        assert key in review
    # The same rows give the same bytes (the ETag depends on it).
    assert client.get(alice_feed).content == client.get(alice_feed).content


def test_recently_cancelled_reservations_stay_as_cancelled_events_and_old_ones_drop_out(client, alice, atlas, alice_feed):
    recent = ReservationFactory(room=atlas, requested_for=alice, subject="Called off", start=days_ahead(2, 9))
    recent.state, recent.cancelled_at = State.CANCELLED, timezone.now()
    recent.save()
    ReservationFactory(room=atlas, requested_for=alice, subject="Cancelled long ago", start=days_ahead(5, 9),
                       state=State.CANCELLED, cancelled_at=timezone.now() - dt.timedelta(days=60))
    ReservationFactory(room=atlas, requested_for=alice, subject="Declined by the room", start=days_ahead(3, 9), state=State.REJECTED)

    found = events(parse(client.get(alice_feed)))

    assert set(found) == {"Called off", "Declined by the room"}
    assert {str(e["STATUS"]) for e in found.values()} == {"CANCELLED"}
    assert str(found["Called off"]["TRANSP"]) == "TRANSPARENT"


def test_a_change_bumps_sequence_and_last_modified_and_keeps_the_uid(client, alice, atlas, alice_feed):
    r = ReservationFactory(room=atlas, requested_for=alice, subject="Planning", start=days_ahead(2, 9))
    before = events(parse(client.get(alice_feed)))["Planning"]
    Reservation.objects.filter(pk=r.pk).update(start=days_ahead(2, 10), end=days_ahead(2, 11), updated_at=timezone.now() + dt.timedelta(seconds=5))
    after = events(parse(client.get(alice_feed)))["Planning"]
    assert str(after["UID"]) == str(before["UID"])
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert after.decoded("LAST-MODIFIED") > before.decoded("LAST-MODIFIED")


def test_a_room_feed_shows_reserved_and_nothing_about_people_by_default(client, alice, bob, atlas, settings):
    link = feeds.calendar_feed_rotate(room=atlas)
    ReservationFactory(room=atlas, requested_for=alice, subject="Secret merger talks", body="Confidential", start=days_ahead(1, 9))
    ReservationFactory(room=atlas, requested_for=bob, subject="Bob's 1:1", start=days_ahead(1, 11))
    ReservationFactory(room=atlas, requested_for=bob, subject="Cancelled one", start=days_ahead(1, 13), state=State.CANCELLED)
    ReservationFactory(room=RoomFactory(building=atlas.building, name="Other"), requested_for=bob, start=days_ahead(1, 9))

    response = client.get(f"/feeds/{link.token}.ics")
    cal = parse(response)

    assert str(cal["X-WR-CALNAME"]) == "Atlas (HQ)"
    vevents = list(cal.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in vevents] == ["Reserved", "Reserved"]
    text = response.content.decode()
    for private in ("merger", "Confidential", "alice", "Alice", "bob", "Bob", "DESCRIPTION", "ATTENDEE", "ORGANIZER"):
        assert private not in text

    settings.CALENDAR_FEED_ROOM_SUBJECTS = True  # feeds may show subjects, but this room hides them
    assert [str(e["SUMMARY"]) for e in parse(client.get(f"/feeds/{link.token}.ics")).walk("VEVENT")] == ["Reserved", "Reserved"]
    atlas.show_subjects = True
    atlas.save(update_fields=["show_subjects"])
    cal = parse(client.get(f"/feeds/{link.token}.ics"))
    assert [str(e["SUMMARY"]) for e in cal.walk("VEVENT")] == ["Secret merger talks", "Bob's 1:1"]
    assert "Confidential" not in client.get(f"/feeds/{link.token}.ics").content.decode()


def test_the_token_is_stored_hashed_and_encrypted_never_in_clear(alice):
    link = feeds.calendar_feed_rotate(user=alice)
    assert len(link.token) >= 43  # 32 random bytes, urlsafe base64
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM reservations_calendarfeed WHERE id = %s", [link.feed.pk])
        raw = cursor.fetchone()
    assert not any(isinstance(v, str) and link.token in v for v in raw)
    assert hashlib.sha256(link.token.encode()).hexdigest() in raw
    assert feeds.calendar_feed_token(feed=CalendarFeed.objects.get(pk=link.feed.pk)) == link.token


def test_rotating_stops_the_old_url_at_once(client, alice, atlas):
    first = feeds.calendar_feed_rotate(user=alice)
    assert first.created and client.get(f"/feeds/{first.token}.ics").status_code == 200
    second = feeds.calendar_feed_rotate(user=alice)
    assert not second.created and second.feed.pk == first.feed.pk and second.feed.rotated_at
    assert client.get(f"/feeds/{first.token}.ics").status_code == 404
    assert client.get(f"/feeds/{second.token}.ics").status_code == 200
    assert CalendarFeed.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize("token", ["nope", "A" * 43, "x" * 200, "%00" * 20])
def test_unknown_or_malformed_tokens_get_the_same_bare_404(client, alice, token):
    feeds.calendar_feed_rotate(user=alice)
    response = client.get(f"/feeds/{token}.ics")
    assert response.status_code == 404
    assert response.content == b"Not found.\n" and response["Cache-Control"] == "no-store"


def test_a_deactivated_employee_s_feed_is_gone(client, alice, alice_feed):
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert client.get(alice_feed).status_code == 404


def test_conditional_get_answers_304_until_the_content_changes(client, alice, atlas, alice_feed):
    r = ReservationFactory(room=atlas, requested_for=alice, subject="Planning", start=days_ahead(2, 9))
    first = client.get(alice_feed)
    etag, last_modified = first["ETag"], first["Last-Modified"]
    assert etag.startswith('"') and "no-cache" in first["Cache-Control"]

    again = client.get(alice_feed, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert client.get(alice_feed, HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304

    Reservation.objects.filter(pk=r.pk).update(subject="Planning (moved)", updated_at=timezone.now())
    changed = client.get(alice_feed, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "Planning (moved)" in changed.content.decode()


def test_fetches_are_recorded_without_a_write_on_every_poll(client, alice, alice_feed):
    client.get(alice_feed)
    feed = CalendarFeed.objects.get(user=alice)
    assert feed.last_accessed_at and feed.content_hash and feed.content_changed_at
    with CaptureQueriesContext(connection) as polled:
        client.get(alice_feed)
    assert not [q for q in polled.captured_queries if q["sql"].startswith("UPDATE")]


def test_the_query_count_does_not_grow_with_the_rows(client, alice, bob, atlas, hq, alice_feed):
    def add(days):
        for n in days:
            room = RoomFactory(building=hq, name=f"R{n}")
            r = ReservationFactory(room=room, requested_for=alice, requested_by=bob, start=days_ahead(n, 9), series=None)
            Attendee.objects.create(reservation=r, email=f"p{n}@contoso.example")

    add(range(1, 3))
    client.get(alice_feed)
    with CaptureQueriesContext(connection) as few:
        assert len(list(parse(client.get(alice_feed)).walk("VEVENT"))) == 2
    add(range(3, 60))
    client.get(alice_feed)
    with CaptureQueriesContext(connection) as many:
        assert len(list(parse(client.get(alice_feed)).walk("VEVENT"))) == 59
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_outlook_meetings_say_so_in_the_description(client, alice, atlas, alice_feed):
    ReservationFactory(room=atlas, requested_for=alice, subject="From Outlook", origin=Origin.EXCHANGE, start=days_ahead(2, 9))
    assert "Created in Outlook" in str(events(parse(client.get(alice_feed)))["From Outlook"]["DESCRIPTION"])


# --- portal ------------------------------------------------------------------------------


def test_my_reservations_shows_the_feed_link_with_copy_and_reset(client, alice):
    client.force_login(alice)
    page = client.get("/my/").content.decode()
    assert 'id="feed-create"' in page and 'id="feed-url"' not in page

    response = client.post("/my/feed/", {"action": "create"}, follow=True)
    page = response.content.decode()
    assert "Your calendar feed link is ready." in page
    token = feeds.calendar_feed_token(feed=CalendarFeed.objects.get(user=alice))
    assert f"/feeds/{token}.ics" in page and 'data-copy="feed-url"' in page and "webcal://" in page
    assert client.get(f"/feeds/{token}.ics").status_code == 200

    page = client.post("/my/feed/", {"action": "reset"}, follow=True).content.decode()
    assert "the old one stopped working" in page
    assert client.get(f"/feeds/{token}.ics").status_code == 404

    client.post("/my/feed/", {"action": "delete"})
    assert not CalendarFeed.objects.filter(user=alice).exists()


def test_the_feed_actions_need_sign_in_and_post(client):
    assert client.post("/my/feed/", {"action": "create"}).status_code == 302
    assert not CalendarFeed.objects.exists()


# --- REST API ---------------------------------------------------------------------------


def test_api_creates_then_rotates_my_feed_returning_the_url(alice_api, anonymous_api, client):
    created = alice_api.post("/api/v1/feeds/me/")
    assert created.status_code == 201, created.content
    url = created.json()["url"]
    assert created.json()["kind"] == "user" and url.endswith(".ics")
    assert client.get(feed_path(url)).status_code == 200

    rotated = alice_api.post("/api/v1/feeds/me/")
    assert rotated.status_code == 200 and rotated.json()["url"] != url and rotated.json()["rotated_at"]
    assert client.get(feed_path(url)).status_code == 404
    assert alice_api.get("/api/v1/feeds/me/").json()["url"] == rotated.json()["url"]

    assert alice_api.delete("/api/v1/feeds/me/").status_code == 204
    gone = alice_api.get("/api/v1/feeds/me/")
    assert gone.status_code == 404 and set(gone.json()) == {"message", "extra"}
    assert anonymous_api.post("/api/v1/feeds/me/").status_code == 401


# --- admin ---------------------------------------------------------------------------------


def test_admin_creates_and_resets_room_feeds_and_lists_them(client, admin, alice, atlas):
    client.force_login(admin)
    response = client.post("/admin/reservations/calendarfeed/add/", {"room": atlas.pk}, follow=True)
    assert response.status_code == 200
    feed = CalendarFeed.objects.get(room=atlas)
    token = feeds.calendar_feed_token(feed=feed)
    assert f"/feeds/{token}.ics" in response.content.decode()

    feeds.calendar_feed_rotate(user=alice)
    listing = client.get("/admin/reservations/calendarfeed/").content.decode()
    assert "Atlas, HQ (room)" in listing and "Alice (employee)" in listing
    assert f"/feeds/{token}.ics" in client.get(f"/admin/reservations/calendarfeed/{feed.pk}/change/").content.decode()
    alice_feed = CalendarFeed.objects.get(user=alice)
    alice_token = feeds.calendar_feed_token(feed=alice_feed)
    assert alice_token not in client.get(f"/admin/reservations/calendarfeed/{alice_feed.pk}/change/").content.decode()

    client.post("/admin/reservations/calendarfeed/", {"action": "reset_links", "_selected_action": [feed.pk, alice_feed.pk]})
    assert client.get(f"/feeds/{token}.ics").status_code == 404
    assert client.get(f"/feeds/{alice_token}.ics").status_code == 404


# --- releases: a subscriber's calendar learns of them ------------------------------------------


def by_uid(cal) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


@pytest.fixture
def checkin_room(dojo):
    dojo.checkin_required = True
    dojo.save(update_fields=["checkin_required"])
    return dojo


@pytest.fixture
def both_feeds(alice, checkin_room):
    """Alice's feed and the room's: the paths a calendar app polls."""
    return [f"/feeds/{feeds.calendar_feed_rotate(user=alice).token}.ics", f"/feeds/{feeds.calendar_feed_rotate(room=checkin_room).token}.ics"]


def assert_cancelled_in_place(before: icalendar.Event, after: icalendar.Event) -> None:
    """RFC 5545 §3.8.7.4 / §3.8.1.11: the same event (UID, RECURRENCE-ID) revised (a higher
    SEQUENCE, a later DTSTAMP) to STATUS:CANCELLED, no longer blocking time."""
    assert str(before["STATUS"]) in ("CONFIRMED", "TENTATIVE")
    assert str(after["UID"]) == str(before["UID"])
    assert after.get("RECURRENCE-ID") == before.get("RECURRENCE-ID")
    assert str(after["STATUS"]) == "CANCELLED" and str(after["TRANSP"]) == "TRANSPARENT"
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert after.decoded("DTSTAMP") > before.decoded("DTSTAMP")
    assert after.decoded("DTSTART") == before.decoded("DTSTART") and after.decoded("DTEND") == before.decoded("DTEND")


def test_a_no_show_released_by_the_job_stays_in_both_feeds_as_cancelled(client, alice, checkin_room, both_feeds, django_capture_on_commit_callbacks):
    missed = book(actor=alice, room=checkin_room, start=days_ahead(1, 9), subject="Ghost meeting")
    kept = book(actor=alice, room=checkin_room, start=days_ahead(1, 11), subject="Real meeting")
    before = [by_uid(parse(client.get(path))) for path in both_feeds]

    with django_capture_on_commit_callbacks(execute=True):
        assert [r.pk for r in release.release_due(now=missed.start + dt.timedelta(minutes=16))] == [missed.pk]

    for path, old in zip(both_feeds, before, strict=True):
        new = by_uid(parse(client.get(path)))
        assert set(new) == set(old)  # nothing dropped out
        uid = next(u for u in new if u.startswith(f"reservation-{missed.pk}@"))
        assert_cancelled_in_place(old[uid], new[uid])
        other = next(u for u in new if u.startswith(f"reservation-{kept.pk}@"))
        assert str(new[other]["STATUS"]) == "CONFIRMED" and new[other]["SEQUENCE"] == old[other]["SEQUENCE"]
    mine = by_uid(parse(client.get(both_feeds[0])))
    assert "Released: nobody checked in" in str(mine[f"reservation-{missed.pk}@{ical.uid_host()}"]["DESCRIPTION"])


def test_one_released_occurrence_of_a_series_is_cancelled_alone_then_the_unconfirmed_rest(client, alice, checkin_room, both_feeds, django_capture_on_commit_callbacks):
    first = book(actor=alice, room=checkin_room, start=days_ahead(1, 9), subject="Daily", recurrence=Recurrence(frequency="daily", interval=1, count=5))
    rows = list(Reservation.objects.filter(series_id=first.series_id).order_by("start"))
    before = [by_uid(parse(client.get(path))) for path in both_feeds]
    uids = [f"reservation-{r.pk}@{ical.uid_host()}" for r in rows]
    assert all(set(uids) <= set(old) for old in before)

    with django_capture_on_commit_callbacks(execute=True):
        release.release_due(now=rows[0].start + dt.timedelta(minutes=16))
    for path, old in zip(both_feeds, before, strict=True):
        new = by_uid(parse(client.get(path)))
        assert_cancelled_in_place(old[uids[0]], new[uids[0]])
        assert [str(new[u]["STATUS"]) for u in uids[1:]] == ["CONFIRMED"] * 4
        assert [new[u]["SEQUENCE"] for u in uids[1:]] == [old[u]["SEQUENCE"] for u in uids[1:]]

    # Two more no-shows, no confirmation by the deadline: the rest is released, and cancelled in the feeds.
    with django_capture_on_commit_callbacks(execute=True):
        for row in rows[1:3]:
            release.release_due(now=row.start + dt.timedelta(minutes=16))
        deadline = ReservationSeries.objects.get(pk=first.series_id).noshow_confirm_by
        release.release_unconfirmed_series(now=deadline)
    assert set(Reservation.objects.filter(series_id=first.series_id).values_list("state", flat=True)) == {State.RELEASED}
    for path, old in zip(both_feeds, before, strict=True):
        new = by_uid(parse(client.get(path)))
        for uid in uids:
            assert_cancelled_in_place(old[uid], new[uid])


def test_ended_early_at_the_panel_the_feeds_shorten_a_product_meeting_and_cancel_an_outlook_one(client, alice, checkin_room, both_feeds):
    now = timezone.now().replace(second=0, microsecond=0)
    ours = book(actor=alice, room=checkin_room, start=days_ahead(1, 9), subject="Ours")
    # Booked yesterday, under way since 10 minutes ago (the service refuses to book the past).
    Reservation.objects.filter(pk=ours.pk).update(start=now - dt.timedelta(minutes=10), end=now + dt.timedelta(minutes=50),
                                                 created_at=now - dt.timedelta(days=1), updated_at=now - dt.timedelta(days=1))
    outlook = ReservationFactory(room=checkin_room, requested_for=alice, requested_by=alice, subject="From Outlook", origin=Origin.EXCHANGE,
                                 start=now + dt.timedelta(hours=2), end=now + dt.timedelta(hours=3))
    Reservation.objects.filter(pk=outlook.pk).update(created_at=now - dt.timedelta(days=1), updated_at=now - dt.timedelta(days=1))
    panel, _ = room_panel_create(room=checkin_room, name="Dojo door")
    before = [by_uid(parse(client.get(path))) for path in both_feeds]
    uid_ours, uid_outlook = (f"reservation-{r.pk}@{ical.uid_host()}" for r in (ours, outlook))

    services.panel_end_early(panel=panel, reservation_id=ours.pk, now=now + dt.timedelta(seconds=30))
    services.panel_end_early(panel=panel, reservation_id=outlook.pk, now=outlook.start + dt.timedelta(minutes=5))

    for path, old in zip(both_feeds, before, strict=True):
        new = by_uid(parse(client.get(path)))
        shortened = new[uid_ours]
        assert str(shortened["STATUS"]) == "CONFIRMED" and shortened.decoded("DTEND") == (now + dt.timedelta(minutes=1)).astimezone(dt.UTC)
        assert int(shortened["SEQUENCE"]) > int(old[uid_ours]["SEQUENCE"])
        assert_cancelled_in_place(old[uid_outlook], new[uid_outlook])
