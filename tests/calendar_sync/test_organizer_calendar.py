"""The organizer-calendar reconciler (calendar_sync/inbound/organizer_calendar.py): the
organizer mailbox (reservations@, the demo provider's organizer account and delegated user)
pulled as the room mailboxes are — (a) attendees' answers, (b) Outlook cancellations,
(d) meetings that aren't the product's, and its nightly pass. Which modes subscribe it and
its subscription's life are in test_subscriptions.py.

Like the room tests, everything goes through the real path: the emulator notifies the
webhook served by ``live_server``, the webhook stores and queues, the pull reconciles."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from calendar_sync.common.clients import system_client
from calendar_sync.inbound import (
    delta,
    nightly,
    organizer_calendar,
    room_calendar,
    subscriptions,
)
from calendar_sync.models import (
    MailboxDeltaState,
    NightlyRun,
    RoomEvent,
    Subscription,
    WebhookNotification,
)
from exchange_auth.graph import users_path
from reservations import services
from reservations.models import Attendee, Reservation, ReservationSeries, State, SyncEvent
from reservations.recurrence import Recurrence
from tests.booking import book
from tests.calendar_sync.inbound_helpers import (
    ALICE,
    ATLAS,
    BOB,
    ORGANIZER,
    answer,
    bobs_copy_exists,
    echoed,
    graph_time,
    organizer_subscription,
    outlook_cancel,
    outlook_reservations,
    outlook_update,
    pushed_types,
    run_nightly,
    settled,
    strict_booking,
)
from tests.factories import ReservationFactory, days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


# --- (a) attendees' answers --------------------------------------------------------------------------


def test_an_attendee_accepting_in_outlook_updates_their_answer_without_a_refresh(listening, emulator, emulator_server, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(3, 10))
    assert answer(r) == "none"
    wait_for(lambda: bobs_copy_exists(emulator_server, r.ical_uid), message="bob invited")
    emulator.respond_as(BOB, r.ical_uid, "accept")
    wait_for(lambda: answer(r) == "accepted", message="bob's answer")
    emulator.respond_as(BOB, r.ical_uid, "decline")
    wait_for(lambda: answer(r) == "declined", message="bob's new answer")
    r.refresh_from_db()
    assert r.state == State.CONFIRMED  # the room's answer stays what it was
    assert pushed_types(r) == ["create"]  # nothing went back to Exchange, no retrieve_attendees read either
    row = RoomEvent.objects.get(mailbox=ORGANIZER, event_id=r.event_id)
    assert row.reservation_id == r.pk and row.outcome == "answers" and BOB in row.note
    wait_for(lambda: settled(ORGANIZER), message="notifications answered")


def test_the_products_own_update_echoes_through_the_organizer_mailbox_without_effect(listening, emulator, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(3, 14), subject="Ours")
    services.reservation_update(actor=alice, reservation=r, subject="Ours, renamed")
    wait_for(lambda: not SyncEvent.objects.filter(reservation=r, state__in=["new", "processing"]).exists(), message="update pushed")
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="notifications answered")
    wait_for(lambda: echoed(ORGANIZER, event_id=r.event_id, subject="Ours, renamed"), message="echo seen")
    r.refresh_from_db()
    assert (r.subject, r.state) == ("Ours, renamed", State.CONFIRMED)
    assert pushed_types(r) == ["create", "update"]
    assert outlook_reservations() == []


def test_a_time_change_by_the_organizer_is_taken_from_the_room_calendar(listening, provider, emulator, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(4, 10))
    moved = days_ahead(4, 15)
    outlook_update(provider, ORGANIZER, r.event_id, start=moved, end=moved + dt.timedelta(hours=1), subject="Moved by the organizer")
    wait_for(lambda: Reservation.objects.get(pk=r.pk).start == moved, message="reservation follows the room's copy")
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="notifications answered")
    r.refresh_from_db()
    assert (r.subject, r.state, pushed_types(r)) == ("Moved by the organizer", State.CONFIRMED, ["create"])
    assert RoomEvent.objects.get(mailbox=ATLAS, ical_uid=r.ical_uid).outcome == "updated"  # the room's pull applied it
    assert RoomEvent.objects.get(mailbox=ORGANIZER, event_id=r.event_id).outcome in ("echo", "answers")  # ours only read answers


# --- (b) cancelled in Outlook ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_the_organizer_cancelling_in_outlook_cancels_the_reservation_once(how, listening, provider, emulator, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(5, 10))
    # The room's pull has seen its copy: both calendars will see the meeting go.
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists(), message="room copy seen")
    mail.outbox.clear()
    if how == "cancel":
        outlook_cancel(provider, ORGANIZER, r.event_id)
    else:
        system_client(provider).delete(users_path(ORGANIZER, "events", r.event_id))
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == State.CANCELLED, message="reservation cancelled")
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid, removed_at__isnull=False).exists(), message="room pull")
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ORGANIZER, change_type="deleted", state="processed").exists(), message="organizer pull")
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="notifications answered")
    assert [m.to for m in mail.outbox] == [[ALICE]]  # told once, whichever pull came first
    assert pushed_types(r) == ["create"]  # nothing pushed back
    assert "cancelled in Outlook" in Reservation.objects.get(pk=r.pk).state_reason


def test_the_organizer_mailbox_alone_cancels_when_the_room_says_nothing(listening, provider, emulator, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(5, 14))
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status="active"))
    mail.outbox.clear()
    outlook_cancel(provider, ORGANIZER, r.event_id)
    # Wait for the reconciler's last write, not its first: it cancels the reservation (and tells
    # alice), then records the organizer's copy as removed; between the two the copy still shows
    # the create's "echo" (a loaded machine once caught the test there).
    seen = lambda: RoomEvent.objects.filter(mailbox=ORGANIZER, event_id=r.event_id).values_list("outcome", "removed_at").first()  # noqa: E731
    wait_for(lambda: (seen() or ("", None))[1] is not None, message=lambda: f"the organizer's copy recorded as removed (now {seen()})")
    r.refresh_from_db()
    assert r.state == State.CANCELLED
    assert r.state_reason == f"The meeting was cancelled in Outlook by its organizer ({ORGANIZER})."
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert seen()[0] == "cancelled"
    # The room's own (later) pull finds nothing left to do.
    mail.outbox.clear()
    delta.pull_mailbox(ATLAS, wait=30)
    assert mail.outbox == [] and pushed_types(r) == ["create"]


def test_the_product_cancelling_its_meeting_changes_nothing_more(listening, emulator, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(6, 10))
    mail.outbox.clear()
    services.reservation_cancel(actor=alice, reservation=r, reason="Not needed")
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ORGANIZER, change_type="deleted", state="processed").exists(), message="removal seen")
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="notifications answered")
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, "Not needed")
    assert pushed_types(r) == ["create", "delete"] and mail.outbox == []


def test_a_series_answers_reach_every_occurrence_and_a_deleted_occurrence_is_cancelled_alone(listening, provider, emulator, emulator_server, alice, bob, atlas):
    start = days_ahead(7, 9)
    first = services.reservation_create(actor=alice, room=atlas, start=start, end=start + dt.timedelta(hours=1), subject="Weekly",
                                        attendees=[{"email": BOB}], recurrence=Recurrence(frequency="weekly", interval=1, count=3))
    series = first.series
    wait_for(lambda: ReservationSeries.objects.get(pk=series.pk).event_id, message="series pushed")
    series.refresh_from_db()
    rows = list(series.occurrences.order_by("start"))
    assert {r.mailbox for r in rows} == {ORGANIZER}
    wait_for(lambda: bobs_copy_exists(emulator_server, series.ical_uid), message="bob invited to the series")
    emulator.respond_as(BOB, series.ical_uid, "accept")
    wait_for(lambda: {answer(r) for r in rows} == {"accepted"}, message="every occurrence's answer")
    # The organizer deletes the second occurrence in Outlook: that one goes, the others stay.
    view = system_client(provider).get(users_path(ORGANIZER, "calendarView"), params={
        "startDateTime": (start - dt.timedelta(days=1)).astimezone(dt.UTC).isoformat(),
        "endDateTime": (start + dt.timedelta(days=20)).astimezone(dt.UTC).isoformat(),
    })
    second = sorted((e for e in view["value"] if e.get("seriesMasterId") == series.event_id), key=lambda e: e["start"]["dateTime"])[1]
    mail.outbox.clear()
    system_client(provider).delete(users_path(ORGANIZER, "events", second["id"]))
    wait_for(lambda: Reservation.objects.get(pk=rows[1].pk).state == State.CANCELLED, message="the occurrence cancelled")
    wait_for(lambda: settled(ORGANIZER, ATLAS), message="notifications answered")
    assert [Reservation.objects.get(pk=r.pk).state for r in rows] == [State.CONFIRMED, State.CANCELLED, State.CONFIRMED]
    assert [m.to for m in mail.outbox] == [[ALICE]]
    assert not SyncEvent.objects.filter(series=series).exclude(type="create").exists()
    gone = RoomEvent.objects.get(mailbox=ORGANIZER, event_id=second["id"])  # the organizer's pull knew the occurrence
    assert gone.reservation_id == rows[1].pk and gone.removed_at is not None


# --- (d) meetings that aren't the product's ----------------------------------------------------------


def test_an_unrelated_meeting_in_the_organizer_calendar_is_ignored(listening, provider, emulator, emulator_server, alice, bob, atlas):
    start = days_ahead(3, 9)
    theirs = emulator.create_event_as(ORGANIZER, {
        "subject": "Team lunch", "start": graph_time(start), "end": graph_time(start + dt.timedelta(hours=1)),
        "attendees": [{"emailAddress": {"address": BOB}, "type": "required"}],
    })
    wait_for(lambda: bobs_copy_exists(emulator_server, theirs["iCalUId"]), message="bob invited")
    emulator.respond_as(BOB, theirs["iCalUId"], "accept")
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ORGANIZER, change_type="updated").exists(), message="answer notified")
    system_client(provider).delete(users_path(ORGANIZER, "events", theirs["id"]))
    wait_for(lambda: WebhookNotification.objects.filter(mailbox=ORGANIZER, change_type="deleted").exists(), message="deletion notified")
    wait_for(lambda: settled(ORGANIZER), message="notifications answered")
    assert Reservation.objects.count() == 0
    assert not RoomEvent.objects.filter(mailbox=ORGANIZER).exists()
    assert MailboxDeltaState.objects.get(mailbox=ORGANIZER).pulls >= 2


def test_a_meeting_the_organizer_account_was_only_invited_to_is_never_theirs(provider, emulator, mode, alice, atlas):
    """Reconciling directly: a copy organized by someone else never matches, even with the iCalUId of a reservation here."""
    mode("Strict")
    start = days_ahead(3, 11)
    r = ReservationFactory(room=atlas, start=start, end=start + dt.timedelta(hours=1), requested_for=alice,
                           mailbox=ORGANIZER, sync_mailbox="other", event_id="AAMk-ours", ical_uid="uid-1")
    ctx = organizer_calendar.Context(mailbox=ORGANIZER, provider=provider, client=system_client(provider),
                                 window_start=start - dt.timedelta(days=1), window_end=start + dt.timedelta(days=1))
    foreign = {"id": "AAMk-theirs", "iCalUId": "uid-1", "changeKey": "ck", "subject": "x", "isCancelled": True,
               "start": graph_time(start), "end": graph_time(start + dt.timedelta(hours=1)),
               "organizer": {"emailAddress": {"address": BOB}}}
    organizer_calendar.reconcile_page(ctx, [foreign])
    assert ctx.stats == {"unlinked": 1}
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED


# --- the nightly pass --------------------------------------------------------------------------------


def nightly_at(days_from_today: int = 0) -> dt.datetime:
    """02:35 in HQ's time zone (Europe/Berlin): just after its 02:30 pass is due."""
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    day = dt.datetime.now(berlin).date() + dt.timedelta(days=days_from_today)
    return dt.datetime.combine(day, dt.time(2, 35), tzinfo=berlin)


