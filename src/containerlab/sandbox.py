"""The grading engine: builds of untrusted Dockerfiles with memory, process, CPU and disk limits.

An ordinary ``docker build`` of a student's Dockerfile may allocate 2 GiB,
start 1,200 processes or write 3 GB (ENGINE.md, "Limits on builds"). Engine
20.10's builder ignored every limit given to one build; Engine 26's honours
``--cgroup-parent`` per build, but not ``--memory`` and no disk quota. Grading
therefore builds on a **second, dedicated dockerd** (``scripts/grading-engine.sh``,
run by ``containerlab engine start|stop|status``), the same engine binaries as
the main one:

- it runs every build step and every container under one cgroup it creates
  and limits first (``--cgroup-parent=/NAME``; cgroup v1 ``memory``, ``pids``
  and ``cpu`` controllers, or the cgroup v2 files ``memory.max``, ``pids.max``,
  ``cpu.max``): a memory bomb is killed (exit 137), a fork bomb gets "Cannot fork";
- below it, each grading worker's builds get a budget of their own
  (:func:`build_budget`: ``/NAME/workers/SLOT`` with the per-container memory,
  process and CPU limits, passed to each build as ``--cgroup-parent``); a worker
  grades one student at a time, so one student's ``RUN`` step cannot take the
  share of the students graded beside;
- its data-root is a loop-mounted ext4 file system of fixed size: a disk bomb
  fills that file system and fails for this engine alone (the failed step's
  layer is dropped, so the next student has the space again). Disk is the one
  budget shared by the students graded at once: the overlayfs snapshotter has
  no quota per build on ext4;
- it has its own socket (``unix:///run/NAME.sock``), exec-root, pidfile,
  containerd namespace and bridge on a private subnet; it never touches the
  main engine's ``docker0`` or iptables chains (``--iptables=false``; the script
  adds the NAT its bridge needs in chains of its own, and drops traffic from
  it to the host and to the main engine's networks);
- its image store is the containerd image store by default, as new installs
  have it (``CL_GRADING_STORE=overlay2`` gives the legacy store);
- the course's base images are copied into it once from the main engine
  (``docker save | docker load``).

Why this route, of those issue 10 names:

- *Docker-in-Docker in a limited container* (``docker run --privileged
  --memory ... docker:dind``) needs a ``docker:dind`` image, which cannot be
  pulled here (no registry), and a privileged container: the student's build
  would run one kernel-level escape away from root on the host, with more
  privilege than the dedicated daemon's children have. Its limits would be the
  same cgroup limits, one level further down.
- *podman/buildah from Debian* do honour ``--memory``/``--pids-limit`` per
  build, but they are a second build tool with its own image store, Dockerfile
  dialect (``RUN --mount`` differences) and no compose stack for exercise 3;
  students build with Docker, so the grade should come from Docker's builder.
- *buildx with the docker-container driver* runs BuildKit in a container whose
  limits could be set, but it needs the ``moby/buildkit`` image from a
  registry, and it does not load images into the engine by default
  (moby/buildkit#3855): every graded image would have to be exported and loaded.

The dedicated dockerd uses only what the machine already has (the engine
``scripts/ensure-engine.sh`` installed, ``ip``, ``mkfs.ext4``, ``mount``,
``iptables``). Its own budget is for all builds together: with ``--jobs N``
give it N times what one student's build may use.

Where it cannot run (not Linux, not root, no cgroup controllers), grading
uses the normal engine and says so: containers still run with their limits
(:class:`containerlab.engine.SandboxLimits`), builds only with a timeout.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import config, engine

#: The grading engine's name: its socket is /run/NAME.sock, its cgroup /NAME, its state /var/lib/NAME
#: (``CL_GRADING_NAME`` chooses another, e.g. for tests beside an instructor's engine).
GRADING_NAME = "containerlab-grading"
#: The script that starts, stops and reports the grading engine (as root).
SCRIPT = config.ROOT / "scripts" / "grading-engine.sh"
#: Exit status of the script when this machine cannot run a grading engine.
CANNOT_RUN = 3
#: Base images copied from the main engine into the grading engine.
BASE_IMAGES = (config.PYTHON_SLIM_IMAGE, config.PYTHON_FULL_IMAGE, config.POSTGRES_IMAGE)


class GradingEngineUnavailable(engine.EngineError):
    """The grading engine is not running, or cannot run on this machine (the message says which)."""


@dataclass(frozen=True)
class EngineLimits:
    """What all builds and containers of the grading engine may use together.

    The defaults leave a 2-core, 8 GB laptop responsive while a build of the
    course's service (pip installs numpy, pandas and scikit-learn: about
    400 MB of memory and 1.5 GB of disk at most) still passes.

    Attributes:
        memory_bytes: memory of the engine's cgroup, in bytes (no swap beyond it).
        pids: processes at once, all builds and containers together.
        cpus: CPU time, in cores (1.5 = one and a half cores); ``None``: all cores but half of one.
        disk_bytes: size of the file system holding its images, layers and build cache, in bytes.
    """

    memory_bytes: int = 2 * 1024**3
    pids: int = 2048
    cpus: float | None = None
    disk_bytes: int = 20 * 1024**3

    def environment(self) -> dict[str, str]:
        """The settings as the script reads them (``CL_GRADING_*`` variables)."""
        env = {
            "CL_GRADING_MEMORY_MB": str(max(1, self.memory_bytes // 1024**2)),
            "CL_GRADING_PIDS": str(self.pids),
            "CL_GRADING_DISK_GB": str(max(1, self.disk_bytes // 1024**3)),
        }
        if self.cpus is not None:
            env["CL_GRADING_CPUS"] = f"{self.cpus:g}"
        return env


def engine_name(name: str | None = None) -> str:
    """``name``, or ``CL_GRADING_NAME``, or :data:`GRADING_NAME`: the grading engine meant."""
    return name or os.environ.get("CL_GRADING_NAME") or GRADING_NAME


def host(name: str | None = None) -> str:
    """The Docker host address of the grading engine ``name`` (for ``DOCKER_HOST``)."""
    return f"unix:///run/{engine_name(name)}.sock"


def _script(action: list[str], *, name: str | None, env: dict[str, str] | None = None,
            echo: Callable[[str], None] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the grading-engine script; its messages (stderr) go to ``echo`` as they come."""
    if not sys.platform.startswith("linux"):
        return subprocess.CompletedProcess(action, CANNOT_RUN, "",
                                           f"grading engine: it needs Linux (this is {sys.platform})\n")
    # The script always talks to the main engine by its own address, never to DOCKER_HOST.
    full_env = {**os.environ, **(env or {}), "CL_GRADING_NAME": engine_name(name)}
    full_env.pop("DOCKER_HOST", None)
    proc = subprocess.Popen(["bash", str(SCRIPT), *action], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)
    err: list[str] = []
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        err.append(line)
        if echo:
            echo(line.rstrip("\n"))
    out = proc.stdout.read()
    return subprocess.CompletedProcess(action, proc.wait(timeout=timeout), out, "".join(err))


