"""Name the cause of a failed build or of a service that does not start, from evidence.

Each function reads what the engine and the builder recorded (the failed
step's output, the container's ``State`` as the engine reports it, the sockets
that listen inside it) and returns a :class:`Cause`: a kind (stable, for tests
and statistics), one problem sentence and a hint that matches that cause.
Nothing here talks to the engine; :mod:`.service` gathers the evidence.

Messages explain, they do not dump: at most a few lines of the builder's or
the service's own output are quoted, and :func:`scrub` takes out what belongs
to the grading machine (resolver addresses, host paths, scratch folders).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import engine
from . import dockerfile as df

# --------------------------------------------------------------------------- kinds
# Build failures.
BUILD_TIMEOUT = "build-timeout"
NO_SPACE = "no-space"
BUILD_KILLED = "build-killed"  # a step killed for memory (exit code 137)
BUILD_PROCESS_LIMIT = "build-process-limit"
SYNTAX_LINE = "syntax-line"  # a `# syntax=` line makes the builder fetch a frontend image
SYNTAX_ERROR = "syntax-error"
BASE_UNAVAILABLE = "base-unavailable"
PLATFORM_UNAVAILABLE = "platform-unavailable"  # FROM --platform=... that this machine has no image for
NO_NETWORK = "no-network"
PLATFORM_ONLY_PACKAGE = "platform-only-package"
NO_WHEEL = "no-wheel"
NO_SUCH_PACKAGE = "no-such-package"
REQUIREMENTS_NOT_COPIED = "requirements-not-copied"
FILE_IGNORED = "file-ignored"  # COPY of a file that .dockerignore leaves out
FILE_MISSING = "file-missing"
LOG_CLIPPED = "log-clipped"
RUN_COMMAND_NOT_FOUND = "run-command-not-found"
APT_PACKAGE_MISSING = "apt-package-missing"
BUILD_OTHER = "build-other"
# Start failures.
OUT_OF_MEMORY = "out-of-memory"
COMMAND_NOT_FOUND = "command-not-found"
PATH_MISSING = "path-missing"
INTERPRETER_MISSING = "interpreter-missing"
MODULE_NOT_FOUND = "module-not-found"
APP_NOT_FOUND = "app-not-found"
EXITED_AT_ONCE = "exited-at-once"
EXITED = "exited"
KILLED = "killed"
LOOPBACK_ONLY = "loopback-only"
WRONG_PORT = "wrong-port"
WRONG_APP = "wrong-app"
NOTHING_LISTENS = "nothing-listens"
START_OTHER = "start-other"


@dataclass(frozen=True)
class Cause:
    """Why something failed.

    Attributes:
        kind: one of the kinds above (``"no-wheel"``, ``"loopback-only"``...).
        problem: what happened, one or two sentences for the student.
        hint: what to change, matching this cause.
    """

    kind: str
    problem: str
    hint: str


# --------------------------------------------------------------------------- where the book teaches the fix

_DOCKERFILE = "14-3-a-dockerfile-for-a-model-service"
_CACHING = "14-3-1-layer-caching"
_BASES = "14-3-2-base-images"

#: For each kind, the page of the book (a file of ``notebooks/`` without ``.md``) and the section heading
#: on it (as written after ``## ``) that teaches its fix. The class report names them beside each cause;
#: a test checks that every kind used above has an entry and that every section exists.
TAUGHT_IN: dict[str, tuple[str, str]] = {
    BUILD_TIMEOUT: (_CACHING, "When a step fails"),
    NO_SPACE: (_CACHING, "When a step fails"),
    BUILD_KILLED: (_DOCKERFILE, "The Dockerfile, line by line"),
    BUILD_PROCESS_LIMIT: (_CACHING, "When a step fails"),
    SYNTAX_LINE: (_DOCKERFILE, "The Dockerfile, line by line"),
    SYNTAX_ERROR: (_DOCKERFILE, "The Dockerfile, line by line"),
    BASE_UNAVAILABLE: (_BASES, "Two official bases, one service"),
    PLATFORM_UNAVAILABLE: ("14-2-images-and-containers", 'Where "runs the same" stops'),
    NO_NETWORK: (_DOCKERFILE, "The Dockerfile, line by line"),
    PLATFORM_ONLY_PACKAGE: ("14-1-shipping-the-environment", "Same lockfile, different machine"),
    NO_WHEEL: (_BASES, "Two official bases, one service"),
    NO_SUCH_PACKAGE: (_CACHING, "When a step fails"),
    REQUIREMENTS_NOT_COPIED: (_DOCKERFILE, "The Dockerfile, line by line"),
    FILE_IGNORED: (_CACHING, "What the builder receives: `.dockerignore`"),
    FILE_MISSING: (_CACHING, "What the builder receives: `.dockerignore`"),
    LOG_CLIPPED: (_CACHING, "When a step fails"),
    RUN_COMMAND_NOT_FOUND: (_BASES, "Two official bases, one service"),
    APT_PACKAGE_MISSING: (_BASES, "Two official bases, one service"),
    BUILD_OTHER: (_CACHING, "When a step fails"),
    OUT_OF_MEMORY: (_DOCKERFILE, "Run a container and call it"),
    COMMAND_NOT_FOUND: (_DOCKERFILE, "Stopping a container, and why exec form matters"),
    PATH_MISSING: (_BASES, "A multi-stage build"),
    INTERPRETER_MISSING: (_BASES, "A multi-stage build"),
    MODULE_NOT_FOUND: (_BASES, "A multi-stage build"),
    APP_NOT_FOUND: (_DOCKERFILE, "The Dockerfile, line by line"),
    EXITED_AT_ONCE: (_DOCKERFILE, "The Dockerfile, line by line"),
    EXITED: (_DOCKERFILE, "Run a container and call it"),
    KILLED: (_DOCKERFILE, "Stopping a container, and why exec form matters"),
    LOOPBACK_ONLY: (_DOCKERFILE, "The Dockerfile, line by line"),
    WRONG_PORT: (_DOCKERFILE, "Run a container and call it"),
    WRONG_APP: (_DOCKERFILE, "The service we are packaging"),
    NOTHING_LISTENS: (_DOCKERFILE, "The Dockerfile, line by line"),
    START_OTHER: (_DOCKERFILE, "Stopping a container, and why exec form matters"),
}


# --------------------------------------------------------------------------- scrubbing

_IPV4 = re.compile(r"\b(?!0\.0\.0\.0\b)(?!127\.0\.0\.1\b)\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_RESOLVER = re.compile(r"\s+on\s+\[?[0-9a-fA-F.:]+\]?:53\b")
_SCRATCH = re.compile(r"(?:/[\w.+-]+)*/(?:cl-ex-[\w-]+|containerlab-build-\w+|tmp\w{8})(?:/[\w.+-]+)*")


def scrub(text: str, *, paths: Iterable[str | Path] = ()) -> str:
    """Remove the grading machine's details from a message.

    Resolver addresses (``lookup github.com on 10.0.0.2:53``) are dropped and
    other IPv4 addresses become ``<address>``; each of ``paths`` (the build
    context), the course's scratch folder and the repository root are replaced
    by their last part; the grader's own temporary folders (``cl-ex-...``,
    ``containerlab-build-...``) are reduced to the file name. Paths inside the
    image (``/app``, ``/tmp/requirements.txt``) are left as they are.

    Args:
        text: the message.
        paths: host paths to hide, most specific first.

    Returns:
        The message without those details.
    """
    from .. import config

    text = _RESOLVER.sub("", text)
    text = _IPV4.sub("<address>", text)
    hidden = [Path(p) for p in paths] + [config.CACHE_DIR, config.ROOT]
    for path in sorted({str(p) for p in hidden if str(p) not in ("", "/", ".")}, key=len, reverse=True):
        text = text.replace(path + "/", "").replace(path, Path(path).name or path)
    return _SCRATCH.sub(lambda m: m.group(0).rsplit("/", 1)[-1], text)


# --------------------------------------------------------------------------- build failures

#: Packages that exist only for one operating system (PyPI has no Linux wheel nor a source build for Linux).
PLATFORM_ONLY = {
    "pywin32": "Windows", "pypiwin32": "Windows", "pywinpty": "Windows", "wmi": "Windows",
    "comtypes": "Windows", "windows-curses": "Windows", "pyreadline": "Windows", "pyreadline3": "Windows",
    "winshell": "Windows", "pywin32-ctypes": "Windows", "tensorflow-intel": "Windows",
    "pyobjc": "macOS", "pyobjc-core": "macOS", "appscript": "macOS", "tensorflow-macos": "macOS",
    "tensorflow-metal": "macOS", "rumps": "macOS",
}
_NETWORK = re.compile(
    r"Name or service not known|Temporary failure in name resolution|Could not resolve host|no such host"
    r"|Network is unreachable|Failed to establish a new connection|Connection timed out|ConnectTimeout"
    r"|getaddrinfo failed|unable to resolve host address|Could not connect to|Connection refused"
    r"|No route to host|nodename nor servname", re.IGNORECASE)
_BUILD_FROM_SOURCE = re.compile(
    r"Getting requirements to build wheel did not run successfully|metadata-generation-failed"
    r"|Failed building wheel|Failed to build |error: command '[^']*(?:gcc|cc|g\+\+)' failed"
    r"|(?:gcc|cc|g\+\+|make|cmake|cargo|rustc|pg_config)(?: executable)?:? (?:command )?not found"
    r"|pg_config executable not found|Could not find (?:a )?compiler|Unknown compiler|"
    r"subprocess-exited-with-error")
_URL = re.compile(r"https?://([A-Za-z0-9.-]+)")


def _step_output(log: str) -> tuple[str, list[str]]:
    """The failed step's id and its own output lines (BuildKit plain progress, timestamps removed)."""
    lines = log.splitlines()
    failed = next((m.group(1) for m in map(re.compile(r"^#(\d+) ERROR").match, lines) if m), "")
    if not failed:
        return "", []
    pattern = re.compile(rf"^#{failed} \d+\.\d+ ?(.*)$")
    return failed, [m.group(1) for m in map(pattern.match, lines) if m]


