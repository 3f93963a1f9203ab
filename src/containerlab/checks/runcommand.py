"""Exercise 3's run command: run by a real shell, read by the real Docker client, judged from the engine's data.

A student writes the command that starts their service (``ex3-run.sh``). The
check does not imitate the shell or Docker's option parser; it asks them:

1. **The shell.** The script runs with bash (``sh``, Debian's dash, when its
   first line asks for it) in a throwaway container of ``python:3.13-slim``
   with no network, a read-only view of the exercise folder at its own path as
   the working folder, and memory, process and time limits
   (:func:`containerlab.engine.run_shell_script`). ``docker`` there is a
   stand-in that records its arguments, its folder and its environment;
   everything else (``grep``, ``cut``, ``$(pwd)``, ``. service/.env``,
   ``export``) runs for real.
2. **The Docker client.** The one recorded ``docker run`` (or ``docker container
   run``) goes to the real ``docker container create`` (never started), from the
   same folder and with the recorded environment, so ``-e NAME``,
   ``--env-file`` and ``./`` sources mean what they mean to Docker. What
   ``create`` does not take is removed as its error names it (``-d``,
   ``--detach-keys``, ``--sig-proxy``); the image word is replaced by an empty
   image, found by the image Docker names, so the container's ``Config.Env``
   holds only what the command passes. Any other refusal is reported in
   Docker's words.
3. **The engine's data.** ``docker container inspect`` of the created container
   is judged with the grader's security rules (:mod:`.policy`, shared with
   exercise 6), and gives the environment and mounts the check starts the
   student's image with (:class:`RunSpec`).

The CLI reads and writes host files for three options of ``create``
(``--env-file``, ``--label-file`` read, ``--cidfile`` writes) and reads a
seccomp profile for ``--security-opt seccomp=FILE``; these few are looked at
before the CLI runs (:data:`CLIENT_READS`, :data:`CLIENT_WRITES`), so that it never reads or
writes outside the exercise folder.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, engine
from .dockerfile import PLACEHOLDER
from .policy import RunCommandProblem, SecurityRule, inside, judge_container, security_rule, shown, weakens

__all__ = ["RunCommandProblem", "SecurityRule", "RunSpec", "Mount", "read_run_command", "read_env_file",
           "student_files", "CLIENT_READS", "CLIENT_WRITES"]

#: Seconds a run script may take before it is stopped.
SCRIPT_SECONDS = 20.0
#: The longest run script the check runs, in bytes (the shell gets it as one argument).
MAX_SCRIPT_BYTES = 64 * 1024
#: Options of ``docker container create`` for which the CLI itself reads a host file (docker/cli
#: ``cli/command/container/opts.go``); their values must stay inside the folder.
CLIENT_READS = ("--env-file", "--label-file")
#: The option for which the CLI writes a host file (the new container's id); the check leaves it out.
CLIENT_WRITES = "--cidfile"
#: Options of ``docker run`` that ``docker container create`` does not have (``docker run --help``
#: against ``docker container create --help``, Docker CLI 28.2): ``-d/--detach`` and ``--sig-proxy``
#: take no value, ``--detach-keys`` takes one.
RUN_ONLY = {"detach": False, "sig-proxy": False, "detach-keys": True}
#: Global options of ``docker`` (``docker --help``) that send it to another engine or configuration.
_ELSEWHERE = ("-H", "--host", "-c", "--context", "--config", "--tls", "--tlsverify", "--tlscacert", "--tlscert",
              "--tlskey")
#: Global options that take a value and change nothing graded.
_GLOBAL_WITH_VALUE = ("-l", "--log-level")
_LABEL = "org.containerlab.exercise-check"
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Mount:
    """One mount the command asks for.

    Attributes:
        kind: ``"bind"`` (a host path), ``"volume"`` (a named or anonymous volume) or ``"tmpfs"``.
        target: the path inside the container.
        source: for a bind, the resolved host path; for a volume, its name (``""`` when anonymous).
        read_only: mounted read-only.
        written: the mount in ``docker run`` words, rebuilt from Docker's data (for messages; the folder
            shown as ``$PWD``).
    """

    kind: str
    target: str
    source: Path | str = ""
    read_only: bool = False
    written: str = ""


@dataclass
class RunSpec:
    """What a student's ``docker run`` command asks for, as Docker read it (``docker container inspect``).

    Attributes:
        environment: the container's variables, as Docker set them (without the image's own).
        volumes: bind mounts for the Docker SDK, absolute host path to ``{"bind": target, "mode": "ro"|"rw"}``.
        image: the image the command names.
        notes: what the check left out or read in a particular way, as sentences.
        mounts: every mount asked for (binds, volumes, tmpfs).
        command: the words after the image (the container's command; the check runs the image's own).
        name: the container name the command gives (``--name``); the check names its own.
        reads: files and folders the command reads from the exercise folder (``--env-file`` and
            ``--label-file`` files, bind sources), relative to it, POSIX form, in order.
    """

    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    image: str = ""
    notes: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def named_volumes(self) -> list[Mount]:
        """The volume mounts (named or anonymous): Docker-managed storage, empty where the work is graded."""
        return [m for m in self.mounts if m.kind == "volume"]

    def host_file(self, path: str) -> Path | None:
        """The host file a bind mount puts at ``path`` inside the container, or ``None``.

        A file bind (``-v ./token:/run/secrets/api_token``) and a folder bind that
        holds the path (``-v ./secrets:/run/secrets``) both count; as in Docker, the
        deepest mount that holds the path wins. A file reached through a link that
        leads out of the mounted source is not given (the grader never reads it).
        """
        target = _clean_target(path)
        best: tuple[int, Path, Path] | None = None
        for mount in self.mounts:
            where = _clean_target(mount.target)
            if target != where and not target.startswith(where.rstrip("/") + "/"):
                continue
            if best is not None and len(where) < best[0]:
                continue
            if mount.kind != "bind":
                best = (len(where), Path(), Path())
                continue
            source = Path(mount.source)
            best = (len(where), source, source / target[len(where.rstrip("/")) + 1:] if target != where else source)
        if best is None or best[1] == Path():
            return None
        source, found = best[1].resolve(), best[2].resolve()
        return found if found == source or found.is_relative_to(source) else None


def read_env_file(path: Path, lookup: dict[str, str] | None = None) -> dict[str, str]:
    """Read an env file the way ``docker run --env-file`` does (docker/cli ``pkg/kvfile``).

    Leading blanks are dropped; blank lines and lines starting with ``#`` are skipped;
    ``KEY=VALUE`` keeps the value exactly (blanks and quotes included, as Docker 28
    does); a line ``KEY`` alone takes the value from ``lookup`` (the environment of
    the shell that runs ``docker``) and is skipped when it is not there.

    Raises:
        RunCommandProblem: a line has no name or a name with blanks (Docker refuses the file).
    """
    values: dict[str, str] = {}
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has, value = line.partition("=")
        if not key:
            raise RunCommandProblem(f"Docker refuses the env file {path.name}: line {number} has no variable name.")
        if " " in key or "\t" in key:
            raise RunCommandProblem(f"Docker refuses the env file {path.name}: the variable '{key}' on line "
                                    f"{number} contains blanks.")
        if has:
            values[key] = value
        elif lookup is not None and key in lookup:
            values[key] = lookup[key]
    return values

def _clean_target(path: str) -> str:
    cleaned = re.sub(r"/+", "/", path)
    return cleaned.rstrip("/") or "/"



# --- running the script ---------------------------------------------------------------------------


def read_run_command(text: str, folder: Path, *, seconds: float = SCRIPT_SECONDS) -> RunSpec:
    """Run a run script in the sandbox, create its container with Docker, and read what it asks for.

    Args:
        text: the script (the body of the ``%%writefile ex3-run.sh`` cell).
        folder: the student's exercise folder; the script runs from here.
        seconds: the script is stopped after this many seconds.

    Returns:
        The container's environment and mounts as Docker set them, the image the command names,
        and notes on what the check left out.

    Raises:
        SecurityRule: the command asks for something that would weaken the sandbox.
        RunCommandProblem: the script never ran ``docker run`` (or ran it twice, or did not end),
            or Docker refuses the command (its own words); the message says what to write.
    """
    if len(text.encode("utf-8")) > MAX_SCRIPT_BYTES:
        raise RunCommandProblem(f"The run command is longer than {MAX_SCRIPT_BYTES // 1024} KiB; write the "
                                "`docker run` command and the few lines it needs.")
    if PLACEHOLDER in text:
        raise RunCommandProblem(f"The run command still holds the placeholder `{PLACEHOLDER}`. Replace the two "
                                "placeholder lines of the answer cell with your `docker run ...` command and run "
                                "the cell again.")
    text = text.replace("\r\n", "\n")
    try:
        return _read(text, folder.resolve(), seconds)
    except SecurityRule:
        raise
    except RunCommandProblem as exc:
        if any(line.rstrip().endswith("`") for line in text.splitlines()):
            raise RunCommandProblem(f"{exc} A backtick (`) at the end of a line is PowerShell's way to continue a "
                                    "line; the shell that runs your command is bash: end the line with a backslash "
                                    "(\\) instead.") from exc
        raise


def _read(text: str, folder: Path, seconds: float) -> RunSpec:
    """:func:`read_run_command` of a script whose line ends are ``\\n``, from a resolved ``folder``."""
    first = text.split("\n", 1)[0]
    shell = "sh" if re.match(r"#!\s*(/usr)?/bin/(env\s+)?(sh|dash)\s*$", first) else "bash"
    try:
        run = engine.run_shell_script(text, folder, image=config.PYTHON_SLIM_IMAGE, shell=shell, seconds=seconds,
                                      name_prefix=f"cl-ex-{config.INSTANCE}", labels={_LABEL: "ex3-script"})
    except engine.EngineError as exc:
        raise RunCommandProblem(f"The check could not run your script: {exc}") from exc
    said = _last_lines(run.output, folder)
    if run.problem:
        raise RunCommandProblem(f"{run.problem}{said}")
    if run.timed_out:
        raise RunCommandProblem(f"Your run script was still running after {seconds:.0f} s, so the check stopped it. "
                                "The script must end once it has started the container: look for a loop that "
                                f"never ends or a command that waits (sleep, read, tail -f).{said}")
    spec = RunSpec()
    runs = []
    for call in run.calls:
        words = _after_globals(call.argv)
        if words[:2] == ["container", "run"] or words[:1] == ["run"]:
            runs.append((call, words[2:] if words[0] == "container" else words[1:]))
        elif words[:2] == ["container", "create"] or words[:1] == ["create"]:
            raise RunCommandProblem("Write `docker run ...`: the check reads docker run, not docker create.")
        elif words:
            what = " ".join(words[:2]) if len(words) > 1 and not words[1].startswith("-") else words[0]
            spec.notes.append(f"The check leaves out `docker {what}`: it reads only `docker run` (and builds your "
                              "image from ex3.Dockerfile itself).")
    if not runs:
        ended = ("" if run.exit_code in (0, None) else f" (it ended with exit status {run.exit_code})")
        raise RunCommandProblem("The run command must contain `docker run ...`: the check ran your script and it "
                                f"never ran docker run{ended}. Write the command you would type in a terminal "
                                f"next to this notebook.{said}")
    if len(runs) > 1:
        raise RunCommandProblem("The script runs `docker run` more than once; write one, the command that starts "
                                "the service.")
    call, args = runs[0]
    for name in call.env:
        if name.startswith("DOCKER_"):
            raise _elsewhere(f"${name}")
    cwd = Path(call.cwd)
    if not cwd.resolve().is_relative_to(folder):
        raise RunCommandProblem(f"Your script runs docker run from {shown(call.cwd, folder)}, outside your exercise "
                                "folder; run it from the folder of this notebook (leave out the `cd`).")
    if run.exit_code not in (0, None):
        spec.notes.append(f"Your script ended with exit status {run.exit_code} after `docker run` (the check runs it "
                          f"without network, and its docker only records the command).{said}")
    _create_and_read(args, call, cwd, folder, spec)
    spec.notes = list(dict.fromkeys(spec.notes))
    return spec


def _elsewhere(option: str) -> SecurityRule:
    """The refusal of a ``docker`` that is sent to another engine or configuration (``-H``, ``$DOCKER_HOST``)."""
    return SecurityRule(f"Security rule of the grader (not a Docker error): the command sends `docker` to another "
                        f"engine or configuration ({option}), so the check does not start it (the check runs "
                        "your container on its own sandboxed engine). Leave it out: the service does not need it.")


def _last_lines(output: str, folder: Path) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()][-3:]
    return f" The script's last output: {shown(' / '.join(lines), folder)}" if lines else ""


def _after_globals(argv: tuple[str, ...]) -> list[str]:
    """The words after ``docker``'s own options (``docker -l debug run ...`` -> ``run ...``)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        option = argv[i].split("=", 1)[0]
        if option in _ELSEWHERE:
            raise _elsewhere(option)
        i += 2 if option in _GLOBAL_WITH_VALUE and "=" not in argv[i] else 1
    return list(argv[i:])


