"""The figures of a class report, counted from students' grades: plain data, no files, no drawing.

The class grader keeps one :class:`~containerlab.grading.StudentGrade` per
student; this module adds them up the way an instructor asks about a class:
how the points of each exercise are spread, how many students passed, failed
or were not graded on each check, which named causes of failure
(:mod:`containerlab.checks.causes`) hit the most students, whose grade needs a
second look (graded again alone, a grader error), and which verdicts changed
between two grading runs of the same class. Writing them out (CSV, charts,
HTML) is the job of :mod:`containerlab.classreport`.

Every function takes grades and returns frozen dataclasses, in a stable order,
so that two runs over the same grades give the same figures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .checks import NOT_ATTEMPTED, CheckResult
from .checks.causes import TAUGHT_IN
from .checks import registry
from .grading import GRADED_CHECK, StudentGrade

#: Verdicts of one check for one student, besides a result's own ``"pass"``, ``"fail"`` and ``"note"``.
NOT_GRADED = "not graded"  # the exercise could not be graded (grader error, unreadable notebook), or no such check
NOT_TRIED = "not attempted"  # the optional exercise was left as handed out


def verdicts(grade: StudentGrade) -> dict[tuple[str, str], str]:
    """Each check's verdict for one student.

    Args:
        grade: the student's grade.

    Returns:
        ``(exercise, check)`` to ``"pass"``, ``"fail"``, ``"note"`` (counts as passed), :data:`NOT_TRIED`
        or :data:`NOT_GRADED`. An exercise the grader failed on, or that could not be graded, holds
        only its :data:`~containerlab.grading.GRADED_CHECK` result: it gives no verdict here, and
        :func:`check_counts` counts its checks as not graded.
    """
    found: dict[tuple[str, str], str] = {}
    for exercise, checked in grade.results.items():
        if exercise in grade.grader_errors:
            continue
        for result in checked:
            if result.name == GRADED_CHECK:
                continue
            found[exercise, result.name] = NOT_TRIED if result.message == NOT_ATTEMPTED else result.status
    return found


def _order() -> dict[str, int]:
    return {e.key: i for i, e in enumerate(registry.exercises())}


# --------------------------------------------------------------------------- points per exercise


@dataclass(frozen=True)
class ScoreCount:
    """How many students got one score on one exercise.

    Attributes:
        exercise: the exercise key (``"ex1"``).
        score: the automatic points, or ``None`` for the students whose exercise was not graded.
        students: how many students.
        max_points: the exercise's automatic points available.
    """

    exercise: str
    score: float | None
    students: int
    max_points: float


def _graded(grade: StudentGrade, exercise: str) -> bool:
    found = grade.results.get(exercise)
    return (found is not None and exercise not in grade.grader_errors
            and not any(r.name == GRADED_CHECK for r in found))


def score_counts(grades: Iterable[StudentGrade]) -> list[ScoreCount]:
    """The spread of points of each exercise that gives automatic points.

    Args:
        grades: the students' grades.

    Returns:
        Per exercise (in the course's order, exercises worth 0 automatic points left out): one row per
        whole score from 0 to the maximum (zero counts included) and per other score met, in increasing
        order, then one row with ``score=None`` counting the students not graded on it.
    """
    grades = list(grades)
    rows = []
    for exercise in registry.exercises():
        if exercise.max_points <= 0:
            continue
        counts: dict[float, int] = {float(s): 0 for s in range(int(exercise.max_points) + 1)}
        missing = 0
        for grade in grades:
            if _graded(grade, exercise.key):
                score = float(grade.results[exercise.key].score)
                counts[score] = counts.get(score, 0) + 1
            else:
                missing += 1
        rows += [ScoreCount(exercise.key, s, n, exercise.max_points) for s, n in sorted(counts.items())]
        rows.append(ScoreCount(exercise.key, None, missing, exercise.max_points))
    return rows


# --------------------------------------------------------------------------- every check


@dataclass(frozen=True)
class CheckCount:
    """How one check of one exercise went across the class.

    Attributes:
        exercise: the exercise key.
        check: the check's name (``"builds"``).
        description: what it checks, as the students read it.
        points: the points it is worth.
        hidden: whether it is one of the instructor's hidden tests.
        passed: students who passed it (a note counts as passed).
        failed: students who failed it.
        not_attempted: students who left the optional exercise as handed out.
        not_graded: students whose exercise could not be graded, or whose result has no such check.
    """

    exercise: str
    check: str
    description: str
    points: float
    hidden: bool
    passed: int
    failed: int
    not_attempted: int
    not_graded: int


def check_counts(grades: Sequence[StudentGrade]) -> list[CheckCount]:
    """Count passes, failures and students not graded for every check any student's results hold.

    Args:
        grades: the students' grades.

    Returns:
        One row per check, by exercise in the course's order and, within one, in checklist order
        (the order of the first student whose results hold the check). ``passed + failed +
        not_attempted + not_graded`` is the number of students.
    """
    first: dict[tuple[str, str], CheckResult] = {}
    for grade in grades:
        for exercise, checked in grade.results.items():
            for result in checked:
                if result.name != GRADED_CHECK:
                    first.setdefault((exercise, result.name), result)
    tally = {key: {"pass": 0, "fail": 0, NOT_TRIED: 0} for key in first}
    for grade in grades:
        for key, verdict in verdicts(grade).items():
            tally[key]["pass" if verdict == "note" else verdict] += 1
    order = _order()
    keys = sorted(first, key=lambda k: order.get(k[0], len(order)))  # stable: checklist order kept
    rows = []
    for exercise, name in keys:
        result, seen = first[exercise, name], tally[exercise, name]
        rows.append(CheckCount(exercise, name, result.description, result.points, result.hidden, seen["pass"],
                               seen["fail"], seen[NOT_TRIED], len(grades) - sum(seen.values())))
    return rows


# --------------------------------------------------------------------------- named causes


class Aliases:
    """Stand-in names for students (``student A``, ``student B``, ... ``student AA``), in order of first use.

    The same student always gets the same alias from one instance.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def __call__(self, student: str) -> str:
        """The alias of ``student`` (a new one on first use)."""
        if student not in self._names:
            n, letters = len(self._names), ""
            while True:
                letters = chr(ord("A") + n % 26) + letters
                n = n // 26 - 1
                if n < 0:
                    break
            self._names[student] = f"student {letters}"
        return self._names[student]

    def hide(self, text: str, grade: StudentGrade) -> str:
        """``text`` with the student's name and key (as whole words, e.g. in an image tag) replaced by the alias."""
        alias = self(grade.student)
        for name in sorted({grade.key, grade.student} - {""}, key=len, reverse=True):
            text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", alias, text)
        return text


@dataclass(frozen=True)
class Example:
    """One failure of a named cause, with the student's name replaced.

    Attributes:
        student: the alias (``"student A"``).
        exercise: the exercise key.
        check: the failed check's name.
        message: what the check told the student (names replaced).
    """

    student: str
    exercise: str
    check: str
    message: str


@dataclass(frozen=True)
class CauseCount:
    """One named cause of failures across the class.

    Attributes:
        cause: its kind in :mod:`containerlab.checks.causes` (``"no-wheel"``).
        students: how many students it hit (once each, however many checks).
        failures: how many failed checks name it.
        page: the book page that teaches the fix (a file of ``notebooks/`` without ``.md``), or ``""``.
        section: the section of that page (its heading), or ``""``.
        examples: a few failures of different students, anonymised.
    """

    cause: str
    students: int
    failures: int
    page: str
    section: str
    examples: tuple[Example, ...]


def cause_counts(grades: Iterable[StudentGrade], *, aliases: Aliases | None = None,
                 examples: int = 3) -> list[CauseCount]:
    """Rank the named causes of failed checks by how many students they hit.

    Only failed checks whose :attr:`~containerlab.checks.CheckResult.cause` is set count (the
    grader names the cause of a failed build or start; other failures are in :func:`check_counts`).

    Args:
        grades: the students' grades (examples are taken in this order).
        aliases: who is called what in the examples (default: a new :class:`Aliases`).
        examples: at most this many examples per cause, each of another student.

    Returns:
        The causes, most students first (then most failures, then by name).
    """
    aliases = aliases or Aliases()
    hit: dict[str, set[str]] = {}
    failures: dict[str, int] = {}
    shown: dict[str, list[Example]] = {}
    for grade in grades:
        for exercise, checked in grade.results.items():
            for result in checked:
                if result.passed or not result.cause:
                    continue
                identity = grade.key or grade.student
                students = hit.setdefault(result.cause, set())
                failures[result.cause] = failures.get(result.cause, 0) + 1
                picked = shown.setdefault(result.cause, [])
                if identity not in students and len(picked) < examples:
                    picked.append(Example(aliases(grade.student), exercise, result.name,
                                          aliases.hide(result.message, grade)))
                students.add(identity)
    ranked = sorted(hit, key=lambda c: (-len(hit[c]), -failures[c], c))
    return [CauseCount(c, len(hit[c]), failures[c], *TAUGHT_IN.get(c, ("", "")), tuple(shown[c])) for c in ranked]


# --------------------------------------------------------------------------- grades to look at again


#: Reasons of :class:`Attention`.
REGRADED = "graded again, alone"
PRESSURE = "limits reached"
GRADER_ERROR = "grader error"
UNGRADED = "not graded"


@dataclass(frozen=True)
class Attention:
    """A student whose grade of one exercise an instructor should look at again.

    Attributes:
        student: the student's id (their real name: the instructor acts on it).
        exercise: the exercise key.
        reason: :data:`REGRADED` (the grade kept is a second grading, alone on the engine, after
            pressure signs beside other students), :data:`PRESSURE` (the kept grade met the engine's
            shared limits), :data:`GRADER_ERROR` (not graded because the grader failed; running the
            grader again grades it), or :data:`UNGRADED` (the submission could not be graded).
        detail: the signs, the error or the problem, as recorded.
    """

    student: str
    exercise: str
    reason: str
    detail: str


def attention(grades: Iterable[StudentGrade]) -> list[Attention]:
    """The students whose grade rests on a second grading, met the engine's limits, or is missing.

    Args:
        grades: the students' grades.

    Returns:
        Rows by student, then exercise in the course's order, then reason in the order above.
    """
    order = _order()
    rows = []
    for grade in grades:
        found = [(ex, REGRADED, "; ".join(signs)) for ex, signs in grade.regraded.items()]
        found += [(ex, PRESSURE, "; ".join(signs)) for ex, signs in grade.pressure.items()]
        found += [(ex, GRADER_ERROR, f"not graded because of a grader error ({error})")
                  for ex, error in grade.grader_errors.items()]
        found += [(ex, UNGRADED, problem) for ex, problem in grade.problems.items() if ex not in grade.grader_errors]
        reasons = [REGRADED, PRESSURE, GRADER_ERROR, UNGRADED]
        found.sort(key=lambda f: (order.get(f[0], len(order)), reasons.index(f[1])))
        rows += [Attention(grade.student, ex, reason, detail) for ex, reason, detail in found]
    return rows


# --------------------------------------------------------------------------- two runs of one class


@dataclass(frozen=True)
class Difference:
    """A check whose verdict for one student differs between two grading runs.

    Attributes:
        student: the student's id.
        exercise: the exercise key.
        check: the check's name.
        here: its verdict in the run reported on (see :func:`verdicts`).
        there: its verdict in the other run.
    """

    student: str
    exercise: str
    check: str
    here: str
    there: str


@dataclass(frozen=True)
class Comparison:
    """Two grading runs of the same class, check by check.

    Attributes:
        compared: how many students both runs graded.
        differences: every check whose verdict differs, by student, exercise and check.
        only_here: students only the run reported on graded.
        only_there: students only the other run graded.
    """

    compared: int
    differences: tuple[Difference, ...]
    only_here: tuple[str, ...]
    only_there: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """Whether both runs graded the same students with the same verdict on every check."""
        return not (self.differences or self.only_here or self.only_there)


def compare(here: Iterable[StudentGrade], there: Iterable[StudentGrade]) -> Comparison:
    """Compare two grading runs of the same class, student by student (by key, else by name).

    A check one run has and the other has not counts as :data:`NOT_GRADED` in the other.

    Args:
        here: the grades of the run reported on.
        there: the grades of the other run.

    Returns:
        The comparison.
    """
    mine = {g.key or g.student: g for g in here}
    theirs = {g.key or g.student: g for g in there}
    order = _order()
    differences = []
    for identity in sorted(mine.keys() & theirs.keys(), key=lambda i: (mine[i].student, i)):
        a, b = verdicts(mine[identity]), verdicts(theirs[identity])
        checks = dict.fromkeys([*a, *b])  # checklist order, this run's first
        for exercise, check in sorted(checks, key=lambda k: order.get(k[0], len(order))):
            va, vb = a.get((exercise, check), NOT_GRADED), b.get((exercise, check), NOT_GRADED)
            if va != vb:
                differences.append(Difference(mine[identity].student, exercise, check, va, vb))
    return Comparison(len(mine.keys() & theirs.keys()), tuple(differences),
                      tuple(sorted(mine[i].student for i in mine.keys() - theirs.keys())),
                      tuple(sorted(theirs[i].student for i in theirs.keys() - mine.keys())))
