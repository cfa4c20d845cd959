"""Liveness and readiness (/healthz), and Prometheus' scrape (/metrics)."""

import hmac
import ipaddress
import time

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from observability import exposition


def _check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_broker() -> dict:
    started = time.monotonic()
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        import os

        os.makedirs(folder, exist_ok=True)
        return {"ok": os.access(folder, os.W_OK), "transport": "filesystem"}
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "transport": "redis", "error": exc.__class__.__name__}
    return {"ok": True, "transport": "redis", "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


def metrics_allowed(request) -> bool:
    """``Authorization: Bearer $METRICS_TOKEN``, or the direct peer in METRICS_ALLOWED_NETWORKS."""
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            if peer in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue  # never: settings.base refuses a bad entry at start
    return False


@never_cache
@require_GET
def metrics_view(request):
    """Prometheus' scrape (observability.exposition): counters from Redis, gauges read now."""
    if not metrics_allowed(request):
        return JsonResponse({"message": "Metrics need the metrics token or an allowed network (METRICS_TOKEN, METRICS_ALLOWED_NETWORKS)."}, status=403)
    return HttpResponse(exposition.render(), content_type=exposition.CONTENT_TYPE)