def _option_values(args: list[str], option: str) -> list[str]:
    """The values of ``--option VALUE`` and ``--option=VALUE`` in ``args``."""
    found = []
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith(option + "="):
            found.append(arg[len(option) + 1:])
    return found


def _prepared(args: list[str], folder: Path, cwd: Path, name: str, spec: RunSpec) -> list[str]:
    """The arguments for ``create``: our name, never a pull, and no client-side file outside the folder."""
    for option in CLIENT_READS:
        for value in _option_values(args, option):
            path = inside(folder, str(cwd / value), what=option,
                          instead="keep the env file in your exercise folder (service/.env)")
            if path.is_file():
                _note_read(spec, path, folder)
    for value in _option_values(args, "--security-opt"):
        if weakens("security-opt", value):
            raise security_rule(f"the command asks for `--security-opt {value}`", "security-opt", value)
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        key = arg.split("=", 1)[0]
        if key in ("--name", "--pull", CLIENT_WRITES) and (arg == key and i + 1 < len(args) or "=" in arg):
            step = 2 if arg == key else 1
            if key == "--name":
                spec.name = args[i + 1] if arg == key else arg.partition("=")[2]
                out += ["--name", name]
            elif key == "--pull":
                out += ["--pull", "never"]
            i += step
            continue
        out.append(arg)
        i += 1
    return ["--name", name, "--pull", "never", *out]


