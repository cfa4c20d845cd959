"""The embedded default: SQLite, a broker without a server, the local emulator."""

import os

os.environ.setdefault("DEBUG", "true")

from .base import *  # noqa: E402,F403
from .base import VAR_DIR  # noqa: E402

DEBUG = True
VAR_DIR.mkdir(parents=True, exist_ok=True)
if not TOKEN_ENCRYPTION_KEY:  # noqa: F405
    # A stable development key kept beside the database; production must set its own.
    _key_file = VAR_DIR / "token-encryption.key"
    if not _key_file.exists():
        from cryptography.fernet import Fernet

        _key_file.write_bytes(Fernet.generate_key())
        _key_file.chmod(0o600)
    TOKEN_ENCRYPTION_KEY = _key_file.read_text().strip()
if not GRAPH_CA_BUNDLE:  # noqa: F405
    _ca = VAR_DIR / "emulator" / "ca.pem"
    GRAPH_CA_BUNDLE = str(_ca)
