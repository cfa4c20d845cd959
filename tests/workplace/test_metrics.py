"""What operators see (issue 17 item 6): Prometheus metrics at /metrics, protected; the
correlation id from the API request through its push to each Graph call; JSON log lines;
the admin's sync-health page. Counters live in Redis, so every process adds to one figure."""

import datetime as dt
import json
import logging

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from calendar_sync.models import Subscription, WebhookNotification
from calendar_sync.outbound import tasks as outbound_tasks
from observability import correlation, logs, metrics
from reservations.models import SyncEvent
from tests.factories import days_ahead

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def test_metrics_are_refused_outside_the_allowed_networks_without_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", **outside)
    assert refused.status_code == 403 and "METRICS_TOKEN" in refused.json()["message"]
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **outside).status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", **outside).status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403  # nothing allowed: not even loopback


def test_every_declared_metric_is_exported_before_anything_happened(client):
    text = client.get("/metrics").content.decode()
    for metric in (*metrics.COUNTERS, *metrics.HISTOGRAMS):
        assert f"# HELP {metric.name}" in text or f"# HELP {metric.name}_total" in text, metric.name
    for gauge in ("workplace_queue_depth", "workplace_sync_events", "workplace_sync_event_oldest_pending_age_seconds",
                  "workplace_subscriptions", "workplace_webhook_inbox_waiting", "workplace_nightly_last_duration_seconds"):
        assert f"# HELP {gauge} " in text, gauge


@pytest.mark.django_db(transaction=True)  # the push runs at the service's commit, inside the request
def test_a_booking_through_the_api_is_counted_and_carries_its_correlation_id_to_graph(
        provider, mode, emulator, alice_api, atlas, client, caplog):
    mode("Normal")
    start = days_ahead(2, 10)
    caplog.set_level(logging.INFO, logger="exchange_auth.graph")
    response = alice_api.post("/api/v1/reservations/", {"room": atlas.pk, "subject": "Counted", "start": start.isoformat(),
                                                        "end": (start + dt.timedelta(hours=1)).isoformat()},
                              format="json", HTTP_X_REQUEST_ID="req-0123456789abcdef")
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "req-0123456789abcdef"
    samples = scrape(client)
    assert value(samples, "workplace_sync_pushes_total", outcome="processed") == 1
    assert value(samples, "workplace_graph_requests_total", method="POST", status=201, mailbox_class="user") == 1
    assert value(samples, "workplace_graph_request_duration_seconds_count", method="POST") >= 1
    # Each Graph call logged the request's correlation id and our client-request-id, which
    # Graph (the emulator) received and logged too.
    calls = [r for r in caplog.records if r.getMessage().startswith("graph_call")]
    assert calls and all(r.graph["correlation_id"] == "req-0123456789abcdef" for r in calls)
    sent = {r.graph["client_request_id"] for r in calls}
    seen = {e["client_request_id"] for e in emulator.request_log()["entries"]}
    assert sent <= seen and len(sent) == len(calls)  # one GUID per request


def test_throttling_and_retry_waits_are_counted(provider, mode, emulator, alice, atlas, client, monkeypatch,
                                                django_capture_on_commit_callbacks):
    mode("Normal")
    monkeypatch.setattr("exchange_auth.graph.time.sleep", lambda s: None)
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, status=429, retry_after=3)
    from tests.booking import book

    book(actor=alice, room=atlas, start=days_ahead(2, 11), capture_on_commit=django_capture_on_commit_callbacks)
    samples = scrape(client)
    assert value(samples, "workplace_graph_throttled_total", mailbox_class="user") == 1
    assert value(samples, "workplace_graph_requests_total", method="POST", status=429, mailbox_class="user") == 1
    assert value(samples, "workplace_graph_retry_wait_seconds_total", reason="retry_after") >= 3


def test_the_gauges_read_the_outbox_inbox_and_subscriptions(provider, client, alice, atlas):
    from tests.factories import ReservationFactory

    reservation = ReservationFactory(room=atlas, requested_by=alice, requested_for=alice)
    event = SyncEvent.objects.create(reservation=reservation, type="create")
    SyncEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    sub = Subscription.objects.create(provider=provider, mailbox="atlas@contoso.example", resource="/users/atlas@contoso.example/events",
                                      client_state_hash="x" * 64, expires_at=timezone.now() + dt.timedelta(hours=2))
    WebhookNotification.objects.create(subscription=sub, mailbox=sub.mailbox, payload={})
    samples = scrape(client)
    assert value(samples, "workplace_sync_events", state="new") == 1
    assert 290 <= value(samples, "workplace_sync_event_oldest_pending_age_seconds") < 600
    assert value(samples, "workplace_subscriptions", kind="room", status="active") == 1
    assert 7000 < value(samples, "workplace_subscription_next_expiry_seconds") <= 7200
    assert value(samples, "workplace_webhook_inbox_waiting") == 1
    assert ("workplace_queue_depth", (("queue", "outbound"),)) in samples  # Redis broker in the tests
    assert ("workplace_queue_depth", (("queue", "answers"),)) in samples