def _without_run_only(args: list[str], error: str) -> list[str] | None:
    """``args`` without the ``docker run`` option that ``create`` just refused (its words name it), or ``None``."""
    short = re.search(r"unknown shorthand flag: '(.)' in (-\S+)", error)
    if short and short.group(1) == "d":
        rest = short.group(2)[1:]  # pflag names the shorthands it had left: "dp" of -dp, "d" of -itd
        for i, arg in enumerate(args):
            if arg.startswith("-") and not arg.startswith("--") and arg[1:].endswith(rest):
                at = len(arg) - len(rest)
                kept = arg[:at] + ("" if rest.startswith("d=") else rest[1:])
                return args[:i] + ([kept] if kept != "-" else []) + args[i + 1:]
    long = re.search(r"unknown flag: --([a-z-]+)", error)
    if long and long.group(1) in RUN_ONLY:
        option = f"--{long.group(1)}"
        for i, arg in enumerate(args):
            if arg == option:
                return args[:i] + args[i + 1 + int(RUN_ONLY[long.group(1)]):]
            if arg.startswith(option + "="):
                return args[:i] + args[i + 1:]
    return None


def _names(word: str, reference: str) -> bool:
    """Whether ``word`` as written is the image ``reference`` Docker names (``img`` is ``img:latest``)."""
    return reference in (word, f"{word}:latest") or reference.endswith((f"/{word}", f"/{word}:latest"))


