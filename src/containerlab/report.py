"""Show check results: HTML in JupyterLab, plain text in a terminal, feedback files.

Checks and grading only produce data (:mod:`containerlab.checks`,
:mod:`containerlab.grading`); everything that turns results into something a
person reads lives here.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .checks import CheckResult, CheckResults
from .checks import progress as _progress

if TYPE_CHECKING:  # grading imports the checks; only the type is needed here
    from .doctor import Finding
    from .grading import StudentGrade
    from .lookalike import Pair as LookalikePair

_PASS, _FAIL, _NOTE = "\u2714", "\u2718", "\u2139"


def _points(value: float) -> str:
    return f"{value:g}"


def render_text(results: CheckResults, *, show_hidden: bool = True) -> str:
    """Render results as a plain-text checklist (for terminals and feedback files).

    Args:
        results: the results of one exercise.
        show_hidden: include hidden checks (instructor feedback) or leave them out.

    Returns:
        Lines such as ``[PASS] 2/2  The image builds ...`` with a hint under each failure and note,
        and the total.
    """
    shown = [r for r in results if show_hidden or not r.hidden]
    lines = [f"Checks for {results.exercise}"]
    for note in results.notes:
        lines.append(f"  note: {note}")
    for r in shown:
        mark = r.status.upper()
        hidden = " (hidden test)" if r.hidden else ""
        lines.append(f"[{mark}] {_points(r.awarded)}/{_points(r.points)}  {r.description}{hidden}")
        lines.extend(f"         {line}" for line in r.message.splitlines())  # every line under the check
        if (r.note or not r.passed) and r.hint:
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
        mark = {"pass": _PASS, "fail": _FAIL, "note": _NOTE}[r.status]
        color = {"pass": "#1a7f37", "fail": "#cf222e", "note": "#9a6700"}[r.status]
        detail = html.escape(r.message)
        if (r.note or not r.passed) and r.hint:
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


# --------------------------------------------------------------------------- progress of a running check


class _ProgressView:
    """What the progress display shows at one moment (HTML in JupyterLab, text elsewhere)."""

    def __init__(self, title: str, seconds: float, lines: list[str], running: list[str], state: str):
        self.title, self.seconds, self.lines, self.running, self.state = title, seconds, lines, running, state

    def _text_lines(self) -> list[str]:
        head = f"{self.title} ({self.seconds:.0f} s)" if self.state == "running" else self.title
        return [head, *(f"  {line}" for line in self.lines), *(f"  running: {r}" for r in self.running)]

    def __repr__(self) -> str:
        return "\n".join(self._text_lines())

    def _repr_html_(self) -> str:
        color = {"interrupted": "#cf222e", "failed": "#cf222e", "finished": "#1a7f37"}.get(self.state, "inherit")
        body = "\n".join([*(html.escape(line) for line in self.lines),
                          *(f"<i>running: {html.escape(r)}</i>" for r in self.running)])
        elapsed = f" <span class='containerlab-elapsed'>{self.seconds:.0f} s</span>" if self.state == "running" else ""
        return (f"<div class='containerlab-progress'><b style='color:{color}'>{html.escape(self.title)}</b>{elapsed}"
                f"<pre style='margin:.3em 0;font-size:85%;white-space:pre-wrap'>{body}</pre></div>")


class CheckProgress:
    """Show the events of a running check (:mod:`containerlab.checks.progress`) as they arrive.

    In a notebook (``notebook=True``) one display, made with IPython's
    ``display(..., display_id=True)``, is updated in place: the check's phase,
    one line per finished Dockerfile step (condensed from the builder's output),
    the step still running, and the seconds since the check began, which a timer
    thread refreshes every ``tick`` seconds even while a step prints nothing
    (a minute of ``pip install``). In a terminal each new line is printed once,
    with the elapsed seconds, and a line every ``quiet_every`` seconds of silence.

    Args:
        notebook: update a display in place (Jupyter) instead of printing lines.
        clock: seconds, monotonic (tests pass a fake clock).
        display: IPython's ``display`` function (tests pass a fake one).
        out: where terminal lines go.
        tick: seconds between refreshes of the elapsed time in a notebook (0: no timer thread).
        quiet_every: seconds of silence after which a terminal gets a "still working" line (0: never).
    """

    def __init__(self, *, notebook: bool, clock: Callable[[], float] = time.monotonic,
                 display: Callable[..., object] | None = None, out: TextIO | None = None,
                 tick: float = 1.0, quiet_every: float = 15.0):
        from .notebook import _condensed_progress  # the book's condensed build lines, one per step

        self.notebook = notebook
        self.clock = clock
        self._display = display
        self.out = out
        self.tick = tick
        self.quiet_every = quiet_every
        self.title = "Checking"
        self.state = "running"
        self.lines: list[str] = []
        self.started: float | None = None
        self.last_output = 0.0
        self.handle: object | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._steps = _condensed_progress(self._add_line)

    # ----------------------------------------------------------------- events in

    def __call__(self, event: _progress.Event) -> None:
        with self._lock:
            if self.started is None:
                self.started = self.last_output = self.clock()
                self._start()
            if event.kind == _progress.BUILD_OUTPUT:
                self._steps(event.text)
            elif event.kind == _progress.PHASE:
                if event.text.startswith("Checking"):
                    self.title = f"{event.text} ..."
                    if not self.notebook:
                        self._print(event.text)
                else:
                    self._add_line(event.text)
            elif event.kind in _progress.FINAL:
                self._steps.flush()
                self.state = event.kind
                self.title = {"finished": f"{event.text} in {self.elapsed():.1f} s"}.get(event.kind, event.text)
                if not self.notebook:
                    self._print(self.title)
                self._stop.set()
            self._refresh()

    def _add_line(self, line: str) -> None:
        self.lines.append(line)
        if not self.notebook:
            self._print(line)

    # ----------------------------------------------------------------- showing

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def view(self) -> _ProgressView:
        """What is shown now."""
        with self._lock:
            running = [] if self.state != "running" else list(self._steps.running.values())
            return _ProgressView(self.title, self.elapsed(), list(self.lines), running, self.state)

    def _print(self, text: str) -> None:
        out = self.out or sys.stdout
        print(f"[{self.elapsed():6.1f} s] {text}", file=out, flush=True)
        self.last_output = self.clock()

    def _start(self) -> None:
        if self.notebook:
            show = self._display
            if show is None:
                from IPython.display import display as show
            self.handle = show(self.view(), display_id=True)
        if self.tick > 0 or (not self.notebook and self.quiet_every > 0):
            self._timer = threading.Thread(target=self._run_timer, name="containerlab-progress", daemon=True)
            self._timer.start()

    def _refresh(self) -> None:
        if self.notebook and self.handle is not None:
            self.handle.update(self.view())  # type: ignore[attr-defined]

    def _run_timer(self) -> None:
        every = self.tick if self.notebook else min(1.0, self.quiet_every)
        while not self._stop.wait(every):
            with self._lock:
                if self.state != "running":
                    return
                if self.notebook:
                    self._refresh()
                elif self.quiet_every and self.clock() - self.last_output >= self.quiet_every:
                    running = list(self._steps.running.values())
                    self._print(f"still working{': ' + running[-1] if running else ''}")


# A check run in IPython without a callback of its own shows its progress this way (checks/progress.py).
_progress.use_live_display(lambda notebook: CheckProgress(notebook=notebook))


def html_page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` (plain text, escaped here) in its ``<title>``, then ``body`` (HTML)."""
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"</head>\n<body>\n{body}\n</body></html>\n")


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
    html_path.write_text(html_page(f"Feedback for {grade.student}", "\n".join(html_parts)), encoding="utf-8")
    return text_path, html_path


