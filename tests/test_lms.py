"""Grades out to an LMS: Canvas's and Moodle's import files, from result files and nbgrader's real database.

No engine is needed: grades are built from check results with the real check
names and points (as in test_gradebook.py); the free-text points are given
with nbgrader's own Gradebook API, as formgrader stores them.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from test_gradebook import AUTO_MAX, _grade, _write_result

from containerlab import cli, gradebook, lms, resultfiles
from containerlab.checks import ex1, ex2

#: The free-text cells and their points, as the source notebooks define them (3 + 4 + 4).
MANUAL_CELLS = {c.grade_id: c for c in gradebook.graded_cells() if c.manual}
MANUAL_MAX = sum(c.points for c in MANUAL_CELLS.values())


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An nbgrader database holding the assignment's notebooks and graded cells, made once (nbgrader stamps a new
    database by running alembic, which takes seconds); each test works on a copy."""
    path = tmp_path_factory.mktemp("db") / "gradebook.db"
    with gradebook._nbgrader_gradebook(f"sqlite:///{path}") as gb:
        gb.update_or_create_assignment("ch14")
        for cell in gradebook.graded_cells():
            gb.update_or_create_notebook(cell.notebook, "ch14")
            gb.update_or_create_grade_cell(cell.grade_id, cell.notebook, "ch14", max_score=cell.points,
                                           cell_type="markdown" if cell.manual else "code")
    return path


@pytest.fixture
def graded(tmp_path: Path, empty_db: Path) -> tuple[Path, str]:
    """A grading run of four students, their automatic points in nbgrader's db, free text graded for two.

    alice: everything passes, 2.5 + 4 + 3.5 manual points; bob: three checks fail, 1 + 0 + 4 manual
    points; dave: free text not graded yet; carol: graded but missing from the id maps.
    """
    out = tmp_path / "grades"
    grades = [_grade("alice"), _grade("bob", failing={"ex1": {"builds", "predict-hidden"}, "ex2": {"predict"}}),
              _grade("carol"), _grade("dave")]
    for grade in grades:
        _write_result(out, grade)
    db = tmp_path / "gradebook.db"
    shutil.copy(empty_db, db)
    db_url = f"sqlite:///{db}"
    gradebook.to_nbgrader(grades, db_url=db_url)
    given = {"alice": {"ex3-answer": 2.5, "ex4-answer": 4, "ex5-answer": 3.5},
             "bob": {"ex3-answer": 1, "ex4-answer": 0, "ex5-answer": 4}}
    with gradebook._nbgrader_gradebook(db_url) as gb:
        for student, points in given.items():
            for grade_id, score in points.items():
                record = gb.find_grade(grade_id, MANUAL_CELLS[grade_id].notebook, "ch14", student)
                record.manual_score = score
                record.needs_manual_grade = False
        gb.db.commit()
    return out, db_url


BOB_AUTO = AUTO_MAX - ex1.POINTS["builds"] - ex1.POINTS["predict-hidden"] - ex2.POINTS["predict"]
EXPECTED_TOTAL = {"alice": AUTO_MAX + 10, "bob": BOB_AUTO + 5}


