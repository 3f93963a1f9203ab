"""Containers: plain runs for the book, and the sandbox the checks run submissions in."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import docker.errors
import requests
from docker.models.containers import Container

from .client import EngineError, _with_run_labels, client, no_space


class ContainerFailed(EngineError):
    """A container stopped, or never became ready; ``logs`` holds its last output."""

    def __init__(self, message: str, *, logs: str = ""):
        super().__init__(message)
        self.logs = logs


@dataclass(frozen=True)
class ContainerRef:
    """A container in the engine: what names it, nothing of its state (ask :func:`container_state`).

    The functions of this package that start a container return one, and those
    that look at, talk to or remove a container take one.

    Attributes:
        id: the container's full id (64 hex digits).
        name: its name, without the leading ``/`` of ``docker inspect``.
    """

    id: str
    name: str


def _ref(found: Container) -> ContainerRef:
    """The :class:`ContainerRef` of a container the SDK made or looked up."""
    return ContainerRef(id=str(found.id), name=str(found.name))


def _inspect(container: ContainerRef) -> dict:
    """``docker container inspect`` of ``container``, as the engine's JSON.

    Raises:
        EngineError: the container is gone.
    """
    try:
        return client().api.inspect_container(container.id)
    except docker.errors.NotFound as exc:
        raise EngineError(f"Container {container.name} is gone.") from exc


@dataclass(frozen=True)
class Mount:
    """One mount of a container, as ``docker inspect`` lists it (``Mounts``).

    Attributes:
        type: ``"bind"``, ``"volume"`` or ``"tmpfs"``.
        source: the host path of a bind mount, the volume's folder on the engine's host for a volume.
        destination: where it appears inside the container, e.g. ``"/data"``.
    """

    type: str
    source: str
    destination: str


@dataclass(frozen=True)
class ContainerInfo:
    """How a container was set up, as the engine reports it (``docker inspect``).

    Attributes:
        env: its environment, name to value: the image's ``ENV`` with what the run added on top.
        mounts: its bind mounts and volumes (the ``tmpfs`` of ``--tmpfs`` are not listed).
    """

    env: Mapping[str, str]
    mounts: tuple[Mount, ...]


def container_info(container: ContainerRef) -> ContainerInfo:
    """Read a container's environment and mounts (``docker inspect``).

    Returns:
        Its environment and mounts as the engine reports them now.

    Raises:
        EngineError: the container is gone.
    """
    found = _inspect(container)
    env = dict(item.partition("=")[::2] for item in (found.get("Config") or {}).get("Env") or [])
    mounts = tuple(Mount(str(m.get("Type", "")), str(m.get("Source", "")), str(m.get("Destination", "")))
                   for m in found.get("Mounts") or [])
    return ContainerInfo(env=env, mounts=mounts)


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
) -> ContainerRef:
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

    Returns:
        The started container.

    Raises:
        EngineUnavailable: no engine answers.
        EngineError: the engine refused to start it (message from the engine; its
            :attr:`~EngineError.pressure` says when its disk was full).
    """
    published = {f"{cport}/tcp": ("127.0.0.1", hport) for cport, hport in (ports or {}).items()}
    try:
        return _ref(client().containers.run(
            image_name,
            command,
            detach=True,
            ports=published,
            environment=dict(environment or {}),
            volumes=dict(volumes or {}),
            name=name,
            labels=_with_run_labels(labels),
            **kwargs,
        ))
    except docker.errors.APIError as exc:
        said = str(exc.explanation or exc)
        raise EngineError(f"Could not start a container from {image_name}: {exc.explanation}",
                          pressure=no_space(said, "the engine's disk was full when a container was started")) from exc


def host_port(container: ContainerRef, container_port: int = 80) -> int:
    """Return the host port published for ``container_port`` of a running container.

    Raises:
        EngineError: when the port is not published, or the container is gone.
    """
    bindings = (_inspect(container)["NetworkSettings"]["Ports"] or {}).get(f"{container_port}/tcp")
    if not bindings:
        raise EngineError(f"Port {container_port} of container {container.name} is not published")
    return int(bindings[0]["HostPort"])


