"""A local CA (generated once, reused) and a server certificate for 127.0.0.1, ::1 and localhost,
plus the extra names in ``GRAPH_EMULATOR_HOSTNAMES`` (comma-separated DNS names or IPs, e.g.
"emulator,localhost" when other containers reach it as https://emulator:8443). A certificate
that doesn't cover the names asked for is re-issued by the same CA, so clients keep trusting it."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def ensure_ca(state_dir: Path) -> tuple[Path, Path]:
    ca_pem, ca_key = state_dir / "ca.pem", state_dir / "ca-key.pem"
    if ca_pem.exists() and ca_key.exists():
        return ca_pem, ca_key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Graph Emulator Local CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graph_emulator")])
    t = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(t - timedelta(days=1))
        .not_valid_after(t + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(ca_key, key)
    ca_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca_pem, ca_key


HOSTNAMES_ENV = "GRAPH_EMULATOR_HOSTNAMES"
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def hostnames_from_env() -> list[str]:
    """The extra names of ``GRAPH_EMULATOR_HOSTNAMES`` (empty when unset)."""
    return [name.strip() for name in os.environ.get(HOSTNAMES_ENV, "").split(",") if name.strip()]


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower().rstrip("."))


def _key(general: x509.GeneralName) -> tuple[str, str]:
    return (type(general).__name__, str(general.value))


def _covered(cert: x509.Certificate, wanted: list[x509.GeneralName]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {_key(general) for general in san}
    return all(_key(general) in have for general in wanted)


def ensure_server_cert(state_dir: Path, hostnames: Iterable[str] = ()) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server-key.pem). The server cert names localhost, 127.0.0.1, ::1 and
    ``hostnames``; it is re-issued (by the same CA) when missing, near expiry, or not covering them."""
    ca_pem, ca_key_path = ensure_ca(state_dir)
    cert_path, key_path = state_dir / "server.pem", state_dir / "server-key.pem"
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    wanted: list[x509.GeneralName] = []
    for name in (*DEFAULT_NAMES, *hostnames):
        general = _general_name(name)
        if _key(general) not in {_key(g) for g in wanted}:
            wanted.append(general)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (cert.issuer == ca_cert.subject and cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=30)
                and _covered(cert, wanted)):
            return ca_pem, cert_path, key_path
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    t = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(t - timedelta(days=1)).not_valid_after(t + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca_pem, cert_path, key_path


def server_context(state_dir: Path, hostnames: Iterable[str] | None = None) -> tuple[ssl.SSLContext, Path]:
    """TLS for the server; ``hostnames`` default to ``GRAPH_EMULATOR_HOSTNAMES``."""
    ca_pem, cert_path, key_path = ensure_server_cert(state_dir, hostnames_from_env() if hostnames is None else hostnames)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx, ca_pem
