"""Grade the corpus as an instructor would, in a child process that runs beside the rest of the suite.

The corpus is graded by ``containerlab grade`` (one run for the ordinary cases,
then one for the hostile ones with a shorter build timeout) on a grading engine
of its own (:mod:`containerlab.sandbox`): its own dockerd, disk, network and CPU
budget. Nothing the other tests do on the main engine can reach it, so
``tests/conftest.py`` starts the grading as soon as the corpus's tests are
collected, in a child process (:class:`Background`), and runs those tests last;
the grading then overlaps the rest of the suite instead of adding to it. Where
no grading engine can run, the corpus is graded on the main engine when its
tests come, and the hostile cases are left out (a disk bomb graded there would
fill the host's disk).

Run as a script, it grades the cases named into the folder it is given and
writes what the tests read (``graded.json``):
``python tests/corpus_grading.py FOLDER CASE_ID...``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corpus
from containerlab import cli, exercises, sandbox

#: The grader's options for the ordinary cases: a build timeout that a cold install of the service's
#: requirements stays well within (two students building at once under the grading engine's CPU quota
#: took over 300 s on a busy 2-core machine, CI 2026-12-01). Two jobs: on 2 cores under the engine's CPU
#: quota more only lengthen each build and churn the cache.
GRADE_OPTIONS = ["--build-timeout", "600", "--jobs", "2"]
#: The hostile cases are graded by a second run on the same engine, once the first has put the service's
#: dependency layers in its build cache: with a short build timeout the endless step costs three minutes,
#: instead of ten. One job: beside another student, a build that runs past its timeout is graded again
#: alone (the batch cannot tell an endless step from a starved one), so with two jobs the endless step
#: cost its three minutes twice (2026-12-07), and the other bombs take about as long again in all.
HOSTILE_OPTIONS = ["--build-timeout", "180", "--jobs", "1"]
#: The corpus engine's disk. On the containerd image store every image is kept twice (its compressed
#: layers and their unpacked snapshots): the base images take about 5 GB of it, and each distinct
#: dependency layer 0.7 GB more. 8 GB ran out of space a few submissions in (Engine 26.1, 2026-12-07).
CORPUS_DISK_BYTES = 16 * 1024**3
#: The corpus engine's name and the /30 between the host and its network namespace (other tests'
#: grading engines use others).
ENGINE_NAME = "cl-test-corpus"
ENGINE_LINK = "10.213.253.0/30"
#: Longest wait for the background grading, in seconds: far beyond a normal run (about half an hour),
#: short of CI's limit, so that a hung grading fails the corpus's tests with its log instead of CI.
WAIT_SECONDS = 75 * 60

#: Why hostile cases cannot be graded here ("" when a grading engine can run).
NO_SANDBOX = sandbox.cannot_run()

#: Where tests/conftest.py keeps the background grading of a pytest run (absent: grade when the tests come).
BACKGROUND = pytest.StashKey["Background"]()


def graded_cases() -> list[corpus.Case]:
    """The cases this machine grades: all of them, or all but the hostile ones where no grading engine runs."""
    return [c for c in corpus.load_all() if not (NO_SANDBOX and c.path.parent.name == "hostile")]


def wanted(items: list[pytest.Item]) -> list[str]:
    """The ids of the cases the selected tests read: each case test's own, and the ``autograde`` ones for that test."""
    ids: set[str] = set()
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if isinstance(case, corpus.Case):
            ids.add(case.id)
        elif item.name == "test_nbgrader_autograde_gives_the_same_points":
            ids.update(c.id for c in graded_cases() if c.autograde)
    return sorted(ids)


