"""The checks of any project's Dockerfile: the measured checks that do not need the course's service.

Exercise 1 says: containerise the course's model service, or one of your own.
The exercise checks know the service (its port, its endpoints, its answers);
these know nothing of it, and work on any folder with a Dockerfile. They build
the image, rebuild it after a code-only edit, look through its layers, and run
it once in the same sandbox as grading (:class:`containerlab.engine.SandboxLimits`):

- ``builds``: it builds (a failure named as for the exercises, :mod:`.causes`);
- ``small-base``: the final stage's base image is a slim or otherwise small one;
- ``deps-reused``: after a code-only edit the dependency layer comes from the cache
  (:mod:`.cache`), else the instruction that breaks the cache;
- ``image-size``: the size of the base and of each big layer, and what the image's own
  layers carry without needing it (pip's cache, apt's lists, compilers; test folders
  are named with their saving but do not fail the check);
- ``no-secret-in-image``, ``no-data-in-image``: the scan of exercise 3 (:mod:`.baked`)
  for the values of the context's ``.env`` files and its data files, with
  ``.dockerignore`` advice when the build context carries them;
- ``keeps-running``: a container starts and keeps running (a job may finish with exit code 0);
- ``answers-http``: with a port (given, from ``EXPOSE``, or the one it listens on) it
  answers HTTP at the container's own address, that is on all interfaces;
- ``stops-fast``: ``docker stop`` takes less than :data:`STOP_LIMIT` seconds (a slower stop
  is a failure when the engine had to kill the program, a note when it ended by itself);
- ``healthcheck``: its ``HEALTHCHECK``, if any, passes;
- ``non-root``: it runs as a user other than root;
- ``lint``: hadolint's findings, grouped, with the house style's reasons (:mod:`.lint`).

Each result is a pass, a failure or a note (a check that does not apply, or a
right-but-risky choice), worth one point when it passes, nothing as a note.
Nothing is left on the engine but the image (and that too with ``remove_image``).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from .. import config, engine, layers, scan
from . import CheckResult, CheckResults, baked, cache, causes, lint, results, service
from . import dockerfile as df
from . import progress as _progress
from .progress import Progress
from .runcommand import RunCommandProblem, read_env_file

#: ``CheckResults.exercise`` of a project check.
EXERCISE = "project"
#: A ``docker stop`` that takes this many seconds or more failed: the signal did not reach the program.
STOP_LIMIT = 2.0
#: Seconds the container is watched before it counts as running (a job may finish before).
SETTLE_SECONDS = 3.0
#: A base image at most this big (bytes, as the engine reports it) counts as small whatever its name.
SMALL_BASE_BYTES = 200_000_000
#: Words in a base image's tag or name that mean a small variant.
SMALL_WORDS = ("slim", "alpine", "distroless", "minimal", "micro", "busybox")
#: A layer at least this big (bytes) is listed on its own in the size breakdown.
BIG_LAYER_BYTES = 1_000_000
#: Removable files of one kind worth at least this many bytes fail ``image-size``.
WASTE_MIN_BYTES = 1_000_000
#: The dependency layer must be at least this big (bytes) to be judged: smaller, the project installs nothing.
DEPS_MIN_BYTES = 1_000_000
#: Secret values shorter than this (characters) are not looked for (too likely by chance).
SECRET_MIN_CHARS = 8
#: What each kind of removable file is, and the fix; ``None``: named with its saving, never a failure.
FIXES: dict[str, tuple[str, str, bool]] = {
    layers.PIP_CACHE: ("pip's download cache", "give pip install --no-cache-dir", True),
    layers.APT_LISTS: ("apt's package lists", "end the RUN that runs apt-get with rm -rf /var/lib/apt/lists/*", True),
    layers.APT_ARCHIVES: ("apt's caches (/var/cache/apt)", "end the RUN that runs apt-get with apt-get clean", True),
    layers.COMPILERS: ("a C compiler", "compile in a builder stage and COPY --from it only the result", True),
    layers.TEST_FOLDERS: ("test folders", "delete the packages' tests/ folders in the RUN that installs them, "
                          "and keep your own tests out with .dockerignore", False),
}

DESCRIPTIONS = {
    "builds": "The image builds from the Dockerfile",
    "small-base": "The final stage starts from a slim or otherwise small base image",
    "deps-reused": "After a code-only edit, the rebuild reuses the dependency layer",
    "image-size": "The image's own layers carry no caches or build tools it does not need",
    "no-secret-in-image": "No layer, config entry or history step of the image holds a secret",
    "no-data-in-image": "No layer of the image holds a data file of the build context",
    "keeps-running": "A container starts and keeps running (a job: finishes with exit code 0)",
    "answers-http": "The container answers HTTP on all interfaces",
    "stops-fast": f"docker stop takes less than {STOP_LIMIT:g} seconds",
    "healthcheck": "The image's HEALTHCHECK passes",
    "non-root": "The container runs as a user other than root",
    "lint": "hadolint finds nothing to fix in the Dockerfile",
}


class ProjectProblem(ValueError):
    """The folder cannot be checked at all (it does not exist, or has no Dockerfile)."""


def _result(name: str, passed: bool, message: str = "", hint: str = "", *,
            pressure: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], passed, 1, message, "" if passed else hint, pressure=pressure)


def _note(name: str, message: str, hint: str = "") -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], True, 0, message, hint, note=True)


def _mb(size: int) -> str:
    """A size for reading: ``12 kB``, ``5.4 MB``, ``185 MB`` (powers of ten, as ``docker image ls``)."""
    if size < 1e6:
        return f"{size / 1e3:.0f} kB"
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"


def default_tag(folder: Path) -> str:
    """The tag of a project's image: ``cl-check-<folder name>:<this user and clone>`` (:data:`config.INSTANCE`)."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")[:40] or "project"
    return f"cl-check-{name}:{config.INSTANCE}"


