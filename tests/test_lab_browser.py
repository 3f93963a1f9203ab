"""Exercise 1 as a student meets it: `make lab`'s JupyterLab in a real browser, then graded.

Playwright for Python drives Debian's Chromium (``executable_path``; it downloads
no browser). The server is started with `make lab`'s own command on a free local
port, with a token, in a scratch copy of ``exercises/ch14``, so the committed
notebook is never touched. A screenshot of each checklist is kept under
``.cache/artefacts/lab/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import browser as chromium

from containerlab import config, engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BROWSER = chromium.BROWSER
BROWSER_FLAGS = chromium.FLAGS
NOTEBOOK = "ex1-write-a-dockerfile.ipynb"
ARTEFACTS = config.CACHE_DIR / "artefacts" / "lab"
#: A cold build (pip install of the locked requirements) takes a minute or two; a warm one seconds.
CHECK_TIMEOUT_S = 900


def official_dockerfile() -> str:
    """The solution Dockerfile, as a student would type it (without nbgrader's solution markers)."""
    text = (config.ROOT / "solutions" / "ch14" / "ex1.Dockerfile").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if "SOLUTION" not in line).strip() + "\n"


#: A Dockerfile that builds and serves, but starts the server in shell form: one FAIL row.
SHELL_FORM_DOCKERFILE = official_dockerfile().replace(
    'CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]',
    "CMD uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict[str, object]]:
    """`make lab`'s server on a free port, serving a scratch copy of exercises/ch14; stopped afterwards."""
    chromium.require()
    engine.connect()
    base = tmp_path_factory.mktemp("lab")
    root = base / "course"
    shutil.copytree(config.ROOT / "exercises" / "ch14", root / "exercises" / "ch14",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.Dockerfile"))
    run_id = secrets.token_hex(5)
    tag = f"cl-ex-ex1-labtest-{run_id}:latest"
    # The check cell tags the student's image cl-ex-ex1:latest; on an engine shared with other
    # runs this test's image gets a name of its own (an IPython startup file of this run only).
    startup = base / "jupyter" / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-unique-tag.py").write_text(
        "import functools\nimport containerlab.checks.ex1 as _ex1\n"
        f"_ex1.check = functools.partial(_ex1.check, tag={tag!r})\n")
    port, token = _free_port(), secrets.token_hex(16)
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --port={port} --IdentityProvider.token={token} "
                f"--ServerApp.root_dir={root}")
    log = (base / "server.log").open("w")
    # `-o .venv/.installed`: use the environment as it is (do not reinstall it from here).
    server = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "lab", f"LAB_DIRS={base / 'jupyter'}",
                               f"LAB_ARGS={lab_args}"], cwd=config.ROOT, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail("JupyterLab did not start:\n" + (base / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "root": root, "base": base, "tag": tag, "run_id": run_id}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the process group this fixture started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        engine.remove_image(tag)


# --------------------------------------------------------------------------- driving the page


def _cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook-cell")


#: A cell's source as its editor shows it: the text of its CodeMirror lines.
_SOURCES_JS = ("cells => cells.map(c => Array.from(c.querySelectorAll('.jp-InputArea .cm-line'))"
               ".map(line => line.textContent).join('\\n'))")


def _sources(page) -> list[str]:
    return _cells(page).evaluate_all(_SOURCES_JS)


def _cell_index(page, text: str) -> int:
    for i, source in enumerate(_sources(page)):
        if text in source:
            return i
    raise AssertionError(f"no cell holds {text!r}")


def _run_cell(page, index: int, *, timeout_s: float = 120) -> None:
    """Select cell ``index`` in command mode, run it (Ctrl+Enter) and wait until it finished."""
    cell = _cells(page).nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout_s
    time.sleep(0.3)
    while "*" in prompt.inner_text() or not re.search(r"\[\d+\]", prompt.inner_text()):
        assert time.monotonic() < deadline, f"cell {index} still running after {timeout_s:.0f} s"
        time.sleep(0.5)


def _type_answer(page, dockerfile: str) -> None:
    """Put ``dockerfile`` under the answer cell's %%writefile line, as typed into the editor."""
    index = _cell_index(page, "%%writefile ex1.Dockerfile")
    editor = _cells(page).nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("%%writefile ex1.Dockerfile\n" + dockerfile)
    page.keyboard.press("Escape")
    source = _sources(page)[index]
    assert source.strip() == ("%%writefile ex1.Dockerfile\n" + dockerfile).strip(), source


def _run_exercise(page) -> list[dict[str, str]]:
    """Run the setup, answer and check cells, then every graded cell; return the checklist's rows."""
    for text, timeout_s in (("from containerlab.checks import ex1", 120), ("%%writefile ex1.Dockerfile", 60),
                            ("results = ex1.check(", CHECK_TIMEOUT_S)):
        _run_cell(page, _cell_index(page, text), timeout_s=timeout_s)
    # While it ran, the check showed its progress in one display, updated in place (§2); it ends with the time.
    progress = page.locator(".jp-NotebookPanel:visible .containerlab-progress")
    assert progress.count() == 1, f"{progress.count()} progress displays"
    assert re.search(r"Checked ex1 in \d+\.\d s", progress.inner_text()), progress.inner_text()
    assert "Building cl-ex-ex1" in progress.inner_text(), progress.inner_text()
    for index in _graded_cells(page):
        _run_cell(page, index)
    checklist = page.locator(".jp-NotebookPanel:visible .containerlab-checklist")
    checklist.wait_for(timeout=10_000)
    return checklist.locator("tbody tr").evaluate_all("""rows => rows.map(r => {
        const cells = r.querySelectorAll('td');
        const detail = cells[2].querySelector('div');
        return {mark: cells[0].innerText.trim(), points: cells[1].innerText.trim(),
                description: cells[2].firstChild.textContent.trim(), detail: detail ? detail.innerText : ''};
    })""")


def _graded_cells(page) -> list[int]:
    return [i for i, s in enumerate(_sources(page)) if "results.require(" in s or "# Hidden test" in s]


def _graded_outputs(page) -> list[str]:
    return [_cells(page).nth(i).locator(".jp-OutputArea").inner_text() for i in _graded_cells(page)]


def _save(page, notebook: Path) -> None:
    before = notebook.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while notebook.stat().st_mtime_ns == before or page.locator(".lm-TabBar-tab.jp-mod-dirty").count():
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.3)