def _create_and_read(args: list[str], call: engine.DockerCall, cwd: Path, folder: Path, spec: RunSpec) -> None:
    """Create the container as the recorded ``docker run`` asks, judge it and fill ``spec``; remove it after."""
    name = f"cl-ex-{config.INSTANCE}-ex3-create-{uuid.uuid4().hex[:10]}"
    args = _prepared(list(args), folder, cwd, name, spec)
    blank = engine.BlankImage(f"cl-ex-{config.INSTANCE}-empty:{uuid.uuid4().hex[:10]}")
    volumes_before = engine.volume_names()
    created: list[str] = []
    try:
        blank.make()
        baseline = engine.create_container(["--name", f"{name}-baseline", blank.tag], cwd=cwd, env={},
                                           labels={_LABEL: "ex3-created"})
        if not baseline.container_id:
            raise engine.EngineError(baseline.error)
        created.append(baseline.container_id)
        attrs, image = _create(args, call, cwd, folder, blank.tag, created)
        judge_container(attrs, folder, baseline=engine.inspect_container(baseline.container_id))
        for mount in attrs.get("Mounts") or []:
            options = engine.volume_options(str(mount.get("Name") or "")) if mount.get("Type") == "volume" else {}
            if "device" in options or "bind" in options.get("o", ""):
                raise SecurityRule("Security rule of the grader (not a Docker error): the command mounts the volume "
                                   f"{mount['Name']}, whose driver options mount a host path, so the check does not "
                                   "start it. Leave it out: the service does not need it.")
        _fill(spec, attrs, image, folder)
    except engine.EngineError as exc:
        raise RunCommandProblem(f"The check could not create your container: {shown(str(exc), folder)}") from exc
    finally:
        _remove(created, volumes_before)
        blank.remove()


