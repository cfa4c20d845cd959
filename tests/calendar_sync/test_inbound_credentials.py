"""Which credential subscribes, and polling where none can (SPEC §4 "Inbound").

Graph lets a delegated token subscribe only to the signed-in user's own mailbox (Outlook
change notifications refuse shared and delegated folders; the emulator answers 403
ExtensionError like Graph). With the delegated user connected the rooms are therefore
subscribed with the app-only credential; a room no subscription can be made for is pulled
every CALENDAR_SYNC_POLL_SECONDS instead. Everything runs against the emulator with real
msal, the real webhook (``live_server``) and eager Celery."""

from __future__ import annotations

from io import StringIO
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from calendar_sync.apps import BEAT_SCHEDULE
from calendar_sync.inbound import subscriptions
from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import Subscription
from exchange_auth import credentials
from exchange_auth.views import redirect_uri
from graph_emulator.seed import DEMO_CLIENT_ID
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
    room_copies,
    wait_for,
)
from tests.exchange_auth.conftest import sign_in
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db(transaction=True)

ORGANIZER = "reservations@contoso.example"  # the demo provider's organizer account and delegated user


@pytest.fixture
def delegated(settings, live_server, provider, emulator, emulator_server, mode):
    """Strict mode (the organizer mailbox is wanted too), the webhook live, and the delegated
    user (reservations@, a delegate of every room) connected: the system credential is delegated."""
    mode("Strict")
    settings.PUBLIC_BASE_URL = live_server.url
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=ORGANIZER)
    location = sign_in(emulator_server, flow["auth_uri"], login=ORGANIZER)
    credentials.connect_delegated_user(provider, credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query))))
    assert credentials.system_token(provider).kind == "delegated"
    return provider


def subscription_calls(emulator, method: str = "POST") -> list[tuple]:
    """(status, signed-in user or None for app-only) of each subscription call Graph saw."""
    return [(e["status"], e["user"]) for e in emulator.request_log()["entries"]
            if e["method"] == method and e["path"].lower().startswith("/v1.0/subscriptions")]


def polling_mails() -> list:
    return [m for m in mail.outbox if "Polling " in m.subject]


def test_with_the_delegated_user_connected_rooms_are_subscribed_app_only_and_outlook_bookings_arrive(delegated, emulator, emulator_server, atlas, bob):
    emulator.clear_request_log()

    counts = inbound_tasks.subscriptions_ensure(provider=delegated)

    assert counts == {"created": 2, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
    rows = {s.mailbox: s.credential for s in Subscription.objects.filter(status="active")}
    assert rows == {ATLAS: "app", ORGANIZER: "delegated"}
    assert not Subscription.objects.filter(status="polling").exists()
    # Graph saw the room's subscription made app-only, the organizer's own by its delegated user.
    assert sorted(subscription_calls(emulator), key=str) == sorted([(201, None), (201, ORGANIZER)], key=str)
    organizer_id = emulator_server.call(lambda: emulator_server.store.find_user(ORGANIZER).id)
    graph = {s["resource"]: s for s in emulator.subscriptions()}
    assert graph[f"users/{ORGANIZER}/events"]["creatorId"] == organizer_id
    assert graph[f"users/{ATLAS}/events"]["creatorId"] != organizer_id  # the app's service principal
    # An Outlook booking on the room arrives through the app-only subscription's notification.
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9), subject="Booked in Outlook")
    [r] = wait_for(outlook_reservations, message="reservation from the notification")
    assert (r.room_id, r.subject) == (atlas.pk, "Booked in Outlook")
    # Renewals go with the credential that created each one (Graph lets only the creator renew).
    emulator.clear_request_log()
    for sub in Subscription.objects.filter(status="active").order_by("mailbox"):
        inbound_tasks.subscription_renew(subscription=sub)
    assert subscription_calls(emulator, "PATCH") == [(200, None), (200, ORGANIZER)]  # atlas@, then reservations@


