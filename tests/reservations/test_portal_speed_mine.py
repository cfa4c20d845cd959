"""Issue 14's page-speed work on "my reservations" (/my/): a fixed, small number of queries for
3 rows or 50 (the page and its total in one), rows written in Python (reservations/views/mine.py)
with every feature of the template they replaced, user data escaped, and the state and sync
cells worded as the live-status poll words them."""

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reservations import portal_selectors
from reservations.models import Origin, Reservation, ReservationSeries, State, SyncEvent, SyncState
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

# The session, the user (with their profile), the page of reservations with its total, the
# provider (capabilities), the calendar feed, and the header's provider id (cached on a live
# site, but only outside a transaction: a test reads it each time); plus the requested-for
# people's profiles when some row is for someone else in a synced room whose meeting isn't
# placed yet (capabilities).
MY_QUERIES = 6


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def _series(room, user) -> ReservationSeries:
    start = days_ahead(1, 15)
    return ReservationSeries.objects.create(
        room=room, subject="Weekly", frequency="weekly", weekdays=[start.isoweekday()], count=60, first_start=start,
        first_end=start + dt.timedelta(hours=1), timezone="Europe/Berlin", requested_by=user, requested_for=user)


def _mixed(alice, bob, atlas, dojo, days, series):
    """Per day: an own row in a synced room (being sent, an attempt failed), one for Bob, an
    Outlook-made one, a sync error, a series occurrence."""
    for day in days:
        pending = ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(day, 8), end=days_ahead(day, 9),
                                     state=State.AWAITING_CONFIRMATION, sync_state=SyncState.PENDING)
        SyncEvent.objects.create(reservation=pending, type="create", state="new", attempts=2,
                                 next_attempt_at=timezone.now() + dt.timedelta(minutes=5), error="503 Service Unavailable")
        ReservationFactory(room=dojo, requested_for=bob, requested_by=alice, start=days_ahead(day, 9), end=days_ahead(day, 10))
        ReservationFactory(room=atlas, requested_for=alice, origin=Origin.EXCHANGE, sync_state=SyncState.SYNCED,
                           start=days_ahead(day, 10), end=days_ahead(day, 11))
        ReservationFactory(room=atlas, requested_for=alice, sync_state=SyncState.ERROR, sync_error="Graph said 403",
                           start=days_ahead(day, 11), end=days_ahead(day, 12))
        ReservationFactory(room=dojo, requested_for=alice, series=series, start=days_ahead(day, 15), end=days_ahead(day, 16))


