"""Answer cells read the way IPython runs them, and the student's notebook found under a duplicate name.

No engine: the notebooks are built in tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from containerlab import answers, autograde, config
from containerlab.checks import submission
from containerlab.checks.conceptual import NotebookUnreadable

GRADE_ID = "ex1-dockerfile"
TARGET = "ex1.Dockerfile"
DOCKERFILE = "FROM python:3.13-slim\nCMD [\"python\"]\n"
META = {"nbgrader": {"grade_id": GRADE_ID, "solution": True, "grade": False, "locked": False,
                     "schema_version": 3, "task": False}}


def _code(source: str, *, graded: bool = True, count: int | None = None, locked: str = "") -> nbformat.NotebookNode:
    if locked:
        meta = {"nbgrader": {"grade_id": locked, "locked": True, "solution": False, "grade": False}}
    else:
        meta = META if graded else {}
    cell = nbformat.v4.new_code_cell(source, metadata=meta)
    cell.execution_count = count
    return cell


def _notebook(tmp_path: Path, *cells: nbformat.NotebookNode, name: str = "ex1-write-a-dockerfile.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
    return path


def _read(path: Path) -> answers.Answer:
    return answers.written_file(path, TARGET, grade_id=GRADE_ID)


@pytest.mark.parametrize("first_line", [
    "\n%%writefile ex1.Dockerfile",          # a blank line above the magic
    "%%file ex1.Dockerfile",                 # IPython's alias
    "%%writefile ./ex1.Dockerfile",
    "%%writefile 'ex1.Dockerfile'",
    "%%writefile \"ex1.Dockerfile\"",
    "%%writefile -a ex1.Dockerfile",
    "%%writefile --append ex1.Dockerfile",
], ids=["blank-line-above", "file-alias", "dot-slash", "single-quoted", "double-quoted", "append", "long-append"])
def test_cells_ipython_runs_as_writefile_are_answers(tmp_path: Path, first_line: str) -> None:
    """Does every spelling JupyterLab runs as %%writefile ex1.Dockerfile give the cell's body, without notes?"""
    answer = _read(_notebook(tmp_path, _code(f"{first_line}\n{DOCKERFILE}")))
    assert answer.text == DOCKERFILE
    assert answer.notes == ()


def test_body_without_final_newline_is_written_with_one(tmp_path: Path) -> None:
    """Is the text what IPython writes (it ends the cell with a newline)?"""
    assert _read(_notebook(tmp_path, _code("%%writefile ex1.Dockerfile\nFROM python:3.13-slim"))).text == \
        "FROM python:3.13-slim\n"


@pytest.mark.parametrize(("source", "said"), [
    ("# my answer\n%%writefile ex1.Dockerfile\n" + DOCKERFILE, "on line 2"),
    ("  %%writefile ex1.Dockerfile\n" + DOCKERFILE, "indented"),
    ("%%bash\necho hi\n", "starts with `%%bash`"),
    ("%%writefile\n" + DOCKERFILE, "IPython refuses"),
    ("%%writefile ex1.dockerfile\n" + DOCKERFILE, "writes `ex1.dockerfile`"),
    ("FROM python:3.13-slim\n", "does not start with"),
    ("", "is empty"),
], ids=["comment-above", "indented", "other-magic", "no-file-name", "other-file", "no-magic", "empty"])
def test_cells_ipython_does_not_run_as_writefile_are_missing_answers(tmp_path: Path, source: str,
                                                                      said: str) -> None:
    """Is a cell IPython would not run as %%writefile ex1.Dockerfile no answer, with the reason and the fix?"""
    with pytest.raises(answers.AnswerMissing) as caught:
        _read(_notebook(tmp_path, _code(source)))
    assert said in str(caught.value)
    assert "Make `%%writefile ex1.Dockerfile` the cell's first line" in str(caught.value)


def test_deleted_answer_cell_says_what_to_add(tmp_path: Path) -> None:
    """Does a notebook with no cell writing the file say to add a %%writefile cell?"""
    path = _notebook(tmp_path, nbformat.v4.new_markdown_cell("text"), _code("x = 1", graded=False))
    with pytest.raises(answers.AnswerMissing, match="Add a code cell whose first line is `%%writefile"):
        _read(path)