def _summary(log: str) -> list[str]:
    """The failed step's last output lines, as BuildKit repeats them in its error summary.

    The summary (between ``------`` lines, after `` > [step]:``) is kept even when the
    step's streamed output was clipped (docker/buildx#484), so it often still holds the error.
    """
    lines = log.splitlines()
    for start, line in enumerate(lines):
        if line.startswith(" > ") and line.rstrip().endswith(":") and start > 0 and lines[start - 1] == "------":
            block = []
            for inner in lines[start + 1:]:
                if inner == "------":
                    break
                block.append(re.sub(r"^\d+\.\d+ ?", "", inner))
            return block
    return []


def _final_error(log: str) -> str:
    errors = [line for line in log.splitlines() if line.startswith("ERROR:")]
    return errors[-1] if errors else ""


def _package_name(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ @]", requirement.strip().strip("'\""), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _from_line(parsed: df.Dockerfile | None, reference: str) -> df.Instruction | None:
    """The FROM instruction whose image is ``reference`` (``ARG`` defaults substituted)."""
    if parsed is None:
        return None
    bare = _bare(reference)
    for ins in parsed.instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if words and _bare(_substitute(parsed, words[0])) == bare:
                return ins
    return None


def _substitute(parsed: df.Dockerfile, word: str) -> str:
    args: dict[str, str] = {}
    for ins in parsed.instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
    return re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), ""), word)


