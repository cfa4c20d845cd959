"""Settings shared by every environment. Everything comes from the environment."""

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import database_from_url, env_bool, env_fernet_keys, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-secret-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",  # hashed API tokens (workplace.ApiToken, see KNOX_TOKEN_MODEL)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc assets served locally (no CDN)
    "django_celery_beat",  # periodic tasks in the database, editable in admin
    "workplace",
    "exchange_auth",
    "reservations",
    "calendar_sync",
]

MIDDLEWARE = [
    # First: every log line of the request (and the tasks it queues, and their Graph calls)
    # carries one correlation id, returned in X-Request-ID.
    "observability.middleware.CorrelationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from the app server itself (gunicorn in production, DEBUG off); with
    # DEBUG on it serves the apps' files directly, without collectstatic.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # /admin/ and /outlook/ show times in the admin's (or the buildings') zone, named (workplace/zones.py).
    "workplace.zones.AdminTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workplace.urls"
WSGI_APPLICATION = "workplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # workplace/admin_templates/admin/base_site.html: the admin's accessibility touches.
        "DIRS": [BASE_DIR / "workplace" / "admin_templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url("DATABASE_URL", env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dev.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Sign in with the email address or the username, either in any case (workplace/sign_in.py).
AUTHENTICATION_BACKENDS = ["workplace.sign_in.EmailOrUsernameBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
# settings/formats/en: 24-hour times with the zone named, in the admin and the Outlook page.
FORMAT_MODULE_PATH = ["settings.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # filled by `manage.py collectstatic` (the Dockerfile runs it)

# --- Redis, cache and Celery -------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "workplace.cache.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
else:
    # Web, worker and beat are separate processes: a file cache is shared by all
    # three, so an admin's edit of an instance property reaches the worker.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}}
    # A broker that needs no server: messages are files under var/broker.
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker logs through LOGGING like the web (JSON in production, the correlation id on each line).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task, whatever
# CONN_MAX_AGE says (celery/celery#9824 reverted honouring it, 2025): a PostgreSQL backend started
# per task, and psycopg's prepared statements never reused. It closes only every 2 × this many
# task boundaries instead; workplace/celery.py applies Django's own rule at each boundary
# (close_old_connections: DATABASE_CONN_MAX_AGE, health checks, connections an error left unusable).
CELERY_DB_REUSE_MAX = 10**9
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Periodic tasks live in the database (django-celery-beat): admins change them in admin
# ("Periodic tasks") without a deploy. Each app's data migration creates its tasks under
# stable names (calendar_sync.apps.BEAT_SCHEDULE, exchange_auth.apps.BEAT_SCHEDULE...);
# nothing is put in CELERY_BEAT_SCHEDULE, which beat would write over the admins' edits.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {}

# Queues (README "Workers and queues"): pushes of bookings never wait behind a burst of
# inbound pulls or a nightly round, and the checks of the rooms' answers never wait behind the
# pushes (issue 17: the first check, queued behind 10,000 pushes, ran once they were all done).
# A worker without -Q consumes all five.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = {name: {"routing_key": name} for name in ("outbound", "answers", "inbound", "nightly", "default")}
CELERY_TASK_ROUTES = {
    # First match wins (insertion order).
    "calendar_sync.outbound.tasks.check_confirmations": {"queue": "answers"},
    "calendar_sync.outbound.tasks.check_awaiting_reservations": {"queue": "answers"},
    "calendar_sync.outbound.tasks.clean_up_unanswered_reservations": {"queue": "answers"},
    "calendar_sync.outbound.tasks.*": {"queue": "outbound"},
    "calendar_sync.inbound.tasks.run_nightly_reconcile": {"queue": "nightly"},
    "calendar_sync.inbound.tasks.nightly_*": {"queue": "nightly"},
    "calendar_sync.inbound.tasks.*": {"queue": "inbound"},
    "calendar_sync.directory.tasks.*": {"queue": "nightly"},  # the nightly room import: slow
}

# --- Metrics -------------------------------------------------------------------
# GET /metrics (Prometheus): allowed with "Authorization: Bearer $METRICS_TOKEN", or from an
# address in METRICS_ALLOWED_NETWORKS (the direct peer: your Prometheus, not a proxy).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network (e.g. 10.0.0.0/8).") from None

# --- REST API -----------------------------------------------------------------
# API tokens are django-rest-knox tokens in workplace.ApiToken: stored as SHA-512 digests,
# named per client, revocable (delete), expiring only when created with an expiry.
KNOX_TOKEN_MODEL = "workplace.ApiToken"
# knox's own migrations create its AuthToken table even though the model is swapped for
# ours; nothing would use it, and its foreign key to users broke flushing the database.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {"TOKEN_MODEL": KNOX_TOKEN_MODEL, "TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token", "AUTO_REFRESH": False}
# How many reverse proxies in front of the app append to X-Forwarded-For: the client's address
# (per-address rate limits: unknown room-panel tokens, DRF's anonymous throttles) is the one
# the outermost trusted proxy saw. 0 (the default): REMOTE_ADDR only, the header is ignored
# (any client could write it).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0)
REST_FRAMEWORK = {
    "NUM_PROXIES": TRUSTED_PROXIES,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workplace.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "reservations.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "reservations.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Endpoints that ask Exchange on each call (free/busy, attendees' answers): per user,
    # so one client can't spend the tenant's Graph budget (429 with Retry-After beyond it).
    "DEFAULT_THROTTLE_RATES": {"exchange_lookups": f"{env_int('API_EXCHANGE_LOOKUPS_PER_MINUTE', 60, minimum=1)}/min",
                               # the attendee picker searches as one types (a tenant's answers are cached)
                               "people_search": f"{env_int('API_PEOPLE_SEARCHES_PER_MINUTE', 240, minimum=1)}/min",
                               # Check-ins per employee, whatever the channel (API, portal, QR code), and a
                               # room panel's buttons and polling per device; counted atomically in the
                               # shared cache (workplace.throttling), so they hold across processes and hosts.
                               "check_in": f"{env_int('API_CHECK_INS_PER_MINUTE', 10, minimum=1)}/min",
                               "panel_actions": f"{env_int('PANEL_ACTIONS_PER_MINUTE', 30, minimum=1)}/min",
                               "panel_state": f"{env_int('PANEL_STATE_POLLS_PER_MINUTE', 60, minimum=1)}/min",
                               # Requests with an unknown or revoked room-panel token, per client address
                               # (a token-guessing client gets this many tries a minute).
                               "panel_failed_auth": f"{env_int('PANEL_FAILED_AUTH_PER_MINUTE', 20, minimum=1)}/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Workplace reservations API",
    "DESCRIPTION": "Rooms, availability and reservations, kept in sync with Exchange Online.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two fields are named "kind" (reservations, feeds): name the feed's enum.
    "ENUM_NAME_OVERRIDES": {"FeedKindEnum": [("user", "user"), ("room", "room")], "KindEnum": "reservations.models.Kind"},
}

# Instance properties (sync mode ...) are kept this many seconds in each process before the
# shared cache is asked again: an admin's edit reaches the other processes within it.
INSTANCE_PROPERTY_LOCAL_SECONDS = env_int("INSTANCE_PROPERTY_LOCAL_SECONDS", 3, minimum=0)

# --- iCalendar feeds (reservations.feeds) ---------------------------------------------
# The window a feed covers, and whether a room's feed shows subjects (default: "Reserved").
CALENDAR_FEED_PAST_DAYS = env_int("CALENDAR_FEED_PAST_DAYS", 30, minimum=0)
CALENDAR_FEED_FUTURE_DAYS = env_int("CALENDAR_FEED_FUTURE_DAYS", 365, minimum=1)
CALENDAR_FEED_ROOM_SUBJECTS = env_bool("CALENDAR_FEED_ROOM_SUBJECTS", False)

# --- Secrets at rest -------------------------------------------------------------
# Fernet key (urlsafe base64, 32 bytes) used to encrypt client secrets and token caches.
TOKEN_ENCRYPTION_KEY = env_fernet_keys("TOKEN_ENCRYPTION_KEY")

# --- Microsoft Graph / emulator -------------------------------------------------------
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
GRAPH_CA_BUNDLE = env_str("GRAPH_CA_BUNDLE", "")
GRAPH_EMULATOR_URL = env_str("GRAPH_EMULATOR_URL", "https://127.0.0.1:8443").rstrip("/")
GRAPH_TIMEOUT_SECONDS = env_int("GRAPH_TIMEOUT_SECONDS", 15, minimum=1)
# How long a request waits for one of a mailbox's 4 request slots before giving up with
# MailboxBusy (the push is then retried later, its worker thread freed). Keep it, plus
# GRAPH_TIMEOUT_SECONDS, under CALENDAR_SYNC_LEASE_SECONDS (60): a push still waiting when its
# claim lapses could be claimed again by another worker.
GRAPH_SLOT_WAIT_SECONDS = env_int("GRAPH_SLOT_WAIT_SECONDS", 20, minimum=1)
# Outlook's request rate per app per mailbox (10,000 in 10 minutes, a $batch's requests one each):
# the Graph client lets no more through (exchange_auth.graph.MailboxSemaphore), so the product
# earns itself no 429. Lower only for a tenant Microsoft limits more tightly.
GRAPH_MAILBOX_REQUESTS_PER_WINDOW = env_int("GRAPH_MAILBOX_REQUESTS_PER_WINDOW", 10_000, minimum=1)
GRAPH_MAILBOX_WINDOW_SECONDS = env_int("GRAPH_MAILBOX_WINDOW_SECONDS", 600, minimum=1)
# A synced mailbox no change-notification subscription can be made for (no usable app-only
# credential, or Graph refused it) is pulled this often instead (calendar_sync.subscriptions).
CALENDAR_SYNC_POLL_SECONDS = env_int("CALENDAR_SYNC_POLL_SECONDS", 60, minimum=5)
# The answer check's first read of a meeting whose room's answer a pull will bring (its room's
# mailbox or the mailbox it lives in is subscribed and notified lately: calendar_sync.common.listening)
# waits this long instead of the confirm delay; only a meeting still waiting then is read (a lost
# notification). 0 (or anything up to the confirm delay) reads every meeting at the confirm delay.
CALENDAR_SYNC_CONFIRM_LISTENED_DELAY_SECONDS = env_int("CALENDAR_SYNC_CONFIRM_LISTENED_DELAY_SECONDS", 60, minimum=0)
# The nightly pass splits a building's rooms into tasks of this many rooms (calendar_sync.inbound.nightly).
CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS = env_int("CALENDAR_SYNC_NIGHTLY_CHUNK_ROOMS", 25, minimum=1)

# --- Reservations ------------------------------------------------------------------
RESERVATION_MAX_DURATION_MINUTES = env_int("RESERVATION_MAX_DURATION_MINUTES", 12 * 60, minimum=1)
RESERVATION_MIN_DURATION_MINUTES = env_int("RESERVATION_MIN_DURATION_MINUTES", 5, minimum=1)
RESERVATION_BOOKING_HORIZON_DAYS = env_int("RESERVATION_BOOKING_HORIZON_DAYS", 365, minimum=1)
RESERVATION_MAX_OCCURRENCES = env_int("RESERVATION_MAX_OCCURRENCES", 200, minimum=1)

# Every email passes workplace.mail.SafeEmailBackend (one-line headers, retried when the
# transport fails), which hands it to EMAIL_BACKEND from the environment.
EMAIL_DELIVERY_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_BACKEND = "workplace.mail.SafeEmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "reservations@contoso.example")

# LOG_FORMAT=json (settings.prod's default): one JSON object a line (observability.logs),
# each with the correlation id; plain: readable lines for development.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
        "json": {"()": "observability.logs.JsonFormatter"},
    },
    # OAuth codes and calendar-feed tokens never reach a log line (workplace.access_log).
    "filters": {
        "redact_secrets": {"()": "workplace.access_log.RedactSecrets"},
        "correlation": {"()": "observability.logs.CorrelationFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain",
                             "filters": ["redact_secrets", "correlation"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's access lines and "Not Found: <path>": redacted before any handler sees them.
        "django.server": {"filters": ["redact_secrets"]},
        "django.request": {"filters": ["redact_secrets"]},
    },
}

