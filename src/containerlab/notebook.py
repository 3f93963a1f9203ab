"""Helpers the book's notebooks call, so that pages show commands, not plumbing.

A hidden setup cell runs :func:`setup`; visible cells then read like what a
reader would type in a terminal, e.g. ``sh("docker build --tag customer-value:1.0 docker/customer-value")``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess

import pandas as pd

from . import config, engine, layers


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


def _condensed_progress() -> engine.Echo:
    """Return a printer that shows builder output as one line per Dockerfile step and its outcome."""
    steps: dict[str, str] = {}

    def show(line: str) -> None:
        if match := _BUILD_STEP.match(line):
            if not match.group(2).startswith("[internal]"):
                steps[match.group(1)] = match.group(2)
        elif (match := _BUILD_STATUS.match(line)) and match.group(1) in steps:
            print(f"{steps.pop(match.group(1))}  -> {match.group(2)}", flush=True)
        elif line.startswith("ERROR") or "naming to" in line:
            print(line.lstrip("#0123456789 "), flush=True)

    return show


def _is_build(argv: list[str]) -> bool:
    return argv[:2] == ["docker", "build"] or argv[:3] == ["docker", "buildx", "build"]


def sh(command: str, *, check: bool = True, full_log: bool = False) -> str:
    """Print ``$ command``, run it from the repository root and print its output.

    For ``docker build`` the builder's progress is condensed to one line per
    Dockerfile step with its outcome (``CACHED`` or ``DONE`` and the seconds),
    unless ``full_log`` is set; the full log is returned either way.

    Args:
        command: a shell-style command line, e.g. ``"docker run --rm python:3.13-slim python -V"``.
        check: raise when the command exits non-zero.
        full_log: print every line of builder output.

    Returns:
        The command's whole output (stdout and stderr merged).

    Raises:
        CommandFailed: the command exited non-zero and ``check`` is set.
    """
    argv = shlex.split(command)
    print(f"$ {command}", flush=True)
    condensed = _is_build(argv) and not full_log
    if condensed and "--progress" not in command:
        argv.insert(2 if argv[1] == "build" else 3, "--progress=plain")
    condense = _condensed_progress()

    def show(line: str) -> None:
        if not condensed:
            print(line, flush=True)
            return
        condense(line)

    if argv[0] == "docker":
        result = engine.docker_cli(argv[1:], echo=show, cwd=config.ROOT)
        output = result.stdout
    else:
        proc = subprocess.run(argv, cwd=config.ROOT, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        result = subprocess.CompletedProcess(argv, proc.returncode, output, "")
        for line in output.splitlines():
            show(line)
    if check and result.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise CommandFailed(f"`{command}` exited with status {result.returncode}:\n{tail}")
    return output


class BuildCommandError(ValueError):
    """:func:`build` was given a command line it does not understand; the message says what to write."""


def _parse_build(command: str) -> argparse.Namespace:
    argv = shlex.split(command)
    if argv[:2] == ["docker", "build"]:
        rest = argv[2:]
    elif argv[:3] == ["docker", "buildx", "build"]:
        rest = argv[3:]
    else:
        raise BuildCommandError(
            f"build() runs `docker build ...` commands; got `{command}`. "
            "Use sh() for other commands."
        )
    parser = argparse.ArgumentParser(prog="docker build", add_help=False, exit_on_error=False)
    parser.add_argument("--tag", "-t")
    parser.add_argument("--file", "-f")
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--progress")
    parser.add_argument("context", nargs="?")
    try:
        args, unknown = parser.parse_known_args(rest)
    except argparse.ArgumentError as exc:
        raise BuildCommandError(
            f"Could not read `{command}` ({exc}). Write it as "
            "`docker build [--no-cache] [--file FILE] [--build-arg KEY=VALUE] --tag NAME:TAG CONTEXT`."
        ) from None
    if args.tag is None or args.context is None:
        missing = "a --tag NAME:TAG" if args.tag is None else "the build context folder (last)"
        raise BuildCommandError(f"`{command}` needs {missing}, so that the image can be found afterwards.")
    if unknown:
        raise BuildCommandError(f"build() does not know the option(s) {unknown} in `{command}`.")
    for pair in args.build_arg:
        if "=" not in pair:
            raise BuildCommandError(f"--build-arg needs KEY=VALUE, got {pair!r} in `{command}`.")
    return args


def build(command: str, *, previous: layers.MeasuredBuild | str | None = None) -> layers.MeasuredBuild:
    """Run a ``docker build`` command line, show its progress and measure the result.

    The command is printed as ``$ docker build ...``, the builder's progress is
    shown as one line per step while it runs, and the build is measured with
    :func:`containerlab.layers.build` (which steps were reused, how long it took).

    Args:
        command: e.g. ``"docker build --tag cl-cache/customer-value:good-order .cache/caching-demo"``;
            understood options: ``--tag/-t`` (required), ``--file/-f``, ``--build-arg``,
            ``--no-cache``.
        previous: an earlier build (or image tag) of the same Dockerfile to compare with.

    Returns:
        The measured build; ``.table()`` lists the steps as reused or rebuilt.

    Raises:
        BuildCommandError: the command line is not a ``docker build`` this helper understands.
        engine.BuildFailed: the build failed. The failing step and the builder's error
            lines are printed first; the builder process is stopped, nothing keeps running.
    """
    args = _parse_build(command)
    print(f"$ {command}", flush=True)
    if isinstance(previous, layers.MeasuredBuild):
        previous = previous.image
    try:
        measured = layers.build(
            config.ROOT / args.context,
            tag=args.tag,
            dockerfile=config.ROOT / args.file if args.file else None,
            previous=previous,
            build_args=dict(pair.split("=", 1) for pair in args.build_arg),
            no_cache=args.no_cache,
            echo=_condensed_progress(),
        )
    except engine.BuildFailed as exc:
        print(f"\nThe build failed at step: {exc.step or '(before any step ran)'}", flush=True)
        for line in exc.error_lines or exc.log.splitlines()[-10:]:
            print(f"  {line}", flush=True)
        raise
    print(f"built {args.tag} in {measured.seconds:.1f} s", flush=True)
    return measured