def feedback_page(grade: StudentGrade, exercise: str) -> str:
    """Render one exercise's feedback as a page of its own (nbgrader hands out one page per notebook).

    Args:
        grade: the student's grade.
        exercise: the exercise key, e.g. ``"ex1"``.

    Returns:
        A complete HTML page: the exercise's checklist with its notes, hidden checks included.
    """
    res = grade.results[exercise]
    problem = grade.problems.get(exercise)
    problem = f"<p><b>Could not be graded:</b> {html.escape(problem)}</p>" if problem else ""
    title = f"Feedback for {grade.student}: {exercise}"
    return html_page(title, f"<h1>{html.escape(title)}</h1>"
                            f"<p>Automatic points; free-text answers are graded by a person.</p>{problem}"
                            f"{render_html(res)}")


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


# --------------------------------------------------------------------------- look-alike submissions

#: The first thing the look-alike report says, in text and HTML.
LOOKALIKE_HEADER = ("Look-alike submissions: a report for a person to read, NEVER a grade. Students may write "
                    "alike for good reasons (the same example, allowed teamwork); read the shared lines and "
                    "talk to them before concluding anything. Lines of the starter text and of the official "
                    "solution count for nothing, and lines many students wrote count little.")


def lookalike_text(pairs: list[LookalikePair], problems: dict[str, list[str]], *, students: int,
                   context: int = 5) -> str:
    """The look-alike report as terminal text: the header, the flagged pairs, then the next closest pairs.

    Args:
        pairs: from :func:`containerlab.lookalike.compare` (flagged first).
        problems: per student, files that could not be read.
        students: how many students were compared.
        context: how many unflagged pairs to show after the flagged ones.
    """
    flagged = [p for p in pairs if p.flagged]
    lines = [LOOKALIKE_HEADER, "", f"{students} students compared; {len(flagged)} pair(s) much closer to each "
             "other than to the rest of the class:"]
    for p in flagged + [p for p in pairs if not p.flagged][:context]:
        mark = "FLAGGED " if p.flagged else "        "
        files = ", ".join(f"{f} {v:.2f}" for f, v in sorted(p.files.items()))
        lines.append(f"{mark}{p.a} / {p.b}: similarity {p.similarity:.2f} (each with the class: "
                     f"{p.typical_a:.2f}, {p.typical_b:.2f}); {files}")
    if problems:
        lines.append(f"Files not read, or not read in full, for {len(problems)} student(s): "
                     + "; ".join(f"{s}: {len(v)} file(s)" for s, v in sorted(problems.items())))
    return "\n".join(lines)


