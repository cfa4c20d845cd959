"""Fixtures the rate-limit tests share (a plugin of tests/conftest.py): a module wanting every
test in one rate window says ``pytestmark = pytest.mark.usefixtures("one_window")``."""

import pytest

from workplace import throttling


@pytest.fixture
def one_window(monkeypatch):
    """Every request of a test in one rate window (fixed windows: a test crossing a minute's
    boundary would get a fresh budget)."""
    moment = (throttling._now() // 3600 + 1) * 3600 + 0.5  # just after a window's start, for any period
    monkeypatch.setattr(throttling, "_now", lambda: moment)
    return moment


@pytest.fixture
def rates(settings):
    """``rates(scope="5/min", ...)`` sets DRF throttle rates for the test."""
    def set_rates(**scopes):
        rest = dict(settings.REST_FRAMEWORK)
        rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], **scopes}
        settings.REST_FRAMEWORK = rest
    return set_rates
