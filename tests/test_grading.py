"""`containerlab grade` over a folder of submissions: good, untouched and broken ones in one batch."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from containerlab import batch, cli, config, exercises
from containerlab.checks import ex1, ex2, ex3, ex6, submission
from containerlab.grading import StudentGrade
from containerlab import report
from containerlab.checks import CheckResult, results

#: An exercise-2 report computed by code, as a student may write it.
COMPUTED_REPORT = """import docker
sizes = [docker.from_env().images.get(t).attrs["Size"] for t in ("cl-ex-ex1:latest", "cl-ex-ex2:latest")]
REPORTED_REDUCTION_PERCENT = round(100 * (sizes[0] - sizes[1]) / sizes[0], 1)
"""
RELEASE = exercises.EXERCISES_DIR / "ch14"
SOURCE = exercises.SOLUTIONS_DIR / "ch14"


def _fill(student_dir: Path, *, answers_from: Path | None, overrides: dict[str, str] | None = None) -> None:
    """Copy the student versions into student_dir, answer cells filled from a source notebook.

    ``overrides`` then replaces the source of the answer cells it names (by nbgrader grade_id).
    """
    student_dir.mkdir(parents=True)
    for release in RELEASE.glob("*.ipynb"):
        nb = nbformat.read(release, as_version=4)
        if answers_from is not None:
            answers = {c.metadata["nbgrader"]["grade_id"]: c.source
                       for c in nbformat.read(answers_from / release.name, as_version=4).cells
                       if c.metadata.get("nbgrader", {}).get("solution")}
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in answers:
                    cell.source = answers[gid]
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in (overrides or {}):
                cell.source = overrides[gid]
        nbformat.write(nb, student_dir / release.name)


@pytest.mark.docker
@pytest.mark.slow
def test_grade_a_mixed_batch(tmp_path: Path, docker_client, capsys) -> None:
    """Does one batch grade a solution fully, a starter at zero, and name the problem of broken ones?"""
    submitted = tmp_path / "submitted"
    _fill(submitted / "alice" / "ch14", answers_from=SOURCE)           # nbgrader layout, full solution
    _fill(submitted / "bob", answers_from=None)                        # flat layout, untouched starter
    _fill(submitted / "carol", answers_from=SOURCE, overrides={"ex2-reported-reduction": COMPUTED_REPORT})
    (submitted / "carol" / "ex1-write-a-dockerfile.ipynb").write_text("{ this is not json")
    (submitted / "carol" / "ex5-when-not-to-containerise.ipynb").unlink()
    _fill(submitted / "dave", answers_from=SOURCE, overrides={
        "ex1-dockerfile": "%%writefile ex1.Dockerfile\nFROM python:3.13-slim\nRUN while true; do sleep 1; done\n"})
    for student in ("carol", "dave"):  # exercise 6 is optional: only alice (full) and bob (starter) try it
        (submitted / student / "ex6-compose-the-stack.ipynb").unlink()
    out = tmp_path / "grades"

    # --no-prune: the build cache of the shared engine holds the layers the book and later tests reuse
    # (a prune to 5 GB here made test_layers install the solutions' dependencies again: 3 minutes).
    status = cli.main(["grade", str(submitted), "--out", str(out), "--build-timeout", "15", "--no-prune"])
    assert status == 0
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    full = sum(ex1.POINTS.values())
    assert rows["alice"]["ex1"] == f"{full:g}" and rows["alice"]["problems"] == ""
    assert rows["alice"]["ex2"] == f"{sum(ex2.POINTS.values()):g}"
    # A reduction computed by code is not run by the batch grader, and the feedback says so.
    assert "only reads a number" in (out / "feedback" / "carol.txt").read_text()
    assert rows["alice"]["ex3"] == f"{sum(ex3.POINTS.values()):g}"
    assert rows["bob"]["total"] == "0"
    assert (rows["alice"]["ex4"], rows["bob"]["ex4"], rows["carol"]["ex5"]) == ("answered", "no answer", "no answer")
    assert str(submitted) not in (out / "feedback" / "carol.txt").read_text()  # no instructor paths
    assert rows["carol"]["ex1"] == "0" and "not a valid notebook" in rows["carol"]["problems"]
    assert "There is no notebook ex5" in rows["carol"]["problems"]
    assert rows["dave"]["ex1"] == "0"  # no free points: its slim base counts only for an image that serves
    dave = (out / "feedback" / "dave.txt").read_text()
    assert "more than 15 s" in dave and "never ends" in dave
    bob = (out / "feedback" / "bob.txt").read_text()
    assert "placeholder" in bob
    # The optional exercise 6: full points for the solution's stack; a starter or no notebook gets 0 and one remark.
    assert rows["alice"]["ex6"] == f"{sum(ex6.POINTS.values()):g}"
    assert (rows["bob"]["ex6"], rows["carol"]["ex6"], rows["dave"]["ex6"]) == ("0", "0", "0")
    assert "ex6" not in rows["carol"]["problems"] and "ex6" not in rows["bob"]["problems"]
    carol = (out / "feedback" / "carol.txt").read_text()
    ex6_part = carol[carol.index("Checks for ex6"):]
    assert "Not attempted (optional)." in ex6_part and "Counts once" not in ex6_part
    # Every check of alice passed: ex1, ex2, ex3, ex6, and the three free-text answers are there.
    passed = len(ex1.POINTS) + len(ex2.POINTS) + len(ex3.POINTS) + len(ex6.POINTS) + 3
    assert (out / "feedback" / "alice.html").read_text().count("\u2714") == passed
    assert "alice" in capsys.readouterr().out
    # Nothing of the batch is left on the engine.
    assert docker_client.containers.list(all=True, filters={"label": "org.containerlab.exercise-check"}) == []
    # This grader's objects of these students only: the engine is shared with other graders and clones, and a
    # killed run of another test may have left a student's image of its own (removed by the next batch's clean-up).
    ours = tuple(f"cl-ex-grade-{batch.student_key(s)}-" for s in ("alice", "bob", "carol", "dave"))
    assert not [t for i in docker_client.images.list() for t in i.tags
                if t.startswith(ours) and t.endswith(f":{config.INSTANCE}")]
    assert not [v for v in docker_client.volumes.list() if v.name.startswith("cl-ex-grade-")
                and any(batch.student_key(s) in v.name for s in ("alice", "bob", "carol", "dave"))
                and config.INSTANCE in v.name]


def test_grade_reports_a_missing_folder(tmp_path: Path, capsys) -> None:
    """Does grading a folder that does not exist exit 2 with a message naming it?"""
    assert cli.main(["grade", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_grade_refuses_an_unknown_student(tmp_path: Path, capsys) -> None:
    """Does asking for a student with no submission exit 2 naming them and the students there?"""
    (tmp_path / "alice").mkdir()
    assert cli.main(["grade", str(tmp_path), "--student", "zed"]) == 2
    err = capsys.readouterr().err
    assert "zed" in err and "alice" in err


def test_rendering_shows_points_hints_and_hidden_marks() -> None:
    """Do the text and HTML checklists show marks, points, hints of failures and hidden tests?"""
    res = results("ex1", [
        CheckResult("builds", "The image builds", True, 2, "Built in 3 s."),
        CheckResult("health", "Answers /health", False, 2, "Nothing answered.", "Listen on 0.0.0.0 <port 80>."),
        CheckResult("no-test-data", "No data inside", True, 1, "", hidden=True),
    ], notes=["CRLF line endings were changed"])
    text = report.render_text(res)
    assert "[PASS] 2/2  The image builds" in text
    assert "[FAIL] 0/2  Answers /health" in text and "hint: Listen on 0.0.0.0 <port 80>." in text
    assert "(hidden test)" in text and "Score: 3 / 5" in text and "CRLF" in text
    assert "(hidden test)" not in report.render_text(res, show_hidden=False)
    page = report.Checklist(res)._repr_html_()
    assert "&lt;port 80&gt;" in page and "Hint:" in page and "Score: 3 / 5" in page
    assert str(report.Checklist(res)) == text
    grade = StudentGrade("zoe", results={"ex1": res})
    assert "zoe" in report.summary_line(grade)


@pytest.mark.parametrize(("source", "expected"), [
    ("# measured with docker image ls\nREPORTED_REDUCTION_PERCENT = 19.7\n", 19.7),
    ("REPORTED_REDUCTION_PERCENT = 20\n", 20.0),
    (COMPUTED_REPORT, "computed in the cell"),
    ("REPORTED_REDUCTION_PERCENT = \n", "not valid Python"),
    ("x = 3\n", "sets no REPORTED_REDUCTION_PERCENT"),
])
def test_reported_number_reads_only_a_written_number(tmp_path: Path, source: str, expected: object) -> None:
    """Does the batch grader read a written number, and say why for code, broken or missing answers?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        source, metadata={"nbgrader": {"grade_id": "ex2-reported-reduction", "solution": True}})])
    path = tmp_path / "ex2.ipynb"
    nbformat.write(nb, path)
    got = submission.reported_number(path, "ex2-reported-reduction", "REPORTED_REDUCTION_PERCENT")
    if isinstance(expected, float):
        assert got == expected
    else:
        assert isinstance(got, str) and expected in got


