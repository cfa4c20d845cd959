"""Waiting for something another thread or process does (a worker, the emulator, the webhook)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, message="condition"):
    """Poll ``predicate`` until it returns something truthy (and return that), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message() if callable(message) else message}")