def test_counters_add_up_across_processes_through_redis(client):
    """Two "processes" (two stores) add to one figure: what a scrape of any web process shows."""
    other = metrics._Store()
    metrics.inc(metrics.PUSHES, outcome="retry")
    other.add([(metrics.PUSHES.name, json.dumps(["retry"]), 2)])
    assert value(scrape(client), "workplace_sync_pushes_total", outcome="retry") == 3


def test_json_log_lines_carry_the_correlation_id_and_the_structured_extra():
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("exchange_auth.graph", logging.INFO, __file__, 1, "graph_call status=%s", (201,), None)
    record.graph = {"status": 201, "client_request_id": "abc"}
    with correlation.bound("corr-1234567890"):
        logs.CorrelationFilter().filter(record)
        line = json.loads(formatter.format(record))
    assert line["message"] == "graph_call status=201" and line["level"] == "INFO" and line["logger"] == "exchange_auth.graph"
    assert line["correlation_id"] == "corr-1234567890" and line["graph"] == {"status": 201, "client_request_id": "abc"}
    assert line["ts"].endswith("+00:00")


def test_a_callers_request_id_is_used_only_when_sane(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc 'or 1=1").headers["X-Request-ID"] != "abc 'or 1=1"
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_a_task_queued_in_a_request_carries_its_correlation_id():
    """The publish side of the Celery signals (the worker side: test_correlation_reaches_the_worker)."""
    from observability import celery_context

    headers = {}
    with correlation.bound("corr-abcdef123456"):
        celery_context._on_publish(headers=headers)
    assert headers[correlation.TASK_HEADER] == "corr-abcdef123456"
    assert outbound_tasks.push_sync_event.name.startswith("calendar_sync.outbound")


def test_the_admin_sync_health_page_shows_the_figures(admin_client, provider):
    page = admin_client.get("/admin/sync-health/")
    assert page.status_code == 200
    text = page.content.decode()
    for heading in ("Queues", "Outbox", "Webhook inbox", "Subscriptions", "Graph", "Nightly"):
        assert heading in text, heading
    assert admin_client.get("/admin/").content.decode().count("/admin/sync-health/") >= 1


def test_the_sync_health_page_is_for_staff(client, alice):
    client.force_login(alice)
    assert client.get("/admin/sync-health/").status_code == 302


def test_the_lag_from_notification_to_reservation_is_measured(provider, emulator, bob, atlas, client):
    from calendar_sync.inbound import delta
    from tests.calendar_sync.inbound_helpers import ATLAS, BOB, outlook_meeting

    outlook_meeting(emulator, BOB, [ATLAS], days_ahead(2, 9))
    sub = Subscription.objects.create(provider=provider, mailbox=ATLAS, resource=f"/users/{ATLAS}/events", client_state_hash="x" * 64)
    note = WebhookNotification.objects.create(subscription=sub, mailbox=ATLAS, change_type="created", payload={})
    WebhookNotification.objects.filter(pk=note.pk).update(received_at=timezone.now() - dt.timedelta(seconds=4))
    delta.pull_mailbox(ATLAS)
    samples = scrape(client)
    assert value(samples, "workplace_notification_lag_seconds_count") == 1
    assert 4 <= value(samples, "workplace_notification_lag_seconds_sum") < 60
    assert value(samples, "workplace_notification_lag_seconds_bucket", le="2.0") == 0
    assert value(samples, "workplace_notification_lag_seconds_bucket", le="60.0") == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_correlation_reaches_the_worker_and_its_graph_calls(provider, mode, emulator, alice_api, atlas, worker):
    """A real worker: the push the API request queued logs the request's id on its Graph call."""
    from reservations.models import Reservation, State
    from tests.waiting import wait_for

    mode("Normal")
    start = days_ahead(2, 14)
    response = alice_api.post("/api/v1/reservations/", {"room": atlas.pk, "subject": "Traced", "start": start.isoformat(),
                                                        "end": (start + dt.timedelta(hours=1)).isoformat()},
                              format="json", HTTP_X_REQUEST_ID="trace-42-abcdefgh")
    assert response.status_code == 201
    pk = response.json()["id"]
    wait_for(lambda: Reservation.objects.get(pk=pk).state == State.CONFIRMED, message="confirmation")
    lines = [line for line in worker.log_path.read_text().splitlines() if "graph_call method=POST" in line]
    assert lines and all("[trace-42-abcdefgh]" in line for line in lines), lines
