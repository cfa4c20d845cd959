"""Encryption at rest for client secrets and msal token caches.

Fernet (AES-128-CBC + HMAC-SHA256) with ``settings.TOKEN_ENCRYPTION_KEY``.
Several keys may be given, comma-separated, newest first: the first encrypts,
every one decrypts, so a key can be rotated without losing stored tokens.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """Stored ciphertext could not be read with the configured key(s)."""


@lru_cache(maxsize=4)
def _fernet_for(keys: str) -> MultiFernet:
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEY must be set to encrypt client secrets and tokens.")
    try:
        return MultiFernet([Fernet(part.encode()) for part in parts])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes; "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        ) from None


def _fernet() -> MultiFernet:
    return _fernet_for(settings.TOKEN_ENCRYPTION_KEY or "")


def encrypt(plaintext: str) -> str:
    """Ciphertext (ASCII) for ``plaintext``; the empty string stays empty."""
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret can't be decrypted with TOKEN_ENCRYPTION_KEY (was the key changed?). "
            "Enter the secret again or reconnect."
        ) from None
