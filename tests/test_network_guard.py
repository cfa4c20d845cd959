"""The guard of tests/network_guard.py: a connection outside loopback is refused before
anything leaves (203.0.113.1 is TEST-NET-3, never routed), and the test that tried fails."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.network_guard import OutsideNetworkRefused, guard

OUTSIDE = ("203.0.113.1", 443)


@pytest.fixture
def sent(monkeypatch):
    """What reached the real socket layer: the guard's saved originals, wrapped to record."""
    seen = []
    for name in ("connect", "connect_ex", "create_connection", "getaddrinfo"):
        original = guard._originals[name]

        def recorder(*args, _original=original, _name=name, **kwargs):
            seen.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setitem(guard._originals, name, recorder)
    return seen


def expect_the_test_to_fail(what: str) -> None:
    """The check run after each test fails it, naming the target; then the record is cleared
    so that this test, which meant to try, passes."""
    with pytest.raises(pytest.fail.Exception, match=f"{what} 203.0.113.1:443"):
        guard.check()
    assert guard.take_refused() == []


def test_the_guard_is_on_for_every_test():
    assert guard.installed
    assert socket.socket.connect is not guard._originals["connect"]


@pytest.mark.parametrize("how", ["connect", "connect_ex"])
def test_a_socket_connecting_outside_is_refused_before_any_packet_leaves(how, sent):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        with pytest.raises(OutsideNetworkRefused, match="203.0.113.1:443 refused"):
            getattr(sock, how)(OUTSIDE)
        assert time.monotonic() - started < 0.5  # refused at once, never waited for a SYN-ACK
        with pytest.raises(OSError):
            sock.getpeername()  # never connected
    assert sent == []  # the real connect was never called
    expect_the_test_to_fail(how)


def test_create_connection_outside_is_refused(sent):
    with pytest.raises(OutsideNetworkRefused):
        socket.create_connection(OUTSIDE, timeout=5)
    assert sent == []
    expect_the_test_to_fail("create_connection")


def test_a_refusal_swallowed_by_the_code_under_test_still_fails_the_test(sent):
    """requests (urllib3) turns the refusal into a ConnectionError a caller might catch and log."""
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://{OUTSIDE[0]}:{OUTSIDE[1]}/v1.0/me", timeout=5)
    assert "connect" not in sent and "create_connection" not in sent
    expect_the_test_to_fail("connect")


def test_a_name_outside_is_refused_before_it_is_looked_up(sent):
    with pytest.raises(OutsideNetworkRefused):
        socket.getaddrinfo("graph.microsoft.com", 443)
    assert sent == []  # no DNS query either
    with pytest.raises(pytest.fail.Exception, match="getaddrinfo graph.microsoft.com:443"):
        guard.check()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_passes(host, sent):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        try:
            server.bind((host, 0))
        except OSError:
            # No such loopback address on this machine: the guard must still hand the attempt to the OS.
            with pytest.raises(OSError):
                socket.create_connection((host, 9), timeout=5)
            assert "connect" in sent
            return
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection((host, port), timeout=5):
            pass
    assert "connect" in sent
