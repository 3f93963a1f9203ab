"""The one module that talks to the Docker engine.

Facts about images come from the engine's metadata through the Docker SDK for
Python (https://docker-py.readthedocs.io). Builds go through ``docker buildx
build`` (BuildKit): the SDK's own ``images.build()`` uses the legacy builder,
which has no secret mounts (ENGINE.md). Builder text is only ever shown to a
person, never parsed for facts, except to point at the failing step of a build
that produced no image.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import json
import os
import re
import shlex
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.models.images import Image

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


class BuildFailed(EngineError):
    """``docker buildx build`` failed.

    Attributes:
        step: the Dockerfile step that failed as the builder names it
            (e.g. ``[3/5] RUN pip install -r requirements.txt``), or ``""``.
        error_lines: the builder's error lines.
        log: the whole build output.
    """

    def __init__(self, message: str, *, step: str, error_lines: list[str], log: str):
        super().__init__(message)
        self.step = step
        self.error_lines = error_lines
        self.log = log


class ContainerFailed(EngineError):
    """A container stopped, or never became ready; ``logs`` holds its last output."""

    def __init__(self, message: str, *, logs: str = ""):
        super().__init__(message)
        self.logs = logs


@functools.cache
def client() -> docker.DockerClient:
    """Return a Docker SDK client connected to the local engine (one per process).

    Raises:
        EngineUnavailable: when no engine answers, with what to do next.
    """
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineUnavailable(f"No Docker engine answers ({exc}). {HOW_TO_GET_AN_ENGINE}") from exc
    return c


def require_engine() -> str:
    """Check that an engine, buildx and compose answer.

    Returns:
        A one-line description, e.g. ``"engine 20.10.24, buildx 0.13.1, compose 2.26.1"``.

    Raises:
        EngineUnavailable: naming what is missing and how to get it.
    """
    try:
        server = client().version()["Version"]
    except EngineUnavailable:
        raise
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
        version = re.search(r"v?(\d+\.\d+\.\d+)", out)
        parts.append(f"{plugin} {version.group(1) if version else out.strip()}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- labels of a grading run

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


# --------------------------------------------------------------------------- images


def image(name: str) -> Image | None:
    """Return the local image ``name`` (tag or id), or ``None`` when there is none."""
    try:
        return client().images.get(name)
    except docker.errors.ImageNotFound:
        return None


def remove_image(name: str) -> None:
    """Remove the local image ``name`` (forcefully); do nothing when it is not there."""
    try:
        client().images.remove(name, force=True)
    except docker.errors.ImageNotFound:
        pass


def pull(name: str, *, timeout: float = 120) -> bool:
    """Try to pull ``name`` from its registry.

    Args:
        name: an image reference such as ``"python:3.13-slim"``.
        timeout: seconds to wait for the registry at most.

    Returns:
        ``True`` when the image was pulled, ``False`` when the registry cannot be
        reached or does not have it (the caller decides what to do then).
    """
    try:
        result = subprocess.run(
            ["docker", "pull", "--quiet", name], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def import_rootfs(rootfs: Path, tag: str, *, changes: Iterable[str] = ()) -> Image:
    """Import a root file system folder as a single-layer image (``docker import``).

    Args:
        rootfs: folder holding the file system (e.g. made by debootstrap).
        tag: the tag to give the image.
        changes: Dockerfile instructions to apply (``--change``), e.g. ``"ENV LANG=C.UTF-8"``.

    Raises:
        EngineError: when tar or the import fails.
    """
    change_args = [arg for change in changes for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    imp = subprocess.run(
        ["docker", "import", *change_args, "-", tag], stdin=tar.stdout, capture_output=True, text=True
    )
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or imp.returncode != 0:
        raise EngineError(f"Could not import {rootfs} as {tag}: {imp.stderr.strip()}")
    found = image(tag)
    if found is None:
        raise EngineError(f"`docker import` reported success but {tag} is not there")
    return found


# --------------------------------------------------------------------------- builds


@dataclass(frozen=True)
class BuildResult:
    """What one build produced.

    Attributes:
        image: the built image (Docker SDK object; ``image.id`` is its digest).
        seconds: wall time of the whole build, in seconds.
        log: the builder's output, for people to read.
    """

    image: Image
    seconds: float
    log: str


_STEP_ID = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_STEP_ERROR = re.compile(r"^#(\d+) ERROR")


def build(
    context: str | os.PathLike[str],
    *,
    tag: str | None = None,
    dockerfile: str | os.PathLike[str] | None = None,
    build_args: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | os.PathLike[str]] | None = None,
    labels: Mapping[str, str] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    echo: Echo | None = None,
    timeout: float = 1800,
) -> BuildResult:
    """Build an image with ``docker buildx build`` (BuildKit) into the local engine.

    Args:
        context: the build context folder.
        tag: tag for the image (``name:tag``); untagged when ``None``.
        dockerfile: path of the Dockerfile (default: ``Dockerfile`` in the context).
        build_args: ``--build-arg`` values.
        secrets: BuildKit secrets, id to source file path (``--secret id=...,src=...``).
        labels: labels to set on the image.
        target: the stage to build in a multi-stage Dockerfile.
        no_cache: build every step afresh.
        echo: called with each line of builder output as it arrives.
        timeout: seconds after which the build is stopped.

    Returns:
        The image, the wall time in seconds and the log.

    Raises:
        BuildFailed: the build failed; names the failing step and the error lines.
        EngineUnavailable: no engine answers.
    """
    client()  # fail early, with a clear message, when there is no engine
    with tempfile.TemporaryDirectory(prefix="containerlab-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        cmd = ["docker", "buildx", "build", "--progress=plain", "--iidfile", str(iidfile)]
        if tag:
            cmd += ["--tag", tag]
        if dockerfile:
            cmd += ["--file", str(dockerfile)]
        for key, value in (build_args or {}).items():
            cmd += ["--build-arg", f"{key}={value}"]
        for key, src in (secrets or {}).items():
            cmd += ["--secret", f"id={key},src={src}"]
        for key, value in (labels or {}).items():
            cmd += ["--label", f"{key}={value}"]
        if target:
            cmd += ["--target", target]
        if no_cache:
            cmd.append("--no-cache")
        cmd.append(str(context))

        lines: list[str] = []
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        # A step that loops silently prints nothing: a timer, not the output loop, enforces the timeout.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if echo:
                    echo(line)
            if time.monotonic() - start > timeout:
                raise BuildFailed(
                        f"The build of {context} took more than {timeout:.0f} s and was stopped.",
                        step="",
                        error_lines=[],
                        log="\n".join(lines),
                    )
            returncode = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - start
        log = "\n".join(lines)
        if returncode != 0 or not iidfile.exists():
            if not _engine_answers():
                raise EngineUnavailable(
                    f"The Docker engine stopped answering while {context} was being built. "
                    f"Start it again, then re-run the build. {HOW_TO_GET_AN_ENGINE}"
                )
            raise _build_failure(context, lines)
        built = image(iidfile.read_text().strip())
    if built is None:
        raise EngineError(f"The build of {context} finished but its image is not in the engine")
    return BuildResult(image=built, seconds=seconds, log=log)


def _engine_answers() -> bool:
    """Whether the engine answers a ping right now (fresh connection, not the cached client)."""
    try:
        return bool(docker.from_env(timeout=10).ping())
    except (docker.errors.DockerException, requests.RequestException):
        return False


def answers() -> bool:
    """Whether the engine answers a ping right now, on a fresh connection (not the cached client)."""
    return _engine_answers()


def _build_failure(context: str | os.PathLike[str], lines: list[str]) -> BuildFailed:
    """Turn a failed build's output into a BuildFailed naming the step and its error.

    BuildKit's plain progress numbers each step (``#7 [3/5] RUN ...``) and marks the
    one that failed with ``#7 ERROR: ...``; its last output lines come just before.
    """
    headers = {m.group(1): m.group(2) for m in map(_STEP_ID.match, lines) if m}
    failed = next((m.group(1) for m in map(_STEP_ERROR.match, lines) if m), None)
    step = headers.get(failed, "") if failed else ""
    step_output = [line.split(" ", 2)[-1] for line in lines
                   if failed and re.match(rf"^#{failed} \d+\.\d+ ", line)]
    errors = step_output[-8:] + [line for line in lines if line.startswith("ERROR")]
    cause = _limit_hit(errors)
    if cause:
        errors.append(cause)
    where = f" at step {step}" if step else ""
    detail = "\n".join(errors) or "\n".join(lines[-8:])
    return BuildFailed(
        f"The build of {context} failed{where}:\n{detail}",
        step=step,
        error_lines=errors,
        log="\n".join(lines),
    )


def _limit_hit(errors: list[str]) -> str:
    """A sentence naming the limit a failed build step ran into, or ``""`` (from its error lines)."""
    text = "\n".join(errors)
    if "exit code: 137" in text or re.search(r"^\s*Killed\s*$", text, re.MULTILINE):
        return "The step was killed: it used more memory than the build's memory limit allows (exit code 137)."
    if "Cannot fork" in text or "Resource temporarily unavailable" in text or "can't fork" in text.lower():
        return "The step could not start more processes: it reached the build's process limit."
    if "No space left on device" in text:
        return "The step ran out of disk space: it wrote more than the build's disk limit allows."
    return ""


# --------------------------------------------------------------------------- containers


def run(
    image_name: str,
    command: str | list[str] | None = None,
    *,
    ports: Mapping[int, int | None] | None = None,
    environment: Mapping[str, str] | None = None,
    volumes: Mapping[str, Mapping[str, str]] | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Container:
    """Start a detached container (``docker run -d``).

    Args:
        image_name: the image to run.
        command: overrides the image's ``CMD``.
        ports: container port to host port; ``None`` lets the engine pick a free
            host port (read it back with :func:`host_port`). Host ports bind to
            127.0.0.1 only.
        environment: environment variables.
        volumes: Docker SDK volume spec, host path or volume name to
            ``{"bind": path, "mode": "ro"|"rw"}``.
        name: container name.
        labels: container labels.
        **kwargs: passed on to ``containers.run`` of the Docker SDK.

    Raises:
        EngineUnavailable: no engine answers.
        EngineError: the engine refused to start it (message from the engine).
    """
    published = {f"{cport}/tcp": ("127.0.0.1", hport) for cport, hport in (ports or {}).items()}
    try:
        return client().containers.run(
            image_name,
            command,
            detach=True,
            ports=published,
            environment=dict(environment or {}),
            volumes=dict(volumes or {}),
            name=name,
            labels=_with_run_labels(labels),
            **kwargs,
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"Could not start a container from {image_name}: {exc.explanation}") from exc


def host_port(container: Container, container_port: int = 80) -> int:
    """Return the host port published for ``container_port`` of a running container.

    Raises:
        EngineError: when the port is not published.
    """
    container.reload()
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{container_port}/tcp")
    if not bindings:
        raise EngineError(f"Port {container_port} of container {container.name} is not published")
    return int(bindings[0]["HostPort"])


def logs(container: Container, *, tail: int = 30) -> str:
    """Return the last ``tail`` lines a container wrote (stdout and stderr), or ``""``."""
    try:
        return container.logs(tail=tail).decode("utf-8", "replace")
    except docker.errors.DockerException:
        return ""


def wait_http(url: str, *, container: Container | None = None, timeout: float = 60) -> requests.Response:
    """Poll ``url`` with GET until it answers 2xx, with a deadline.

    Args:
        url: the address to poll, e.g. ``"http://127.0.0.1:8000/health"``.
        container: when given, stop early if it exits and report its logs.
        timeout: seconds to wait at most.

    Returns:
        The first successful response.

    Raises:
        ContainerFailed: the container exited, or nothing answered in time.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if container is not None:
            container.reload()
            if container.status in {"exited", "dead"}:
                raise ContainerFailed(
                    f"Container {container.name} stopped before {url} answered "
                    f"(exit code {container.attrs['State']['ExitCode']}).",
                    logs=logs(container),
                )
        try:
            response = requests.get(url, timeout=5)
            if response.ok:
                return response
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    raise ContainerFailed(
        f"{url} did not answer within {timeout:.0f} s (last: {last}).",
        logs=logs(container) if container is not None else "",
    )


