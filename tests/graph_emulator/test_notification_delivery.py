"""Graph's delivery of change notifications (issue 17 item 1): bursts batched in one POST, retries
with back-off and the 4-hour cut-off, the slow-endpoint throttling, ``missed`` lifecycle
notifications, and the request counter. Graph's behaviour as "Receive change notifications through
webhooks" (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks) and
"Reduce missing change notifications" (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events)
describe it; the timings are scaled down through the config so a test takes a second."""

from __future__ import annotations

import time

import pytest

from tests.graph_emulator.helpers import ATLAS, BOREALIS, meeting
from tests.graph_emulator.test_subscriptions import subscribe
from tests.waiting import wait_for


def slot(i: int) -> dict:
    return {"start": f"2030-03-{1 + i // 8:02d}T{9 + i % 8:02d}:00:00", "end": f"2030-03-{1 + i // 8:02d}T{9 + i % 8:02d}:30:00"}


def change_deliveries(emulator_control) -> list[dict]:
    return [d for d in emulator_control.notifications()["deliveries"] if d["kind"] == "change"]


def test_a_burst_arrives_batched_in_few_posts(app_graph, webhook, emulator_control):
    """Changes within the window share a POST, at most ``max`` items each; none is lost or doubled."""
    subscribe(app_graph, webhook)
    emulator_control.set_notification_batching(max=5, window_ms=400)
    created = [app_graph.post(f"/users/{ATLAS}/events", meeting(f"burst {i}", **slot(i))).json()["id"] for i in range(12)]
    wait_for(lambda: len(webhook.items()) >= 12)
    time.sleep(0.5)  # nothing more comes
    posts = webhook.posts()
    assert sorted(i["resourceData"]["id"] for post in posts for i in post) == sorted(created)
    assert all(len(post) <= 5 for post in posts)
    assert len(posts) <= 4 and max(len(post) for post in posts) == 5, [len(p) for p in posts]
    assert len({i["id"] for post in posts for i in post}) == 12  # each changeNotification has its own id
    deliveries = change_deliveries(emulator_control)
    assert sum(d["items"] for d in deliveries) == 12 and all(d["ok"] for d in deliveries)


def test_one_post_carries_several_subscriptions(app_graph, webhook, emulator_control):
    """"Microsoft Graph may send multiple notifications that correspond to different subscriptions in the same POST"."""
    atlas, borealis = subscribe(app_graph, webhook).json(), subscribe(app_graph, webhook, resource=f"users/{BOREALIS}/events").json()
    emulator_control.set_notification_batching(max=10, window_ms=400)
    app_graph.post(f"/users/{ATLAS}/events", meeting("in atlas"))
    app_graph.post(f"/users/{BOREALIS}/events", meeting("in borealis"))
    wait_for(lambda: len(webhook.items()) >= 2)
    posts = webhook.posts()
    assert len(posts) == 1 and {i["subscriptionId"] for i in posts[0]} == {atlas["id"], borealis["id"]}
    assert {i["clientState"] for i in posts[0]} == {"secret-state"}


def test_by_default_the_notifications_of_one_moment_share_a_post(app_graph, webhook, emulator_control):
    """The default batches as Graph may: one change seen by two subscriptions (same notificationUrl)
    arrives as one POST of two items; changes made one after another still come one by one (no window)."""
    first, second = subscribe(app_graph, webhook).json(), subscribe(app_graph, webhook).json()
    assert emulator_control.config()["notification_batch_max"] == 25
    app_graph.post(f"/users/{ATLAS}/events", meeting("seen twice"))
    wait_for(lambda: len(webhook.items()) >= 2)
    time.sleep(0.3)  # nothing more comes
    posts = webhook.posts()
    assert len(posts) == 1 and sorted(i["subscriptionId"] for i in posts[0]) == sorted([first["id"], second["id"]])


def test_without_batching_each_change_has_its_own_post(app_graph, webhook, emulator_control):
    subscribe(app_graph, webhook)
    emulator_control.set_notification_batching(max=1)
    for i in range(3):
        app_graph.post(f"/users/{ATLAS}/events", meeting(f"single {i}", **slot(i)))
    wait_for(lambda: len(webhook.items()) >= 3)
    assert [len(p) for p in webhook.posts()] == [1, 1, 1]