def dropped_for(emulator, sub: Subscription):
    def dropped():
        return any(d.get("dropped") and any(i["subscriptionId"] == sub.graph_id for i in d["payload"]["value"])
                   for d in emulator.notifications()["deliveries"])

    return dropped


def quiet(emulator) -> bool:
    return settled(ORGANIZER, ATLAS) and not emulator.notifications()["pending"]


# A notification whose POST took longer than Graph's 3 s (a loaded machine: the test runs its
# pulls inline, inside the webhook's answer) is sent again after 5 s and then 15 s, as Graph
# does (graph_emulator/subscriptions.py): waiting for quiet allows for two such retries.
QUIET_SECONDS = 60


def not_quiet(emulator) -> str:
    """What a wait for quiet saw last: the inbox's unanswered notifications and the emulator's
    pending and latest deliveries (status or error, duration)."""
    seen = emulator.notifications()
    last = [(d.get("kind"), d.get("status"), d.get("error"), round(d.get("duration_ms") or 0)) for d in seen.get("deliveries", [])[-5:]]
    return f"quiet: settled={settled(ORGANIZER, ATLAS)} pending={seen['pending']} last deliveries={last}"


def test_an_outlook_cancel_whose_notification_was_dropped_is_recovered_by_the_nightly_pass(listening, provider, emulator, alice, bob, atlas):
    # Atlas is no longer listened to and never recorded the room's copy. The building pass
    # (first) asks the room calendar about the product's meetings it never recorded: the
    # copy is gone, so it cancels the reservation; the organizer mailbox's round then has
    # nothing left to change, and the requester is told once.
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status="active"))
    r = strict_booking(alice, atlas, days_ahead(3, 13))
    wait_for(lambda: quiet(emulator), timeout=QUIET_SECONDS, message=lambda: not_quiet(emulator))
    assert not RoomEvent.objects.filter(mailbox=ATLAS, ical_uid=r.ical_uid).exists()
    emulator.set_notification_policy(drop=1)
    mail.outbox.clear()
    outlook_cancel(listening, ORGANIZER, r.event_id)
    wait_for(dropped_for(emulator, organizer_subscription()), message="the cancel's notification dropped")
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED

    ran = nightly.run_due(nightly_at())

    assert ran["HQ"]["rooms"] == 1 and ran["HQ"]["cancelled"] == 1
    assert ran[ORGANIZER]["mailboxes"] == 1 and ran[ORGANIZER].get("cancelled", 0) == 0
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, room_calendar.CANCELLED_IN_OUTLOOK)
    assert [m.to for m in mail.outbox] == [[ALICE]] and pushed_types(r) == ["create"]
    assert NightlyRun.objects.get(mailbox=ORGANIZER).summary == ran[ORGANIZER]
    assert nightly.run_due(nightly_at() + dt.timedelta(minutes=15)) == {}  # once a night