def _bare(reference: str) -> str:
    """``docker.io/library/python:3.13-slim`` -> ``python:3.13-slim``."""
    ref = reference.strip()
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        ref = ref.removeprefix(prefix)
    return ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else ref + ":latest"


def build_cause(exc: engine.BuildFailed, *, timeout: float, context: Path | None = None,
                parsed: df.Dockerfile | None = None, local_images: Sequence[str] = (),
                platforms: dict[str, str] | None = None) -> Cause:
    """Name the cause of a failed build from the builder's record of it.

    Args:
        exc: the failure, with the builder's whole log.
        timeout: the build timeout, in seconds (to name it).
        context: the build context folder (to tell a missing file from one ``.dockerignore`` leaves out).
        parsed: the Dockerfile that was built.
        local_images: tags of the images on this engine (``python:3.13-slim`` ...), to name the ones there are.
        platforms: for local images, their platform (``linux/amd64``), to explain a pinned ``--platform``.

    Returns:
        The cause; kind :data:`BUILD_OTHER` with the step's last lines when none is recognised.
    """
    log = exc.log
    step = exc.step
    at = f" at step `{step}`" if step else ""
    _id, output = _step_output(log)
    clipped = next((ln for ln in output if "[output clipped, log limit" in ln), "")
    # After clipping, the streamed output stops; the error summary still has the step's last lines.
    output = [ln for ln in output if "[output clipped" not in ln] + _summary(log)
    text = "\n".join(output)
    final = _final_error(log)
    paths = [context] if context else []

    def quote(lines: Sequence[str], n: int = 3) -> str:
        kept = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(("note:", "hint:"))]
        return scrub("\n".join(kept[-n:]), paths=paths)

    if "took more than" in str(exc):
        return Cause(BUILD_TIMEOUT, f"The build ran for more than {timeout:.0f} s and was stopped.",
                     "Look for a step that never ends (a loop, a server started with RUN instead of CMD).")
    if "no space left on device" in log.lower():
        return Cause(NO_SPACE, "The build ran out of disk space.",
                     "A step writes far too much data; remove it, and keep large files out of the image.")
    if "exit code: 137" in final or re.search(r"^\s*Killed\s*$", text, re.MULTILINE):
        return Cause(BUILD_KILLED, f"The build's step{at.replace(' at step', '')} was killed (exit code 137): it used "
                     "more memory than a build may use here.",
                     "Install from the locked requirements.txt, one pip install, without compiling; a step that "
                     "needs gigabytes of memory has no place in this image.")
    if "Cannot fork" in text or "Resource temporarily unavailable" in text or "can't fork" in text.lower():
        return Cause(BUILD_PROCESS_LIMIT, f"The build failed{at}: the step could not start more processes (it "
                     "reached the build's process limit).",
                     "A step that starts processes without end (a loop, a fork bomb) cannot build here; remove it.")
    if "docker/dockerfile" in final and ("frontend" in final or "resolve source metadata" in final):
        return Cause(SYNTAX_LINE,
                     "The `# syntax=` line asks the builder to download a Dockerfile frontend image from a "
                     "registry, which this machine cannot reach: a labs channel or a release newer than the "
                     f"1.{df.BUILTIN_SYNTAX_MINOR} built into the engine.",
                     "Write `# syntax=docker/dockerfile:1`, or delete the line: the engine's own Dockerfile "
                     "frontend reads heredocs, `RUN --mount` and `COPY --link` and builds this service.")
    if "dockerfile parse error" in final.lower() or "unknown instruction" in final.lower():
        where = re.search(r"line (\d+): (.*)$", final)
        detail = f"line {where.group(1)}: {where.group(2)}" if where else quote([final], 1)
        hint = ("Each line starts with an instruction such as FROM, COPY, RUN or CMD; check the spelling "
                "and the line continuations (a `\\` at the end of every line but the last of a step).")
        return Cause(SYNTAX_ERROR, f"The Dockerfile has a syntax error ({detail}).", hint)

    metadata = re.search(r"load metadata for (\S+)", step) or re.search(
        r"failed to resolve source metadata for (\S+?):", final)
    if metadata or "pull access denied" in log:
        reference = _bare(metadata.group(1)) if metadata else ""
        here = [t for t in local_images if t.split(":")[0] == reference.split(":")[0]] or list(local_images)
        there = f" The images here are {', '.join(sorted(here)[:6])}." if here else ""
        line = _from_line(parsed, reference)
        pinned = re.search(r"--platform=(\S+)", line.args) if line else None
        if pinned and reference in (platforms or {}):
            return Cause(PLATFORM_UNAVAILABLE,
                         f"Line {line.line} pins --platform={pinned.group(1)}, but {reference} is here only for "
                         f"{(platforms or {})[reference]}, and no registry can be reached for another platform.",
                         "Leave --platform out of FROM: the builder then takes the image for the machine it "
                         "runs on.")
        return Cause(BASE_UNAVAILABLE,
                     f"The base image {reference or '(unknown)'} is not on this machine, and no image registry "
                     f"can be reached to fetch it.{there}",
                     "Start FROM an image that exists here: the course's python:3.13-slim "
                     "(`docker image ls` lists what there is).")

    if "Could not open requirements file" in text:
        name = re.search(r"No such file or directory: '([^']+)'", text)
        return Cause(REQUIREMENTS_NOT_COPIED,
                     f"pip found no {name.group(1) if name else 'requirements file'} in the image when step "
                     f"`{step}` ran.",
                     "COPY the requirements file into the image before the RUN that installs it, to the folder "
                     "the RUN works in (WORKDIR), or give pip its full path.")

    missing_pkg = re.search(r"No matching distribution found for (\S+)", text)
    if missing_pkg:
        name = _package_name(missing_pkg.group(1))
        if name in PLATFORM_ONLY:
            return Cause(PLATFORM_ONLY_PACKAGE,
                         f"pip found no {name} for Linux: {name} exists only for {PLATFORM_ONLY[name]}.",
                         f"Leave {name} out of what the image installs, or mark it "
                         f"`{name}; sys_platform == \"{'win32' if PLATFORM_ONLY[name] == 'Windows' else 'darwin'}\"` "
                         "in the requirements so that pip skips it on Linux.")
        if not _NETWORK.search(text):
            versions = re.search(r"\(from versions: ([^)]*)\)", text)
            if versions and versions.group(1).strip() != "none":
                return Cause(NO_WHEEL,
                             f"pip found no version of {name} that installs here: the version asked for has no "
                             "release for this Python and platform.",
                             "Install the versions the service's locked requirements.txt pins; they have wheels "
                             "for Python 3.13 on Linux.")
            return Cause(NO_SUCH_PACKAGE,
                         f"pip found no package {name} for this Python and platform (from versions: none).",
                         "Check the name against the service's requirements.txt, or install from that file.")

    if _NETWORK.search(text) or _NETWORK.search(final):
        hosts = [h for h in _URL.findall(step + "\n" + text + "\n" + final) if h not in ("0.0.0.0", "127.0.0.1")]
        host = hosts[0] if hosts else ""
        reason = next((ln.strip() for ln in (output or [final]) if _NETWORK.search(ln)), "")
        return Cause(NO_NETWORK,
                     (f"Step `{step}` downloads from {host or 'the internet'}" if step else
                      f"An ADD of a URL downloads from {host or 'the internet'}")
                     + f", and the build found no network to reach it ({scrub(_NETWORK.search(reason or final).group(0))}).",
                     "Builds here cannot download from the internet. Put what the image needs in the build "
                     "context and COPY it, and install the service's packages from its requirements.txt.")

    if _BUILD_FROM_SOURCE.search(text):
        built = (re.search(r"Failed to build (\S+)", text) or re.search(r"Building wheel for (\S+)", text)
                 or re.search(r"Downloading ([A-Za-z0-9_.-]+?)-\d[^ ]*\.(?:tar\.gz|zip)\b", text))
        collecting = re.findall(r"Collecting (\S+)", text)
        name = _package_name(built.group(1) if built else collecting[-1] if collecting else "a package")
        return Cause(NO_WHEEL,
                     f"pip found no ready-made wheel of {name} for this Python and platform, so it tried to "
                     "compile it from source, and that failed (the slim image has no compilers, by design).",
                     f"Install a version of {name} that has a wheel for Python 3.13 on Linux: the service's "
                     "locked requirements.txt pins such versions. Adding compilers only hides the problem.")

    # BuildKit 0.13 (Engine 26) writes `"/requirements-prod.txt": not found`; 0.8 wrote it without the colon.
    not_found = re.search(r"\"/?([^\"]+)\":? not found", final)
    if not_found and ("failed to compute cache key" in final or "failed to calculate checksum" in final):
        name = not_found.group(1)
        if context is not None and (context / name).exists():
            return Cause(FILE_IGNORED,
                         f"{name} is in the build context folder, but .dockerignore leaves it out, so step "
                         f"`{step}` cannot copy it.",
                         f"Copy only what the image needs; if it needs {name}, take it out of .dockerignore.")
        if "requirements" in name:
            return Cause(FILE_MISSING, f"A file the build needs is missing from the build context{at}.",
                         "Check the name and place of the requirements file you COPY and install from.")
        return Cause(FILE_MISSING, f"A file or folder the build copies is missing{at}: {name}.",
                     "Paths in COPY are relative to the build context folder; check them against its files.")

    command = re.search(r"(?:/bin/sh: \d+: |sh: \d+: )?(\S+): (?:command )?not found", text)
    if command and "exit code: 127" in final:
        return Cause(RUN_COMMAND_NOT_FOUND,
                     f"Step `{step}` runs {command.group(1)}, which the image does not have.",
                     f"Use what the image has (python, pip), or install {command.group(1)} with apt-get in the "
                     "same RUN before using it.")
    apt = re.search(r"Unable to locate package (\S+)|Package '([^']+)' has no installation candidate", text)
    if apt:
        name = apt.group(1) or apt.group(2)
        return Cause(APT_PACKAGE_MISSING,
                     f"Debian 13, which the slim image is built on, has no package {name}.",
                     "The service needs no system packages; if yours does, look up its current Debian name "
                     "(packages.debian.org, suite trixie).")
    if clipped:
        limit = re.search(r"log limit (\S+) reached", clipped)
        code = re.search(r"exit code: (\d+)", final)
        last = quote(_summary(log), 3)
        return Cause(LOG_CLIPPED,
                     f"The build failed{at}{f' with exit code {code.group(1)}' if code else ''}, but the builder "
                     f"stopped recording that step's output at its limit ({limit.group(1) if limit else '1MiB'}; "
                     "a BuildKit limit, docker/buildx#484), so the error itself may not be in the log."
                     + (f" Its last lines:\n{last}" if last else ""),
                     "Make the step print less (`pip install --quiet`, `--progress-bar off`) or split it into "
                     "smaller RUN steps, then build again: the error will then be shown.")
    return Cause(BUILD_OTHER, f"The build failed{at}: {quote(output or exc.error_lines or log.splitlines())}",
                 "Read the error above, fix that step, and run the check again.")