def _remove(created: list[str], volumes_before: set[str]) -> None:
    """Remove the containers the check created, and the named volumes their creation made."""
    made = set()
    for container_id in created:
        try:
            mounts = engine.inspect_container(container_id).get("Mounts") or []
        except engine.EngineError:
            mounts = []
        made |= {str(m["Name"]) for m in mounts if m.get("Type") == "volume" and m.get("Name")} - volumes_before
        engine.remove_created(container_id)
    for volume in sorted(made):
        engine.remove_volume(volume)


def _create(args: list[str], call: engine.DockerCall, cwd: Path, folder: Path, blank: str,
            created: list[str]) -> tuple[dict, str]:
    """Create the container with the image word replaced by ``blank``; return its inspect and the image word."""
    candidates: list[int] | None = None
    index: int | None = None
    for _ in range(24):
        trial = list(args)
        if index is not None:
            trial[index] = blank
        answer = engine.create_container(trial, cwd=cwd, env=call.env, labels={_LABEL: "ex3-created"})
        if answer.container_id and not _HEX_ID.match(answer.container_id):
            raise RunCommandProblem("`docker run` with these options starts no container (Docker printed its help "
                                    "or other text instead); leave out --help.")
        if answer.container_id:
            created.append(answer.container_id)
            attrs = engine.inspect_container(answer.container_id)
            if index is not None and attrs["Config"].get("Image") == blank:
                return attrs, args[index]
            reference = str(attrs["Config"].get("Image", ""))
        else:
            fixed = _without_run_only(args, answer.error)
            if fixed is not None:
                args, candidates, index = fixed, None, None
                continue
            missing = re.search(r"No such image: (\S+)", answer.error)
            if not missing:
                raise RunCommandProblem(f"Docker refuses the command: \"{shown(answer.error, folder)}\"."
                                        f"{_hint(answer.error)}")
            reference = missing.group(1)
        if candidates is None:
            candidates = [i for i, word in enumerate(args) if _names(word, reference)]
        if not candidates:
            raise RunCommandProblem(f"The check could not tell which word of your command is the image "
                                    f"(Docker names {reference}).")
        index = candidates.pop(0)
    raise RunCommandProblem("Docker kept refusing the command; write one `docker run OPTIONS IMAGE` command.")


