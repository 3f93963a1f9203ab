"""Helpers the book's notebooks call, so that pages show commands, not plumbing.

A hidden setup cell runs :func:`setup`; visible cells then read like what a
reader would type in a terminal, e.g. ``sh("docker build --tag customer-value:1.0 docker/customer-value")``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time

import pandas as pd

from . import config, engine


class CommandFailed(RuntimeError):
    """A command run with :func:`sh` exited non-zero; the message holds its last lines."""


def setup() -> None:
    """Prepare a notebook: work from the repository root and show tables in full.

    Relative paths in the pages (``docker/customer-value``) are then the ones a
    reader types from a clone of the course repository.
    """
    os.chdir(config.ROOT)
    for key, value in config.isolated_environment().items():
        os.environ.setdefault(key, value)
    pd.set_option("display.max_colwidth", 80)
    pd.set_option("display.width", 120)


_BUILD_STEP = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_BUILD_STATUS = re.compile(r"^#(\d+) (CACHED|DONE [\d.]+s|ERROR.*)$")


def _is_build(argv: list[str]) -> bool:
    return argv[:2] == ["docker", "build"] or argv[:3] == ["docker", "buildx", "build"]


class _Batcher:
    """Collects printed lines and prints them in batches: one output block per
    couple of seconds instead of one per line, so pages stay readable while a
    long build still shows progress as it goes."""

    def __init__(self, every: float = 2.0):
        self.every = every
        self.lines: list[str] = []
        self.last = time.monotonic()

    def add(self, line: str) -> None:
        self.lines.append(line)
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            print("\n".join(self.lines), flush=True)
            self.lines.clear()
        self.last = time.monotonic()


def sh(command: str, *, check: bool = True, full_log: bool = False) -> None:
    """Print ``$ command``, run it from the repository root and print its output.

    For ``docker build`` the builder's progress is condensed to one line per
    Dockerfile step with its outcome (``CACHED`` or ``DONE`` and the seconds),
    unless ``full_log`` is set. Nothing is returned, so a cell shows only what
    a terminal would.

    Args:
        command: a shell-style command line, e.g. ``"docker run --rm python:3.13-slim python -V"``.
        check: raise when the command exits non-zero.
        full_log: print every line of builder output.

    Raises:
        CommandFailed: the command exited non-zero and ``check`` is set.
    """
    argv = shlex.split(command)
    out = _Batcher()
    out.add(f"$ {command}")
    condensed = _is_build(argv) and not full_log
    if condensed and "--progress" not in command:
        argv.insert(2 if argv[1] == "build" else 3, "--progress=plain")
    steps: dict[str, str] = {}

    def show(line: str) -> None:
        if not condensed:
            out.add(line)
        elif match := _BUILD_STEP.match(line):
            if not match.group(2).startswith("[internal]"):
                steps[match.group(1)] = match.group(2)
        elif (match := _BUILD_STATUS.match(line)) and match.group(1) in steps:
            out.add(f"{steps.pop(match.group(1))}  -> {match.group(2)}")
        elif line.startswith("ERROR") or "naming to" in line:
            out.add(line.lstrip("#0123456789 "))

    try:
        if argv[0] == "docker":
            result = engine.docker_cli(argv[1:], echo=show, cwd=config.ROOT)
        else:
            proc = subprocess.run(argv, cwd=config.ROOT, capture_output=True, text=True)
            result = subprocess.CompletedProcess(argv, proc.returncode, proc.stdout + proc.stderr, "")
            for line in result.stdout.splitlines():
                show(line)
    finally:
        out.flush()
    if check and result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-15:])
        raise CommandFailed(f"`{command}` exited with status {result.returncode}:\n{tail}")


def show_tower(left: dict[str, str], right: dict[str, str], *, names: tuple[str, str]):
    """Show two environment towers side by side, rows that differ highlighted.

    Args:
        left, right: towers from :func:`containerlab.tower.host_tower` / ``image_tower``.
        names: column titles.

    Returns:
        A pandas Styler (renders as an HTML table in notebooks and in the book).
    """
    from . import tower

    table = tower.compare(left, right, names=names)
    table["differs"] = table["differs"].map({True: "differs", False: ""})
    return (
        table.style.set_uuid("tower")
        .apply(lambda row: ["background-color: #fdecc8" if row["differs"] else "" for _ in row], axis=1)
        .set_caption("The environment tower, from the operating system up to the packages")
    )


def wait_for(url: str, *, timeout: float = 60) -> None:
    """Poll ``url`` until it answers with a 2xx status, then print that it did.

    Args:
        url: for example ``"http://localhost:8080/health"``.
        timeout: seconds to wait at most.

    Raises:
        engine.ContainerFailed: nothing answered within ``timeout`` seconds.
    """
    response = engine.wait_http(url, timeout=timeout)
    print(f"{url} answered {response.status_code}: {response.text}")


def compose_up(file: str, *, project: str) -> None:
    """Print and run ``docker compose -p PROJECT -f FILE up --detach --wait --build``.

    Compose's own progress lines are shown; the builder's step-by-step log is
    left out (``docker compose build`` shows it). When the stack does not come
    up, the failing services' last log lines are printed and the stack is taken
    down, volumes kept (see :func:`engine.compose_up`).

    Args:
        file: the compose file, relative to the repository root.
        project: the compose project name.

    Raises:
        engine.ComposeFailed: the stack did not come up.
    """
    print(f"$ docker compose -p {project} -f {file} up --detach --wait --build", flush=True)
    out = _Batcher()

    def show(line: str) -> None:
        if line.strip() and not line.startswith("#"):
            out.add(line)

    try:
        engine.compose_up(config.ROOT / file, project=project, echo=show)
    finally:
        out.flush()
