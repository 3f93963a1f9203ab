"""One gradebook: the CSV, result folders merged, and nbgrader's database with automatic and manual points.

No engine is needed: grades are built by hand from check results with the
real check names and points.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from containerlab import exercises, gradebook, resultfiles
from containerlab.checks import CheckResult, ex1, ex2, ex3, results
from containerlab.checks import registry
from containerlab.grading import StudentGrade

#: The exercises graded by their checks (the others, free text, by a person).
AUTOMATIC = [e for e in registry.exercises() if e.points]
AUTO_MAX = sum(e.max_points for e in AUTOMATIC)


def _grade(student: str, *, failing: dict[str, set[str]] | None = None, answered: bool = True,
           problems: dict[str, str] | None = None) -> StudentGrade:
    """A grade with every check of the registry passed except those in ``failing``; free text present or not."""
    failing = failing or {}
    grade = StudentGrade(student, key=f"{student.lower()}-0000", problems=problems or {}, seconds=1.5,
                         notes={"ex1": ["The answer was found in a copy of the cell."]})
    for exercise in registry.exercises():
        key = exercise.key
        grade.results[key] = results(key, [
            CheckResult(name, name, name not in failing.get(key, set()), points,
                        hidden=name in ("predict-hidden", "no-test-data"))
            for name, points in exercise.points.items()], image=f"img-{key}",
            notes=[*grade.notes.get(key, []), "CRLF line endings changed"]  # as grade_student copies them
        ) if exercise.points else results(key, [CheckResult("answer-present", "An answer is written", answered, 0)])
    grade.results["ex3"] += results("ex3", [CheckResult("answer-present", "An answer is written", answered, 0)])
    return grade


def _write_result(out: Path, grade: StudentGrade, *, fingerprint: str = "fp-1", mtime: float | None = None) -> Path:
    path = out / "results" / f"{grade.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "fingerprint": fingerprint, "grade": grade.to_dict()}))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {r["student"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}


# --------------------------------------------------------------------------- write_csv


def test_write_csv_gives_points_per_exercise_and_answered_for_free_text(tmp_path: Path) -> None:
    """Does each row hold the points of each exercise, the total, and answered/no answer for ex4 and ex5?"""
    alice = _grade("alice")
    bob = _grade("bob", failing={"ex1": {"builds", "health"}, "ex2": {"health"}}, answered=False)
    gradebook.write_csv([alice, bob], tmp_path / "gradebook.csv")
    rows = _rows(tmp_path / "gradebook.csv")
    assert list(rows) == ["alice", "bob"]
    assert rows["alice"]["ex1"] == f"{sum(ex1.POINTS.values()):g}"
    assert rows["alice"]["total"] == f"{AUTO_MAX:g}" and rows["alice"]["max"] == f"{AUTO_MAX:g}"
    assert rows["bob"]["ex1"] == f"{sum(ex1.POINTS.values()) - ex1.POINTS['builds'] - ex1.POINTS['health']:g}"
    assert (rows["alice"]["ex4"], rows["bob"]["ex5"]) == ("answered", "no answer")


def test_write_csv_names_the_problem_of_an_ungradable_exercise(tmp_path: Path) -> None:
    """Does a student whose exercise could not be graded get a row whose problems column says why?"""
    carol = _grade("carol", problems={"ex1": "ex1-write-a-dockerfile.ipynb is not a valid notebook file"})
    del carol.results["ex1"]
    gradebook.write_csv([carol], tmp_path / "gradebook.csv")
    row = _rows(tmp_path / "gradebook.csv")["carol"]
    assert row["ex1"] == "0" and "not a valid notebook" in row["problems"]


def test_write_csv_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Is the CSV replaced in one step, with nothing left beside it?"""
    gradebook.write_csv([_grade("alice")], tmp_path / "gradebook.csv")
    gradebook.write_csv([_grade("alice"), _grade("bob")], tmp_path / "gradebook.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]
    assert list(_rows(tmp_path / "gradebook.csv")) == ["alice", "bob"]


# --------------------------------------------------------------------------- load_results


def test_load_results_gives_back_the_grades_that_were_written(tmp_path: Path) -> None:
    """Does a grade written as a result file come back equal, sorted by student?"""
    grades = [_grade("zoe", failing={"ex2": {"deps-reused"}}), _grade("José García")]
    for grade in grades:
        _write_result(tmp_path, grade)
    loaded = gradebook.load_results(tmp_path)
    assert [g.student for g in loaded] == ["José García", "zoe"]
    assert loaded[1] == grades[0]
    assert loaded[1].score == grades[0].score and loaded[1].results["ex1"].image == "img-ex1"


def test_load_results_ignores_temporary_files_of_a_killed_run(tmp_path: Path) -> None:
    """Are half-written temporary files (dot files, .tmp) left out?"""
    _write_result(tmp_path, _grade("alice"))
    (tmp_path / "results" / ".bob-0000.json.x1.tmp").write_text("{ half")
    (tmp_path / "results" / ".carol-0000.json").write_text("{ half")
    assert [g.student for g in gradebook.load_results(tmp_path)] == ["alice"]


def test_load_results_names_a_corrupt_file(tmp_path: Path) -> None:
    """Does a result file that is not JSON stop the load with a message naming the file?"""
    _write_result(tmp_path, _grade("alice"))
    (tmp_path / "results" / "bob-0000.json").write_text("{ not json")
    with pytest.raises(resultfiles.ResultFileInvalid, match="bob-0000.json"):
        gradebook.load_results(tmp_path)


def test_load_results_refuses_another_format(tmp_path: Path) -> None:
    """Does a result file of another format number get refused, saying which format is read?"""
    path = _write_result(tmp_path, _grade("alice"))
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 2}))
    with pytest.raises(resultfiles.ResultFileInvalid, match="format 2.*reads format 1"):
        gradebook.load_results(tmp_path)


