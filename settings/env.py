"""Read settings from the environment and fail loudly, naming the variable.

Modelled on healthchecks' ``envbool``: a value that cannot be parsed raises
``ImproperlyConfigured`` instead of silently falling back to a default.
"""

import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no, on/off).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_fernet_keys(name: str) -> str:
    """Comma-separated Fernet keys (newest first), each checked now: a bad key stops the start
    naming the variable, instead of failing on the first secret encrypted or read."""
    value = env_str(name, "") or ""
    from cryptography.fernet import Fernet

    for index, part in enumerate(p.strip() for p in value.split(",") if p.strip()):
        try:
            Fernet(part.encode())
        except (ValueError, TypeError):
            which = f"key {index + 1} of {name}" if "," in value else name
            raise ImproperlyConfigured(
                f"{which} is not a Fernet key (32 url-safe base64-encoded bytes; make one with: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
            ) from None
    return value


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto: https`` → Django's ("HTTP_X_FORWARDED_PROTO", "https"); unset → None
    (the header is trusted only where a proxy is said to set it)."""
    value = env_str(name)
    if value is None:
        return None
    header, sep, expected = value.partition(":")
    header, expected = header.strip(), expected.strip()
    if not sep or not header or not expected or not all(c.isalnum() or c == "-" for c in header):
        raise ImproperlyConfigured(f"{name}={value!r}: give the header and its HTTPS value, e.g. 'X-Forwarded-Proto: https'.")
    return "HTTP_" + header.upper().replace("-", "_"), expected


# PostgreSQL through psycopg 3 with server-side binding, and each statement a connection has run
# PREPARE_THRESHOLD times kept as a prepared statement: PostgreSQL then skips parsing and planning
# it (measured on a booking: its PostgreSQL CPU halved, ~1.3 -> ~0.6 ms). Behind a connection
# pooler in transaction mode (PgBouncer < 1.21) prepared statements break: turn them off with
# ``?prepare_threshold=off`` in DATABASE_URL; ``?server_side_binding=false`` goes back to
# client-side binding (Django's default).
PREPARE_THRESHOLD = 5


def _postgres_options(name: str, options: dict[str, str]) -> dict:
    binding = options.pop("server_side_binding", "true").strip().lower()
    if binding not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}: server_side_binding must be true or false, not {binding!r}.")
    threshold = options.pop("prepare_threshold", str(PREPARE_THRESHOLD)).strip().lower()
    if threshold in {"off", "none", "false"}:
        prepare = None
    elif threshold.isdigit():
        prepare = int(threshold)
    else:
        raise ImproperlyConfigured(f"{name}: prepare_threshold must be a whole number or off, not {threshold!r}.")
    return {**options, "server_side_binding": binding in _TRUE, "prepare_threshold": prepare}


def database_from_url(name: str, url: str) -> dict:
    """Translate ``postgres://user:pass@host:port/db`` or ``sqlite:///path`` to a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        if not parsed.path.strip("/"):
            raise ImproperlyConfigured(f"{name}={url!r} names no database.")
        options = _postgres_options(name, {key: values[-1] for key, values in parse_qs(parsed.query).items()})
        try:
            port = parsed.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port.") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Kept connections only where a fixed pool of workers holds them: gunicorn.conf.py
            # sets DATABASE_CONN_MAX_AGE=60. Elsewhere (runserver starts a thread per request,
            # each would keep one: 50 requests at once exhausted PostgreSQL's 100) each request
            # closes its connection. A kept one is checked before reuse.
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
            "CONN_HEALTH_CHECKS": True,
        }
    if parsed.scheme == "sqlite":
        # dj-database-url's convention: sqlite:///relative.db, sqlite:////absolute.db
        rest = unquote(url[len("sqlite://"):])
        path = rest[1:] if rest.startswith("/") else rest
        if not path or path == "/":
            raise ImproperlyConfigured(f"{name}={url!r} names no database file.")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # Writers take the lock up front, so two bookings of one slot are
            # serialized: this is SQLite's stand-in for the exclusion constraint.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    raise ImproperlyConfigured(f"{name}={url!r}: unsupported scheme {parsed.scheme!r} (use postgres:// or sqlite://).")