def logs(container: ContainerRef, *, tail: int | None = 30) -> str:
    """Return the last ``tail`` lines a container wrote (stdout and stderr), or ``""``.

    Args:
        container: the container.
        tail: how many lines, counted from the end; ``None``: all of them.
    """
    try:
        return client().api.logs(container.id, tail="all" if tail is None else tail).decode("utf-8", "replace")
    except docker.errors.DockerException:
        return ""


def wait_http(url: str, *, container: ContainerRef | None = None, timeout: float = 60) -> requests.Response:
    """Poll ``url`` with GET until it answers 2xx, with a deadline.

    Args:
        url: the address to poll, e.g. ``"http://127.0.0.1:8000/health"``.
        container: when given, stop early if it exits and report its logs.
        timeout: seconds to wait at most.

    Returns:
        The first successful response.

    Raises:
        ContainerFailed: the container exited, or nothing answered in time.
        EngineError: the container is gone.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if container is not None:
            state = _inspect(container)["State"]
            if state["Status"] in {"exited", "dead"}:
                raise ContainerFailed(
                    f"Container {container.name} stopped before {url} answered "
                    f"(exit code {state['ExitCode']}).",
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


def remove_container(container: ContainerRef) -> None:
    """Stop and remove a container with its anonymous volumes; ignore one already gone."""
    _remove(container.id)


def _remove(container_id: str) -> None:
    """Stop and remove the container ``container_id`` (an id or a name) with its anonymous volumes, if it is there."""
    try:
        client().api.remove_container(container_id, v=True, force=True)
    except docker.errors.NotFound:
        pass


def wait_container(container: ContainerRef, *, timeout: float) -> int | None:
    """Wait for a started container to end (``docker wait``).

    Args:
        container: the container.
        timeout: seconds to wait at most.

    Returns:
        Its exit status; ``None`` when it still ran after ``timeout`` seconds, or the engine did not say.
    """
    try:
        code = client().api.wait(container.id, timeout=timeout).get("StatusCode")
    except (requests.RequestException, docker.errors.APIError):
        return None
    return code if isinstance(code, int) else None


def stop_seconds(container: ContainerRef, *, grace: float = 10) -> tuple[float, dict[str, object]]:
    """Stop a running container as ``docker stop`` does, and time how long its program took to end.

    The engine sends the image's stop signal (``SIGTERM`` unless ``STOPSIGNAL`` says
    otherwise) to the container's first process, waits ``grace`` seconds, then kills it
    (exit code 137). The time is from just before the request to the moment the engine
    saw the process end (``State.FinishedAt``, same host clock), so the engine's clean-up
    afterwards (the network endpoint) is not counted; wall time when that is unreadable.

    Args:
        container: a running container.
        grace: seconds the engine waits before it kills the container (``docker stop --time``).

    Returns:
        The seconds (about ``grace`` when the signal was ignored), and the container's ``State``
        afterwards (``ExitCode`` 137: it was killed).

    Raises:
        EngineError: the engine refused (the message is the engine's).
    """
    sent = time.time()
    start = time.monotonic()
    try:
        client().api.stop(container.id, timeout=int(grace))
    except docker.errors.APIError as exc:
        raise EngineError(f"Could not stop container {container.name}: {exc.explanation}") from exc
    wall = time.monotonic() - start
    state = container_state(container)
    try:
        ended = datetime.fromisoformat(str(state.get("FinishedAt", ""))[:26].rstrip("Z")).replace(tzinfo=timezone.utc)
        seconds = ended.timestamp() - sent
    except ValueError:
        return wall, state
    return (seconds if 0 <= seconds <= wall else wall), state


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


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request to send from inside a container (:func:`http_many_from_inside`).

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: e.g. ``"/predict"``.
        body: a JSON request body, or ``""``.
        headers: extra request headers (e.g. ``Authorization``).
    """

    method: str
    path: str
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


# Run with the image's own Python: no tool has to be installed in the student's image. Each exec
# starts a Python inside the container (about 0.1 s of CPU, a class repeats it thousands of times),
# so one exec does all a check asks of a container at a time: a list of requests, or waiting.
_PROBE = """
import json, sys, time, urllib.error, urllib.request
job = json.loads(sys.argv[1])

def listening():
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":  # LISTEN
                addr, port = parts[1].rsplit(":", 1)
                found.append([addr, int(port, 16)])
    return found

def ask(r):
    req = urllib.request.Request(r["url"], data=r["body"].encode() or None, method=r["method"],
                                 headers={"Content-Type": "application/json", **r["headers"]})
    try:
        with urllib.request.urlopen(req, timeout=5) as a:
            return {"status": a.status, "body": a.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace")}
    except Exception as e:
        return {"status": None, "body": "", "error": str(getattr(e, "reason", e))}

if job["mode"] == "listening":
    print(json.dumps({"listening": listening()}))
elif job["mode"] == "ask":
    print(json.dumps({"answers": [ask(r) for r in job["requests"]]}))
else:  # wait: ask until an answer counts, a server listens elsewhere only, or time is up
    deadline = time.monotonic() + job["seconds"]
    while True:
        answer, elsewhere = ask(job["requests"][0]), []
        if answer["status"] is not None and 200 <= answer["status"] < job["below"]:
            break
        if answer["status"] is None:
            sockets = [s for s in listening() if s[0] not in job["ignore"]]
            if sockets and not any(s[1] == job["port"] and s[0] in job["wildcard"] for s in sockets):
                elsewhere = sockets
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    print(json.dumps({"answers": [answer], "listening": elsewhere}))
"""
#: /proc/net/tcp addresses (little-endian hex) of all interfaces (IPv4, IPv6).
_WILDCARD_HEX = ("00000000", "0" * 32)
#: 127.0.0.11, the engine's own DNS resolver on user-defined networks, not the student's server.
_DNS_HEX = "0B00007F"
#: Seconds one waiting exec asks before it returns, so the container's state is looked at again.
_WAIT_SLICE = 10.0


@contextlib.contextmanager
def sandboxed_container(
    image_name: str,
    *,
    environment: Mapping[str, str] | None = None,
    volumes: Mapping[str, Mapping[str, str]] | None = None,
    limits: SandboxLimits = SandboxLimits(),
    name_prefix: str = "cl-ex",
    labels: Mapping[str, str] | None = None,
    command: list[str] | None = None,
) -> Iterator[ContainerRef]:
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
        command: arguments that replace the image's ``CMD`` (as after the image in ``docker run``);
            ``None`` keeps it.

    Yields:
        The running container.

    Raises:
        EngineError: the engine refused to start it.
    """
    suffix = uuid.uuid4().hex[:10]
    network = client().networks.create(
        f"{name_prefix}-net-{suffix}", driver="bridge", internal=True, labels=_with_run_labels(labels)
    )
    container: ContainerRef | None = None
    try:
        container = run(
            image_name,
            command,
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


def container_state(container: ContainerRef) -> dict[str, object]:
    """Return the container's ``State`` as the engine reports it now (``Status``, ``ExitCode``,
    ``OOMKilled``, ``Error``, ``StartedAt``, ``FinishedAt``, ``Health``); ``{}`` when it is gone."""
    try:
        return dict(_inspect(container).get("State") or {})
    except EngineError:
        return {}


def remove_labelled_containers(key: str, value: str) -> list[dict[str, object]]:
    """Remove every container labelled ``key=value`` (e.g. one whose start the engine refused).

    Returns:
        The ``State`` of each removed container, as the engine reported it before removal.
    """
    states = []
    for found in client().containers.list(all=True, filters={"label": f"{key}={value}"}):
        states.append(dict(found.attrs.get("State") or {}))
        _remove(found.id)
    return states


def _exec(container: ContainerRef, command: list[str]) -> tuple[int | None, bytes]:
    """Run ``command`` in a running container (``docker exec``); its exit code and output (stdout and stderr).

    Raises:
        docker.errors.APIError: the engine refused (no such container, not running, ...).
    """
    api = client().api
    started = api.exec_create(container.id, command)
    output = api.exec_start(started["Id"])
    return api.exec_inspect(started["Id"]).get("ExitCode"), output or b""


def exec_inside(container: ContainerRef, command: list[str]) -> tuple[int | None, str]:
    """Run ``command`` in a running container; return its exit code (``None`` when it could not run) and output."""
    try:
        code, output = _exec(container, command)
    except docker.errors.APIError as exc:
        return None, str(exc.explanation or exc)
    return code, output.decode("utf-8", "replace")


def container_address(container: ContainerRef) -> str:
    """Return the container's IP address on its (first) network, or ``""`` when it has none.

    Raises:
        EngineError: the container is gone.
    """
    for settings in (_inspect(container)["NetworkSettings"].get("Networks") or {}).values():
        if settings.get("IPAddress"):
            return str(settings["IPAddress"])
    return ""


def _probe(container: ContainerRef, job: dict) -> dict | str:
    """Run :data:`_PROBE` in the container with ``job``; its output, or why it could not run (a string)."""
    try:
        code, output = _exec(container, ["python", "-c", _PROBE, json.dumps(job)])
    except docker.errors.APIError as exc:
        return f"could not run python in the container ({exc.explanation})"
    text = output.decode("utf-8", "replace").strip()
    if code != 0:
        return f"python in the container failed: {text[-300:]}"
    try:
        out = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return f"unexpected probe output: {text[-300:]}"
    return out if isinstance(out, dict) else f"unexpected probe output: {text[-300:]}"


def _jobs(container: ContainerRef, requests: Sequence[HttpRequest], port: int) -> list[dict]:
    address = container_address(container) or "127.0.0.1"
    return [{"method": r.method, "url": f"http://{address}:{port}{r.path}", "body": r.body,
             "headers": dict(r.headers)} for r in requests]


def _answer(raw: object) -> HttpAnswer:
    item = raw if isinstance(raw, dict) else {}
    status = item.get("status")
    return HttpAnswer(status if isinstance(status, int) else None, str(item.get("body", "")),
                      str(item.get("error", "")))


def http_many_from_inside(container: ContainerRef, requests: Sequence[HttpRequest], *, port: int = 80
                          ) -> list[HttpAnswer]:
    """Send requests in turn to a container's own network address, from inside it, in one exec.

    The requests go to the container's network address (not 127.0.0.1), so a
    server that listens on the loopback interface only does not answer, just as
    it would not answer a published port. They use the image's ``python``.

    Args:
        container: a running container.
        requests: the requests, sent one after the other.
        port: the container port.

    Returns:
        One answer per request, in order: the status and body, or why nothing answered (5 s
        timeout per request). When python could not run in the container, every answer says so.

    Raises:
        EngineError: the container is gone.
    """
    out = _probe(container, {"mode": "ask", "requests": _jobs(container, requests, port)})
    if isinstance(out, str):
        return [HttpAnswer(None, "", out) for _ in requests]
    answers = [_answer(a) for a in out.get("answers") or []]
    return answers + [HttpAnswer(None, "", "no answer recorded")] * (len(requests) - len(answers))


def http_from_inside(
    container: ContainerRef, method: str, path: str, *, port: int = 80, body: str = "",
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """Send one HTTP request from inside a container, as :func:`http_many_from_inside` does.

    Args:
        container: a running container.
        method: ``"GET"`` or ``"POST"``.
        path: e.g. ``"/health"``.
        port: the container port.
        body: a JSON request body, or ``""``.
        headers: extra request headers (e.g. ``Authorization``).

    Returns:
        The status and body, or why nothing answered (5 s timeout).

    Raises:
        EngineError: the container is gone.
    """
    return http_many_from_inside(container, [HttpRequest(method, path, body, dict(headers or {}))], port=port)[0]


def wait_http_inside(
    container: ContainerRef, path: str = "/health", *, port: int = 80, timeout: float = 90, below: int = 300
) -> HttpAnswer:
    """Poll ``path`` from inside ``container`` until it answers 2xx, with a deadline.

    One exec asks every quarter second for up to ten seconds; between execs the
    container's state is looked at, so a container that stops is noticed at once
    (its exec ends with it).

    Args:
        container: a running container.
        path: the path to ask for, e.g. ``"/health"``.
        port: the container port.
        timeout: seconds to wait at most.
        below: an answer counts once its status is 200 or more and below this (300: a 2xx;
            500: any answer but a server error).

    Returns:
        The first answer that counts.

    Raises:
        ContainerFailed: the container stopped, a server listens inside but not on all
            interfaces at ``port`` (it would never answer), or nothing answered within
            ``timeout`` seconds (the message holds the last error, ``logs`` the container's output).
        EngineError: the container is gone.
    """
    deadline = time.monotonic() + timeout
    last = HttpAnswer(None, "", "no answer yet")
    while (left := deadline - time.monotonic()) > 0:
        state = _inspect(container)["State"]
        if state["Status"] in {"exited", "dead"}:
            raise ContainerFailed(
                f"The container stopped (exit code {state['ExitCode']}) "
                f"before port {port} answered.",
                logs=logs(container),
            )
        if state["Status"] != "running":
            time.sleep(0.5)
            continue
        out = _probe(container, {"mode": "wait", "requests": _jobs(container, [HttpRequest("GET", path)], port),
                                 "seconds": min(left, _WAIT_SLICE), "below": below, "port": port,
                                 "ignore": [_DNS_HEX], "wildcard": list(_WILDCARD_HEX)})
        if isinstance(out, str):  # python could not run (yet): look at the container again
            last = HttpAnswer(None, "", out)
            time.sleep(0.5)
            continue
        last = _answer((out.get("answers") or [None])[0])
        if last.status is not None and 200 <= last.status < below:
            return last
        if elsewhere := _sockets(out.get("listening")):
            shown = ", ".join(f"{a}:{p}" for a, p in elsewhere)
            raise ContainerFailed(f"Nothing answered {path} on port {port}: the server listens on {shown} only.",
                                  logs=logs(container))
    why = f"HTTP {last.status}" if last.status is not None else last.error
    raise ContainerFailed(
        f"Nothing answered {path} on port {port} within {timeout:.0f} s (last: {why}).",
        logs=logs(container),
    )


def _sockets(raw: object) -> list[tuple[str, int]]:
    """Decode the probe's ``[hex address, port]`` pairs."""
    pairs = [item for item in raw if isinstance(item, list) and len(item) == 2] if isinstance(raw, list) else []
    return [(_decode_proc_address(str(a)), int(p)) for a, p in pairs]


def listening_sockets(container: ContainerRef) -> list[tuple[str, int]]:
    """Return the TCP sockets listening inside a container, from its ``/proc/net/tcp`` files.

    Returns:
        ``(address, port)`` pairs; the address is ``"0.0.0.0"``, ``"::"``, ``"127.0.0.1"``,
        ``"::1"`` or another address in dotted/hex form. Empty when nothing listens
        or the image has no ``python`` to read the files with.
    """
    out = _probe(container, {"mode": "listening"})
    return [] if isinstance(out, str) else _sockets(out.get("listening"))


def _decode_proc_address(hex_addr: str) -> str:
    """Turn a /proc/net/tcp address (little-endian hex) into a readable one."""
    if len(hex_addr) == 8:
        return ".".join(str(int(hex_addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
    known = {"0" * 32: "::", "0" * 24 + "01000000": "::1"}
    return known.get(hex_addr, hex_addr)
