"""Helpers the book's notebooks call, so that pages show commands, not plumbing.

A hidden setup cell runs :func:`setup`; cells whose Python input is hidden
(MyST tag ``remove-input``) then read like what a reader types in a terminal:
``sh("docker build --tag customer-value:1.0 docker/customer-value")`` prints
``$ docker build ...`` and the command's output.

What the pages show, and what runs
----------------------------------
Several readers (JupyterHub users, two clones of the course) may share one
Docker engine, so the pages give the containers, networks, volumes and compose
projects they make a suffix of this user and clone (``config.INSTANCE``, e.g.
``customer-value-demo-alice-3fa2c1``) and publish host ports of their own
(``config.instance_port(8080)``, e.g. 33780). The command that runs keeps
them. What the helpers *print* (command lines and output) shows the plain
names and ports the prose uses, ``customer-value-demo`` and 8080, which are
what a reader types on a machine of their own (:func:`shown`). The same holds
for HTTP calls in visible Python cells: after :func:`setup`, a request to
``http://localhost:8080`` goes to this instance's port for 8080.

Printed lines are at most :data:`WIDTH` characters (the book's theme cuts
longer code lines off at 1280 px): long command lines are continued with
`` \\`` as a reader would type them, long output lines are wrapped as a
terminal of that width would wrap them, and builder logs are condensed to one
line per Dockerfile step, with the full log one click away.
"""

from __future__ import annotations

import argparse
import atexit
import html
import os
import re
import shlex
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from . import config, engine, layers

#: The longest line a page shows, in characters. At 1280 px the book's theme shows 77 characters of
#: a code block in the main column and 75 in an admonition (a solution opened on click); longer
#: lines are cut off.
WIDTH = 74


class CommandFailed(RuntimeError):
    """A command run with :func:`sh` did not end as the page expected; the message holds its last lines."""


# ------------------------------------------------------------------ names and ports as the prose says them

#: Ports shown in the prose -> the port this instance really uses, for ports outside 8000-8099
#: (see :func:`host_port`). 8000-8099 always map to ``config.instance_port``.
_EXTRA_PORTS: dict[int, int] = {}


def _port_block() -> int:
    """The first of the 100 host ports of this instance (``config.instance_port(8000)``)."""
    return config.instance_port(8000) - 8000 % 100


def host_port(shown_port: int) -> int:
    """The host port this instance publishes where the prose says ``shown_port``.

    Ports 8000-8099 are ``config.instance_port(shown_port)``; any other port
    (the registry's 5000) gets a port of the instance's block from 8050 up and
    is remembered, so that :func:`shown` prints it as ``shown_port``.

    Args:
        shown_port: the port a reader would use on a machine of their own.

    Returns:
        The port to publish or listen on.
    """
    if 8000 <= shown_port <= 8099:
        return config.instance_port(shown_port)
    if shown_port not in _EXTRA_PORTS:
        _EXTRA_PORTS[shown_port] = config.instance_port(8050 + len(_EXTRA_PORTS))
    return _EXTRA_PORTS[shown_port]


def _shown_port(port: int) -> int | None:
    for shown_port, actual in _EXTRA_PORTS.items():
        if port == actual:
            return shown_port
    base = _port_block()
    return 8000 + port - base if base <= port < base + 100 else None


def _stands_for_a_port(text: str, start: int, end: int) -> bool:
    """Whether the number at ``text[start:end]`` is written where a port stands.

    After ``:`` or ``=`` (``localhost:33780``, ``API_PORT=33700``), or before ``:<digit>``
    or ``->`` (``--publish 33780:80``, ``33700->80/tcp``).
    """
    before = text[start - 1] if start else ""
    after = text[end:end + 2]
    return before in (":", "=") or after.startswith("->") or (after[:1] == ":" and after[1:2].isdigit())


def shown(text: str) -> str:
    """``text`` as the pages print it: this instance's names and host ports in their plain form.

    ``-<INSTANCE>`` after a name is dropped (``box-a-alice-3fa2c1`` -> ``box-a``,
    ``customer-value-alice-3fa2c1_db-data`` -> ``customer-value_db-data``), and a host
    port of this instance, written where a port stands (``localhost:33780``,
    ``--publish 33780:80``, ``127.0.0.1:33700->80/tcp``, ``API_PORT=33700``), becomes
    the port the prose uses (8080, 8000, or a port given to :func:`host_port`). In a
    table (``docker ps``), the next gap of three or more spaces after a shortened name
    grows by what the name lost, so the columns stay under their headings. (Tables
    separate their columns by three spaces or more; compose's progress lines use two.)

    Args:
        text: a command line or its output.

    Returns:
        The text with plain names and ports.
    """
    return "\n".join(_shown_line(line) for line in text.split("\n"))