def remove_container(container: Container) -> None:
    """Stop and remove a container with its anonymous volumes; ignore one already gone."""
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass


def exec_output(image_name: str, command: list[str]) -> str:
    """Run ``command`` in a throwaway container of ``image_name`` and return its stdout.

    Raises:
        ContainerFailed: the command exited non-zero (its output attached).
    """
    try:
        out = client().containers.run(image_name, command, remove=True, stdout=True, stderr=False)
    except docker.errors.ContainerError as exc:
        raise ContainerFailed(
            f"`{shlex.join(command)}` failed in {image_name} (exit {exc.exit_status})",
            logs=(exc.stderr or b"").decode("utf-8", "replace"),
        ) from exc
    return out.decode("utf-8", "replace")


# --------------------------------------------------------------------------- the CLI


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
    return subprocess.CompletedProcess(["docker", *args], returncode, "".join(lines), "")


# --------------------------------------------------------------------------- sandboxed runs (grading)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits put on a container started from an untrusted image (a student's submission).

    The container's root file system is read-only; it may write only to a
    ``/tmp`` in memory of at most ``tmp_bytes`` (counted in its memory limit,
    too) and to the volumes the check mounts. Builds are limited elsewhere: by
    the cgroup, disk and timeout of the grading engine (:mod:`containerlab.sandbox`).

    Attributes:
        memory_bytes: memory limit of the container, in bytes (no swap beyond it).
        cpus: CPU share (1.0 = one core).
        pids: most processes the container may have at once (stops fork bombs).
        ready_timeout: seconds to wait for the service to answer at most.
        tmp_bytes: size of the ``/tmp`` tmpfs, in bytes (stops disk bombs at run time).
        read_only: run with a read-only root file system (``docker run --read-only``).
    """

    memory_bytes: int = 1024**3
    cpus: float = 1.0
    pids: int = 256
    ready_timeout: float = 90.0
    tmp_bytes: int = 64 * 1024**2
    read_only: bool = True


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP exchange made from inside a container.

    Attributes:
        status: the HTTP status code, or ``None`` when nothing answered.
        body: the response body as text, or ``""``.
        error: why nothing answered (``"connection refused"``...), or ``""``.
    """

    status: int | None
    body: str
    error: str = ""


