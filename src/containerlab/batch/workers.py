"""The worker processes that grade students side by side, and the parent that supervises them.

:func:`run_workers` spawns ``jobs`` workers that take students from a task
queue, grade each one, write their result file, and report on an event queue
(one small dataclass per kind of event: :data:`Event`); the parent reads the
events, shows progress, replaces a worker that died mid-student, and stops the
batch when a worker finds the engine gone or its storage read-only. A
:class:`Gate` shared by the workers lets one of them prune the build cache, or
grade a student again alone, while no other student is in progress.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import engine, grading, resultfiles, sandbox, shared
from .contexts import use_context
from .runs import RUN_LABEL, STUDENT_LABEL

#: Build cache kept between students, in bytes (``docker builder prune --keep-storage``): the service's
#: dependency layers (about 0.3 GB) and many students' own steps fit; a class of 300 cannot fill a disk.
DEFAULT_KEEP_STORAGE = 5 * 10**9
#: The largest share of the engine's disk the build cache keeps between students: on the corpus's 8 GB
#: grading engine, 5 GB of cache beside the base images left `docker save` no room (CI, stop 15).
CACHE_SHARE_OF_DISK = 0.25
#: Memory a job needs beyond its container's limit (the build, the grader itself), in bytes.
JOB_OVERHEAD_BYTES = 1024**3

#: A function that grades one student as :func:`grading.grade_student` does (its stand-in in tests).
Grader = Callable[..., grading.StudentGrade]


class WorkersFailed(RuntimeError):
    """The worker processes ended before the batch was done (they could not start, or kept dying)."""


class BatchStopped(engine.EngineUnavailable):
    """The engine went away mid-batch; what was graded is saved and a rerun resumes."""


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


@dataclass(frozen=True)
class Task:
    """One student to grade: id, key, folder (a path, as text) and the submission's fingerprint."""

    student: str
    key: str
    folder: str
    fingerprint: str


@dataclass(frozen=True)
class Settings:
    """What every worker of a run needs (picklable: it goes to spawned processes).

    Paths are text; ``cases`` are :func:`.checks.submission.hidden_cases`; ``grader`` is the
    module-level stand-in of a test, or ``None`` for :func:`grading.grade_student`; the rest
    are :func:`containerlab.batch.grade_class`'s arguments of the same names.
    """

    out: str
    run_id: str
    work_root: str
    cases: list
    limits: engine.SandboxLimits
    build_timeout: float
    keep_images: bool
    keep_storage: int | None
    grader: Grader | None


# What a worker puts on the event queue for the parent: one frozen dataclass per kind (pickled between
# processes, so module-level). Every event names the student it is about by key.


@dataclass(frozen=True)
class Started:
    """The worker with process id ``pid`` began grading the student ``key``."""

    key: str
    pid: int


@dataclass(frozen=True)
class Said:
    """A sentence about the student ``key`` for the person running the batch; the student is still in progress."""

    key: str
    text: str


@dataclass(frozen=True)
class Graded:
    """The student ``key`` is graded and their result file written (``grade``: :meth:`.StudentGrade.to_dict`)."""

    key: str
    grade: dict


@dataclass(frozen=True)
class GraderFailed:
    """The grader itself failed on the student ``key`` (``traceback``'s text); not graded, the batch goes on."""

    key: str
    traceback: str


@dataclass(frozen=True)
class Stopped:
    """The worker found its engine unable to grade anyone while grading the student ``key``, and ended.

    ``words`` say what it found; the student is not graded, and the batch stops. The subclasses say
    which trouble it is (:attr:`what`) and what the person running the batch does about it (:attr:`fix`).
    """

    key: str
    words: str
    what: ClassVar[str]
    fix: ClassVar[str]


@dataclass(frozen=True)
class EngineGone(Stopped):
    """The engine stopped answering."""

    what = "The Docker engine went away mid-batch"
    fix = "Start the engine again"


@dataclass(frozen=True)
class StorageFailed(Stopped):
    """The engine's storage went read-only (a student's failures may be the engine's: their grade is not saved)."""

    what = "The Docker engine can no longer write its images and containers"
    fix = ("Free space on the host's disk (`df -h`; a disk that filled makes a grading engine's disk image "
           "read-only) and start the engine again (a grading engine: `containerlab engine stop --purge`, then "
           "`containerlab engine start`)")


#: Every kind of event; the parent dispatches on the event's class.
Event = Started | Said | Graded | GraderFailed | EngineGone | StorageFailed


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


class Gate:
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