def _queries(client, url="/my/", params=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return captured, response.content.decode()


def test_my_reservations_cost_the_same_few_queries_for_3_rows_or_50(alice_client, alice, bob, atlas, dojo,
                                                                   django_capture_on_commit_callbacks):
    series = _series(dojo, alice)
    ReservationFactory(room=dojo, requested_for=alice, start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=atlas, requested_for=alice, start=days_ahead(1, 10), end=days_ahead(1, 11))
    ReservationFactory(room=dojo, requested_for=alice, series=series, start=days_ahead(1, 15), end=days_ahead(1, 16))
    with django_capture_on_commit_callbacks(execute=True):  # the shared caches (provider, properties), as on a live site
        alice_client.get("/my/")
    few, page = _queries(alice_client)
    assert page.count('<tr id="rsv-') == 3 and len(few) <= MY_QUERIES, [q["sql"][:100] for q in few.captured_queries]

    _mixed(alice, bob, atlas, dojo, range(2, 22), series)  # 100 more rows: two pages
    many, page = _queries(alice_client)
    assert page.count('<tr id="rsv-') == 50 and "Page 1 of 3" in page
    assert len(many) <= MY_QUERIES + 1, [q["sql"][:150] for q in many.captured_queries]
    later, page = _queries(alice_client, params={"page": "2"})
    assert page.count('<tr id="rsv-') == 50 and len(later) == len(many)
    # Every kind of row drew from the one page query: no query per row.
    assert "for Bob" in page and "created in Outlook" in page and "Sync error" in page and "↻ series" in page
    assert "Attempt 2 of 10 didn't go through." in page


def test_my_reservations_pages_like_djangos_paginator(alice_client, alice, dojo):
    """Page 2, an out-of-range page (the last one, at the cost of a count), a bad number (the
    first), and "all" with cancelled and past rows: the same rows as the plain queryset."""
    for n in range(55):
        ReservationFactory(room=dojo, requested_for=alice, subject=f"Row {n:02}", start=days_ahead(1 + n // 8, 8 + n % 8),
                           end=days_ahead(1 + n // 8, 9 + n % 8))
    ReservationFactory(room=dojo, requested_for=alice, subject="Called off", state=State.CANCELLED,
                       start=days_ahead(1, 7), end=days_ahead(1, 8))
    ReservationFactory(room=dojo, requested_for=alice, subject="Last week", start=days_ahead(-5, 9), end=days_ahead(-5, 10))

    def subjects(params):
        return re.findall(r'<strong>([^<]+)</strong></a>', alice_client.get("/my/", params).content.decode())

    first = subjects({})
    assert first == [f"Row {n:02}" for n in range(50)]
    assert subjects({"page": "2"}) == [f"Row {n:02}" for n in range(50, 55)]
    assert subjects({"page": "9"}) == subjects({"page": "2"})
    assert subjects({"page": "x"}) == first == subjects({"page": "-3"})
    every = subjects({"show": "all"})
    assert every[:2] == ["Last week", "Called off"] and len(every) == 50
    assert subjects({"show": "all", "page": "2"}) == [f"Row {n:02}" for n in range(48, 55)]


@pytest.mark.parametrize("show", ["upcoming", "all"])
@pytest.mark.parametrize("number", ["1", "2", "7"])
def test_the_embedded_defaults_orm_page_matches_the_hand_written_query(alice, bob, atlas, dojo, show, number, monkeypatch):
    """SQLite (`make run`) pages through the ORM: the same rows, total and latest sync events."""
    series = _series(dojo, alice)
    _mixed(alice, bob, atlas, dojo, range(1, 14), series)
    series_event = SyncEvent.objects.create(series=series, type="update", state="new", attempts=1, error="409")
    ReservationFactory(room=dojo, requested_for=alice, state=State.CANCELLED, start=days_ahead(2, 7), end=days_ahead(2, 8))

    def page_of():
        page = portal_selectors.my_reservations_page(user=alice, show=show, number=number, per_page=25)
        return page.number, page.paginator.count, [
            (r.pk, r.room.name, r.room.building.name, r.requested_for.username, r.requested_by.username,
             r.sync_event_state, r.sync_event_attempts, r.sync_event_error, r.sync_event_type, r.sync_event_next_attempt_at)
            for r in page.object_list]

    by_hand = page_of()
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert page_of() == by_hand
    number_shown, total, rows = by_hand
    expected = portal_selectors.my_reservations(user=alice, show=show).count()
    assert total == expected and number_shown == min(int(number), 3) and len(rows) == min(25, expected - 25 * (number_shown - 1))
    in_series = [row for row in rows if Reservation.objects.get(pk=row[0]).series_id]
    assert in_series and all(row[7] == series_event.error for row in in_series)


def test_user_data_is_escaped_on_my_reservations(alice_client, alice, bob, atlas):
    bob.first_name = "<b>Bob</b>"
    bob.save()
    atlas.name = "Atlas <i>room</i>"
    atlas.save()
    ReservationFactory(room=atlas, requested_for=alice, subject='<script>alert("x")</script>', start=days_ahead(1, 9), end=days_ahead(1, 10))
    ReservationFactory(room=atlas, requested_for=bob, requested_by=alice, subject="For Bob", state=State.REJECTED,
                       state_reason="<img src=x onerror=alert(1)>", start=days_ahead(1, 10), end=days_ahead(1, 11))
    page = alice_client.get("/my/").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'aria-label="Select “&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;”"' in page
    assert "<b>Bob</b>" not in page and "for &lt;b&gt;Bob&lt;/b&gt;" in page
    assert "<i>room</i>" not in page and "Atlas &lt;i&gt;room&lt;/i&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_rows_keep_their_links_checks_and_buttons(alice_client, alice, bob, atlas, dojo):
    """What the template drew: the select box (disabled with the reason), the subject's link,
    check-in, change and cancel (a series' cancel asks which), the live-status cells."""
    now = timezone.now()
    open_now = ReservationFactory(room=dojo, requested_for=alice, subject="Now", start=now + dt.timedelta(minutes=5),
                                  end=now + dt.timedelta(minutes=65))
    outlook = ReservationFactory(room=atlas, requested_for=alice, subject="From Outlook", origin=Origin.EXCHANGE,
                                 start=days_ahead(2, 9), end=days_ahead(2, 10))
    rejected = ReservationFactory(room=dojo, requested_for=alice, subject="No", state=State.REJECTED, start=days_ahead(2, 11), end=days_ahead(2, 12))
    occurrence = ReservationFactory(room=dojo, requested_for=alice, series=_series(dojo, alice), start=days_ahead(3, 15), end=days_ahead(3, 16))
    page = alice_client.get("/my/").content.decode()

    assert f'<a class="subject" href="/reservations/{open_now.pk}/">' in page
    assert f'id="check-in-{open_now.pk}"' in page and f'formaction="/reservations/{open_now.pk}/check-in/"' in page
    assert 'name="next" value="/my/"' in page
    assert f'href="/reservations/{open_now.pk}/change/"' in page and f'<a class="btn btn-small btn-danger-ghost" href="/reservations/{open_now.pk}/cancel/" data-dialog>Cancel</a>' in page
    assert f'href="/reservations/{occurrence.pk}/cancel/" data-dialog>Cancel…</a>' in page
    assert f'aria-describedby="edit-reason-{outlook.pk}">Change</button>' in page
    assert f'id="edit-reason-{outlook.pk}">This meeting was created in Outlook: change it in Outlook.</p>' in page
    assert f'id="sel-{rejected.pk}" aria-label="Select “No”" disabled title="This reservation is rejected."' in page
    assert f'aria-describedby="cancel-reason-{rejected.pk}"' not in page  # rejected: no buttons
    assert f'<td data-label="Status" data-live="state" data-rsv="{rejected.pk}">' in page
    assert f'<tr id="rsv-{rejected.pk}" data-state="rejected" data-sync="not_synced">' in page
    assert 'id="select-all" data-select-all="ids" >' in page and 'id="cancel-selected" data-dialog' in page
    for url in re.findall(r'(?:href|formaction)="(/reservations/\d+/[^"]*)"', page):
        assert alice_client.get(url).status_code in (200, 405), url


def test_the_rows_status_cells_are_the_live_polls(alice_client, alice, admin, atlas, dojo):
    """The state and sync cells /my/ draws are the ones /my/status/ sends for the same rows
    (the page's script swaps them in); Graph's raw answer only for admins."""
    awaiting = ReservationFactory(room=atlas, requested_for=alice, state=State.AWAITING_CONFIRMATION, approval_state="awaiting_approval",
                                  sync_state=SyncState.PENDING, start=days_ahead(1, 8), end=days_ahead(1, 9))
    failing = ReservationFactory(room=atlas, requested_for=alice, sync_state=SyncState.ERROR, sync_error="Graph said 503 <b>",
                                 start=days_ahead(1, 9), end=days_ahead(1, 10))
    SyncEvent.objects.create(reservation=failing, type="create", state="error", attempts=1, error="503")
    conflicted = ReservationFactory(room=dojo, requested_for=alice, state=State.CONFLICTED, state_reason="Gone from the room's calendar.",
                                    start=days_ahead(1, 10), end=days_ahead(1, 11))
    ids = [awaiting.pk, failing.pk, conflicted.pk]
    page = alice_client.get("/my/").content.decode()
    status = json.loads(alice_client.get("/my/status/", {"ids": ",".join(map(str, ids))}).content)["reservations"]
    assert [row["id"] for row in status] == ids
    for row in status:
        assert f'data-live="state" data-rsv="{row["id"]}">{row["state_html"]}</td>' in page
        assert f'data-live="sync" data-rsv="{row["id"]}">{row["sync_html"]}</td>' in page
    assert "Awaiting approval</div>" in page and "Gave up after 1 attempt;" in page and "Gone from the room&#x27;s calendar." in page
    assert "Outlook's answer (admins)" not in page and "Graph said 503" not in page

    failing.requested_by = admin
    failing.save()
    alice_client.force_login(admin)
    page = alice_client.get("/my/").content.decode()
    assert "Outlook's answer (admins)</summary>Graph said 503 &lt;b&gt;</details>" in page
