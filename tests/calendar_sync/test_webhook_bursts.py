"""Bursts at the webhook (issue 17 item 3): Graph batches change notifications, several
subscriptions in one POST (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks).
One POST of many is checked item by item, stored whole before the 202, in as many queries as a
POST of one, with its metrics in one Redis round; and, through a real worker, notifications that
land while a pull of their mailbox runs get exactly one more pull after it, not the sweeper's."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.inbound import webhook
from calendar_sync.models import (
    MailboxDeltaState,
    Subscription,
    WebhookNotification,
    hash_client_state,
)
from exchange_auth.models import CalendarProvider
from observability import metrics
from tests.calendar_sync.inbound_helpers import ATLAS, BOB, outlook_meeting, outlook_reservations
from tests.celery_worker import Worker
from tests.factories import days_ahead
from tests.waiting import wait_for

MAILBOXES = ["atlas@contoso.example", "borealis@contoso.example", "cosmos@contoso.example"]


@pytest.fixture
def subscriptions(db):
    provider = CalendarProvider.objects.create(
        name="Contoso", active=False, tenant_id="contoso", client_id="wsd-demo-client",
        authority_host="https://login.example.invalid", graph_base_url="https://graph.example.invalid/v1.0",
    )
    return [Subscription.objects.create(provider=provider, mailbox=m, graph_id=f"sub-{i}", resource=f"users/{m}/events",
                                        client_state_hash=hash_client_state(f"secret-{i}")) for i, m in enumerate(MAILBOXES)]


def change(i: int, sub: int, *, secret: str | None = None) -> dict:
    return {"id": f"n{i}", "subscriptionId": f"sub-{sub}", "clientState": secret or f"secret-{sub}", "changeType": "created",
            "resource": f"Users/x/Events/e{i}", "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": f"e{i}"},
            "tenantId": "t", "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00"}


@pytest.fixture
def metric_rounds(monkeypatch):
    """Each Redis round of the metrics store (its increments)."""
    rounds: list[list] = []
    original = metrics.store.add

    def add(increments):
        increments = list(increments)
        rounds.append(increments)
        original(increments)

    monkeypatch.setattr(metrics.store, "add", add)
    return rounds


def post(client, items, path="/sync/webhook/"):
    return client.post(path, data=json.dumps({"value": items}), content_type="application/json")


@pytest.mark.django_db
def test_a_post_of_many_is_checked_item_by_item_and_stored_whole_before_the_202(
        client, subscriptions, metric_rounds, monkeypatch, django_capture_on_commit_callbacks):
    pulls, lifecycles = [], []
    cache.delete_many([inbound_tasks.QUEUED_PREFIX + m for m in MAILBOXES])
    monkeypatch.setattr(inbound_tasks.pull_room_mailbox, "delay", lambda mailbox, **kw: pulls.append(mailbox))
    monkeypatch.setattr(inbound_tasks.handle_lifecycle_notification, "delay", lambda pk: lifecycles.append(pk))
    items = [change(i, i % 3) for i in range(60)]
    items += [change(100, 1, secret="a guess"), change(101, 2, secret="secret-1"), {**change(102, 0), "subscriptionId": "sub-9"}]
    items += [{**change(103, 0), "resourceData": ["not", "an", "object"]}, "not an object"]
    items.append({"subscriptionId": "sub-2", "clientState": "secret-2", "lifecycleEvent": "missed", "tenantId": "t",
                  "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00"})
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, items)
    assert response.status_code == 202
    stored = WebhookNotification.objects.all()
    assert sorted(stored.filter(kind="change").values_list("event_id", flat=True)) == sorted(f"e{i}" for i in range(60))
    assert {(n.mailbox, n.subscription.graph_id) for n in stored} == {(m, f"sub-{i}") for i, m in enumerate(MAILBOXES)}
    assert not any("clientState" in n.payload for n in stored)  # the secret is never stored
    assert stored.get(kind="lifecycle").lifecycle_event == "missed"
    assert sorted(pulls) == sorted(MAILBOXES)  # one pull asked per mailbox, not per notification
    # Their pulls are queued: the next POST for the same mailboxes queues none (coalesced).
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, [change(200 + i, i % 3) for i in range(9)]).status_code == 202
    assert sorted(pulls) == sorted(MAILBOXES)
    assert all(cache.get(inbound_tasks.QUEUED_PREFIX + m) == 1 for m in MAILBOXES)
    assert lifecycles == [stored.get(kind="lifecycle").pk]
    # The metrics: one Redis round for the whole POST, stored and refused together.
    assert len(metric_rounds) == 2  # (the second POST's)
    counted = {json.loads(field)[0] + "/" + json.loads(field)[1]: amount for _, field, amount in metric_rounds[0]}
    assert [json.loads(field) for _, field, _ in metric_rounds[1]] == [["change", "stored"]]
    assert counted == {"change/stored": 60, "lifecycle/stored": 1, "any/refused": 5}
    assert all(s.last_notification_at is not None for s in Subscription.objects.all())


@pytest.mark.django_db
def test_a_post_of_many_takes_the_queries_of_a_post_of_one(client, subscriptions, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(inbound_tasks.pull_room_mailbox, "delay", lambda mailbox, **kw: None)
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as one:
        assert post(client, [change(0, 0)]).status_code == 202
    Subscription.objects.update(last_notification_at=None)
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as many:
        assert post(client, [change(i, i % 3) for i in range(1, 301)]).status_code == 202
    assert WebhookNotification.objects.count() == 301
    assert len(many) == len(one), [q["sql"][:80] for q in many]
    # A subscription marked moments ago is not written again by the next POST; a stale mark is.
    marked = Subscription.objects.get(graph_id="sub-0").last_notification_at
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, [change(400, 0)]).status_code == 202
    assert Subscription.objects.get(graph_id="sub-0").last_notification_at == marked
    stale = marked - webhook.LAST_NOTIFICATION_STEP * 2
    Subscription.objects.filter(graph_id="sub-0").update(last_notification_at=stale)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, [change(401, 0)])
    assert Subscription.objects.get(graph_id="sub-0").last_notification_at > marked


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_notifications_landing_during_a_pull_get_exactly_one_more_pull(subscribed, worker_env, celery_not_eager, tmp_path, emulator, bob, atlas):
    # The inbound worker as docker-compose runs it: Celery's threads pool, 8 pulls at once.
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log",
               pool="threads", concurrency=8)
    w.start()
    try:
        before = MailboxDeltaState.objects.get(mailbox=ATLAS).pulls
        # The next delta round of Atlas takes 2 s (Graph being slow): the notifications of the
        # two meetings booked meanwhile land while it runs.
        emulator.inject_fault(method="GET", path=r"calendarView/delta", mailbox=ATLAS, count=1, action="delay", seconds=2.0)
        outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="First")
        wait_for(lambda: not emulator.faults(), message=lambda: f"the slow round started {w.log_path.read_text()[-2000:]}")
        outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 11), subject="Second")
        outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 13), subject="Third")
        wait_for(lambda: WebhookNotification.objects.filter(mailbox=ATLAS, kind="change").count() >= 3, message="all notified")
        wait_for(lambda: len(outlook_reservations()) == 3, timeout=30, message="all booked")
        wait_for(lambda: not WebhookNotification.objects.filter(state="received").exists(), timeout=15,
                 message=lambda: f"inbox answered without the sweeper {w.log_path.read_text()[-3000:]}")
        received = list(WebhookNotification.objects.filter(mailbox=ATLAS, kind="change").order_by("received_at"))
        assert len(received) == 3
        # The slow round answered the first; one more pull answered the two that landed during it.
        assert received[1].processed_at == received[2].processed_at > received[0].processed_at
        assert received[1].received_at < received[0].processed_at  # they really landed during the slow round
        assert MailboxDeltaState.objects.get(mailbox=ATLAS).pulls == before + 2
        assert sorted(r.subject for r in outlook_reservations()) == ["First", "Second", "Third"]
    finally:
        w.stop()


@pytest.mark.django_db
def test_lock_lease_is_renewed_per_page():
    """A round longer than the lease keeps its mailbox: each page renews the lease."""
    from django.core.cache import cache

    from calendar_sync.inbound.delta import MailboxLock

    with MailboxLock("renew@contoso.example") as lock:
        cache.touch(lock.key, timeout=1)
        lock.renew()
        time.sleep(1.3)
        assert cache.get(lock.key) == lock.token  # without the renewal it would have expired
    assert cache.get(lock.key) is None
    other = MailboxLock("renew@contoso.example")  # someone else's lock is not renewed by us
    cache.set(other.key, "theirs", timeout=1)
    other.renew()
    time.sleep(1.3)
    assert cache.get(other.key) is None


def _pull_queries(emulator, count: int, first_day: int) -> tuple[list[str], dict]:
    """The queries of one delta pull of Atlas after ``count`` new Outlook meetings."""
    from calendar_sync.inbound import delta
    from tests.calendar_sync.inbound_helpers import BOB as ORGANIZER_BOB

    for i in range(count):
        outlook_meeting(emulator, ORGANIZER_BOB, [ATLAS], days_ahead(first_day + i // 8, 8 + i % 8), subject=f"Burst {first_day}/{i}")
    with CaptureQueriesContext(connection) as queries:
        result = delta.pull_mailbox(ATLAS)
    return [q["sql"] for q in queries], result.as_dict()


@pytest.mark.django_db(transaction=True)
def test_a_pull_of_many_new_meetings_reads_the_page_once(provider, emulator, bob, atlas):
    """A burst's pull: the reservations a page's new copies may match are read once for the
    page, so each further new meeting costs only its own writes (the reservation: its
    transaction, the room's arrangement check and the INSERT; the copy's record: one INSERT),
    not the three reads and update_or_create's round trips a copy took on its own."""
    from calendar_sync.inbound import delta

    delta.pull_mailbox(ATLAS)  # the first (full) round: the delta token
    one, result_one = _pull_queries(emulator, 1, 3)
    many, result_many = _pull_queries(emulator, 12, 5)
    assert result_one["created"] == 1 and result_many["created"] == 12
    assert len(outlook_reservations()) == 13
    per_meeting = (len(many) - len(one)) / 11
    assert per_meeting <= 5, [q[:90] for q in many]
    reads = [q for q in many if q.startswith('SELECT "reservations_reservation"')]
    assert len(reads) == 2  # the page's: what its copies name, and the room's product reservations in flight


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_batched_burst_is_stored_and_each_notification_answered_once(subscribed, worker_env, celery_not_eager, tmp_path, emulator, bob, atlas):
    """Graph's batches (up to 25 a POST, gathered 300 ms) through the threads worker: every
    notification stored and answered by one pull, every meeting one reservation, fewer pulls
    than notifications (coalesced), none left for the sweeper."""
    w = Worker({**worker_env, "DJANGO_SETTINGS_MODULE": "tests.calendar_sync.inbound_worker_settings"}, tmp_path / "worker.log",
               pool="threads", concurrency=8)
    w.start()
    try:
        before = MailboxDeltaState.objects.get(mailbox=ATLAS).pulls
        emulator.set_notification_batching(max=25, window_ms=300)
        for i in range(10):
            outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3 + i // 5, 8 + 2 * (i % 5)), subject=f"Burst {i}")
        wait_for(lambda: len(outlook_reservations()) == 10, timeout=60, message=lambda: f"all booked {w.log_path.read_text()[-3000:]}")
        wait_for(lambda: not WebhookNotification.objects.filter(state="received").exists(), timeout=20,
                 message=lambda: f"inbox answered without the sweeper {w.log_path.read_text()[-3000:]}")
        notified = WebhookNotification.objects.filter(mailbox=ATLAS, kind="change")
        assert notified.count() >= 10
        assert not notified.filter(processed_at__isnull=True).exists()
        posts = [d for d in emulator.notifications()["deliveries"] if d["kind"] == "change" and d["ok"]]
        assert len(posts) < notified.count()  # batched
        assert sorted(r.subject for r in outlook_reservations()) == sorted(f"Burst {i}" for i in range(10))  # none lost, none twice
        assert MailboxDeltaState.objects.get(mailbox=ATLAS).pulls - before < notified.count()  # coalesced
    finally:
        w.stop()



