"""Builds through ``docker buildx build`` (BuildKit), with a timeout, and what a failed build says."""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .client import (CommandTimedOut, Echo, EngineError, EngineUnavailable, HOW_TO_GET_AN_ENGINE, Pressure,
                     _engine_answers, client, docker_cli)
from .images import ImageInfo, image, uses_containerd_store


class BuildFailed(EngineError):
    """``docker buildx build`` failed.

    Attributes:
        step: the Dockerfile step that failed as the builder names it
            (e.g. ``[3/5] RUN pip install -r requirements.txt``), or ``""``.
        error_lines: the builder's error lines.
        log: the whole build output.
        pressure: signs that a limit the engine's builds share may have made it fail (it ran past its
            timeout, a step was killed for memory...), see :attr:`EngineError.pressure`.
    """

    def __init__(self, message: str, *, step: str, error_lines: list[str], log: str, pressure: Pressure = ()):
        super().__init__(message, pressure=pressure)
        self.step = step
        self.error_lines = error_lines
        self.log = log


@dataclass(frozen=True)
class BuildResult:
    """What one build produced.

    Attributes:
        image: the built image (``image.id`` is its digest).
        seconds: wall time of the whole build, in seconds.
        log: the builder's output, for people to read.
    """

    image: ImageInfo
    seconds: float
    log: str


#: ``--output`` of a build with ``fast_export``: new layers compressed with zstd at level 1, not Docker's
#: default gzip. Exporting the service's 520 MB dependency layer into the containerd image store took
#: 20.3 s with gzip and 4.2 s with this (plus 5.4 s and 3.0 s to unpack; Engine 26.1, 2 cores,
#: measured 2026-12-07). The checks' images never leave the engine that built them.
FAST_EXPORT = "type=image,compression=zstd,compression-level=1"

#: The cgroup every build step of this context runs under (``docker buildx build --cgroup-parent``), or "".
_BUILD_CGROUP: contextvars.ContextVar[str] = contextvars.ContextVar("build_cgroup", default="")


@contextlib.contextmanager
def build_cgroup(parent: str) -> Iterator[None]:
    """Run every build of the ``with`` block with its ``RUN`` steps under the cgroup ``parent``.

    Engine 26's BuildKit puts each ``RUN`` step of a build in a cgroup of its own
    below the build's ``--cgroup-parent`` (seen here: ``/PARENT/buildkit/<id>``),
    so limits written on ``parent`` hold for that build alone. Engine 20.10's
    builder ignored the option (ENGINE.md). :func:`containerlab.sandbox.build_budget`
    makes and limits such a cgroup for one grading worker. The parent is part of
    each step's cache key: a step cached under another parent runs again.

    Args:
        parent: a cgroup path as the engine's host sees it, e.g. ``"/containerlab-grading/workers/grader-0"``.
    """
    token = _BUILD_CGROUP.set(parent)
    try:
        yield
    finally:
        _BUILD_CGROUP.reset(token)


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
    fast_export: bool = False,
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
        fast_export: on the containerd image store, compress new layers with zstd at level 1
            (:data:`FAST_EXPORT`), about four times faster than the default gzip. The checks use it: they
            compare unpacked sizes, which compression does not change. Images whose listed size a
            reader is shown keep the default. No effect on the legacy store (it keeps layers unpacked).
        echo: called with each line of builder output as it arrives.
        timeout: seconds after which the build is stopped.

    Returns:
        The image, the wall time in seconds and the log.

    Raises:
        BuildFailed: the build failed; names the failing step and the error lines.
        EngineUnavailable: no engine answers.
    """
    client()  # fail early, with a clear message, when there is no engine
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="containerlab-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        cmd = ["buildx", "build", "--progress=plain", "--iidfile", str(iidfile)]
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
        if fast_export and uses_containerd_store():
            cmd += ["--output", FAST_EXPORT]
        if _BUILD_CGROUP.get():
            cmd += ["--cgroup-parent", _BUILD_CGROUP.get()]
        cmd.append(str(context))

        try:
            ran = docker_cli(cmd, timeout=timeout, echo=echo)
        except CommandTimedOut as exc:
            raise BuildFailed(
                f"The build of {context} took more than {timeout:.0f} s and was stopped.",
                step="",
                error_lines=[],
                log=exc.output,
                pressure=(f"a build ran past its {timeout:.0f} s timeout (the engine's CPUs are shared)",),
            ) from exc
        if ran.returncode != 0 or not iidfile.exists():
            if not _engine_answers():
                raise EngineUnavailable(
                    f"The Docker engine stopped answering while {context} was being built. "
                    f"Start it again, then re-run the build. {HOW_TO_GET_AN_ENGINE}"
                )
            raise _build_failure(context, ran.stdout.splitlines())
        built = image(iidfile.read_text().strip())
    if built is None:
        raise EngineError(f"The build of {context} finished but its image is not in the engine")
    return BuildResult(image=built, seconds=time.monotonic() - start, log=ran.stdout.rstrip("\n"))


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
        pressure=(f"a build step met a limit the engine's builds share: {cause}",) if cause else (),
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
