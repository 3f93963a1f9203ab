"""Grade one student: every exercise of one submission, into results (never rendered here).

The class (finding the student folders, workers, result files, shards) is the
job of :mod:`containerlab.batch`. The grader reads each answer cell straight from the notebook JSON and never runs a
student's Python: the Dockerfile of an answer cell is written to a scratch
folder and built with the course's own copy of the service as context, and the
image runs in the engine's sandbox (internal network, memory/CPU/process
limits, timeouts). Whatever goes wrong with one student is recorded for that
student and the batch goes on. Rendering the gradebook and the feedback is
the job of :mod:`containerlab.report`.
"""

from __future__ import annotations

import ast
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import answers, config, engine
from .checks.dockerfile import PLACEHOLDER
from .checks import CheckResult, CheckResults, conceptual, ex1, ex2, ex3, ex6, results, runcommand, service

ASSIGNMENT = "ch14"
SOLUTIONS = config.ROOT / "solutions" / ASSIGNMENT


@dataclass(frozen=True)
class Exercise:
    """How to grade one exercise of a submission.

    Attributes:
        key: ``"ex1"`` ... ``"ex6"``.
        notebook: the notebook's file name.
        max_points: automatic points available (for rows of ungradable submissions).
    """

    key: str
    notebook: str
    max_points: float


EXERCISES: tuple[Exercise, ...] = (
    Exercise("ex1", "ex1-write-a-dockerfile.ipynb", sum(ex1.POINTS.values())),
    Exercise("ex2", "ex2-improve-the-image.ipynb", sum(ex2.POINTS.values())),
    Exercise("ex3", "ex3-data-and-secrets-out.ipynb", sum(ex3.POINTS.values())),
    Exercise("ex4", "ex4-the-lockfile-analogy.ipynb", 0),
    Exercise("ex5", "ex5-when-not-to-containerise.ipynb", 0),
    Exercise("ex6", "ex6-compose-the-stack.ipynb", sum(ex6.POINTS.values())),
)


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
        pressure: per exercise key, signs that the engine's shared limits may have decided a
            failure rather than the submission (:func:`containerlab.engine.note_pressure`: its disk
            was full, a build ran past its timeout...). The class grader grades a student with any
            again, alone on the engine, when other students were graded beside them.
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
        return sum(e.max_points for e in EXERCISES)

    def to_dict(self) -> dict:
        """Return the grade as JSON-safe data (the ``grade`` of a result file); :meth:`from_dict` reads it."""
        return {
            "student": self.student,
            "key": self.key,
            "results": {ex: {"exercise": r.exercise, "image": r.image, "notes": list(r.notes),
                             "results": [asdict(c) for c in r.results]} for ex, r in self.results.items()},
            "problems": dict(self.problems),
            "notes": {ex: list(n) for ex, n in self.notes.items()},
            "seconds": self.seconds,
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
            results={ex: CheckResults(r["exercise"], tuple(CheckResult(**c) for c in r["results"]),
                                      r.get("image", ""), tuple(r.get("notes", ())))
                     for ex, r in data["results"].items()},
            problems=dict(data.get("problems", {})),
            notes={ex: list(n) for ex, n in data.get("notes", {}).items()},
            seconds=float(data.get("seconds", 0.0)),
            pressure={ex: list(p) for ex, p in data.get("pressure", {}).items()},
            grader_errors=dict(data.get("grader_errors", {})),
            regraded={ex: list(p) for ex, p in data.get("regraded", {}).items()},
        )


#: The one file of the student's folder that goes into the build context: the task invites
#: editing it, and it cannot reach outside the context (nbgrader: ``Autograde.exclude_overwriting``).
STUDENT_CONTEXT_FILES = ("service/.dockerignore",)
#: A student's .dockerignore larger than this (bytes) is not used.
MAX_STUDENT_FILE = 64 * 1024