# --------------------------------------------------------------------------- static and image checks


def small_base(parsed: df.Dockerfile) -> CheckResult:
    """``small-base``: the final stage's base image, with its size when the engine has it."""
    base = parsed.final_base()
    if not base or base == "scratch":
        return _result("small-base", True, "The final stage starts FROM scratch: nothing but what you copy.")
    found = engine.image(base)
    size = engine.image_size(base) if found is not None else None
    shown = f"FROM {base}" + (f" ({_mb(size)})" if size is not None else "")
    name = base.split("@", 1)[0].rsplit("/", 1)[-1]
    if any(word in re.split(r"[:\-_.]", name) for word in SMALL_WORDS) or (size is not None and size <= SMALL_BASE_BYTES):
        return _result("small-base", True, f"The final stage starts {shown}.")
    return _result("small-base", False, f"The final stage starts {shown}.",
                   "Start the final stage from a slim variant (e.g. python:3.13-slim): the full image carries "
                   "compilers and tools a running program never uses. If a package must be compiled, do that "
                   "in a builder stage and copy only the result into the slim final stage.")


def _last_copy_sources(parsed: df.Dockerfile) -> list[str]:
    """The sources of the Dockerfile's last ``COPY``/``ADD`` from the build context (not ``--from`` a stage)."""
    copies = [ins for ins in parsed.instructions if ins.keyword in ("COPY", "ADD") and df.copy_sources(ins)]
    return df.copy_sources(copies[-1]) if copies else []


def file_to_edit(parsed: df.Dockerfile, sent: Sequence[tuple[str, int]]) -> str | None:
    """A source file the Dockerfile copies last, to edit as a code change (a ``.py`` file when there is one).

    Args:
        parsed: the Dockerfile.
        sent: the files of the build context that reach the builder (:func:`containerlab.layers.context_files`).

    Returns:
        Its path relative to the context, or ``None`` when the last copy takes no file of the context
        but dependency lists.
    """
    sources = [s.removeprefix("./").rstrip("/") for s in _last_copy_sources(parsed)]
    candidates = []
    for path, _size in sent:
        for source in sources:
            if source in ("", ".") or path == source or path.startswith(source + "/") or fnmatch.fnmatch(path, source):
                candidates.append(path)
                break
    code = [p for p in candidates if not df.is_dependency_manifest(p) and not p.endswith((".json", ".ipynb"))
            and PurePosixPath(p).name not in (".dockerignore", "Dockerfile")]
    if not code:
        return None
    return sorted(code, key=lambda p: (not p.endswith(".py"), p.count("/"), p))[0]


def _line_of(parsed: df.Dockerfile, instruction: str) -> str:
    """`` (line N)`` for the Dockerfile instruction a history step shows, or ``""`` when none matches."""
    for ins in parsed.instructions:
        if re.sub(r"\s+", " ", f"{ins.keyword} {ins.args}") == instruction:
            return f" (line {ins.line})"
    return ""