# Run with the image's own Python: no tool has to be installed in the student's image.
_HTTP_PROBE = """
import json, sys, urllib.error, urllib.request
method, url, body, headers = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
data = body.encode() if body else None
req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **headers})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode("utf-8", "replace")}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode("utf-8", "replace")}))
except Exception as e:
    print(json.dumps({"status": None, "body": "", "error": str(getattr(e, "reason", e))}))
"""


@contextlib.contextmanager
def sandboxed_container(
    image_name: str,
    *,
    environment: Mapping[str, str] | None = None,
    volumes: Mapping[str, Mapping[str, str]] | None = None,
    limits: SandboxLimits = SandboxLimits(),
    name_prefix: str = "cl-ex",
    labels: Mapping[str, str] | None = None,
) -> Iterator[Container]:
    """Start a container from an untrusted image, isolated, and remove it afterwards.

    The container runs on its own *internal* bridge network (it gets an address
    but no route to the outside world), with memory (no swap beyond it), CPU and
    process limits, a read-only root file system with a size-capped tmpfs at
    ``/tmp``, every Linux capability dropped, no new privileges and no published
    ports. Ports below 1024 stay open to it (``net.ipv4.ip_unprivileged_port_start=0``
    in its own network namespace, as Docker 20.10 and later set by default), so
    a service may listen on port 80 without ``CAP_NET_BIND_SERVICE``. Both the
    container and the network are removed when the ``with`` block ends, also on errors.

    Args:
        image_name: the image to run (its own ``CMD``).
        environment: environment variables.
        volumes: Docker SDK volume spec (absolute host path to ``{"bind": ..., "mode": ...}``).
        limits: the resource limits.
        name_prefix: start of the container and network names.
        labels: labels for the container and the network.

    Yields:
        The running container (Docker SDK object).

    Raises:
        EngineError: the engine refused to start it.
    """
    suffix = uuid.uuid4().hex[:10]
    network = client().networks.create(
        f"{name_prefix}-net-{suffix}", driver="bridge", internal=True, labels=_with_run_labels(labels)
    )
    container: Container | None = None
    try:
        container = run(
            image_name,
            environment=environment,
            volumes=volumes,
            name=f"{name_prefix}-{suffix}",
            labels=labels,
            network=network.name,
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            read_only=limits.read_only,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"},
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        )
        yield container
    finally:
        if container is not None:
            remove_container(container)
        try:
            network.remove()
        except docker.errors.NotFound:
            pass


