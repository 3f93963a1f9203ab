"""One exercise of one student's submission, as the class grader prepares it for its checks.

The grader never runs a student's code: what an answer cell writes is read from
the notebook JSON (:mod:`containerlab.answers`) and written into the student's
scratch folder; the build context is the course's copy of the service with the
student's ``.dockerignore``; the files the run command mounts are copied over;
a number the student reports is read from its cell. Each exercise's ``grade``
(:class:`.registry.Exercise`) takes a :class:`Submission` and returns results.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import answers, engine
from ..exercises import ASSIGNMENT, SOLUTIONS_DIR
from . import CheckResults, conceptual, runcommand, service

if TYPE_CHECKING:
    from .registry import Exercise

#: The instructor's source notebooks, solution files and the course's copy of the service.
SOLUTIONS = SOLUTIONS_DIR / ASSIGNMENT
#: The one file of the student's folder that goes into the build context: the task invites
#: editing it, and it cannot reach outside the context (nbgrader: ``Autograde.exclude_overwriting``).
STUDENT_CONTEXT_FILES = ("service/.dockerignore",)
#: A student's .dockerignore larger than this (bytes) is not used.
MAX_STUDENT_FILE = 64 * 1024


@dataclass(frozen=True)
class Submission:
    """What an exercise's ``grade`` gets: the student's notebook, a scratch folder and the grader's settings.

    Attributes:
        exercise: the exercise graded.
        notebook: the student's notebook of that exercise (it may be missing).
        work: the student's scratch folder (answer files and the service copy are written there).
        key: the student's key (:func:`containerlab.batch.student_key`): safe in tags and names.
        limits: sandbox limits of every container.
        build_timeout: seconds after which a build is stopped.
        cases: exercise 1's hidden request set (read once per class, :func:`hidden_cases`).
        notes: notes about the notebook found (a duplicate name), for the feedback.
        earlier: the results of the exercises graded before this one, by key (exercise 2 compares
            with the student's exercise-1 image).
    """

    exercise: Exercise
    notebook: Path
    work: Path
    key: str
    limits: engine.SandboxLimits = engine.SandboxLimits()
    build_timeout: float = service.BUILD_TIMEOUT
    cases: list[tuple[dict[str, float], float]] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    earlier: Mapping[str, CheckResults] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The tag of the image built from this submission (:meth:`.registry.Exercise.image_tag`)."""
        return self.exercise.image_tag(self.key)

    @property
    def project(self) -> str:
        """The compose project of this submission's stack (:meth:`.registry.Exercise.stack_project`)."""
        return self.exercise.stack_project(self.key)

    def answer(self, filename: str) -> tuple[Path, tuple[str, ...]]:
        """Write what the student's answer cell for ``filename`` writes into :attr:`work`.

        The cell is the one whose ``grade_id`` the source notebook gives that file
        (:attr:`.registry.Exercise.answers`).

        Returns:
            The written file and notes for the feedback (the copy graded, a cell found elsewhere).

        Raises:
            conceptual.NotebookUnreadable: the notebook is missing or not valid JSON.
            answers.AnswerMissing: no cell writes the file.
        """
        answer = answers.written_file(self.notebook, filename, grade_id=self.exercise.answers[filename])
        target = self.work / filename
        target.write_text(answer.text, encoding="utf-8")
        return target, answer.notes

    def context(self) -> tuple[Path, tuple[str, ...]]:
        """The build context, made once per student (:func:`build_context`), and notes for the feedback."""
        return build_context(self.work, self.notebook.parent)


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


def copy_run_files(command: str, folder: Path, work: Path) -> tuple[str, ...]:
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
