"""The connection to the Docker engine: the SDK client, the engine's own facts, the ``docker`` command line,
labels and clean-up of what a run left."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import docker
import docker.errors
import requests


Echo = Callable[[str], None]

#: Signs that the engine's shared resources may have decided an outcome, each a sentence (e.g. its disk
#: was full, a build ran past its timeout). On the grading engine every build and container shares one
#: disk, one memory budget for builds and the same CPUs: a submission that fills the disk makes a
#: neighbour's ``docker save`` fail, and a neighbour's build may run past its timeout. The operations of
#: this package that can meet such a sign return it in their result (:attr:`CliResult.pressure`) or
#: raise it on their error (:attr:`EngineError.pressure`); the class grader grades a student whose
#: exercise met one again, with no other student in progress.
Pressure = tuple[str, ...]


HOW_TO_GET_AN_ENGINE = (
    "On Debian or Ubuntu as root, run `bash scripts/ensure-engine.sh`; elsewhere install "
    "Docker Engine or Docker Desktop with the buildx and compose plugins "
    "(https://docs.docker.com/engine/install/) and start it."
)


class EngineError(RuntimeError):
    """Something went wrong talking to the Docker engine.

    Attributes:
        pressure: signs that the engine's shared limits, not the caller's input, may have caused it
            (see :data:`Pressure`); empty when nothing points that way.
    """

    def __init__(self, message: str, *, pressure: Pressure = ()):
        super().__init__(message)
        self.pressure = pressure


class EngineUnavailable(EngineError):
    """No Docker engine answers (not installed, not started, or stopped)."""


class _Engine:
    """This process's engine: the address it is reached at, the SDK client, and (through
    :func:`docker_cli`) the ``docker`` command line pointed at the same address.

    Attributes:
        address: ``DOCKER_HOST`` when this object was made (``None``: the default socket). The SDK
            client and every ``docker`` command line use it, so both reach one engine even when
            ``DOCKER_HOST`` changes before :func:`reconnect`.
    """

    def __init__(self) -> None:
        self.address = os.environ.get("DOCKER_HOST") or None
        self._sdk: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def sdk(self) -> docker.DockerClient:
        """The SDK client connected to :attr:`address`, made on first use.

        Raises:
            EngineUnavailable: when no engine answers, with what to do next.
        """
        with self._lock:
            if self._sdk is None:
                try:
                    c = docker.from_env(timeout=120, environment={**os.environ, "DOCKER_HOST": self.address or ""})
                    c.ping()
                except (docker.errors.DockerException, requests.RequestException) as exc:
                    raise EngineUnavailable(f"No Docker engine answers ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc
                self._sdk = c
            return self._sdk


@functools.cache
def _engine() -> _Engine:
    """This process's engine (one per process, until :func:`reconnect`); nothing is connected yet."""
    return _Engine()


def client() -> docker.DockerClient:
    """Return the Docker SDK client connected to this process's engine.

    For the modules of this package only: no SDK object leaves it (see the package's docstring).

    Raises:
        EngineUnavailable: when no engine answers, with what to do next.
    """
    return _engine().sdk()


def connect() -> None:
    """Connect to the engine ``DOCKER_HOST`` (or the default socket) names, once per process.

    Later calls of this package use that connection; call this first to fail early,
    with a clear message, before any work starts.

    Raises:
        EngineUnavailable: no engine answers, with what to do next.
    """
    client()


def reconnect() -> None:
    """Drop this process's connection: the next call connects again, to the engine ``DOCKER_HOST`` names then."""
    _engine.cache_clear()


def _connect(address: str | None, timeout: float) -> docker.DockerClient:
    """A new SDK client (not the cached one) for the engine at ``address``; ``None``: this process's engine."""
    address = address or _engine().address
    return docker.DockerClient(base_url=address, timeout=timeout) if address else docker.from_env(timeout=timeout)


