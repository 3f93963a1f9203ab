"""The rendered pages in a real browser: do they load, run their scripts and show the outputs?"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from containerlab import book, config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def html_dir():
    """The built book (taken from the execution cache when nothing changed)."""
    return book.build_book(echo=False).html_dir


def render(page, tmp_path, *, screenshot: bool = False) -> str:
    """Load ``page`` in headless Chromium and return the DOM after its scripts ran."""
    if BROWSER is None:
        if os.environ.get("CI"):
            pytest.fail("No Chromium found; .ci/run installs it (apt-get install chromium)")
        pytest.skip("No Chromium on this machine (apt-get install chromium to run this test)")
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    if screenshot:
        args += [f"--screenshot={tmp_path / 'page.png'}", "--window-size=1280,1600"]
    else:
        args.append("--dump-dom")
    result = subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **config.isolated_environment()})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_tower_page_renders_its_table_after_scripts_ran(html_dir, tmp_path):
    """Does 14.2 load in a browser, run the theme's scripts and show the tower table with the container's Python?"""
    dom = render(html_dir / "notebooks" / "14-2-images-and-containers.html", tmp_path)
    assert 'data-theme="' in dom, "the theme's JavaScript did not run"
    assert 'id="T_tower"' in dom
    assert "3.13." in dom


def test_service_page_shows_the_prediction(html_dir, tmp_path):
    """Does 14.3, as the browser shows it, hold the container's prediction?"""
    dom = render(html_dir / "notebooks" / "14-3-a-dockerfile-for-a-model-service.html", tmp_path)
    assert "customer_value" in dom
    assert "Traceback" not in dom


def test_page_screenshot_is_not_blank(html_dir, tmp_path):
    """Does a screenshot of the start page have content (not a blank white page)?"""
    render(html_dir / "book" / "intro.html", tmp_path, screenshot=True)
    png = (tmp_path / "page.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 20_000