def dependency_reuse(image: str, parsed: df.Dockerfile, context: Path, sent: Sequence[tuple[str, int]]) -> CheckResult:
    """``deps-reused``: edit a file the Dockerfile copies last, rebuild, and name what broke the cache."""
    edited = file_to_edit(parsed, sent)
    if edited is None:
        return _note("deps-reused", "The last COPY takes no source file to edit (only dependency lists, or files "
                     ".dockerignore leaves out), so a code edit could not be tried.",
                     "Copy your code in its own COPY, after the step that installs the dependencies.")
    found = cache.rebuild_after_edit(image, parsed, context, edited)
    if found.outcome == cache.BUILD_FAILED:
        assert found.cause is not None
        return _result("deps-reused", False, f"After an edit of {edited} the rebuild failed: {found.cause.problem}",
                       "The Dockerfile must build from any copy of the folder. " + found.cause.hint,
                       pressure=found.pressure)
    if found.deps is None or found.deps.size_bytes < DEPS_MIN_BYTES:
        return _note("deps-reused", f"No step installs dependencies of note (the largest step adds "
                     f"{_mb(found.deps.size_bytes if found.deps else 0)}), so there is no dependency layer to keep.")
    deps = found.deps
    if not found.rebuilt:
        return _note("deps-reused", f"An edit of {edited} changed no step of the build, so it tells nothing.",
                     "Check that .dockerignore does not leave your code out of the build context.")
    if found.reused:
        return _result("deps-reused", True, f"After an edit of {edited} the dependency layer ({_mb(deps.size_bytes)}, "
                       f"{deps.instruction!r}) came from the cache; the rebuild ran only: "
                       + "; ".join(repr(step) for step in found.rebuilt))
    breaker = next(s for s in found.steps if not s.reused)
    return _result("deps-reused", False,
                   f"After an edit of {edited}, {breaker.instruction!r}{_line_of(parsed, breaker.instruction)} ran "
                   f"again, and every step after it: the dependency layer ({_mb(deps.size_bytes)}, "
                   f"{deps.instruction!r}) was installed again.",
                   f"{breaker.instruction!r} breaks the cache: it copies the code before the dependencies are "
                   "installed. Copy only the dependency list (requirements.txt) first, install it, and copy the "
                   "code after: a step is reused only when nothing it depends on, nor any step before it, changed.")


def size_breakdown(image: str, base: str | None) -> CheckResult:
    """``image-size``: the base, each big layer, and what the image's own layers carry without needing it."""
    total = engine.image_size(image)
    frame = layers.layer_breakdown(image, base=base if base and engine.image(base) is not None else None)
    shown = [f"{row.instruction[:60]} {_mb(int(row.size_bytes))}" for row in frame.itertuples()
             if row.size_bytes >= BIG_LAYER_BYTES or row.instruction.startswith("base image")]
    parts = [f"{_mb(total)} in all: " + "; ".join(shown) + "."]
    all_layers = engine.image_layers(image)
    base_layers = engine.image_layers(base) if base and engine.image(base) is not None else []
    own_from = len(base_layers) if all_layers[:len(base_layers)] == base_layers else 0
    contents = scan.layer_contents(image)
    instructions = layers.layer_instructions(image)
    waste: dict[str, int] = {}
    biggest: tuple[int, str, dict[str, int]] = (-1, "", {})
    for index in range(own_from, len(contents)):
        files = contents[index]
        found = layers.removable_bytes(files)
        for kind, size in found.items():
            waste[kind] = waste.get(kind, 0) + size
        size = sum(s for _, s in files)
        if size > biggest[0]:
            biggest = (size, instructions[index] if index < len(instructions) else "", found)
    if biggest[0] >= 0:
        inside = ", ".join(f"{FIXES[k][0]} {_mb(v)}" for k, v in sorted(biggest[2].items(), key=lambda kv: -kv[1]))
        parts.append(f"The biggest own layer, {biggest[1][:80]!r} ({_mb(biggest[0])}), holds "
                     f"{inside or 'nothing removable that the check knows of'}.")
    fixes = [(FIXES[k], v) for k, v in sorted(waste.items(), key=lambda kv: -kv[1]) if v >= WASTE_MIN_BYTES]
    failing = [(fix, v) for fix, v in fixes if fix[2]]
    savings = [f"{what}: {fix} (saves {_mb(v)})" for (what, fix, _fails), v in fixes]
    if savings:
        parts.append("Could save " + "; ".join(savings) + ".")
    message = " ".join(parts)
    if failing:
        return _result("image-size", False, message,
                       "Remove what the program never uses in the same RUN that makes it: a later RUN only hides "
                       "files, and the earlier layer keeps their bytes.")
    return _result("image-size", True, message)


