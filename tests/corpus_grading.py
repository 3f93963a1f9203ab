"""Grade the corpus as an instructor would, in a process of its own that runs beside other work.

The corpus is graded by ``containerlab grade`` (one run for the ordinary cases,
then one for the hostile ones with a shorter build timeout) on a grading engine
of its own (:mod:`containerlab.sandbox`): its own dockerd, disk, network and CPU
budget. Nothing the book's pages or the other tests do on the main engine can
reach it, so the grading runs beside them (:class:`Background`): ``make test``
starts it before it builds the book (``python tests/corpus_grading.py start``),
whose page runs keep about one core of two busy, and ``tests/conftest.py`` takes
it over when it collects the corpus's tests (or starts it then, in a pytest run
of its own), and runs those tests last. Where no grading engine can run, the
corpus is graded on the main engine when its tests come, and the hostile cases
are left out (a disk bomb graded there would fill the host's disk).

As a script: ``start`` and ``stop`` that grading (in :data:`PRESTARTED`);
``grade FOLDER CASE_ID...`` grades the cases named into the folder and writes
what the tests read (``graded.json``).
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
from containerlab import cli, config, exercises, gradebook, sandbox

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

#: Where ``make test`` starts the grading before it builds the book (``python tests/corpus_grading.py
#: start``): a page's run keeps about one of two cores busy, the grading takes the other, and pytest
#: takes the grading over when it collects the corpus's tests (:meth:`Background.adopt`).
PRESTARTED = config.CACHE_DIR / "test-corpus"

#: The corpus's share of the CPU when other work wants it too: the book's build and the other tests
#: are CI's longest lane, the grading fills the CPU they leave. Its processes run at this nice value
#: (dockerd, containerd and the grader's workers inherit it) and its engine's cgroup gets this share
#: of the default CPU weight. On 2 cores the corpus still gets the core a page or a test leaves idle
#: (2026-12-07: with equal priority the book took 1,032 s instead of 416 s, and the grading then
#: finished half an hour before the other tests, leaving a core idle).
NICE = 10
CPU_SHARE = 0.25

#: Why hostile cases cannot be graded here ("" when a grading engine can run).
NO_SANDBOX = sandbox.cannot_run()

#: Where tests/conftest.py keeps the background grading of a pytest run (absent: grade when the tests come).
BACKGROUND = pytest.StashKey["Background"]()


def graded_cases() -> list[corpus.Case]:
    """The cases this machine grades: all of them, or all but the hostile ones where no grading engine runs."""
    return [c for c in corpus.load_all() if not (NO_SANDBOX and c.path.parent.name == "hostile")]


def wanted(items: list[pytest.Item]) -> list[str]:
    """The ids of the cases the selected tests read: each case test's own, and the ``autograde`` or
    ``graded_twice`` ones for the test that reads them."""
    ids: set[str] = set()
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if isinstance(case, corpus.Case):
            ids.add(case.id)
        elif item.name == "test_nbgrader_autograde_gives_the_same_points":
            ids.update(c.id for c in graded_cases() if c.autograde)
        elif item.name == "test_a_case_graded_twice_gets_the_same_grade":
            ids.update(c.id for c in graded_cases() if c.twice)
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
    graded_twice: dict[str, dict[str, dict]] = {}
    with engine_for_the_run as address:
        if address:
            _yield_the_cpu(ENGINE_NAME)
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
        twice = [c.id for c in graded_cases() if c.twice and c.id in runs["grades"][0]]
        if twice:  # an instructor who grades the class again: the same grades, graded afresh
            again = root / "grades-again"
            status = cli.main(["grade", str(submitted), "--out", str(again),
                               *[arg for case_id in twice for arg in ("--student", case_id)], *GRADE_OPTIONS])
            assert status in (0, 1), f"containerlab grade exited with {status} (the second grading)"
            first = {g.student: g for g in gradebook.load_results(root / "grades")}
            graded_twice = {g.student: {"first": first[g.student].to_dict(), "again": g.to_dict()}
                            for g in gradebook.load_results(again) if g.student in first}
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
    result = {"rows": rows, "feedback": feedback, "submitted": str(submitted), "autograded": autograded,
              "twice": graded_twice}
    written = root / "graded.json.part"
    written.write_text(json.dumps(result), encoding="utf-8")
    written.replace(root / "graded.json")  # whole or absent: its presence says the grading succeeded
    return result


def _yield_the_cpu(name: str) -> None:
    """Give the cgroup of the grading engine ``name`` :data:`CPU_SHARE` of the default CPU weight.

    Its builds and containers run in that cgroup (the grader's host-side processes have :data:`NICE`).
    Nothing happens where the file is not there or cannot be written: the grading only goes slower
    or faster, never differently.
    """
    for controller, folder in sandbox._cgroup_dirs(name).items():  # the folders the engine's limits went to
        with contextlib.suppress(OSError):
            if not controller:  # cgroup v2
                (folder / "cpu.weight").write_text(str(max(1, round(100 * CPU_SHARE))))
            elif controller == "cpu":
                (folder / "cpu.shares").write_text(str(max(2, round(1024 * CPU_SHARE))))


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
    """The corpus graded by a process of its own while other work runs: the book's build, the other tests.

    The process (``python tests/corpus_grading.py grade ROOT ID...``) runs in a session of its own (an
    interrupt of the terminal does not reach it; :meth:`stop` passes one on, and waits for it to stop
    its grading engine). It writes ``ROOT/grade.log`` as it goes and ``ROOT/graded.json`` last, on
    success; ``ROOT/run.json`` says which process grades which cases since when, so that another
    process can take the grading over (:meth:`adopt`): ``make test`` starts it before the book's build,
    pytest waits for it.

    Args:
        root: the folder graded into (see :func:`grade_class`).
        pid: the grading process.
        ids: the case ids it grades.
        started: when it started (seconds since the epoch).
        process: the process, when this one started it.
    """

    def __init__(self, root: Path, pid: int, ids: list[str], started: float,
                 process: subprocess.Popen | None = None):
        self.root, self.pid, self.ids, self.started, self.process = root, pid, ids, started, process
        self.log = root / "grade.log"

    @classmethod
    def start(cls, root: Path, ids: list[str]) -> Background:
        """Start grading the cases ``ids`` into ``root`` (made if missing); return at once."""
        root.mkdir(parents=True, exist_ok=True)
        with open(root / "grade.log", "wb") as log:
            process = subprocess.Popen([sys.executable, __file__, "grade", str(root), *ids], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       cwd=Path(__file__).parent.parent)
        started = time.time()
        (root / "run.json").write_text(json.dumps({"pid": process.pid, "ids": ids, "started": started}),
                                       encoding="utf-8")
        return cls(root, process.pid, ids, started, process)

    @classmethod
    def found(cls, root: Path) -> Background | None:
        """The grading that was started in ``root``, running or ended; ``None`` when none was."""
        try:
            run = json.loads((root / "run.json").read_text(encoding="utf-8"))
            return cls(root, int(run["pid"]), [str(i) for i in run["ids"]], float(run["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def adopt(cls, root: Path, ids: list[str]) -> Background | None:
        """The grading started in ``root`` if it grades exactly the cases ``ids`` (running or ended).

        A grading of other cases is stopped and its folder removed, and ``None`` returned: the
        caller grades what it needs itself.
        """
        found = cls.found(root)
        if found is None:
            return None
        if found.ids != ids:
            found.stop()
            shutil.rmtree(root, ignore_errors=True)
            return None
        return found

    def running(self) -> bool:
        """Whether the grading process is still running."""
        if self.process is not None:
            return self.process.poll() is None
        try:  # not this process's child: its command line names the folder
            stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="utf-8", errors="replace")
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"]):
            return False  # it ended; its parent has not collected it yet
        # A process that is exiting has released its command line before it ends: it still runs (and
        # still holds its files). Taking it for ended made a test that stops a grading flaky under load.
        return not cmdline or str(self.root).encode() in cmdline.split(b"\0")

    def result(self) -> dict[str, object]:
        """Wait for the grading (at most :data:`WAIT_SECONDS` from its start) and return what it wrote.

        Returns:
            What :func:`grade_class` returns, plus ``"log"``: the grading's output (``containerlab grade``
            says there why a student got no row).

        Raises:
            AssertionError: the grading failed or ran past its time; the message holds the end of its log.
        """
        while self.running():
            if time.time() - self.started > WAIT_SECONDS:
                self.stop()
                raise AssertionError(f"grading the corpus took more than {WAIT_SECONDS} s; its log ends:\n"
                                     f"{self._tail()}")
            time.sleep(2)
        graded = self.root / "graded.json"
        if not graded.exists():
            raise AssertionError(f"grading the corpus failed; its log ends:\n{self._tail()}")
        return {**json.loads(graded.read_text(encoding="utf-8")),
                "log": self.log.read_text(encoding="utf-8", errors="replace")}

    def stop(self) -> None:
        """Interrupt a grading still running, and wait for it to stop its grading engine (SIGKILL after 3 minutes)."""
        for sig, wait in ((signal.SIGINT, 180), (signal.SIGKILL, 30)):
            if not self.running():
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)  # its own session: the group holds the grader's workers too
            deadline = time.monotonic() + wait
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.5)
        if self.process is not None:
            self.process.wait()

    def _tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str]) -> None:
    """``grade ROOT ID...``: grade (the grading process); ``start``: start grading the whole corpus into
    :data:`PRESTARTED` and return (``make test`` does, before the book's build); ``stop``: stop that
    grading and remove its folder."""
    command = argv[0] if argv else ""
    if command == "grade":
        # stop() interrupts the grading with SIGINT, which a process started in the background of a
        # non-interactive shell inherits as ignored (and Python then leaves it so): take it back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.nice(NICE)  # before the engine starts: its dockerd and containerd inherit it
        grade_class(Path(argv[1]), argv[2:])
        return
    if command not in ("start", "stop"):
        sys.exit(f"usage: {Path(__file__).name} grade ROOT ID... | start | stop")
    old = Background.found(PRESTARTED)
    if old is not None:
        old.stop()
    shutil.rmtree(PRESTARTED, ignore_errors=True)
    if command == "stop":
        return
    if NO_SANDBOX:
        print(f"The corpus is graded when its tests come, on the main engine ({NO_SANDBOX}).")
        return
    Background.start(PRESTARTED, sorted(c.id for c in graded_cases()))
    print(f"Grading the corpus on its own engine while the book builds: {PRESTARTED / 'grade.log'}.")


if __name__ == "__main__":
    main(sys.argv[1:])
