"""The graded corpus: every case graded once as a class, with the points and messages it must get.

The cases live in ``tests/corpus/`` (see :mod:`corpus` for their form). The
corpus is graded by ``containerlab grade``, as an instructor runs it (one run for
the ordinary cases, then one for the hostile ones with a shorter build timeout):
on a grading engine of its own (builds limited, :mod:`containerlab.sandbox`)
where the machine can run one; where it cannot, the hostile cases are skipped
(a disk bomb graded on the normal engine would fill the host's disk). The cases
marked ``autograde`` are graded again by ``nbgrader autograde``, which runs the
check cells the student sees, and must agree.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
from pathlib import Path

import pytest

import corpus
from containerlab import cli, exercises, sandbox

CASES = corpus.load_all()
#: Why hostile cases cannot be graded here ("" when a grading engine can run).
NO_SANDBOX = sandbox.cannot_run()
GRADED_CASES = [c for c in CASES if not (NO_SANDBOX and c.path.parent.name == "hostile")]
#: The grader's options for the corpus run: its default jobs; a build timeout that a cold install of the
#: service's requirements stays well within (two students building at once under the grading engine's CPU
#: quota took over 300 s on a busy 2-core machine, CI 2026-12-01).
#: Two jobs: on 2 cores under the engine's CPU quota more only lengthen each build and churn the cache.
GRADE_OPTIONS = ["--build-timeout", "600", "--jobs", "2"]
#: The hostile cases are graded by a second run on the same engine, once the first has put the service's
#: dependency layers in its build cache: with a short build timeout the endless step costs three minutes
#: beside the other bombs, instead of ten minutes alone at the end of one long run.
HOSTILE_OPTIONS = ["--build-timeout", "180", "--jobs", "2"]
#: The corpus engine's disk. On the containerd image store every image is kept twice (its compressed
#: layers and their unpacked snapshots): the base images take about 5 GB of it, and each distinct
#: dependency layer 0.7 GB more. 8 GB ran out of space a few submissions in (Engine 26.1, 2026-12-07).
CORPUS_DISK_BYTES = 16 * 1024**3


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
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Grade the corpus with `containerlab grade` (ordinary cases, then hostile ones); per case id, its row and feedback."""
    root = tmp_path_factory.mktemp("corpus")
    submitted = root / "submitted"
    runs = {"grades": ([], GRADE_OPTIONS), "grades-hostile": ([], HOSTILE_OPTIONS)}
    for case in GRADED_CASES:
        corpus.materialise(case, submitted / case.id / exercises.ASSIGNMENT)
        runs["grades-hostile" if case.path.parent.name == "hostile" else "grades"][0].append(case.id)
    engine_for_the_run = contextlib.nullcontext() if NO_SANDBOX else sandbox.running(
        limits=sandbox.EngineLimits(disk_bytes=CORPUS_DISK_BYTES), name="cl-test-corpus", link="10.213.253.0/30")
    rows: dict[str, dict[str, str]] = {}
    feedback: dict[str, str] = {}
    with engine_for_the_run:
        for folder, (ids, options) in runs.items():
            if not ids:
                continue
            out = root / folder
            only = [arg for case_id in ids for arg in ("--student", case_id)]
            status = cli.main(["grade", str(submitted), "--out", str(out), *only, *options])
            assert status in (0, 1), f"containerlab grade exited with {status}"
            with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
                rows.update({row["student"]: row for row in csv.DictReader(handle)})
            for path in out.glob("feedback/**/*.txt"):
                text = path.read_text(encoding="utf-8")
                first = text.split(":", 1)[0]
                feedback[first.removeprefix("Feedback for ").strip()] = text
    return {"rows": rows, "feedback": feedback, "submitted": submitted}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("case", GRADED_CASES, ids=lambda c: c.id)
def test_case_gets_its_points_and_messages(case: corpus.Case, graded: dict) -> None:
    """Does `containerlab grade` give the case its expected points, with the key phrases in its feedback?"""
    row = graded["rows"].get(case.id)
    assert row is not None, f"no gradebook row for {case.id}"
    text = graded["feedback"].get(case.id, "")
    assert float(row[case.exercise]) == case.points, f"{case.id}: {row[case.exercise]} points\n{text}"
    for phrase in case.phrases:
        assert phrase.lower() in text.lower(), f"{case.id}: {phrase!r} is not in the feedback\n{text}"


@pytest.mark.docker
@pytest.mark.slow
def test_nbgrader_autograde_gives_the_same_points(graded: dict, tmp_path: Path) -> None:
    """Does `nbgrader autograde`, running the check cells, give the marked cases the points the grader gave?"""
    from nbgrader.api import Gradebook

    chosen = [c for c in CASES if c.autograde]
    assert chosen, "no case is marked autograde: true"
    course = exercises.scratch_course(tmp_path)
    exercises.generate(course)
    for case in chosen:
        shutil.copytree(graded["submitted"] / case.id, course / "submitted" / case.id)
        exercises.nbgrader(["db", "student", "add", case.id], course_dir=course)
    exercises.nbgrader(["autograde", exercises.ASSIGNMENT], course_dir=course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for case in chosen:
            stem = corpus.NOTEBOOKS[case.exercise]
            notebook = gb.find_submission_notebook(stem, exercises.ASSIGNMENT, case.id)
            assert notebook.code_score == float(graded["rows"][case.id][case.exercise]), case.id