def grade_class(root: Path, ids: list[str]) -> dict[str, object]:
    """Grade the cases ``ids`` as one class with ``containerlab grade``; write and return what the tests read.

    Args:
        root: an empty or missing folder; the submissions go to ``root/submitted``, the gradebooks
            and feedback to ``root/grades`` and ``root/grades-hostile``.
        ids: case ids, of :func:`graded_cases`.

    Returns:
        ``{"rows": {case id: gradebook row}, "feedback": {case id: feedback text}, "submitted": folder,
        "autograded": {case id: points}}``, also written to ``root/graded.json``. The cases marked
        ``autograde`` are then graded by ``nbgrader autograde`` as well (:func:`autograde`), on the
        same engine.

    Raises:
        AssertionError: ``containerlab grade`` exited with another status than 0 or 1.
        exercises.NbgraderFailed: ``nbgrader autograde`` failed.
    """
    submitted = root / "submitted"
    runs: dict[str, tuple[list[str], list[str]]] = {"grades": ([], GRADE_OPTIONS),
                                                     "grades-hostile": ([], HOSTILE_OPTIONS)}
    for case in (c for c in graded_cases() if c.id in ids):
        corpus.materialise(case, submitted / case.id / exercises.ASSIGNMENT)
        runs["grades-hostile" if case.path.parent.name == "hostile" else "grades"][0].append(case.id)
    engine_for_the_run = contextlib.nullcontext() if NO_SANDBOX else sandbox.running(
        limits=sandbox.EngineLimits(disk_bytes=CORPUS_DISK_BYTES), name=ENGINE_NAME, link=ENGINE_LINK)
    rows: dict[str, dict[str, str]] = {}
    feedback: dict[str, str] = {}
    autograded: dict[str, float] = {}
    with engine_for_the_run as address:
        for folder, (chosen, options) in runs.items():
            if not chosen:
                continue
            out = root / folder
            only = [arg for case_id in chosen for arg in ("--student", case_id)]
            status = cli.main(["grade", str(submitted), "--out", str(out), *only, *options])
            assert status in (0, 1), f"containerlab grade exited with {status}"
            with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
                rows.update({row["student"]: row for row in csv.DictReader(handle)})
            for path in out.glob("feedback/**/*.txt"):
                text = path.read_text(encoding="utf-8")
                first = text.split(":", 1)[0]
                feedback[first.removeprefix("Feedback for ").strip()] = text
        marked = [c for c in graded_cases() if c.autograde and c.id in ids]
        if marked:
            # The check cells run on the corpus's engine too, never beside the other tests on the main one.
            if address:
                sandbox.use(address)
            try:
                autograded = autograde(root / "nbgrader", marked, submitted)
            finally:
                if address:
                    sandbox.use(None)
    result = {"rows": rows, "feedback": feedback, "submitted": str(submitted), "autograded": autograded}
    (root / "graded.json").write_text(json.dumps(result), encoding="utf-8")
    return result


def autograde(course_parent: Path, cases: list[corpus.Case], submitted: Path) -> dict[str, float]:
    """Grade ``cases`` with ``nbgrader autograde``, which runs the check cells the student sees.

    Args:
        course_parent: a folder for the scratch nbgrader course.
        cases: the cases, materialised under ``submitted``.
        submitted: the folder of the students' submissions.

    Returns:
        Per case id, the automatic points nbgrader recorded for the case's exercise notebook.

    Raises:
        exercises.NbgraderFailed: an nbgrader command failed.
    """
    from nbgrader.api import Gradebook

    course = exercises.scratch_course(course_parent)
    exercises.generate(course)
    for case in cases:
        shutil.copytree(submitted / case.id, course / "submitted" / case.id)
        exercises.nbgrader(["db", "student", "add", case.id], course_dir=course)
    exercises.nbgrader(["autograde", exercises.ASSIGNMENT], course_dir=course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {case.id: float(gb.find_submission_notebook(corpus.NOTEBOOKS[case.exercise], exercises.ASSIGNMENT,
                                                           case.id).code_score)
                for case in cases}


class Background:
    """The corpus graded by a child process (``python tests/corpus_grading.py ROOT ID...``) while other tests run.

    Args:
        root: the folder to grade into (see :func:`grade_class`); the child's output goes to ``root/grade.log``.
        ids: the case ids to grade.
    """

    def __init__(self, root: Path, ids: list[str]):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.log = root / "grade.log"
        self.started = time.monotonic()
        with open(self.log, "wb") as log:
            # Its own session: an interrupt of pytest (Ctrl-C reaches the terminal's process group) is
            # passed on by stop(), which waits for the child to stop its grading engine.
            self.process = subprocess.Popen([sys.executable, __file__, str(root), *ids], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=Path(__file__).parent.parent)

    def result(self) -> dict[str, object]:
        """Wait for the grading (at most :data:`WAIT_SECONDS` from its start) and return what it wrote.

        Returns:
            What :func:`grade_class` returns, plus ``"log"``: the grading's output (``containerlab grade``
            says there why a student got no row).

        Raises:
            AssertionError: the grading failed or ran past its time; the message holds the end of its log.
        """
        try:
            self.process.wait(timeout=max(1.0, WAIT_SECONDS - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"grading the corpus took more than {WAIT_SECONDS} s; its log ends:\n"
                                 f"{self._tail()}") from None
        if self.process.returncode != 0 or not (self.root / "graded.json").exists():
            raise AssertionError(f"grading the corpus failed (exit status {self.process.returncode}); "
                                 f"its log ends:\n{self._tail()}")
        return {**json.loads((self.root / "graded.json").read_text(encoding="utf-8")),
                "log": self.log.read_text(encoding="utf-8", errors="replace")}

    def stop(self) -> None:
        """Interrupt a grading still running, and wait for it to stop its grading engine (SIGKILL after 3 minutes)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    grade_class(Path(sys.argv[1]), sys.argv[2:])