def test_load_results_without_a_results_folder_says_what_is_expected(tmp_path: Path) -> None:
    """Does a folder without results/ raise ResultsNotFound naming the folder?"""
    with pytest.raises(resultfiles.ResultsNotFound, match="results/"):
        gradebook.load_results(tmp_path)


# --------------------------------------------------------------------------- merge


def test_merge_of_shards_holds_every_student_once(tmp_path: Path) -> None:
    """Do two shards' result folders merge into one results/, gradebook.csv and feedback for all?"""
    _write_result(tmp_path / "shard1", _grade("alice"))
    _write_result(tmp_path / "shard2", _grade("bob", failing={"ex3": {"data-mounted"}}))
    said: list[str] = []
    merged = gradebook.merge([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "all", say=said.append)
    assert [g.student for g in merged] == ["alice", "bob"] and said == []
    assert sorted(p.name for p in (tmp_path / "all" / "results").iterdir()) == ["alice-0000.json", "bob-0000.json"]
    rows = _rows(tmp_path / "all" / "gradebook.csv")
    assert rows["bob"]["ex3"] == f"{sum(ex3.POINTS.values()) - ex3.POINTS['data-mounted']:g}"
    assert (tmp_path / "all" / "feedback" / "bob.txt").is_file()
    assert (tmp_path / "all" / "feedback" / "alice.html").is_file()
    assert [g.student for g in gradebook.load_results(tmp_path / "all")] == ["alice", "bob"]


def test_merge_keeps_the_newer_result_and_says_so(tmp_path: Path) -> None:
    """For a student graded on two machines, is the newer result kept and is the instructor told?"""
    _write_result(tmp_path / "a", _grade("alice", failing={"ex1": {"builds"}}), mtime=1_700_000_000)
    _write_result(tmp_path / "b", _grade("alice"), mtime=1_700_000_600)
    said: list[str] = []
    merged = gradebook.merge([tmp_path / "b", tmp_path / "a"], tmp_path / "all", say=said.append)
    assert merged[0].score == AUTO_MAX
    assert len(said) == 1 and "alice" in said[0] and "kept the newer" in said[0] and str(tmp_path / "b") in said[0]
    assert "different submissions" not in said[0]


def test_merge_prefers_the_time_written_in_the_file_to_its_mtime(tmp_path: Path) -> None:
    """When result files carry graded_at, is the newer by that time kept even if copying reset the mtimes?"""
    for folder, when, failing in (("a", "2026-12-01T10:00:00+00:00", set()), ("b", "2026-12-01T09:00:00+00:00",
                                                                               {"builds"})):
        path = _write_result(tmp_path / folder, _grade("alice", failing={"ex1": failing}))
        path.write_text(json.dumps({**json.loads(path.read_text()), "graded_at": when}))
    said: list[str] = []
    merged = gradebook.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "all", say=said.append)
    assert merged[0].score == AUTO_MAX and "2026-12-01 10:00:00" in said[0]


