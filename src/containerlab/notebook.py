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
import time

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


_STEP_NUMBER = re.compile(r"^\[(?:(\S+) )?(\d+)/\d+\]")


class _CondensedProgress:
    """A line handler that passes builder output on to ``emit`` as one line per
    Dockerfile step with its outcome (shown to people, never parsed for facts).

    BuildKit runs independent steps at once and reports them as they finish, so
    a step's line is held back until every earlier step of its stage has been
    shown: the page lists ``[1/5]``, ``[2/5]``, ... in the Dockerfile's order.
    A step BuildKit names twice (the base image of a cached build) is shown once.
    """

    def __init__(self, emit: engine.Echo):
        self.emit = emit
        self.running: dict[str, str] = {}  # vertex number -> step label
        self.done: dict[tuple[str, int], str] = {}  # (stage, step) -> line to show
        self.next: dict[str, int] = {}  # stage -> the step to show next
        self.shown: set[tuple[str, int]] = set()

    def __call__(self, line: str) -> None:
        if match := _BUILD_STEP.match(line):
            if not match.group(2).startswith("[internal]"):
                self.running[match.group(1)] = match.group(2)
        elif (match := _BUILD_STATUS.match(line)) and match.group(1) in self.running:
            label = self.running.pop(match.group(1))
            number = _STEP_NUMBER.match(label)
            if number is None:
                self.emit(f"{label}  -> {match.group(2)}")
                return
            key = (number.group(1) or "", int(number.group(2)))
            if key not in self.shown and key not in self.done:
                self.done[key] = f"{label}  -> {match.group(2)}"
            self._show_ready()
        elif line.startswith("ERROR") or "naming to" in line:
            self.flush()
            self.emit(line.lstrip("#0123456789 "))

    def _show_ready(self) -> None:
        for stage in sorted({stage for stage, _ in self.done}):
            step = self.next.get(stage, 1)
            while (stage, step) in self.done:
                self.emit(self.done.pop((stage, step)))
                self.shown.add((stage, step))
                step += 1
            self.next[stage] = step

    def flush(self) -> None:
        """Show every finished step still held back (a step before it never reported), in order."""
        for key in sorted(self.done):
            self.emit(self.done.pop(key))
            self.shown.add(key)


def _condensed_progress(emit: engine.Echo) -> _CondensedProgress:
    """Return a line handler that shows one line per Dockerfile step, in order (see :class:`_CondensedProgress`)."""
    return _CondensedProgress(emit)


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
    show = _condensed_progress(out.add) if condensed else out.add

    try:
        if argv[0] == "docker":
            result = engine.docker_cli(argv[1:], echo=show, cwd=config.ROOT)
        else:
            proc = subprocess.run(argv, cwd=config.ROOT, capture_output=True, text=True)
            result = subprocess.CompletedProcess(argv, proc.returncode, proc.stdout + proc.stderr, "")
            for line in result.stdout.splitlines():
                show(line)
    finally:
        if isinstance(show, _CondensedProgress):
            show.flush()
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


def build(command: str, *, previous: layers.MeasuredBuild | str | None = None,
          check: bool = True) -> layers.MeasuredBuild | None:
    """Run a ``docker build`` command line, show its progress and measure the result.

    The command is printed as ``$ docker build ...``, the builder's progress is
    shown as one line per step while it runs, and the build is measured with
    :func:`containerlab.layers.build` (which steps were reused, how long it took).

    Args:
        command: e.g. ``"docker build --tag customer-value:good-order .cache/caching-demo"``;
            understood options: ``--tag/-t`` (required), ``--file/-f``, ``--build-arg``,
            ``--no-cache``.
        previous: an earlier build (or image tag) of the same Dockerfile to compare with.
        check: raise when the build fails. With ``check=False`` a failed build prints
            what went wrong, as a terminal shows it, and returns None (for pages that
            show a failure on purpose, without a Python traceback).

    Returns:
        The measured build; ``.table()`` lists the steps as reused or rebuilt.
        None when the build failed and ``check`` is off.

    Raises:
        BuildCommandError: the command line is not a ``docker build`` this helper understands.
        engine.BuildFailed: the build failed. The failing step and the builder's error
            lines are printed first; the builder process is stopped, nothing keeps running.
    """
    args = _parse_build(command)
    if isinstance(previous, layers.MeasuredBuild):
        previous = previous.image
    out = _Batcher()
    out.add(f"$ {command}")
    progress = _condensed_progress(out.add)
    try:
        measured = layers.build(
            config.ROOT / args.context,
            tag=args.tag,
            dockerfile=config.ROOT / args.file if args.file else None,
            previous=previous,
            build_args=dict(pair.split("=", 1) for pair in args.build_arg),
            no_cache=args.no_cache,
            echo=progress,
        )
    except engine.BuildFailed as exc:
        progress.flush()
        out.flush()
        print(f"\nThe build failed at step: {exc.step or '(before any step ran)'}", flush=True)
        said = _step_output(exc.log, exc.step)
        if said:
            print("Its last lines of output:", flush=True)
            for line in said:
                print(f"  {line}", flush=True)
        # The step's own output is shown above; the builder's verdict starts with ERROR.
        errors = [line for line in exc.error_lines if line.startswith("ERROR") and line not in said]
        if errors or not said:
            print("The builder's error:", flush=True)
            for line in errors or exc.log.splitlines()[-10:]:
                print(f"  {line}", flush=True)
        if not check:
            print(f"\nNo image was tagged {args.tag}.", flush=True)
            return None
        # Everything is printed above: a short message, without the chain, keeps the page readable.
        raise engine.BuildFailed(
            f"The build of {args.context} failed at step {exc.step or '(before any step ran)'}; "
            "the builder's output is printed above.",
            step=exc.step, error_lines=exc.error_lines, log=exc.log,
        ) from None
    finally:
        progress.flush()
        out.flush()
    print(f"built {args.tag} in {measured.seconds:.1f} s", flush=True)
    return measured


