"""The instructor's view of a class: one HTML page with charts, and the same figures as CSV files.

:func:`write_report` reads the result files of one grading run (or of its
shards, merged as ``containerlab gradebook merge`` merges them: each student's
newer file), counts the figures with :mod:`containerlab.classstats`, draws them
with :mod:`containerlab.charts`, and writes into one folder:

- ``index.html``: the page, charts embedded as PNG data (one file to share);
- ``scores.csv``: students per score, per exercise (and how many were not graded);
- ``checks.csv``: per check, students who passed, failed, did not attempt, were not graded;
- ``causes.csv`` and ``cause_examples.csv``: the named causes of failures, most students first,
  with the book's section that teaches the fix, and anonymised examples;
- ``attention.csv``: students graded again alone, or not graded (grader error, unreadable work);
- ``unreadable.csv``: result files that could not be read, and why (they are skipped);
- ``differences.csv`` (with ``compare``): checks whose verdict differs from another run's, student by
  student, and the students graded in one run only (their ``check`` empty, ``graded`` against ``absent``).

Only result files are read: no engine, no submissions.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import get_origin, get_type_hints

from . import classstats, config, gradebook, resultfiles
from .checks import CheckResult
from .checks import registry
from .grading import StudentGrade
from .report import html_page

#: The report's page, in its folder.
PAGE = "index.html"


@dataclass(frozen=True)
class Unreadable:
    """A result file that was skipped.

    Attributes:
        path: the file.
        reason: why it cannot be read (the reader's message).
    """

    path: Path
    reason: str


@dataclass(frozen=True)
class ClassReport:
    """What :func:`write_report` found and wrote.

    Attributes:
        page: the HTML page.
        tables: the CSV files written.
        students: how many students the report covers.
        unreadable: result files skipped, of both runs.
        causes: the named causes of failures, most students first.
        attention: grades to look at again.
        comparison: the comparison with the other run, or ``None`` without one.
    """

    page: Path
    tables: tuple[Path, ...]
    students: int
    unreadable: tuple[Unreadable, ...]
    causes: tuple[classstats.CauseCount, ...]
    attention: tuple[classstats.Attention, ...]
    comparison: classstats.Comparison | None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_class(folders: Sequence[Path], *, say: Callable[[str], None] = _say
               ) -> tuple[list[StudentGrade], list[Unreadable]]:
    """Read the grades of one class from one or more ``--out`` folders, skipping unreadable files.

    Args:
        folders: ``--out`` folders of ``containerlab grade`` (shards of one run, or one run).
        say: told of each student found in two folders (the newer file is kept).

    Returns:
        The grades, sorted by student, and the files that could not be read.

    Raises:
        resultfiles.ResultsNotFound: a folder has no ``results/``, or no folder has any result file.
    """
    unreadable: list[Unreadable] = []

    kept = gradebook.newest_results(folders, say=say,
                                    invalid=lambda path, exc: unreadable.append(Unreadable(path, str(exc))))
    if not kept and not unreadable:
        raise resultfiles.ResultsNotFound(f"No result file in {', '.join(str(f / 'results') for f in folders)}.")
    grades = []
    for found in kept:
        wrong = _wrong_type(found.grade)
        if wrong:
            unreadable.append(Unreadable(found.path, f"{found.path} holds a check result of the wrong type "
                                                     f"({wrong}); grade that student again."))
        else:
            grades.append(found.grade)
    return grades, unreadable


#: The type of each field of a check result (a whole number is a number of points too; a tuple of text is a tuple).
_CHECK_TYPES = {name: (int, float) if kind is float else get_origin(kind) or kind
                for name, kind in get_type_hints(CheckResult).items()}


def _wrong_type(grade: StudentGrade) -> str:
    """What in a grade read from JSON is not of its declared type (``"ex1 'builds': points is '2'"``), or ``""``.

    :meth:`StudentGrade.from_dict` checks the shape of a result file, not the types of its values;
    a string where points go would stop the counting halfway.
    """
    if not isinstance(grade.student, str) or not isinstance(grade.key, str):
        return "the student's name or key is not text"
    for exercise, checked in grade.results.items():
        for result in checked:
            for name, kind in _CHECK_TYPES.items():
                value = getattr(result, name)
                if not isinstance(value, kind) or (kind != bool and isinstance(value, bool)):
                    return f"{exercise} {result.name!r}: {name} is {value!r}"
    return ""


# --------------------------------------------------------------------------- CSV


def _points(value: float) -> str:
    return f"{value:g}"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- HTML


def _png(figure: object) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(figure: object, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{_png(figure)}'>"


class _Html(str):
    """Text that is already HTML (a table cell that must not be escaped again)."""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; each cell is escaped unless it is :class:`_Html`."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Html) else html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@cache
def page_title(page: str) -> str:
    """The title of a book page (its first ``# `` heading), e.g. ``14.3.1 Layer caching: ...``.

    Args:
        page: the file name in ``notebooks/`` without ``.md``.

    Returns:
        The title, or ``page`` itself when the page is not in this copy of the course.
    """
    path = config.ROOT / "notebooks" / f"{page}.md"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return page


def _taught(cause: classstats.CauseCount) -> str:
    if not cause.page:
        return "(no section of the book named)"
    return f"{page_title(cause.page)}, section \u201c{cause.section}\u201d (notebooks/{cause.page}.md)"


_STYLE = ("<style>body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
          "text-align:left;vertical-align:top}img{max-width:100%}</style>")


def write_report(folders: Sequence[Path], *, out: Path | None = None, compare: Sequence[Path] = (),
                 say: Callable[[str], None] = _say) -> ClassReport:
    """Write the class report of one grading run: ``index.html`` and its figures as CSV.

    Args:
        folders: ``--out`` folders of ``containerlab grade`` (one run, or its shards: each student's
            newer result file counts, as in ``gradebook merge``).
        out: the folder to write (default: ``report/`` in the first of ``folders``); made when missing.
        compare: ``--out`` folders of another grading run of the same class; when given, every check
            whose verdict differs between the runs, student by student, is listed.
        say: told of each student found in two folders of one run.

    Returns:
        What was found and written.

    Raises:
        resultfiles.ResultsNotFound: a folder has no ``results/``, or a run has no result file at all.
    """
    import pandas as pd

    from . import charts

    out = out or Path(folders[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    grades, unreadable = load_class(folders, say=say)
    comparison = None
    if compare:
        others, skipped = load_class(compare, say=say)
        unreadable += skipped
        comparison = classstats.compare(grades, others)
    aliases = classstats.Aliases()
    scores = classstats.score_counts(grades)
    checks = classstats.check_counts(grades)
    causes = classstats.cause_counts(grades, aliases=aliases)
    attention = classstats.attention(grades)

    tables = [
        _write_csv(out / "scores.csv", ["exercise", "score", "students", "max_points"],
                   [(s.exercise, "not graded" if s.score is None else _points(s.score), s.students,
                     _points(s.max_points)) for s in scores]),
        _write_csv(out / "checks.csv", ["exercise", "check", "description", "points", "hidden", "passed", "failed",
                                        "not_attempted", "not_graded"],
                   [(c.exercise, c.check, c.description, _points(c.points), c.hidden, c.passed, c.failed,
                     c.not_attempted, c.not_graded) for c in checks]),
        _write_csv(out / "causes.csv", ["rank", "cause", "students", "failed_checks", "page", "section"],
                   [(i, c.cause, c.students, c.failures, c.page, c.section) for i, c in enumerate(causes, 1)]),
        _write_csv(out / "cause_examples.csv", ["cause", "student", "exercise", "check", "message"],
                   [(c.cause, e.student, e.exercise, e.check, e.message) for c in causes for e in c.examples]),
        _write_csv(out / "attention.csv", ["student", "exercise", "reason", "detail"],
                   [(a.student, a.exercise, a.reason, a.detail) for a in attention]),
        _write_csv(out / "unreadable.csv", ["file", "reason"], [(str(u.path), u.reason) for u in unreadable]),
    ]
    differences = out / "differences.csv"
    if comparison is not None:
        rows = [(d.student, d.exercise, d.check, d.here, d.there) for d in comparison.differences]
        rows += [(s, "", "", "graded", "absent") for s in comparison.only_here]
        rows += [(s, "", "", "absent", "graded") for s in comparison.only_there]
        tables.append(_write_csv(differences, ["student", "exercise", "check", "this_run", "other_run"], rows))
    else:
        differences.unlink(missing_ok=True)  # a comparison of an earlier report would look like this one's

    parts = [_STYLE, "<h1>Class report</h1>",
             f"<p>{len(grades)} students, from the result files in "
             f"{html.escape(', '.join(str(f) for f in folders))}; written "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Each figure is also a CSV file beside this "
             "page. Students are named only where an instructor must act (grades to look at again, "
             "differences between runs); examples of failures are anonymised.</p>"]
    if unreadable:
        parts += ["<h2 id='unreadable'>Result files that could not be read</h2>",
                  "<p>These were skipped; grade those students again.</p>",
                  _table(["file", "why"], [(u.path, u.reason) for u in unreadable])]

    parts.append("<h2 id='scores'>Points per exercise</h2>")
    by_exercise: dict[str, dict[float, int]] = {}
    maxima: dict[str, float] = {}
    missing: dict[str, int] = {}
    for s in scores:
        maxima[s.exercise] = s.max_points
        if s.score is None:
            missing[s.exercise] = s.students
        else:
            by_exercise.setdefault(s.exercise, {})[s.score] = s.students
    if grades:
        parts.append(_img(charts.score_spread(by_exercise, maxima),
                          "Bar charts: students per score, one per exercise that gives automatic points"))
    parts.append(_table(["exercise", "points available", "students per score (score: students; scores no one got "
                         "left out)", "not graded"],
                        [(key, _points(maxima[key]), ", ".join(f"{_points(p)}: {n}" for p, n in counts.items() if n),
                          missing[key]) for key, counts in by_exercise.items()]))

    parts.append("<h2 id='causes'>Named causes of failures</h2>")
    if causes:
        parts.append(_img(charts.ranking([(c.cause, c.students) for c in causes], xlabel="students",
                                         title="Named causes of failed checks"),
                          "Bar chart: students hit by each named cause of failure"))
        rows = []
        for c in causes:
            shown = "".join(f"<li>{html.escape(e.student)}, {e.exercise} {html.escape(e.check)}: "
                            f"<span style='white-space:pre-wrap'>{html.escape(e.message)}</span></li>"
                            for e in c.examples)
            rows.append((c.cause, c.students, c.failures, _taught(c), _Html(f"<ul>{shown}</ul>")))
        parts.append(_table(["cause", "students", "failed checks", "the book teaches the fix in", "examples"], rows))
    else:
        parts.append("<p>No failed check names a cause.</p>")
    parts.append("<p>A failed build or a service that does not start has its cause named; other failures are "
                 "counted per check below.</p>")

    parts.append("<h2 id='attention'>Grades to look at again</h2>")
    if attention:
        parts.append(_table(["student", "exercise", "reason", "detail"],
                            [(a.student, a.exercise, a.reason, a.detail) for a in attention]))
        parts.append(f"<p><b>{classstats.REGRADED}</b>: the grade kept is a second grading, alone on the engine, "
                     "after signs that other students' work decided the first. "
                     f"<b>{classstats.PRESSURE}</b>: the kept grade met the engine's shared limits. "
                     f"<b>{classstats.GRADER_ERROR}</b>: not graded because of a grader error; running the "
                     f"grader again grades it. <b>{classstats.UNGRADED}</b>: the submission could not be "
                     "graded (the detail says why).</p>")
    else:
        parts.append("<p>None: every student was graded once, and every exercise was graded.</p>")

    if comparison is not None:
        parts.append(f"<h2 id='compare'>Compared with {html.escape(', '.join(str(f) for f in compare))}</h2>")
        if comparison.identical:
            parts.append(f"<p>Identical: the same {comparison.compared} students, the same verdict on every "
                         "check.</p>")
        else:
            parts.append(f"<p>{len(comparison.differences)} verdicts differ among the {comparison.compared} "
                         "students both runs graded.</p>")
            parts.append(_table(["student", "exercise", "check", "this run", "other run"],
                                [(d.student, d.exercise, d.check, d.here, d.there) for d in comparison.differences]))
            if comparison.only_here or comparison.only_there:
                parts.append(f"<p>Only in this run: {html.escape(', '.join(comparison.only_here) or 'nobody')}. "
                             f"Only in the other: {html.escape(', '.join(comparison.only_there) or 'nobody')}.</p>")

    for exercise in registry.exercises():
        mine = [c for c in checks if c.exercise == exercise.key]
        parts.append(f"<h2 id='{exercise.key}'>{exercise.key}: {html.escape(exercise.notebook)}</h2>")
        if not mine:
            parts.append("<p>No student's results hold this exercise.</p>")
            continue
        table = pd.DataFrame([{"passed": c.passed, "failed": c.failed, "not attempted": c.not_attempted,
                               "not graded": c.not_graded} for c in mine],
                             index=[c.check + (" (hidden)" if c.hidden else "") for c in mine])
        parts.append(_img(charts.check_outcomes(table, title=f"{exercise.key}: students per verdict, per check"),
                          f"Stacked bars: students who passed, failed or were not graded on each check of "
                          f"{exercise.key}"))
        parts.append(_table(["check", "points", "passed", "failed", "not attempted", "not graded"],
                            [(f"{c.check}: {c.description}" + (" (hidden)" if c.hidden else ""), _points(c.points),
                              c.passed, c.failed, c.not_attempted, c.not_graded) for c in mine]))

    page = out / PAGE
    page.write_text(html_page("Class report", "\n".join(parts)), encoding="utf-8")
    return ClassReport(page, tuple(tables), len(grades), tuple(unreadable), tuple(causes), tuple(attention),
                       comparison)


def summary(report: ClassReport, *, causes: int = 3) -> str:
    """The lines ``containerlab report`` prints: where the page is, and what needs an instructor.

    Args:
        report: what :func:`write_report` returned.
        causes: how many of the most common causes to name.
    """
    lines = [f"Class report of {report.students} students: {report.page} (its figures as CSV beside it)"]
    if report.causes:
        top = ", ".join(f"{c.cause} ({c.students} students)" for c in report.causes[:causes])
        lines.append(f"  most common named causes of failure: {top}")
    if report.attention:
        counted: dict[str, set[str]] = {}
        for a in report.attention:
            counted.setdefault(a.reason, set()).add(a.student)
        said = "; ".join(f"{reason}: {len(students)}" for reason, students in counted.items())
        lines.append(f"  to look at again (attention.csv): {said}")
    if report.unreadable:
        lines.append(f"  {len(report.unreadable)} result file(s) could not be read and were skipped "
                     "(unreadable.csv)")
    if report.comparison is not None:
        c = report.comparison
        if c.identical:
            lines.append(f"  compared with the other run: identical ({c.compared} students, every verdict the same)")
        else:
            lines.append(f"  compared with the other run: {len(c.differences)} verdicts differ, "
                         f"{len(c.only_here) + len(c.only_there)} students graded in one run only "
                         "(differences.csv)")
    return "\n".join(lines)