def _context_leaks(sent: Sequence[tuple[str, int]]) -> list[str]:
    """Files of the build context that reach the builder and look like secrets or data."""
    out = []
    for path, size in sent:
        name = PurePosixPath(path).name.lower()
        secret = name in scan.SECRET_FILE_NAMES or name == ".env" or name.endswith(".env") or \
            (name.startswith(".env.") and not _is_example(name))
        if secret or name.endswith(scan.DATA_SUFFIXES):
            out.append(path)
    return out


def _is_example(name: str) -> bool:
    return any(word in name for word in ("example", "sample", "template"))


def secret_values(context: Path) -> list[str]:
    """The values of the context's environment files (``.env``, ``*.env``, ``.env.*`` but examples), long enough to look for."""
    values: set[str] = set()
    for path in context.rglob("*"):
        name = path.name.lower()
        if path.is_file() and (name == ".env" or name.endswith(".env") or name.startswith(".env.")) \
                and not _is_example(name):
            try:
                values |= {v for v in read_env_file(path).values() if len(v) >= SECRET_MIN_CHARS}
            except RunCommandProblem:
                continue
    return sorted(values)


def baked_checks(image: str, context: Path, sent: Sequence[tuple[str, int]]) -> tuple[list[CheckResult], list[str]]:
    """``no-secret-in-image`` and ``no-data-in-image``, and ``.dockerignore`` advice when the context sends such files.

    Returns:
        The two results (a failed one's hint ends with the advice), and the advice as a note
        when both passed although the context sends such files (a later ``COPY . .`` would take them in).
    """
    data = baked.data_files((p for p in context.rglob("*") if p.name.lower().endswith(scan.DATA_SUFFIXES)), context)
    checked = baked.scan_checks(image, values=secret_values(context), data=data, make=_result,
                                data_source="the build context's data files")
    leaks = _context_leaks(sent)
    if not leaks:
        return checked, []
    advice = (f"The build context sends {', '.join(leaks[:5])}{' ...' if len(leaks) > 5 else ''} to the builder: "
              "list them in .dockerignore, so that no COPY can take them in.")
    if all(r.passed for r in checked):
        return checked, [advice]
    return [replace(r, hint=f"{r.hint} {advice}") if not r.passed else r for r in checked], []


# --------------------------------------------------------------------------- the running container


def _exposed_port(image_config: Mapping) -> int | None:
    """The first TCP port of the image's ``EXPOSE``, or ``None``."""
    for key in sorted((image_config.get("ExposedPorts") or {}), key=lambda k: int(k.split("/")[0])):
        number, _, proto = key.partition("/")
        if proto in ("", "tcp"):
            return int(number)
    return None


def _watch(container: engine.ContainerRef, seconds: float) -> dict:
    """Watch a container for ``seconds`` (polling its state); return its ``State``, early when it ends."""
    deadline = time.monotonic() + seconds
    while True:
        state = engine.container_state(container)
        if state.get("Status") in ("exited", "dead") or time.monotonic() >= deadline:
            return state
        time.sleep(0.25)


def _ended(state: dict, logs: str, limits: engine.SandboxLimits) -> str:
    """A sentence saying how a container ended, with its last output lines."""
    if state.get("OOMKilled"):
        return f"The engine killed it for using more than {limits.memory_bytes / 1024**3:g} GiB of memory."
    tail = causes.relevant_output(logs)
    return (f"It ended with exit code {state.get('ExitCode')}." + (f" Its last output:\n{tail}" if tail else ""))