def _write_map(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_manual_points_are_read_back_from_nbgraders_database(graded: tuple[Path, str]) -> None:
    """Are the points a person gave read back per student, and None while an answer is still ungraded?"""
    _, db_url = graded
    assert gradebook.manual_points(["alice", "bob", "dave", "nobody"], db_url=db_url) == \
        {"alice": 10.0, "bob": 5.0, "dave": None, "nobody": None}


def test_manual_points_refuse_a_database_that_is_not_there(tmp_path: Path) -> None:
    """Is a missing database file named, instead of an empty one being made?"""
    with pytest.raises(resultfiles.ResultsNotFound, match="gradebook nbgrader"):
        gradebook.manual_points(["alice"], db_url=f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


def test_canvas_file_round_trip(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Does the Canvas file have Canvas's documented columns, a Points Possible row and each matched total?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [
        ["student", "Student", "ID", "SIS User ID", "SIS Login ID", "Section"],
        ["alice", "Liddell, Alice", "101", "S-1", "alice@uni.example", "A"],
        ["bob", "Builder, Bob", "102", "S-2", "bob@uni.example", "A"],
        ["dave", "Doe, Dave", "104", "", "", "B"],
        ["erin", "Erin, Absent", "105", "S-5", "erin@uni.example", "B"]])
    dest = tmp_path / "canvas.csv"
    result = lms.export(out, lms="canvas", ids=ids, dest=dest, db_url=db_url, title="Chapter 14 (4211)")

    rows = _read(dest)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Chapter 14 (4211)"]
    assert rows[1][0] == "Points Possible" and float(rows[1][-1]) == AUTO_MAX + MANUAL_MAX
    by_id = {r[1]: r for r in rows[2:]}
    assert set(by_id) == {"101", "102", "104"}
    assert by_id["101"][:5] == ["Liddell, Alice", "101", "S-1", "alice@uni.example", "A"]
    assert float(by_id["101"][-1]) == EXPECTED_TOTAL["alice"]
    assert float(by_id["102"][-1]) == EXPECTED_TOTAL["bob"]
    assert by_id["104"][-1] == ""  # free text not graded: no total to import yet
    assert [(u.student, u.reason) for u in result.unmatched] == [("carol", "not in the id map")]
    assert _read(result.unmatched_path)[1][:1] == ["carol"]
    assert result.unknown == ["erin"]
    assert result.notes == []


def test_moodle_file_round_trip(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Does the Moodle file have the user column and the automatic, manual and total points of each student?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [["student", "email"], ["alice", "alice@uni.example"],
                                            ["bob", "bob@uni.example"], ["dave", "dave@uni.example"],
                                            ["carol", ""]])
    dest = tmp_path / "moodle.csv"
    result = lms.export(out, lms="moodle", ids=ids, dest=dest, db_url=db_url, title="Chapter 14")

    rows = _read(dest)
    assert rows[0] == ["Email address", "Chapter 14 automatic", "Chapter 14 manual", "Chapter 14 total"]
    by_email = {r[0]: r[1:] for r in rows[1:]}
    assert [float(v) for v in by_email["alice@uni.example"]] == [AUTO_MAX, 10, EXPECTED_TOTAL["alice"]]
    assert [float(v) for v in by_email["bob@uni.example"]] == [BOB_AUTO, 5, EXPECTED_TOTAL["bob"]]
    assert by_email["dave@uni.example"] == [f"{AUTO_MAX:g}", "", ""]
    assert [u.student for u in result.unmatched] == ["carol"]
    assert "gives no Email address" in result.unmatched[0].reason
    assert [s for s, _ in result.incomplete] == ["dave"]


def test_a_student_is_matched_by_key_or_by_name_in_another_case(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Does the id map find a student by the grader's key, and by the name written in another case?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [["who", "Username"], ["alice-0000", "alice"], ["BOB", "bob"]])
    result = lms.export(out, lms="moodle", ids=ids, dest=tmp_path / "m.csv", db_url=db_url)
    assert {r.student: r.identity["Username"] for r in result.rows} == {"alice": "alice", "bob": "bob"}
    assert sorted(u.student for u in result.unmatched) == ["carol", "dave"]


def test_an_id_map_without_a_user_column_is_refused(tmp_path: Path) -> None:
    """Is a map without any column the format identifies users by refused, naming the columns it needs?"""
    ids = _write_map(tmp_path / "ids.csv", [["student", "Section"], ["alice", "A"]])
    with pytest.raises(lms.IdMapInvalid, match="SIS User ID"):
        lms.read_id_map(ids, lms.get_format("canvas"))


def test_an_id_map_naming_a_student_twice_is_refused(tmp_path: Path) -> None:
    """Is a student on two lines of the map refused, with both line numbers?"""
    ids = _write_map(tmp_path / "ids.csv", [["student", "ID"], ["alice", "1"], ["bob", "2"], ["alice", "3"]])
    with pytest.raises(lms.IdMapInvalid, match=r"lines 2 and 4"):
        lms.read_id_map(ids, lms.get_format("canvas"))


def test_canvas_title_without_an_assignment_id_gets_a_note(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Is the instructor told that a title without '(id)' makes a new Canvas assignment?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [["student", "ID"], ["alice", "1"]])
    result = lms.export(out, lms="canvas", ids=ids, dest=tmp_path / "c.csv", db_url=db_url, title="Chapter 14")
    assert result.notes and "new assignment" in result.notes[0]


def test_export_command_lists_the_unmatched_students(graded: tuple[Path, str], tmp_path: Path, capsys) -> None:
    """Does `gradebook export` write the file and print every student left out and every blank total?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [["student", "ID"], ["alice", "1"], ["dave", "4"]])
    dest = tmp_path / "canvas.csv"
    status = cli.main(["gradebook", "export", str(out), "--format", "canvas", "--ids", str(ids), "--out", str(dest),
                       "--db", db_url, "--title", "Chapter 14 (4211)"])
    printed = capsys.readouterr().out
    assert status == 0 and dest.is_file()
    assert "2 graded student(s) NOT in the file" in printed
    assert "  bob: not in the id map" in printed and "  carol: not in the id map" in printed
    assert "dave: a free-text answer has no score" in printed


def test_export_command_with_a_bad_map_exits_2(graded: tuple[Path, str], tmp_path: Path, capsys) -> None:
    """Does a map without a user column end with exit status 2 and the reason, writing nothing?"""
    out, db_url = graded
    ids = _write_map(tmp_path / "ids.csv", [["student", "Section"], ["alice", "A"]])
    dest = tmp_path / "canvas.csv"
    status = cli.main(["gradebook", "export", str(out), "--format", "canvas", "--ids", str(ids), "--out", str(dest),
                       "--db", db_url])
    assert status == 2 and "identifies a student by" in capsys.readouterr().err
    assert not dest.exists()


def test_a_student_the_grader_failed_on_gets_blank_automatic_points(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Does a result with a grader error give blank automatic points and total, named, not a low score?"""
    out, db_url = graded
    broken = _grade("alice")
    broken.grader_errors["ex2"] = "RuntimeError: boom"
    _write_result(out, broken)
    ids = _write_map(tmp_path / "ids.csv", [["student", "username"], ["alice", "alice"], ["bob", "bob"]])
    result = lms.export(out, lms="moodle", ids=ids, dest=tmp_path / "m.csv", db_url=db_url)
    rows = {r[0]: r[1:] for r in _read(tmp_path / "m.csv")[1:]}
    assert rows["alice"] == ["", "10", ""] and rows["bob"][2] == f"{EXPECTED_TOTAL['bob']:g}"
    assert ("alice", "the grader failed on ex2; grade again") in result.incomplete


def test_two_students_matching_one_map_line_are_not_both_written(tmp_path: Path, graded: tuple[Path, str]) -> None:
    """When two graded names differ only by case and the map has one line, is the second left out and named?"""
    out, db_url = graded
    other = _grade("Bob")  # a second folder, "Bob" beside "bob": another key, as batch.student_key gives
    other.key = "bob-1111"
    _write_result(out, other)
    ids = _write_map(tmp_path / "ids.csv", [["student", "ID"], ["BOB", "102"]])
    result = lms.export(out, lms="canvas", ids=ids, dest=tmp_path / "c.csv", db_url=db_url)
    assert [r.student for r in result.rows] == ["Bob"]
    assert any(u.student == "bob" and "already matched 'Bob'" in u.reason for u in result.unmatched)


def test_an_unreadable_result_file_is_listed_and_the_rest_exported(graded: tuple[Path, str], tmp_path: Path) -> None:
    """Does one corrupt result file become a named unmatched line while every other student is written?"""
    out, db_url = graded
    (out / "results" / "zoe-0000.json").write_text("{ cut short", encoding="utf-8")
    ids = _write_map(tmp_path / "ids.csv", [["student", "ID"], ["alice", "1"], ["bob", "2"]])
    result = lms.export(out, lms="canvas", ids=ids, dest=tmp_path / "c.csv", db_url=db_url, title="Ch14 (1)")
    assert [r.student for r in result.rows] == ["alice", "bob"]
    assert any(u.student == "zoe-0000" and "not a readable result file" in u.reason for u in result.unmatched)