def test_each_exercise_records_its_grading_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a grade keep, per exercise, the seconds its grading took (for the benchmark's "where the time goes"),
    and keep them through its result file's data?"""
    import dataclasses
    import time

    from containerlab import grading
    from containerlab.checks import registry

    def slow(submission) -> object:  # noqa: ANN001
        time.sleep(0.3)
        return results(submission.exercise.key, [CheckResult("done", "Done", True, 1)])

    def quick(submission) -> object:  # noqa: ANN001
        return results(submission.exercise.key, [CheckResult("done", "Done", True, 1)])

    pair = (dataclasses.replace(registry.exercise("ex1"), grade=slow),
            dataclasses.replace(registry.exercise("ex2"), grade=quick))
    monkeypatch.setattr(registry, "exercises", lambda: pair)
    (tmp_path / "sub").mkdir()
    grade = grading.grade_student("gina", tmp_path / "sub", key="gina", work_root=tmp_path / "work", cases=[])
    assert set(grade.exercise_seconds) == {"ex1", "ex2"}
    assert 0.3 <= grade.exercise_seconds["ex1"] <= grade.seconds
    assert grade.exercise_seconds["ex2"] < 0.3
    assert grading.StudentGrade.from_dict(grade.to_dict()).exercise_seconds == grade.exercise_seconds
