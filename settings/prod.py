"""Production: every secret and service comes from the environment; nothing defaults."""

import os

from django.core.exceptions import ImproperlyConfigured

for _name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "TOKEN_ENCRYPTION_KEY"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"The environment variable {_name} must be set in production.")

from .base import *  # noqa: E402,F403
from .env import env_bool, env_int, env_proxy_ssl_header, env_str  # noqa: E402

# Graph delivers change notifications only to https:// URLs; PUBLIC_BASE_URL_ALLOW_HTTP is for a demo against the emulator.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "").rstrip("/")
if not PUBLIC_BASE_URL.startswith("https://") and not env_bool("PUBLIC_BASE_URL_ALLOW_HTTP", False):
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL must be an https:// URL in production (Graph refuses http notification URLs), not {PUBLIC_BASE_URL!r}.")

DEBUG = False
# Static files: collected with content hashes in their names and pre-compressed (gzip, brotli
# when available), served by WhiteNoise's middleware with far-future cache headers.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
# HTTPS only by default: plain HTTP is redirected and browsers are told to stay on HTTPS for a
# year. Behind a proxy that redirects itself, SECURE_SSL_REDIRECT=false; SECURE_HSTS_SECONDS=0
# turns HSTS off. /healthz stays reachable over plain HTTP for the orchestrator's probe.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Which header says a request came over HTTPS, only when a proxy is said to set it
# (e.g. SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https"): trusted by default, any
# client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
# Preloading HSTS is a commitment to the browsers' lists an operator makes (SECURE_HSTS_PRELOAD).
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Log lines as JSON with the correlation id (observability.logs); LOG_FORMAT=plain for humans.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "plain"  # noqa: F405
