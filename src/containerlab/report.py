"""Show check results: HTML in JupyterLab, plain text in a terminal, feedback files.

Checks and grading only produce data (:mod:`containerlab.checks`,
:mod:`containerlab.grading`); everything that turns results into something a
person reads lives here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .checks import CheckResult, CheckResults

if TYPE_CHECKING:  # grading imports the checks; only the type is needed here
    from .doctor import Finding
    from .grading import StudentGrade

_PASS, _FAIL = "\u2714", "\u2718"


def _points(value: float) -> str:
    return f"{value:g}"


def render_text(results: CheckResults, *, show_hidden: bool = True) -> str:
    """Render results as a plain-text checklist (for terminals and feedback files).

    Args:
        results: the results of one exercise.
        show_hidden: include hidden checks (instructor feedback) or leave them out.

    Returns:
        Lines such as ``[PASS] 2/2  The image builds ...`` with a hint under each failure,
        and the total.
    """
    shown = [r for r in results if show_hidden or not r.hidden]
    lines = [f"Checks for {results.exercise}"]
    for note in results.notes:
        lines.append(f"  note: {note}")
    for r in shown:
        mark = "PASS" if r.passed else "FAIL"
        hidden = " (hidden test)" if r.hidden else ""
        lines.append(f"[{mark}] {_points(r.awarded)}/{_points(r.points)}  {r.description}{hidden}")
        if r.message:
            lines.append(f"         {r.message}")
        if not r.passed and r.hint:
            lines.append(f"         hint: {r.hint}")
    score = sum(r.awarded for r in shown)
    total = sum(r.points for r in shown)
    lines.append(f"Score: {_points(score)} / {_points(total)}")
    return "\n".join(lines)


def render_html(results: CheckResults, *, show_hidden: bool = True) -> str:
    """Render results as an HTML checklist table (for JupyterLab and feedback pages).

    Messages keep their line breaks (``white-space: pre-wrap``): a container's last
    log lines stay one per line instead of running together as one paragraph.
    """
    shown = [r for r in results if show_hidden or not r.hidden]
    rows = []
    for r in shown:
        mark = _PASS if r.passed else _FAIL
        color = "#1a7f37" if r.passed else "#cf222e"
        detail = html.escape(r.message)
        if not r.passed and r.hint:
            detail += f"<br><b>Hint:</b> {html.escape(r.hint)}"
        hidden = " <i>(hidden test)</i>" if r.hidden else ""
        rows.append(
            f"<tr><td style='color:{color};font-weight:bold'>{mark}</td>"
            f"<td>{_points(r.awarded)}/{_points(r.points)}</td>"
            f"<td style='text-align:left'>{html.escape(r.description)}{hidden}"
            f"<div style='font-size:90%;opacity:.85;white-space:pre-wrap'>{detail}</div></td></tr>"
        )
    notes = "".join(f"<p><b>Note:</b> {html.escape(n)}</p>" for n in results.notes)
    score = sum(r.awarded for r in shown)
    total = sum(r.points for r in shown)
    return (
        f"<div class='containerlab-checklist'><p><b>Checks for {html.escape(results.exercise)}</b></p>{notes}"
        "<table><thead><tr><th></th><th>points</th><th style='text-align:left'>check</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<p><b>Score: {_points(score)} / {_points(total)}</b></p></div>"
    )


class Checklist:
    """A displayable checklist: HTML in JupyterLab (``_repr_html_``), text in a terminal (``str``).

    Args:
        results: the results to show.
        show_hidden: include hidden checks.
    """

    def __init__(self, results: CheckResults, *, show_hidden: bool = True):
        self.results = results
        self.show_hidden = show_hidden

    def _repr_html_(self) -> str:
        return render_html(self.results, show_hidden=self.show_hidden)

    def __str__(self) -> str:
        return render_text(self.results, show_hidden=self.show_hidden)

    __repr__ = __str__


def checklist(results: CheckResults) -> Checklist:
    """Return a :class:`Checklist` of ``results`` (the last expression of a notebook cell shows it)."""
    return Checklist(results)


def failed(results: Iterable[CheckResult]) -> list[str]:
    """Names of the failed checks (a small helper for tests and the grading summary)."""
    return [r.name for r in results if not r.passed]


# --------------------------------------------------------------------------- class reports (grading)


def write_feedback(grade: StudentGrade, folder: Path) -> tuple[Path, Path]:
    """Write one student's feedback as ``<student>.txt`` and ``<student>.html`` in ``folder``.

    Hidden checks are included: feedback goes out after grading.

    Returns:
        The two paths written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text_parts = [f"Feedback for {grade.student}: {_points(grade.score)} / {_points(grade.max_score)} "
                  "automatic points (free-text answers are graded by a person)."]
    html_parts = [f"<h1>Feedback for {html.escape(grade.student)}</h1>",
                  f"<p>{_points(grade.score)} / {_points(grade.max_score)} automatic points "
                  "(free-text answers are graded by a person).</p>"]
    for key, res in grade.results.items():
        text_parts.append(render_text(res))
        html_parts.append(render_html(res))
    text_path = folder / f"{grade.student}.txt"
    html_path = folder / f"{grade.student}.html"
    text_path.write_text("\n\n".join(text_parts) + "\n", encoding="utf-8")
    html_path.write_text("<!doctype html><meta charset='utf-8'>" + "\n".join(html_parts), encoding="utf-8")
    return text_path, html_path


