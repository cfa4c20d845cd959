"""Graph refuses a subscription it can't deliver to (issue 18, item 4): an http notification URL
(400 InvalidRequest "NotificationUrl scheme='http' is not supported.") or an endpoint that fails
the validation handshake (400 ValidationError). Such a room is polled instead, with the reason and
its fix, and the admins are told once, like the 403 path; once Graph accepts, it is subscribed.

Against the emulator, with the real webhook (``live_server``); the emulator refuses http only
when asked (``POST /_emulator/subscriptions/https_only``), since the tests' webhook is plain http."""

from __future__ import annotations

import pytest
from django.core import mail

from calendar_sync.inbound import tasks as inbound_tasks
from calendar_sync.models import Subscription
from tests.calendar_sync.inbound_helpers import ATLAS

pytestmark = pytest.mark.django_db(transaction=True)


def https_only(emulator, enabled: bool = True) -> None:
    emulator._call("POST", "subscriptions/https_only", {"enabled": enabled})


def rows(status: str) -> list[Subscription]:
    return list(Subscription.objects.filter(mailbox=ATLAS, status=status))


def polling_alerts() -> list:
    return [m for m in mail.outbox if "Polling atlas@contoso.example" in m.subject]


def test_an_http_notification_url_graph_refuses_makes_the_room_polled_with_the_reason(settings, live_server, emulator, provider, atlas, admin):
    settings.PUBLIC_BASE_URL = live_server.url  # http://localhost:port
    https_only(emulator)

    counts = inbound_tasks.subscriptions_ensure(provider=provider)

    assert (counts["created"], counts["failed"], counts["polling"]) == (0, 0, 1)
    [polled] = rows(Subscription.Status.POLLING)
    assert "NotificationUrl scheme='http' is not supported" in polled.polling_reason
    assert "PUBLIC_BASE_URL" in polled.polling_reason and "https://" in polled.polling_reason
    assert not emulator.subscriptions()
    assert len(polling_alerts()) == 1

    # The next runs keep polling and don't tell the admins again.
    inbound_tasks.subscriptions_ensure(provider=provider)
    assert len(rows(Subscription.Status.POLLING)) == 1 and len(polling_alerts()) == 1

    # Once Graph can deliver (here: the emulator accepts the URL again) it is subscribed and polling stops.
    https_only(emulator, enabled=False)
    counts = inbound_tasks.subscriptions_ensure(provider=provider)
    assert counts["created"] == 1
    assert not rows(Subscription.Status.POLLING) and len(rows(Subscription.Status.ACTIVE)) == 1


def test_a_failed_validation_handshake_makes_the_room_polled_with_the_reason(settings, live_server, emulator, provider, atlas, admin):
    settings.PUBLIC_BASE_URL = live_server.url + "/not-the-app"  # the proxy sends Graph's handshake nowhere: 404

    counts = inbound_tasks.subscriptions_ensure(provider=provider)

    assert (counts["created"], counts["failed"], counts["polling"]) == (0, 0, 1)
    [polled] = rows(Subscription.Status.POLLING)
    assert "Subscription validation request failed" in polled.polling_reason
    assert "/not-the-app/sync/webhook/" in polled.polling_reason
    assert len(polling_alerts()) == 1
