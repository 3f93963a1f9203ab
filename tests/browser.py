"""The real browser of the page and JupyterLab tests: Debian's Chromium, driven by Playwright.

Playwright downloads no browser here (no such download works on these
machines); it drives the system's Chromium through ``executable_path``.
"""

from __future__ import annotations

import os
import shutil

import pytest

#: The system's Chromium, or ``None``.
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
#: The flags these machines need (no sandbox as root, no calls to Google's hosts).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require() -> str:
    """The path of Chromium, with Playwright importable; else fail under CI and skip elsewhere, saying how.

    Raises:
        pytest.fail.Exception: under CI (``CI`` set, as ``.ci/run`` does), when either is missing.
        pytest.skip.Exception: elsewhere, when Chromium is missing.
    """
    if BROWSER is None:
        if os.environ.get("CI"):
            pytest.fail("No Chromium found; .ci/run installs it (apt-get install chromium)")
        pytest.skip("No Chromium on this machine (apt-get install chromium to run this test)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: `make env` installs it from requirements/course.lock")
    return BROWSER