def test_a_failing_endpoint_is_retried_with_back_off_then_discarded_and_missed_is_sent(app_graph, webhook, emulator_control):
    emulator_control.configure(notification_retry_delays=[0.1, 0.2], notification_retry_max_seconds=1.2)
    sub = subscribe(app_graph, webhook).json()
    emulator_control.set_notification_batching(max=10, window_ms=200)
    webhook.fail_path, webhook.fail_next = "/notify", 1000
    for i in range(3):
        app_graph.post(f"/users/{ATLAS}/events", meeting(f"lost {i}", **slot(i)))
    lost = wait_for(lambda: [d for d in change_deliveries(emulator_control) if d["dropped"]], timeout=10)
    assert lost[0]["reason"] == "expired" and lost[0]["items"] == 3
    attempts = [d for d in change_deliveries(emulator_control) if not d["dropped"]]
    assert [d["attempt"] for d in attempts] == [1, 2, 3, 4]  # waits 0.1, 0.2, 0.4 (doubling), then 0.8 would pass 1.2 s
    gaps = [b["time"] - a["time"] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39
    assert webhook.items() == []
    missed = wait_for(lambda: webhook.items("/lifecycle"))
    time.sleep(0.3)
    missed = webhook.items("/lifecycle")
    assert [(m["lifecycleEvent"], m["subscriptionId"], m["clientState"]) for m in missed] == [("missed", sub["id"], "secret-state")]


def test_a_slow_endpoint_is_throttled_then_recovers(app_graph, webhook, emulator_control):
    """Answers slower than notification_slow_ms (Graph: 2900 ms); once min_responses (100) answered
    and slow_percent (10 %) of them were slow, new notifications wait the throttled delay (10 min)."""
    emulator_control.configure(notification_slow_ms=150, notification_throttle_min_responses=3, notification_slow_percent=50,
                               notification_drop_percent=101, notification_throttled_delay_seconds=1.0,
                               notification_throttle_window_seconds=3.0)
    subscribe(app_graph, webhook)
    webhook.notify_delay = 0.2
    for i in range(3):
        app_graph.post(f"/users/{ATLAS}/events", meeting(f"slow {i}", **slot(i)))
        wait_for(lambda n=i: len(webhook.items()) > n)
    url = webhook.url + "/notify"
    assert emulator_control.notifications()["endpoints"][url]["state"] == "slow"
    webhook.notify_delay = 0
    sent = time.monotonic()
    app_graph.post(f"/users/{ATLAS}/events", meeting("delayed", **slot(5)))
    wait_for(lambda: len(webhook.items()) == 4, timeout=5)
    assert webhook.received[-1]["at"] - sent >= 1.0
    # The tally is flushed after the window: the endpoint is no longer throttled.
    wait_for(lambda: emulator_control.notifications()["endpoints"][url]["state"] == "ok", timeout=6)
    sent = time.monotonic()
    app_graph.post(f"/users/{ATLAS}/events", meeting("on time", **slot(6)))
    wait_for(lambda: len(webhook.items()) == 5, timeout=5)
    assert webhook.received[-1]["at"] - sent < 1.0


def test_a_very_slow_endpoint_has_its_notifications_dropped_and_missed_sent(app_graph, webhook, emulator_control):
    emulator_control.configure(notification_timeout_seconds=0.3, notification_throttle_min_responses=3,
                               notification_retry_delays=[30])
    sub = subscribe(app_graph, webhook).json()
    webhook.notify_delay = 0.5  # past the client's timeout: each one counts as slow
    for i in range(3):
        app_graph.post(f"/users/{ATLAS}/events", meeting(f"timeout {i}", **slot(i)))
    wait_for(lambda: len([d for d in change_deliveries(emulator_control) if d["error"] == "timeout"]) >= 3)
    url = webhook.url + "/notify"
    assert emulator_control.notifications()["endpoints"][url] == {"responses": 3, "slow": 3, "state": "drop", "slow_percent": 100.0}
    webhook.notify_delay = 0
    app_graph.post(f"/users/{ATLAS}/events", meeting("dropped", **slot(6)))
    dropped = wait_for(lambda: [d for d in change_deliveries(emulator_control) if d["dropped"]])
    assert dropped[0]["reason"] == "throttled" and dropped[0]["payload"]["value"][0]["changeType"] == "created"
    missed = wait_for(lambda: webhook.items("/lifecycle"))
    assert missed[0]["lifecycleEvent"] == "missed" and missed[0]["subscriptionId"] == sub["id"]
    assert not [i for i in webhook.items() if i["resourceData"]["id"] == dropped[0]["payload"]["value"][0]["resourceData"]["id"]]


def test_the_request_counter_covers_notifications(app_graph, webhook, emulator_control):
    subscribe(app_graph, webhook)
    emulator_control.clear_request_log()
    emulator_control.set_notification_batching(max=10, window_ms=300)
    for i in range(4):
        app_graph.post(f"/users/{ATLAS}/events", meeting(f"counted {i}", **slot(i)))
    wait_for(lambda: len(webhook.items()) >= 4)
    counts = emulator_control.request_log()["counts"]["by_mailbox_kind"]
    assert counts[f"{ATLAS} write"] == 4 and counts[f"{ATLAS} notification"] == 4
    assert counts["* change_post"] == len(webhook.posts()) < 4
    emulator_control.clear_request_log()
    assert f"{ATLAS} notification" not in emulator_control.request_log()["counts"]["by_mailbox_kind"]


@pytest.mark.parametrize("body", [{"max": 0}, {"max": "5"}, {"max": True}, {"max": 5, "window_ms": -1}, {"window_ms": "x"}])
def test_bad_batching_is_refused(emulator_control, body):
    with pytest.raises(RuntimeError, match=r"failed \(400\)"):
        emulator_control._call("POST", "notifications/batching", body)
    assert emulator_control.config()["notification_batch_max"] == 25  # the default, unchanged


@pytest.mark.parametrize("body", [{"notification_batch_max": 0}, {"notification_retry_delays": []},
                                  {"notification_retry_max_seconds": "4h"}, {"notification_slow_percent": -1}])
def test_bad_delivery_config_is_refused(emulator_control, body):
    with pytest.raises(RuntimeError, match=r"failed \(400\)"):
        emulator_control.configure(**body)


def test_command_line_flags(tmp_path):
    from graph_emulator.__main__ import main

    with pytest.raises(SystemExit):
        main(["--notification-batch-max", "0"])
    with pytest.raises(SystemExit):
        main(["--notification-batch-window-ms", "-5"])