#: What to write instead, after Docker's words (each key is part of Docker's message).
_HINTS = {
    "invalid characters for a local volume name": (
        "Docker reads a -v source that starts with neither / nor . as the name of a volume. To mount the data "
        "folder write -v \"$PWD/service/data:/data\" or -v ./service/data:/data (Docker makes ./ paths absolute)."),
    "must be absolute": ("Write the source from / or from ./ (e.g. source=./service/data or "
                         "source=\"$PWD/service/data\"), and the target inside the container from / (e.g. /data)."),
    "bind source path does not exist": "There is no such file or folder in your exercise folder; check the path.",
    "unknown flag": "Check the option's spelling (docker run --help lists them).",
    "unknown shorthand flag": "Check the option's spelling (docker run --help lists them).",
}


def _hint(error: str) -> str:
    return next((f" {hint}" for words, hint in _HINTS.items() if words in error), "")


def _environment(entries: list[str]) -> tuple[dict[str, str], list[str]]:
    """The variables a container gets from ``Config.Env``, as the engine merges it (moby
    ``container.ReplaceOrAppendEnvValues``): in order, ``NAME=value`` sets, a bare ``NAME`` unsets.

    Returns:
        The variables, and the bare names (``-e NAME`` with ``NAME`` not in the shell's environment).
    """
    env: dict[str, str] = {}
    bare = []
    for entry in entries:
        key, has, value = entry.partition("=")
        if has:
            env[key] = value
        else:
            env.pop(key, None)
            bare.append(key)
    return env, bare


def _fill(spec: RunSpec, attrs: dict, image: str, folder: Path) -> None:
    """Fill ``spec`` from a created container's inspect document."""
    cfg, host = attrs.get("Config") or {}, attrs.get("HostConfig") or {}
    spec.image = image
    spec.environment, bare = _environment(list(cfg.get("Env") or []))
    for key in bare:
        spec.notes.append(f"-e {key} takes the value of {key} from the environment of the shell that runs docker, "
                          f"and the script does not export {key}, so Docker passes nothing. Load it first "
                          "(`set -a; . service/.env; set +a`), or use --env-file service/.env.")
    for mount in attrs.get("Mounts") or []:
        kind, target, read_only = mount.get("Type", ""), str(mount.get("Destination", "")), not mount.get("RW", True)
        if kind == "bind":
            path = inside(folder, str(mount.get("Source", "")))
            written = f"-v {shown(str(path), folder)}:{target}{':ro' if read_only else ''}"
            if not path.exists():
                spec.notes.append(f"{written}: there is no {shown(str(path), folder)} in your exercise folder; "
                                  "Docker would make an empty folder there, so the check mounts nothing for it.")
                continue
            _note_read(spec, path, folder)
            spec.mounts.append(Mount("bind", target, path, read_only, written))
            if str(path) in spec.volumes:
                spec.notes.append(f"{written}: the same folder is mounted twice; the check mounts it once, at "
                                  f"{target}.")
            spec.volumes[str(path)] = {"bind": target, "mode": "ro" if read_only else "rw"}
        elif kind == "volume":
            anonymous = not _named(attrs, target)
            source = "" if anonymous else str(mount.get("Name", ""))
            written = (f"-v {source}:{target}" if source else f"-v {target}") + (":ro" if read_only else "")
            spec.mounts.append(Mount("volume", target, source, read_only, written))
        elif kind == "tmpfs":
            spec.mounts.append(Mount("tmpfs", target, written=f"--tmpfs {target}"))
    for target in host.get("Tmpfs") or {}:
        spec.mounts.append(Mount("tmpfs", target, written=f"--tmpfs {target}"))
    command = list(cfg.get("Cmd") or [])
    if command and command != [engine.BlankImage.COMMAND] and command[0].startswith("-"):
        raise RunCommandProblem(
            f"Docker reads everything after the image name ({image}) as the command to run inside the container, "
            f"so it would try to run `{command[0]}` and the container would not start. Put every option before "
            "the image.")
    if command and command != [engine.BlankImage.COMMAND]:
        spec.command = command
        spec.notes.append(f"The check starts the image's own CMD; the command after the image "
                          f"(`{' '.join(command)}`) is left out.")
    if cfg.get("Entrypoint"):
        spec.notes.append(f"The check starts the image's own ENTRYPOINT and CMD; `--entrypoint "
                          f"{' '.join(cfg['Entrypoint'])}` is left out.")
    restart = host.get("RestartPolicy") or {}
    left_out = [f"--restart {restart['Name']}" + (f":{restart['MaximumRetryCount']}"
                                                   if restart.get("MaximumRetryCount") else "")
                ] if restart.get("Name") not in (None, "", "no") else []
    left_out += [f"--name {spec.name}"] if spec.name else []
    if left_out:
        spec.notes.append(f"The check leaves out options that do not change what is graded: {', '.join(left_out)}.")
    limits = [option for key, option in (("Memory", "--memory"), ("NanoCpus", "--cpus"), ("CpuShares", "--cpu-shares"),
                                         ("PidsLimit", "--pids-limit")) if host.get(key)]
    if limits:
        spec.notes.append(f"The sandbox sets its own limits ({', '.join(limits)} left out).")
    published = [f"{b.get('HostPort') or ''}:{port.split('/')[0]}".lstrip(":")
                 for port, bindings in (host.get("PortBindings") or {}).items() for b in bindings or [{}]]
    if published:
        spec.notes.append(f"The check publishes no port (-p {', -p '.join(sorted(published))} left out): it asks "
                          "the service from inside the container.")
    if image.split("@")[0] not in ("cl-ex-ex3", "cl-ex-ex3:latest"):
        spec.notes.append(f"The command starts {image}; the check starts the image it built from ex3.Dockerfile "
                          "(cl-ex-ex3:latest), which is what the task asks your command to run.")