def lookalike_html(pairs: list[LookalikePair], problems: dict[str, list[str]], *, students: int,
                   context: int = 10) -> str:
    """The look-alike report as an HTML page: the header, a table of pairs, the shared lines of each flagged pair."""
    flagged = [p for p in pairs if p.flagged]
    shown = flagged + [p for p in pairs if not p.flagged][:context]
    rows = "".join(
        f"<tr><td>{'&#9873; flagged' if p.flagged else ''}</td><td>{html.escape(p.a)}</td>"
        f"<td>{html.escape(p.b)}</td><td>{p.similarity:.2f}</td><td>{p.typical_a:.2f} / {p.typical_b:.2f}</td>"
        f"<td>{html.escape(', '.join(f'{f} {v:.2f}' for f, v in sorted(p.files.items())))}</td></tr>"
        for p in shown)
    evidence = []
    for p in flagged:
        blocks = "".join(f"<h4>{html.escape(f)}</h4><pre>{html.escape(chr(10).join(lines))}</pre>"
                         for f, lines in sorted(p.shared.items()))
        evidence.append(f"<h3>{html.escape(p.a)} / {html.escape(p.b)}: lines of their own they share "
                        f"(normalised)</h3>{blocks}")
    unread = "".join(f"<li>{html.escape(s)}: {html.escape('; '.join(v))}</li>" for s, v in sorted(problems.items()))
    body = (f"<h1>Look-alike submissions</h1><p><strong>{html.escape(LOOKALIKE_HEADER)}</strong></p>"
            f"<p>{students} students compared; {len(flagged)} pair(s) flagged.</p>"
            "<table><thead><tr><th></th><th>student</th><th>student</th><th>similarity</th>"
            "<th>each with the class (median)</th><th>per file</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{''.join(evidence)}"
            + (f"<h2>Files not read, or not read in full</h2><ul>{unread}</ul>" if unread else ""))
    return html_page("Look-alike submissions (not a grade)", body)
