"""The exercises of the assignment: one :class:`Exercise` each, declared in its own check module.

Each module ``exN.py`` of this package declares its exercise as ``SPEC``, an
:class:`Exercise`: its notebook, its checks' points, how a submission of it is
graded and which engine objects grading it leaves. :func:`exercises` finds
them (every ``exN`` module, in the order of N); the grader, the gradebooks, the
class report and the tests iterate over it. The answer files and their cells
are read from the source notebook's ``%%writefile`` cells, as
:mod:`containerlab.autograde` reads them. Adding an exercise is adding its
notebook and its module; nothing here changes.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import answers, config
from . import CheckResults
from .submission import SOLUTIONS, Submission

#: The names of the exercise modules of this package.
MODULE_NAME = re.compile(r"ex(\d+)")


def _no_problem(checked: CheckResults) -> str:
    return ""


@dataclass(frozen=True)
class Exercise:
    """One exercise: its notebook, its checks' points, how it is graded, what grading it leaves.

    Attributes:
        key: ``"ex1"`` ... (the name of its module).
        notebook: the notebook's file name (the same in ``solutions/ch14`` and in a submission).
        grade: grades one submission of it (:class:`.submission.Submission`); raises what the
            grader records as the exercise's problem (:func:`containerlab.grading.grade_student`).
        points: the automatic points of each check, by name, in checklist order (empty for an
            exercise a person grades); the graded cells of the notebook give the same points.
        image: grading builds an image tagged :meth:`image_tag` (removed after the student unless kept).
        stack: grading starts a compose stack named :meth:`stack_project` (removed by the check).
        problem: what the grader records as the exercise's problem for results that are not a
            grade (a notebook that cannot be read); ``""`` for a grade.
    """

    key: str
    notebook: str
    grade: Callable[[Submission], CheckResults]
    points: Mapping[str, float] = field(default_factory=dict)
    image: bool = False
    stack: bool = False
    problem: Callable[[CheckResults], str] = _no_problem

    @property
    def max_points(self) -> float:
        """Automatic points available (for rows of ungradable submissions)."""
        return sum(self.points.values())

    @property
    def source(self) -> Path:
        """The instructor's source notebook (with solutions and hidden tests)."""
        return SOLUTIONS / self.notebook

    @functools.cached_property
    def answers(self) -> dict[str, str]:
        """The files the answer cells write: file name -> the cell's ``grade_id`` (:func:`answers.answer_cells`).

        Raises:
            conceptual.NotebookUnreadable: the source notebook is not there (it is needed to grade).
        """
        return answers.answer_cells(self.source)

    def image_tag(self, student: str) -> str:
        """The tag of a student's image of this exercise, for this grader.

        The tag part names this grader (:data:`config.INSTANCE`: user and clone): two graders on
        one engine who grade a student of the same name never build over, or clean up, each
        other's images.

        Args:
            student: the student's key (:func:`containerlab.batch.student_key`).
        """
        return f"cl-ex-grade-{student}-{self.key}:{config.INSTANCE}"

    def stack_project(self, student: str) -> str:
        """The compose project name of a student's stack of this exercise, for this grader (:data:`config.INSTANCE`).

        Args:
            student: the student's key (:func:`containerlab.batch.student_key`).
        """
        return f"cl-ex-grade-{config.INSTANCE}-{student}-{self.key}"


class RegistryError(LookupError):
    """An exercise module declares no exercise, or no exercise has the key asked for."""


@functools.cache
def exercises() -> tuple[Exercise, ...]:
    """Every exercise, in the order of its number: the ``SPEC`` of each ``exN`` module of this package.

    Raises:
        RegistryError: an ``exN`` module has no ``SPEC``, or its key is not its name.
    """
    package = __name__.rpartition(".")[0]
    found = []
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        number = MODULE_NAME.fullmatch(module.name)
        if number is None:
            continue
        spec = getattr(importlib.import_module(f"{package}.{module.name}"), "SPEC", None)
        if not isinstance(spec, Exercise) or spec.key != module.name:
            raise RegistryError(f"The module {package}.{module.name} declares no exercise {module.name!r} (SPEC).")
        found.append((int(number.group(1)), spec))
    return tuple(spec for _, spec in sorted(found, key=lambda pair: pair[0]))


def exercise(key: str) -> Exercise:
    """The exercise ``key`` (``"ex6"``).

    Raises:
        RegistryError: no exercise has that key.
    """
    for found in exercises():
        if found.key == key:
            return found
    raise RegistryError(f"There is no exercise {key!r}; the exercises are {[e.key for e in exercises()]}.")
