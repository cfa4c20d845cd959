"""Subscriptions: the validation handshake, notifications with retries and delivery policies, lifecycle events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from graph_emulator.seed import DEMO_CLIENT_ID
from tests.graph_emulator.helpers import (
    ALICE,
    ATLAS,
    BOB,
    BOREALIS,
    RESERVATIONS,
    meeting,
)
from tests.waiting import wait_for


def expiry(minutes=60):
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscribe(app_graph, webhook, resource=f"users/{ATLAS}/events", **extra):
    body = {"changeType": "created,updated,deleted", "notificationUrl": webhook.url + "/notify",
            "lifecycleNotificationUrl": webhook.url + "/lifecycle", "resource": resource,
            "expirationDateTime": expiry(), "clientState": "secret-state", **extra}
    return app_graph.post("/subscriptions", body)


def test_create_list_renew_delete(app_graph, webhook):
    r = subscribe(app_graph, webhook)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert {"id", "resource", "applicationId", "changeType", "clientState", "notificationUrl", "expirationDateTime",
            "lifecycleNotificationUrl", "creatorId", "latestSupportedTlsVersion", "includeResourceData"} <= set(sub)
    assert len(webhook.validations) == 2 and webhook.validations[0].startswith("Validation:")
    assert [s["id"] for s in app_graph.get("/subscriptions").json()["value"]] == [sub["id"]]
    renewed = app_graph.patch(f"/subscriptions/{sub['id']}", {"expirationDateTime": expiry(120)})
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
    too_far = app_graph.patch(f"/subscriptions/{sub['id']}", {"expirationDateTime": expiry(10081)})
    assert too_far.status_code == 400 and too_far.json()["error"]["code"] == "ExtensionError"
    assert app_graph.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert app_graph.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_handshake_failures_create_nothing(app_graph, webhook, emulator_control):
    for mode in ("wrong", "error"):
        webhook.validation_mode = mode
        r = subscribe(app_graph, webhook)
        assert r.status_code == 400 and r.json()["error"]["code"] == "ValidationError"
    emulator_control.configure(validation_timeout_seconds=0.5)
    webhook.validation_mode = "slow"
    assert subscribe(app_graph, webhook).status_code == 400
    assert subscribe(app_graph, webhook, notificationUrl="http://127.0.0.1:9/nothing").status_code == 400
    assert app_graph.get("/subscriptions").json()["value"] == []
    webhook.validation_mode = "echo"
    assert subscribe(app_graph, webhook, expirationDateTime=expiry(10081)).status_code == 400
    assert subscribe(app_graph, webhook, resource="users/nobody@contoso.example/events").status_code == 404


def test_notifications_for_changes(app_graph, webhook):
    sub = subscribe(app_graph, webhook).json()
    # Each change's notification travels on its own request (Graph promises no order between
    # them): the next change waits until the previous one's notification has arrived.
    ev = app_graph.post(f"/users/{ATLAS}/events", meeting("Held")).json()
    wait_for(lambda: len(webhook.items()) >= 1)
    app_graph.patch(f"/users/{ATLAS}/events/{ev['id']}", {"subject": "Held, renamed"})
    wait_for(lambda: len(webhook.items()) >= 2)
    app_graph.delete(f"/users/{ATLAS}/events/{ev['id']}")
    items = wait_for(lambda: len(webhook.items()) >= 3 and webhook.items())
    assert [i["changeType"] for i in items] == ["created", "updated", "deleted"]
    first = items[0]
    assert first["subscriptionId"] == sub["id"] and first["clientState"] == "secret-state"
    assert first["tenantId"] and first["subscriptionExpirationDateTime"]
    assert first["resource"] == f"Users/{ev['organizer'] and app_graph.get(f'/users/{ATLAS}').json()['id']}/Events/{ev['id']}"
    assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event" and first["resourceData"]["id"] == ev["id"]
    assert first["resourceData"]["@odata.etag"].startswith('W/"')


def test_attendant_changes_notify_the_room_subscription(app_graph, webhook):
    subscribe(app_graph, webhook)
    app_graph.post(f"/users/{ALICE}/events", meeting(rooms=[ATLAS]))
    items = wait_for(lambda: webhook.items())
    assert items[0]["changeType"] == "created"


def test_retries_after_failures(app_graph, webhook, emulator_control):
    emulator_control.configure(notification_retry_delays=[0.05, 0.05, 0.05])
    subscribe(app_graph, webhook)
    webhook.fail_next = 2
    app_graph.post(f"/users/{ATLAS}/events", meeting())
    items = wait_for(lambda: webhook.items())
    assert len(items) == 1
    attempts = wait_for(lambda: [d for d in emulator_control.notifications()["deliveries"] if d["kind"] == "change"][-1]["ok"]
                        and emulator_control.notifications()["deliveries"])
    assert [d["attempt"] for d in attempts if d["kind"] == "change"] == [1, 2, 3]


def test_drop_and_duplicate_policy(app_graph, webhook, emulator_control):
    subscribe(app_graph, webhook)
    emulator_control.set_notification_policy(drop=1, duplicate=1)
    first = app_graph.post(f"/users/{ATLAS}/events", meeting("dropped")).json()
    second = app_graph.post(f"/users/{ATLAS}/events", meeting("twice", start="2030-02-01T09:00:00", end="2030-02-01T10:00:00")).json()
    items = wait_for(lambda: len(webhook.items()) >= 2 and webhook.items())
    ids = [i["resourceData"]["id"] for i in items]
    assert ids == [second["id"], second["id"]] and first["id"] not in ids


def test_lifecycle_notifications(app_graph, webhook, emulator_control):
    sub = subscribe(app_graph, webhook).json()
    emulator_control.trigger_lifecycle(sub["id"], "reauthorizationRequired")
    item = wait_for(lambda: webhook.items("/lifecycle"))[0]
    assert item["lifecycleEvent"] == "reauthorizationRequired" and item["subscriptionId"] == sub["id"]
    assert item["clientState"] == "secret-state"
    assert app_graph.post(f"/subscriptions/{sub['id']}/reauthorize").status_code == 204
    emulator_control.trigger_lifecycle(sub["id"], "subscriptionRemoved")
    wait_for(lambda: len(webhook.items("/lifecycle")) == 2)
    assert app_graph.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_a_delegated_token_subscribes_only_to_its_own_mailbox(as_user, app_graph, webhook, emulator_control):
    """Outlook resources: delegated permission subscribes only to the signed-in user's mailbox. A
    delegate may read the room's calendar but not subscribe to it (that needs app-only)."""
    delegate = as_user(RESERVATIONS)
    assert delegate.get(f"/users/{ATLAS}/events").status_code == 200  # reading as its delegate is allowed
    refused = subscribe(delegate, webhook, resource=f"users/{ATLAS}/events")
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "ExtensionError"
    assert error["message"] == ("Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. "
                                "Check credentials and try again.]")
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    assert subscribe(as_user(ALICE), webhook, resource=f"users/{BOB}/events").status_code == 403  # not a delegate either
    assert webhook.validations == []  # refused before the handshake
    assert app_graph.get("/subscriptions").json()["value"] == []
    # Its own mailbox, either way of naming it.
    own = subscribe(delegate, webhook, resource=f"users/{RESERVATIONS}/events")
    assert own.status_code == 201, own.text
    assert subscribe(delegate, webhook, resource="me/events").status_code == 201
    # App-only still subscribes to any mailbox its access policy allows.
    assert subscribe(app_graph, webhook).status_code == 201
    emulator_control.set_access_policy(DEMO_CLIENT_ID, [RESERVATIONS])
    blocked = subscribe(app_graph, webhook, resource=f"users/{BOREALIS}/events")
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "ErrorAccessDenied"