def runtime_checks(image: str, *, port: int | None = None, health_path: str = "/",
                   command: Sequence[str] | None = None, environment: Mapping[str, str] | None = None,
                   limits: engine.SandboxLimits = engine.SandboxLimits(), settle: float = SETTLE_SECONDS,
                   progress: Progress | None = None) -> list[CheckResult]:
    """Run one container of ``image`` in the sandbox and check it starts, answers, stops, is healthy and not root.

    Args:
        image: the image tag.
        port: the container port the program serves HTTP on; ``None``: the image's ``EXPOSE``,
            else the port it is seen listening on, else none (a job).
        health_path: the path asked for (``GET``); any answer below 500 counts.
        command: arguments replacing the image's ``CMD``; ``None`` keeps it.
        environment: environment variables for the container.
        limits: the sandbox limits (as grading); ``ready_timeout`` is how long to wait for an answer.
        settle: seconds the container is watched before it counts as running.
        progress: gets a phase event as the container starts (:mod:`.progress`).

    Returns:
        ``keeps-running``, ``answers-http``, ``stops-fast``, ``healthcheck``, ``non-root``.

    Raises:
        engine.EngineUnavailable: no engine answers.
    """
    found = engine.image(image)
    image_config = found.config if found is not None else {}
    user = str(image_config.get("User") or "").strip()
    if user in service.ROOT_USERS:
        root = _note("non-root", "The image sets no USER other than root, so the program runs as root.",
                     "Add an unprivileged user (useradd) and switch to it with USER before CMD: someone who breaks "
                     "into the program can then not change its code and packages. It is a note, not a failure.")
    else:
        root = _result("non-root", True, f"The container runs as {user}.")
    expected = port if port is not None else _exposed_port(image_config)
    _progress.emit(progress, _progress.PHASE, f"Starting a container of {image}")
    try:
        with engine.sandboxed_container(image, environment=environment, limits=limits,
                                        command=list(command) if command is not None else None,
                                        labels={service.CHECK_LABEL: "project"},
                                        name_prefix=service.SANDBOX_PREFIX) as container:
            state = _watch(container, settle)
            if state.get("Status") != "running":
                return [*_after_exit(state, engine.logs(container), expected, limits), root]
            running = _result("keeps-running", True, f"The container is still running after {settle:g} s.")
            http, health = _serve_checks(container, image_config, expected, health_path, limits)
            if engine.container_state(container).get("Status") != "running":
                state = engine.container_state(container)
                return [_result("keeps-running", False, "The container stopped while it was being checked. "
                                + _ended(state, engine.logs(container), limits),
                                "A service must keep running: its last output says why it stopped."),
                        http, health, _note("stops-fast", "It had stopped already."), root]
            seconds, stopped = engine.stop_seconds(container)
            stops = _stop_result(seconds, image_config, killed=stopped.get("ExitCode") == 137)
            return [running, http, stops, health, root]
    except engine.EngineUnavailable:
        raise
    except engine.EngineError as exc:
        return [_result("keeps-running", False, f"The engine could not start the container: {causes.scrub(str(exc))}",
                        "Check CMD and ENTRYPOINT: the program they name must exist in the image."),
                _note("answers-http", "Not checked: the container did not start."),
                _note("stops-fast", "Not checked: the container did not start."),
                _note("healthcheck", "Not checked: the container did not start."), root]


def _after_exit(state: dict, logs: str, expected: int | None, limits: engine.SandboxLimits) -> list[CheckResult]:
    """The results for a container that ended within the settle time: a finished job, or a failure."""
    how = _ended(state, logs, limits)
    skipped = [_note("stops-fast", "Not checked: there was no running container to stop."),
               _note("healthcheck", "Not checked: there was no running container.")]
    if state.get("ExitCode") == 0 and not state.get("OOMKilled") and expected is None:
        return [_result("keeps-running", True, "The container did its work and finished with exit code 0, as a "
                        "job does."),
                _note("answers-http", "No port was given, the image EXPOSEs none, and the job finished: nothing "
                      "to ask over HTTP.", "If it is a service, it must keep running: pass --port."), *skipped]
    wanted = (f" Port {expected} was expected to answer (EXPOSE or --port), so it should keep running."
              if expected is not None else "")
    return [_result("keeps-running", False, f"The container stopped at once. {how}{wanted}",
                    "Its last output says why it stopped; a service must keep its server in the foreground "
                    "(exec-form CMD)."),
            _result("answers-http", False, "The container stopped before anything could answer.",
                    "Make it keep running first.") if expected is not None else
            _note("answers-http", "Not checked: the container stopped."), *skipped]