def _worker(tasks, events, settings: Settings, parent: int, engine_context: str,  # noqa: ANN001
            gate: Gate) -> None:
    """One worker process: grade students from ``tasks`` until a ``None``, tell each step on ``events`` (:data:`Event`)."""
    _die_with_parent(parent)
    if engine_context:
        use_context(engine_context)
    # What one worker reads of an image or measures by starting it (a correct Dockerfile builds the same
    # image for many students) spares the others the same work; the folder goes with the run's scratch folder.
    shared.share(Path(settings.work_root) / "shared")
    out = Path(settings.out)
    grader = settings.grader or grading.grade_student
    while True:
        task: Task | None = tasks.get()
        if task is None or os.getppid() != parent:
            return
        events.put(Started(task.key, os.getpid()))

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
                events.put(Said(task.key, f"{task.student}: graded again, alone on the engine, because while "
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
                events.put(StorageFailed(task.key, f"its storage went read-only while {task.student} was graded: "
                                                   f"{fault.strip().splitlines()[0][:300]}"))
                return
            resultfiles.write_result(out, grade, fingerprint=task.fingerprint)
            events.put(Graded(task.key, grade.to_dict()))
            if settings.grader is None and settings.keep_storage is not None:
                # In the worker, so that each engine of --engine keeps its own cache within budget.
                gate.prune(settings.keep_storage)
        except engine.EngineUnavailable as exc:
            events.put(EngineGone(task.key, str(exc)))
            return
        except Exception:  # noqa: BLE001  (a bug of the grader: said, not hidden, and the batch goes on)
            events.put(GraderFailed(task.key, traceback.format_exc(limit=6)))


def _failed_anything(grade: grading.StudentGrade) -> bool:
    """Whether ``grade`` has a problem or a failed check (a grade the engine's own failure may explain)."""
    return bool(grade.problems) or any(not c.passed for r in grade.results.values() for c in r.results)


def run_workers(todo: list[Task], settings: Settings, *, jobs: int, engines: Sequence[str], bar: bool,
                 say: Callable[[str], None], after: Callable[[grading.StudentGrade], None]
                 ) -> list[grading.StudentGrade]:
    """Grade ``todo`` in ``jobs`` spawned worker processes; return the new grades.

    Workers are *spawned*, not forked: a forked child would share the parent's
    Docker SDK client (its urllib3 connection pool, cached by
    :func:`engine.client.client`), and two processes writing HTTP on one socket corrupt
    each other's requests. A spawned worker makes its own client.

    Args:
        todo: the students to grade.
        settings: what every worker needs.
        jobs: workers to start (at most one per student).
        engines: docker contexts the workers go to, round-robin (empty: this process's engine).
        bar: show a progress bar on stderr.
        say: receives sentences about students the grader failed on.
        after: called in this process with each new grade, after its result file is written.

    Raises:
        BatchStopped: a worker found the engine gone, or its storage read-only.
        WorkersFailed: the workers ended with students not graded.
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
    gate = Gate(ctx)
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
    stopped: Stopped | None = None  # why a worker ended the batch early
    interrupted = False

    def finished(key: str) -> None:
        for pid in [pid for pid, k in running.items() if k == key]:
            del running[pid]
        pending.discard(key)
        progress.update(1)

    def handle(event: Event) -> None:
        nonlocal stopped
        match event:
            case Started():
                running[event.pid] = event.key
            case Said():
                with progress.external_write_mode():
                    say(event.text)
            case Graded():
                finished(event.key)
                grade = grading.StudentGrade.from_dict(event.grade)
                graded.append(grade)
                with progress.external_write_mode():
                    after(grade)
            case Stopped():
                finished(event.key)
                stopped = event
            case GraderFailed():
                finished(event.key)
                say(f"{names[event.key]}: the grader failed ({event.traceback.strip().splitlines()[-1]}); not "
                    "graded, a rerun tries again.")

    try:
        while pending and stopped is None:
            try:
                handle(events.get(timeout=1.0))
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
                        handle(events.get(timeout=0.5))
                    except queue.Empty:
                        break
                break
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        progress.close()
        for proc in workers.values():
            if proc.is_alive() and (stopped is not None or interrupted or pending):
                proc.terminate()  # SIGTERM: the worker kills its process group (its builds too)
        for proc in workers.values():
            proc.join(timeout=10)
        tasks.close()
        events.close()
    if pending and stopped is None:
        codes = sorted({str(p.exitcode) for p in workers.values()})
        raise WorkersFailed(f"The grader's worker processes ended (exit code {', '.join(codes)}) with "
                            f"{len(pending)} student(s) not graded; their output above says why. Every finished "
                            f"result is saved in {Path(settings.out) / 'results'}; rerun the same command to go on.")
    if stopped is not None:
        raise BatchStopped(f"{stopped.what} ({stopped.words.splitlines()[0]}). "
                           f"{len(graded)} student(s) were graded in this run and {len(pending)} not yet; every "
                           f"finished result is saved in {Path(settings.out) / 'results'}. {stopped.fix}, "
                           "and rerun the same command: the batch resumes where it stopped.")
    return graded
