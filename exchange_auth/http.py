"""HTTP sessions for msal and the Graph client.

``REQUESTS_CA_BUNDLE`` in the environment would override ``Session.verify``
(requests merges environment settings), so sessions here ignore the
environment and trust exactly: the system CAs plus ``GRAPH_CA_BUNDLE`` (the
emulator's CA in development and tests)."""

import hashlib
from functools import lru_cache
from pathlib import Path

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

SYSTEM_CA_CANDIDATES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


@lru_cache(maxsize=8)
def _bundle_for(extra_ca: str) -> str | bool:
    system = next((path for path in SYSTEM_CA_CANDIDATES if Path(path).exists()), None)
    if system is None:
        import certifi

        system = certifi.where()
    if not extra_ca:
        return system
    extra = Path(extra_ca)
    if not extra.exists():
        return system
    combined_pem = Path(system).read_bytes() + b"\n" + extra.read_bytes()
    digest = hashlib.sha256(combined_pem).hexdigest()[:16]
    target = Path(settings.VAR_DIR) / "ca" / f"bundle-{digest}.pem"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(combined_pem)
        tmp.replace(target)
    return str(target)


def ca_bundle() -> str | bool:
    extra = settings.GRAPH_CA_BUNDLE or ""
    if extra and not Path(extra).exists():
        _bundle_for.cache_clear()  # the emulator may not have written its CA yet; don't cache that
    return _bundle_for(extra)


# Connections kept alive per host. A worker on the threads pool (README "Workers and
# queues") runs many pushes at once through one client's session; with requests' default of
# 10, the 11th concurrent request's connection would be thrown away after use and the next
# one pay a new TCP + TLS handshake.
POOL_MAXSIZE = 64


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=POOL_MAXSIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