def _shown_line(line: str) -> str:
    suffix = re.escape(f"-{config.INSTANCE}")
    pattern = re.compile(rf"(?P<suffix>{suffix}(?![A-Za-z0-9]))|(?P<number>(?<![\w.])\d{{5}}(?![\w.]))"
                         r"|(?P<gap>   +)")
    lost = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal lost
        if match.group("suffix"):
            lost += len(match.group("suffix"))
            return ""
        if match.group("number"):
            number = match.group("number")
            plain = _shown_port(int(number)) if _stands_for_a_port(line, match.start(), match.end()) else None
            if plain is None:
                return number
            lost += len(number) - len(str(plain))
            return str(plain)
        gap, lost = match.group("gap") + " " * max(lost, 0), 0
        return gap

    return pattern.sub(replace, line)


def _actual_url(url: str) -> str:
    """The URL with a shown port on this machine's loopback replaced by this instance's port."""
    parts = urlsplit(url)
    if parts.hostname in ("localhost", "127.0.0.1") and parts.port:
        if 8000 <= parts.port <= 8099 or parts.port in _EXTRA_PORTS:
            netloc = f"{parts.hostname}:{host_port(parts.port)}"
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _route_shown_ports() -> None:
    """Make ``requests`` calls to ``localhost:<shown port>`` reach this instance's port (once per process)."""
    import requests

    if getattr(requests.Session.request, "_shown_ports", False):
        return
    original = requests.Session.request

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        return original(self, method, _actual_url(str(url)), *args, **kwargs)

    request._shown_ports = True  # type: ignore[attr-defined]
    requests.Session.request = request  # type: ignore[method-assign]


def setup() -> None:
    """Prepare a notebook: work from the repository root, show tables in full, show plain ports.

    Relative paths in the pages (``docker/customer-value``) are then the ones a
    reader types from a clone of the course repository, and HTTP requests to
    ``http://localhost:8080`` reach the port this instance published for 8080
    (see the module's docstring).
    """
    os.chdir(config.ROOT)
    for key, value in config.isolated_environment().items():
        os.environ.setdefault(key, value)
    pd.set_option("display.max_colwidth", 60)
    pd.set_option("display.width", WIDTH)
    _route_shown_ports()


# ------------------------------------------------------------------ printing lines as a terminal would

def _words(command: str) -> list[str]:
    """Split a command line at unquoted spaces, keeping each word as written (quotes included)."""
    words, word, quote = [], "", ""
    for char in command:
        if quote:
            word += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            word += char
            quote = char
        elif char == " ":
            if word:
                words.append(word)
            word = ""
        else:
            word += char
    if word:
        words.append(word)
    return words


def command_lines(command: str, *, width: int = WIDTH) -> list[str]:
    """The command as a reader would type it, ``$ `` first, continued with `` \\`` past ``width``.

    A quoted word is never split; continuation lines are indented by four spaces.
    """
    words = _words(command.replace("\t", "\\t"))
    # An option stays on one line with its value (``--publish 8080:80``).
    units: list[str] = []
    for word in words:
        if units and units[-1].startswith("-") and " " not in units[-1] and not word.startswith("-"):
            units[-1] += f" {word}"
        else:
            units.append(word)
    lines: list[list[str]] = [["$"]]

    def length(words: list[str]) -> int:
        return len(" ".join(words))

    for number, word in enumerate(units):
        line = lines[-1]
        room = width if number == len(units) - 1 else width - 2  # " \\" ends a continued line
        if length([*line, word]) <= room or len(line) == 1:
            line.append(word)
            continue
        # A short program name (`python`, `sh`) goes down with the arguments that follow it.
        last = line[-1]
        if (len(line) > 2 and len(last) <= 12 and not last.startswith("-")
                and length(["   ", last, word]) + 2 <= width):
            line.pop()
            lines.append(["   ", last, word])
        else:
            lines.append(["   ", word])
    shown_lines = [" ".join(line) for line in lines]
    return [line + " \\" for line in shown_lines[:-1]] + shown_lines[-1:]