@pytest.mark.django_db
def test_a_busy_pull_retries_only_when_no_newer_pull_is_queued(celery_not_eager, monkeypatch):
    """A pull that finds its mailbox busy comes back after the round; but when a notification
    since it began queued a pull of its own (the coalescing key is that one's), that newer pull
    comes after the round anyway: a retry as well would only pull nothing new (the race the real
    worker's test above met: 4 rounds for 3 notifications)."""
    from calendar_sync.inbound import delta

    retries, queued = [], []
    monkeypatch.setattr(inbound_tasks.pull_room_mailbox, "apply_async", lambda args, countdown: retries.append(args))
    monkeypatch.setattr(inbound_tasks.pull_room_mailbox, "delay", lambda mailbox, **kw: queued.append(mailbox))
    key = inbound_tasks.QUEUED_PREFIX + ATLAS
    notified_meanwhile = False

    def busy(mailbox, **kw):
        if notified_meanwhile:
            assert inbound_tasks.request_pull(mailbox)  # the task dropped the key when it began: this one queues
        raise delta.MailboxBusy(mailbox)

    monkeypatch.setattr(delta, "pull_mailbox", busy)
    # Nobody else queued: the busy pull marks the mailbox queued and comes back after the round.
    cache.set(key, 1)  # (its own request's key, dropped when it begins)
    assert inbound_tasks.pull_room_mailbox.run(ATLAS) == {"busy": True}
    assert (retries, queued, cache.get(key)) == ([(ATLAS, False)], [], 1)
    # A notification landed while it found the mailbox busy: its pull is queued, this one bows out.
    notified_meanwhile = True
    assert inbound_tasks.pull_room_mailbox.run(ATLAS) == {"busy": True, "coalesced": True}
    assert (retries, queued, cache.get(key)) == ([(ATLAS, False)], [ATLAS], 1)
    # A full round is never coalesced away (it drops the delta token: a plain pull is not the same).
    notified_meanwhile = False
    assert inbound_tasks.pull_room_mailbox.run(ATLAS, True) == {"busy": True}
    assert retries == [(ATLAS, False), (ATLAS, True)]
