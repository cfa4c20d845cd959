"""Production: every secret and service comes from the environment; nothing defaults."""

import os

from django.core.exceptions import ImproperlyConfigured

for _name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "TOKEN_ENCRYPTION_KEY"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"The environment variable {_name} must be set in production.")

from .base import *  # noqa: E402,F403
from .env import env_bool, env_int, env_str  # noqa: E402

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
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