# --------------------------------------------------------------------------- start failures

#: Packages the service imports: a ModuleNotFoundError for one of them means the requirements are not installed
#: in the Python that runs the server.
SERVICE_PACKAGES = {"fastapi", "uvicorn", "pandas", "sklearn", "numpy", "scipy", "pydantic", "starlette",
                    "joblib", "psycopg", "anyio", "h11", "click"}
_LOOPBACK = {"127.0.0.1", "::1"}
_ALL = {"0.0.0.0", "::"}


def _seconds_up(state: dict) -> float | None:
    try:
        start = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z"))
        end = datetime.fromisoformat(state["FinishedAt"][:26].rstrip("Z"))
    except (KeyError, ValueError, TypeError):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else 0.0


#: Lines of a container's output that say nothing about what went wrong: the access log of the
#: check's own requests, and uvicorn's routine start and stop messages.
_ROUTINE = re.compile(
    r'"(?:GET|POST|HEAD) /\S* HTTP/1\.[01]" \d{3}'
    r"|Started server process|Waiting for application (?:startup|shutdown)|Application (?:startup|shutdown) "
    r"complete|Uvicorn running on|Shutting down|Finished server process|Started reloader process")


def relevant_output(logs: str, n: int = 4) -> str:
    """The last ``n`` lines of a container's output that concern a failure, machine details taken out.

    Blank lines, the access log of the check's own requests (``"GET /health HTTP/1.1" 200``)
    and uvicorn's routine start and stop messages are left out; tracebacks and error
    lines stay. Line breaks are kept (the checklist shows them as lines).

    Args:
        logs: the container's output.
        n: at most this many lines.

    Returns:
        The lines, joined by newlines; ``""`` when nothing is left.
    """
    lines = [ln for ln in logs.strip().splitlines() if ln.strip() and not _ROUTINE.search(ln)]
    return scrub("\n".join(lines[-n:]))


