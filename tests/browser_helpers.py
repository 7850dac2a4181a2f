"""Headless Debian Chromium through Playwright, set up once for every browser test.

Never Playwright's own browser download: the machines have Debian's chromium.
A test module calls `require_browser(what)` at import time (a module skip that
names what needs it), then opens pages with `open_page`, which fails the test
on any uncaught page error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync")


def require_browser(what: str) -> Any:
    """Skip the calling module unless chromium and playwright are installed; Playwright's sync API."""
    if not CHROMIUM.exists():
        pytest.skip(f"{what} needs Debian chromium at {CHROMIUM}", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason=f"{what} needs playwright (pip)")


@contextlib.contextmanager
def open_page(timeout_ms: int, extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """A fresh browser and page (1280×860); uncaught page errors fail the test when the block ends."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*BROWSER_ARGS, *extra_args])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(timeout_ms)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert not errors, errors
        finally:
            browser.close()