def cannot_run() -> str:
    """Why this machine cannot run a grading engine (not Linux, not root, no cgroups, a tool missing), or ``""``."""
    result = _script(["can-run"], name=None)
    return "" if result.returncode == 0 else (result.stdout.strip().removeprefix("no: ") or _last_words(result))


def start(*, limits: EngineLimits = EngineLimits(), name: str | None = None,
          images: tuple[str, ...] | None = None, echo: Callable[[str], None] | None = None) -> str:
    """Start the grading engine (or leave a running one as it is) and copy the base images into it.

    Args:
        limits: the engine's budget, for all its builds and containers together.
        name: the engine's name (socket, cgroup, state folder).
        images: base images to copy from the main engine (those it has); default ``CL_GRADING_IMAGES``
            or :data:`BASE_IMAGES`.
        echo: called with each progress message.

    Returns:
        The script's status lines (limits, disk use, and the main engine's docker0).

    Raises:
        GradingEngineUnavailable: this machine cannot run it (the message says why).
        engine.EngineError: it did not start (the message holds the script's last words).
    """
    chosen = " ".join(images) if images is not None else os.environ.get("CL_GRADING_IMAGES", " ".join(BASE_IMAGES))
    result = _script(["start"], name=name, env={**limits.environment(), "CL_GRADING_IMAGES": chosen}, echo=echo)
    if result.returncode == CANNOT_RUN:
        raise GradingEngineUnavailable(f"{_last_words(result)}. `containerlab grade` grades on the normal "
                                       f"engine then, where {UNLIMITED.split(', but ')[0]} but builds are "
                                       "unlimited (only the build timeout holds).")
    if result.returncode != 0:
        raise engine.EngineError(f"The grading engine did not start: {_last_words(result)}")
    return result.stdout.strip()


