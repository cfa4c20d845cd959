"""Issue 18 item 1: the system credential is chosen per target mailbox.

The delegated user (reservations@) is a delegate on the rooms only (the emulator's
``delegates`` per mailbox, as Exchange's delegate permissions): connecting it must not
break Normal mode, whose meetings live in the employees' own calendars. Where no
credential can write there, the mode table's fallback applies (the organizer account
organizes, the employee is invited), recorded on the sync event; a refusal for good never
leaves a reservation silently awaiting, and the admins hear of each cause once.

Real HTTPS to the emulator, real msal (the delegated user connected through the
authorization-code sign-in), eager Celery."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail

from exchange_auth import credentials
from exchange_auth.models import CalendarProvider
from exchange_auth.views import redirect_uri
from graph_emulator.seed import DEMO_CLIENT_ID
from reservations import services
from reservations.models import State, SyncEvent
from tests.exchange_auth.conftest import sign_in
from tests.factories import UserFactory, days_ahead

pytestmark = pytest.mark.django_db

BOB = "bob@contoso.example"
ORGANIZER = "reservations@contoso.example"


@pytest.fixture
def delegated(provider, emulator, emulator_server):
    """The admin used "Connect delegated user": reservations@, a delegate of every room."""
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=ORGANIZER)
    location = sign_in(emulator_server, flow["auth_uri"], login=ORGANIZER)
    credentials.connect_delegated_user(provider, credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query))))
    provider.refresh_from_db()
    assert credentials.system_token(provider).kind == "delegated"
    return provider


def book(capture, *, actor, room, start=None):
    start = start or days_ahead(2, 10)
    with capture(execute=True):
        r = services.reservation_create(actor=actor, room=room, start=start, end=start + dt.timedelta(hours=1), subject="Planning")
    r.refresh_from_db()
    return r


def event_posts(emulator) -> list[dict]:
    return [e for e in emulator.request_log()["entries"] if e["method"] == "POST" and e["path"].endswith("/events")]


def test_normal_mode_with_the_delegated_user_writes_the_employees_calendar_app_only(delegated, mode, emulator, bob, atlas, django_capture_on_commit_callbacks):
    mode("Normal")
    emulator.clear_request_log()

    r = book(django_capture_on_commit_callbacks, actor=bob, room=atlas)

    assert r.event_id, r.sync_events.last().error
    assert (r.mailbox, r.organizer, r.sync_mailbox) == (BOB, BOB, "user")
    assert r.state == State.AWAITING_CONFIRMATION  # the room's answer follows, as always
    [post] = event_posts(emulator)
    assert post["status"] == 201 and post["user"] is None and post["app"] == DEMO_CLIENT_ID  # app-only, not the delegated user
    event = r.sync_events.get(type=SyncEvent.Type.CREATE)
    assert event.response["credential"] == "app"
    assert "not a delegate of bob@contoso.example" in event.response["credential_why"]


def test_strict_mode_keeps_the_delegated_user_in_its_own_mailbox(delegated, mode, emulator, bob, atlas, reservations_user, django_capture_on_commit_callbacks):
    mode("Strict")
    emulator.clear_request_log()

    r = book(django_capture_on_commit_callbacks, actor=bob, room=atlas)

    assert (r.mailbox, r.sync_mailbox) == (ORGANIZER, "other")
    [post] = event_posts(emulator)
    assert post["status"] == 201 and post["user"] == ORGANIZER
    assert r.sync_events.get(type=SyncEvent.Type.CREATE).response["credential"] == "delegated"


def test_where_nothing_can_write_the_employees_calendar_the_organizer_account_organizes(delegated, mode, emulator, bob, atlas, django_capture_on_commit_callbacks):
    """The application access policy leaves bob's mailbox out: app-only is refused there (403),
    the delegated user is no delegate of it. The mode table's fallback: the organizer account
    organizes, bob is invited — and the sync event says why."""
    mode("Normal")
    emulator.set_access_policy(DEMO_CLIENT_ID, [ORGANIZER, "atlas@contoso.example"])
    emulator.clear_request_log()

    r = book(django_capture_on_commit_callbacks, actor=bob, room=atlas)

    assert r.event_id, r.sync_events.last().error
    assert (r.mailbox, r.organizer, r.sync_mailbox) == (ORGANIZER, ORGANIZER, "other")
    statuses = [(p["path"].split("/")[3], p["status"]) for p in event_posts(emulator)]
    assert statuses == [(BOB, 403), (ORGANIZER, 201)]
    event = r.sync_events.get(type=SyncEvent.Type.CREATE)
    assert "organizer account reservations@contoso.example organizes" in event.response["fallback"]
    assert "app refused by Graph on bob@contoso.example (403" in event.response["credential_why"]
    attendees = {a["emailAddress"]["address"]: a["type"] for a in event.request_payload["attendees"]}
    assert attendees[BOB] == "required"


def test_a_refusal_for_good_ends_visibly_and_the_admins_hear_once_per_cause(provider, mode, emulator, settings, atlas, django_capture_on_commit_callbacks, api_as):
    """No organizer account to fall back to and bob's mailbox outside the access policy: both
    bookings are refused. Each ends rejected with a sentence bob understands (the API shows it);
    the admins get one mail for the one cause."""
    settings.ADMINS = [("Ops", "ops@contoso.example")]
    CalendarProvider.objects.filter(pk=provider.pk).update(organizer_account="", delegated_user_email="")
    provider.refresh_from_db()
    UserFactory(username="admin", is_staff=True)
    bob = UserFactory(username="bob")
    mode("Normal")
    emulator.set_access_policy(DEMO_CLIENT_ID, ["atlas@contoso.example"])
    mail.outbox.clear()

    first = book(django_capture_on_commit_callbacks, actor=bob, room=atlas)
    second = book(django_capture_on_commit_callbacks, actor=bob, room=atlas, start=days_ahead(3, 10))

    for r in (first, second):
        assert r.state == State.REJECTED
        assert r.state_reason.startswith("Atlas could not be booked in Outlook: the booking system is not allowed to write")
        assert "administrators have been told" in r.state_reason
    shown = api_as(bob).get(f"/api/v1/reservations/{first.pk}/").json()
    assert shown["state"] == "rejected" and shown["state_reason"] == first.state_reason
    alerts = [m for m in mail.outbox if "Bookings are not reaching Outlook" in m.subject]
    assert len(alerts) == 2  # one cause: one mail_admins + one to the staff, not one per booking
    assert {tuple(m.to) for m in alerts} == {("ops@contoso.example",), ("admin@contoso.example",)}
    told_bob = [m for m in mail.outbox if BOB in m.to]
    assert len(told_bob) == 2  # each rejection mailed to bob


def test_a_series_refused_for_good_rejects_every_waiting_occurrence(provider, mode, emulator, atlas, django_capture_on_commit_callbacks):
    from reservations.models import Reservation
    from reservations.recurrence import Recurrence

    CalendarProvider.objects.filter(pk=provider.pk).update(organizer_account="", delegated_user_email="")
    bob = UserFactory(username="bob")
    mode("Normal")
    emulator.set_access_policy(DEMO_CLIENT_ID, ["atlas@contoso.example"])
    start = days_ahead(7, 9)

    with django_capture_on_commit_callbacks(execute=True):
        services.reservation_create(actor=bob, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                    recurrence=Recurrence(frequency="weekly", interval=1, count=3))

    rows = list(Reservation.objects.filter(series__isnull=False))
    assert len(rows) == 3
    assert {r.state for r in rows} == {State.REJECTED}
    assert all(r.state_reason.startswith("Atlas could not be booked in Outlook") for r in rows)