def test_last_run_copy_is_graded_not_the_first(tmp_path: Path) -> None:
    """With a broken first copy and a working second copy that was run, is the second graded, with a note?"""
    path = _notebook(tmp_path, _code("%%writefile ex1.Dockerfile\nFROM broken\n", count=3),
                     _code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", count=4))
    answer = _read(path)
    assert answer.text == DOCKERFILE and answer.cell == 1
    assert len(answer.notes) == 1 and "2 cells" in answer.notes[0] and "ran last" in answer.notes[0]


def test_last_run_copy_is_graded_even_above_the_other(tmp_path: Path) -> None:
    """When the first copy was run after the second, is the first one graded?"""
    path = _notebook(tmp_path, _code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", count=9),
                     _code("%%writefile ex1.Dockerfile\nFROM broken\n", count=4))
    answer = _read(path)
    assert answer.text == DOCKERFILE and "cell 1 (run as [9])" in answer.notes[0]


def test_last_copy_in_the_notebook_when_none_was_run(tmp_path: Path) -> None:
    """When no copy was run, is the last one in the notebook graded, and does the note say why?"""
    path = _notebook(tmp_path, _code("%%writefile ex1.Dockerfile\nFROM first\n"),
                     _code("%%writefile ex1.Dockerfile\nFROM last\n"))
    answer = _read(path)
    assert answer.text == "FROM last\n" and "none of them was run" in answer.notes[0]


def test_answer_pasted_into_a_new_cell_is_found_with_a_note(tmp_path: Path) -> None:
    """After the answer cell was deleted, is an answer in a cell without metadata graded, with a note?"""
    path = _notebook(tmp_path, _code("x = 1", locked="ex1-setup"),
                     _code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", graded=False, count=2))
    answer = _read(path)
    assert answer.text == DOCKERFILE
    assert answer.notes and "was deleted" in answer.notes[0] and "cell 2" in answer.notes[0]


def test_cells_writing_other_files_are_not_candidates(tmp_path: Path) -> None:
    """Is a cell that writes another file ignored (no copy note, its text not graded)?"""
    path = _notebook(tmp_path, _code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", count=1),
                     _code("%%writefile notes.txt\nscratch\n", graded=False, count=5))
    assert _read(path) == answers.Answer(DOCKERFILE, (), 0)


def test_append_cell_run_last_adds_to_what_was_written_before(tmp_path: Path) -> None:
    """Is an -a cell run after a write graded as the two together, as the file on disk was?"""
    path = _notebook(tmp_path, _code("%%writefile ex1.Dockerfile\nFROM python:3.13-slim\n", count=1),
                     _code("%%writefile -a ex1.Dockerfile\nCMD [\"python\"]\n", count=2))
    answer = _read(path)
    assert answer.text == DOCKERFILE and any("appends" in n for n in answer.notes)


def test_broken_notebook_is_unreadable(tmp_path: Path) -> None:
    """Is a notebook that is not JSON reported as unreadable, naming it?"""
    path = tmp_path / "ex1-write-a-dockerfile.ipynb"
    path.write_text("{ not json")
    with pytest.raises(NotebookUnreadable, match="ex1-write-a-dockerfile.ipynb is not a valid notebook"):
        _read(path)


NAME = "ex1-write-a-dockerfile.ipynb"


def test_find_notebook_takes_the_exact_name_without_a_note(tmp_path: Path) -> None:
    """Is the notebook with its original name found, with no note?"""
    (tmp_path / NAME).write_text("{}")
    assert answers.find_notebook(tmp_path, NAME) == (tmp_path / NAME, ())


@pytest.mark.parametrize("duplicate", ["ex1-write-a-dockerfile (1).ipynb", "ex1-write-a-dockerfile(2).ipynb",
                                       "ex1-write-a-dockerfile-Copy1.ipynb"])
def test_find_notebook_accepts_a_duplicate_name_with_a_note(tmp_path: Path, duplicate: str) -> None:
    """Is a notebook saved under a browser's or JupyterLab's duplicate name found, with a note to rename it?"""
    (tmp_path / duplicate).write_text("{}")
    path, notes = answers.find_notebook(tmp_path, NAME)
    assert path == tmp_path / duplicate
    assert len(notes) == 1 and duplicate in notes[0] and f"Rename your notebook to {NAME}" in notes[0]


def test_find_notebook_takes_the_most_recently_saved_duplicate_and_says_so(tmp_path: Path) -> None:
    """With several duplicates, is the most recently saved one taken, and are the others named?"""
    older, newer = tmp_path / "ex1-write-a-dockerfile (1).ipynb", tmp_path / "ex1-write-a-dockerfile (2).ipynb"
    older.write_text("{}")
    newer.write_text("{}")
    os.utime(older, (2_000_000_000, 2_000_000_000))
    os.utime(newer, (1_000_000_000, 1_000_000_000))
    path, notes = answers.find_notebook(tmp_path, NAME)
    assert path == older
    assert "most recently saved of 2" in notes[0] and newer.name in notes[0]


def test_find_notebook_prefers_the_exact_name_and_names_the_duplicates(tmp_path: Path) -> None:
    """With the original and a duplicate, is the original graded and the duplicate named as not graded?"""
    (tmp_path / NAME).write_text("{}")
    (tmp_path / "ex1-write-a-dockerfile (1).ipynb").write_text("{}")
    path, notes = answers.find_notebook(tmp_path, NAME)
    assert path == tmp_path / NAME and "was not graded" in notes[0]


def test_find_notebook_ignores_other_notebooks(tmp_path: Path) -> None:
    """Is an unrelated notebook not taken for the missing one (reading then says it is missing)?"""
    (tmp_path / "ex1-write-a-dockerfile-old.ipynb").write_text("{}")
    assert answers.find_notebook(tmp_path, NAME) == (tmp_path / NAME, ())


# nbgrader's side: LastRunAnswers leaves one cell writing the file.

def _cells(*cells: nbformat.NotebookNode) -> list:
    return nbformat.v4.new_notebook(cells=list(cells)).cells


def test_settle_comments_out_the_copies_not_run_last() -> None:
    """Does autograde keep the copy run last in place and turn the other copy into comments?"""
    cells = _cells(_code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", count=7),
                   _code("%%writefile ex1.Dockerfile\nFROM broken\n", count=3),
                   _code("results = ex1.check()", locked="ex1-check"))
    notes = autograde.settle(cells, TARGET, GRADE_ID)
    assert notes and cells[0].source == f"%%writefile ex1.Dockerfile\n{DOCKERFILE}"
    assert all(line.startswith("#") for line in cells[1].source.splitlines())
    assert [w.index for w in answers.writes(cells, TARGET)] == [0]
    assert "nbgrader" not in cells[1].metadata and cells[0].metadata.nbgrader.grade_id == GRADE_ID


def test_deduplicate_takes_the_metadata_off_all_but_the_last_copy() -> None:
    """Does each grade_id stay on one cell, with no empty nbgrader metadata left (which fails nbgrader 0.9)?"""
    cells = _cells(_code("results.require('builds')", locked="ex1-test-builds"),
                   _code("results.require('builds')", locked="ex1-test-builds"), _code("x = 1", graded=False))
    assert autograde.deduplicate(cells) == ["ex1-test-builds"]
    assert "nbgrader" not in cells[0].metadata and cells[1].metadata.nbgrader.grade_id == "ex1-test-builds"


def test_settle_moves_an_answer_pasted_below_the_check_above_it() -> None:
    """Is an answer run last but placed after the check cell moved to where the first answer cell was?"""
    cells = _cells(_code("%%writefile ex1.Dockerfile\n# YOUR CODE HERE\n", count=1),
                   _code("results = ex1.check()", locked="ex1-check"),
                   _code(f"%%writefile ex1.Dockerfile\n{DOCKERFILE}", graded=False, count=5))
    autograde.settle(cells, TARGET, GRADE_ID)
    assert [w.index for w in answers.writes(cells, TARGET)] == [0]
    assert answers.resolve(cells, TARGET, grade_id=GRADE_ID).answer.text == DOCKERFILE


def test_answer_files_are_read_from_the_source_notebook() -> None:
    """Are the files the source notebook's answer cells write found from its %%writefile cells?"""
    source = nbformat.read(submission.SOLUTIONS / "ex3-data-and-secrets-out.ipynb", as_version=4)

    class Row:
        def __init__(self, cell):  # type: ignore[no-untyped-def]
            self.name = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            self.cell_type, self.source = cell.cell_type, cell.source

    assert autograde.answer_files([Row(c) for c in source.cells]) == [
        ("ex3.Dockerfile", "ex3-dockerfile"), ("ex3-run.sh", "ex3-run-command")]


def test_nbgrader_config_runs_last_run_answers_first_and_keeps_the_dockerignore() -> None:
    """Does the course's nbgrader config run LastRunAnswers before ClearOutput and keep service/.dockerignore?"""
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(config.ROOT)).load_config()
    steps = list(loaded.Autograde.sanitize_preprocessors)
    assert steps[0] == "containerlab.autograde.LastRunAnswers"
    assert steps.index("nbgrader.preprocessors.ClearOutput") == 1
    from nbgrader.converters.autograde import Autograde

    default = Autograde.class_traits()["sanitize_preprocessors"].default()
    defaults = [f"nbgrader.preprocessors.{p.__name__}" for p in default]
    assert steps[1:] == defaults
    assert dict(loaded.Autograde.exclude_overwriting) == {"ch14": list(submission.STUDENT_CONTEXT_FILES)}


# The build context: the course's service with the student's .dockerignore, nothing else of theirs.

def test_build_context_takes_only_the_students_dockerignore(tmp_path: Path) -> None:
    """Does the context hold the student's .dockerignore but the course's code, lockfile and data?"""
    student = tmp_path / "student"
    (student / "service" / "src").mkdir(parents=True)
    (student / "service" / ".dockerignore").write_text("data/\n.env\n")
    (student / "service" / "requirements.txt").write_text("evil==1.0\n")
    (student / "service" / "extra.txt").write_text("mine")
    work = tmp_path / "work"
    work.mkdir()
    context, notes = submission.build_context(work, student)
    assert (context / ".dockerignore").read_text() == "data/\n.env\n" and notes == ()
    course = submission.SOLUTIONS / "service"
    assert (context / "requirements.txt").read_bytes() == (course / "requirements.txt").read_bytes()
    assert not (context / "extra.txt").exists()


def test_build_context_refuses_a_linked_dockerignore(tmp_path: Path) -> None:
    """Is a .dockerignore that is a symbolic link not followed (the course's copy used, with a note)?"""
    student = tmp_path / "student"
    (student / "service").mkdir(parents=True)
    (tmp_path / "elsewhere").write_text("secret")
    (student / "service" / ".dockerignore").symlink_to(tmp_path / "elsewhere")
    work = tmp_path / "work"
    work.mkdir()
    context, notes = submission.build_context(work, student)
    assert (context / ".dockerignore").read_bytes() == (submission.SOLUTIONS / "service" / ".dockerignore").read_bytes()
    assert "not a regular file" in notes[0]


def test_build_context_refuses_a_dockerignore_behind_a_linked_folder(tmp_path: Path) -> None:
    """Is a service folder that is a link to elsewhere on the grader's machine not followed?"""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".dockerignore").write_text("host file")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "service").symlink_to(elsewhere)
    (tmp_path / "work").mkdir()
    context, notes = submission.build_context(tmp_path / "work", tmp_path / "student")
    assert (context / ".dockerignore").read_text() != "host file" and "not a regular file" in notes[0]