def stop(*, name: str | None = None, purge: bool = False, echo: Callable[[str], None] | None = None) -> None:
    """Stop the grading engine and take down its bridge, rules, mount and cgroup.

    Args:
        name: the engine's name.
        purge: also delete its disk image (its build cache and the copied base images).
        echo: called with each progress message.

    Raises:
        engine.EngineError: stopping failed (the message holds the script's last words).
    """
    result = _script(["stop", *(["--purge"] if purge else [])], name=name, echo=echo)
    if result.returncode not in (0, CANNOT_RUN):
        raise engine.EngineError(f"The grading engine did not stop cleanly: {_last_words(result)}")


def status(*, name: str | None = None) -> tuple[bool, str]:
    """Whether the grading engine runs, and the script's description of it and of the main engine."""
    result = _script(["status"], name=name)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def _last_words(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.removeprefix("grading engine: ") for line in result.stderr.splitlines() if line.strip()]
    return " ".join(lines[-3:]) or f"the script exited with status {result.returncode}"


def use(address: str | None) -> None:
    """Send every later engine call of this process (SDK, buildx, compose) to ``address``.

    ``None`` goes back to the normal engine (``DOCKER_HOST`` unset). Child
    processes, such as parallel grading workers, inherit the choice.
    """
    if address is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = address
    engine.reconnect()


#: Label of the grading engine itself (``docker info`` shows it), set by the script.
ENGINE_LABEL = "org.containerlab.grading-engine"


def is_grading_engine(address: str | None) -> bool:
    """Whether the engine at ``address`` (``None``: the one ``DOCKER_HOST`` or the default names) is a grading engine."""
    try:
        labels = engine.info(address).get("Labels") or []
    except engine.EngineUnavailable:
        return False
    return any(str(label).startswith(ENGINE_LABEL + "=") for label in labels)


def context_host(context: str) -> str:
    """The Docker host address of docker context ``context`` (``""`` when there is no such context).

    Raises:
        engine.CommandTimedOut: the ``docker`` command line did not answer within 30 s.
    """
    result = engine.docker_cli(["context", "inspect", context, "--format", "{{.Endpoints.docker.Host}}"],
                               timeout=30, merge=False)
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass(frozen=True)
class Choice:
    """The engine grading uses.

    Attributes:
        host: its Docker host address, or ``None`` for what ``DOCKER_HOST`` or the default names.
        builds_limited: whether builds run with memory, process, CPU and disk limits.
        note: one sentence for the person grading, saying which engine and what is limited.
    """

    host: str | None
    builds_limited: bool
    note: str


UNLIMITED = ("containers run with their limits, but builds have only the build timeout: a build may use "
             "any amount of memory, processes and disk. Start the grading engine (`containerlab engine start`, "
             "as root on Linux) to limit builds.")