def output_lines(text: str, *, width: int = WIDTH) -> list[str]:
    """Lines of output as a terminal ``width`` characters wide shows them (long lines wrap)."""
    lines = []
    for line in text.expandtabs(8).splitlines() or [""]:
        while len(line) > width:
            lines.append(line[:width])
            line = line[width:]
        lines.append(line)
    return lines


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


#: ANSI control sequences (colours, cursor moves, clearing a line) in a program's output.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal:
    """Prints lines as the pages show them: plain names and ports, at most ``width`` characters."""

    def __init__(self, width: int = WIDTH):
        self.width = width
        self.out = _Batcher()

    def command(self, command: str) -> None:
        for line in command_lines(shown(command), width=self.width):
            self.out.add(line)

    def line(self, line: str) -> None:
        # A terminal acts on control sequences (colours, "clear the line") and shows none of them.
        line = _CONTROL.sub("", line)
        for part in output_lines(shown(line), width=self.width):
            self.out.add(part)

    def flush(self) -> None:
        self.out.flush()


# ------------------------------------------------------------------ builder output, condensed

_BUILD_STEP = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_BUILD_STATUS = re.compile(r"^#(\d+) (CACHED|DONE [\d.]+s|ERROR.*)$")


_STEP_NUMBER = re.compile(r"^\[(?:(\S+) )?(\d+)/\d+\]")
#: A base image's digest in a FROM step's label (the full log keeps it).
_FROM_DIGEST = re.compile(r"(\] FROM \S+?)@sha256:[0-9a-f]{64}")


def _fit(label: str, outcome: str, width: int | None) -> str:
    """One condensed step line, ``label  -> outcome``, cut in the label's middle to ``width`` characters."""
    if width is None:
        return f"{label}  -> {outcome}"
    label = _FROM_DIGEST.sub(r"\1", label)
    room = width - len(outcome) - 4
    if len(label) > room:
        label = label[: room - 1] + "…"
    return f"{label}  -> {outcome}"


class _CondensedProgress:
    """A line handler that passes builder output on to ``emit`` as one line per
    Dockerfile step with its outcome (shown to people, never parsed for facts).

    BuildKit runs independent steps at once and reports them as they finish, so
    a step's line is held back until every earlier step of its stage has been
    shown: the page lists ``[1/5]``, ``[2/5]``, ... in the Dockerfile's order.
    A step BuildKit names twice (the base image of a cached build) is shown once.

    Args:
        emit: called with each line to show.
        width: cut step lines to this many characters (and drop a base image's digest); None keeps them whole.
        passthrough: show lines that are not the builder's (``docker compose`` prints its own
            progress between them) as they come.
    """

    def __init__(self, emit: engine.Echo, *, width: int | None = None, passthrough: bool = False):
        self.emit = emit
        self.width = width
        self.passthrough = passthrough
        self.running: dict[str, str] = {}  # vertex number -> step label
        self.done: dict[tuple[str, int], str] = {}  # (stage, step) -> line to show
        self.next: dict[str, int] = {}  # stage -> the step to show next
        self.shown: set[tuple[str, int]] = set()

    def __call__(self, line: str) -> None:
        if match := _BUILD_STEP.match(line):
            if not match.group(2).startswith("[internal]") and " internal] " not in match.group(2):
                self.running[match.group(1)] = match.group(2)
        elif (match := _BUILD_STATUS.match(line)) and match.group(1) in self.running:
            label = self.running.pop(match.group(1))
            number = _STEP_NUMBER.match(label)
            if number is None:
                self.emit(_fit(label, match.group(2), self.width))
                return
            key = (number.group(1) or "", int(number.group(2)))
            if key not in self.shown and key not in self.done:
                self.done[key] = _fit(label, match.group(2), self.width)
            self._show_ready()
        elif line.startswith("ERROR") or "naming to" in line:
            self.flush()
            self.emit(line.lstrip("#0123456789 "))
        elif self.passthrough and line.strip() and not re.match(r"^#\d+ ", line):
            self.emit(line)

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