def _what_the_product_holds() -> tuple:
    return (
        list(Reservation.objects.order_by("pk").values()),
        list(Attendee.objects.order_by("pk").values()),
        list(RoomEvent.objects.order_by("pk").values()),
    )


def test_the_nightly_pass_with_nothing_changed_reads_each_organizer_mailbox_once_and_writes_nothing(listening, emulator, alice, bob, atlas):
    strict_booking(alice, atlas, days_ahead(3, 9))
    wait_for(lambda: quiet(emulator), timeout=QUIET_SECONDS, message=lambda: not_quiet(emulator))
    assert ORGANIZER in nightly.run_due(nightly_at())  # last night's pass: whatever real time left is settled
    before = _what_the_product_holds()
    emulator.clear_request_log()
    mail.outbox.clear()

    ran = nightly.run_due(nightly_at(1))

    summary = ran[ORGANIZER]
    assert (summary["mailboxes"], summary["requests"]) == (1, 1), summary
    assert set(summary) - {"mailboxes", "events", "requests"} <= {"unchanged"}, summary
    delta_reads = [e for e in emulator.request_log()["entries"]
                   if e["path"].lower().startswith(f"/v1.0/users/{ORGANIZER}/") and "delta" in e["path"].lower()]
    assert len(delta_reads) == 1, [e["path"] for e in emulator.request_log()["entries"]]
    assert _what_the_product_holds() == before and mail.outbox == []