def choose(engines: list[str] | tuple[str, ...] = (), *, name: str | None = None) -> Choice:
    """Pick the engine to grade on and say what it limits.

    With docker contexts named (``containerlab grade --engine CONTEXT``; the
    grading engine's context is ``grading``), those are used as they are. Else
    ``DOCKER_HOST`` is respected when set. Else the grading engine is used when
    it runs (this process is pointed at it with :func:`use`), and the normal
    engine otherwise, saying that builds are then unlimited.

    Args:
        engines: docker contexts the batch spreads its workers over.
        name: the grading engine's name.

    Returns:
        The choice, with a sentence saying what it limits.
    """
    if engines:
        unlimited = [e for e in engines if not is_grading_engine(context_host(e) or None)]
        if not unlimited:
            return Choice(None, True, f"Grading on {', '.join(engines)}: builds and containers run with the "
                          "grading engine's memory, process, CPU and disk limits.")
        return Choice(None, False, f"{', '.join(unlimited)} is not a grading engine: there, {UNLIMITED}")
    if os.environ.get("DOCKER_HOST"):
        address = os.environ["DOCKER_HOST"]
        if is_grading_engine(address):
            return Choice(address, True, f"Grading on the grading engine ({address}): builds and containers "
                          "run with its memory, process, CPU and disk limits.")
        return Choice(address, False, f"Grading on {address}, which is not a grading engine: {UNLIMITED}")
    address = host(name)
    if engine.answers(address) and is_grading_engine(address):
        use(address)
        return Choice(address, True, f"Grading on the grading engine ({address}): builds and containers "
                      "run with its memory, process, CPU and disk limits.")
    return Choice(None, False, f"Grading on the normal Docker engine (the grading engine is not running): "
                  f"{UNLIMITED}")


@contextlib.contextmanager
def grading_on(engines: list[str] | tuple[str, ...] = (), *, name: str | None = None) -> Iterator[Choice]:
    """Grade on the engine :func:`choose` picks for the ``with`` block; then talk to the engine used before.

    :func:`choose` may point this process at the grading engine (``DOCKER_HOST``);
    a caller that grades in-process (a test, a notebook) must not stay pointed
    at an engine that may be stopped after the block.

    Args:
        engines: as for :func:`choose`.
        name: as for :func:`choose`.

    Yields:
        The :class:`Choice`.
    """
    before = os.environ.get("DOCKER_HOST")
    try:
        yield choose(engines, name=name)
    finally:
        if os.environ.get("DOCKER_HOST") != before:
            use(before)


#: Where the kernel's cgroup file systems are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_dirs(path: str) -> dict[str, Path]:
    """The folders of cgroup ``path`` per controller (``memory``, ``pids``, ``cpu``), or one ``""`` on cgroup v2."""
    relative = path.strip("/")
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return {"": CGROUP_ROOT / relative}
    return {controller: CGROUP_ROOT / controller / relative for controller in ("memory", "pids", "cpu")}