def start_cause(*, state: dict, logs: str = "", listening: Sequence[tuple[str, int]] = (), port: int = 80,
                health_status: int | None = None, waited: float = 0.0, memory_bytes: int | None = None,
                command: Sequence[str] = ()) -> Cause:
    """Name why a container of the service did not answer ``GET /health``.

    Args:
        state: the container's ``State`` as the engine reports it (``Status``, ``ExitCode``,
            ``OOMKilled``, ``Error``, ``StartedAt``, ``FinishedAt``).
        logs: its last output lines.
        listening: the ``(address, port)`` pairs listening inside it (while it runs).
        port: the port the service must answer on.
        health_status: the HTTP status ``/health`` answered with, when something answered.
        waited: seconds the check waited for an answer.
        memory_bytes: the container's memory limit, to name it.
        command: the image's command (entrypoint and CMD), to name it.

    Returns:
        The cause, with a hint for that cause.
    """
    error = str(state.get("Error") or "")
    code = state.get("ExitCode")
    status = state.get("Status", "")
    shown = " ".join(command) if command else "its CMD"
    tail = relevant_output(logs)
    output = f" Its last output:\n{tail}" if tail else ""
    limit = f"{memory_bytes / 1024**3:g} GiB" if memory_bytes else "its memory limit"

    if state.get("OOMKilled"):
        return Cause(OUT_OF_MEMORY, f"The engine killed the container for using more than {limit} of memory "
                     "(OOMKilled).",
                     "Start one server process (no --workers N) and load nothing large when it starts: the "
                     "service itself needs a few hundred MB.")
    not_in_path = re.search(r'exec: "([^"]+)": executable file not found in \$PATH', error)
    if not_in_path:
        name = not_in_path.group(1)
        if " " in name:
            return Cause(COMMAND_NOT_FOUND,
                         f"The container could not start: the whole line \"{name}\" was taken as the name of one "
                         "program.",
                         "In exec form every word is its own string: [\"uvicorn\", \"src.customer_value.api:app\", "
                         "\"--host\", \"0.0.0.0\", \"--port\", \"80\"].")
        return Cause(COMMAND_NOT_FOUND,
                     f"The container could not start: there is no program {name} on the image's PATH.",
                     f"Check the spelling of the first word of CMD (or ENTRYPOINT), and that {name} is installed "
                     "in the image: uvicorn comes with the service's requirements.")
    stat_missing = re.search(r'exec: "([^"]+)": stat \S+: no such file or directory', error)
    if stat_missing:
        return Cause(PATH_MISSING,
                     f"The container could not start: {stat_missing.group(1)} does not exist in the image.",
                     "Use a path that exists in the final image (a multi-stage build has only what it copies "
                     "from other stages), or the program's name alone so that PATH finds it.")
    interpreter = re.search(r"exec (\S+): no such file or directory", logs + "\n" + error)
    if interpreter:
        return Cause(INTERPRETER_MISSING,
                     f"{interpreter.group(1)} is in the image, but the interpreter named on its first line "
                     "(#!) is not.",
                     "Scripts of a virtual environment point at the Python that made it: copy the venv into an "
                     "image whose Python lives at the same path (same base image family), or create it there.")
    if error:
        return Cause(START_OTHER, f"The container could not start: {scrub(error)}",
                     "Check CMD and ENTRYPOINT: the engine could not start the program they name.")
    if code == 137 and status in {"exited", "dead"}:
        return Cause(KILLED, "The container was killed (exit code 137) before it answered." + output,
                     "Something stopped the server from outside; start it with CMD and keep it in the foreground.")
    shell_missing = re.search(r"(?:^|\n)(?:/bin/)?sh: \d+: (\S+): not found", logs)
    if shell_missing and code == 127:
        return Cause(COMMAND_NOT_FOUND,
                     f"The container's shell found no program {shell_missing.group(1)} (exit code 127).",
                     f"Check the spelling of {shell_missing.group(1)} and that it is installed in the image; "
                     "write CMD in exec form, a JSON list.")
    module = re.findall(r"No module named '([^']+)'", logs)
    app_module = re.search(r'Could not import module "([^"]+)"', logs)
    if module and module[-1].split(".")[0] in SERVICE_PACKAGES:
        name = module[-1].split(".")[0]
        return Cause(MODULE_NOT_FOUND,
                     f"The service stopped: the Python that runs it has no module {name}." + output,
                     "Install the requirements into the same Python the CMD runs: in a multi-stage build, copy "
                     "the whole environment and put its bin/ folder first on PATH.")
    if module or app_module:
        name = app_module.group(1) if app_module else module[-1]
        return Cause(MODULE_NOT_FOUND,
                     f"The server could not import the app's module {name}." + output,
                     "uvicorn imports the app by its module path from the working folder: with the code at "
                     "/app/src/customer_value/api.py and WORKDIR /app that is src.customer_value.api:app.")
    attribute = re.search(r'Attribute "([^"]+)" not found in module "([^"]+)"', logs)
    if attribute:
        return Cause(APP_NOT_FOUND,
                     f"The module {attribute.group(2)} has no {attribute.group(1)}.",
                     "The service's app object is called app: src.customer_value.api:app.")
    no_file = re.search(r"can't open file '([^']+)'", logs)
    if no_file:
        return Cause(PATH_MISSING, f"The service stopped: {no_file.group(1)} does not exist in the image." + output,
                     "Start the server with uvicorn and the app's module path (src.customer_value.api:app); "
                     "check WORKDIR and what you COPY.")
    if status in {"exited", "dead"}:
        up = _seconds_up(state)
        when = f" after {up:.1f} s" if up is not None else ""
        if code == 0 and (up is None or up < 10):
            return Cause(EXITED_AT_ONCE,
                         f"The container's main process ({shown}) ended at once (exit code 0{when}) without "
                         "starting a server.",
                         "CMD must start the web server, which keeps running: uvicorn with the service's app, "
                         "host 0.0.0.0 and port 80. A bare python or shell ends when it has no input.")
        return Cause(EXITED, f"The service stopped with exit code {code}{when} before it answered." + output,
                     "The last lines of its output say why; fix that and check again.")
    others = [(a, p) for a, p in listening if a != "127.0.0.11"]
    if others and not any(p == port and a in _ALL for a, p in others):
        at = ", ".join(f"{a}:{p}" for a, p in others)
        on_port_loopback = any(p == port and a in _LOOPBACK for a, p in others)
        if on_port_loopback or all(a in _LOOPBACK for a, _ in others):
            fix = ("Start the server so that it listens on all interfaces: --host 0.0.0.0 (uvicorn's default, "
                   "127.0.0.1, is reachable only from inside the container)")
            if not on_port_loopback:
                fix += f", and on port {port}: --port {port}"
            return Cause(LOOPBACK_ONLY, f"The server listens on {at} only: the loopback interface, which nothing "
                         "outside the container can reach.", fix + ".")
        return Cause(WRONG_PORT, f"The server listens on {at}, not on port {port}.",
                     f"Start it on port {port} inside the container (--port {port}): that is the port the task "
                     "asks for and the check connects to.")
    if health_status is not None:
        return Cause(WRONG_APP, f"Something answers on port {port}, but GET /health answered HTTP {health_status}.",
                     "Serve the service's own app, src.customer_value.api:app, unchanged.")
    return Cause(NOTHING_LISTENS,
                 f"After {waited:.0f} s the container still runs ({shown}), but nothing listens on any port.",
                 "The program CMD starts is not the web server, or it waits for something before serving: "
                 "start uvicorn with the service's app directly.")
