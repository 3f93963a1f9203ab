"""Grade a class: student keys, shards, parallel workers, resumable result files, hygiene between students.

One student is graded by :func:`containerlab.grading.grade_student`; this
package runs it over a submissions folder (one folder per student, nbgrader's
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

:func:`grade_class` is the entry; the package is split by job, and the names
other modules use are also here (``batch.student_key``, ``batch.RUN_LABEL``, ...):

- :mod:`.students`: which students a batch grades (folders, ``only``, shards), their keys, fingerprints;
- :mod:`.runs`: a run's locks and labels, and the clean-up of what killed runs left on the engine;
- :mod:`.contexts`: docker contexts (pointing a process at one, checking them, preparing each engine);
- :mod:`.workers`: the worker processes and the parent that supervises them, the gate for cache prunes.

Result files are read and written by :mod:`containerlab.resultfiles`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .. import config, engine, grading, resultfiles
from ..checks import service, submission
from .contexts import check_contexts, prepare_engine  # noqa: F401  (re-exported)
from .runs import (  # noqa: F401  (re-exported)
    COMPOSE_PROJECT_LABEL,
    RUN_LABEL,
    RUNS_DIR,
    STUDENT_LABEL,
    Cleanup,
    Lock,
    OutputInUse,
    clean_leftovers,
    lock_output,
    run_states,
)
from .students import (  # noqa: F401  (re-exported)
    SubmissionsNotFound,
    fingerprint,
    in_shard,
    parse_shard,
    select,
    student_folders,
    student_key,
)
from .workers import (  # noqa: F401  (re-exported)
    DEFAULT_KEEP_STORAGE,
    BatchStopped,
    Grader,
    Settings,
    Task,
    WorkersFailed,
    default_jobs,
    run_workers,
)


def write_gradebook(out: Path) -> list[grading.StudentGrade]:
    """Rewrite ``OUT/gradebook.csv`` from every result file in ``OUT/results`` (atomically).

    Returns:
        The grades read, sorted by student.
    """
    from .. import gradebook

    grades = gradebook.load_results(out)
    gradebook.write_csv(grades, out / "gradebook.csv")
    return grades


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
        WorkersFailed: the worker processes ended with students not graded (what was graded is saved).
        engine.EngineUnavailable: no engine answers at the start.
    """
    from .. import report

    say = say or (lambda _message: None)
    folders = select(submissions, only=only, shard=shard)
    keys = {s: student_key(s) for s in folders}

    out.mkdir(parents=True, exist_ok=True)
    out_lock = lock_output(out)
    run_id = uuid.uuid4().hex[:12]
    run_lock = Lock(RUNS_DIR / f"{run_id}.lock")
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

        todo: list[Task] = []
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
                todo.append(Task(student, key, str(folder), current))
        if kept:
            say(f"Kept {len(kept)} result(s) of an earlier run (submission unchanged); grading {len(todo)}.")
        for grade in kept.values():
            report.write_feedback(grade, out / "feedback")
        if (out / "results").is_dir():
            write_gradebook(out)

        settings = Settings(str(out), run_id, str(work_root), cases, limits, build_timeout, keep_images,
                            keep_storage, grader)
        graded = run_workers(todo, settings, jobs=jobs or default_jobs(memory_limit_bytes=limits.memory_bytes),
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
    from .. import report

    report.write_feedback(grade, out / "feedback")
    write_gradebook(out)
    if progress:
        progress(grade)
