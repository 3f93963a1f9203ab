"""Grade one student: every exercise of one submission, into results (never rendered here).

:func:`grade_student` grades each exercise of the registry
(:func:`containerlab.checks.registry.exercises`) with its own ``grade``, and
records what goes wrong with one exercise without stopping. The class (finding
the student folders, workers, result files, shards) is the job of
:mod:`containerlab.batch`. The grader reads each answer cell straight from the notebook JSON and never runs a
student's Python: the Dockerfile of an answer cell is written to a scratch
folder and built with the course's own copy of the service as context, and the
image runs in the engine's sandbox (internal network, memory/CPU/process
limits, timeouts). Whatever goes wrong with one student is recorded for that
student and the batch goes on. Rendering the gradebook and the feedback is
the job of :mod:`containerlab.report`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import answers, engine
from .checks import CheckResult, CheckResults, conceptual, results, service
from .checks import registry
from .checks.registry import Exercise
from .checks.submission import Submission

@dataclass
class StudentGrade:
    """One student's graded submission.

    Attributes:
        student: the student's id (their folder's name, exactly as given).
        key: :func:`containerlab.batch.student_key` of ``student``: unique, safe in tags,
            container names and folder names.
        results: per exercise key, the check results (visible and hidden).
        problems: per exercise key, why it could not be graded (a sentence).
        notes: per exercise key, sentences for the feedback (answers found elsewhere, ...).
        seconds: wall time spent on this student, in seconds.
        exercise_seconds: per exercise key, the wall time its grading took, in seconds (where a
            student's time goes: ``benchmarks/grading.py`` adds them up over a class).
        pressure: per exercise key, signs that the engine's shared limits may have decided a
            failure rather than the submission (:data:`containerlab.engine.Pressure`: its disk
            was full, a build ran past its timeout...), gathered from that exercise's check results
            (:attr:`CheckResults.pressure`) and from an engine error that stopped its grading. The class
            grader grades a student with any again, alone on the engine, when other students were
            graded beside them.
        grader_errors: per exercise key, the grader's own failure on it (an exception inside the
            grader, never the student's mistake): the exercise is not graded, the batch's summary
            names it, and the next run grades it again.
        regraded: per exercise key, the pressure signs of a first grading beside other students that
            made the class grader grade this student again, alone on the engine; this grade is the
            second one. Empty when the student was graded once.
    """

    student: str
    key: str = ""
    results: dict[str, CheckResults] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    exercise_seconds: dict[str, float] = field(default_factory=dict)
    pressure: dict[str, list[str]] = field(default_factory=dict)
    grader_errors: dict[str, str] = field(default_factory=dict)
    regraded: dict[str, list[str]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Automatic points given over all exercises."""
        return sum(r.score for r in self.results.values())

    @property
    def max_score(self) -> float:
        """Automatic points available over all exercises."""
        return sum(e.max_points for e in registry.exercises())

    def to_dict(self) -> dict:
        """Return the grade as JSON-safe data (the ``grade`` of a result file); :meth:`from_dict` reads it."""
        return {
            "student": self.student,
            "key": self.key,
            "results": {ex: {"exercise": r.exercise, "image": r.image, "notes": list(r.notes),
                             "results": [_saved(c) for c in r.results]} for ex, r in self.results.items()},
            "problems": dict(self.problems),
            "notes": {ex: list(n) for ex, n in self.notes.items()},
            "seconds": self.seconds,
            "exercise_seconds": dict(self.exercise_seconds),
            "pressure": {ex: list(p) for ex, p in self.pressure.items()},
            "grader_errors": dict(self.grader_errors),
            "regraded": {ex: list(p) for ex, p in self.regraded.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> StudentGrade:
        """Rebuild a grade from :meth:`to_dict`'s data.

        Raises:
            KeyError, TypeError: the data is not a grade's.
        """
        return cls(
            student=data["student"],
            key=data["key"],
            results={ex: CheckResults(r["exercise"], tuple(CheckResult.from_dict(c) for c in r["results"]),
                                      r.get("image", ""), tuple(r.get("notes", ())))
                     for ex, r in data["results"].items()},
            problems=dict(data.get("problems", {})),
            notes={ex: list(n) for ex, n in data.get("notes", {}).items()},
            seconds=float(data.get("seconds", 0.0)),
            exercise_seconds={ex: float(s) for ex, s in data.get("exercise_seconds", {}).items()},
            pressure={ex: list(p) for ex, p in data.get("pressure", {}).items()},
            grader_errors=dict(data.get("grader_errors", {})),
            regraded={ex: list(p) for ex, p in data.get("regraded", {}).items()},
        )


def _saved(result: CheckResult) -> dict:
    """One check result as a result file keeps it: without its pressure, which the grade keeps per exercise."""
    saved = result.to_dict()
    del saved["pressure"]
    return saved


#: The name of the one check an exercise holds when it could not be graded (the grader failed, or the
#: notebook could not be read); its real checks are then absent.
GRADED_CHECK = "graded"


def _grader_failed(exercise: Exercise, error: str) -> CheckResults:
    """The result of an exercise the grader itself failed on: not graded, and not the student's doing."""
    return results(exercise.key, [CheckResult(
        GRADED_CHECK, "The exercise could be graded", False, exercise.max_points,
        f"Not graded yet: the grader itself failed on this exercise ({error}). This is not a mistake in your "
        "work; the exercise is graded again when your instructor runs the grader again.",
        "Nothing to change in your work for this.")])


def _not_graded(exercise: Exercise, problem: str) -> CheckResults:
    return results(exercise.key, [CheckResult(GRADED_CHECK, "The exercise could be graded", False,
                                              exercise.max_points, problem,
                                              "Fix the problem named above and submit again.")])


def grade_student(student: str, folder: Path, *, key: str, work_root: Path,
                  cases: list[tuple[dict[str, float], float]],
                  limits: engine.SandboxLimits = engine.SandboxLimits(),
                  build_timeout: float = service.BUILD_TIMEOUT, keep_images: bool = False) -> StudentGrade:
    """Grade every exercise of one student; a problem in one exercise is recorded, not raised.

    Args:
        student: the student's id.
        folder: the folder holding their notebooks.
        key: the student's key (:func:`containerlab.batch.student_key`); every image tag and the
            scratch folder are named by it, so two students never share one.
        work_root: scratch folder (the subfolder ``<key>`` is made and removed).
        cases: exercise 1's hidden request set.
        limits: sandbox limits for containers.
        build_timeout: seconds after which a build is stopped.
        keep_images: keep the images built from the submission (default: removed).

    Returns:
        The student's results and problems.

    Raises:
        EngineUnavailable: the engine stopped answering (not the student's fault; nothing is recorded).
    """
    start = time.monotonic()
    grade = StudentGrade(student, key)
    work = work_root / key
    work.mkdir(parents=True, exist_ok=True)
    tags = []
    try:
        for exercise in registry.exercises():
            notebook, found = answers.find_notebook(folder, exercise.notebook)
            pressure: tuple[str, ...] = ()
            began = time.monotonic()
            if exercise.image:
                tags.append(exercise.image_tag(key))
            try:
                grade.results[exercise.key] = exercise.grade(Submission(
                    exercise, notebook, work, key, limits=limits, build_timeout=build_timeout, cases=cases,
                    notes=found, earlier=dict(grade.results)))
                if problem := exercise.problem(grade.results[exercise.key]):
                    grade.problems[exercise.key] = problem
                pressure = grade.results[exercise.key].pressure
            except (conceptual.NotebookUnreadable, ValueError, OSError) as exc:
                grade.problems[exercise.key] = str(exc)
                grade.results[exercise.key] = _not_graded(exercise, str(exc)).noted(found)
            except engine.EngineUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001  (one submission must never stop the batch)
                error = f"{type(exc).__name__}: {exc}"
                grade.grader_errors[exercise.key] = error
                grade.problems[exercise.key] = f"grader error, not graded ({error})"
                grade.results[exercise.key] = _grader_failed(exercise, error)
                # It may be the engine's doing: a second try, alone.
                pressure = (*(exc.pressure if isinstance(exc, engine.EngineError) else ()),
                            f"the grader failed ({error})")
            grade.exercise_seconds[exercise.key] = time.monotonic() - began
            if pressure:
                grade.pressure[exercise.key] = list(pressure)
            if exercise.key in grade.results and grade.results[exercise.key].notes:
                grade.notes[exercise.key] = list(grade.results[exercise.key].notes)
    finally:
        if not keep_images:
            for tag in tags:
                try:
                    engine.remove_image(tag)
                except Exception:  # noqa: BLE001  (the engine is gone: the next run's clean-up removes it)
                    pass
        shutil.rmtree(work, ignore_errors=True)
    grade.seconds = time.monotonic() - start
    return grade