def _screenshot(page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / name
    page.locator(".jp-NotebookPanel:visible .containerlab-checklist").screenshot(path=str(path))
    print(f"screenshot of the checklist: {path}")
    return path


def _grade_rows(feedback: str) -> tuple[list[dict[str, str]], str]:
    """The visible ex1 rows of a feedback text (mark, points, description) and its ex1 score."""
    block = feedback.split("Checks for ex1", 1)[1].split("Score:", 1)
    rows = []
    for line in block[0].splitlines():
        found = re.match(r"\[(PASS|FAIL)\] (\S+)  (.*)$", line)
        if found and not found.group(3).endswith("(hidden test)"):
            rows.append({"mark": "\u2714" if found.group(1) == "PASS" else "\u2718", "points": found.group(2),
                         "description": found.group(3)})
    return rows, block[1].splitlines()[0].strip()


# --------------------------------------------------------------------------- the test


def test_student_works_exercise_1_in_jupyterlab(lab, tmp_path):
    """In `make lab`'s JupyterLab, does ex1 open unmodified and without instructor tools or pop-ups, show
    PASS rows for the official Dockerfile and a FAIL row with its hint for a wrong one, without a traceback,
    and does `containerlab grade` on each saved notebook give the same points?"""
    from playwright.sync_api import sync_playwright

    notebook = lab["root"] / "exercises" / "ch14" / NOTEBOOK
    pristine = notebook.read_bytes()
    url = (f"{lab['url']}/lab/workspaces/labtest-{lab['run_id']}/tree/exercises/ch14/{NOTEBOOK}"
           f"?reset&token={lab['token']}")
    submissions = tmp_path / "submitted"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=BROWSER_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            _cells(page).first.wait_for(timeout=90_000)
            page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=90_000)  # the kernel started
            time.sleep(3)  # JupyterLab writes the kernel's metadata into the model now, if it differs

            # Opening it changes nothing; the student sees no instructor tools and no pop-up.
            assert page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0, "opening marked the notebook modified"
            assert notebook.read_bytes() == pristine, "opening the notebook rewrote the file"
            menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
            assert "File" in menus and not [m for m in menus if "nbgrader" in m.lower()], menus
            for instructor_tool in ("Create Assignment", "Formgrader", "Validate", "Assignment List"):
                assert page.get_by_text(instructor_tool, exact=True).count() == 0, instructor_tool
            assert page.locator(".Toastify__toast").count() == 0, page.locator(".Toastify__toast").all_inner_texts()
            assert page.locator(".jp-Dialog").count() == 0

            # The official Dockerfile: every visible check passes.
            _type_answer(page, official_dockerfile())
            passing = _run_exercise(page)
            assert passing and all(r["mark"] == "\u2714" for r in passing), passing
            assert len(passing) >= 5, passing  # builds, slim base, exec form, /health, /predict
            for output in _graded_outputs(page):
                assert "Traceback" not in output and "Error" not in output, output
            _screenshot(page, "ex1-checklist-pass.png")
            _save(page, notebook)
            (submissions / f"pass-{lab['run_id']}").mkdir(parents=True)
            shutil.copy(notebook, submissions / f"pass-{lab['run_id']}" / NOTEBOOK)

            # A shell-form CMD: a FAIL row with its hint; the graded cell says so in one line.
            _type_answer(page, SHELL_FORM_DOCKERFILE)
            failing = _run_exercise(page)
            failed = [r for r in failing if r["mark"] == "\u2718"]
            assert len(failed) == 1 and "Hint:" in failed[0]["detail"], failing
            outputs = _graded_outputs(page)
            assert any("Check failed:" in o for o in outputs), outputs
            for output in outputs:
                assert "Traceback" not in output and "checks/__init__.py" not in output, output
            _screenshot(page, "ex1-checklist-fail.png")
            failed_cell = _cells(page).nth(_graded_cells(page)[[("Check failed:" in o) for o in outputs].index(True)])
            failed_cell.screenshot(path=str(ARTEFACTS / "ex1-graded-cell-fail.png"))
            print(f"screenshot of the failed graded cell: {ARTEFACTS / 'ex1-graded-cell-fail.png'}")
            _save(page, notebook)
            (submissions / f"fail-{lab['run_id']}").mkdir(parents=True)
            shutil.copy(notebook, submissions / f"fail-{lab['run_id']}" / NOTEBOOK)
            assert page.locator(".jp-Dialog").count() == 0
        finally:
            browser.close()

    # Saving wrote the notebook only: no paired text file beside it (jupytext).
    beside = sorted(p.name for p in notebook.parent.iterdir() if p.suffix == ".md")
    assert beside == [], f"saving wrote {beside} beside the notebook"
    saved = json.loads(notebook.read_text(encoding="utf-8"))
    assert "jupytext" not in saved["metadata"]

    # `containerlab grade` on the saved notebooks gives the points the page showed.
    out = tmp_path / "grades"
    # --no-prune: the build cache of the shared engine holds the layers the book and later tests reuse.
    graded = subprocess.run([sys.executable, "-m", "containerlab.cli", "grade", str(submissions), "--out", str(out),
                             "--no-prune"],
                            capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "DOCKER_HOST": os.environ.get("DOCKER_HOST",
                                                                              "unix:///var/run/docker.sock")})
    assert graded.returncode == 0, graded.stdout + graded.stderr
    book = {row["student"]: row for row in csv.DictReader((out / "gradebook.csv").open())}
    for student, page_rows in ((f"pass-{lab['run_id']}", passing), (f"fail-{lab['run_id']}", failing)):
        rows, score = _grade_rows((out / "feedback" / f"{student}.txt").read_text(encoding="utf-8"))
        shown = [{k: r[k] for k in ("mark", "points", "description")} for r in page_rows]
        assert rows == shown, (student, rows, shown)
        assert score.split("/")[0].strip() == book[student]["ex1"], (score, book[student])
