"""Checks for the Chapter 14 exercises: plain functions that return results.

Each exercise has its own module (:mod:`.ex1` ... :mod:`.ex6`), which declares
it for :mod:`.registry`; :mod:`.submission` prepares a student's files for its
``grade``, and :mod:`.conceptual` checks free-text answers. A check
measures what the student's work does on the real engine and returns a
:class:`CheckResult`; it never prints or renders. Grading adds results up
(:mod:`containerlab.grading`); showing them is the job of
:mod:`containerlab.report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: short identifier, stable across versions (``"builds"``, ``"exec-form-cmd"``).
        description: what was checked, as one line a student reads in the checklist.
        passed: whether the check passed.
        points: the points this check is worth (given in full when passed, else 0).
        message: what was measured or found (shown for passed and failed checks).
        hint: for a failed check, what to change, in plain language (not the answer).
        hidden: whether the check belongs to the instructor's hidden tests.
        note: a finding that is neither a pass nor a failure (the check did not apply, or found a
            right-but-risky choice): it counts as passed, is worth no points, and its hint is shown.
        cause: for a failure whose cause the grader named from evidence, its kind in
            :mod:`.causes` (``"no-wheel"``, ``"loopback-only"``); ``""`` otherwise. The message
            says the same to the student; this is for counting across a class.
        pressure: signs that the engine's shared limits, not the student's work, may have decided
            this outcome (:data:`containerlab.engine.Pressure`: its disk was full, the build ran past
            its timeout), taken from what the engine returned or raised; the class grader reads them
            (:attr:`CheckResults.pressure`). Not shown to the student.
    """

    name: str
    description: str
    passed: bool
    points: float
    message: str = ""
    hint: str = ""
    hidden: bool = False
    note: bool = False
    cause: str = ""
    pressure: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``"pass"``, ``"fail"`` or ``"note"``."""
        return "note" if self.note else "pass" if self.passed else "fail"

    @property
    def awarded(self) -> float:
        """Points given: ``points`` when passed, else 0."""
        return self.points if self.passed else 0.0

    def to_dict(self) -> dict:
        """The result as JSON-safe data (:meth:`from_dict` reads it back)."""
        return {**asdict(self), "pressure": list(self.pressure)}

    @classmethod
    def from_dict(cls, data: dict) -> CheckResult:
        """Rebuild a result from :meth:`to_dict`'s data (a result file, an entry a class shares).

        Raises:
            KeyError, TypeError: the data is not a result's.
        """
        return cls(**{**data, "pressure": tuple(data.get("pressure", ()))})


class CheckFailed(AssertionError):
    """A required check failed; the message is the student's hint.

    An ``AssertionError`` so that nbgrader's autograder gives the test cell 0 points.
    In a notebook it shows as one line (the check, what was found, the hint) instead of
    a traceback through this package: IPython asks an exception for its own rendering
    with ``_render_traceback_`` (IPython's ``InteractiveShell.showtraceback``), and the
    cell still ends with an error, which is what nbgrader counts.
    """

    def _render_traceback_(self) -> list[str]:
        """The lines IPython shows for this exception: one, in red, without a traceback."""
        return [f"\x1b[1;31mCheck failed:\x1b[0m {self}"]


@dataclass(frozen=True)
class CheckResults(Sequence[CheckResult]):
    """The results of one run of an exercise's checks, in checklist order.

    Attributes:
        exercise: which exercise, e.g. ``"ex1"``.
        results: the results.
        image: the tag of the student's image that was checked (``""`` when none was built).
    """

    exercise: str
    results: tuple[CheckResult, ...]
    image: str = ""
    notes: tuple[str, ...] = field(default=())

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def get(self, name: str) -> CheckResult:
        """Return the result named ``name``.

        Raises:
            KeyError: no check has that name (the message lists the names).
        """
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"No check named {name!r}; the checks are {[r.name for r in self.results]}")

    def require(self, *names: str) -> None:
        """Raise :class:`CheckFailed` when one of the named checks failed (for nbgrader test cells).

        Raises:
            CheckFailed: naming the first failed check and its hint.
        """
        for name in names:
            result = self.get(name)
            if not result.passed:
                raise CheckFailed(f"{result.description}: {result.message} {result.hint}".strip())

    @property
    def pressure(self) -> tuple[str, ...]:
        """The pressure signs of the results (:attr:`CheckResult.pressure`), each once, in order."""
        return tuple(dict.fromkeys(sign for r in self.results for sign in r.pressure))

    @property
    def score(self) -> float:
        """Points given, summed over the results."""
        return sum(r.awarded for r in self.results)

    @property
    def max_score(self) -> float:
        """Points available, summed over the results."""
        return sum(r.points for r in self.results)

    def noted(self, *groups: Iterable[str]) -> CheckResults:
        """These results with the notes of ``groups`` (in order) before their own notes."""
        return CheckResults(self.exercise, self.results, self.image,
                            tuple(n for group in groups for n in group) + self.notes)

    def __add__(self, other: CheckResults) -> CheckResults:  # type: ignore[override]
        return CheckResults(self.exercise, self.results + tuple(other.results), self.image or other.image,
                            self.notes + other.notes)


def results(exercise: str, items: Iterable[CheckResult], *, image: str = "", notes: Iterable[str] = ()) -> CheckResults:
    """Bundle check results of one exercise (a convenience for the exercise modules)."""
    return CheckResults(exercise, tuple(items), image, tuple(notes))


#: What each check of an optional exercise says when the student did not try it.
NOT_ATTEMPTED = "Not attempted (optional)."


def not_attempted(exercise: str, points: dict[str, float], descriptions: dict[str, str],
                  hidden: Sequence[str] = ()) -> CheckResults:
    """The results of an optional exercise that was not tried: every check failed, saying only that.

    Args:
        exercise: the exercise's key.
        points: the points of each check, by name, in checklist order.
        descriptions: each check's description, by name.
        hidden: the names of the hidden checks.
    """
    return results(exercise, [CheckResult(n, descriptions[n], False, p, NOT_ATTEMPTED, "", n in hidden)
                              for n, p in points.items()])


def counts_once(result: CheckResult, condition: str, hint: str) -> CheckResult:
    """Withhold a check's points until the answer does the task (issue 9: no free points).

    A check that passed on its own (the image builds, its base is slim) earns
    nothing while the answer does not do what the task asks (the service does not
    answer). The result then fails, its message says what it counts once, and it
    keeps what was measured, so that the student sees both.

    Args:
        result: the check's own result.
        condition: what must hold first, completing "Counts once ..." (e.g. "a container of the image
            answers GET /health").
        hint: what to do, pointing at the check that says how.

    Returns:
        ``result`` unchanged when it failed anyway (its own message says why), else a failed copy.
    """
    if not result.passed:
        return result
    return replace(result, passed=False, message=f"Counts once {condition}. {result.message}".strip(), hint=hint)
