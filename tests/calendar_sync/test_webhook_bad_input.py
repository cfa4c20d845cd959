"""The webhook is open to anyone: whatever is posted there, the answer is a 202 that stores
nothing (issue 13, item 5), never a 500."""

import json

import pytest

from calendar_sync.models import Subscription, WebhookNotification, hash_client_state
from exchange_auth.models import CalendarProvider

pytestmark = pytest.mark.django_db

SECRET = "the-client-state"


@pytest.fixture
def subscription(db):
    provider = CalendarProvider.objects.create(
        name="Contoso", active=False, tenant_id="contoso", client_id="wsd-demo-client",
        authority_host="https://login.example.invalid", graph_base_url="https://graph.example.invalid/v1.0",
    )
    return Subscription.objects.create(
        provider=provider, mailbox="atlas@contoso.example", graph_id="sub-1", resource="users/atlas@contoso.example/events",
        client_state_hash=hash_client_state(SECRET),
    )


def item(**overrides):
    body = {"subscriptionId": "sub-1", "clientState": SECRET, "changeType": "created",
            "resource": "Users/atlas/Events/e1", "resourceData": {"id": "e1"}}
    body.update(overrides)
    return body


@pytest.mark.parametrize("path", ["/sync/webhook/", "/sync/webhook/lifecycle/"])
@pytest.mark.parametrize("body", [
    json.dumps({"value": [item(subscriptionId="sub-1\u0000")]}),
    json.dumps({"value": [item(resourceData={"id": "e\u00001"})]}),
    json.dumps({"value": [item(clientState=[SECRET])]}),
    json.dumps({"value": [item(clientState={"a": 1})]}),
    json.dumps({"value": [item(subscriptionId=["sub-1"])]}),
    json.dumps({"value": [item(resourceData=["e1"])]}),
    "[" * 5000,
    '{"value": ' + "[" * 5000,
    '{"value": [' + '{"a": ' * 3000 + "1" + "}" * 3000 + "]}",
], ids=["nul-in-subscription-id", "nul-in-resource-data", "client-state-list", "client-state-object",
        "subscription-id-list", "resource-data-list", "nested-array", "nested-value", "nested-objects"])
def test_a_hostile_notification_gets_202_and_stores_nothing(client, subscription, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 202
    assert not WebhookNotification.objects.exists()


def test_a_genuine_notification_is_still_stored(client, subscription, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/sync/webhook/", data=json.dumps({"value": [item()]}), content_type="application/json")
    assert response.status_code == 202
    assert WebhookNotification.objects.get().event_id == "e1"
