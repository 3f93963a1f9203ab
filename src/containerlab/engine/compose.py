"""Compose stacks: config, up, ps, logs, port, health, down, through ``docker compose``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import docker.errors

from .client import CliResult, CommandTimedOut, Echo, EngineError, Pressure, client, docker_cli
from .builds import build
from .containers import ContainerRef, _ref, container_state, logs


class ComposeFailed(EngineError):
    """A compose stack did not come up; it has been taken down again (volumes kept).

    Attributes:
        services: the services that failed (stopped, unhealthy or never ready).
        logs: their last log lines, service name to text.
        containers: every container of the stack as ``ps`` saw it before it was taken down.
        health: per failing service with a healthcheck, its last probes (:func:`compose_health`).
        output: the last lines of what ``up`` printed (compose's own error, e.g. a missing image).
        pressure: as :attr:`EngineError.pressure` (``up`` said the engine's disk was full).
    """

    def __init__(self, message: str, *, services: list[str], logs: Mapping[str, str],
                 containers: list[ComposeService] | None = None,
                 health: Mapping[str, list[HealthProbe]] | None = None, output: str = "", pressure: Pressure = ()):
        super().__init__(message, pressure=pressure)
        self.services = services
        self.logs = dict(logs)
        self.containers = list(containers or [])
        self.health = dict(health or {})
        self.output = output


class ComposeRejected(EngineError):
    """``docker compose config`` refused the file; the message is compose's own error."""


@dataclass(frozen=True)
class HealthProbe:
    """One run of a container's healthcheck, as ``docker inspect`` keeps it (``State.Health.Log``).

    Attributes:
        exit_code: 0 healthy, 1 unhealthy, anything else: the probe itself could not run.
        output: what the probe printed (the engine keeps at most 4096 bytes).
    """

    exit_code: int
    output: str


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
) -> CliResult:
    """Run ``docker compose -p PROJECT [-f FILE] ARGS``.

    Args:
        args: the subcommand and its options, e.g. ``["ps", "--all"]``.
        file: the compose file; ``None`` finds the stack by its project name only (enough for ``down``).
        project: the compose project name (prefixes every container, network and volume).
        env: variables to add to the environment compose interpolates the file with.
        echo: called with each output line as it arrives.
        timeout: seconds after which the command is stopped.

    Returns:
        What it did; merged output in ``stdout``.

    Raises:
        CommandTimedOut: it ran past ``timeout`` seconds.
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
                 env: Mapping[str, str] | None = None, prefix: bool = True) -> str:
    """Return the last ``tail`` log lines of one service of a stack (``""`` when there are none).

    Args:
        prefix: start each line with the container's name (``api-1  | ``), as compose shows them.
    """
    args = ["logs", "--no-color", "--tail", str(tail)] + ([] if prefix else ["--no-log-prefix"])
    result = compose([*args, service], file=file, project=project, env=env, timeout=60)
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
    health = {c.service: probes for c in failing
              if (probes := compose_health(file, project=project, service=c.service, env=env))}
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
        containers=containers,
        health=health,
        output=output_tail,
        pressure=result.pressure,
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


def compose_config(file: str | os.PathLike[str], *, project: str, env: Mapping[str, str] | None = None,
                   interpolate: bool = True, timeout: float = 60) -> tuple[dict, list[str]]:
    """Return compose's normalised model of a file (``docker compose config --format json``).

    The model is what compose itself would run: short forms written out
    (``depends_on: [db]`` becomes ``{"db": {"condition": "service_started"}}``),
    relative paths made absolute, ``env_file`` read into ``environment``, variables
    filled in (unless ``interpolate`` is false). Reading it is how a check learns
    what a file asks for without parsing YAML by hand.

    Args:
        file: the compose file.
        project: the project name (the model's ``name`` and its volumes' names follow it).
        env: variables to interpolate with, added to this process's environment.
        interpolate: fill in ``${VAR}``; ``False`` keeps them as written (``--no-interpolate``).
        timeout: seconds after which compose is stopped.

    Returns:
        The model, and compose's warnings (e.g. ``The "X" variable is not set. Defaulting to a
        blank string.``), each the ``msg`` of one of its log lines.

    Raises:
        ComposeRejected: compose refused the file (its message: a YAML error, an unknown key, a
            required variable without a value, ...).
    """
    cmd = ["compose", "-p", project, "-f", str(file), "config", "--format", "json"]
    if not interpolate:
        cmd.append("--no-interpolate")
    try:
        proc = docker_cli(cmd, env=env, timeout=timeout, merge=False)
    except CommandTimedOut as exc:
        raise ComposeRejected(f"`docker compose config` took more than {timeout:.0f} s") from exc
    messages = [_log_message(line) for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 0:
        raise ComposeRejected("; ".join(messages) or f"`docker compose config` exited with {proc.returncode}")
    try:
        return json.loads(proc.stdout), messages
    except ValueError as exc:
        raise ComposeRejected(f"`docker compose config` printed no model: {proc.stdout[-300:]}") from exc


def _log_message(line: str) -> str:
    """The ``msg`` of one of compose's log lines (``time=... level=warning msg="..."``), else the line."""
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    return match.group(1).replace('\\"', '"') if match else line.strip()


def compose_health(file: str | os.PathLike[str] | None, *, project: str, service: str,
                   env: Mapping[str, str] | None = None) -> list[HealthProbe] | None:
    """Return the last probes of a service's healthcheck, oldest first (the engine keeps five).

    Returns:
        The probes; ``[]`` when the healthcheck has not run yet; ``None`` when the service's
        container has no healthcheck or there is no such container.
    """
    container = compose_container(file, project=project, service=service, env=env)
    if container is None:
        return None
    health = container_state(container).get("Health")
    if not isinstance(health, dict) or not health:
        return None
    return [HealthProbe(int(p.get("ExitCode", -1)), str(p.get("Output", ""))) for p in health.get("Log") or []]


def compose_container(file: str | os.PathLike[str] | None, *, project: str, service: str,
                      env: Mapping[str, str] | None = None) -> ContainerRef | None:
    """Return the container of a stack's service (the first one), or ``None`` when it has none.

    Raises:
        EngineError: compose could not list the stack.
    """
    for row in compose_ps(file, project=project, env=env):
        if row.service == service:
            try:
                return _ref(client().containers.get(row.name))
            except docker.errors.NotFound:
                return None
    return None
