"""Subscriptions (calendar_sync/inbound/subscriptions.py, mailboxes.py, polling.py): which
mailboxes are subscribed in which mode, with which credential, polling where none can be
made, renewal, and the lifecycle notifications (missed → resync, reauthorizationRequired →
renew, subscriptionRemoved → recreate).

Graph lets a delegated token subscribe only to the signed-in user's own mailbox (Outlook
change notifications refuse shared and delegated folders; the emulator answers 403
ExtensionError like Graph). With the delegated user connected the rooms are therefore
subscribed with the app-only credential; a room no subscription can be made for is pulled
every CALENDAR_SYNC_POLL_SECONDS instead. Everything runs against the emulator with real
msal, the real webhook (``live_server``) and eager Celery."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from calendar_sync.apps import BEAT_SCHEDULE
from calendar_sync.inbound import (
    mailboxes,
    subscriptions,
)
from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import (
    MailboxDeltaState,
    Subscription,
    WebhookNotification,
)
from exchange_auth import credentials
from exchange_auth.graph import GraphError
from exchange_auth.views import redirect_uri
from graph_emulator.seed import DEMO_CLIENT_ID
from reservations.models import Reservation, State
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    ORGANIZER,
    answer,
    bobs_copy_exists,
    full_syncs,
    organizer_subscription,
    outlook_meeting,
    outlook_reservations,
    room_copies,
    settled,
    strict_booking,
)
from tests.exchange_auth.conftest import sign_in
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for
from workplace.models import Profile

pytestmark = pytest.mark.django_db(transaction=True)


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


def lifecycle(emulator, sub: Subscription, event: str):
    emulator.trigger_lifecycle(sub.graph_id, event)


# --- which mailboxes are subscribed ------------------------------------------------------------------


def test_activating_subscribes_each_synced_room_with_a_secret_client_state(subscribed, emulator):
    [sub] = Subscription.objects.filter(status="active")
    assert sub.mailbox == ATLAS and sub.expires_at is not None
    [graph_sub] = emulator.subscriptions()
    assert graph_sub["id"] == sub.graph_id
    assert graph_sub["notificationUrl"].endswith("/sync/webhook/")
    assert graph_sub["lifecycleNotificationUrl"].endswith("/sync/webhook/lifecycle/")
    assert graph_sub["clientState"] and sub.client_state_hash != graph_sub["clientState"]  # only a hash is stored
    assert MailboxDeltaState.objects.get(mailbox=ATLAS).delta_link  # the first full round ran


def test_strict_mode_subscribes_the_rooms_and_the_organizer_mailbox(listening, emulator):
    subs = {s.mailbox: s.kind for s in Subscription.objects.filter(status="active")}
    assert subs == {ATLAS: "room", ORGANIZER: "organizer"}
    graph = {s["resource"]: s for s in emulator.subscriptions()}
    assert set(graph) == {f"users/{ATLAS}/events", f"users/{ORGANIZER}/events"}
    mine = Subscription.objects.get(mailbox=ORGANIZER)
    assert graph[mine.resource]["id"] == mine.graph_id and graph[mine.resource]["lifecycleNotificationUrl"].endswith("/sync/webhook/lifecycle/")
    assert MailboxDeltaState.objects.get(mailbox=ORGANIZER).delta_link  # its first full round ran


@pytest.mark.parametrize(("mode_name", "rooms_organize", "without_mailbox", "wanted"), [
    ("Strict", False, False, True),  # the organizer account organizes every Strict meeting
    ("Strict", True, False, False),  # synced rooms all have a mailbox: they organize their own
    ("Normal", False, False, False),  # everyone has a mailbox: their own calendars
    ("Normal", False, True, True),  # the table's fallback for someone without one
    ("Personal", False, True, False),  # the acting employee's calendar
])
def test_the_organizer_mailbox_is_wanted_only_where_the_mode_makes_it_organize(
    provider, mode, atlas, alice, mode_name, rooms_organize, without_mailbox, wanted,
):
    mode(mode_name)
    provider.rooms_organize_own_meetings = rooms_organize
    provider.save()
    if without_mailbox:
        Profile.objects.filter(user=alice).update(has_mailbox=False)
    expected = {ATLAS: "room", ORGANIZER: "organizer"} if wanted else {ATLAS: "room"}
    assert mailboxes.subscribed_mailboxes(provider) == expected


@pytest.mark.parametrize("mode_name", ["Personal", "Strict"])
def test_live_product_meetings_in_the_organizer_calendar_keep_it_wanted_in_any_mode(provider, mode, atlas, alice, mode_name):
    mode(mode_name)
    provider.rooms_organize_own_meetings = True
    provider.save()
    start = days_ahead(2, 10)
    blocker = ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=1), requested_for=alice, kind="blocker",
                                 mailbox=ORGANIZER, sync_mailbox="other", event_id="AAMk-blocker")
    assert ORGANIZER in mailboxes.subscribed_mailboxes(provider)
    Reservation.objects.filter(pk=blocker.pk).update(state=State.CANCELLED)
    assert ORGANIZER not in mailboxes.subscribed_mailboxes(provider)


def test_blockers_of_a_delegated_user_other_than_the_organizer_account_keep_its_mailbox_wanted(provider, mode, atlas, alice):
    """Personal mode puts blockers in the delegated user's calendar (plan_sync step 1), whoever the organizer account is."""
    mode("Personal")
    provider.organizer_account = "admin@contoso.example"
    provider.save()
    assert mailboxes.service_accounts(provider) == ["admin@contoso.example", ORGANIZER]
    assert mailboxes.subscribed_mailboxes(provider) == {ATLAS: "room"}
    start = days_ahead(2, 10)
    ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=1), requested_for=alice, kind="blocker",
                       mailbox=ORGANIZER, sync_mailbox="other", event_id="AAMk-blocker")
    assert mailboxes.subscribed_mailboxes(provider) == {ATLAS: "room", ORGANIZER: "organizer"}
    assert mailboxes.is_organizer_mailbox(provider, ORGANIZER.upper()) and mailboxes.is_organizer_mailbox(provider, "admin@contoso.example")
    assert not mailboxes.is_organizer_mailbox(provider, ALICE)


