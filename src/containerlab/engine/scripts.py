"""Run a student's shell script in a throwaway sandbox, and create (never start) containers with the CLI.

Exercise 3 asks for a ``docker run`` command. Rather than imitate the shell and
Docker's option parser, the check runs the script with a real shell
(:func:`run_shell_script`) in a container with no network, in which ``docker`` is
a stand-in program that records its arguments, its working folder and its
environment, and does nothing else. The recorded arguments then go to the real
``docker container create`` (:func:`create_container`), and the created container's
configuration is read as data (:func:`inspect_container`); it is never started.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from .client import CommandTimedOut, EngineError, _with_run_labels, client, docker_cli
from .containers import _ref, _remove, wait_container

#: Where the sandbox finds its tools (the ``docker`` stand-in first on ``PATH``, the wrapper, the script).
TOOLS = "/cl-check"
#: Where, inside the sandbox, the stand-in writes one JSON file per call (a ``tmpfs`` of its own, apart from
#: the script's ``/tmp``, so that a script that fills ``/tmp`` does not lose its calls).
RECORDS = "/cl-calls"
#: The line before the wrapper's JSON report in the sandbox's output.
_MARK = "=== containerlab script report ==="
#: The environment the script starts with: nothing of the grader's own environment.
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The stand-in for ``docker``: records exactly what the shell passed (JSON keeps every character; an
# argument can hold no NUL byte), where it was run and with which environment, then ends with status 0.
_STAND_IN = f"""#!/usr/local/bin/python3
import json, os, sys, time
record = {{"argv": sys.argv[1:], "cwd": os.getcwd(),
          "env": dict(os.environ)}}
name = os.path.join({RECORDS!r}, "%020d-%d.json" % (time.monotonic_ns(), os.getpid()))
with open(name, "w", encoding="utf-8") as handle:
    json.dump(record, handle, ensure_ascii=True)
"""

# Runs the script with a deadline, keeps the last 4 KiB of its output (read from a pipe, never stored
# whole), and prints one JSON report.
_WRAPPER = f"""
import json, os, signal, subprocess, sys, threading
shell, script, folder, seconds, name = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
with open(script, encoding="utf-8") as handle:
    text = handle.read()
env = {{"PATH": "{TOOLS}/bin:{_BASE_PATH}", "HOME": "/tmp", "LANG": "C.UTF-8", "PWD": folder}}
tail = bytearray()

def pump(stream):
    while True:
        chunk = stream.read1(65536)
        if not chunk:
            return
        tail.extend(chunk)
        del tail[:-4096]

