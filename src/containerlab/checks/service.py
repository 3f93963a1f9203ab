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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import engine
from . import dockerfile as df

#: Builds stopped after this many seconds (a cold pip install of the service takes 1-3 minutes).
BUILD_TIMEOUT = 900.0
#: A build context larger than this (bytes) is refused before building.
MAX_CONTEXT_BYTES = 300 * 1024**2
#: Two answers closer than this (currency units) are the same prediction.
TOLERANCE = 0.05
#: Label on everything the checks create, so that an instructor can find leftovers.
CHECK_LABEL = "org.containerlab.exercise-check"

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
    """

    image: str
    seconds: float = 0.0
    problem: str = ""
    hint: str = ""
    notes: tuple[str, ...] = ()
    dockerfile: df.Dockerfile | None = None


@dataclass
class Probe:
    """What the running service answered.

    Attributes:
        healthy: ``/health`` answered 2xx on the expected port.
        problem: why it did not (a sentence), or ``""``.
        logs: the container's last output lines when something went wrong.
        answers: for each case sent, ``(customer, expected, got)``; ``got`` is the
            ``customer_value`` answered, or the error text.
        container_attrs: the engine's inspect data of the running container (mounts, env).
    """

    healthy: bool = False
    problem: str = ""
    logs: str = ""
    answers: list[tuple[dict[str, float], float, float | str]] = field(default_factory=list)
    container_attrs: dict = field(default_factory=dict)

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
                     timeout: float = BUILD_TIMEOUT, build_args: Mapping[str, str] | None = None) -> Built:
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

    Returns:
        The image tag and build time, or the problem and a hint.

    Raises:
        EngineUnavailable: no engine answers (not the student's Dockerfile's fault).
    """
    try:
        parsed = df.read(dockerfile)
    except df.DockerfileProblem as exc:
        return Built("", problem=str(exc), hint="")
    context = Path(context)
    if not context.is_dir():
        return Built("", problem=f"The build context folder {context} does not exist.",
                     hint="Build from the folder that holds the service (requirements.txt and src/).",
                     notes=parsed.notes, dockerfile=parsed)
    size = context_size(context)
    if size > MAX_CONTEXT_BYTES:
        return Built("", problem=f"The build context {context} holds {size / 1024**2:.0f} MB, more than the "
                     f"{MAX_CONTEXT_BYTES / 1024**2:.0f} MB the checks accept.",
                     hint="Keep large files (data, models, virtual environments) out of the context folder "
                     "or list them in .dockerignore.", notes=parsed.notes, dockerfile=parsed)
    old = engine.image(tag)
    with tempfile.TemporaryDirectory(prefix="cl-ex-dockerfile-") as tmp:
        cleaned = Path(tmp) / "Dockerfile"
        cleaned.write_text(parsed.text, encoding="utf-8")
        try:
            result = engine.build(context, tag=tag, dockerfile=cleaned, build_args=build_args,
                                  labels={CHECK_LABEL: "student-image"}, timeout=timeout)
        except engine.BuildFailed as exc:
            problem, hint = explain_build_failure(exc, timeout=timeout)
            return Built("", problem=problem, hint=hint, notes=parsed.notes, dockerfile=parsed)
    if old is not None and old.id != result.image.id:
        engine.remove_unused_image(old.id)
    return Built(tag, seconds=result.seconds, notes=parsed.notes, dockerfile=parsed)


def explain_build_failure(exc: engine.BuildFailed, *, timeout: float) -> tuple[str, str]:
    """Turn a failed build into a problem sentence and a hint for the student."""
    log = exc.log
    errors = " ".join(exc.error_lines) or log[-400:]
    step = f" at step {exc.step}" if exc.step else ""
    if "took more than" in str(exc):
        return (f"The build ran for more than {timeout:.0f} s and was stopped.",
                "Look for a step that never ends (a loop, a server started with RUN instead of CMD).")
    if "no space left on device" in log.lower():
        return ("The build ran out of disk space.",
                "A step writes far too much data; remove it, and keep large files out of the image.")
    if "pull access denied" in log or "failed to resolve source metadata" in log or (
            "not found" in errors and "docker.io" in errors):
        return (f"The base image could not be found{step}.",
                "Start FROM an image that exists on your machine, e.g. the course's slim Python image.")
    if "requirements" in errors and ("not found" in errors or "No such file" in errors):
        return (f"A file the build needs is missing from the build context{step}.",
                "Check the name and place of the requirements file you COPY and install from.")
    if "unknown instruction" in errors or "dockerfile parse error" in errors.lower():
        return (f"The Dockerfile has a syntax error: {errors[-200:]}",
                "Each line starts with an instruction such as FROM, COPY, RUN or CMD; check the spelling "
                "and the line continuations.")
    if "not found" in errors or "no such file" in errors.lower():
        return (f"A file or folder the build copies is missing{step}: {errors[-200:]}",
                "Paths in COPY are relative to the build context folder; check them against its files.")
    return (f"The build failed{step}: {errors[-300:]}",
            "Read the error above, fix that step, and run the check again.")


def new_token() -> str:
    """A fresh random API token for one check run (the service refuses /predict without one)."""
    return "cl-ex-" + secrets.token_hex(12)


def probe_service(image: str, cases: Sequence[tuple[dict[str, float], float]], *, port: int = 80,
                  token: str | None = None,
                  environment: Mapping[str, str] | None = None,
                  volumes: Mapping[str, Mapping[str, str]] | None = None,
                  limits: engine.SandboxLimits = engine.SandboxLimits()) -> Probe:
    """Run the image in the sandbox, wait for ``/health``, and send ``/predict`` requests.

    The container is always removed afterwards.

    Args:
        image: the image tag.
        cases: customers to send with the expected ``customer_value``.
        port: the container port the service must listen on.
        token: the API token; passed to the container as ``API_TOKEN`` (unless ``environment``
            sets it) and sent as ``Authorization: Bearer ...``. A fresh one when ``None``.
        environment: environment variables for the container.
        volumes: bind mounts (Docker SDK spec, absolute host paths).
        limits: sandbox limits.

    Returns:
        The health outcome, the answers, and logs when something went wrong.
    """
    probe = Probe()
    token = token or new_token()
    environment = {"API_TOKEN": token, **(environment or {})}
    auth = {"Authorization": f"Bearer {token}"}
    with engine.sandboxed_container(image, environment=environment, volumes=volumes, limits=limits,
                                    labels={CHECK_LABEL: "probe"}) as container:
        try:
            engine.wait_http_inside(container, "/health", port=port, timeout=limits.ready_timeout)
        except engine.ContainerFailed as exc:
            probe.problem = str(exc)
            probe.logs = exc.logs
            return probe
        probe.healthy = True
        container.reload()
        probe.container_attrs = container.attrs
        for customer, expected in cases:
            answer = engine.http_from_inside(container, "POST", "/predict", port=port, body=json.dumps(customer),
                                             headers=auth)
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
    return probe


def describe_wrong(probe: Probe) -> str:
    """One sentence about the first wrong answer of a probe."""
    wrong = probe.wrong_answers()
    if not wrong:
        return f"All {len(probe.answers)} answers were right."
    customer, expected, got = wrong[0]
    return (f"{len(wrong)} of {len(probe.answers)} answers were wrong; for {json.dumps(customer)} the "
            f"service answered {got!r} where {expected} was expected.")