def _condensed_progress(emit: engine.Echo, *, width: int | None = None,
                        passthrough: bool = False) -> _CondensedProgress:
    """Return a line handler that shows one line per Dockerfile step, in order (see :class:`_CondensedProgress`)."""
    return _CondensedProgress(emit, width=width, passthrough=passthrough)


def _is_build(argv: list[str]) -> bool:
    return argv[:2] == ["docker", "build"] or argv[:3] == ["docker", "buildx", "build"]


def _is_compose_build(argv: list[str]) -> bool:
    """Whether a ``docker compose`` command line may build images (``build``, or ``up``/``run``/``create`` ``--build``)."""
    if argv[:2] != ["docker", "compose"]:
        return False
    return "build" in argv[2:] or "--build" in argv[2:] or "up" in argv[2:]


class FullLog:
    """A builder's whole log, shown in the book as a closed box the reader can open.

    In Jupyter and the book it renders as an HTML ``<details>`` element; in a
    terminal it prints one line saying how long the log is.
    """

    def __init__(self, lines: list[str], *, title: str = "The builder's full log"):
        self.lines = [shown(line) for line in lines]
        self.title = title

    def _repr_html_(self) -> str:
        text = html.escape("\n".join(output_lines("\n".join(self.lines))))
        return (f'<details class="cl-full-log"><summary>{html.escape(self.title)} '
                f"({len(self.lines)} lines)</summary><pre>{text}</pre></details>")

    def __repr__(self) -> str:
        return f"({self.title}: {len(self.lines)} lines)"


def _show_full_log(lines: list[str], shown_count: int) -> None:
    if len(lines) > shown_count:
        from IPython.display import display

        display(FullLog(lines))


# ------------------------------------------------------------------ running commands

#: A layer's progress line of ``docker push``/``docker pull`` (``b30eb4efe6df: Pushed``).
_LAYER_LINE = re.compile(r"^([0-9a-f]{12}): (.*)$")


class _LayerProgress:
    """Shows ``docker push``/``pull`` output as a terminal ends up showing it: one line per layer, its last state.

    In a terminal each layer's line is redrawn in place (``Waiting``, ``Pushing``,
    ``Pushed``); without one, every state is printed on a line of its own. The
    layers keep the order they first appeared in; other lines pass at once.
    """

    def __init__(self, emit: engine.Echo):
        self.emit = emit
        self.layers: dict[str, str] = {}

    def __call__(self, line: str) -> None:
        if match := _LAYER_LINE.match(line):
            self.layers[match.group(1)] = match.group(2)
        else:
            self.flush()
            self.emit(line)

    def flush(self) -> None:
        for layer, state in self.layers.items():
            self.emit(f"{layer}: {state}")
        self.layers.clear()


#: Seconds after which a command a page runs is stopped.
COMMAND_TIMEOUT = 1800

#: What a command a page runs did: exit status and output, stdout and stderr merged in ``stdout``.
_Ran = engine.CliResult | subprocess.CompletedProcess[str]


def _run(command: str, *, full_log: bool, echo_output: bool = True) -> _Ran:
    argv = shlex.split(command)
    term = _Terminal()
    term.command(command)
    raw: list[str] = []
    shown_lines = [0]
    builds = _is_build(argv) or _is_compose_build(argv)
    condensed = builds and not full_log
    if condensed and "--progress" not in command:
        if _is_build(argv):
            argv.insert(2 if argv[1] == "build" else 3, "--progress=plain")
        else:
            argv.insert(2, "--progress=plain")

    def emit(line: str) -> None:
        shown_lines[0] += 1
        term.line(line)

    progress: _CondensedProgress | _LayerProgress | None = None
    if condensed:
        progress = _condensed_progress(emit, width=WIDTH, passthrough=not _is_build(argv))
    elif argv[:2] in (["docker", "push"], ["docker", "pull"]):
        progress = _LayerProgress(emit)

    def show(line: str) -> None:
        raw.append(line)
        if not echo_output:
            return
        if progress is not None:
            progress(line)
        else:
            emit(line)

    try:
        if argv[0] == "docker":
            result: _Ran = engine.docker_cli(argv[1:], echo=show, cwd=config.ROOT, timeout=COMMAND_TIMEOUT)
        else:
            proc = subprocess.run(argv, cwd=config.ROOT, capture_output=True, text=True)
            result = subprocess.CompletedProcess(argv, proc.returncode, proc.stdout + proc.stderr, "")
            for line in result.stdout.splitlines():
                show(line)
    finally:
        if progress is not None:
            progress.flush()
        term.flush()
    if condensed and echo_output:
        _show_full_log(raw, shown_lines[0])
    return result


