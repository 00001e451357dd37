"""Headless chromium for the gallery's screenshots, the browser tests and bench/view_timing.py: Debian's
`chromium`, driven by Playwright's Python package (a dev dependency; no browser is ever downloaded).

    with headless_browser() as browser:       # BrowserMissing when Playwright or chromium is not installed
        tab = browser.new_page()
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Iterator

# Where a chromium other than the one on PATH is wanted (another build, a snap): its executable.
ENV_VAR = "NETSPEC_CHROMIUM"


class BrowserMissing(Exception):
    """Playwright's Python package or a chromium executable is missing; the message says how to install it."""


def chromium_path() -> str | None:
    return os.environ.get(ENV_VAR) or shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why no headless browser can be started here (None: it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return f"no chromium to drive (apt-get install chromium, or set {ENV_VAR})"
    return None


@contextmanager
def headless_browser() -> Iterator[object]:
    reason = missing()
    if reason:
        raise BrowserMissing(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: containers run as root, where chromium's sandbox cannot start
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
