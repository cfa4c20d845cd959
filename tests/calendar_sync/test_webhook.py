"""The webhook (calendar_sync/inbound/webhook.py): the validation handshake, and a
notification whose ``clientState`` doesn't match is refused without effect."""

from __future__ import annotations

import pytest

from calendar_sync.models import (
    Subscription,
    WebhookNotification,
)
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_validation_handshake_echoes_the_token_as_plain_text(client):
    resp = client.post("/sync/webhook/?validationToken=Validation%3A+hello+42", data=b"", content_type="text/plain")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    assert resp.content == b"Validation: hello 42"


def test_a_spoofed_notification_gets_202_and_has_no_effect(subscribed, client, caplog):
    sub = Subscription.objects.get(mailbox=ATLAS)
    before = WebhookNotification.objects.count()
    payload = {"value": [{"subscriptionId": sub.graph_id, "clientState": "guess", "changeType": "created",
                          "resource": "Users/x/Events/y", "resourceData": {"id": "y"}}]}
    resp = client.post("/sync/webhook/", data=payload, content_type="application/json")
    assert resp.status_code == 202
    assert WebhookNotification.objects.count() == before
    assert "refused" in caplog.text