def sh(command: str, *, check: bool = True, full_log: bool = False, fails: bool = False,
       expect: str | None = None) -> None:
    """Print ``$ command``, run it from the repository root and print its output.

    What is printed shows plain names and ports (:func:`shown`) and fits the
    page (:data:`WIDTH`); the command that runs is ``command`` as given. For a
    build (``docker build``, ``docker buildx build``, and ``docker compose``
    commands that build) the builder's progress is condensed to one line per
    Dockerfile step with its outcome (``CACHED`` or ``DONE`` and the seconds),
    and the full log follows in a box the reader can open, unless ``full_log``
    is set. Nothing is returned, so a cell shows only what a terminal would.

    Args:
        command: a shell-style command line, e.g. ``"docker run --rm python:3.13-slim python -V"``.
        check: raise when the command exits non-zero.
        full_log: print every line of builder output.
        fails: the command must exit non-zero (a task that shows an error on purpose);
            raise when it succeeds.
        expect: text the printed output must contain (a hidden solution's check).

    Raises:
        CommandFailed: the command exited non-zero and ``check`` is set (and ``fails`` is not),
            it succeeded although ``fails`` is set, or its output lacks ``expect``.
    """
    _checked(command, _run(command, full_log=full_log), check=check, fails=fails, expect=expect)


def output(command: str, *, show: bool = True, check: bool = True, fails: bool = False,
           expect: str | None = None) -> str:
    """Like :func:`sh`, and return the command's output as it really was (real names and ports).

    Args:
        command: a shell-style command line.
        show: print the command and its output as :func:`sh` does; False runs it quietly.
        check, fails, expect: as for :func:`sh`.

    Returns:
        stdout and stderr of the command, merged.
    """
    result = _run(command, full_log=False, echo_output=show) if show else _quiet(command)
    _checked(command, result, check=check, fails=fails, expect=expect)
    return result.stdout


def _quiet(command: str) -> _Ran:
    argv = shlex.split(command)
    if argv[0] == "docker":
        return engine.docker_cli(argv[1:], cwd=config.ROOT, timeout=COMMAND_TIMEOUT)
    proc = subprocess.run(argv, cwd=config.ROOT, capture_output=True, text=True)
    return subprocess.CompletedProcess(argv, proc.returncode, proc.stdout + proc.stderr, "")


def _checked(command: str, result: _Ran, *, check: bool, fails: bool,
             expect: str | None) -> None:
    tail = "\n".join(result.stdout.splitlines()[-15:])
    if fails and result.returncode == 0:
        raise CommandFailed(f"`{shown(command)}` was expected to fail, and succeeded:\n{tail}")
    if check and not fails and result.returncode != 0:
        raise CommandFailed(f"`{shown(command)}` exited with status {result.returncode}:\n{tail}")
    if expect is not None and expect not in shown(result.stdout):
        raise CommandFailed(f"The output of `{shown(command)}` does not say {expect!r}:\n{tail}")


def remove_leftovers(*, containers: tuple[str, ...] = (), volumes: tuple[str, ...] = (),
                     networks: tuple[str, ...] = (), images: tuple[str, ...] = (),
                     projects: tuple[str, ...] = ()) -> None:
    """Quietly remove what an earlier (perhaps killed) run of a page left, by the names the page gives.

    Missing objects are fine. Compose projects go first (with their volumes), then containers,
    then volumes, networks and image tags.

    Args:
        containers, volumes, networks, images: names (with the instance suffix, as the page made them).
        projects: compose project names.
    """
    for project in projects:
        engine.compose_down(None, project=project, volumes=True)
    if containers:
        _quiet("docker rm --force " + " ".join(containers))
    if volumes:
        _quiet("docker volume rm --force " + " ".join(volumes))
    if networks:
        _quiet("docker network rm " + " ".join(networks))
    if images:
        _quiet("docker image rm " + " ".join(images))


def note(markdown: str) -> None:
    """Show a paragraph of MyST Markdown as cell output (a hidden solution's explanation)."""
    from IPython.display import Markdown, display

    display(Markdown(textwrap.dedent(markdown).strip()))