def build_context(work: Path, folder: Path) -> tuple[Path, tuple[str, ...]]:
    """Make the build context: the course's copy of the service, with the student's .dockerignore.

    Only the files in :data:`STUDENT_CONTEXT_FILES` are taken from the student's folder
    (regular files reached without a symbolic link, at most :data:`MAX_STUDENT_FILE` bytes); the code, the
    lockfile and the data are the course's. A student folder with a ``service/`` folder
    but no ``.dockerignore`` means the student deleted it, as nbgrader would see it.

    Returns:
        The context folder (made once per student) and notes for the feedback.
    """
    context = work / "service"
    if context.exists():
        return context, ()
    shutil.copytree(SOLUTIONS / "service", context)
    notes = []
    for name in STUDENT_CONTEXT_FILES:
        theirs, ours = folder / name, work / name
        linked = any((folder / Path(*Path(name).parts[:i + 1])).is_symlink() for i in range(len(Path(name).parts)))
        if linked or (theirs.exists() and not theirs.is_file()):
            notes.append(f"Your {name} is a link or not a regular file; the course's copy was used.")
        elif theirs.is_file():
            if theirs.stat().st_size > MAX_STUDENT_FILE:
                notes.append(f"Your {name} is larger than {MAX_STUDENT_FILE // 1024} KiB; the course's copy "
                             "was used.")
            else:
                shutil.copyfile(theirs, ours)
        elif theirs.parent.is_dir():
            ours.unlink(missing_ok=True)
            notes.append(f"Your folder has no {name}; the image was built without one.")
    return context, tuple(notes)


def _answer(notebook: Path, filename: str, grade_id: str, work: Path) -> tuple[Path, tuple[str, ...]]:
    """Write what the notebook's answer cell writes into ``work``; return the file and the notes."""
    answer = answers.written_file(notebook, filename, grade_id=grade_id)
    target = work / filename
    target.write_text(answer.text, encoding="utf-8")
    return target, answer.notes


def _noted(checked: CheckResults, *notes: tuple[str, ...]) -> CheckResults:
    return CheckResults(checked.exercise, checked.results, checked.image,
                        tuple(n for group in notes for n in group) + checked.notes)


def hidden_cases(solutions: Path = SOLUTIONS, *, notebook: str = "ex1-write-a-dockerfile.ipynb",
                 grade_id: str = "ex1-test-hidden-predict") -> list[tuple[dict[str, float], float]]:
    """Read an exercise's hidden request set (``HIDDEN_CASES``) from the instructor's source notebook.

    Args:
        solutions: the folder of the source notebooks.
        notebook: the notebook's file name (exercise 1's by default).
        grade_id: the hidden test cell that assigns ``HIDDEN_CASES``.

    Raises:
        FileNotFoundError: the solutions are not there (they are needed to grade).
    """
    notebook = solutions / notebook
    source = conceptual.read_cell(notebook, grade_id)
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HIDDEN_CASES":
            return [(dict(c), float(v)) for c, v in ast.literal_eval(node.value)]
    raise FileNotFoundError(f"{notebook} has no HIDDEN_CASES in its hidden test cell.")


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


def grade_ex1(notebook: Path, work: Path, *, tag: str, cases: list[tuple[dict[str, float], float]],
              limits: engine.SandboxLimits, build_timeout: float, notes: tuple[str, ...] = ()) -> CheckResults:
    """Grade exercise 1 of one submission: visible and hidden checks.

    Raises:
        conceptual.NotebookUnreadable: the notebook is missing or not valid JSON.
        answers.AnswerMissing: no cell writes ex1.Dockerfile.
    """
    dockerfile, found = _answer(notebook, "ex1.Dockerfile", "ex1-dockerfile", work)
    context, context_notes = build_context(work, notebook.parent)
    checked = ex1.check_with_hidden(dockerfile, context, cases, data_dir=context / "data", tag=tag, limits=limits,
                                    build_timeout=build_timeout)
    return _noted(checked, notes, found, context_notes)


def reported_number(notebook: Path, grade_id: str, name: str) -> float | str:
    """Read ``NAME = <number>`` from an answer cell without running it.

    When the cell was copied, the copy run last is read (as for the answer cells).

    Returns:
        The number, or a sentence saying why none could be read (the grader never
        runs a student's code, so a computed value cannot be read).
    """
    source, _ = answers.cell_source(notebook, grade_id)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"the cell {grade_id} is not valid Python ({exc.msg}, line {exc.lineno})"
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            try:
                return float(ast.literal_eval(node.value))
            except (ValueError, TypeError):
                return (f"{name} is computed in the cell; the batch grader only reads a number written "
                        "there (e.g. 12.5)")
    return f"the cell {grade_id} sets no {name}"