def test_nothing_is_subscribed_without_a_synced_room(provider, mode, dojo):
    mode("Strict")
    assert mailboxes.subscribed_mailboxes(provider) == {}


def test_leaving_strict_mode_drops_the_organizer_subscription(listening, mode, emulator):
    mode("Personal")
    counts = inbound_tasks.subscriptions_ensure(provider=listening)
    assert counts["deleted"] == 1
    assert list(Subscription.objects.filter(status="active").values_list("mailbox", flat=True)) == [ATLAS]
    assert [s["resource"] for s in emulator.subscriptions()] == [f"users/{ATLAS}/events"]


def test_the_command_and_the_admin_show_both_kinds(listening, admin, client):
    out = StringIO()
    call_command("sync_subscriptions", stdout=out)
    assert f"{ORGANIZER} (organizer mailbox): expires" in out.getvalue()
    assert f"{ATLAS} (room mailbox): expires" in out.getvalue()
    client.force_login(admin)
    page = client.get("/admin/calendar_sync/subscription/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ORGANIZER in html and "organizer mailbox" in html and "✓ ok" in html
    assert client.get("/admin/calendar_sync/subscription/?kind__exact=organizer").content.decode().count("✓ ok") == 1


# --- which credential subscribes, and polling where none can -----------------------------------------


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


def test_with_the_delegated_user_connected_the_organizer_subscribes_to_its_own_mailbox(
    settings, live_server, provider, emulator, emulator_server, strict, alice, bob, atlas,
):
    flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=ORGANIZER)
    location = sign_in(emulator_server, flow["auth_uri"], login=ORGANIZER)
    credentials.connect_delegated_user(provider, credentials.complete_auth_code_flow(provider, flow, dict(parse_qsl(urlsplit(location).query))))
    assert credentials.system_token(provider).kind == "delegated"
    settings.PUBLIC_BASE_URL = live_server.url
    assert inbound_tasks.subscriptions_ensure(provider=provider)["created"] == 2
    organizer_id = emulator_server.call(lambda: emulator_server.store.find_user(ORGANIZER).id)
    graph = {s["resource"]: s for s in emulator.subscriptions()}
    assert graph[f"users/{ORGANIZER}/events"]["creatorId"] == organizer_id  # created with the delegated user's token
    r = strict_booking(alice, atlas, days_ahead(3, 12))
    wait_for(lambda: bobs_copy_exists(emulator_server, r.ical_uid), message="bob invited")
    emulator.respond_as(BOB, r.ical_uid, "accept")
    wait_for(lambda: answer(r) == "accepted", message="bob's answer")


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


# --- renewal -----------------------------------------------------------------------------------------


def test_beat_renews_the_organizer_subscription_before_it_expires(listening, emulator):
    sub = organizer_subscription()
    Subscription.objects.filter(pk=sub.pk).update(expires_at=sub.expires_at - dt.timedelta(days=2, hours=12))
    counts = inbound_tasks.subscriptions_ensure(provider=listening)
    assert (counts["renewed"], counts["created"]) == (1, 0)
    renewed = Subscription.objects.get(pk=sub.pk)
    assert renewed.expires_at > sub.expires_at - dt.timedelta(minutes=5) and renewed.renewed_at > sub.renewed_at
    assert renewed.kind == "organizer" and renewed.status == "active"


