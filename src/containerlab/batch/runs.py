"""A grading run's locks and labels, and the removal of what killed runs left on the engine.

A running batch holds two ``flock`` locks, which the kernel drops when its
process dies, even by ``kill -9``: one on its output folder (two runs never
write the same folder) and one on ``RUNS_DIR/<run id>.lock`` (another batch
can tell a live run from a killed one). Every container and network a run's
checks start carries :data:`RUN_LABEL` and :data:`STUDENT_LABEL`; before a
batch, :func:`clean_leftovers` removes those of killed runs, and the images and
compose stacks of the students about to be graded, whose names it asks
:mod:`containerlab.checks.registry` for.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, engine
from ..checks import registry, service

#: Label with the id of the grading run on every container and network the checks start.
RUN_LABEL = "org.containerlab.grade-run"
#: Label with the student's key on the same objects.
STUDENT_LABEL = "org.containerlab.student"
#: The label docker compose puts on each container, network and volume of a stack: its project name.
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
#: Where each running batch holds a lock on ``<run id>.lock`` (released by the kernel when it dies): one
#: folder per user and machine, so that batches of every clone on this machine see each other.
RUNS_DIR = Path(tempfile.gettempdir()) / f"containerlab-grade-runs-{os.getuid()}"
#: A rebuilt image of exercise 2's check (``cl-ex-edited-*``) older than this (seconds) is a leftover.
EDITED_IMAGE_MAX_AGE = 2 * 3600


class OutputInUse(RuntimeError):
    """Another grading run is writing the same output folder."""


class Lock:
    """An exclusive ``flock`` on a file, held until :meth:`release` (the kernel drops it when the process dies).

    The file is made (with its folder) if missing, and says which process holds it.

    Raises:
        BlockingIOError: another process holds it.
        OSError: the file cannot be made or opened.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)

    def release(self, *, remove: bool = False) -> None:
        """Drop the lock; with ``remove``, delete its file first (a run's lock, which no one takes again)."""
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


def lock_output(out: Path) -> Lock:
    """Lock the output folder ``out`` (an existing folder) for this run: ``out/.grading.lock``.

    Raises:
        OutputInUse: another run holds it (the message names that run's process).
    """
    try:
        return Lock(out / ".grading.lock")
    except BlockingIOError:
        holder = (out / ".grading.lock").read_text(encoding="utf-8", errors="replace").strip()
        raise OutputInUse(f"Another grading run ({holder or 'unknown process'}) is writing {out}. Wait for it "
                          "to finish, or give this run another --out folder.") from None


def run_states(runs_dir: Path) -> dict[str, bool]:
    """The grading runs this machine knows of: run id to whether it is still running.

    A run holds ``flock`` on ``runs_dir/<run id>.lock`` while it lives; the kernel
    releases it when the process dies, even by ``kill -9``.
    """
    states = {}
    for path in sorted(runs_dir.glob("*.lock")) if runs_dir.is_dir() else ():
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            states[path.stem] = False
        except BlockingIOError:
            states[path.stem] = True
        finally:
            os.close(fd)
    return states


@dataclass
class Cleanup:
    """What :func:`clean_leftovers` did.

    Attributes:
        removed: containers, networks and images removed.
        dead_runs: ids of killed runs whose leftovers were removed.
        unknown: objects of runs this machine does not know (another machine's?), left alone.
    """

    removed: int = 0
    dead_runs: list[str] = field(default_factory=list)
    unknown: int = 0

    def __str__(self) -> str:
        text = f"removed {self.removed} leftover(s) of {len(self.dead_runs)} killed run(s)"
        if self.unknown:
            text += (f"; left {self.unknown} container(s)/network(s) of runs not started on this machine "
                     f"(label {RUN_LABEL})")
        return text


def clean_leftovers(*, run_id: str, keys: Iterable[str] = (), runs_dir: Path | None = None) -> Cleanup:
    """Remove what killed grading runs left on the engine; never what a running batch uses.

    - Containers and networks carry :data:`RUN_LABEL`; those of a run whose lock
      file in ``runs_dir`` is no longer held are removed, with the run's scratch
      folder. Runs with no lock file there (started on another machine that
      shares the engine) are left alone and counted.
    - Images carry no run label (a label would make a shared image, such as the
      course's reference image, a new image per run): this grader's images of the
      students about to be graded, those their exercises leave
      (:meth:`.registry.Exercise.image_tag`: ``cl-ex-grade-<key>-<exercise>:<instance>``,
      :data:`config.INSTANCE`), are removed (a leftover would be replaced
      anyway); another grader's images of a student of the same name are not. And exercise 2's rebuilt
      ``cl-ex-edited-*`` images once older than :data:`EDITED_IMAGE_MAX_AGE`.
    - Compose stacks (exercise 6's) carry compose's project label, not the run label: this grader's
      stacks of the students about to be graded (:meth:`.registry.Exercise.stack_project`) are removed
      with their networks and named volumes, so a stack a killed run left never lends its
      stored rows to the next grading of that student.

    Raises:
        EngineUnavailable: no engine answers.
    """
    runs_dir = runs_dir or RUNS_DIR
    states = run_states(runs_dir)
    found = engine.labelled(RUN_LABEL)
    cleanup = Cleanup()
    doomed: dict[str, list] = {"containers": [], "networks": []}
    for kind in doomed:
        for item in found[kind]:
            owner = str(item["labels"].get(RUN_LABEL, ""))
            if owner == run_id or states.get(owner):
                continue
            if owner in states:
                doomed[kind].append(item)
            else:
                cleanup.unknown += 1
    ours = {e.image_tag(k) for e in registry.exercises() if e.image for k in keys}
    images = []
    for item in engine.labelled(service.CHECK_LABEL)["images"]:
        tags = [t.strip() for t in str(item["name"]).split(",")]
        old = time.time() - float(item.get("created", time.time())) > EDITED_IMAGE_MAX_AGE
        if ours.intersection(tags):
            images.append(item)
        elif old and tags and all(t.startswith("cl-ex-edited-") for t in tags):
            images.append(item)
    projects = {e.stack_project(k) for e in registry.exercises() if e.stack for k in keys}
    if projects:  # an object listed twice is removed once: remove_objects skips what is gone
        stacks = engine.labelled(COMPOSE_PROJECT_LABEL)
        for kind in ("containers", "networks", "volumes"):
            doomed.setdefault(kind, []).extend(
                item for item in stacks[kind] if item["labels"].get(COMPOSE_PROJECT_LABEL) in projects)
    cleanup.removed = engine.remove_objects({**doomed, "images": images})
    for rid, alive in states.items():
        if not alive and rid != run_id:
            cleanup.dead_runs.append(rid)
            shutil.rmtree(config.CACHE_DIR / "grading" / rid, ignore_errors=True)
            (runs_dir / f"{rid}.lock").unlink(missing_ok=True)
    return cleanup