def grade_ex2(notebook: Path, work: Path, *, tag: str, ex1_image: str,
              limits: engine.SandboxLimits, build_timeout: float, notes: tuple[str, ...] = ()) -> CheckResults:
    """Grade exercise 2 of one submission against the student's own exercise-1 image."""
    dockerfile, found = _answer(notebook, "ex2.Dockerfile", "ex2-dockerfile", work)
    context, context_notes = build_context(work, notebook.parent)
    checked = ex2.check(dockerfile, context, tag=tag, ex1_image=ex1_image, limits=limits,
                        build_timeout=build_timeout)
    reported = reported_number(notebook, "ex2-reported-reduction", "REPORTED_REDUCTION_PERCENT")
    found += answers.cell_source(notebook, "ex2-reported-reduction")[1]
    if isinstance(reported, str):
        report = results("ex2", [CheckResult("reported-reduction", ex2.DESCRIPTIONS["reported-reduction"], False,
                                             ex2.POINTS["reported-reduction"], reported[0].upper() + reported[1:] + ".",
                                             "Write the measured reduction as a number.")])
    else:
        report = ex2.check_report(checked, reported, ex1_image=ex1_image)
    return _noted(checked + report, notes, found, context_notes)


def grade_ex3(notebook: Path, work: Path, *, tag: str, limits: engine.SandboxLimits,
              build_timeout: float, notes: tuple[str, ...] = ()) -> CheckResults:
    """Grade exercise 3 of one submission: the Dockerfile, the run command, the free-text answer's presence."""
    dockerfile, found = _answer(notebook, "ex3.Dockerfile", "ex3-dockerfile", work)
    run_command, found_run = _answer(notebook, "ex3-run.sh", "ex3-run-command", work)
    context, context_notes = build_context(work, notebook.parent)
    run_files = _copy_run_files(run_command.read_text(encoding="utf-8"), notebook.parent, work)
    checked = ex3.check(dockerfile, run_command, context, folder=work, tag=tag,
                        limits=limits, build_timeout=build_timeout)
    return _noted(checked + conceptual.check(notebook, "ex3-answer", exercise="ex3", manual_points=3),
                  notes, found, found_run, context_notes, run_files)


#: What an ex6 row says when the student did not try the optional exercise.
NOT_ATTEMPTED = "Not attempted (optional)."


def not_attempted(exercise: Exercise, checks: dict[str, int | float], descriptions: dict[str, str],
                  hidden: tuple[str, ...] = ()) -> CheckResults:
    """The results of an optional exercise that was not tried: every check failed, saying only that."""
    return results(exercise.key, [CheckResult(n, descriptions[n], False, p, NOT_ATTEMPTED, "", n in hidden)
                                  for n, p in checks.items()])


def grade_ex6(notebook: Path, work: Path, *, key: str, limits: engine.SandboxLimits, build_timeout: float,
              notes: tuple[str, ...] = ()) -> CheckResults:
    """Grade the optional exercise 6 of one submission: the compose file, visible and hidden checks.

    A notebook that is missing, or whose answer cell still holds the placeholder, is not
    attempted: every check gets 0 with :data:`NOT_ATTEMPTED`, and nothing else is said.

    Args:
        notebook: the student's exercise 6 notebook.
        work: the student's scratch folder (the compose file and the course's service copy go there).
        key: the student's key; the stack runs as the compose project ``cl-ex-grade-<instance>-<key>-ex6``
            (:data:`config.INSTANCE`: two graders on one engine never stop each other's stack).
        limits: limits of every service of the stack.
        build_timeout: seconds for the build of the course's API image.
        notes: notes about the notebook found (a duplicate name).
    """
    exercise = next(e for e in EXERCISES if e.key == "ex6")
    skipped = not_attempted(exercise, ex6.POINTS, ex6.DESCRIPTIONS, ex6.HIDDEN)
    if not notebook.is_file():
        return skipped
    try:
        compose_file, found = _answer(notebook, "compose.yaml", "ex6-compose", work)
    except answers.AnswerMissing:
        return skipped
    text = compose_file.read_text(encoding="utf-8")
    if PLACEHOLDER in text or not text.strip():
        return skipped
    context, _ = build_context(work, notebook.parent)
    project = ex6_project(key)
    cases = hidden_cases(notebook="ex6-compose-the-stack.ipynb", grade_id="ex6-test-hidden-many-customers")
    visible = ex6.check(compose_file, context, folder=work, project=project, limits=limits,
                        build_timeout=build_timeout)
    if visible.get("stack-up").passed:
        hidden = ex6.check_hidden(compose_file, cases, context, folder=work, project=project, limits=limits,
                                  build_timeout=build_timeout)
    else:  # the hidden checks would start the same stack again, and it would fail the same way
        hidden = results("ex6", [CheckResult(n, ex6.DESCRIPTIONS[n], False, ex6.POINTS[n],
                                             f"Counts once {ex6.UP}.", ex6.UP_HINT, True) for n in ex6.HIDDEN])
    return _noted(visible + hidden, notes, found)