def test_sync_calendars_full_covers_the_organizer_mailbox_and_says_so(listening, emulator, emulator_server, alice, bob, atlas):
    r = strict_booking(alice, atlas, days_ahead(3, 17))
    wait_for(lambda: bobs_copy_exists(emulator_server, r.ical_uid), message="bob invited")
    wait_for(lambda: quiet(emulator), timeout=QUIET_SECONDS, message=lambda: not_quiet(emulator))
    emulator.set_notification_policy(drop=1)
    emulator.respond_as(BOB, r.ical_uid, "accept")
    wait_for(dropped_for(emulator, organizer_subscription()), message="the answer's notification dropped")
    assert answer(r) == "none"
    out, err = StringIO(), StringIO()

    call_command("sync_calendars", "--full", stdout=out, stderr=err)

    assert answer(r) == "accepted"  # recovered
    assert f"Synced 1/1 room(s) and 1/1 organizer mailbox(es) ({ORGANIZER}) in " in out.getvalue()
    assert "answers 1" in out.getvalue()
    assert f"1/2 {ORGANIZER} (organizer)" in err.getvalue() and "2/2 done" in err.getvalue()
    # --room names rooms only.
    out = StringIO()
    call_command("sync_calendars", "--room", "Atlas", stdout=out, stderr=StringIO())
    assert "Synced 1/1 room(s) in " in out.getvalue() and ORGANIZER not in out.getvalue()