def test_merge_reports_conflicting_fingerprints(tmp_path: Path) -> None:
    """When the two results graded different submissions, does the message say so and name both fingerprints?"""
    _write_result(tmp_path / "a", _grade("alice"), fingerprint="aaa111", mtime=1_700_000_000)
    _write_result(tmp_path / "b", _grade("alice"), fingerprint="bbb222", mtime=1_700_000_600)
    said: list[str] = []
    gradebook.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "all", say=said.append)
    assert "different submissions" in said[0] and "aaa111" in said[0] and "bbb222" in said[0]
    kept = json.loads((tmp_path / "all" / "results" / "alice-0000.json").read_text())
    assert kept["fingerprint"] == "bbb222"


def test_merge_into_one_of_its_inputs_keeps_its_files(tmp_path: Path) -> None:
    """Can the first folder be the merge's output, without losing its own result files?"""
    _write_result(tmp_path / "a", _grade("alice"))
    _write_result(tmp_path / "b", _grade("bob"))
    merged = gradebook.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "a", say=lambda _: None)
    assert [g.student for g in merged] == ["alice", "bob"]
    assert [g.student for g in gradebook.load_results(tmp_path / "a")] == ["alice", "bob"]


def test_merge_into_an_earlier_merge_keeps_its_students(tmp_path: Path) -> None:
    """Does merging a new shard into last time's output keep the students already there, in the CSV too?"""
    _write_result(tmp_path / "a", _grade("alice"))
    gradebook.merge([tmp_path / "a"], tmp_path / "all", say=lambda _: None)
    _write_result(tmp_path / "b", _grade("bob"))
    merged = gradebook.merge([tmp_path / "b"], tmp_path / "all", say=lambda _: None)
    assert [g.student for g in merged] == ["alice", "bob"]
    assert list(_rows(tmp_path / "all" / "gradebook.csv")) == ["alice", "bob"]


def test_merge_with_no_result_at_all_says_so(tmp_path: Path) -> None:
    """Does merging empty result folders raise ResultsNotFound instead of writing an empty gradebook?"""
    (tmp_path / "a" / "results").mkdir(parents=True)
    with pytest.raises(resultfiles.ResultsNotFound, match="No result file"):
        gradebook.merge([tmp_path / "a"], tmp_path / "all")
    assert not (tmp_path / "all").exists()


# --------------------------------------------------------------------------- graded cells


def test_every_check_with_points_gives_them_in_exactly_one_graded_cell() -> None:
    """Does every check of ex1-ex3 with points appear in exactly one graded cell, so CSV and nbgrader agree?"""
    cells = gradebook.graded_cells()
    for exercise in AUTOMATIC:
        named = [name for c in cells if c.exercise == exercise.key for name in c.checks]
        assert sorted(named) == sorted(exercise.points), exercise.key
    manual = {c.grade_id: c.points for c in cells if c.manual}
    assert manual == {"ex3-answer": 3, "ex4-answer": 4, "ex5-answer": 4}


def test_hidden_cells_are_read_from_hidden_require() -> None:
    """Are the hidden test cells mapped to the checks their hidden.require(...) names?"""
    cells = {c.grade_id: c for c in gradebook.graded_cells()}
    assert cells["ex1-test-hidden-data"].checks == ("no-test-data",)
    assert cells["ex1-test-hidden-predict"].checks == ("predict-hidden",)
    assert cells["ex2-test-health"].checks == ("health",)
    assert cells["ex2-test-predict"].checks == ("predict",)