def engine_note() -> None:
    """Show which Docker Engine and image store the page ran on (one line, from ``docker version`` and ``docker info``).

    The containerd image store and the legacy one show sizes and image IDs
    differently (README, "Supported engines and image stores"), so every page
    says which it ran on.
    """
    version = engine.version()
    info = engine.info()
    if engine.is_containerd_store(info):
        store = "the containerd image store (`docker info` lists `driver-type io.containerd.snapshotter.v1`)"
    else:
        store = f"the legacy image store (storage driver `{info.get('Driver', '?')}`)"
    note(f"*This page ran on Docker Engine {version.get('Version', '?')} with {store}, "
         f"on {version.get('Os', '?')}/{version.get('Arch', '?')}.*")


# ------------------------------------------------------------------ a local image registry

#: Where the local registry keeps its configuration, images, log and process id (relative to the root).
REGISTRY_DIR = Path(".cache") / "registry"
#: The port the prose gives the local registry (``localhost:5000``).
REGISTRY_SHOWN_PORT = 5000


class RegistryUnavailable(RuntimeError):
    """The local registry could not be started; the message says why and what to install."""


#: The registry this process started (None when none runs).
_REGISTRY: subprocess.Popen | None = None


def _registry_pid() -> int | None:
    pid_file = config.ROOT / REGISTRY_DIR / "pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    # Only a registry this clone started with its own configuration is ours to stop.
    return pid if "registry" in cmdline and str(REGISTRY_DIR / "config.yml") in cmdline else None