def container_state(container: Container) -> dict[str, object]:
    """Return the container's ``State`` as the engine reports it now (``Status``, ``ExitCode``,
    ``OOMKilled``, ``Error``, ``StartedAt``, ``FinishedAt``); ``{}`` when it is gone."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return {}
    return dict(container.attrs.get("State") or {})


def remove_labelled_containers(key: str, value: str) -> list[dict[str, object]]:
    """Remove every container labelled ``key=value`` (e.g. one whose start the engine refused).

    Returns:
        The ``State`` of each removed container, as the engine reported it before removal.
    """
    states = []
    for found in client().containers.list(all=True, filters={"label": f"{key}={value}"}):
        states.append(dict(found.attrs.get("State") or {}))
        remove_container(found)
    return states


def exec_inside(container: Container, command: list[str]) -> tuple[int | None, str]:
    """Run ``command`` in a running container; return its exit code (``None`` when it could not run) and output."""
    try:
        result = container.exec_run(command)
    except docker.errors.APIError as exc:
        return None, str(exc.explanation or exc)
    return result.exit_code, (result.output or b"").decode("utf-8", "replace")


def local_tags() -> list[str]:
    """Every ``repository:tag`` of the images in the local engine."""
    return sorted(tag for found in client().images.list() for tag in found.tags)


def container_address(container: Container) -> str:
    """Return the container's IP address on its (first) network, or ``""`` when it has none."""
    container.reload()
    for settings in (container.attrs["NetworkSettings"].get("Networks") or {}).values():
        if settings.get("IPAddress"):
            return str(settings["IPAddress"])
    return ""