child = subprocess.Popen([shell, "-c", text, name], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
reader = threading.Thread(target=pump, args=(child.stdout,), daemon=True)
reader.start()
timed_out = False
try:
    code = child.wait(timeout=seconds)
except subprocess.TimeoutExpired:
    timed_out, code = True, None
try:
    os.killpg(child.pid, signal.SIGKILL)
except OSError:
    pass
if timed_out:
    child.wait()
reader.join(timeout=2)
records = []
for entry in sorted(os.listdir({RECORDS!r})):
    try:
        with open(os.path.join({RECORDS!r}, entry), encoding="utf-8") as handle:
            records.append(json.load(handle))
    except (OSError, ValueError):
        pass
print({_MARK!r})
print(json.dumps({{"exit_code": code, "timed_out": timed_out, "calls": records,
                  "output": bytes(tail).decode("utf-8", "replace")}}))
"""


@dataclass(frozen=True)
class DockerCall:
    """One call of ``docker`` by a script, as the stand-in recorded it.

    Attributes:
        argv: the arguments after ``docker``, exactly as the shell passed them.
        cwd: the folder it was called from, inside the sandbox.
        env: the environment it got (what the script exported, plus the shell's own variables).
    """

    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]


@dataclass(frozen=True)
class ScriptRun:
    """What happened when a script ran in the sandbox (:func:`run_shell_script`).

    Attributes:
        calls: every call of ``docker``, in order.
        exit_code: the shell's exit status; ``None`` when it was stopped.
        timed_out: the script was still running at the deadline and was stopped.
        output: the last 4 KiB the script printed (stdout and stderr together).
        problem: why the sandbox itself did not report (out of memory, ...); ``""`` when it did.
    """

    calls: tuple[DockerCall, ...] = ()
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""
    problem: str = ""


def run_shell_script(text: str, folder: Path, *, image: str, shell: str = "bash", seconds: float = 20.0,
                     memory_bytes: int = 256 * 1024**2, pids: int = 128, cpus: float = 1.0,
                     script_name: str = "ex3-run.sh", name_prefix: str = "cl-ex",
                     labels: Mapping[str, str] | None = None) -> ScriptRun:
    """Run ``text`` with a real shell in a throwaway container, ``docker`` replaced by a recording stand-in.

    The container has no network (``--network none``), a read-only root file system, a
    16 MiB ``/tmp`` in memory (and 4 MiB apart for the recorded calls), every capability dropped, no new privileges, the given
    memory, process and CPU limits, and runs as this process's user and group (so it
    reads the files this user can). ``folder`` is mounted read-only at its own path and
    is the working folder, so ``$(pwd)``, ``$PWD``, ``service/.env`` and absolute paths
    resolve as in the student's terminal, and paths recorded inside need no mapping back.
    Everything else the script runs (``grep``, ``cut``, ``.``/``source``, ``export``) runs
    for real, with the programs of ``image``. The shell gets the text with ``-c`` and
    ``$0`` set to ``folder/script_name``, so ``cd "$(dirname "$0")"`` stays in the folder
    and the shell's messages name the student's file.

    Args:
        text: the script.
        folder: the exercise folder (absolute); the script runs from here.
        image: the image that provides the shell (``python:3.13-slim``: bash, and dash as ``sh``;
            the stand-in needs its ``/usr/local/bin/python3``).
        shell: the shell to run the script with, a program of ``image`` (``"bash"`` or ``"sh"``).
        script_name: the script's file name in ``folder``, for ``$0``.
        seconds: the script is stopped after this many seconds.
        memory_bytes: memory limit in bytes (no swap beyond it).
        pids: most processes at once.
        cpus: CPU share (1.0 = one core).
        name_prefix: start of the container's name.
        labels: labels for the container.

    Returns:
        The recorded calls, the exit status and the end of the script's output.

    Raises:
        EngineError: the engine refused to start the sandbox (the message is the engine's).
    """
    folder = folder.resolve()
    tools = Path(tempfile.mkdtemp(prefix="cl-script-"))
    container = None
    try:
        (tools / "bin").mkdir()
        (tools / "bin" / "docker").write_text(_STAND_IN, encoding="utf-8")
        (tools / "wrapper.py").write_text(_WRAPPER, encoding="utf-8")
        (tools / "script.sh").write_text(text, encoding="utf-8")
        for path in (tools, tools / "bin", tools / "bin" / "docker"):
            path.chmod(0o755)
        for path in (tools / "wrapper.py", tools / "script.sh"):
            path.chmod(0o644)
        try:
            container = client().containers.run(
                image, ["python3", f"{TOOLS}/wrapper.py", shell, f"{TOOLS}/script.sh", str(folder), str(seconds),
                        str(folder / script_name)],
                detach=True, name=f"{name_prefix}-script-{uuid.uuid4().hex[:10]}",
                labels=_with_run_labels(labels), network_mode="none", working_dir=str(folder),
                user=f"{os.getuid()}:{os.getgid()}", environment={"PATH": _BASE_PATH, "HOME": "/tmp"},
                volumes={str(folder): {"bind": str(folder), "mode": "ro"}, str(tools): {"bind": TOOLS, "mode": "ro"}},
                mem_limit=memory_bytes, memswap_limit=memory_bytes, pids_limit=pids, nano_cpus=int(cpus * 1e9),
                read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
                tmpfs={"/tmp": "rw,nosuid,nodev,size=16m,mode=1777",
                       RECORDS: "rw,nosuid,nodev,noexec,size=4m,mode=1777"})
        except docker.errors.APIError as exc:
            raise EngineError(f"Could not start the sandbox for the run script: {exc.explanation}") from exc
        status = wait_container(_ref(container), timeout=seconds + 30)
        logs = container.logs().decode("utf-8", "replace")
        state = (client().api.inspect_container(container.id).get("State") or {})
    finally:
        if container is not None:
            _remove(container.id)
        shutil.rmtree(tools, ignore_errors=True)
    _, marked, report = logs.partition(_MARK)
    if not marked:
        why = ("it ran out of memory" if state.get("OOMKilled") else
               f"it ended with status {status}")
        return ScriptRun(problem=f"The sandbox that runs the script stopped before it reported ({why}).",
                         output=logs[-4096:])
    found = json.loads(report)
    calls = tuple(DockerCall(tuple(c["argv"]), c["cwd"], dict(c["env"])) for c in found["calls"])
    return ScriptRun(calls, found["exit_code"], found["timed_out"], found["output"])


@dataclass(frozen=True)
class Created:
    """The answer of ``docker container create``.

    Attributes:
        container_id: the new container's id, or ``""`` when Docker refused.
        error: Docker's own words when it refused (the CLI's or the daemon's), else ``""``.
    """

    container_id: str = ""
    error: str = ""


def create_container(args: Sequence[str], *, cwd: Path, env: Mapping[str, str],
                     labels: Mapping[str, str] | None = None, timeout: float = 60) -> Created:
    """Run ``docker container create ARGS`` with the real CLI; the container is never started.

    The CLI reads the options the way ``docker run`` does (it shares the code), reads
    ``--env-file`` files and makes ``./`` sources absolute from ``cwd``, and takes the
    values of ``-e NAME`` from ``env``. The connection to the engine is this process's
    (``DOCKER_CONTEXT``, ``DOCKER_CONFIG`` and the TLS variables are taken from here and
    override ``env``; ``DOCKER_HOST`` is the engine's address, :func:`.client.cli_environment`).

    Args:
        args: the options, the image and the command (what follows ``docker container create``).
        cwd: the folder to run the CLI in.
        env: the CLI's environment (``PATH`` is this process's).
        labels: labels for the container, with the run's labels (:func:`run_labels`); the command's own
            ``--label`` options add to them.
        timeout: seconds after which the CLI is stopped.

    Returns:
        The container's id, or Docker's message.
    """
    own = {k: v for k, v in os.environ.items() if k.startswith("DOCKER_")}
    own.setdefault("DOCKER_CONFIG", str(Path.home() / ".docker"))
    environment = {**{k: v for k, v in env.items() if not k.startswith("DOCKER_")}, **own,
                   "PATH": os.environ.get("PATH", _BASE_PATH)}
    marks = [arg for key, value in _with_run_labels(labels).items() for arg in ("--label", f"{key}={value}")]
    try:
        done = docker_cli(["container", "create", *marks, *args], cwd=cwd, env=environment, inherit=False,
                          timeout=timeout, merge=False)
    except CommandTimedOut:
        return Created(error=f"docker container create did not answer within {timeout:.0f} s")
    if done.returncode == 0 and done.stdout.strip():
        return Created(container_id=done.stdout.strip().splitlines()[-1])
    return Created(error=(done.stderr.strip() or done.stdout.strip()).split("\n\nUsage:")[0].strip())


def inspect_container(container_id: str) -> dict:
    """``docker container inspect`` of one container, as the engine's JSON (``Config``, ``HostConfig``, ``Mounts``).

    Raises:
        EngineError: there is no such container.
    """
    try:
        return client().api.inspect_container(container_id)
    except docker.errors.NotFound as exc:
        raise EngineError(f"No container {container_id}") from exc


def remove_created(container_id: str) -> None:
    """Remove a container (and its anonymous volumes); nothing happens when it is gone."""
    _remove(container_id)


def volume_names() -> set[str]:
    """The names of the engine's volumes now."""
    return {v.name for v in client().volumes.list()}


def volume_options(name: str) -> dict[str, str]:
    """The driver options a volume was made with (``docker volume inspect``'s ``Options``); ``{}`` when none."""
    try:
        return dict(client().volumes.get(name).attrs.get("Options") or {})
    except docker.errors.NotFound:
        return {}


def remove_volume(name: str) -> None:
    """Remove a volume; leave it when it is gone or still in use."""
    try:
        client().volumes.get(name).remove()
    except (docker.errors.NotFound, docker.errors.APIError):
        pass


@dataclass
class BlankImage:
    """An image with no files and no environment, to create containers whose config is only what a command asks.

    Attributes:
        tag: its tag; ``remove()`` deletes it.
    """

    tag: str
    _made: list[str] = field(default_factory=list)

    #: The image's ``CMD``: no such program; a created container of it is never started.
    COMMAND = "/none"

    def make(self) -> str:
        """Import the image (``docker import`` of nothing, ``CMD ["/none"]``); return its tag."""
        from .images import import_rootfs

        with tempfile.TemporaryDirectory(prefix="cl-blank-") as empty:
            import_rootfs(Path(empty), self.tag, changes=[f'CMD ["{self.COMMAND}"]'])
        self._made.append(self.tag)
        return self.tag

    def remove(self) -> None:
        """Remove the image when this object made it."""
        from .images import remove_image

        for tag in self._made:
            remove_image(tag)
        self._made.clear()