def feedback_page(grade: StudentGrade, exercise: str) -> str:
    """Render one exercise's feedback as a page of its own (nbgrader hands out one page per notebook).

    Args:
        grade: the student's grade.
        exercise: the exercise key, e.g. ``"ex1"``.

    Returns:
        A complete HTML page: the exercise's checklist, hidden checks included, and its notes.
    """
    res = grade.results[exercise]
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in grade.notes.get(exercise, []))
    problem = grade.problems.get(exercise)
    problem = f"<p><b>Could not be graded:</b> {html.escape(problem)}</p>" if problem else ""
    return ("<!doctype html><meta charset='utf-8'>"
            f"<title>Feedback for {html.escape(grade.student)}: {html.escape(exercise)}</title>"
            f"<h1>Feedback for {html.escape(grade.student)}: {html.escape(exercise)}</h1>"
            f"<p>Automatic points; free-text answers are graded by a person.</p>{problem}{notes}"
            f"{render_html(res)}\n")


def summary_line(grade: StudentGrade) -> str:
    """One line per graded student for the terminal, e.g. ``alice  10/10  (35.2 s)``."""
    problems = f"  problems: {', '.join(grade.problems)}" if grade.problems else ""
    return (f"{grade.student:<20} {_points(grade.score):>4} / {_points(grade.max_score):<4}"
            f" ({grade.seconds:.1f} s){problems}")


# --------------------------------------------------------------------------- containerlab doctor

_DOCTOR_MARKS = {"ok": "ok", "problem": "PROBLEM", "warning": "warning", "skipped": "skipped"}


def render_doctor(findings: Iterable[Finding]) -> str:
    """Render the findings of :func:`containerlab.doctor.diagnose` as terminal text.

    Returns:
        One line per finding (``[ok]      engine  Docker engine 20.10.24 ...``), the fix under each
        problem or warning, and a last line saying whether all is well.
    """
    findings = list(findings)
    lines = []
    for f in findings:
        lines.append(f"[{_DOCTOR_MARKS.get(f.status, f.status)}]".ljust(10) + f"{f.name:<26} {f.detail}")
        if f.fix and f.status in ("problem", "warning"):
            lines.append(" " * 10 + f"fix: {f.fix}")
    problems = [f for f in findings if f.status == "problem"]
    lines.append("All is well." if not problems else
                 f"{len(problems)} problem(s): {', '.join(f.name for f in problems)}; the fixes are above.")
    return "\n".join(lines)