def ex6_project(key: str) -> str:
    """The compose project name of a student's exercise-6 stack, for this grader (:data:`config.INSTANCE`).

    Args:
        key: the student's key (:func:`containerlab.batch.student_key`).
    """
    return f"cl-ex-grade-{config.INSTANCE}-{key}-ex6"


def _copy_run_files(command: str, folder: Path, work: Path) -> tuple[str, ...]:
    """Copy the student's own files their run command mounts or reads (a token file) into ``work``.

    Only what :func:`runcommand.student_files` lists (regular files outside the course's
    folders), each at most :data:`MAX_STUDENT_FILE` bytes; the rest stays the course's.

    Returns:
        Notes for the feedback about files that were not copied.
    """
    notes = []
    for relative in runcommand.student_files(command, folder):
        theirs, ours = folder / relative, work / relative
        if theirs.stat().st_size > MAX_STUDENT_FILE:
            notes.append(f"Your {relative} is larger than {MAX_STUDENT_FILE // 1024} KiB and was not used.")
            continue
        ours.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(theirs, ours)
    return tuple(notes)


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
        for exercise in EXERCISES:
            notebook, found = answers.find_notebook(folder, exercise.notebook)
            engine.clear_pressure()
            try:
                # The tag part names this grader (user and clone): two graders on one engine who grade
                # a student of the same name never build over, or clean up, each other's images.
                tag = f"cl-ex-grade-{key}-{exercise.key}:{config.INSTANCE}"
                if exercise.key == "ex1":
                    tags.append(tag)
                    grade.results["ex1"] = grade_ex1(notebook, work, tag=tag, cases=cases, limits=limits,
                                                     build_timeout=build_timeout, notes=found)
                elif exercise.key == "ex2":
                    tags.append(tag)
                    ex1_image = grade.results["ex1"].image if "ex1" in grade.results else ""
                    grade.results["ex2"] = grade_ex2(notebook, work, tag=tag, ex1_image=ex1_image,
                                                     limits=limits, build_timeout=build_timeout, notes=found)
                elif exercise.key == "ex3":
                    tags.append(tag)
                    grade.results["ex3"] = grade_ex3(notebook, work, tag=tag, limits=limits,
                                                     build_timeout=build_timeout, notes=found)
                elif exercise.key == "ex6":
                    grade.results["ex6"] = grade_ex6(notebook, work, key=key, limits=limits,
                                                     build_timeout=build_timeout, notes=found)
                else:
                    grade.results[exercise.key] = _noted(conceptual.check(
                        notebook, f"{exercise.key}-answer", exercise=exercise.key, manual_points=4), found)
                    first = grade.results[exercise.key].results[0]
                    if "not a valid notebook" in first.message or "There is no notebook" in first.message:
                        grade.problems[exercise.key] = first.message
            except (conceptual.NotebookUnreadable, ValueError, OSError) as exc:
                grade.problems[exercise.key] = str(exc)
                grade.results[exercise.key] = _noted(_not_graded(exercise, str(exc)), found)
            except engine.EngineUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001  (one submission must never stop the batch)
                error = f"{type(exc).__name__}: {exc}"
                grade.grader_errors[exercise.key] = error
                grade.problems[exercise.key] = f"grader error, not graded ({error})"
                grade.results[exercise.key] = _grader_failed(exercise, error)
                engine.note_pressure(f"the grader failed ({error})")  # it may be the engine's: a second try, alone
            if engine.pressure():
                grade.pressure[exercise.key] = engine.pressure()
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