def test_a_graded_cell_naming_no_check_is_refused(tmp_path: Path) -> None:
    """Does a graded code cell without a require(...) raise GradebookMismatch naming the cell?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "assert 1 + 1 == 2", metadata={"nbgrader": {"grade": True, "grade_id": "ex1-test-sum", "points": 1,
                                                    "solution": False, "locked": True, "schema_version": 3}})])
    nbformat.write(nb, tmp_path / "ex1-write-a-dockerfile.ipynb")
    with pytest.raises(gradebook.GradebookMismatch, match="ex1-test-sum"):
        gradebook.graded_cells(tmp_path)


def test_each_graded_cell_requires_one_check() -> None:
    """Does each automatically graded cell require exactly one check, so its points are all or nothing, as in nbgrader?"""
    for cell in gradebook.graded_cells():
        assert len(cell.checks) == 1 or (not cell.checks and cell.grade_id.endswith("-answer")), cell.grade_id
    cell = {c.grade_id: c for c in gradebook.graded_cells()}["ex2-test-predict"]
    assert cell.score(_grade("a", failing={"ex2": {"predict"}})) == 0
    assert cell.score(_grade("a")) == ex2.POINTS["predict"]
    ungraded = _grade("b")
    del ungraded.results["ex2"]
    assert cell.score(ungraded) == 0


# --------------------------------------------------------------------------- nbgrader's database


@pytest.fixture
def course():
    """A scratch nbgrader course directory (the course's config and sources); removed afterwards."""
    folder = exercises.scratch_course()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _export(course: Path, db_url: str) -> dict[str, dict[str, str]]:
    """Run the real `nbgrader export` on the database and return its rows by student."""
    out = course / "grades.csv"
    exercises.nbgrader(["export", f"--db={db_url}", f"--to={out}"], course_dir=course)
    return {r["student_id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}


@pytest.mark.slow
def test_round_trip_automatic_plus_manual_points_is_nbgraders_total(tmp_path: Path, course: Path) -> None:
    """Grade, write into nbgrader's db, add manual points with nbgrader's API, export: total = automatic + manual?"""
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    alice = _grade("alice")
    bob = _grade("bob", failing={"ex1": {"builds", "predict-hidden"}, "ex2": {"predict"}})
    gradebook.to_nbgrader([alice, bob], db_url=db_url)

    with Gradebook(db_url, gradebook.course_id()) as gb:
        assert gb.find_grade("ex1-test-hidden-predict", "ex1-write-a-dockerfile", "ch14", "bob").auto_score == 0
        assert gb.find_grade("ex2-test-predict", "ex2-improve-the-image", "ch14", "bob").auto_score == 0
        assert gb.find_grade("ex2-test-health", "ex2-improve-the-image", "ch14", "bob").auto_score == \
            ex2.POINTS["health"]
        # Formgrader's view: the free-text answers wait for a person, the automatic ones do not.
        assert gb.find_submission("ch14", "alice").needs_manual_grade
        assert not gb.find_submission_notebook("ex1-write-a-dockerfile", "ch14", "alice").needs_manual_grade
        assert gb.find_submission("ch14", "alice").code_score == AUTO_MAX
        manual = {"ex3-answer": ("ex3-data-and-secrets-out", 2.5), "ex4-answer": ("ex4-the-lockfile-analogy", 4)}
        for student in ("alice", "bob"):
            for cell, (notebook, points) in manual.items():
                record = gb.find_grade(cell, notebook, "ch14", student)
                record.manual_score = points
                record.needs_manual_grade = False
        gb.db.commit()

    rows = _export(course, db_url)
    manual_total = 2.5 + 4
    bob_auto = bob.score
    assert bob_auto == AUTO_MAX - ex1.POINTS["builds"] - ex1.POINTS["predict-hidden"] - ex2.POINTS["predict"]
    assert float(rows["alice"]["raw_score"]) == AUTO_MAX + manual_total
    assert float(rows["bob"]["raw_score"]) == bob_auto + manual_total
    assert float(rows["bob"]["max_score"]) == AUTO_MAX + 3 + 4 + 4

    # Grading again (e.g. after a regrade) changes the automatic points and keeps the person's.
    gradebook.to_nbgrader([_grade("bob")], db_url=db_url)
    assert float(_export(course, db_url)["bob"]["raw_score"]) == AUTO_MAX + manual_total


@pytest.mark.slow
def test_to_nbgrader_uses_the_assignment_generate_assignment_made(tmp_path: Path, course: Path) -> None:
    """With the course's own `nbgrader generate_assignment` db, are its records used and nothing duplicated?"""
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{course / 'gradebook.db'}"
    exercises.generate(course)
    with Gradebook(db_url, gradebook.course_id()) as gb:
        before = {c.name: c.id for nb in gb.find_assignment("ch14").notebooks for c in nb.grade_cells}
    gradebook.to_nbgrader([_grade("alice")], db_url=db_url)
    with Gradebook(db_url, gradebook.course_id()) as gb:
        after = {c.name: c.id for nb in gb.find_assignment("ch14").notebooks for c in nb.grade_cells}
        assert len(gb.assignments) == 1
    assert after == before
    assert float(_export(course, db_url)["alice"]["raw_score"]) == AUTO_MAX


@pytest.mark.slow
def test_to_nbgrader_refuses_a_database_whose_points_differ(tmp_path: Path) -> None:
    """Does a db whose cell points differ from the source notebooks raise GradebookMismatch naming the cell?"""
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    gradebook.create_assignment(db_url=db_url)
    with Gradebook(db_url, gradebook.course_id()) as gb:
        gb.find_grade_cell("ex1-test-builds", "ex1-write-a-dockerfile", "ch14").max_score = 5
        gb.db.commit()
    with pytest.raises(gradebook.GradebookMismatch, match="ex1-test-builds"):
        gradebook.to_nbgrader([_grade("alice")], db_url=db_url)


def test_course_db_url_follows_the_course_config(tmp_path: Path) -> None:
    """Is a course's own CourseDirectory.db_url used, and nbgrader's default gradebook.db without one?"""
    assert gradebook.course_db_url(tmp_path) == f"sqlite:///{tmp_path / 'gradebook.db'}"
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.db_url = 'sqlite:////x/g.db'\n")
    assert gradebook.course_db_url(tmp_path) == "sqlite:////x/g.db"


def test_relative_sqlite_url_names_the_file_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    """Is `sqlite:///gradebook.db` made absolute against the current folder (nbgrader runs elsewhere)?"""
    monkeypatch.chdir(tmp_path)
    assert gradebook.absolute_db_url("sqlite:///gradebook.db") == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert gradebook.absolute_db_url("sqlite:////abs/g.db") == "sqlite:////abs/g.db"


# --------------------------------------------------------------------------- feedback for nbgrader


def test_feedback_pages_go_where_release_feedback_reads_them(tmp_path: Path) -> None:
    """Are the pages feedback/<student>/ch14/<notebook>.html, with collect's timestamp and secret beside them?"""
    submitted = tmp_path / "submitted" / "alice" / "ch14"
    submitted.mkdir(parents=True)
    (submitted / "timestamp.txt").write_text("2026-12-01 12:00:00.000000 UTC")
    (submitted / "submission_secret.txt").write_text("s3cr3t")
    grade = _grade("alice", failing={"ex1": {"health"}})
    pages = gradebook.write_nbgrader_feedback(grade, tmp_path / "feedback", submitted=submitted)
    folder = tmp_path / "feedback" / "alice" / "ch14"
    assert sorted(p.name for p in pages) == sorted(f"{nb.stem}.html" for nb in
                                                   (exercises.SOLUTIONS_DIR / "ch14").glob("*.ipynb"))
    page = (folder / "ex1-write-a-dockerfile.html").read_text()
    assert "health" in page and "(hidden test)" in page and "found in a copy of the cell" in page
    assert (folder / "timestamp.txt").read_text().startswith("2026-12-01")
    assert (folder / "submission_secret.txt").read_text() == "s3cr3t"


def _formgrader(course: Path, tmp_path: Path):
    """nbgrader's NbGraderAPI (what formgrader shows) on the course directory."""
    from nbgrader.apps.api import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    cfg.Exchange.root = str(tmp_path / "exchange")
    return NbGraderAPI(config=cfg)


@pytest.mark.slow
def test_gradebook_nbgrader_command_fills_the_course_and_release_feedback_releases(tmp_path: Path,
                                                                                  course: Path) -> None:
    """Does `containerlab gradebook nbgrader OUT --course DIR` fill the db, the feedback and autograded
    folders, so that the real `nbgrader release_feedback` releases the pages?"""
    from nbgrader.api import Gradebook

    from containerlab import cli

    handed_in = course / "submitted" / "alice" / "ch14"
    shutil.copytree(exercises.EXERCISES_DIR / "ch14", handed_in, ignore=shutil.ignore_patterns("service"))
    ex4 = handed_in / "ex4-the-lockfile-analogy.ipynb"  # ex4 answered; ex3 and ex5 untouched
    nb = nbformat.read(ex4, as_version=4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex4-answer").source = "A lockfile"
    nbformat.write(nb, ex4)
    (handed_in / "timestamp.txt").write_text("2026-12-01 12:00:00.000000 UTC")
    (handed_in / "submission_secret.txt").write_text("alice-secret")
    out = tmp_path / "grades"
    _write_result(out, _grade("alice", failing={"ex1": {"health"}}))

    assert cli.main(["gradebook", "nbgrader", str(out), "--course", str(course)]) == 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", gradebook.course_id()) as gb:
        submission = gb.find_submission("ch14", "alice")
        assert submission.code_score == AUTO_MAX - ex1.POINTS["health"]
        assert submission.timestamp.year == 2026
        # nbgrader's rule for untouched answers: 0 and "No response."; an answer waits for a person.
        ex5 = gb.find_grade("ex5-answer", "ex5-when-not-to-containerise", "ch14", "alice")
        assert (ex5.auto_score, ex5.needs_manual_grade) == (0, False)
        assert gb.find_comment("ex5-answer", "ex5-when-not-to-containerise", "ch14", "alice").comment == "No response."
        assert gb.find_comment("ex1-dockerfile", "ex1-write-a-dockerfile", "ch14", "alice").comment == "No response."
        ex4 = gb.find_grade("ex4-answer", "ex4-the-lockfile-analogy", "ch14", "alice")
        assert ex4.auto_score is None and ex4.needs_manual_grade
    assert (course / "autograded" / "alice" / "ch14" / "ex3-data-and-secrets-out.ipynb").is_file()
    # Formgrader's own backend counts the submission as graded, with the automatic points, waiting for a person.
    shown = _formgrader(course, tmp_path).get_submission("ch14", "alice")
    assert shown["autograded"] and shown["needs_manual_grade"]
    assert shown["code_score"] == AUTO_MAX - ex1.POINTS["health"] and shown["max_written_score"] == 11
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", gradebook.course_id()) as gb:
        gb.find_grade("ex4-answer", "ex4-the-lockfile-analogy", "ch14", "alice").manual_score = 3
        gb.db.commit()
    assert _formgrader(course, tmp_path).get_submission("ch14", "alice")["score"] == AUTO_MAX - ex1.POINTS["health"] + 3
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exercises.nbgrader(["release_feedback", "ch14", f"--Exchange.root={exchange}"], course_dir=course)
    released = list((exchange / gradebook.course_id() / "feedback").glob("*.html"))
    assert len(released) == len(registry.exercises())  # one page per exercise notebook
    assert any("health" in p.read_text() for p in released)


def test_gradebook_nbgrader_command_without_results_exits_2(tmp_path: Path, capsys) -> None:
    """Does the command exit 2 with a message when OUT holds no results/ folder?"""
    from containerlab import cli

    assert cli.main(["gradebook", "nbgrader", str(tmp_path), "--course", str(tmp_path)]) == 2
    assert "results/" in capsys.readouterr().err


def test_gradebook_merge_command_merges_shards(tmp_path: Path, capsys) -> None:
    """Does `containerlab gradebook merge A B --out C` write one gradebook and say who was graded twice?"""
    from containerlab import cli

    _write_result(tmp_path / "a", _grade("alice"), mtime=1_700_000_000)
    _write_result(tmp_path / "b", _grade("alice"), mtime=1_700_000_600)
    _write_result(tmp_path / "b", _grade("bob"))
    assert cli.main(["gradebook", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    captured = capsys.readouterr()
    assert "Merged 2 student(s)" in captured.out and "alice" in captured.err
    assert list(_rows(tmp_path / "c" / "gradebook.csv")) == ["alice", "bob"]