def test_with_app_only_refused_rooms_are_polled_until_it_is_allowed(delegated, emulator, emulator_server, atlas, bob, admin):
    # The app's application access policy reaches the organizer mailbox only: Graph refuses the
    # room's subscription app-only, and the delegated user may not subscribe to it either.
    emulator.set_access_policy(DEMO_CLIENT_ID, [ORGANIZER])
    mail.outbox.clear()
    emulator.clear_request_log()

    counts = inbound_tasks.subscriptions_ensure(provider=delegated)

    assert counts == {"created": 1, "renewed": 0, "deleted": 0, "failed": 0, "polling": 1}
    assert subscription_calls(emulator) == [(403, None), (201, ORGANIZER)]  # atlas@ tried app-only only
    mine = Subscription.objects.get(mailbox=ORGANIZER, status="active")
    assert mine.credential == "delegated"  # the delegated user's own mailbox keeps its real subscription
    polled = Subscription.objects.get(mailbox=ATLAS, status="polling")
    assert polled.graph_id == "" and "Graph refused the subscription with the app-only credential" in polled.polling_reason
    assert [s["resource"] for s in emulator.subscriptions()] == [f"users/{ORGANIZER}/events"]
    alerts = polling_mails()
    assert alerts and all(m.subject.endswith(f"Polling {ATLAS}: no change-notification subscription") for m in alerts)
    assert "every 60 s" in alerts[0].body
    sent = len(alerts)

    # An Outlook booking on the room: no notification comes; the next poll brings it.
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 10), subject="Polled in")
    wait_for(lambda: room_copies(emulator_server, ATLAS), message="the room's copy")
    assert outlook_reservations() == []
    assert inbound_tasks.poll_unsubscribed() == [ATLAS]
    [r] = outlook_reservations()
    assert (r.room_id, r.subject) == (atlas.pk, "Polled in")

    # The admin's list and the command say so; the admins were told once, not on every beat.
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/calendar_sync/subscription/").content.decode()
    assert "polling every 60 s: Graph refused the subscription with the app-only credential" in page
    out = StringIO()
    call_command("sync_subscriptions", stdout=out)
    assert f"{ATLAS} (room mailbox): ⟳ polling every 60 s: Graph refused the subscription" in out.getvalue()
    assert "polling 1" in out.getvalue()
    inbound_tasks.poll_unsubscribed()
    inbound_tasks.subscriptions_ensure(provider=delegated)
    assert len(polling_mails()) == sent
    assert Subscription.objects.filter(mailbox=ATLAS, status="polling").count() == 1

    # The admin lifts the policy: the next run subscribes the room app-only and polling stops.
    emulator.set_access_policy(DEMO_CLIENT_ID, None)
    counts = inbound_tasks.subscriptions_ensure(provider=delegated)
    assert counts == {"created": 1, "renewed": 0, "deleted": 0, "failed": 0, "polling": 0}
    assert Subscription.objects.get(mailbox=ATLAS, status="active").credential == "app"
    assert not Subscription.objects.filter(status="polling").exists()
    assert inbound_tasks.poll_unsubscribed() == []
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 10), subject="Notified again")
    wait_for(lambda: len(outlook_reservations()) == 2, message="reservation from the new subscription's notification")


def test_without_an_app_only_token_rooms_are_polled_and_subscribed_once_it_works(delegated, emulator, atlas, monkeypatch, settings):
    """No app-only token (no client secret, or refused by Entra): nothing is even tried on Graph."""
    settings.CALENDAR_SYNC_POLL_SECONDS = 30

    def no_token(provider, **kwargs):
        raise credentials.CredentialError(f"Calendar provider {provider.name!r} has no client secret.", cause="not_configured")

    monkeypatch.setattr(subscriptions, "app_token", no_token)
    emulator.clear_request_log()
    assert inbound_tasks.subscriptions_ensure(provider=delegated)["polling"] == 1
    assert subscription_calls(emulator) == [(201, ORGANIZER)]
    polled = Subscription.objects.get(mailbox=ATLAS, status="polling")
    assert polled.polling_reason.startswith("no app-only credential to subscribe with (Calendar provider")
    out = StringIO()
    call_command("sync_subscriptions", stdout=out)
    assert f"{ATLAS} (room mailbox): ⟳ polling every 30 s: no app-only credential" in out.getvalue()

    monkeypatch.undo()
    assert inbound_tasks.subscriptions_ensure(provider=delegated)["created"] == 1
    assert Subscription.objects.get(mailbox=ATLAS, status="active").credential == "app"
    assert inbound_tasks.poll_unsubscribed() == []


def test_the_poll_runs_on_beat_every_calendar_sync_poll_seconds(settings):
    assert settings.CALENDAR_SYNC_POLL_SECONDS == 60
    assert BEAT_SCHEDULE["calendar_sync.poll_unsubscribed"] == {"task": "calendar_sync.inbound.tasks.poll_unsubscribed", "schedule": 60.0}


def test_a_removed_room_subscription_that_cannot_be_made_again_falls_back_to_polling(delegated, emulator, atlas, admin):
    inbound_tasks.subscriptions_ensure(provider=delegated)
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    emulator.set_access_policy(DEMO_CLIENT_ID, [ORGANIZER])
    mail.outbox.clear()

    emulator.trigger_lifecycle(sub.graph_id, "subscriptionRemoved")

    polled = wait_for(lambda: Subscription.objects.filter(mailbox=ATLAS, status="polling").first(), message="polling")
    assert polled.polling_reason.startswith("Graph removed the subscription; Graph refused the subscription with the app-only credential")
    assert Subscription.objects.get(pk=sub.pk).status == "removed"
    wait_for(polling_mails, message="the admins told")  # sent by the webhook's thread just after the row
    assert len({m.subject for m in polling_mails()}) == 1
    assert inbound_tasks.poll_unsubscribed() == [ATLAS]
