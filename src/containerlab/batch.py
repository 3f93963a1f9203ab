"""Grade a class: student keys, shards, parallel workers, resumable result files, hygiene between students.

One student is graded by :func:`containerlab.grading.grade_student`; this
module runs it over a submissions folder (one folder per student, nbgrader's
``submitted/<student>/ch14/*.ipynb`` layout or flat ``<student>/*.ipynb``):

- every student gets a :func:`student_key`, used for every tag, container
  label and scratch folder of theirs, so that ``José García`` and
  ``jose-garcia`` never share one;
- ``jobs`` worker processes grade students side by side; each finished
  student's result is written at once, atomically, to ``OUT/results/<key>.json``
  with a fingerprint of the submission's files, and ``gradebook.csv`` and the
  feedback are rewritten from the result files, so a crash keeps a current
  gradebook;
- a rerun with the same ``OUT`` resumes: students whose files did not change
  keep their result, changed ones are graded again. After ``kill -9`` of the
  grader and a rerun nothing is lost and no student is graded twice (workers
  die with the parent; two runs never share an ``OUT``);
- ``shard=(K, N)`` grades a deterministic slice of the class, the same on
  every machine (chosen by a hash of the key, not by the order of folders),
  and :func:`containerlab.gradebook.merge` puts the slices back together;
- before the batch, what killed runs left on the engine (containers and
  networks labelled with a run id no longer alive, the students' images) is
  removed, never what a running batch is using; between students the build
  cache is pruned down to a budget (BuildKit does not prune on its own during
  a batch, moby/buildkit#3665).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import multiprocessing
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import config, engine, grading, resultfiles, sandbox, scan
from .checks import registry, service, submission

#: Label with the id of the grading run on every container and network the checks start.
RUN_LABEL = "org.containerlab.grade-run"
#: Label with the student's key on the same objects.
STUDENT_LABEL = "org.containerlab.student"
#: The label docker compose puts on each container, network and volume of a stack: its project name.
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
#: Build cache kept between students, in bytes (``docker builder prune --keep-storage``): the service's
#: dependency layers (about 0.3 GB) and many students' own steps fit; a class of 300 cannot fill a disk.
DEFAULT_KEEP_STORAGE = 5 * 10**9
#: The largest share of the engine's disk the build cache keeps between students: on the corpus's 8 GB
#: grading engine, 5 GB of cache beside the base images left `docker save` no room (CI, stop 15).
CACHE_SHARE_OF_DISK = 0.25
#: Where each running batch holds a lock on ``<run id>.lock`` (released by the kernel when it dies): one
#: folder per user and machine, so that batches of every clone on this machine see each other.
RUNS_DIR = Path(tempfile.gettempdir()) / f"containerlab-grade-runs-{os.getuid()}"
#: A rebuilt image of exercise 2's check (``cl-ex-edited-*``) older than this (seconds) is a leftover.
EDITED_IMAGE_MAX_AGE = 2 * 3600
#: Memory a job needs beyond its container's limit (the build, the grader itself), in bytes.
JOB_OVERHEAD_BYTES = 1024**3

Grader = Callable[..., grading.StudentGrade]


class SubmissionsNotFound(FileNotFoundError):
    """The submissions folder does not exist or holds no student folder (or not the one asked for)."""


class OutputInUse(RuntimeError):
    """Another grading run is writing the same output folder."""


class WorkersFailed(RuntimeError):
    """The worker processes ended before the batch was done (they could not start, or kept dying)."""


class BatchStopped(engine.EngineUnavailable):
    """The engine went away mid-batch; what was graded is saved and a rerun resumes."""


# --------------------------------------------------------------------------- students, keys, shards


def student_key(student: str) -> str:
    """Return the key of a student: a readable slug plus a short hash of the exact name.

    The slug drops accents and case (``José García`` -> ``jose-garcia``) so that
    tags and folder names stay readable; the hash (8 hex digits of SHA-256 of
    the name as given, in UTF-8) keeps names that share a slug apart:
    ``student_key("José García") != student_key("jose-garcia")``. The key is
    safe in image tags, container names and file names, and at most 49
    characters long.
    """
    plain = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40].strip("-") or "student"
    digest = hashlib.sha256(student.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"


def student_folders(submissions: Path) -> dict[str, Path]:
    """Find each student's folder of notebooks.

    Returns:
        Student id (the folder's name) to the folder holding their notebooks, sorted by id.

    Raises:
        SubmissionsNotFound: the folder is missing or holds no student folder.
    """
    if not submissions.is_dir():
        raise SubmissionsNotFound(f"There is no submissions folder {submissions}.")
    found = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        inner = folder / submission.ASSIGNMENT
        found[folder.name] = inner if inner.is_dir() else folder
    if not found:
        raise SubmissionsNotFound(f"{submissions} holds no student folder (one folder per student expected).")
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """Read ``"K/N"`` (1 <= K <= N), e.g. ``"2/5"``.

    Raises:
        ValueError: the text is not of that form.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"A shard is K/N with 1 <= K <= N (e.g. 2/5), not {text!r}.")
    return int(match.group(1)), int(match.group(2))


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether the student with ``key`` belongs to shard ``(K, N)`` (all do when ``shard`` is ``None``).

    The slice is chosen by the SHA-256 of the key, so it is the same on every
    machine and does not move when students are added or removed.
    """
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) % n == k - 1


def fingerprint(folder: Path) -> str:
    """A SHA-256 over the names and bytes of every file of a submission (checkpoints left out).

    Two submissions have the same fingerprint exactly when they hold the same files
    with the same content; a rerun grades again only the students whose
    fingerprint changed.
    """
    digest = hashlib.sha256(f"format {resultfiles.RESULT_FORMAT}\n".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(folder).as_posix()
        if ".ipynb_checkpoints" in relative.split("/") or "__pycache__" in relative.split("/"):
            continue
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode("utf-8", "surrogateescape"))
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def default_jobs(*, memory_limit_bytes: int = engine.SandboxLimits().memory_bytes) -> int:
    """How many students to grade at once when ``jobs`` is not given.

    The rule: twice the CPU cores this process may use, but no more jobs than
    the available memory holds (each job: its container's memory limit plus
    :data:`JOB_OVERHEAD_BYTES` for the build and the grader, after 1 GiB kept for
    the machine), and at least 1. Twice the cores because a student's grading
    spends most of its time waiting (a container starting, a service becoming
    healthy, the builder's cache lookups), not computing.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    available = _available_memory()
    by_memory = max(1, (available - 1024**3) // (memory_limit_bytes + JOB_OVERHEAD_BYTES)) if available else cores * 2
    return max(1, min(2 * cores, int(by_memory)))


def _available_memory() -> int:
    """``MemAvailable`` of /proc/meminfo in bytes, or 0 where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- the class's gradebook.csv


def write_gradebook(out: Path) -> list[grading.StudentGrade]:
    """Rewrite ``OUT/gradebook.csv`` from every result file in ``OUT/results`` (atomically).

    Returns:
        The grades read, sorted by student.
    """
    from . import gradebook

    grades = gradebook.load_results(out)
    gradebook.write_csv(grades, out / "gradebook.csv")
    return grades


# --------------------------------------------------------------------------- runs and their leftovers


class _Lock:
    """An exclusive ``flock`` on a file, held while the object lives (the kernel drops it when the process dies).

    Raises:
        BlockingIOError: another process holds it.
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
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


def _lock_output(out: Path) -> _Lock:
    try:
        return _Lock(out / ".grading.lock")
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


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _Task:
    student: str
    key: str
    folder: str
    fingerprint: str


@dataclass(frozen=True)
class _Settings:
    out: str
    run_id: str
    work_root: str
    cases: list
    limits: engine.SandboxLimits
    build_timeout: float
    keep_images: bool
    keep_storage: int | None
    grader: Grader | None


def _die_with_parent(parent: int) -> None:
    """Make this worker, and every process it starts, die when the parent dies (even by ``kill -9``).

    The worker leads its own process group (the ``docker buildx`` processes it
    starts join it) and asks Linux for SIGTERM when its parent goes
    (``prctl(PR_SET_PDEATHSIG)``); on SIGTERM it kills the whole group, so no
    orphan goes on grading a student that the rerun grades again. The parent
    handles Ctrl-C for everyone.
    """
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(os.getpgid(0), signal.SIGKILL))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker then notices the parent is gone at its next task
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.killpg(os.getpgid(0), signal.SIGKILL)


class _Gate:
    """Who is being graded, across worker processes: for a cache prune, or a student graded alone.

    A prune evicts the least recently used cache records, and BuildKit counts a
    record reused from the cache as used when it was made: a prune in the middle
    of another student's exercise 2 could evict the dependency step the check is
    about to reuse, and mark a correct Dockerfile as breaking the cache. So a
    worker that finds the cache over budget closes the gate, waits for the
    students in progress to finish, prunes, and opens it again; no student starts
    meanwhile.

    A student whose exercise met a sign that the engine's shared limits decided
    it (:attr:`grading.StudentGrade.pressure`: another submission filled the
    disk, a build ran past its timeout beside other builds) is graded again in
    the same way, with the gate closed: alone on the engine, their grade is
    their submission's own.
    """

    #: Seconds a prune waits for the students in progress before it gives up until the next student.
    WAIT = 900.0

    def __init__(self, ctx) -> None:  # noqa: ANN001
        self.cond = ctx.Condition()
        self.active = ctx.Value("i", 0, lock=False)
        self.entered = ctx.Value("q", 0, lock=False)  # students that entered so far
        self.holder = ctx.Value("q", 0, lock=False)  # pid of the worker that closed the gate, or 0

    def enter(self) -> tuple[int, bool]:
        """Mark one student in progress (waits while the gate is closed).

        Returns:
            A ticket for :meth:`leave`: this student's number, and whether another was in progress.
        """
        with self.cond:
            while self.holder.value:
                self.cond.wait()
            self.active.value += 1
            self.entered.value += 1
            return self.entered.value, self.active.value > 1

    def leave(self, ticket: tuple[int, bool] | None = None) -> bool:
        """Mark one student done (also called by the parent for a worker that died mid-student).

        Returns:
            Whether another student was in progress at any time while this one was (``True``
            without a ticket).
        """
        with self.cond:
            self.active.value = max(0, self.active.value - 1)
            self.cond.notify_all()
            return ticket is None or ticket[1] or self.entered.value > ticket[0] or self.active.value > 0

    def release(self, pid: int) -> None:
        """Open the gate if the worker ``pid`` held it (the parent calls this for a worker that died)."""
        with self.cond:
            if self.holder.value == pid:
                self.holder.value = 0
                self.cond.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Close the gate, wait until no student is in progress, and count the caller as the one that is."""
        with self.cond:
            while self.holder.value:
                self.cond.wait()
            self.holder.value = os.getpid()
            while self.active.value:
                self.cond.wait(timeout=5)
            self.active.value += 1
        try:
            yield
        finally:
            with self.cond:
                self.active.value = max(0, self.active.value - 1)
                self.holder.value = 0
                self.cond.notify_all()

    def prune(self, keep_bytes: int) -> None:
        """Prune the build cache down to ``keep_bytes`` once no student is in progress, if it is over it.

        At most a quarter of the engine's disk is kept (:data:`CACHE_SHARE_OF_DISK`), when its size
        can be read: the rest holds the base images, the images of the students in progress, and
        the copy of each image that ``docker save`` writes on that disk before it streams it.
        """
        disk = engine.data_root_size()
        if disk is not None:
            keep_bytes = min(keep_bytes, int(disk * CACHE_SHARE_OF_DISK))
        try:
            if engine.disk_usage()["build_cache"] <= keep_bytes:
                return
        except Exception:  # noqa: BLE001  (no size: prune anyway, the command keeps the budget)
            pass
        deadline = time.monotonic() + self.WAIT
        with self.cond:
            if self.holder.value:
                return  # another worker prunes, or grades alone
            self.holder.value = os.getpid()
            while self.active.value and time.monotonic() < deadline:
                self.cond.wait(timeout=5)
            busy = self.active.value  # still busy after WAIT: prune after a later student
        try:
            if not busy:
                engine.prune_build_cache(keep_bytes=keep_bytes)
        except OSError:
            pass  # no docker command line: the next student's builds still work
        finally:
            with self.cond:
                self.holder.value = 0
                self.cond.notify_all()


def _worker(tasks, events, settings: _Settings, parent: int, engine_context: str,  # noqa: ANN001
            gate: _Gate) -> None:
    """One worker process: grade students from ``tasks`` until a ``None``, report on ``events``."""
    _die_with_parent(parent)
    if engine_context:
        _use_context(engine_context)
    # One worker's scan of an image (a correct Dockerfile builds the same image for many students)
    # spares the others its `docker save`; the folder goes with the run's scratch folder.
    scan.share_scans(Path(settings.work_root) / "scans")
    out = Path(settings.out)
    grader = settings.grader or grading.grade_student
    while True:
        task: _Task | None = tasks.get()
        if task is None or os.getppid() != parent:
            return
        events.put(("start", task.key, os.getpid()))

        def grade_once() -> grading.StudentGrade:
            # On a grading engine of this machine, this worker's build steps (one student's at a time) get a
            # budget of their own, under a cgroup named after the worker so that the build cache serves its next student.
            with engine.run_labels({RUN_LABEL: settings.run_id, STUDENT_LABEL: task.key}), \
                    sandbox.build_budget(multiprocessing.current_process().name, settings.limits):
                return grader(task.student, Path(task.folder), key=task.key,
                              work_root=Path(settings.work_root), cases=settings.cases, limits=settings.limits,
                              build_timeout=settings.build_timeout, keep_images=settings.keep_images)

        try:
            ticket = gate.enter()
            try:
                grade = grade_once()
            finally:
                beside = gate.leave(ticket)
            if grade.pressure and beside:
                signs = "; ".join(dict.fromkeys(sign for signs in grade.pressure.values() for sign in signs))
                events.put(("say", task.key, f"{task.student}: graded again, alone on the engine, because while "
                                             f"others were graded beside them {signs}."))
                first = grade.pressure
                with gate.alone():
                    grade = grade_once()
                grade.regraded = first  # the result file says that this grade is a second one, and why
            if grade.problems and not engine.answers():
                # A check that met a dead engine may have recorded it as the student's problem: such a
                # grade is not the student's and is never saved (the rerun grades them again).
                raise engine.EngineUnavailable(f"the engine stopped answering while {task.student} was graded")
            fault = _failed_anything(grade) and engine.storage_fault()
            if fault:
                # Its failures may be the engine's, whose disk went read-only: not saved, and no one after them
                # is graded on that engine (each would fail every check).
                events.put(("storage", task.key, f"its storage went read-only while {task.student} was graded: "
                                                 f"{fault.strip().splitlines()[0][:300]}"))
                return
            resultfiles.write_result(out, grade, fingerprint=task.fingerprint)
            events.put(("done", task.key, grade.to_dict()))
            if settings.grader is None and settings.keep_storage is not None:
                # In the worker, so that each engine of --engine keeps its own cache within budget.
                gate.prune(settings.keep_storage)
        except engine.EngineUnavailable as exc:
            events.put(("engine", task.key, str(exc)))
            return
        except Exception:  # noqa: BLE001  (a bug of the grader: said, not hidden, and the batch goes on)
            events.put(("error", task.key, traceback.format_exc(limit=6)))


def _failed_anything(grade: grading.StudentGrade) -> bool:
    """Whether ``grade`` has a problem or a failed check (a grade the engine's own failure may explain)."""
    return bool(grade.problems) or any(not c.passed for r in grade.results.values() for c in r.results)


def _use_context(name: str) -> None:
    """Point this process (the SDK and the docker CLI it starts) at the engine of docker context ``name``."""
    import subprocess

    host = subprocess.run(["docker", "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"],
                          capture_output=True, text=True, timeout=30).stdout.strip()
    os.environ["DOCKER_CONTEXT"] = name
    if host:
        os.environ["DOCKER_HOST"] = host
    engine.reconnect()


def check_contexts(names: Sequence[str]) -> None:
    """Check that each docker context exists.

    Raises:
        engine.EngineUnavailable: naming a context ``docker context ls`` does not show.
    """
    if not names:
        return
    listed = engine.docker_cli(["context", "ls", "--format", "{{.Name}}"], timeout=30).stdout.split()
    missing = [n for n in names if n not in listed]
    if missing:
        raise engine.EngineUnavailable(f"No docker context named {', '.join(missing)} (there are: "
                                       f"{', '.join(listed) or 'none'}); create one with `docker context create`.")


def prepare_engine(context: str, *, run_id: str, keys: Sequence[str]) -> Cleanup:
    """Check an engine's builder and remove killed runs' leftovers there, before any worker starts.

    ``context`` ``""`` is this process's engine; another docker context is checked
    from a spawned process pointed at it, so this process's own client is not touched.

    Raises:
        engine.EngineUnavailable: the engine does not answer.
        engine.BuilderDoesNotLoad: its buildx builder would not load the images.
    """
    if context:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_prepare_in_context, context, run_id, list(keys)).result()
    engine.connect()
    engine.check_builder()
    return clean_leftovers(run_id=run_id, keys=keys)


def _prepare_in_context(context: str, run_id: str, keys: list[str]) -> Cleanup:
    _use_context(context)
    return prepare_engine("", run_id=run_id, keys=keys)


# --------------------------------------------------------------------------- the batch


def grade_class(submissions: Path, *, out: Path, jobs: int | None = None, shard: tuple[int, int] | None = None,
                only: Iterable[str] = (), limits: engine.SandboxLimits = engine.SandboxLimits(),
                build_timeout: float = service.BUILD_TIMEOUT, keep_images: bool = False,
                keep_storage: int | None = DEFAULT_KEEP_STORAGE, engines: Sequence[str] = (),
                progress: Callable[[grading.StudentGrade], None] | None = None,
                say: Callable[[str], None] | None = None, bar: bool = False,
                grader: Grader | None = None) -> list[grading.StudentGrade]:
    """Grade every student folder under ``submissions`` (or one shard of them), resuming a previous run.

    Args:
        submissions: one folder per student (nbgrader ``submitted/`` layout or flat).
        out: the output folder: ``results/<key>.json``, ``gradebook.csv``, ``feedback/``.
        jobs: students graded at once (default: :func:`default_jobs`).
        shard: ``(K, N)``: grade only the K-th of N deterministic slices (:func:`in_shard`).
        only: grade only these student ids (default: all).
        limits: sandbox limits of the containers.
        build_timeout: seconds after which one build is stopped.
        keep_images: keep the students' images.
        keep_storage: build cache kept between students, in bytes (``None``: never prune).
        engines: docker contexts to spread the workers over, round-robin (default: the current engine).
        progress: called with each newly graded student's grade (after its files are written).
        say: receives sentences about the run (leftovers removed, results kept; default: ignored).
        bar: show a progress bar with an ETA on stderr (tqdm).
        grader: a stand-in for :func:`grading.grade_student`, for tests (a module-level function, so
            that the spawned workers can import it); with it, the engine is not used at all.

    Returns:
        The grades of the selected students (graded now or kept from a previous run), sorted by id.

    Raises:
        SubmissionsNotFound: no submissions folder, no student in it, or a student named in ``only``
            has no submission there.
        OutputInUse: another run writes ``out``.
        engine.BuilderDoesNotLoad: the selected buildx builder would not load the images.
        BatchStopped: the engine went away mid-batch (what was graded is saved; rerun to resume).
        engine.EngineUnavailable: no engine answers at the start.
    """
    from . import report

    say = say or (lambda _message: None)
    folders = student_folders(submissions)
    wanted = set(only)
    if wanted:
        unknown = sorted(wanted - set(folders))
        if unknown:
            raise SubmissionsNotFound(f"No submission for {', '.join(unknown)} in {submissions} "
                                      f"(students there: {', '.join(sorted(folders)) or 'none'}).")
        folders = {s: f for s, f in folders.items() if s in wanted}
    keys = {s: student_key(s) for s in folders}
    folders = {s: f for s, f in folders.items() if in_shard(keys[s], shard)}

    out.mkdir(parents=True, exist_ok=True)
    out_lock = _lock_output(out)
    run_id = uuid.uuid4().hex[:12]
    run_lock = _Lock(RUNS_DIR / f"{run_id}.lock")
    work_root = config.CACHE_DIR / "grading" / run_id
    try:
        for stale in (out / "results").glob(".*.tmp"):
            stale.unlink(missing_ok=True)  # half-written by a killed run: never read
        cases: list = []
        if grader is None:
            check_contexts(engines)
            for context in dict.fromkeys(engines or [""]):
                cleanup = prepare_engine(context, run_id=run_id, keys=[keys[s] for s in folders])
                say(f"Engine {context + ' ' if context else ''}clean-up: {cleanup}.")
            cases = submission.hidden_cases()

        todo: list[_Task] = []
        kept: dict[str, grading.StudentGrade] = {}
        for student, folder in folders.items():
            key = keys[student]
            current = fingerprint(folder)
            try:
                previous = resultfiles.read_result(resultfiles.result_path(out, key))
            except resultfiles.ResultFileInvalid:
                previous = None  # none yet, half-written by a killed run, or of another format: grade again
            if (previous is not None and previous.fingerprint == current and previous.grade.student == student
                    and not previous.grade.grader_errors):  # an exercise the grader failed on is graded again
                kept[student] = previous.grade
            else:
                todo.append(_Task(student, key, str(folder), current))
        if kept:
            say(f"Kept {len(kept)} result(s) of an earlier run (submission unchanged); grading {len(todo)}.")
        for grade in kept.values():
            report.write_feedback(grade, out / "feedback")
        if (out / "results").is_dir():
            write_gradebook(out)

        settings = _Settings(str(out), run_id, str(work_root), cases, limits, build_timeout, keep_images,
                             keep_storage, grader)
        graded = _run_workers(todo, settings, jobs=jobs or default_jobs(memory_limit_bytes=limits.memory_bytes),
                              engines=engines, bar=bar, say=say, after=lambda g: _after_student(g, out, progress))
        failed = {g.student: sorted(g.grader_errors) for g in graded if g.grader_errors}
        if failed:
            say(f"Not graded because the grader itself failed, not the submission ({len(failed)} student(s)): "
                + "; ".join(f"{student} ({', '.join(exercises)})" for student, exercises in sorted(failed.items()))
                + ". Their feedback says so; running the same command again grades these exercises again.")
    finally:
        run_lock.release(remove=True)
        out_lock.release()
        shutil.rmtree(work_root, ignore_errors=True)
    return sorted([*kept.values(), *graded], key=lambda g: g.student)


def _after_student(grade: grading.StudentGrade, out: Path,
                   progress: Callable[[grading.StudentGrade], None] | None) -> None:
    """What follows each finished student in the parent: feedback, and the gradebook from the result files."""
    from . import report

    report.write_feedback(grade, out / "feedback")
    write_gradebook(out)
    if progress:
        progress(grade)


def _run_workers(todo: list[_Task], settings: _Settings, *, jobs: int, engines: Sequence[str], bar: bool,
                 say: Callable[[str], None], after: Callable[[grading.StudentGrade], None]
                 ) -> list[grading.StudentGrade]:
    """Grade ``todo`` in ``jobs`` spawned worker processes; return the new grades.

    Workers are *spawned*, not forked: a forked child would share the parent's
    Docker SDK client (its urllib3 connection pool, cached by
    :func:`engine.client.client`), and two processes writing HTTP on one socket corrupt
    each other's requests. A spawned worker makes its own client.

    Raises:
        BatchStopped: a worker found the engine gone.
    """
    if not todo:
        return []
    from tqdm import tqdm

    ctx = multiprocessing.get_context("spawn")
    tasks, events = ctx.Queue(), ctx.Queue()
    jobs = max(1, min(jobs, len(todo)))
    for task in todo:
        tasks.put(task)
    for _ in range(jobs):
        tasks.put(None)
    contexts = list(engines) or [""]
    gate = _Gate(ctx)
    workers: dict[int, multiprocessing.process.BaseProcess] = {}
    running: dict[int, str] = {}  # worker pid -> key being graded

    def start(slot: int) -> None:
        proc = ctx.Process(target=_worker, args=(tasks, events, settings, os.getpid(), contexts[slot % len(contexts)], gate),
                           daemon=True, name=f"grader-{slot}")
        proc.start()
        workers[slot] = proc

    for slot in range(jobs):
        start(slot)
    names = {t.key: t.student for t in todo}
    pending = set(names)
    graded: list[grading.StudentGrade] = []
    progress = tqdm(total=len(todo), unit="student", file=sys.stderr, disable=not bar, dynamic_ncols=True)
    stopped, because = "", ""  # why the batch ends early ("engine", "storage" or "interrupted"), in the worker's words

    def handle(kind: str, key: str, payload: object) -> None:
        nonlocal stopped, because
        if kind == "start":
            running[int(payload)] = key  # type: ignore[call-overload]
            return
        if kind == "say":
            with progress.external_write_mode():
                say(str(payload))
            return
        for pid in [pid for pid, k in running.items() if k == key]:
            del running[pid]
        pending.discard(key)
        progress.update(1)
        if kind == "done":
            grade = grading.StudentGrade.from_dict(payload)  # type: ignore[arg-type]
            graded.append(grade)
            with progress.external_write_mode():
                after(grade)
        elif kind in ("engine", "storage"):
            stopped, because = kind, str(payload)
        else:
            say(f"{names[key]}: the grader failed ({str(payload).strip().splitlines()[-1]}); not graded, a rerun "
                "tries again.")

    try:
        while pending and not stopped:
            try:
                handle(*events.get(timeout=1.0))
                continue
            except queue.Empty:
                pass
            for slot, proc in list(workers.items()):
                if not proc.is_alive() and proc.exitcode not in (0, None) and proc.pid in running:
                    # It died grading someone (e.g. the kernel's OOM killer): name them, replace the worker.
                    # A worker that dies holding no task (it could not even start) is not replaced.
                    lost = running.pop(proc.pid)
                    gate.leave()  # it never will: a prune must not wait for it
                    gate.release(proc.pid)
                    if lost in pending:
                        pending.discard(lost)
                        progress.update(1)
                        say(f"{names[lost]}: the grader process died (exit code {proc.exitcode}); not graded, "
                            "a rerun tries again.")
                    start(slot)
            if not any(p.is_alive() for p in workers.values()):
                while True:  # what the last workers said just before they ended
                    try:
                        handle(*events.get(timeout=0.5))
                    except queue.Empty:
                        break
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        raise
    finally:
        progress.close()
        for proc in workers.values():
            if proc.is_alive() and (stopped or pending):
                proc.terminate()  # SIGTERM: the worker kills its process group (its builds too)
        for proc in workers.values():
            proc.join(timeout=10)
        tasks.close()
        events.close()
    if pending and not stopped:
        codes = sorted({str(p.exitcode) for p in workers.values()})
        raise WorkersFailed(f"The grader's worker processes ended (exit code {', '.join(codes)}) with "
                            f"{len(pending)} student(s) not graded; their output above says why. Every finished "
                            f"result is saved in {Path(settings.out) / 'results'}; rerun the same command to go on.")
    if stopped in ("engine", "storage"):
        what, fix = (("The Docker engine went away mid-batch", "Start the engine again") if stopped == "engine" else
                     ("The Docker engine can no longer write its images and containers", "Free space on the host's "
                      "disk (`df -h`; a disk that filled makes a grading engine's disk image read-only) and start the "
                      "engine again (a grading engine: `containerlab engine stop --purge`, then `containerlab engine "
                      "start`)"))
        raise BatchStopped(f"{what} ({because.splitlines()[0]}). "
                           f"{len(graded)} student(s) were graded in this run and {len(pending)} not yet; every "
                           f"finished result is saved in {Path(settings.out) / 'results'}. {fix}, "
                           "and rerun the same command: the batch resumes where it stopped.")
    return graded