def _step_output(log: str, step: str, *, last: int = 10) -> list[str]:
    """The last lines a failing step printed, from the builder's plain progress log (shown to people only)."""
    if not step:
        return []
    numbers = {m.group(1) for line in log.splitlines() if (m := _BUILD_STEP.match(line)) and m.group(2) == step}
    said = []
    for line in log.splitlines():
        match = re.match(r"^#(\d+) \d+\.\d+ (.*)$", line)
        if match and match.group(1) in numbers:
            said.append(match.group(2))
    return said[-last:]


def wait_healthy(container: str, *, timeout: float = 90) -> None:
    """Poll the engine's verdict on a container's HEALTHCHECK until it is no longer ``starting``.

    Prints the command a reader would type and the verdict it finally gave
    (``healthy`` or ``unhealthy``), as a terminal would show the last try.

    Args:
        container: the container's name.
        timeout: seconds to wait at most.

    Raises:
        CommandFailed: the verdict was still ``starting`` after ``timeout`` seconds, or the
            container has no healthcheck.
    """
    command = ["docker", "inspect", "--format", "{{.State.Health.Status}}", container]
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        result = subprocess.run(command, capture_output=True, text=True)
        status = result.stdout.strip()
        if result.returncode != 0 or status not in ("starting", ""):
            break
        time.sleep(1)
    print(f"$ docker inspect --format '{{{{.State.Health.Status}}}}' {container}\n{status}", flush=True)
    if status not in ("healthy", "unhealthy"):
        raise CommandFailed(f"{container} has no health verdict after {timeout:.0f} s (status {status!r}).")


#: Lines that carry on the command above them when a script is shown (bodies of loops and ifs).
_CONTINUES = re.compile(r"^(\s|done\b|fi\b|else\b|elif\b|then\b|do\b|esac\b|\})")


_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def _commands(script: str) -> list[tuple[str, str]]:
    """Split a script into its top-level commands, each as ``(shown, source)``.

    ``shown`` is the command as a terminal shows it typed: ``$ `` before its first
    line, two spaces before lines that carry it on (a loop's body, its ``done``, a
    line after ``\\``), and the lines of a here-document (``cat > file <<'EOF'`` up to
    ``EOF``) as they are, so that they can be copied as they are. ``source`` is the
    command's text to run.
    """
    commands: list[tuple[list[str], list[str]]] = []
    carried = False
    heredoc = None
    for line in script.strip("\n").splitlines():
        if heredoc is not None:
            commands[-1][0].append(line)
            commands[-1][1].append(line)
            heredoc = None if line == heredoc else heredoc
            continue
        if commands and (carried or _CONTINUES.match(line)):
            commands[-1][0].append("  " + line)
            commands[-1][1].append(line)
        else:
            commands.append((["$ " + line], [line]))
        carried = line.rstrip().endswith("\\")
        if match := _HEREDOC.search(line):
            heredoc = match.group(2)
    return [("\n".join(shown), "\n".join(source)) for shown, source in commands]


def _prompted(script: str) -> str:
    """The whole script as a terminal shows it typed (see :func:`_commands`)."""
    return "\n".join(shown for shown, _ in _commands(script))


def shell(script: str, *, check: bool = True) -> str:
    """Print a short shell script the way a reader types it, run it with bash and print its output.

    For what :func:`sh` cannot show as typed: pipes, loops, ``cd``, variables.
    The script runs from the repository root in one ``bash -e`` process (a
    failing command stops it, as it would stop a reader; a command tested by
    ``if`` or ``&&`` does not). Each command is printed as typed (see
    :func:`_commands`) just before it runs, followed by its output (stdout and
    stderr merged), as in a terminal; everything printed is returned for a
    hidden check of the page.

    Args:
        script: one or more lines, e.g. ``"cd .cache/saved\\ntar -tf image.tar | head"``.
        check: raise when the script exits non-zero.

    Returns:
        Everything printed: the commands as typed and their output.

    Raises:
        CommandFailed: the script exited non-zero and ``check`` is set.
    """
    # Each command is shown just before it runs, so that its output follows it, as in a terminal.
    traced = "\n".join(f"printf '%s\\n' {shlex.quote(shown)}\n{source}" for shown, source in _commands(script))
    out = _Batcher()
    proc = subprocess.Popen(["bash", "-e", "-c", traced], cwd=config.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            out.add(line.rstrip("\n"))
    finally:
        returncode = proc.wait()
        out.flush()
    output = "".join(lines)
    if check and returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise CommandFailed(f"the script exited with status {returncode}:\n{tail}")
    return output