def test_a_failed_renewal_is_shown_and_alerts_the_admins(subscribed, emulator, admin, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    mail.outbox.clear()
    emulator.inject_fault(method="PATCH", path="/subscriptions/", count=5, status=500)
    with pytest.raises(GraphError):
        inbound_tasks.subscription_renew(subscription=sub)
    sub.refresh_from_db()
    assert sub.status == "failed" and "Renewal failed" in sub.last_error
    assert any(admin.email in m.to for m in mail.outbox)
    emulator.clear_faults()
    counts = inbound_tasks.subscriptions_ensure(provider=sub.provider)  # the beat job heals it
    assert counts["created"] == 1


# --- lifecycle notifications: missed, reauthorizationRequired, subscriptionRemoved -------------------


def test_missed_triggers_a_full_resync(subscribed, emulator, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    before = full_syncs(ATLAS)
    lifecycle(emulator, sub, "missed")
    wait_for(lambda: full_syncs(ATLAS) == before + 1, message="resync")
    # The notification is marked handled once the resync returned.
    wait_for(lambda: WebhookNotification.objects.get(lifecycle_event="missed").note == "resynced", message="noted")


def test_reauthorization_required_reauthorizes_and_renews(subscribed, emulator, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    lifecycle(emulator, sub, "reauthorizationRequired")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).renewed_at > sub.renewed_at, message="renewed")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).last_lifecycle_event == "reauthorizationRequired", message="noted")
    [graph_sub] = emulator.subscriptions()
    assert not graph_sub.get("_reauthorization_required")


def test_subscription_removed_recreates_and_resyncs(subscribed, emulator, bob, atlas):
    sub = Subscription.objects.get(mailbox=ATLAS, status="active")
    before = full_syncs(ATLAS)
    lifecycle(emulator, sub, "subscriptionRemoved")
    wait_for(lambda: Subscription.objects.filter(mailbox=ATLAS, status="active").exclude(pk=sub.pk).exists(), message="recreated")
    wait_for(lambda: full_syncs(ATLAS) == before + 1, message="resync")
    # The new subscription works.
    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    wait_for(outlook_reservations, message="reservation through the new subscription")


def test_subscription_removed_recreates_the_organizer_subscription_and_resyncs(listening, emulator, emulator_server, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(3, 16))
    sub = organizer_subscription()
    before = full_syncs(ORGANIZER)
    emulator.trigger_lifecycle(sub.graph_id, "subscriptionRemoved")
    fresh = wait_for(lambda: Subscription.objects.filter(mailbox=ORGANIZER, status="active").exclude(pk=sub.pk).first(), message="recreated")
    assert fresh.kind == "organizer"
    wait_for(lambda: full_syncs(ORGANIZER) == before + 1, message="resync")
    # The notification is marked handled once the recreate (and its resync) returned.
    wait_for(lambda: WebhookNotification.objects.get(lifecycle_event="subscriptionRemoved").note == "recreated", message="noted")
    # The new subscription carries answers.
    wait_for(lambda: bobs_copy_exists(emulator_server, r.ical_uid), message="bob invited")
    emulator.respond_as(BOB, r.ical_uid, "tentativelyAccept")
    wait_for(lambda: answer(r) == "tentativelyAccepted", message="answer through the new subscription")


def test_reauthorization_and_missed_for_the_organizer_subscription(listening, emulator):
    sub = organizer_subscription()
    emulator.trigger_lifecycle(sub.graph_id, "reauthorizationRequired")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).renewed_at > sub.renewed_at, message="renewed")
    wait_for(lambda: Subscription.objects.get(pk=sub.pk).last_lifecycle_event == "reauthorizationRequired", message="noted")
    before = full_syncs(ORGANIZER)
    emulator.trigger_lifecycle(sub.graph_id, "missed")
    wait_for(lambda: full_syncs(ORGANIZER) == before + 1, message="resync")
    wait_for(lambda: WebhookNotification.objects.get(lifecycle_event="missed").note == "resynced", message="noted")
    assert Subscription.objects.get(pk=sub.pk).last_lifecycle_event == "missed"


def test_a_missed_answer_is_picked_up_by_the_resync(listening, emulator, emulator_server, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(3, 8))
    wait_for(lambda: bobs_copy_exists(emulator_server, r.ical_uid), message="bob invited")
    wait_for(lambda: settled(ORGANIZER, ATLAS) and not emulator.notifications()["pending"], message="quiet")
    emulator.set_notification_policy(drop=1)
    emulator.respond_as(BOB, r.ical_uid, "accept")
    sub = organizer_subscription()

    def dropped():
        return any(d.get("dropped") and any(i["subscriptionId"] == sub.graph_id for i in d["payload"]["value"])
                   for d in emulator.notifications()["deliveries"])

    wait_for(dropped, message="the answer's notification dropped")
    assert answer(r) == "none"
    emulator.trigger_lifecycle(sub.graph_id, "missed")
    wait_for(lambda: answer(r) == "accepted", message="answer from the resync")
