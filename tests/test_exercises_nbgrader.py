"""The exercise notebooks in nbgrader's format: in sync, consistent, and gradable by nbgrader itself."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from containerlab import config, exercises
from containerlab.checks import registry
from containerlab.checks.registry import Exercise

#: The exercises whose graded code cells give points (the others are free text, graded by a person).
GRADED = [e for e in registry.exercises() if e.points]

SOURCES = sorted((exercises.SOLUTIONS_DIR / exercises.ASSIGNMENT).glob("*.md"))
NOTEBOOKS = [md.with_suffix(".ipynb") for md in SOURCES]


def _cell(notebook: Path, grade_id: str) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise LookupError(f"{notebook.name} has no cell {grade_id}")


@pytest.fixture
def scratch_course():
    """A scratch nbgrader course directory inside .cache; removed afterwards."""
    course = exercises.scratch_course()
    yield course
    shutil.rmtree(course, ignore_errors=True)


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: p.name)
def test_solution_ipynb_matches_its_markdown_source(md: Path) -> None:
    """Does each source notebook hold exactly the cells (text and nbgrader metadata) of its .md file?"""
    from_md, from_ipynb = jupytext.read(md), jupytext.read(md.with_suffix(".ipynb"))
    assert [(c.cell_type, c.source.strip(), c.metadata.get("nbgrader")) for c in from_ipynb.cells] == \
           [(c.cell_type, c.source.strip(), c.metadata.get("nbgrader")) for c in from_md.cells]


def test_regenerating_the_student_versions_gives_what_is_committed(scratch_course: Path) -> None:
    """Does `nbgrader generate_assignment` on solutions/ch14 give exactly exercises/ch14?"""
    generated = exercises.generate(scratch_course)
    assert exercises.differences(generated, exercises.EXERCISES_DIR / exercises.ASSIGNMENT) == []


def test_student_versions_hold_no_solution_or_hidden_test() -> None:
    """Are the solution regions, hidden tests and solution files absent from exercises/ch14?"""
    folder = exercises.EXERCISES_DIR / exercises.ASSIGNMENT
    text = "\n".join(p.read_text() for p in folder.glob("*.ipynb"))
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "HIDDEN_CASES", "--host"):
        assert marker not in text
    assert not list(folder.rglob("*.Dockerfile")) and not list(folder.rglob("*.md"))


@pytest.mark.parametrize("key,cell,file", [(e.key, cell, file) for e in registry.exercises()
                                           for file, cell in e.answers.items()])
def test_solution_file_is_the_answer_cell(key: str, cell: str, file: str) -> None:
    """Is each real solution file in solutions/ch14 exactly what its answer cell writes?"""
    first, _, body = _cell(registry.exercise(key).source, cell).source.partition("\n")
    assert first == f"%%writefile {file}"
    assert (exercises.SOLUTIONS_DIR / "ch14" / file).read_text().rstrip("\n") == body.rstrip("\n")


@pytest.mark.parametrize("graded", GRADED, ids=lambda e: e.key)
def test_cell_points_equal_check_points(graded: Exercise) -> None:
    """Do the points of each graded cell equal the points of the checks it requires?"""
    nb = nbformat.read(graded.source, as_version=4)
    total = 0.0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            names = [a.value for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Call)
                     and getattr(node.func, "attr", "") == "require" for a in node.args]
            assert meta["points"] == sum(graded.points[n] for n in names), meta["grade_id"]
            total += meta["points"]
    assert total == graded.max_points


def test_hidden_cases_of_the_tests_are_the_solution_notebooks() -> None:
    """Do the fixture tests use the same hidden request set as the solution notebook?"""
    from test_ex1_checks import HIDDEN_CASES

    source = _cell(NOTEBOOKS[0], "ex1-test-hidden-predict").source
    tree = ast.parse(source)
    assigned = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "HIDDEN_CASES")
    assert ast.literal_eval(assigned.value) == HIDDEN_CASES


def _filled_in(release: Path, source: Path, target: Path) -> None:
    """Write the release notebook with every answer cell replaced by the solution's answer."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source
               for c in nbformat.read(source, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    nbformat.write(nb, target)


@pytest.mark.docker
@pytest.mark.slow
def test_nbgrader_round_trip_scores_solution_full_and_starter_zero(scratch_course: Path) -> None:
    """Does nbgrader autograde give a filled-in solution every automatic point and a starter none?"""
    from nbgrader.api import Gradebook

    release = exercises.generate(scratch_course)
    source = scratch_course / "solutions" / "ch14"
    for student in ("solution", "starter"):
        folder = scratch_course / "submitted" / student / "ch14"
        folder.mkdir(parents=True)
        for notebook in release.glob("*.ipynb"):
            if student == "solution":
                _filled_in(notebook, source / notebook.name, folder / notebook.name)
            else:
                shutil.copy(notebook, folder / notebook.name)
        exercises.nbgrader(["db", "student", "add", student], course_dir=scratch_course)
    exercises.nbgrader(["autograde", "ch14"], course_dir=scratch_course)

    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        solution = gb.find_submission("ch14", "solution")
        starter = gb.find_submission("ch14", "starter")
        auto_max = sum(e.max_points for e in GRADED)
        ex1_solution = gb.find_submission_notebook("ex1-write-a-dockerfile", "ch14", "solution")
        ex1_starter = gb.find_submission_notebook("ex1-write-a-dockerfile", "ch14", "starter")
        assert ex1_solution.code_score == registry.exercise("ex1").max_points
        assert ex1_starter.code_score == 0
        assert starter.score == 0
        # The free-text answers of the solution wait for a person; the starter's are 0 (placeholder).
        assert solution.needs_manual_grade
        assert solution.score == auto_max
        assert not any(n.needs_manual_grade for n in starter.notebooks)
    # The starter's Dockerfile is the placeholder, and its checklist says so.
    starter_nb = (scratch_course / "autograded" / "starter" / "ch14" / "ex1-write-a-dockerfile.ipynb").read_text()
    assert "still holds the placeholder" in starter_nb


@pytest.mark.docker
@pytest.mark.slow
def test_solution_notebooks_pass_nbval(scratch_course: Path) -> None:
    """Do the solution notebooks run without error and reproduce their outputs under nbval?"""
    from nbclient import NotebookClient

    folder = scratch_course / "solutions" / "ch14"
    for notebook in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(notebook, as_version=4)
        NotebookClient(nb, timeout=1800, resources={"metadata": {"path": str(folder)}}).execute()
        nbformat.write(nb, notebook)
    (scratch_course / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-cell-timeout=1800", "-p", "no:cacheprovider",
         "--nbval-sanitize-with", str(config.ROOT / "tests" / "nbval-sanitize.cfg"),
         "-c", str(scratch_course / "pytest.ini"), "--rootdir", str(scratch_course), "-q",
         *sorted(str(p) for p in folder.glob("*.ipynb"))],
        capture_output=True, text=True, cwd=scratch_course, timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout
    executed = json.loads((folder / "ex1-write-a-dockerfile.ipynb").read_text())
    outputs = json.dumps([c.get("outputs") for c in executed["cells"]])
    assert "Score: 8 / 8" in outputs  # the visible checks, all passed


@pytest.mark.parametrize("dockerfile", sorted((exercises.SOLUTIONS_DIR / "ch14").glob("*.Dockerfile")),
                         ids=lambda p: p.name)
def test_solution_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    """Does hadolint, with the repository's one config, find nothing in each solution Dockerfile?"""
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run([str(hadolint), "--config", str(config.ROOT / ".hadolint.yaml"), str(dockerfile)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_exercises_check_command_says_in_sync(capsys) -> None:
    """Does `containerlab exercises check` exit 0 and say the student versions are up to date?"""
    from containerlab import cli

    assert cli.main(["exercises", "check"]) == 0
    assert "is what solutions/ch14 generates" in capsys.readouterr().out


def test_nbgrader_config_allows_image_builds() -> None:
    """Does the course's nbgrader config raise the per-cell timeout well above the 30 s default?"""
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(config.ROOT)).load_config()
    assert loaded.Execute.timeout >= 600 and loaded.ExecutePreprocessor.timeout >= 600


@pytest.mark.slow
def test_autograde_stops_a_cell_that_loops_forever(scratch_course: Path) -> None:
    """Does nbgrader's autograde stop a student's endless cell at the timeout and still grade the notebook?"""
    import time

    release = exercises.generate(scratch_course)
    folder = scratch_course / "submitted" / "looper" / "ch14"
    folder.mkdir(parents=True)
    nb = nbformat.read(release / "ex4-the-lockfile-analogy.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("while True:\n    pass"))
    nbformat.write(nb, folder / "ex4-the-lockfile-analogy.ipynb")
    exercises.nbgrader(["db", "student", "add", "looper"], course_dir=scratch_course)
    start = time.monotonic()
    exercises.nbgrader(["autograde", "ch14", "--notebook=ex4-the-lockfile-analogy", "--Execute.timeout=5"],
                       course_dir=scratch_course, timeout=300)
    assert time.monotonic() - start < 120
    graded = (scratch_course / "autograded" / "looper" / "ch14" / "ex4-the-lockfile-analogy.ipynb").read_text()
    assert "CellTimeoutError" in graded or "timed out" in graded.lower()


def test_exercise_service_is_the_course_service():
    """Are the exercises' service code and lockfile the same as docker/customer-value's (no drifted copy)?"""
    for name in exercises.SERVICE_SHARED:
        source, copy = config.SERVICE_DIR / name, exercises.SERVICE_COPY / name
        if source.is_dir():
            assert exercises.differences(source, copy) == [], f"run `containerlab exercises generate`"
        else:
            assert source.read_bytes() == copy.read_bytes(), f"run `containerlab exercises generate`"
