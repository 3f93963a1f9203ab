"""A generated class for the class-report tests: grades made of the project's own types, by fixed rules.

Student ``i`` (0, 1, ...) is called ``stu<i>`` (three digits) with the key ``stu<i>-<i as 4 hex digits>``.
Every check of every exercise, with its real name and points, passes, except:

- ex1: ``i % 5 == 0``: the build fails, cause ``no-wheel`` (the message names the student and their
  image tag, as a real one can); ``i % 7 == 0`` (and not the above): the health check fails, cause
  ``loopback-only``. Either way every other check of ex1 is withheld ("Counts once ..."), as the
  grader does: 0 points. ``i % 3 == 0`` (and neither above): ``exec-form-cmd`` fails (no named cause):
  9 of 10 points.
- ex2: ``i % 11 == 0``: the build fails, cause ``no-wheel``, the rest withheld: 0 points.
- ex3: student 3: the grader failed on it (not graded).
- ex4 and ex5: the free-text answer is there for even ``i`` only.
- ex6: even ``i`` did not attempt it (every check "Not attempted"); odd ``i`` pass all.
- student 4 was graded again alone (pressure signs on ex1); the kept grade passed.
"""

from __future__ import annotations

from pathlib import Path

from containerlab import resultfiles
from containerlab.checks import NOT_ATTEMPTED, CheckResult, causes, ex1, ex2, ex3, ex6, results
from containerlab.checks import registry
from containerlab.grading import GRADED_CHECK, StudentGrade


def _failing(exercise: str, points: dict[str, int], failed: str, message: str, cause: str = "",
             withheld: bool = True) -> list[CheckResult]:
    out = []
    for name, worth in points.items():
        if name == failed:
            out.append(CheckResult(name, name, False, worth, message, "a hint", cause=cause))
        elif withheld:
            out.append(CheckResult(name, name, False, worth, "Counts once a container answers GET /health.", "h"))
        else:
            out.append(CheckResult(name, name, True, worth, "fine"))
    return out


def student(i: int) -> StudentGrade:
    """The grade of student ``i`` by the rules of this module."""
    name = f"stu{i:03d}"
    grade = StudentGrade(name, key=f"{name}-{i:04x}", seconds=12.5)
    tag = f"cl-ex-grade-{grade.key}-ex1:tester"
    if i % 5 == 0:
        items = _failing("ex1", ex1.POINTS, "builds", f"pip found no wheel of numpy for {name} ({tag}).",
                         causes.NO_WHEEL)
    elif i % 7 == 0:
        items = _failing("ex1", ex1.POINTS, "health", "The server listens on 127.0.0.1:80 only.",
                         causes.LOOPBACK_ONLY)
    elif i % 3 == 0:
        items = _failing("ex1", ex1.POINTS, "exec-form-cmd", "Line 9: CMD is shell form.", withheld=False)
    else:
        items = [CheckResult(n, n, True, p, "fine") for n, p in ex1.POINTS.items()]
    grade.results["ex1"] = results("ex1", items)
    if i % 11 == 0:
        grade.results["ex2"] = results("ex2", _failing("ex2", ex2.POINTS, "builds", f"No wheel ({name}).",
                                                       causes.NO_WHEEL))
    else:
        grade.results["ex2"] = results("ex2", [CheckResult(n, n, True, p) for n, p in ex2.POINTS.items()])
    if i == 3:
        error = "KeyError: 'boom'"
        grade.grader_errors["ex3"] = error
        grade.problems["ex3"] = f"grader error, not graded ({error})"
        grade.results["ex3"] = results("ex3", [CheckResult(GRADED_CHECK, "The exercise could be graded", False, 8,
                                                           f"Not graded yet ({error}).")])
    else:
        grade.results["ex3"] = results("ex3", [CheckResult(n, n, True, p) for n, p in ex3.POINTS.items()])
    for key in ("ex4", "ex5"):
        grade.results[key] = results(key, [CheckResult("answer-present", "An answer is written", i % 2 == 0, 0)])
    grade.results["ex6"] = results("ex6", [
        CheckResult(n, n, i % 2 == 1, p, "fine" if i % 2 else NOT_ATTEMPTED, hidden=n in ex6.HIDDEN)
        for n, p in ex6.POINTS.items()])
    if i == 4:
        grade.regraded["ex1"] = ["the engine's disk was full"]
    assert list(grade.results) == [e.key for e in registry.exercises()]
    return grade


def make_class(n: int) -> list[StudentGrade]:
    """Students 0 to ``n - 1``."""
    return [student(i) for i in range(n)]


def write_class(out: Path, grades: list[StudentGrade]) -> Path:
    """Write each grade as the class grader does (:func:`containerlab.resultfiles.write_result`) into ``out/results``."""
    for grade in grades:
        resultfiles.write_result(out, grade, fingerprint=f"fp-{grade.key}")
    return out
