"""The class report: figures counted from a generated class with known causes and counts.

No engine: the class is made of the project's own types by the rules of
``tests/class_fakes.py`` and written with the class grader's own writer. For
30 students those rules give (worked out by hand from them):

- ex1: 6 builds fail for no wheel (0, 5, 10, 15, 20, 25), 4 services listen on
  loopback only (7, 14, 21, 28): 10 students with 0 of 10 points; 7 shell-form
  CMDs (3, 6, 9, 12, 18, 24, 27) with 9; 13 students with 10.
- ex2: 3 builds fail for no wheel (0, 11, 22): 0 of 9 points; 27 with 9.
- no-wheel hits 8 students (0 and 0 counted once) in 9 failed checks.
- ex3: student 3 not graded (a grader error); ex6: 15 not attempted.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import class_fakes
from containerlab import classreport, cli, config, gradebook, resultfiles
from containerlab.checks import causes, ex1, service
from containerlab.checks import registry


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grading run of 30 generated students (the --out folder of `containerlab grade`)."""
    return class_fakes.write_class(tmp_path_factory.mktemp("class") / "grades", class_fakes.make_class(30))


@pytest.fixture(scope="module")
def written(graded: Path) -> classreport.ClassReport:
    return classreport.write_report([graded], say=lambda _: None)


def test_scores_per_exercise_are_counted_with_the_maximum(graded: Path, written: classreport.ClassReport) -> None:
    """Does scores.csv count the students per score of each exercise, with its maximum and the ungraded?"""
    assert written.page == graded / "report" / "index.html" and written.students == 30
    rows = _csv(graded / "report" / "scores.csv")
    spread = {(r["exercise"], r["score"]): int(r["students"]) for r in rows if r["students"] != "0"}
    assert spread == {("ex1", "0"): 10, ("ex1", "9"): 7, ("ex1", "10"): 13, ("ex2", "0"): 3, ("ex2", "9"): 27,
                      ("ex3", "8"): 29, ("ex3", "not graded"): 1, ("ex6", "0"): 15, ("ex6", "12"): 15}
    assert {r["exercise"]: r["max_points"] for r in rows} == {"ex1": "10", "ex2": "9", "ex3": "8", "ex6": "12"}
    assert [r["score"] for r in rows if r["exercise"] == "ex2"] == [*map(str, range(10)), "not graded"]


def test_every_check_counts_passed_failed_and_not_graded(graded: Path, written: classreport.ClassReport) -> None:
    """Does checks.csv hold every check of every exercise, with passes, failures and the students not graded?"""
    rows = {(r["exercise"], r["check"]): r for r in _csv(graded / "report" / "checks.csv")}
    names = {(e.key, n) for e in registry.exercises() for n in e.points or ["answer-present"]}
    assert set(rows) == names

    def counts(exercise: str, check: str) -> tuple[int, int, int, int]:
        r = rows[exercise, check]
        return int(r["passed"]), int(r["failed"]), int(r["not_attempted"]), int(r["not_graded"])

    assert counts("ex1", "builds") == (20, 10, 0, 0)  # 6 failed builds, 4 withheld behind a failed start
    assert counts("ex1", "exec-form-cmd") == (13, 17, 0, 0)
    assert counts("ex2", "deps-reused") == (27, 3, 0, 0)
    assert counts("ex3", "no-data-in-image") == (29, 0, 0, 1)
    assert counts("ex4", "answer-present") == (15, 15, 0, 0)
    assert counts("ex6", "many-customers") == (15, 0, 15, 0)
    assert rows["ex6", "many-customers"]["hidden"] == "True" and rows["ex1", "builds"]["points"] == "2"


def test_named_causes_are_ranked_with_anonymised_examples_and_the_book_section(
        graded: Path, written: classreport.ClassReport) -> None:
    """Are causes ranked by students hit, each with the section that teaches the fix and examples without names?"""
    ranked = _csv(graded / "report" / "causes.csv")
    assert [(r["rank"], r["cause"], r["students"], r["failed_checks"]) for r in ranked] == [
        ("1", causes.NO_WHEEL, "8", "9"), ("2", causes.LOOPBACK_ONLY, "4", "4")]
    assert (ranked[0]["page"], ranked[0]["section"]) == causes.TAUGHT_IN[causes.NO_WHEEL]
    examples = _csv(graded / "report" / "cause_examples.csv")
    assert [e["cause"] for e in examples] == [causes.NO_WHEEL] * 3 + [causes.LOOPBACK_ONLY] * 3
    assert len({e["student"] for e in examples}) == 6 and all(re.fullmatch(r"student [A-Z]", e["student"])
                                                               for e in examples)
    text = (graded / "report" / "cause_examples.csv").read_text(encoding="utf-8")
    assert "stu0" not in text  # neither a name nor a key in an image tag
    first = examples[0]
    assert first["message"] == f"pip found no wheel of numpy for {first['student']} (cl-ex-grade-{first['student']}-ex1:tester)."