def _serve_checks(container: engine.ContainerRef, image_config: Mapping, expected: int | None, health_path: str,
                  limits: engine.SandboxLimits) -> tuple[CheckResult, CheckResult]:
    """``answers-http`` and ``healthcheck`` for a running container."""
    port = expected
    if port is None:
        listening = [(a, p) for a, p in engine.listening_sockets(container) if a != "127.0.0.11"]
        open_ = [p for a, p in listening if a in ("0.0.0.0", "::")]
        port = open_[0] if open_ else (listening[0][1] if listening else None)
    if port is None:
        http = _note("answers-http", "No port was given, the image EXPOSEs none, and nothing listens on a port: "
                     "a job or a worker, not a web service.", "If it serves HTTP, pass --port (or add EXPOSE).")
    else:
        how = "given or from EXPOSE" if expected is not None else "found listening"
        try:
            answer = engine.wait_http_inside(container, health_path, port=port, timeout=limits.ready_timeout,
                                             below=500)
            http = _result("answers-http", True, f"GET {health_path} on port {port} ({how}) answered HTTP "
                           f"{answer.status} at the container's own address, so on all interfaces.")
        except engine.ContainerFailed as exc:
            http = _result("answers-http", False, causes.scrub(str(exc)),
                           "Listen on all interfaces (host 0.0.0.0, not 127.0.0.1: the loopback interface cannot "
                           f"be reached from outside the container) and on port {port}, or give the port the "
                           "program uses with --port.")
    run = service.run_healthcheck(container, image_config)
    if run is None:
        health = _note("healthcheck", "The image has no HEALTHCHECK.",
                       "A service should say whether it works: HEALTHCHECK CMD [\"python\", \"-c\", ...] asking it "
                       "over HTTP (the slim image has python, not curl).")
    elif run.failed:
        said = causes.scrub(" ".join(run.output.strip().splitlines()[-2:])[:200])
        health = _result("healthcheck", False, f"HEALTHCHECK {run.shown} failed with exit code {run.code}"
                         f"{': ' + said if said else ''}.",
                         "Check the command against what the image has (python is in it, curl is not in the slim "
                         "image), and the port and path the program answers on.")
    else:
        health = _result("healthcheck", True, f"HEALTHCHECK {run.shown} passed (exit code 0).")
    return http, health


def _stop_result(seconds: float, image_config: Mapping, *, killed: bool) -> CheckResult:
    """``stops-fast`` from the measured ``docker stop`` (``killed``: the engine had to kill it, exit code 137)."""
    message = f"docker stop took {seconds:.1f} s."
    if seconds < STOP_LIMIT:
        return _result("stops-fast", True, message)
    if not killed:
        # The signal reached the program, which is what matters; how long its shutdown takes also depends on
        # how busy the machine is (a loaded machine made a 0.5 s uvicorn shutdown take 9 s).
        return _note("stops-fast", message + " The program got the signal and ended by itself, but slowly.",
                     "If it is slow on an idle machine too, make it finish quickly when it gets SIGTERM (close "
                     "connections, do not wait for long requests): orchestrators give it a few seconds at most.")
    cmd = [*(image_config.get("Entrypoint") or []), *(image_config.get("Cmd") or [])]
    shell = cmd[:2] == ["/bin/sh", "-c"]
    why = ("CMD is in shell form: the shell is the first process and does not pass the signal on; write CMD as a "
           "JSON list. " if shell else
           "The first process ignores SIGTERM (Linux delivers a signal to PID 1 only when the program handles it; "
           "plain Python does not). ")
    return _result("stops-fast", False, message + " The program ignored the stop signal; the engine killed it "
                   "after the grace period (exit code 137).",
                   why + "Run a server that handles SIGTERM (gunicorn, uvicorn), set STOPSIGNAL SIGINT for a "
                   "Python program, or handle SIGTERM in your code.")


# --------------------------------------------------------------------------- the whole check


def lint_check(dockerfile: Path, folder: Path) -> CheckResult:
    """``lint``: hadolint's findings grouped by rule with the house style's reasons."""
    try:
        found = lint.lint(dockerfile, project=folder)
    except lint.LintUnavailable as exc:
        return _note("lint", str(exc))
    if not found:
        return _result("lint", True, "hadolint found nothing.")
    listed = "\n".join(f.describe() for f in found)
    if any(f.level in lint.FAILING_LEVELS for f in found):
        return _result("lint", False, listed, "Fix each rule above; the reason says why it matters.")
    return _note("lint", listed, "Style and info findings: worth fixing, not failures.")