def _named(attrs: dict, target: str) -> bool:
    """Whether the volume at ``target`` was named by the command (``-v NAME:/x``), not anonymous (``-v /x``)."""
    host = attrs.get("HostConfig") or {}
    binds = [b for b in host.get("Binds") or [] if b.split(":")[1:2] == [target]]
    mounts = [m for m in host.get("Mounts") or [] if m.get("Target") == target and m.get("Source")]
    return bool(binds or mounts)


def _note_read(spec: RunSpec, path: Path, folder: Path) -> None:
    relative = path.relative_to(folder).as_posix()
    if relative not in spec.reads:
        spec.reads.append(relative)


def student_files(text: str, folder: Path, *, course_folders: tuple[str, ...] = ("service",),
                  limit: int = 16) -> tuple[str, ...]:
    """The student's own files that a run command mounts or reads, for a grader that grades a copy.

    A batch grader rebuilds the exercise folder from the course's files; a token file the
    student made (``-v ./secrets/api_token:/run/secrets/api_token`` with ``API_TOKEN_FILE``)
    must come along from their folder, and nothing else. This runs the command against the
    student's own folder (:func:`read_run_command`) and lists the regular files (no links) its
    container bind-mounts or its ``--env-file`` reads, outside the course's folders (for a
    mounted folder, the regular files directly in it), and the files of the folder that the
    script names by their path (a file it sources or reads with ``$(cat ...)``).

    Args:
        text: the run command.
        folder: the student's own exercise folder.
        course_folders: top-level folders the grader takes from the course instead.
        limit: at most this many files.

    Returns:
        Paths relative to ``folder``, POSIX form; none when the command cannot be used.

    Raises:
        EngineUnavailable: no Docker engine answers.
    """
    try:
        spec = read_run_command(text, folder)
    except RunCommandProblem:
        return ()
    root, found = folder.resolve(), []
    named = sorted(p.relative_to(root).as_posix() for p in itertools.islice(root.rglob("*"), 2000)
                   if p.is_file() and not p.is_symlink() and p.relative_to(root).as_posix() in text)
    for relative in [*spec.reads, *named]:
        if relative.split("/", 1)[0] in course_folders:
            continue
        path = root / relative
        candidates = sorted(path.iterdir()) if path.is_dir() and not path.is_symlink() else [path]
        for candidate in candidates:
            if candidate.is_file() and not candidate.is_symlink():
                found.append(candidate.relative_to(root).as_posix())
    return tuple(dict.fromkeys(found))[:limit]
