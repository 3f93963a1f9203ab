"""Build the Jupyter Book (executing every notebook against the Docker engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import config


class BookBuildFailed(RuntimeError):
    """``jupyter-book build`` failed; the message holds the tail of its output."""


@dataclass(frozen=True)
class BookBuild:
    """A finished book build.

    Attributes:
        html_dir: folder with the rendered pages (``_build/html``).
        seconds: wall time of the build, in seconds.
        log: everything jupyter-book printed.
    """

    html_dir: Path
    seconds: float
    log: str


def build_book(*, warnings_as_errors: bool = True, execute_all: bool = False, echo: bool = True) -> BookBuild:
    """Run ``jupyter-book build`` on the repository root into ``_build/html``.

    Notebooks are executed through jupyter-cache: a notebook whose code did not
    change since its last successful run is taken from the cache.

    Args:
        warnings_as_errors: pass ``-W -n --keep-going`` (fail on any Sphinx warning).
        execute_all: empty the execution cache first and rebuild every page
            (``--all``), so that every notebook runs again.
        echo: stream jupyter-book's output to stdout while it runs.

    Returns:
        Where the HTML is and how long the build took (seconds).

    Raises:
        BookBuildFailed: the build failed (a notebook cell raised, a warning with -W, ...).
    """
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(config.ROOT), "--builder", "html"]
    if warnings_as_errors:
        cmd += ["-W", "-n", "--keep-going"]
    if execute_all:
        shutil.rmtree(config.ROOT / "_build" / ".jupyter_cache", ignore_errors=True)
        cmd.append("--all")
    env = {**os.environ, **config.isolated_environment()}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=config.ROOT)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    returncode = proc.wait()
    seconds = time.monotonic() - start
    log = "".join(lines)
    if returncode != 0:
        problems = [line for line in lines if "WARNING:" in line or "ERROR:" in line]
        detail = "".join(problems[-15:]) or "".join(lines[-25:])
        raise BookBuildFailed(f"jupyter-book build failed after {seconds:.0f} s:\n{detail}")
    return BookBuild(html_dir=config.ROOT / "_build" / "html", seconds=seconds, log=log)
