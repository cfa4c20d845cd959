"""The emulator's TLS certificate names the hosts clients use (GRAPH_EMULATOR_HOSTNAMES), and
is re-issued by the same CA when asked for names it doesn't cover."""

import socket
import ssl

from cryptography import x509

from graph_emulator import EmulatorServer
from graph_emulator.tls import ensure_server_cert


def names(cert_path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return {str(g.value) for g in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value}


def test_extra_names_reissue_the_certificate_with_the_same_ca(tmp_path):
    ca, cert, _key = ensure_server_cert(tmp_path)
    assert names(cert) == {"localhost", "127.0.0.1", "::1"}
    ca_before, cert_before = ca.read_bytes(), cert.read_bytes()

    ca, cert, _key = ensure_server_cert(tmp_path, ["emulator", "localhost", "10.0.0.7"])
    assert names(cert) == {"localhost", "127.0.0.1", "::1", "emulator", "10.0.0.7"}
    assert cert.read_bytes() != cert_before and ca.read_bytes() == ca_before  # clients keep trusting the CA

    reissued = cert.read_bytes()
    ensure_server_cert(tmp_path, ["Emulator"])  # covered already (DNS names are case-insensitive)
    ensure_server_cert(tmp_path)
    assert cert.read_bytes() == reissued


def test_the_server_answers_tls_for_the_names_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPH_EMULATOR_HOSTNAMES", "emulator, graph.internal")
    server = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tmp_path).start()
    try:
        context = ssl.create_default_context(cafile=server.ca_path)
        for hostname in ("emulator", "graph.internal", "localhost"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=hostname) as tls:  # verifies the name
                assert tls.version()
    finally:
        server.stop()