def version() -> dict[str, Any]:
    """The engine's ``GET /version`` answer (``docker version``'s server part, as JSON).

    Returns:
        Among others ``Version`` (e.g. ``"26.1.5"``), ``ApiVersion`` (``"1.45"``), ``Os`` and ``Arch``.

    Raises:
        EngineUnavailable: no engine answers.
    """
    try:
        return dict(client().version())
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineUnavailable(f"The Docker engine stopped answering ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc


def info(address: str | None = None) -> dict[str, Any]:
    """The engine's ``GET /info`` answer (``docker info``'s JSON).

    Args:
        address: a Docker host URL (``unix:///run/NAME.sock``): ask the engine there, on a connection
            of its own (10 s timeout). ``None``: this process's engine.

    Returns:
        Among others ``Driver`` and ``DriverStatus`` (the image store, :func:`is_containerd_store`),
        ``DockerRootDir`` (its data-root folder) and ``Labels`` (``["name=value", ...]``).

    Raises:
        EngineUnavailable: no engine answers.
    """
    try:
        return dict((_connect(address, 10) if address else client()).info())
    except (docker.errors.DockerException, requests.RequestException) as exc:
        where = f"at {address} " if address else ""
        raise EngineUnavailable(f"The Docker engine {where}does not answer ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc


def require_engine() -> str:
    """Check that an engine, buildx and compose answer.

    Returns:
        A one-line description, e.g. ``"engine 20.10.24, buildx 0.13.1, compose 2.26.1"``.

    Raises:
        EngineUnavailable: naming what is missing and how to get it.
    """
    server = version()["Version"]
    parts = [f"engine {server}"]
    for plugin in ("buildx", "compose"):
        try:
            ran = docker_cli([plugin, "version"], timeout=30, merge=False)
            failed = (ran.stderr.strip() or f"exit status {ran.returncode}") if ran.returncode else ""
        except EngineError as exc:
            failed = str(exc)
        if failed:
            raise EngineUnavailable(
                f"The Docker engine answers but the `docker {plugin}` plugin does not ({failed}). {HOW_TO_GET_AN_ENGINE}"
            )
        out = ran.stdout
        number = re.search(r"v?(\d+\.\d+\.\d+)", out)
        parts.append(f"{plugin} {number.group(1) if number else out.strip()}")
    return ", ".join(parts)


_RUN_LABELS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("run_labels", default={})


@contextlib.contextmanager
def run_labels(labels: Mapping[str, str]) -> Iterator[None]:
    """Put ``labels`` on every container and network started inside the ``with`` block.

    The class grader labels what one student's checks start with its run id and
    the student's key, so that the leftovers of a killed run can be told apart from
    those of a batch still running (:func:`labelled`). Labels given to a call win
    over these. Images are left out on purpose: a label is part of an image's
    config, so it would make every build of a shared image (the course's
    reference image) a new image.
    """
    token = _RUN_LABELS.set({**_RUN_LABELS.get(), **labels})
    try:
        yield
    finally:
        _RUN_LABELS.reset(token)


def _with_run_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**_RUN_LABELS.get(), **(labels or {})}


#: How the kernel says a write found the file system full (ENOSPC), in the engine's and the builder's output.
NO_SPACE = "no space left on device"


def no_space(text: str, sign: str) -> Pressure:
    """``(sign,)`` when ``text`` (engine or builder output) says the disk was full (:data:`NO_SPACE`), else ``()``."""
    return (sign,) if NO_SPACE in text.lower() else ()


#: Pings of :func:`answers` that may time out before the engine counts as gone: an engine that is
#: there but busy (a grading engine under its CPU quota, cleaning up a build stopped at its timeout)
#: can take longer than one timeout to answer; an engine that is gone refuses at once.
_PING_TRIES = 3
_PING_TIMEOUT = 10


def _engine_answers(address: str | None = None) -> bool:
    """Whether the engine at ``address`` (``None``: this process's) answers a ping now (fresh connection)."""
    for _ in range(_PING_TRIES):
        try:
            return bool(_connect(address, _PING_TIMEOUT).ping())
        except requests.Timeout:
            continue
        except (docker.errors.DockerException, requests.RequestException):
            return False
    return False


def answers(address: str | None = None) -> bool:
    """Whether the engine answers a ping, on a fresh connection (not the cached client).

    A ping that times out is tried again (at most :data:`_PING_TRIES` times, :data:`_PING_TIMEOUT`
    seconds each); a refused connection or a missing socket is an answer at once: ``False``.

    Args:
        address: a Docker host URL (``unix:///run/NAME.sock``); ``None``: this process's engine (the one
            ``DOCKER_HOST`` named when it was first used, or since :func:`reconnect`).
    """
    return _engine_answers(address)


#: How the kernel says a write found its file system mounted read-only (EROFS), in the engine's errors.
READ_ONLY = "read-only file system"
#: The label of the volume :func:`storage_fault` creates and removes at once.
PROBE_LABEL = "containerlab.probe"


def storage_fault() -> str:
    """Why the engine can no longer write its own storage, or ``""`` when it can (or cannot be asked).

    The engine is asked to create a volume and remove it at once: it records every
    volume in a database under its data root. When the file system under the data
    root has gone read-only, that write fails and every later build, container and
    image of any student would fail with it, through no fault of theirs. That
    happens to a grading engine whose disk image lies on a host disk that filled:
    the kernel cannot write the image's blocks, and ext4 remounts itself read-only
    (CI, 2026-12-07: a class graded after that point got 0 points, each student
    told that their build failed). Only a read-only file system (EROFS) counts: a
    full disk (ENOSPC) is pressure that may pass (:data:`Pressure`).

    Returns:
        The engine's own words for the failed write, when they say the file system is read-only; else ``""``.
    """
    try:
        c = client()
        volume = c.volumes.create(labels={PROBE_LABEL: "1"})
    except docker.errors.APIError as exc:
        said = str(exc.explanation or exc)
        return said if READ_ONLY in said.lower() else ""
    except (EngineUnavailable, docker.errors.DockerException, requests.RequestException):
        return ""
    with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
        volume.remove(force=True)
    return ""


@dataclass(frozen=True)
class CliResult:
    """What one ``docker`` command line did.

    Attributes:
        args: the arguments after ``docker``.
        returncode: its exit status (0: success).
        stdout: what it wrote on stdout; stderr too when the output was merged.
        stderr: what it wrote on stderr, or ``""`` when the output was merged.
        pressure: ``("`docker compose up` found the engine's disk full",)`` (naming the command) when it
            failed saying so, else ``()``.
    """

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    pressure: Pressure = ()


class CommandTimedOut(EngineError):
    """A ``docker`` command line ran past its timeout and was stopped.

    Attributes:
        output: what it wrote until then (stdout and stderr as :func:`docker_cli` collected them).
    """

    def __init__(self, message: str, *, output: str):
        super().__init__(message)
        self.output = output


def cli_environment(env: Mapping[str, str] | None = None, *, inherit: bool = True) -> dict[str, str]:
    """The environment for a ``docker`` command line that reaches this process's engine.

    Args:
        env: variables for the command.
        inherit: start from this process's environment, ``env`` added; ``False``: ``env`` alone.

    Returns:
        That environment, with ``DOCKER_HOST`` set to the address of this process's engine (the one
        the SDK client uses, whatever ``env`` says), or without it for the default socket.
    """
    environment = {**(os.environ if inherit else {}), **(env or {})}
    environment.pop("DOCKER_HOST", None)
    address = _engine().address
    return {**environment, "DOCKER_HOST": address} if address else environment


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a ``docker`` process and the plugins it started (buildx, compose): its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _named(args: list[str]) -> str:
    """A ``docker`` command as messages name it: its first two words before any option (```docker compose```)."""
    words = list(itertools.takewhile(lambda arg: not arg.startswith("-"), args))[:2]
    return f"`docker {' '.join(words)}`"


def docker_cli(args: list[str], *, timeout: float, input: str | IO[bytes] | None = None,
               env: Mapping[str, str] | None = None,
               inherit: bool = True, cwd: str | os.PathLike[str] | None = None, echo: Echo | None = None,
               merge: bool = True) -> CliResult:
    """Run the ``docker`` command line with ``args`` against this process's engine: the one way this package runs it.

    The command reaches the engine the SDK client is connected to (:func:`cli_environment`),
    runs in a process group of its own (a plugin such as buildx is a child process of
    ``docker``), and is stopped, with that group, at ``timeout`` or when this process is
    interrupted. A failure whose output says the disk was full is returned as pressure.

    Args:
        args: arguments after ``docker``, e.g. ``["ps", "--all"]``.
        timeout: seconds after which the command is stopped (a timer, so a command that prints
            nothing is stopped too).
        input: text written to its stdin, or a binary stream it reads as stdin (an open file, another
            process's stdout); ``None``: an empty stdin.
        env: variables for the command, added to this process's environment.
        inherit: ``False``: the command gets ``env`` alone, not this process's environment (still with
            the engine's address; see :func:`cli_environment`).
        cwd: folder to run in.
        echo: called with each output line (stdout and stderr merged) as it arrives.
        merge: stderr goes into ``stdout`` (always so with ``echo``); ``False``: kept apart in ``stderr``.

    Returns:
        The exit status, the output and the pressure it met.

    Raises:
        CommandTimedOut: it ran past ``timeout`` seconds (the message names the command and the seconds).
        EngineError: the ``docker`` program cannot be started.
    """
    environment = cli_environment(env, inherit=inherit)
    merged = merge or echo is not None
    start = time.monotonic()
    try:
        stdin = subprocess.DEVNULL if input is None else subprocess.PIPE if isinstance(input, str) else input
        proc = subprocess.Popen(["docker", *args], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                                text=True, cwd=cwd, env=environment, start_new_session=True)
    except OSError as exc:
        raise EngineError(f"The `docker` command line cannot be run ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc
    watchdog = threading.Timer(timeout, _kill_group, args=(proc,))
    watchdog.start()
    try:
        if echo is None:
            stdout, stderr = proc.communicate(input if isinstance(input, str) else None)
        else:
            assert proc.stdout is not None
            if isinstance(input, str):
                assert proc.stdin is not None
                proc.stdin.write(input)
                proc.stdin.close()
            lines = []
            for line in proc.stdout:
                lines.append(line)
                echo(line.rstrip("\n"))
            stdout, stderr = "".join(lines), ""
        returncode = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
    command = _named(args)
    if time.monotonic() - start >= timeout and returncode != 0:
        raise CommandTimedOut(f"{command} ran past its {timeout:.0f} s timeout and was stopped.",
                              output=stdout + (stderr or ""))
    pressure = no_space(stdout + (stderr or ""), f"{command} found the engine's disk full") if returncode else ()
    return CliResult(tuple(args), returncode, stdout, stderr or "", pressure)


def labelled(label: str) -> dict[str, list[dict[str, object]]]:
    """List the containers, networks, volumes and images that carry ``label`` (any value).

    Returns:
        ``{"containers": [...], "networks": [...], "volumes": [...], "images": [...]}``, each item
        ``{"id": ..., "name": ..., "labels": {...}}`` (images also ``"created"``, seconds since the epoch).

    Raises:
        EngineUnavailable: no engine answers.
    """
    c = client()
    try:
        return {
            "containers": [{"id": x.id, "name": x.name, "labels": x.labels or {}}
                           for x in c.containers.list(all=True, filters={"label": label})],
            "networks": [{"id": x.id, "name": x.name, "labels": x.attrs.get("Labels") or {}}
                         for x in c.networks.list(filters={"label": label})],
            "volumes": [{"id": x.name, "name": x.name, "labels": x.attrs.get("Labels") or {}}
                        for x in c.volumes.list(filters={"label": label})],
            "images": [{"id": x.id, "name": ", ".join(x.tags) or x.short_id, "labels": x.labels or {},
                        "created": _created(x.attrs.get("Created", ""))}
                       for x in c.images.list(filters={"label": label})],
        }
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineUnavailable(f"The Docker engine stopped answering ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc


def _created(stamp: str) -> float:
    """Seconds since the epoch of an engine time stamp (``2024-05-01T12:00:00.123456789Z``); 0 when unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp[:19] + "+00:00").timestamp()
    except ValueError:
        return 0.0


def remove_objects(found: Mapping[str, Iterable[Mapping[str, object]]]) -> int:
    """Remove the containers, then networks, volumes and images listed as :func:`labelled` returns them.

    Objects already gone are skipped. Returns how many were removed.
    """
    c = client()
    removed = 0
    for kind, getter in (("containers", c.containers.get), ("networks", c.networks.get),
                         ("volumes", c.volumes.get)):
        for item in found.get(kind, ()):
            try:
                obj = getter(str(item["id"]))
                obj.remove(force=True, v=True) if kind == "containers" else obj.remove()
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                pass  # still in use by something else: leave it
    for item in found.get("images", ()):
        try:
            c.images.remove(str(item["id"]), force=True)
            removed += 1
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError:
            pass
    return removed


def data_root_size() -> int | None:
    """The size, in bytes, of the file system that holds the engine's data-root.

    Read on this machine (``DockerRootDir`` of ``docker info``), so only for an engine
    reached over a unix socket whose data-root this process can see; ``None`` otherwise
    (an engine over ssh or tcp, another machine's).
    """
    if not os.environ.get("DOCKER_HOST", "unix://").startswith("unix://"):
        return None
    try:
        root = str(info().get("DockerRootDir") or "")
        return shutil.disk_usage(root).total if root else None
    except (EngineUnavailable, OSError):
        return None


def disk_usage() -> dict[str, int]:
    """Bytes the engine holds: ``images``, ``containers``, ``volumes``, ``build_cache`` (``docker system df``)."""
    df = system_df()
    return {
        "images": int(df.get("LayersSize") or 0),
        "containers": sum(int(x.get("SizeRw") or 0) for x in df.get("Containers") or []),
        "volumes": sum(int((x.get("UsageData") or {}).get("Size") or 0) for x in df.get("Volumes") or []),
        "build_cache": sum(int(x.get("Size") or 0) for x in df.get("BuildCache") or []),
    }


def system_df() -> dict[str, Any]:
    """The engine's ``GET /system/df`` answer (``docker system df --verbose``'s JSON), sizes in bytes.

    Returns:
        Among others ``LayersSize`` (all images' layers), ``Containers`` (each with ``SizeRw``),
        ``Volumes`` (``UsageData.Size``) and ``BuildCache`` (each record's ``Size``, and ``Shared``
        when another record holds it too).

    Raises:
        EngineUnavailable: no engine answers.
    """
    return dict(client().df())


@dataclass(frozen=True)
class NetworkInfo:
    """One network of the engine, as ``docker network inspect`` describes it.

    Attributes:
        name: e.g. ``"bridge"`` or ``"ex6_default"``.
        driver: ``"bridge"``, ``"host"``, ``"null"``, ``"overlay"``, ...
        containers: the ids of the containers attached to it now.
    """

    name: str
    driver: str
    containers: tuple[str, ...]


def networks() -> list[NetworkInfo]:
    """Every network of the engine, with the containers attached to each.

    Raises:
        EngineUnavailable: no engine answers.
    """
    return [NetworkInfo(name=str(n.name), driver=str(n.attrs.get("Driver") or ""),
                        containers=tuple(n.attrs.get("Containers") or {}))
            for n in client().networks.list(greedy=True)]
