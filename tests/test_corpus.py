"""The graded corpus: every case graded once as a class, with the points and messages it must get.

The cases live in ``tests/corpus/`` (see :mod:`corpus` for their form). They are
graded by ``containerlab grade``, as an instructor runs it, on a grading engine
of their own (:mod:`corpus_grading`): that grading starts in the background as
soon as these tests are collected, and they run last. The cases marked
``autograde`` are graded again by ``nbgrader autograde``, which runs the check
cells the student sees (on the same engine, after the grading), and must agree;
those marked ``graded_twice`` are graded a second time by ``containerlab grade``,
and must get the same grade.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corpus
import corpus_grading
import test_ex1_checks
import test_ex2_checks
from containerlab import classstats, config
from containerlab.checks import ex1, ex2
from containerlab.grading import StudentGrade

CASES = corpus.load_all()
GRADED_CASES = corpus_grading.graded_cases()


def test_every_case_file_is_well_formed() -> None:
    """Does every case file load, name its outcome, and edit only cells its notebook has?"""
    assert CASES, "the corpus is empty"
    for case in CASES:
        assert case.why.strip(), case.id
        assert case.expects_pass or case.points < corpus.max_points(case.exercise), \
            f"{case.id}: a fails_ case cannot get every point"


def test_corpus_covers_correct_variants_and_mistakes() -> None:
    """Does the corpus hold at least 40 cases, both correct variants and mistakes, for every graded exercise?"""
    assert len(CASES) >= 40
    for exercise in ("ex1", "ex2", "ex3"):
        kinds = {case.expects_pass for case in CASES if case.exercise == exercise}
        assert kinds == {True, False}, exercise


@pytest.mark.parametrize("case", [c for c in CASES if c.expects_pass], ids=lambda c: c.id)
def test_a_passing_case_expects_every_point(case: corpus.Case) -> None:
    """Does each passes_ case expect the exercise's full automatic points?"""
    assert case.points == corpus.max_points(case.exercise)


@pytest.fixture(scope="module")
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The corpus graded as a class: per case id, its gradebook row and feedback (see :mod:`corpus_grading`)."""
    background = request.config.stash.get(corpus_grading.BACKGROUND, None)
    result = background.result() if background else corpus_grading.grade_class(
        tmp_path_factory.mktemp("corpus"), corpus_grading.wanted(request.session.items))
    return {**result, "submitted": Path(result["submitted"])}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("case", GRADED_CASES, ids=lambda c: c.id)
def test_case_gets_its_points_and_messages(case: corpus.Case, graded: dict) -> None:
    """Does `containerlab grade` give the case its expected points, with the key phrases in its feedback?"""
    row = graded["rows"].get(case.id)
    said = "\n".join(line for line in graded.get("log", "").splitlines() if case.id in line)
    assert row is not None, f"no gradebook row for {case.id}; the grading's output about it:\n{said}"
    text = graded["feedback"].get(case.id, "")
    assert float(row[case.exercise]) == case.points, f"{case.id}: {row[case.exercise]} points\n{text}"
    for phrase in case.phrases:
        assert phrase.lower() in text.lower(), f"{case.id}: {phrase!r} is not in the feedback\n{text}"


def _twins(graded_in_the_corpus: dict[str, str]) -> list:
    return [pytest.param(fixture, corpus.case(case_id), id=fixture)
            for fixture, case_id in sorted(graded_in_the_corpus.items())]


def _part(graded: dict, case: corpus.Case, descriptions: dict[str, str]) -> tuple[set[str], str]:
    """The checks of the case's exercise its feedback marks as failed, and its exercise's part of the feedback."""
    return corpus.checks_in_feedback(graded["feedback"].get(case.id, ""), case.exercise, descriptions)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(("fixture", "case"), _twins(test_ex1_checks.GRADED_IN_THE_CORPUS))
def test_exercise1_fixture_graded_in_the_corpus_fails_exactly_its_checks(fixture: str, case: corpus.Case,
                                                                          graded: dict) -> None:
    """Does the corpus case that submits an exercise-1 fixture's Dockerfile fail exactly the checks the fixture
    expects (tests/test_ex1_checks.py), with the words of their messages or hints, a hint for each failure,
    and the fixture's note?"""
    must_fail, words = test_ex1_checks.EXPECTED[fixture]
    failed, part = _part(graded, case, ex1.DESCRIPTIONS)
    assert failed == must_fail, f"{case.id}:\n{part}"
    for word in words.values():
        assert word in part, f"{case.id}: {word!r} is not in\n{part}"
    assert part.count("[FAIL]") == part.count("\n         hint: "), f"{case.id}: a failed check has no hint\n{part}"
    assert "10.255.255.53" not in part and str(config.ROOT) not in part, part
    if fixture in test_ex1_checks.NOTES:
        assert test_ex1_checks.NOTES[fixture] in part, part


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(("fixture", "case"), _twins(test_ex2_checks.GRADED_IN_THE_CORPUS))
def test_exercise2_fixture_graded_in_the_corpus_fails_exactly_its_checks(fixture: str, case: corpus.Case,
                                                                          graded: dict) -> None:
    """Does the corpus case that submits an exercise-2 fixture's Dockerfile fail exactly the checks the fixture
    expects (tests/test_ex2_checks.py; the reported reduction aside), with the words of their messages or
    hints, and a note that names what counted as an improvement when there was one?"""
    _, must_fail, words = test_ex2_checks.EXPECTED[fixture]
    failed, part = _part(graded, case, ex2.DESCRIPTIONS)
    assert failed - {"reported-reduction"} == must_fail, f"{case.id}:\n{part}"
    for word in words.values():
        assert word in part, f"{case.id}: {word!r} is not in\n{part}"
    if must_fail != test_ex2_checks.ALL:
        assert "Counted as an improvement" in part, part


