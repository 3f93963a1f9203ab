"""What a student sees in JupyterLab: one clear line for a failed check, log lines kept in the checklist."""

from __future__ import annotations

from containerlab import report
from containerlab.checks import CheckFailed, CheckResult, results


def test_failed_check_shows_one_line_not_a_traceback(capsys):
    """Does IPython show a failed `require` as one line without our package's path, and still fail the cell?"""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.user_ns["CheckFailed"] = CheckFailed
        outcome = shell.run_cell("raise CheckFailed('The service answers /health: no answer. Listen on 0.0.0.0.')")
    finally:
        InteractiveShell.clear_instance()
    assert isinstance(outcome.error_in_exec, CheckFailed)  # nbgrader sees the failure
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "Check failed:" in text and "Listen on 0.0.0.0." in text
    assert "Traceback" not in text and "checks/__init__.py" not in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1


def test_render_traceback_is_one_line():
    """Is `_render_traceback_` one line holding the message?"""
    lines = CheckFailed("builds: failed. Fix the FROM line.")._render_traceback_()
    assert len(lines) == 1 and "Fix the FROM line." in lines[0]


def test_html_checklist_keeps_log_line_breaks():
    """Does the HTML checklist keep a container log's lines apart (pre-wrap), escaped?"""
    log = "no answer. Last container output:\nINFO: Started server\nERROR: <bind> failed"
    html = report.render_html(results("ex1", [CheckResult("health", "answers /health", False, 2, log, "hint")]))
    assert "white-space:pre-wrap" in html
    assert "Started server\nERROR: &lt;bind&gt; failed" in html
