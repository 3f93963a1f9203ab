"""The connection to the Docker engine: the SDK client, the engine's own facts, the ``docker`` command line,
labels and clean-up of what a run left."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests


Echo = Callable[[str], None]


HOW_TO_GET_AN_ENGINE = (
    "On Debian or Ubuntu as root, run `bash scripts/ensure-engine.sh`; elsewhere install "
    "Docker Engine or Docker Desktop with the buildx and compose plugins "
    "(https://docs.docker.com/engine/install/) and start it."
)


class EngineError(RuntimeError):
    """Something went wrong talking to the Docker engine."""


class EngineUnavailable(EngineError):
    """No Docker engine answers (not installed, not started, or stopped)."""


@functools.cache
def client() -> docker.DockerClient:
    """Return a Docker SDK client connected to the local engine (one per process).

    For the modules of this package only: no SDK object leaves it (see the package's docstring).

    Raises:
        EngineUnavailable: when no engine answers, with what to do next.
    """
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineUnavailable(f"No Docker engine answers ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc
    return c


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
    client.cache_clear()


def _connect(address: str | None, timeout: float) -> docker.DockerClient:
    """A new SDK client (not the cached one) for the engine at ``address``; ``None``: the one ``DOCKER_HOST`` names."""
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
            out = subprocess.run(
                ["docker", plugin, "version"], capture_output=True, text=True, timeout=30, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineUnavailable(
                f"The Docker engine answers but the `docker {plugin}` plugin does not ({exc}). "
                f"{HOW_TO_GET_AN_ENGINE}"
            ) from exc
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


#: What this process met since :func:`clear_pressure` that a shared limit of the engine may have caused.
_PRESSURE: list[str] = []

#: How the kernel says a write found the file system full (ENOSPC), in the engine's and the builder's output.
NO_SPACE = "no space left on device"


def note_pressure(what: str) -> None:
    """Record that the engine's shared resources may have decided an outcome (a sentence, e.g. its disk was full).

    On the grading engine every build and container shares one disk, one memory
    budget for builds and the same CPUs: a submission that fills the disk makes a
    neighbour's ``docker save`` fail, and a neighbour's build may run past its
    timeout. The functions of this package that meet such a sign record it here;
    the class grader reads :func:`pressure` after each exercise, and grades a
    student whose exercise met one again, with no other student in progress.
    """
    if what not in _PRESSURE:
        _PRESSURE.append(what)


def note_if_no_space(text: str, what: str) -> None:
    """:func:`note_pressure` ``what`` when ``text`` (engine or builder output) says the disk was full."""
    if NO_SPACE in text.lower():
        note_pressure(what)


def pressure() -> list[str]:
    """What :func:`note_pressure` recorded since the last :func:`clear_pressure`, oldest first."""
    return list(_PRESSURE)


def clear_pressure() -> None:
    """Forget what :func:`note_pressure` recorded (the class grader calls it before each exercise)."""
    _PRESSURE.clear()


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
        address: a Docker host URL (``unix:///run/NAME.sock``); ``None``: the engine ``DOCKER_HOST`` names.
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
    full disk (ENOSPC) is pressure that may pass (:func:`note_pressure`).

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


def docker_cli(args: list[str], *, echo: Echo | None = None, cwd: str | os.PathLike[str] | None = None,
               env: Mapping[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the ``docker`` command line with ``args``, as a reader would type it.

    Args:
        args: arguments after ``docker``, e.g. ``["ps", "--all"]``.
        echo: called with each output line (stdout and stderr merged) as it arrives.
        cwd: folder to run in.
        env: variables added to this process's environment for the command.
        timeout: seconds after which the command is stopped.

    Returns:
        The completed process, with the merged output in ``stdout``.
    """
    start = time.monotonic()
    proc = subprocess.Popen(["docker", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=cwd, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            echo(line.rstrip("\n"))
        if time.monotonic() - start > timeout:
            proc.kill()
            break
    returncode = proc.wait()
    output = "".join(lines)
    if returncode != 0:
        note_if_no_space(output, f"`docker {args[0] if args else ''}` found the engine's disk full")
    return subprocess.CompletedProcess(["docker", *args], returncode, output, "")


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