def check(folder: str | Path, *, dockerfile: str | Path | None = None, tag: str | None = None,
          port: int | None = None, health_path: str = "/", command: Sequence[str] | None = None,
          environment: Mapping[str, str] | None = None, limits: engine.SandboxLimits = engine.SandboxLimits(),
          build_timeout: float = service.BUILD_TIMEOUT, settle: float = SETTLE_SECONDS,
          remove_image: bool = False, progress: Progress | None = None) -> CheckResults:
    """Run the generic checks on a project folder with a Dockerfile.

    Args:
        folder: the build context folder.
        dockerfile: the Dockerfile (default: ``Dockerfile`` in ``folder``).
        tag: the image's tag (default :func:`default_tag`); the image is kept unless ``remove_image``.
        port: the container port the program serves HTTP on (default: from ``EXPOSE``, else the port
            it listens on, else none).
        health_path: the path asked for over HTTP; any answer below 500 counts.
        command: arguments replacing the image's ``CMD`` when the container runs.
        environment: environment variables for the container (e.g. a token it needs).
        limits: the sandbox limits of grading: memory, CPU, processes, read-only root, ``/tmp`` size,
            seconds to wait for an answer.
        build_timeout: seconds after which a build is stopped.
        settle: seconds the container is watched before it counts as running.
        remove_image: remove the image at the end, too.
        progress: gets what the check is doing (:mod:`.progress`); by default the live display in a
            notebook, nothing outside IPython.

    Returns:
        The results in checklist order (all twelve, or ``builds`` and ``lint`` alone when the build
        failed), with the image tag (``""`` when none was built or it was removed).

    Raises:
        ProjectProblem: ``folder`` is not a folder, or there is no Dockerfile.
        engine.EngineUnavailable: no engine answers.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ProjectProblem(f"There is no folder {folder}: give the folder that holds your Dockerfile.")
    path = Path(dockerfile) if dockerfile is not None else folder / "Dockerfile"
    if not path.is_file():
        raise ProjectProblem(f"There is no Dockerfile {path}: write one there, or name it with --dockerfile.")
    tag = tag or default_tag(folder)
    with _progress.reporting(progress, EXERCISE) as sink:
        checked = _check(folder, path, tag=tag, port=port, health_path=health_path, command=command,
                         environment=environment, limits=limits, build_timeout=build_timeout, settle=settle,
                         progress=sink)
    if remove_image and checked.image:
        engine.remove_image(checked.image)
        return CheckResults(checked.exercise, checked.results, "", checked.notes + (f"{tag} was removed.",))
    return checked


def _check(folder: Path, dockerfile: Path, *, tag: str, port: int | None, health_path: str,
           command: Sequence[str] | None, environment: Mapping[str, str] | None, limits: engine.SandboxLimits,
           build_timeout: float, settle: float, progress: Progress | None) -> CheckResults:
    linted = lint_check(dockerfile, folder)
    built = service.build_submission(dockerfile, folder, tag=tag, timeout=build_timeout, progress=progress)
    if not built.image or built.dockerfile is None:
        failed = _result("builds", False, built.problem, built.hint or "Fix the problem above and check again.",
                         pressure=built.pressure)
        return results(EXERCISE, [failed, linted], notes=[*built.notes, "The other checks need an image."])
    parsed = built.dockerfile
    builds = _result("builds", True, f"Built {tag} in {built.seconds:.1f} s.")
    _progress.emit(progress, _progress.PHASE, "Listing what the build context sends to the builder")
    sent = layers.context_files(folder)
    _progress.emit(progress, _progress.PHASE, "Rebuilding after a code-only edit: is the dependency layer reused?")
    deps = dependency_reuse(tag, parsed, folder, sent)
    _progress.emit(progress, _progress.PHASE, "Measuring the layers and looking through them")
    size = size_breakdown(tag, parsed.final_base() or None)
    secrets_and_data, advice = baked_checks(tag, folder, sent)
    runtime = runtime_checks(tag, port=port, health_path=health_path, command=command, environment=environment,
                             limits=limits, settle=settle, progress=progress)
    items = [builds, small_base(parsed), deps, size, *secrets_and_data, *runtime, linted]
    return results(EXERCISE, items, image=tag, notes=[*built.notes, *advice])
