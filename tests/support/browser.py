"""Headless Chromium (Debian's) driven by Playwright, for tests that look at pages as people do.

Never ``playwright install``: the browser is ``/usr/bin/chromium`` from the
machine set-up.  Screenshots go to ``$INCIDENT_BOT_TEST_ARTIFACTS`` (default
``test-artifacts/`` at the repository root, git-ignored) and are kept as
artifacts of the run.  ``layout`` measures what a reader would notice: the
page wider than the window, and the tallest table row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("INCIDENT_BOT_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as an artifact; returns its path."""
    path = artifacts_dir() / (re.sub(r"[^\w.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


LAYOUT_JS = """() => {
  const rows = Array.from(document.querySelectorAll('tr'));
  const heights = rows.map(r => r.getBoundingClientRect().height);
  const wide = Array.from(document.querySelectorAll('body *')).filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > document.documentElement.clientWidth + 1 && !e.closest('.scroll');
  }).map(e => e.tagName + (e.className && typeof e.className === 'string' ? '.' + e.className : ''));
  return {scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
          tallestRow: Math.max(0, ...heights), rows: rows.length, overflowing: wide.slice(0, 10)};
}"""


def layout(page: Any) -> dict[str, Any]:
    return page.evaluate(LAYOUT_JS)  # type: ignore[no-any-return]


_SHARED: dict[str, Any] = {}


def _shared_browser() -> Any:
    """One Playwright and one Chromium per test session, whichever test folder asks first.

    The fixture below is imported by several conftest modules; Playwright's sync
    API cannot be started twice in one thread, so they all share this one.
    """
    if "browser" not in _SHARED:
        from playwright.sync_api import sync_playwright

        assert Path(CHROMIUM).exists(), "chromium is part of the machine set-up (Debian package chromium)"
        pw = sync_playwright().start()
        _SHARED["playwright"] = pw
        _SHARED["browser"] = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True,
                                                timeout=180_000)  # a busy machine
    return _SHARED["browser"]


def _stop_shared() -> None:
    browser, pw = _SHARED.pop("browser", None), _SHARED.pop("playwright", None)
    if browser is not None:
        browser.close()
    if pw is not None:
        pw.stop()


@pytest.fixture(scope="session")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    shared = _shared_browser()
    request.session.config.add_cleanup(_stop_shared)  # once, at the very end (idempotent)
    yield shared