def test_regraded_and_ungraded_students_are_named(graded: Path, written: classreport.ClassReport) -> None:
    """Does attention.csv name the student graded again alone and the one the grader failed on?"""
    assert [(r["student"], r["exercise"], r["reason"]) for r in _csv(graded / "report" / "attention.csv")] == [
        ("stu003", "ex3", "grader error"), ("stu004", "ex1", "graded again, alone")]
    assert "grader error: 1; graded again, alone: 1" in classreport.summary(written)


class _Structure(HTMLParser):
    """Checks that every element is closed in order, and collects the headings and images."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []
        self.headings: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in self.VOID:
            self.open.append(tag)
        if tag in ("h1", "h2"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def test_the_page_is_well_formed_and_names_each_exercise(graded: Path, written: classreport.ClassReport) -> None:
    """Is index.html well formed, with a section per exercise and decodable charts with alt text?"""
    parser = _Structure()
    parser.feed(written.page.read_text(encoding="utf-8"))
    parser.close()
    assert not parser.errors and not parser.open, (parser.errors, parser.open)
    for exercise in registry.exercises():
        assert f"{exercise.key}: {exercise.notebook}" in parser.headings
    assert "Named causes of failures" in parser.headings and "Grades to look at again" in parser.headings
    assert len(parser.images) == 2 + len(registry.exercises())  # scores, causes, one per exercise
    import base64

    for image in parser.images:
        assert image.get("alt")
        assert base64.b64decode(str(image["src"]).split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


def test_unreadable_result_files_are_named_and_skipped(tmp_path: Path) -> None:
    """Does a result file that is not JSON, of another format, or incomplete get named, and the rest reported?"""
    out = class_fakes.write_class(tmp_path / "grades", class_fakes.make_class(6))
    (out / "results" / "garbled.json").write_text("{not json", encoding="utf-8")
    (out / "results" / "future.json").write_text(json.dumps({"format": 99, "grade": {}}), encoding="utf-8")
    (out / "results" / "partial.json").write_text(json.dumps({"format": 1, "grade": {"key": "x"}}), encoding="utf-8")
    listed = {"format": 1, "grade": {"student": "x", "key": "x", "results": []}}  # a list where a mapping goes
    (out / "results" / "listed.json").write_text(json.dumps(listed), encoding="utf-8")
    typed = json.loads(resultfiles.result_path(out, "stu001-0001").read_text(encoding="utf-8"))
    typed["grade"].update(student="typed", key="typed-0000")
    typed["grade"]["results"]["ex1"]["results"][0]["points"] = "2"  # text where a number goes
    (out / "results" / "typed.json").write_text(json.dumps(typed), encoding="utf-8")
    written = classreport.write_report([out], say=lambda _: None)
    assert written.students == 6
    skipped = {Path(r["file"]).name: r["reason"] for r in _csv(out / "report" / "unreadable.csv")}
    assert set(skipped) == {"garbled.json", "future.json", "partial.json", "listed.json", "typed.json"}
    assert "not a readable result file" in skipped["garbled.json"] and "format 99" in skipped["future.json"]
    assert "incomplete grade" in skipped["partial.json"] and "incomplete grade" in skipped["listed.json"]
    assert "ex1 'builds': points is '2'" in skipped["typed.json"]
    page = written.page.read_text(encoding="utf-8")
    assert "garbled.json" in page and "future.json" in page and "partial.json" in page
    assert "5 result file(s) could not be read" in classreport.summary(written)


def test_shards_are_merged_keeping_each_students_newer_result(tmp_path: Path) -> None:
    """Do several folders count each student once, by their newer result file, as gradebook merge keeps it?"""
    grades = class_fakes.make_class(10)
    first = class_fakes.write_class(tmp_path / "shard-1", grades[:6])
    second = class_fakes.write_class(tmp_path / "shard-2", grades[6:])
    # student 5 (a failed build) was graded again in shard 2, later, and now passes everything
    again = class_fakes.student(1)
    again.student, again.key = grades[5].student, grades[5].key
    path = resultfiles.write_result(second, again, fingerprint="fp-new")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["graded_at"] = "2099-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data), encoding="utf-8")
    said: list[str] = []
    written = classreport.write_report([first, second], out=tmp_path / "report", say=said.append)
    assert written.students == 10 and len(said) == 1 and grades[5].student in said[0]
    no_wheel = next(c for c in written.causes if c.cause == causes.NO_WHEEL)
    assert no_wheel.students == 1  # student 0 only; 5's newer result passes


def test_two_runs_of_the_same_grades_are_identical(graded: Path, tmp_path: Path) -> None:
    """Does --compare with the same grades say that they are identical, and write no difference?"""
    copy = shutil.copytree(graded / "results", tmp_path / "again" / "results").parent
    written = classreport.write_report([graded], out=tmp_path / "report", compare=[copy], say=lambda _: None)
    assert written.comparison is not None and written.comparison.identical and written.comparison.compared == 30
    assert _csv(tmp_path / "report" / "differences.csv") == []
    assert "Identical" in written.page.read_text(encoding="utf-8")
    assert "identical (30 students" in classreport.summary(written)


def test_two_runs_that_differ_name_every_check_that_differs(graded: Path, tmp_path: Path) -> None:
    """Does --compare name each check whose verdict changed for a student, and students graded in one run only?"""
    other = class_fakes.make_class(30)
    other[2].results["ex1"] = class_fakes.student(5).results["ex1"]  # student 2's build now fails, the rest withheld
    del other[29]
    class_fakes.write_class(tmp_path / "other", other)
    written = classreport.write_report([graded], out=tmp_path / "report", compare=[tmp_path / "other"],
                                       say=lambda _: None)
    rows = _csv(tmp_path / "report" / "differences.csv")
    changed = [(r["student"], r["exercise"], r["check"], r["this_run"], r["other_run"]) for r in rows if r["check"]]
    assert changed == [("stu002", "ex1", n, "pass", "fail") for n in ex1.POINTS]
    assert [(r["student"], r["this_run"], r["other_run"]) for r in rows if not r["check"]] == [
        ("stu029", "graded", "absent")]
    assert written.comparison is not None and not written.comparison.identical
    assert "7 verdicts differ" in classreport.summary(written)


def test_every_named_cause_has_a_section_of_the_book() -> None:
    """Does every kind of cause the grader names map to a section heading that exists in the book?"""
    source = Path(causes.__file__).read_text(encoding="utf-8")
    constants = dict(re.findall(r"^([A-Z_]+) = \"([a-z-]+)\"", source, re.MULTILINE))
    used = {constants[name] for name in re.findall(r"Cause\(\s*([A-Z_]+),", source)}
    assert len(used) >= 30 and used <= set(causes.TAUGHT_IN)
    for kind, (page, section) in causes.TAUGHT_IN.items():
        text = (config.ROOT / "notebooks" / f"{page}.md").read_text(encoding="utf-8")
        assert f"\n## {section}\n" in text, (kind, page, section)
        assert classreport.page_title(page).startswith("14.")


def test_the_command_prints_where_the_report_is(graded: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Does `containerlab report` print the page and the top causes, and fail clearly on a folder without results?"""
    assert cli.main(["report", str(graded), "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert f"Class report of 30 students: {tmp_path / 'r' / 'index.html'}" in printed
    assert "no-wheel (8 students), loopback-only (4 students)" in printed
    assert cli.main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "holds no results/ folder" in capsys.readouterr().err


def test_a_report_of_500_students_takes_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """How long does the report of 500 students take? (printed, not asserted: the machine may be busy)"""
    out = class_fakes.write_class(tmp_path / "grades", class_fakes.make_class(500))
    start = time.perf_counter()
    written = classreport.write_report([out], compare=[out], say=lambda _: None)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nclass report of {written.students} students, compared with itself: {seconds:.1f} s")
    assert written.students == 500 and written.comparison is not None and written.comparison.identical


def test_result_files_keep_the_cause_and_the_regrade_and_older_files_still_read(tmp_path: Path) -> None:
    """Does a result file keep each check's cause and the re-grade, and does a file written before them read?"""
    grade = class_fakes.student(4)
    grade.results["ex1"] = class_fakes.student(5).results["ex1"]
    path = resultfiles.write_result(tmp_path, grade, fingerprint="fp")
    read = resultfiles.read_result(path).grade
    assert read.results["ex1"].get("builds").cause == causes.NO_WHEEL
    assert read.regraded == {"ex1": ["the engine's disk was full"]} and read == grade
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["grade"]["regraded"]
    for checked in data["grade"]["results"].values():
        for result in checked["results"]:
            del result["cause"]
    path.write_text(json.dumps(data), encoding="utf-8")
    older = resultfiles.read_result(path).grade
    assert older.results["ex1"].get("builds").cause == "" and older.regraded == {}


def test_a_service_that_does_not_start_gives_its_cause_to_the_health_check() -> None:
    """Does exercise 1's health check carry the cause the probe named (and the checks it withholds none)?"""
    probe = service.Probe(problem="The server listens on 127.0.0.1:80 only.", hint="--host 0.0.0.0",
                          cause=causes.LOOPBACK_ONLY)
    health, predict = ex1._probe_results(probe, health="health", predict="predict", hidden=False)
    assert (health.passed, health.cause) == (False, causes.LOOPBACK_ONLY)
    assert (predict.passed, predict.cause) == (False, "")
