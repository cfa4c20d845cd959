"""The change-notification endpoint Graph calls (``/sync/webhook/``, lifecycle events at
``/sync/webhook/lifecycle/``).

1. ``?validationToken=...`` (subscription handshake) → 200 text/plain echo, nothing else.
2. A notification batch: each item's subscription is looked up by Graph's id and its
   ``clientState`` compared in constant time with our secret's hash. Items that don't
   match (spoofed, or for a subscription we dropped) are logged and left out.
3. Genuine items are stored in the inbox with one ``bulk_create`` *before* the 202.
4. After commit, one delta pull per mailbox is requested (coalesced: at most one
   queued per mailbox) and lifecycle events are queued for handling.
Graph waits at most 3 seconds: nothing here calls Graph or reconciles anything.

The endpoint is open to anyone, so the body is read defensively: JSON nested too deeply
to parse, or any string with a NUL (PostgreSQL can store neither in text nor in jsonb;
Graph never sends one) is dropped, and an item whose ``subscriptionId``/``clientState``
isn't a string or whose ``resourceData`` isn't an object is refused like a spoofed one.
Whatever is sent, the answer is a 202 (or 413/405/200 above) that stores nothing false.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from observability import metrics

from ..models import Subscription, WebhookNotification
from . import tasks

logger = logging.getLogger("calendar_sync.webhook")

MAX_BODY_BYTES = 1_000_000
LAST_NOTIFICATION_STEP = dt.timedelta(seconds=30)


@csrf_exempt
def notifications(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("validationToken")
    if token is not None:
        return HttpResponse(token, content_type="text/plain; charset=utf-8", status=200)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    if len(request.body) > MAX_BODY_BYTES:
        logger.warning("webhook: body of %d bytes refused", len(request.body))
        return HttpResponse(status=413)
    try:
        items = json.loads(request.body or b"{}").get("value") or []
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, nested too deep
        logger.warning("webhook: malformed body ignored")
        return HttpResponse(status=202)
    if not isinstance(items, list):
        return HttpResponse(status=202)
    well_formed = [item for item in items if _well_formed(item)]
    store_notifications(well_formed, malformed=len(items) - len(well_formed))
    return HttpResponse(status=202)


def _well_formed(item) -> bool:
    """An item the inbox can hold: an object whose ids are strings and with no NUL anywhere."""
    if not isinstance(item, dict):
        return False
    if not isinstance(item.get("subscriptionId"), str) or not isinstance(item.get("clientState"), str | None):
        logger.warning("webhook: notification refused (subscriptionId or clientState not a string)")
        return False
    if not isinstance(item.get("resourceData"), dict | None):
        logger.warning("webhook: notification refused (resourceData not an object)")
        return False
    try:
        text = json.dumps(item)
    except (ValueError, RecursionError):
        return False
    if "\\u0000" in text:
        logger.warning("webhook: notification refused (a NUL character)")
        return False
    return True


def store_notifications(items: list[dict], *, malformed: int = 0) -> list[WebhookNotification]:
    """Steps 2–4 of the module doc; returns the stored rows. A POST of many notifications (Graph
    batches them, several subscriptions in one) costs the same few round trips as one: one
    query for the subscriptions, one INSERT, one UPDATE of the subscriptions not marked
    recently, one Redis round for the metrics, then one coalesced pull request per mailbox."""
    ids = {item["subscriptionId"] for item in items} - {""}
    subscriptions = {s.graph_id: s for s in Subscription.objects.filter(graph_id__in=ids)} if ids else {}
    rows = []
    for item in items:
        sub = subscriptions.get(item["subscriptionId"])
        if sub is None or not sub.client_state_matches(item.get("clientState")):
            logger.warning(
                "webhook: notification refused (unknown subscription or wrong clientState) subscription=%s",
                item["subscriptionId"][:64],
            )
            continue
        lifecycle = str(item.get("lifecycleEvent") or "")
        payload = {k: v for k, v in item.items() if k != "clientState"}  # never store the secret
        rows.append(WebhookNotification(
            kind=WebhookNotification.Kind.LIFECYCLE if lifecycle else WebhookNotification.Kind.CHANGE,
            subscription=sub, subscription_graph_id=sub.graph_id, mailbox=sub.mailbox,
            change_type=str(item.get("changeType") or "")[:20], lifecycle_event=lifecycle[:40],
            event_id=str(((item.get("resourceData") or {}).get("id")) or "")[:512], payload=payload,
        ))
    refused = len(items) - len(rows) + malformed
    stored: list[WebhookNotification] = []
    if rows:
        with transaction.atomic():
            stored = WebhookNotification.objects.bulk_create(rows)
            mailboxes = sorted({r.mailbox for r in stored if r.kind == WebhookNotification.Kind.CHANGE})
            lifecycle_ids = [r.pk for r in stored if r.kind == WebhookNotification.Kind.LIFECYCLE]
            transaction.on_commit(lambda: _queue(mailboxes, lifecycle_ids), robust=True)
        # Outside the inbox's transaction: a burst's concurrent POSTs share subscriptions, and
        # an UPDATE held until their commit would queue them behind each other. Marking a
        # subscription once per LAST_NOTIFICATION_STEP is enough for the health page.
        now = timezone.now()
        Subscription.objects.filter(pk__in={r.subscription_id for r in rows}).filter(
            Q(last_notification_at__isnull=True) | Q(last_notification_at__lt=now - LAST_NOTIFICATION_STEP),
        ).update(last_notification_at=now)
    metrics.inc_many(metrics.NOTIFICATIONS, [
        (refused, {"kind": "any", "outcome": "refused"}),
        *((sum(1 for r in stored if r.kind == kind), {"kind": kind, "outcome": "stored"})
          for kind in (WebhookNotification.Kind.CHANGE, WebhookNotification.Kind.LIFECYCLE)),
    ])
    return stored


def _queue(mailboxes: list[str], lifecycle_ids: list[int]) -> None:
    tasks.request_pull_many(mailboxes)
    for pk in lifecycle_ids:
        tasks.handle_lifecycle_notification.delay(pk)