def start_registry() -> str:
    """Start a private image registry on this machine and print how; return its address.

    Debian packages the registry server that Docker Hub's ``registry`` image runs
    (``apt-get install docker-registry``). It runs here as a plain process on
    127.0.0.1, with its configuration and storage under ``.cache/registry/``,
    so pushing needs no TLS (the engine trusts registries on the loopback
    address). A registry left running by an earlier run of the page is stopped
    first, and its storage emptied.

    Returns:
        The registry's address as images are named with it, ``localhost:PORT``
        (shown on the page as ``localhost:5000``).

    Raises:
        RegistryUnavailable: the ``docker-registry`` program is missing, or it did not answer.
    """
    import requests

    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise RegistryUnavailable(
            "This page runs a local image registry, and no `docker-registry` program was found. "
            "On Debian or Ubuntu: `apt-get install docker-registry`; elsewhere run Docker's own "
            "`registry:2` image (docs.docker.com/registry).")
    stop_registry(quiet=True)
    folder = config.ROOT / REGISTRY_DIR
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "storage").mkdir(parents=True)
    port = host_port(REGISTRY_SHOWN_PORT)
    (folder / "config.yml").write_text(textwrap.dedent(f"""\
        # A registry for this page: images on disk under .cache/registry/storage,
        # reachable only from this machine.
        version: 0.1
        log:
          level: warn
        storage:
          filesystem:
            rootdirectory: {REGISTRY_DIR / 'storage'}
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:{port}
        """))
    command = f"docker-registry serve {REGISTRY_DIR / 'config.yml'}"
    term = _Terminal()
    term.command(command + " &")
    term.flush()
    global _REGISTRY
    with (folder / "registry.log").open("wb") as log:
        proc = subprocess.Popen([binary, "serve", str(REGISTRY_DIR / "config.yml")], cwd=config.ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if _REGISTRY is None:
        atexit.register(stop_registry, quiet=True)  # the kernel's normal end stops it too
    _REGISTRY = proc
    (folder / "pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = (folder / "registry.log").read_text(errors="replace")[-1500:]
            raise RegistryUnavailable(f"The registry stopped at once (exit status {proc.returncode}):\n{said}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        stop_registry(quiet=True)
        raise RegistryUnavailable(f"The registry did not answer on 127.0.0.1:{port} within 30 s.")
    return f"localhost:{port}"


def stop_registry(*, quiet: bool = False) -> None:
    """Stop the registry :func:`start_registry` started (in this run or a killed earlier one), and delete its images.

    Args:
        quiet: print nothing (clean-up at the start and end of a page).
    """
    global _REGISTRY
    pid = _registry_pid()
    if pid is not None:
        if not quiet:
            term = _Terminal()
            term.command("kill %1")
            term.flush()
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
        own = _REGISTRY if _REGISTRY is not None and _REGISTRY.pid == pid else None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # Our own child is reaped by poll(); a killed run's registry belongs to init (its
            # cmdline is empty once it has ended, even while no one has reaped it).
            if (own.poll() is not None) if own else _registry_pid() is None:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            if own:
                own.wait(timeout=10)
    if _REGISTRY is not None and _REGISTRY.poll() is not None:
        _REGISTRY = None
    shutil.rmtree(config.ROOT / REGISTRY_DIR, ignore_errors=True)


# ------------------------------------------------------------------ tables, HTTP, health

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
        url: for example ``"http://localhost:8080/health"`` (a shown port reaches this
            instance's port, see :func:`setup`).
        timeout: seconds to wait at most.

    Raises:
        engine.ContainerFailed: nothing answered within ``timeout`` seconds.
    """
    response = engine.wait_http(_actual_url(url), timeout=timeout)
    print(shown(f"{url} answered {response.status_code}: {response.text}"))


def _inspected(container: str, template: str) -> str | None:
    """``docker inspect --format TEMPLATE CONTAINER``'s answer, or ``None`` when there is no such container."""
    result = engine.docker_cli(["inspect", "--format", template, container], timeout=60, merge=False)
    return result.stdout.strip() if result.returncode == 0 else None


def health(container: str) -> str:
    """The engine's current verdict on a container's HEALTHCHECK (``starting``, ``healthy``, ``unhealthy``), or ``""``.

    Raises:
        engine.CommandTimedOut: the engine did not answer within 60 s.
    """
    return _inspected(container, "{{if .State.Health}}{{.State.Health.Status}}{{end}}") or ""


def wait_health(container: str, wanted: str, *, timeout: float = 90) -> float:
    """Wait until the engine's verdict on ``container`` is ``wanted``; return the seconds waited.

    Raises:
        CommandFailed: the verdict was not ``wanted`` within ``timeout`` seconds.
    """
    start = time.monotonic()
    status = ""
    while time.monotonic() - start < timeout:
        status = health(container)
        if status == wanted:
            return time.monotonic() - start
        time.sleep(0.25)
    raise CommandFailed(f"{shown(container)} is {status or 'not there'!r}, not {wanted!r}, after {timeout:.0f} s.")


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
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = health(container)
        if status not in ("starting", ""):
            break
        time.sleep(1)
    term = _Terminal()
    term.command(f"docker inspect --format '{{{{.State.Health.Status}}}}' {container}")
    term.line(status)
    term.flush()
    if status not in ("healthy", "unhealthy"):
        raise CommandFailed(f"{shown(container)} has no health verdict after {timeout:.0f} s (status {status!r}).")


def wait_state(container: str, wanted: str = "exited", *, timeout: float = 60) -> None:
    """Wait until a container's state (``docker inspect --format '{{.State.Status}}'``) is ``wanted``.

    Raises:
        CommandFailed: it was not within ``timeout`` seconds (or the container is gone).
    """
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = _inspected(container, "{{.State.Status}}") or "gone"
        if state == wanted:
            return
        time.sleep(0.25)
    raise CommandFailed(f"{shown(container)} is {state!r}, not {wanted!r}, after {timeout:.0f} s.")


# ------------------------------------------------------------------ compose and builds

def compose_up(file: str, *, project: str | None = None, build: bool = True) -> None:
    """Print and run ``docker compose -f FILE up --detach --wait --build``.

    Compose's own progress lines are shown, and the builder's steps one line
    each (its full log one click away). When the stack does not come up, the
    failing services' last log lines are printed and the stack is taken down,
    volumes kept (see :func:`engine.compose_up`).

    Args:
        file: the compose file, relative to the repository root.
        project: the compose project name. None takes ``COMPOSE_PROJECT_NAME`` from the
            environment (a page sets it to this instance's project) and leaves ``-p`` out of
            what is printed: a reader's compose takes the name from the file.
        build: pass ``--build``.

    Raises:
        engine.ComposeFailed: the stack did not come up.
    """
    name = project or os.environ.get("COMPOSE_PROJECT_NAME")
    if not name:
        raise ValueError("compose_up() needs a project, or COMPOSE_PROJECT_NAME in the environment")
    term = _Terminal()
    term.command(f"docker compose {f'-p {project} ' if project else ''}-f {file} up --detach --wait"
                 + (" --build" if build else ""))
    raw: list[str] = []
    count = [0]

    def emit(line: str) -> None:
        count[0] += 1
        term.line(line)

    progress = _condensed_progress(emit, width=WIDTH, passthrough=True)

    def show(line: str) -> None:
        raw.append(line)
        progress(line)

    try:
        engine.compose_up(config.ROOT / file, project=name, build=build, echo=show)
    finally:
        progress.flush()
        term.flush()
    if any(_BUILD_STEP.match(line) for line in raw):
        _show_full_log(raw, count[0])


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
    What is printed shows plain names and ports (:func:`shown`).

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
    term = _Terminal()
    term.command(command)
    progress = _condensed_progress(term.line, width=WIDTH)
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
        term.flush()
        print(f"\nThe build failed at step: {exc.step or '(before any step ran)'}", flush=True)
        said = _step_output(exc.log, exc.step)
        if said:
            print("Its last lines of output:", flush=True)
            for line in said:
                print(f"  {shown(line)}", flush=True)
        # The step's own output is shown above; the builder's verdict starts with ERROR.
        errors = [line for line in exc.error_lines if line.startswith("ERROR") and line not in said]
        if errors or not said:
            print("The builder's error:", flush=True)
            for line in errors or exc.log.splitlines()[-10:]:
                print(f"  {shown(line)}", flush=True)
        if not check:
            print(shown(f"\nNo image was tagged {args.tag}."), flush=True)
            return None
        # Everything is printed above: a short message, without the chain, keeps the page readable.
        raise engine.BuildFailed(
            f"The build of {args.context} failed at step {exc.step or '(before any step ran)'}; "
            "the builder's output is printed above.",
            step=exc.step, error_lines=exc.error_lines, log=exc.log,
        ) from None
    finally:
        progress.flush()
        term.flush()
    print(shown(f"built {args.tag} in {measured.seconds:.1f} s"), flush=True)
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


#: Lines that carry on the command above them when a script is shown (bodies of loops and ifs).
_CONTINUES = re.compile(r"^(\s|done\b|fi\b|else\b|elif\b|then\b|do\b|esac\b|\})")
#: The start of a here-document (``<<'EOF'``, ``<<EOF``, ``<<-EOF``), with its closing word.
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
    stderr merged), as in a terminal, with plain names and ports and lines of
    at most :data:`WIDTH` characters, as :func:`sh` prints them (write the
    script's lines that short); everything printed is returned as it really
    was, for a hidden check of the page.

    Args:
        script: one or more lines, e.g. ``"cd .cache/saved\\ntar -tf image.tar | head"``.
        check: raise when the script exits non-zero.

    Returns:
        The commands as typed and their output, with this instance's real names and ports.

    Raises:
        CommandFailed: the script exited non-zero and ``check`` is set.
    """
    # Each command is shown just before it runs, so that its output follows it, as in a terminal.
    traced = "\n".join(f"printf '%s\\n' {shlex.quote(typed)}\n{source}" for typed, source in _commands(script))
    term = _Terminal()
    proc = subprocess.Popen(["bash", "-e", "-c", traced], cwd=config.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            term.line(line.rstrip("\n"))
    finally:
        returncode = proc.wait()
        term.flush()
    printed = "".join(lines)
    if check and returncode != 0:
        tail = "\n".join(printed.splitlines()[-15:])
        raise CommandFailed(f"the script exited with status {returncode}:\n{shown(tail)}")
    return printed



def build_fails(command: str) -> str:
    """Run a ``docker build`` that must fail (a page shows a failure on purpose) and print its report.

    The report is the one :func:`build` prints with ``check=False`` (the failing
    step, its last lines of output, the builder's verdict), every line fitted to
    :data:`WIDTH` as :func:`sh` fits output: pip's messages run to hundreds of
    characters.

    Args:
        command: a ``docker build`` command line, as for :func:`build`.

    Returns:
        The report as printed (plain names and ports).

    Raises:
        CommandFailed: the build succeeded.
    """
    import contextlib
    import io

    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        measured = build(command, check=False)
    term = _Terminal()
    for line in report.getvalue().splitlines():
        term.line(line)
    term.flush()
    if measured is not None:
        raise CommandFailed(f"`{shown(command)}` was expected to fail, and built {measured.tag}.")
    return shown(report.getvalue())
