"""No test reaches past this machine (STYLE 6): every outgoing socket must go to loopback.

``socket.socket.connect``/``connect_ex``, ``socket.create_connection`` and
``socket.getaddrinfo`` are wrapped for the whole test process (the emulator's and
live_server's threads included): an address outside 127.0.0.0/8, ::1 or ``localhost`` is
refused before anything is sent — a name other than ``localhost`` is refused before it is
looked up, so not even a DNS query leaves. Unix sockets are local and pass.

A refusal raises ``OutsideNetworkRefused`` where the call was made, and is also recorded:
``check()`` (run after every test by tests/conftest.py) fails the test even when the code
under test caught the error (urllib3 and the Graph client turn it into "unreachable")."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class OutsideNetworkRefused(ConnectionRefusedError):
    """A test tried to open a connection to somewhere other than this machine.

    An OSError, so that libraries react as to an unreachable host (urllib3 wraps it in
    requests' ConnectionError) and no code path exists only under test."""


def is_local_host(host) -> bool:
    if host is None or host == "":
        return True  # getaddrinfo(None, port): a local bind address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%", 1)[0].lower()
    if host in LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: resolving it would already ask a DNS server outside
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def is_ip_literal(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


class NetworkGuard:
    def __init__(self):
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._originals: dict | None = None

    @property
    def installed(self) -> bool:
        return self._originals is not None

    def _refuse(self, what: str, host, port) -> None:
        target = f"{host}:{port}" if port is not None else str(host)
        with self._lock:
            self.refused.append(f"{what} {target}")
        raise OutsideNetworkRefused(f"tests may only connect to 127.0.0.1, ::1 or localhost; {what} to {target} refused")

    def install(self) -> None:
        if self.installed:
            return
        guard = self
        originals = {
            "connect": socket.socket.connect,
            "connect_ex": socket.socket.connect_ex,
            "create_connection": socket.create_connection,
            "getaddrinfo": socket.getaddrinfo,
        }

        def checked(sock, address, what):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                if not is_local_host(address[0]):
                    guard._refuse(what, address[0], address[1])

        def connect(self, address):
            checked(self, address, "connect")
            return originals["connect"](self, address)

        def connect_ex(self, address):
            checked(self, address, "connect_ex")
            return originals["connect_ex"](self, address)

        def create_connection(address, *args, **kwargs):
            if not is_local_host(address[0]):
                guard._refuse("create_connection", address[0], address[1])
            return originals["create_connection"](address, *args, **kwargs)

        def getaddrinfo(host, port, *args, **kwargs):
            if not is_local_host(host) and not is_ip_literal(host):  # a literal is not looked up: connect() checks it
                guard._refuse("getaddrinfo", host, port)
            return originals["getaddrinfo"](host, port, *args, **kwargs)

        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex
        socket.create_connection = create_connection
        socket.getaddrinfo = getaddrinfo
        self._originals = originals

    def uninstall(self) -> None:
        if not self.installed:
            return
        socket.socket.connect = self._originals["connect"]
        socket.socket.connect_ex = self._originals["connect_ex"]
        socket.create_connection = self._originals["create_connection"]
        socket.getaddrinfo = self._originals["getaddrinfo"]
        self._originals = None

    def take_refused(self) -> list[str]:
        with self._lock:
            refused, self.refused = self.refused, []
        return refused

    def check(self) -> None:
        """Fail the current test if anything was refused since the last check."""
        refused = self.take_refused()
        if refused:
            pytest.fail("the test tried to reach outside 127.0.0.1/::1/localhost: " + "; ".join(refused), pytrace=False)


guard = NetworkGuard()