def http_from_inside(
    container: Container, method: str, path: str, *, port: int = 80, body: str = "",
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """Send one HTTP request to a container's own network address, from inside it.

    The request goes to the container's network address (not 127.0.0.1), so a
    server that listens on the loopback interface only does not answer, just as
    it would not answer a published port. It uses the image's ``python``.

    Args:
        container: a running container.
        method: ``"GET"`` or ``"POST"``.
        path: e.g. ``"/health"``.
        port: the container port.
        body: a JSON request body, or ``""``.
        headers: extra request headers (e.g. ``Authorization``).

    Returns:
        The status and body, or why nothing answered (5 s timeout per request).
    """
    address = container_address(container) or "127.0.0.1"
    url = f"http://{address}:{port}{path}"
    try:
        result = container.exec_run(
            ["python", "-c", _HTTP_PROBE, method, url, body, json.dumps(dict(headers or {}))], demux=False
        )
    except docker.errors.APIError as exc:
        return HttpAnswer(None, "", f"could not run python in the container ({exc.explanation})")
    text = (result.output or b"").decode("utf-8", "replace").strip()
    if result.exit_code != 0:
        return HttpAnswer(None, "", f"python in the container failed: {text[-300:]}")
    try:
        answer = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return HttpAnswer(None, "", f"unexpected probe output: {text[-300:]}")
    return HttpAnswer(answer.get("status"), answer.get("body", ""), answer.get("error", ""))


def wait_http_inside(
    container: Container, path: str = "/health", *, port: int = 80, timeout: float = 90
) -> HttpAnswer:
    """Poll ``path`` from inside ``container`` until it answers 2xx, with a deadline.

    Returns:
        The first 2xx answer.

    Raises:
        ContainerFailed: the container stopped, or nothing answered within ``timeout`` seconds
            (the message holds the last error, ``logs`` the container's output).
    """
    deadline = time.monotonic() + timeout
    last = HttpAnswer(None, "", "no answer yet")
    while time.monotonic() < deadline:
        container.reload()
        if container.status in {"exited", "dead"}:
            raise ContainerFailed(
                f"The container stopped (exit code {container.attrs['State']['ExitCode']}) "
                f"before port {port} answered.",
                logs=logs(container),
            )
        if container.status == "running":
            last = http_from_inside(container, "GET", path, port=port)
            if last.status is not None and 200 <= last.status < 300:
                return last
            if last.status is None:
                # A server that is up but listens elsewhere will never answer: say so at once.
                elsewhere = _listening_elsewhere(container, port)
                if elsewhere:
                    raise ContainerFailed(
                        f"Nothing answered {path} on port {port}: the server listens on {elsewhere} only.",
                        logs=logs(container),
                    )
        time.sleep(0.5)
    why = f"HTTP {last.status}" if last.status is not None else last.error
    raise ContainerFailed(
        f"Nothing answered {path} on port {port} within {timeout:.0f} s (last: {why}).",
        logs=logs(container),
    )


def image_files(image_name: str) -> Iterator[tuple[str, int]]:
    """List the regular files of an image's final file system (``docker export`` of a container).

    Args:
        image_name: the image.

    Yields:
        ``(path, size_bytes)`` for every regular file, path without a leading ``/``.

    Raises:
        EngineError: the image does not exist.
    """
    try:
        container = client().containers.create(image_name, command=["true"], entrypoint=[])
    except docker.errors.DockerException as exc:
        raise EngineError(f"Could not open image {image_name}: {exc}") from exc
    try:
        stream = _ChunkReader(container.export(chunk_size=1 << 20))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    yield member.name.lstrip("./"), member.size
    finally:
        remove_container(container)


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (for streaming tar reads)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def remove_unused_image(image_id: str) -> bool:
    """Remove an image by id unless a container or another tag still uses it.

    Returns:
        ``True`` when it was removed.
    """
    try:
        client().images.remove(image_id, force=False, noprune=False)
    except docker.errors.DockerException:
        return False
    return True


_LISTENING_PROBE = """
import sys
found = []
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(name).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        parts = line.split()
        if parts[3] != "0A":  # LISTEN
            continue
        addr, port = parts[1].rsplit(":", 1)
        found.append(f"{addr} {int(port, 16)}")
print("\\n".join(found))
"""


def listening_sockets(container: Container) -> list[tuple[str, int]]:
    """Return the TCP sockets listening inside a container, from its ``/proc/net/tcp`` files.

    Returns:
        ``(address, port)`` pairs; the address is ``"0.0.0.0"``, ``"::"``, ``"127.0.0.1"``,
        ``"::1"`` or another address in dotted/hex form. Empty when nothing listens
        or the image has no ``python`` to read the files with.
    """
    try:
        result = container.exec_run(["python", "-c", _LISTENING_PROBE])
    except docker.errors.APIError:
        return []
    if result.exit_code != 0:
        return []
    sockets = []
    for line in (result.output or b"").decode().splitlines():
        hex_addr, _, port = line.partition(" ")
        sockets.append((_decode_proc_address(hex_addr), int(port)))
    return sockets


def _decode_proc_address(hex_addr: str) -> str:
    """Turn a /proc/net/tcp address (little-endian hex) into a readable one."""
    if len(hex_addr) == 8:
        return ".".join(str(int(hex_addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
    known = {"0" * 32: "::", "0" * 24 + "01000000": "::1"}
    return known.get(hex_addr, hex_addr)


def _listening_elsewhere(container: Container, port: int) -> str:
    """Describe where the container listens when it is not on all interfaces at ``port``, else ``""``."""
    # 127.0.0.11 is the engine's own DNS resolver on user-defined networks, not the student's server.
    sockets = [(a, p) for a, p in listening_sockets(container) if a != "127.0.0.11"]
    if not sockets or any(p == port and a in {"0.0.0.0", "::"} for a, p in sockets):
        return ""
    return ", ".join(f"{a}:{p}" for a, p in sockets)


# --------------------------------------------------------------------------- image metadata


def image_history(name: str) -> list[dict[str, object]]:
    """Return the history of the local image ``name``, oldest step first.

    Source: the engine's ``GET /images/{name}/history`` through the Docker SDK.

    Args:
        name: an image tag or id.

    Returns:
        One dict per history entry, oldest (the base image's first step) first, with
        ``created_by`` (str, the instruction as the builder recorded it), ``created``
        (int, seconds since the epoch, engine clock), ``size`` (int, bytes the step
        added) and ``comment`` (str).

    Raises:
        EngineError: there is no image ``name``.
    """
    try:
        entries = client().api.history(name)
    except docker.errors.ImageNotFound as exc:
        raise EngineError(f"There is no image {name!r} in the local engine.") from exc
    return [
        {
            "created_by": entry.get("CreatedBy") or "",
            "created": int(entry.get("Created") or 0),
            "size": int(entry.get("Size") or 0),
            "comment": entry.get("Comment") or "",
        }
        for entry in reversed(entries)
    ]


def image_layers(name: str) -> list[str]:
    """Return the layer digests of the local image ``name``, bottom layer first.

    Source: ``RootFS.Layers`` of ``docker image inspect`` (Docker SDK). Two images
    that share a leading run of these digests share those layers on disk.

    Raises:
        EngineError: there is no image ``name``.
    """
    found = image(name)
    if found is None:
        raise EngineError(f"There is no image {name!r} in the local engine.")
    return list(found.attrs.get("RootFS", {}).get("Layers") or [])


def image_size(name: str) -> int:
    """Return the size of the local image ``name`` in bytes, all its layers counted.

    Source: ``Size`` of ``docker image inspect`` (uncompressed, as ``docker images`` shows it).

    Raises:
        EngineError: there is no image ``name``.
    """
    found = image(name)
    if found is None:
        raise EngineError(f"There is no image {name!r} in the local engine.")
    return int(found.attrs["Size"])


# --------------------------------------------------------------------------- image archives


class ImageNotFound(EngineError):
    """The image asked for is not in the local engine."""


@contextlib.contextmanager
def image_archive(name: str) -> Iterator[IO[bytes]]:
    """Stream an image as the tar archive ``docker save`` writes (layers, config, manifest).

    The archive is read as it is produced, never written to disk. Engines up to
    Docker 24 write one ``<id>/layer.tar`` per layer plus ``<config digest>.json``;
    newer ones write an OCI layout (``blobs/sha256/<digest>``). Either way each
    layer is the uncompressed tar whose sha256 is the layer's diff id in
    ``RootFS.Layers``.

    Args:
        name: image tag or id.

    Yields:
        A binary stream to read once, front to back (e.g. ``tarfile.open(fileobj=..., mode="r|")``).

    Raises:
        ImageNotFound: there is no such local image. (A ``docker save`` that fails
            half-way shows as a truncated archive to the reader.)
    """
    found = image(name)
    if found is None:
        raise ImageNotFound(f"There is no local image {name!r}; build it first (docker images lists what there is).")
    proc = subprocess.Popen(["docker", "save", found.id], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        yield proc.stdout
    finally:
        # Closing our end first lets `docker save` stop when the reader stopped early.
        proc.stdout.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- compose


class ComposeFailed(EngineError):
    """A compose stack did not come up; it has been taken down again (volumes kept).

    Attributes:
        services: the services that failed (stopped, unhealthy or never ready).
        logs: their last log lines, service name to text.
    """

    def __init__(self, message: str, *, services: list[str], logs: Mapping[str, str]):
        super().__init__(message)
        self.services = services
        self.logs = dict(logs)


@dataclass(frozen=True)
class ComposeService:
    """One container of a compose stack, as ``docker compose ps`` reports it.

    Attributes:
        service: the service name in the compose file (``api``, ``db``).
        name: the container's name (``<project>-<service>-1``).
        state: ``running``, ``exited``, ``restarting``, ...
        health: ``healthy``, ``unhealthy``, ``starting``, or ``""`` without a healthcheck.
        exit_code: the exit code once stopped (0 while running).
    """

    service: str
    name: str
    state: str
    health: str
    exit_code: int


def compose(
    args: list[str],
    *,
    file: str | os.PathLike[str] | None,
    project: str,
    env: Mapping[str, str] | None = None,
    echo: Echo | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``docker compose -p PROJECT [-f FILE] ARGS``.

    Args:
        args: the subcommand and its options, e.g. ``["ps", "--all"]``.
        file: the compose file; ``None`` finds the stack by its project name only (enough for ``down``).
        project: the compose project name (prefixes every container, network and volume).
        env: variables to add to the environment compose interpolates the file with.
        echo: called with each output line as it arrives.
        timeout: seconds after which the command is stopped.

    Returns:
        The completed process; merged output in ``stdout``.
    """
    cmd = ["compose", "-p", project]
    if file is not None:
        cmd += ["-f", str(file)]
    return docker_cli([*cmd, *args], echo=echo, env=env, timeout=timeout)


def compose_ps(file: str | os.PathLike[str] | None, *, project: str,
               env: Mapping[str, str] | None = None) -> list[ComposeService]:
    """List every container of a stack, running or not (``docker compose ps --all``).

    Raises:
        EngineError: compose could not list the stack.
    """
    result = compose(["ps", "--all", "--format", "json"], file=file, project=project, env=env, timeout=60)
    if result.returncode != 0:
        raise EngineError(f"`docker compose ps` failed for {project}: {result.stdout.strip()}")
    text = result.stdout.strip()
    rows: list[dict[str, object]] = []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    return [
        ComposeService(
            service=str(row.get("Service", "")),
            name=str(row.get("Name", "")),
            state=str(row.get("State", "")),
            health=str(row.get("Health", "")),
            exit_code=int(row.get("ExitCode", 0) or 0),
        )
        for row in rows
    ]


def compose_logs(file: str | os.PathLike[str] | None, *, project: str, service: str, tail: int = 20,
                 env: Mapping[str, str] | None = None) -> str:
    """Return the last ``tail`` log lines of one service of a stack (``""`` when there are none)."""
    result = compose(["logs", "--no-color", "--tail", str(tail), service], file=file, project=project,
                     env=env, timeout=60)
    return result.stdout if result.returncode == 0 else ""


def compose_down(file: str | os.PathLike[str] | None, *, project: str, volumes: bool = False,
                 env: Mapping[str, str] | None = None, echo: Echo | None = None) -> None:
    """Stop and remove a stack's containers and networks (``docker compose down``).

    Args:
        file: the compose file, or ``None`` to find the stack by project name.
        project: the compose project name.
        volumes: also remove the stack's named volumes (``down -v``): its data is gone.
        env: variables compose interpolates the file with.
        echo: called with each output line.

    Raises:
        EngineError: compose could not take the stack down.
    """
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    result = compose(args, file=file, project=project, env=env, echo=echo, timeout=300)
    if result.returncode != 0:
        raise EngineError(f"`docker compose down` failed for {project}: {result.stdout.strip()[-500:]}")


def compose_up(
    file: str | os.PathLike[str],
    *,
    project: str,
    env: Mapping[str, str] | None = None,
    build: bool = True,
    wait_timeout: float = 240,
    echo: Echo | None = None,
    log_lines: int = 20,
) -> list[ComposeService]:
    """Start a stack and wait until every service runs and is healthy (``up -d --wait``).

    When the stack does not come up, the failing services' last log lines are
    shown (through ``echo``, or printed), the stack is taken down (its named
    volumes are kept, so no data is lost), and ComposeFailed is raised.

    Args:
        file: the compose file.
        project: the compose project name (prefix of every container, network and volume).
        env: variables compose interpolates the file with (added to this process's environment).
        build: build images whose service has a ``build:`` section first (``--build``).
        wait_timeout: seconds to wait for running and healthy services.
        echo: called with each output line; ``print`` when ``None``.
        log_lines: how many log lines of each failing service to show.

    Returns:
        The stack's containers once they are all running (and healthy where they have a healthcheck).

    Raises:
        ComposeFailed: a service stopped, stayed unhealthy, or the file was rejected.
        EngineUnavailable: no engine answers.
    """
    client()
    say: Echo = echo or (lambda line: print(line, flush=True))
    args = ["up", "--detach", "--wait", "--wait-timeout", str(int(wait_timeout))]
    if build:
        args.append("--build")
    result = compose(args, file=file, project=project, env=env, echo=echo, timeout=wait_timeout + 900)
    if result.returncode == 0:
        return compose_ps(file, project=project, env=env)
    try:
        containers = compose_ps(file, project=project, env=env)
    except EngineError:
        containers = []
    failing = [c for c in containers
               if c.state != "running" or c.health in {"unhealthy", "starting"}] or containers
    logs_by_service = {c.service: compose_logs(file, project=project, service=c.service, tail=log_lines, env=env)
                       for c in failing}
    output_tail = "\n".join(result.stdout.strip().splitlines()[-5:])
    say(f"The stack {project} did not come up:\n{output_tail}")
    for c in failing:
        state = c.state + (f", {c.health}" if c.health else "") + (f", exit code {c.exit_code}"
                                                                      if c.state == "exited" else "")
        say(f"--- last {log_lines} log lines of service {c.service} ({state}) ---")
        say(logs_by_service[c.service].rstrip() or "(no output)")
    try:
        try:
            compose_down(file, project=project, env=env)
        except EngineError:
            # A file compose rejects cannot be used to take the stack down; its name can.
            compose_down(None, project=project)
        say(f"The stack {project} was taken down again (named volumes kept).")
    except EngineError as exc:
        say(f"Taking the stack down failed too: {exc}")
    names = [c.service for c in failing]
    raise ComposeFailed(
        f"The compose stack {project} did not come up"
        + (f"; failing service(s): {', '.join(names)}" if names else f": {output_tail}"),
        services=names,
        logs=logs_by_service,
    )


def compose_port(file: str | os.PathLike[str] | None, *, project: str, service: str, port: int = 80,
                 env: Mapping[str, str] | None = None) -> int:
    """Return the host port a stack's service publishes for container ``port``.

    Raises:
        EngineError: the port is not published.
    """
    result = compose(["port", service, str(port)], file=file, project=project, env=env, timeout=60)
    match = re.search(r":(\d+)\s*$", result.stdout.strip())
    if result.returncode != 0 or not match:
        raise EngineError(f"Service {service} of {project} publishes no host port for {port}: "
                          f"{result.stdout.strip()}")
    return int(match.group(1))


# --------------------------------------------------------------------------- hygiene over a batch


def labelled(label: str) -> dict[str, list[dict[str, object]]]:
    """List the containers, networks and images that carry ``label`` (any value).

    Returns:
        ``{"containers": [...], "networks": [...], "images": [...]}``, each item
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
    """Remove the containers, then networks, then images listed as :func:`labelled` returns them.

    Objects already gone are skipped. Returns how many were removed.
    """
    c = client()
    removed = 0
    for kind, getter in (("containers", c.containers.get), ("networks", c.networks.get)):
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


def prune_build_cache(*, keep_bytes: int, timeout: float = 300) -> str:
    """Prune the builder's cache down to ``keep_bytes`` (``docker builder prune --keep-storage``).

    BuildKit never prunes on its own while a batch runs (moby/buildkit#3665); the
    most recently used records are kept.

    Returns:
        The command's last line (e.g. ``Total:  1.2GB``), or ``""``.
    """
    out = docker_cli(["builder", "prune", "--force", "--keep-storage", str(int(keep_bytes))], timeout=timeout)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def disk_usage() -> dict[str, int]:
    """Bytes the engine holds: ``images``, ``containers``, ``volumes``, ``build_cache`` (``docker system df``)."""
    df = client().df()
    return {
        "images": int(df.get("LayersSize") or 0),
        "containers": sum(int(x.get("SizeRw") or 0) for x in df.get("Containers") or []),
        "volumes": sum(int((x.get("UsageData") or {}).get("Size") or 0) for x in df.get("Volumes") or []),
        "build_cache": sum(int(x.get("Size") or 0) for x in df.get("BuildCache") or []),
    }


class BuilderDoesNotLoad(EngineError):
    """The selected buildx builder keeps images in its own cache instead of the engine's image store."""


def check_builder() -> str:
    """Check that ``docker buildx build`` puts its images into the engine (where the checks run them).

    A non-default builder with the ``docker-container`` (or ``kubernetes``/``remote``)
    driver keeps what it builds in its own cache unless ``--load`` is given, so
    every build would "pass" and no image would exist (moby/buildkit#3855).

    Returns:
        The builder's name and driver, e.g. ``"default (docker)"``.

    Raises:
        BuilderDoesNotLoad: naming the builder and how to switch back.
    """
    out = docker_cli(["buildx", "inspect"], timeout=60)
    name = re.search(r"^Name:\s*(\S+)", out.stdout, re.M)
    driver = re.search(r"^Driver:\s*(\S+)", out.stdout, re.M)
    if out.returncode != 0 or not driver:
        raise EngineError(f"`docker buildx inspect` failed: {out.stdout.strip()[-500:]}")
    found = f"{name.group(1) if name else '?'} ({driver.group(1)})"
    if driver.group(1) != "docker":
        raise BuilderDoesNotLoad(
            f"The selected buildx builder {found} does not load the images it builds into the engine, so "
            "the checks would find no image to run (moby/buildkit#3855). Switch to the engine's own builder "
            "with `docker buildx use default` (or unset BUILDX_BUILDER), then grade again."
        )
    return found