@pytest.mark.docker
@pytest.mark.slow
def test_nbgrader_autograde_gives_the_same_points(graded: dict) -> None:
    """Does `nbgrader autograde`, running the check cells, give the marked cases the points the grader gave?"""
    chosen = [c for c in CASES if c.autograde]
    assert chosen, "no case is marked autograde: true"
    for case in chosen:
        assert graded["autograded"][case.id] == float(graded["rows"][case.id][case.exercise]), case.id


#: A duration in a message ("Built ... in 41.3 s"): the one part of a grade that may differ between two runs.
DURATION = re.compile(r"\b\d+(?:\.\d+)? s\b")


def _checks(grade: StudentGrade) -> dict[tuple[str, str], tuple]:
    """Every check of a grade: its verdict, points, message (durations left out), hint and cause."""
    return {(exercise, c.name): (c.passed, c.points, DURATION.sub("(time) s", c.message), c.hint, c.cause)
            for exercise, checked in grade.results.items() for c in checked.results}


@pytest.mark.docker
@pytest.mark.slow
def test_a_case_graded_twice_gets_the_same_grade(graded: dict) -> None:
    """Does a second `containerlab grade` of the marked cases, as an instructor grades a class again, give
    every check the same verdict, points, message (durations aside), hint and cause, and the class
    report's comparison call the two runs identical?"""
    chosen = sorted(c.id for c in GRADED_CASES if c.twice)
    assert chosen, "no case is marked graded_twice: true"
    assert sorted(graded["twice"]) == chosen, graded["log"][-3000:]
    first = [StudentGrade.from_dict(graded["twice"][i]["first"]) for i in chosen]
    again = [StudentGrade.from_dict(graded["twice"][i]["again"]) for i in chosen]
    comparison = classstats.compare(again, first)
    assert comparison.identical, comparison.differences
    for one, two in zip(first, again):
        a, b = _checks(one), _checks(two)
        changed = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert not changed, f"{one.student}: first and second grading differ:\n{changed}"
        assert one.score == two.score and one.problems == two.problems, one.student


def _stand_in_grading(root: Path, ids: list[str], seconds: float) -> corpus_grading.Background:
    """A process in the place of a grading: it names ``root`` on its command line, as the grading does."""
    import json
    import subprocess
    import sys
    import time

    root.mkdir(parents=True, exist_ok=True)
    code = ("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"print('grading', flush=True); time.sleep({seconds})")  # as the grading does (see corpus_grading.main)
    process = subprocess.Popen([sys.executable, "-c", code, str(root)], start_new_session=True,
                               stdout=(root / "grade.log").open("wb"))
    (root / "run.json").write_text(json.dumps({"pid": process.pid, "ids": ids, "started": time.time()}))
    while b"grading" not in (root / "grade.log").read_bytes() and process.poll() is None:
        time.sleep(0.05)  # up and running
    return corpus_grading.Background(root, process.pid, ids, time.time(), process)


def test_a_grading_started_for_other_cases_is_stopped_not_adopted(tmp_path: Path) -> None:
    """Does pytest stop a grading `make test` started for other cases (and remove its folder) instead of
    waiting for it, and take over one for the same cases?"""
    other = _stand_in_grading(tmp_path / "other", ["a", "b"], 60)
    assert corpus_grading.Background.adopt(tmp_path / "other", ["a"]) is None
    assert not other.running() and not (tmp_path / "other").exists()
    same = _stand_in_grading(tmp_path / "same", ["a"], 60)
    adopted = corpus_grading.Background.adopt(tmp_path / "same", ["a"])
    assert adopted is not None and adopted.pid == same.pid and adopted.running()
    adopted.stop()
    assert same.process.wait(timeout=10) != 0  # interrupted


def test_a_grading_that_ends_without_its_result_fails_with_its_log(tmp_path: Path) -> None:
    """Does waiting for a grading that ended without writing graded.json fail, quoting its log, and one that
    wrote it return it with the log?"""
    ended = _stand_in_grading(tmp_path / "g", ["a"], 0)
    adopted = corpus_grading.Background.adopt(tmp_path / "g", ["a"])
    with pytest.raises(AssertionError, match="(?s)failed.*grading"):
        adopted.result()
    ended.process.wait()
    (tmp_path / "g" / "graded.json").write_text('{"rows": {}}')
    assert adopted.result() == {"rows": {}, "log": "grading\n"}


@pytest.mark.parametrize(("file", "default", "lowered"), [("cpu/cl-x/cpu.shares", "1024", "256"),
                                                          ("cl-x/cpu.weight", "100", "25")])
def test_the_corpus_engine_yields_the_cpu(file: str, default: str, lowered: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Does the corpus's grading engine get a quarter of the default CPU weight, on cgroup v1 and v2?"""
    monkeypatch.setattr(corpus_grading.sandbox, "CGROUP_ROOT", tmp_path)
    if file.endswith("cpu.weight"):
        (tmp_path / "cgroup.controllers").write_text("cpu memory pids")  # what marks cgroup v2
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).write_text(default)
    corpus_grading._yield_the_cpu("cl-x")
    assert (tmp_path / file).read_text() == lowered