# --- the room's answer to a conflicted reservation, and the nightly cancel path -----------------------


def _conflicted_awaiting_the_room(emulator, alice, atlas, start) -> Reservation:
    """A Strict booking whose room has not answered (a delegate answers for it) and whose room
    copy went missing meanwhile: ``conflicted``. Atlas' own calendar is no longer listened to,
    so only the organizer mailbox can hear the room's answer."""
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status="active"))
    emulator.set_auto_accept(ATLAS, False)
    r = book(actor=alice, room=atlas, start=start, attendees=[{"email": BOB}])
    r = wait_for(lambda: Reservation.objects.filter(pk=r.pk).exclude(event_id="").first(), message="meeting written")
    assert r.mailbox == ORGANIZER and r.state == State.AWAITING_CONFIRMATION
    assert services.reservation_mark_conflicted(reservation=r, reason="The meeting is missing from Atlas's calendar.")
    return r


@pytest.mark.parametrize("action, state", [("accept", State.CONFIRMED), ("decline", State.REJECTED)])
def test_the_organizer_mailbox_applies_the_rooms_answer_to_a_conflicted_reservation(action, state, listening, emulator, alice, bob, atlas):
    r = _conflicted_awaiting_the_room(emulator, alice, atlas, days_ahead(3, 10))
    emulator.respond_as(ATLAS, r.ical_uid, action)  # the room's delegate answers in Outlook
    wait_for(lambda: Reservation.objects.get(pk=r.pk).state == state, message=f"the room's {action} applied")
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ORGANIZER, event_id=r.event_id).exists(), message="the organizer mailbox's pull")
    if state == State.REJECTED:
        assert [m.to for m in mail.outbox if "Atlas" in m.body or "Atlas" in m.subject][-1:] == [[ALICE]]


def test_nightly_the_organizer_mailbox_applies_the_rooms_answer_to_a_conflicted_reservation(listening, emulator, alice, bob, atlas):
    r = _conflicted_awaiting_the_room(emulator, alice, atlas, days_ahead(3, 11))
    wait_for(lambda: quiet(emulator), timeout=QUIET_SECONDS, message=lambda: not_quiet(emulator))
    emulator.set_notification_policy(drop=1)
    emulator.respond_as(ATLAS, r.ical_uid, "decline")
    wait_for(dropped_for(emulator, organizer_subscription()), message="the answer's notification dropped")
    assert Reservation.objects.get(pk=r.pk).state == State.CONFLICTED
    run_nightly(ORGANIZER)
    assert Reservation.objects.get(pk=r.pk).state == State.REJECTED


def test_nightly_the_organizer_mailbox_cancels_a_meeting_its_organizer_cancelled(listening, provider, emulator, alice, bob, atlas):
    """The organizer mailbox's own cancel path, end to end at night: the cancel's notification
    is lost and the room's calendar is not listened to; the nightly round of the organizer
    mailbox no longer has the meeting it recorded, confirms it is gone, cancels the reservation
    and tells the requester once; the room's round then has nothing left to do."""
    r = strict_booking(alice, atlas, days_ahead(3, 15))
    wait_for(lambda: RoomEvent.objects.filter(mailbox=ORGANIZER, event_id=r.event_id).exists() and quiet(emulator), timeout=QUIET_SECONDS,
             message=lambda: "recorded, " + not_quiet(emulator))
    subscriptions.subscription_delete(subscription=Subscription.objects.get(mailbox=ATLAS, status="active"))
    emulator.set_notification_policy(drop=1)
    mail.outbox.clear()
    outlook_cancel(provider, ORGANIZER, r.event_id)
    wait_for(dropped_for(emulator, organizer_subscription()), message="the cancel's notification dropped")
    assert Reservation.objects.get(pk=r.pk).state == State.CONFIRMED

    stats = run_nightly(ORGANIZER)

    assert stats["cancelled"] == 1, stats
    r.refresh_from_db()
    assert (r.state, r.state_reason) == (State.CANCELLED, f"The meeting was cancelled in Outlook by its organizer ({ORGANIZER}).")
    assert RoomEvent.objects.get(mailbox=ORGANIZER, event_id=r.event_id).outcome == "cancelled"
    assert [m.to for m in mail.outbox] == [[ALICE]] and pushed_types(r) == ["create"]
    assert run_nightly(ORGANIZER).get("cancelled", 0) == 0 and run_nightly(ATLAS).get("cancelled", 0) == 0
    assert [m.to for m in mail.outbox] == [[ALICE]]