def test_build_context_without_a_service_folder_is_the_courses(tmp_path: Path) -> None:
    """Does a submission of notebooks only get the course's .dockerignore, without a note?"""
    (tmp_path / "student").mkdir()
    (tmp_path / "work").mkdir()
    context, notes = submission.build_context(tmp_path / "work", tmp_path / "student")
    assert (context / ".dockerignore").exists() and notes == ()


def test_reported_number_reads_the_copy_run_last(tmp_path: Path) -> None:
    """With the report cell copied, does the batch grader read the copy run last and say there were copies?"""
    meta = {"nbgrader": {"grade_id": "ex2-reported-reduction", "solution": True}}
    first = nbformat.v4.new_code_cell("REPORTED_REDUCTION_PERCENT = 5\n", metadata=meta)
    second = nbformat.v4.new_code_cell("REPORTED_REDUCTION_PERCENT = 19.7\n", metadata=meta)
    first.execution_count, second.execution_count = 8, 2
    path = _notebook(tmp_path, second, first)
    assert submission.reported_number(path, "ex2-reported-reduction", "REPORTED_REDUCTION_PERCENT") == 5.0
    source, notes = answers.cell_source(path, "ex2-reported-reduction")
    assert "appears 2 times" in notes[0] and "run as [8]" in notes[0]
    cells = nbformat.read(path, as_version=4).cells
    assert autograde.settle_copies(cells, "ex2-reported-reduction")
    assert cells[0].source.startswith("# Not run by the grader") and "nbgrader" not in cells[0].metadata
