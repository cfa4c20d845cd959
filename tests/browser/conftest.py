"""Browser tests: Debian's Chromium (headless, through Playwright) drives the running
product — pytest-django's live server on the test database — with the graph emulator
over real TLS and, where a test watches sync, a real Celery worker subprocess on Redis.

Screenshots go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's sync API keeps an asyncio loop running in this
    thread while it is open, which breaks later tests that call async_to_sync."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        # A missing browser fails the run: a green suite must have driven the portal.
        if os.environ.get("SKIP_BROWSER_TESTS") == "1":
            pytest.skip(f"{CHROMIUM} is not installed and SKIP_BROWSER_TESTS=1")
        pytest.fail(f"{CHROMIUM} is not installed: `make test` installs Debian's chromium; SKIP_BROWSER_TESTS=1 skips these tests", pytrace=False)
    from playwright.sync_api import sync_playwright

    # While Playwright's loop runs in this thread, Django takes the test's own ORM calls
    # (fixtures, assertions: plain synchronous code) for calls from async code. Allowed for
    # this module only: set for the whole session, it hid such calls in every other test.
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def portal(live_server, settings, celery_not_eager):
    """The product's base URL. The web process queues pushes on Redis (not eager), and
    OAuth redirects come back to it. The emulator, provider, mode and worker come from
    tests/conftest.py."""
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def page(browser, portal):
    context = browser.new_context(base_url=portal, ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def phone(browser, portal):
    context = browser.new_context(base_url=portal, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, ignore_https_errors=True)
    pg = context.new_page()
    yield pg
    context.close()


def screenshot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def sign_in(pg, username: str = "alice", password: str = "demo-password") -> None:
    pg.goto("/accounts/login/")
    pg.get_by_label("Username").fill(username)
    pg.get_by_label("Password").fill(password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url("**/")
