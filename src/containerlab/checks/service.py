"""Shared steps of the service exercises: build a submission safely, run it, ask it questions.

Everything that touches the engine goes through :mod:`containerlab.engine`.
The student's image is built with BuildKit (its ``RUN`` steps need the package
index, so builds keep their network) under a timeout, from a context whose
size is checked first; the container then runs in the engine's sandbox: an
internal network, memory/CPU/process limits, no published ports.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, engine, shared
from . import causes
from . import dockerfile as df
from . import progress as _progress
from .progress import Progress

#: Builds stopped after this many seconds (a cold pip install of the service takes 1-3 minutes).
BUILD_TIMEOUT = 900.0
#: A build context larger than this (bytes) is refused before building.
MAX_CONTEXT_BYTES = 300 * 1024**2
#: Two answers closer than this (currency units) are the same prediction.
TOLERANCE = 0.05
#: Label on everything the checks create, so that an instructor can find leftovers.
CHECK_LABEL = "org.containerlab.exercise-check"
#: Start of the names of the sandbox's containers and networks: this user's and clone's
#: (:data:`config.INSTANCE`), so that `docker ps` on a shared engine says whose a container is.
SANDBOX_PREFIX = f"cl-ex-{config.INSTANCE}"
#: Label with a value unique to one probe, to find its container when the engine refused to start it.
PROBE_LABEL = "org.containerlab.probe-id"

#: Customers the visible checks send, with the answers of the reference service.
VISIBLE_CASES: tuple[tuple[dict[str, float], float], ...] = (
    ({"tenure_months": 24, "orders_last_year": 6, "avg_order_value": 50.0, "support_tickets": 1}, 307.54),
    ({"tenure_months": 2, "orders_last_year": 1, "avg_order_value": 20.0, "support_tickets": 0}, 19.02),
    ({"tenure_months": 96, "orders_last_year": 12, "avg_order_value": 80.0, "support_tickets": 3}, 1326.66),
)


@dataclass(frozen=True)
class Built:
    """The outcome of building a submission.

    Attributes:
        image: the tag of the built image, or ``""`` when the build failed.
        seconds: wall time of the build in seconds (0 when it never started).
        problem: why there is no image, in a sentence for the student (``""`` when built).
        hint: what to change when there is a problem.
        notes: what was cleaned in the Dockerfile (BOM, CRLF).
        dockerfile: the parsed Dockerfile, or ``None`` when it could not be read.
        cause: the kind of build failure (:mod:`.causes`), or ``""``.
        pressure: the failed build's signs that the engine's shared limits stopped it
            (:attr:`containerlab.engine.BuildFailed.pressure`), for the check that says it failed.
    """

    image: str
    seconds: float = 0.0
    problem: str = ""
    hint: str = ""
    notes: tuple[str, ...] = ()
    dockerfile: df.Dockerfile | None = None
    cause: str = ""
    pressure: tuple[str, ...] = ()


@dataclass
class Probe:
    """What the running service answered.

    Attributes:
        healthy: ``/health`` answered 2xx on the expected port.
        problem: why it did not (a sentence naming the cause), or ``""``.
        hint: what to change for that cause, or ``""``.
        cause: the kind of start failure (:mod:`.causes`), or ``""``.
        logs: the container's last output lines when something went wrong.
        answers: for each case sent, ``(customer, expected, got)``; ``got`` is the
            ``customer_value`` answered, or the error text.
        notes: right-but-risky findings that cost no points (a HEALTHCHECK that fails).
    """

    healthy: bool = False
    problem: str = ""
    hint: str = ""
    cause: str = ""
    logs: str = ""
    answers: list[tuple[dict[str, float], float, float | str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def wrong_answers(self) -> list[tuple[dict[str, float], float, float | str]]:
        """The cases whose answer is missing or off by more than :data:`TOLERANCE`."""
        return [a for a in self.answers if not isinstance(a[2], float) or abs(a[2] - a[1]) > TOLERANCE]


def context_size(context: Path) -> int:
    """Total size in bytes of the regular files under ``context`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(context):
        for name in files:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def build_submission(dockerfile: str | Path, context: str | Path, *, tag: str,
                     timeout: float = BUILD_TIMEOUT, build_args: Mapping[str, str] | None = None,
                     progress: Progress | None = None) -> Built:
    """Build a student's Dockerfile; never raises for problems that are the student's to fix.

    The Dockerfile is read and cleaned first (BOM, CRLF), and the cleaned text is
    what gets built. When the tag already pointed at an older image, that image
    is removed once the new one exists (unless a container still uses it), so
    repeated checks do not pile up images.

    Args:
        dockerfile: the student's Dockerfile.
        context: the build context folder.
        tag: the tag for the student's image.
        timeout: seconds after which the build is stopped.
        build_args: ``--build-arg`` values.
        progress: gets a phase event, then each line of the builder's output as it arrives
            (:mod:`.progress`).

    Returns:
        The image tag and build time, or the problem and a hint.

    Raises:
        EngineUnavailable: no engine answers (not the student's Dockerfile's fault).
        KeyboardInterrupt: the kernel was interrupted; the build (the ``docker buildx``
            process, and with it the engine's build) is stopped, a tag this build gave
            is taken off again (back on the image it named before), then it goes on.
    """
    try:
        parsed = df.read(dockerfile)
    except df.DockerfileProblem as exc:
        return Built("", problem=str(exc), hint="")
    context = Path(context)
    if not context.is_dir():
        return Built("", problem=f"The build context folder {context.name}/ does not exist.",
                     hint="Build from the folder that holds the service (requirements.txt and src/).",
                     notes=parsed.notes, dockerfile=parsed)
    size = context_size(context)
    if size > MAX_CONTEXT_BYTES:
        return Built("", problem=f"The build context {context.name}/ holds {size / 1024**2:.0f} MB, more than the "
                     f"{MAX_CONTEXT_BYTES / 1024**2:.0f} MB the checks accept.",
                     hint="Keep large files (data, models, virtual environments) out of the context folder "
                     "or list them in .dockerignore.", notes=parsed.notes, dockerfile=parsed)
    old = engine.image(tag)
    _progress.emit(progress, _progress.PHASE, f"Building {tag} from {Path(dockerfile).name}")
    with tempfile.TemporaryDirectory(prefix="cl-ex-dockerfile-") as tmp:
        cleaned = Path(tmp) / "Dockerfile"
        cleaned.write_text(parsed.text, encoding="utf-8")
        try:
            result = engine.build(context, tag=tag, dockerfile=cleaned, build_args=build_args,
                                  labels={CHECK_LABEL: "student-image"}, timeout=timeout, fast_export=True,
                                  echo=_progress.build_echo(progress))
        except KeyboardInterrupt:
            _undo_tag(tag, old.id if old is not None else None)
            raise
        except engine.BuildFailed as exc:
            cause = build_cause(exc, timeout=timeout, context=context, parsed=parsed)
            return Built("", problem=cause.problem, hint=cause.hint, notes=parsed.notes, dockerfile=parsed,
                         cause=cause.kind, pressure=exc.pressure)
    if old is not None and old.id != result.image.id:
        engine.remove_unused_image(old.id)
    _progress.emit(progress, _progress.PHASE, f"Built {tag} in {result.seconds:.1f} s")
    return Built(tag, seconds=result.seconds, notes=parsed.notes, dockerfile=parsed)


def _undo_tag(tag: str, old_id: str | None) -> None:
    """After an interrupted build: take ``tag`` off an image this build made, and put it back on ``old_id``.

    The builder tags only at the very end, so this matters when the interrupt came
    just then; mostly the tag is still where it was and nothing changes.
    """
    now = engine.image(tag)
    if now is None or now.id == old_id:
        return
    engine.untag(tag)
    if old_id is not None:
        engine.tag_image(old_id, tag)


def build_cause(exc: engine.BuildFailed, *, timeout: float, context: Path | None = None,
                parsed: df.Dockerfile | None = None) -> causes.Cause:
    """Name the cause of a failed build (:func:`.causes.build_cause`), with the images this engine has."""
    tags: list[str] = []
    platforms: dict[str, str] = {}
    if "load metadata for" in exc.step or "source metadata" in exc.log or "pull access denied" in exc.log:
        # Only a missing base image needs the list of the images there are.
        tags = [t for t in engine.local_tags() if not t.startswith(("cl-", "containerlab-"))]
        for tag in tags:
            found = engine.image(tag)
            if found is not None:
                platforms[tag] = f"{found.os}/{found.architecture}"
    return causes.build_cause(exc, timeout=timeout, context=context, parsed=parsed, local_images=tags,
                              platforms=platforms)


def explain_build_failure(exc: engine.BuildFailed, *, timeout: float, context: Path | None = None,
                          parsed: df.Dockerfile | None = None) -> tuple[str, str]:
    """Turn a failed build into a problem sentence and a hint for the student (see :func:`build_cause`)."""
    cause = build_cause(exc, timeout=timeout, context=context, parsed=parsed)
    return cause.problem, cause.hint


def new_token() -> str:
    """A fresh random API token for one check run (the service refuses /predict without one)."""
    return "cl-ex-" + secrets.token_hex(12)


def probe_service(image: str, cases: Sequence[tuple[dict[str, float], float]], *, port: int = 80,
                  token: str | None = None,
                  environment: Mapping[str, str] | None = None,
                  volumes: Mapping[str, Mapping[str, str]] | None = None,
                  limits: engine.SandboxLimits = engine.SandboxLimits(),
                  progress: Progress | None = None) -> Probe:
    """Run the image in the sandbox, wait for ``/health``, and send ``/predict`` requests.

    The container is always removed afterwards. When ``/health`` never answers,
    the cause is named from evidence (:func:`.causes.start_cause`): the
    container's ``State`` as the engine reports it (exit code, ``OOMKilled``,
    the engine's own start error), the sockets listening inside it, and its
    last output lines. Once the service answers, the image's own
    ``HEALTHCHECK`` command is run inside the container; a failing one gives a note.

    Args:
        image: the image tag.
        cases: customers to send with the expected ``customer_value``.
        port: the container port the service must listen on.
        token: the API token; passed to the container as ``API_TOKEN`` (unless ``environment``
            sets it) and sent as ``Authorization: Bearer ...``. A fresh one when ``None``.
        environment: environment variables for the container.
        volumes: bind mounts (Docker SDK spec, absolute host paths).
        limits: sandbox limits.
        progress: gets a phase event as the container starts, answers and is asked (:mod:`.progress`).

    In a class grading (:mod:`containerlab.shared`), an image with the same content as one
    another student's probe found healthy, with every answer right, for the same cases,
    port and limits, is not started again: that probe is the answer (only when no
    ``environment``, ``volumes`` or ``token`` is given, which would make the runs differ).

    Returns:
        The health outcome with its cause and hint, the answers, and logs when something went wrong.

    Raises:
        KeyboardInterrupt: the kernel was interrupted; the container and its network are removed
            (also when the interrupt came while the engine was creating them), then it goes on.
    """
    found = engine.image(image)
    entry = ""
    if found is not None and environment is None and volumes is None and token is None:
        entry = shared.key(engine.content_digest(found), [list(case) for case in cases], port, limits)
    return shared.computed(
        "probe", entry,
        lambda: _run_probe(image, found, cases, port=port, token=token, environment=environment, volumes=volumes,
                           limits=limits, progress=progress),
        read=_shared_probe,
        write=lambda probe: {"answers": probe.answers, "notes": probe.notes}
        if probe.healthy and not probe.wrong_answers() else None)


def _shared_probe(doc: object) -> Probe | None:
    """A healthy probe as another worker kept it (:func:`probe_service`), or ``None`` when missing or unreadable."""
    try:
        return Probe(healthy=True, answers=[(dict(c), float(e), float(g)) for c, e, g in doc["answers"]],
                     notes=[str(n) for n in doc["notes"]])
    except (KeyError, TypeError, ValueError):
        return None


def _run_probe(image: str, found: engine.ImageInfo | None, cases: Sequence[tuple[dict[str, float], float]], *,
               port: int, token: str | None, environment: Mapping[str, str] | None,
               volumes: Mapping[str, Mapping[str, str]] | None, limits: engine.SandboxLimits,
               progress: Progress | None) -> Probe:
    """:func:`probe_service` on the engine: start a container of ``image`` (``found``: its details) and ask it."""
    probe = Probe()
    environment = dict(environment or {})
    token = token or environment.get("API_TOKEN") or new_token()
    if not environment.get("API_TOKEN_FILE"):
        environment.setdefault("API_TOKEN", token)
    auth = {"Authorization": f"Bearer {token}"}
    probe_id = uuid.uuid4().hex
    image_config = found.config if found is not None else {}
    command = [*(image_config.get("Entrypoint") or []), *(image_config.get("Cmd") or [])]
    _progress.emit(progress, _progress.PHASE, f"Starting a container of {image}; waiting for GET /health")
    try:
        with engine.sandboxed_container(image, environment=environment, volumes=volumes, limits=limits,
                                        labels={CHECK_LABEL: "probe", PROBE_LABEL: probe_id},
                                        name_prefix=SANDBOX_PREFIX) as container:
            try:
                engine.wait_http_inside(container, "/health", port=port, timeout=limits.ready_timeout)
            except engine.ContainerFailed as exc:
                state = engine.container_state(container)
                running = state.get("Status") == "running"
                listening = engine.listening_sockets(container) if running else []
                answered = engine.http_from_inside(container, "GET", "/health", port=port) if running else None
                cause = causes.start_cause(state=state, logs=exc.logs, listening=listening, port=port,
                                           health_status=answered.status if answered else None,
                                           waited=limits.ready_timeout, memory_bytes=limits.memory_bytes,
                                           command=command)
                _failed(probe, cause, exc.logs)
                return probe
            probe.healthy = True
            if cases:
                _progress.emit(progress, _progress.PHASE, f"GET /health answered; sending {len(cases)} customers "
                               "to POST /predict")
            answers = engine.http_many_from_inside(
                container, [engine.HttpRequest("POST", "/predict", json.dumps(c), auth) for c, _ in cases], port=port)
            for (customer, expected), answer in zip(cases, answers):
                got: float | str
                if answer.status == 200:
                    try:
                        got = float(json.loads(answer.body)["customer_value"])
                    except (ValueError, KeyError, TypeError):
                        got = f"unexpected answer {answer.body[:120]!r}"
                elif answer.status is None:
                    got = answer.error
                else:
                    got = f"HTTP {answer.status}: {answer.body[:120]}"
                probe.answers.append((customer, expected, got))
            if probe.wrong_answers():
                probe.logs = engine.logs(container)
            probe.notes += healthcheck_notes(container, image_config)
    except KeyboardInterrupt:
        # sandboxed_container removes what it knows of; a container or network whose creation the
        # interrupt cut short is found by the probe's label.
        engine.remove_objects(engine.labelled(f"{PROBE_LABEL}={probe_id}"))
        raise
    except engine.EngineUnavailable:
        raise
    except engine.EngineError as exc:
        # The engine refused to start the container (its program is missing, say): its State says why.
        states = engine.remove_labelled_containers(PROBE_LABEL, probe_id)
        state = states[0] if states and states[0].get("Error") else {"Error": str(exc)}
        _failed(probe, causes.start_cause(state=state, command=command, memory_bytes=limits.memory_bytes), "")
    return probe


def _failed(probe: Probe, cause: causes.Cause, logs: str) -> None:
    probe.problem = causes.scrub(cause.problem)
    probe.hint = cause.hint
    probe.cause = cause.kind
    probe.logs = logs


@dataclass(frozen=True)
class HealthcheckRun:
    """One run of an image's ``HEALTHCHECK`` command inside a container.

    Attributes:
        shown: the command as the Dockerfile gave it (shell text or a JSON list).
        code: its exit code (0: healthy), or ``None`` when it could not be run.
        output: what it printed.
    """

    shown: str
    code: int | None
    output: str

    @property
    def failed(self) -> bool:
        """Whether Docker would count this run as unhealthy (a command that could not run is not held against it)."""
        missing_timeout = self.code in (126, 127) and "timeout" in self.output and "not found" in self.output
        return self.code is not None and self.code != 0 and not missing_timeout


def run_healthcheck(container: engine.ContainerRef, image_config: Mapping) -> HealthcheckRun | None:
    """Run the image's ``HEALTHCHECK`` command inside a running container, once, as Docker would.

    Args:
        container: the running container.
        image_config: the image's ``Config`` as the engine reports it.

    Returns:
        The run, or ``None`` when the image has no HEALTHCHECK (or ``HEALTHCHECK NONE``).
    """
    test = list((image_config.get("Healthcheck") or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        argv, shown = ["/bin/sh", "-c", " ".join(test[1:])], " ".join(test[1:])
    elif test[0] == "CMD":
        argv, shown = test[1:], json.dumps(test[1:])
    else:
        argv, shown = ["/bin/sh", "-c", " ".join(test)], " ".join(test)
    code, output = engine.exec_inside(container, ["timeout", "20", *argv])
    return HealthcheckRun(shown, code, output)


def healthcheck_notes(container: engine.ContainerRef, image_config: Mapping) -> list[str]:
    """Run the image's ``HEALTHCHECK`` command inside a container that answers ``/health``.

    Returns:
        A note when the command fails although the service answers (Docker would mark every
        container of the image unhealthy), else nothing.
    """
    run = run_healthcheck(container, image_config)
    if run is None or not run.failed:
        return []
    said = " ".join(run.output.strip().splitlines()[-2:])[:200]
    return [causes.scrub(f"The image's HEALTHCHECK ({run.shown}) failed with exit code {run.code} while the service "
                         f"answered /health{f': {said}' if said else ''}. Docker would mark every container of this "
                         "image unhealthy; check the command against what the image has (python is there, curl "
                         "is not in the slim image) and the port the server listens on. It costs no points.")]


def describe_wrong(probe: Probe) -> str:
    """One sentence about the first wrong answer of a probe."""
    wrong = probe.wrong_answers()
    if not wrong:
        return f"All {len(probe.answers)} answers were right."
    customer, expected, got = wrong[0]
    return (f"{len(wrong)} of {len(probe.answers)} answers were wrong; for {json.dumps(customer)} the "
            f"service answered {got!r} where {expected} was expected.")


ROOT_USERS = {"", "root", "0", "0:0", "root:root", "root:0", "0:root"}


def risk_notes(built: Built) -> list[str]:
    """Right-but-risky choices in a built submission, as notes that cost no points.

    Read from the Dockerfile (a literal ``--platform`` in ``FROM``) and from the
    image's config as the engine reports it (the user the container runs as).
    """
    notes = []
    if built.dockerfile is not None:
        for ins, platform in df.pinned_platforms(built.dockerfile):
            notes.append(f"Line {ins.line} pins FROM --platform={platform}. It builds here, but on a machine of "
                         "another kind (an ARM laptop, say) the image is then built for the wrong processor and "
                         "runs slowly under emulation, or not at all; leave --platform out (or use "
                         "$BUILDPLATFORM in a builder stage). It costs no points.")
    found = engine.image(built.image) if built.image else None
    if found is not None:
        user = str(found.config.get("User") or "")
        if user.strip() in ROOT_USERS:
            notes.append("The container runs as root (the image sets no USER). Anyone who breaks into the service "
                         "could then change its code and packages; 14.3.2 shows how to add an unprivileged user "
                         "and switch to it with USER. It costs no points.")
    return notes
