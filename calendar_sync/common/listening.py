"""Which mailboxes the product is listening to right now: the room's answer to a meeting in
one of them reaches us through its pull (inbound ``organizer_calendar`` reads it from the
organizer's copy, ``room_calendar`` from the room's), so the answer check can wait for it
instead of reading every meeting (issue 17: in Strict mode one answer read per create in the
one organizer mailbox; a pull reads up to 200 changes a request).

A mailbox is *listened to* when its subscription (``Subscription``):

1. is ``active`` (not failed, removed or polling) with no error recorded (its provider's being
   active is the caller's: a reservation's provider is an active one);
2. outlives the wait: it expires later than ``within`` seconds from now;
3. has proved lately that Graph reaches the webhook: a notification received, or the
   subscription made (its validation handshake), in the last ``LISTENED_WITHIN``. Graph may
   drop notifications it can't deliver in time, for good
   (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks,
   "Considerations for a webhook endpoint"); a mailbox busy enough for its reads to matter to
   its 10,000 requests per 10 minutes hears from Graph far more often than that;
4. has no notification waiting unpulled for longer than ``within`` seconds: its pulls keep up
   (inbound workers running), so an answer notified now is applied within the wait.

One query, whatever the number of reservations. Anything else is read as before."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q

from ..models import Subscription, WebhookNotification

LISTENED_WITHIN = dt.timedelta(minutes=10)  # Outlook's request window: a mailbox quieter than that needs no saving


def listened_mailboxes(now: dt.datetime, *, within: float) -> set[tuple[int, str]]:
    """(provider id, lowercased mailbox) of every mailbox listened to at ``now`` (the module doc)
    for the ``within`` seconds an answer check would wait for its pull."""
    wait = dt.timedelta(seconds=within)
    recent = now - LISTENED_WITHIN
    stale = WebhookNotification.objects.filter(
        mailbox=OuterRef("mailbox"), state=WebhookNotification.State.RECEIVED, received_at__lt=now - wait,
    )
    rows = (
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, last_error="", expires_at__gt=now + wait)
        .exclude(graph_id="")
        .filter(Q(last_notification_at__gte=recent) | Q(created_at__gte=recent))
        .filter(~Exists(stale))
        .values_list("provider_id", "mailbox")
    )
    return {(provider_id, mailbox.lower()) for provider_id, mailbox in rows}