def _write_limits(path: str, limits: engine.SandboxLimits) -> None:
    """Make cgroup ``path`` (and missing parents) and write the memory, process and CPU limits on it."""
    period = 100_000
    quota = max(1000, int(limits.cpus * period))
    for controller, folder in _cgroup_dirs(path).items():
        if not controller:  # cgroup v2: every level must hand the controllers down to its children
            parts = folder.relative_to(CGROUP_ROOT).parts
            for depth in range(1, len(parts) + 1):
                level = CGROUP_ROOT.joinpath(*parts[:depth])
                level.mkdir(exist_ok=True)
                if depth < len(parts):
                    (level / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            (folder / "memory.max").write_text(str(limits.memory_bytes))
            (folder / "pids.max").write_text(str(limits.pids))
            (folder / "cpu.max").write_text(f"{quota} {period}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if controller == "memory":
            (folder / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):  # only where the kernel accounts swap
                (folder / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
        elif controller == "pids":
            (folder / "pids.max").write_text(str(limits.pids))
        else:
            (folder / "cpu.cfs_period_us").write_text(str(period))
            (folder / "cpu.cfs_quota_us").write_text(str(quota))


def _remove_cgroup(path: str) -> None:
    """Remove cgroup ``path`` and what the builder left below it (empty cgroups only; the deepest first).

    The builder's runtime makes the path in every hierarchy on cgroup v1 (``cpuset``, ``devices``...),
    not only in the three this module writes limits to: each is removed.
    """
    relative = path.strip("/")
    folders = [CGROUP_ROOT / relative] if (CGROUP_ROOT / "cgroup.controllers").exists() else [
        hierarchy / relative for hierarchy in CGROUP_ROOT.iterdir() if not hierarchy.is_symlink()]
    for folder in folders:
        if not folder.is_dir():
            continue
        for below in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                below.rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()


def budget_path(slot: str, *, name: str | None = None) -> str:
    """The cgroup of one grading worker's builds below grading engine ``name``: ``/NAME/workers/SLOT``."""
    return f"/{engine_name(name)}/workers/{slot}"


@contextlib.contextmanager
def build_budget(slot: str, limits: engine.SandboxLimits, *, name: str | None = None) -> Iterator[str]:
    """Give the builds of one grading worker a memory, process and CPU budget of their own, for the ``with`` block.

    The grading engine's cgroup limits all its builds together, so one student's
    ``RUN`` step could take the whole class's share. Engine 26 honours
    ``--cgroup-parent`` per build (``engine.build_cgroup``): this makes the
    cgroup ``/NAME/workers/SLOT`` below the engine's own, writes ``limits``'
    memory, processes and CPUs on it, and builds under it. A worker grades one
    student at a time, so the budget is that student's while they are graded.
    Disk cannot be split this way (the engine's file system is shared): it stays
    the engine's budget.

    The cgroup is named after the worker, not the student, because BuildKit puts
    a step's cgroup parent in its cache key (measured on Engine 26.1: the same
    ``RUN`` step under another ``--cgroup-parent`` runs again). With one cgroup
    per student every student would install the service's dependencies afresh;
    with one per worker the next student that worker grades finds them cached.

    It applies only where this process can write the engine's cgroups: the
    grading engine ``name`` runs on this machine, this process is root, and the
    engine's cgroup exists. Elsewhere the block runs with no budget of its own.

    Args:
        slot: the grading worker's name (file-name safe, e.g. ``"grader-0"``), the same for every student it grades.
        limits: the per-student limits (the same as each container's, ``SandboxLimits``).
        name: the grading engine's name.

    Yields:
        The cgroup path the builds run under, or ``""`` when none could be made.
    """
    engine_cgroup = next(iter(_cgroup_dirs(f"/{engine_name(name)}").values()))
    if os.geteuid() != 0 or not engine_cgroup.is_dir() or os.environ.get("DOCKER_HOST") != host(name):
        yield ""
        return
    path = budget_path(slot, name=name)
    try:
        _write_limits(path, limits)
    except OSError:
        _remove_cgroup(path)
        yield ""
        return
    try:
        with engine.build_cgroup(path):
            yield path
    finally:
        _remove_cgroup(path)


@contextlib.contextmanager
def running(*, limits: EngineLimits = EngineLimits(), name: str | None = None,
            images: tuple[str, ...] | None = None, link: str = "", purge: bool = True) -> Iterator[str]:
    """Start a grading engine for the ``with`` block (tests, a corpus run), then stop it.

    For the block, ``CL_GRADING_NAME`` names it, so that ``containerlab grade``
    run in this process finds it and grades there.

    Args:
        limits: its budget.
        name: its name; use one of your own beside an instructor's engine.
        images: base images to copy in (default ``CL_GRADING_IMAGES`` or :data:`BASE_IMAGES`).
        link: the /30 between host and its network namespace, e.g. ``"10.213.253.0/30"``
            (default ``CL_GRADING_LINK`` or the script's); two engines need two links.
        purge: start from a new disk (what a killed earlier block of the same name left is deleted first),
            and delete it when stopping.

    Yields:
        Its Docker host address. This process is not pointed at it; use :func:`use` or :func:`choose`.
    """
    chosen = engine_name(name)
    saved = {key: os.environ.get(key) for key in ("CL_GRADING_NAME", "CL_GRADING_LINK")}
    os.environ["CL_GRADING_NAME"] = chosen
    if link:
        os.environ["CL_GRADING_LINK"] = link
    try:
        if purge:  # what a killed earlier block left (its engine, its disk and cache) is not this block's
            stop(name=chosen, purge=True)
        start(limits=limits, name=chosen, images=images)
        try:
            yield host(chosen)
        finally:
            stop(name=chosen, purge=purge)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
