"""Certificate credentials for app-only tokens (many tenants forbid client secrets).

An admin uploads one PEM holding the certificate and its unencrypted private key. ``parse_pem``
checks that they belong together and that the certificate is valid now, and gives what the
provider stores: the key (only ever encrypted, ``exchange_auth.crypto``), the certificate's
public part, its SHA-1 thumbprint (what msal's ``{"private_key", "thumbprint"}`` and the app
registration's "Certificates & secrets" page show) and its expiry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.utils import timezone

CERT_MARK = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class ParsedCertificate:
    certificate_pem: str
    private_key_pem: str
    thumbprint: str  # SHA-1 of the DER, upper-case hex (as Entra shows it)
    not_after: dt.datetime
    subject: str

    def __repr__(self) -> str:  # never the key
        return f"<ParsedCertificate {self.thumbprint} until {self.not_after:%Y-%m-%d}>"


def parse_pem(data: bytes | str, *, now: dt.datetime | None = None) -> ParsedCertificate:
    """The certificate and private key in ``data``; ValidationError with a sentence an admin can act on."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    now = now or timezone.now()
    try:
        cert = x509.load_pem_x509_certificate(raw[raw.index(CERT_MARK):])
    except ValueError:
        raise ValidationError("The file holds no PEM certificate (-----BEGIN CERTIFICATE-----).") from None
    key = _private_key(raw)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("The private key must be an RSA key (Entra ID signs client assertions with RS256/PS256).")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != cert.public_key().public_bytes(serialization.Encoding.DER, public):
        raise ValidationError("The private key does not belong to the certificate in the file (their public keys differ).")
    if cert.not_valid_after_utc <= now:
        raise ValidationError(f"The certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: upload a current one.")
    if cert.not_valid_before_utc > now:
        raise ValidationError(f"The certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC.")
    return ParsedCertificate(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - the thumbprint is SHA-1 by definition
        not_after=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
    )


def _private_key(raw: bytes):
    start = raw.find(b"-----BEGIN ")
    while start != -1:
        end_label = raw.find(b"-----", start + 11)
        label = raw[start + 11:end_label]
        if label.endswith(b"PRIVATE KEY"):
            if label.startswith(b"ENCRYPTED"):
                raise ValidationError("The private key is encrypted: export it without a passphrase (it is stored encrypted here).")
            stop = raw.find(b"-----END " + label + b"-----", end_label)
            block = raw[start:stop + len(b"-----END " + label + b"-----")] if stop != -1 else b""
            try:
                return serialization.load_pem_private_key(block, password=None)
            except (ValueError, TypeError):
                raise ValidationError("The private key in the file can't be read (a PEM RSA private key is expected).") from None
        start = raw.find(b"-----BEGIN ", start + 11)
    raise ValidationError("The file holds no private key: upload the certificate together with its private key (PEM).")
