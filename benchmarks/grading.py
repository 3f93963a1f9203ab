"""Benchmark for issue 10: how fast a class is graded, against nbgrader autograde one student at a time.

Run from the repository root (``make bench``)::

    .venv/bin/python benchmarks/grading.py [--students 12] [--modes 1,auto,nbgrader]

A class of generated submissions (at least 12, varied: correct, wrong, broken,
hostile-light) is graded three ways on this machine's engine, one after the
other, each into a fresh output folder:

1. ``containerlab grade --jobs 1``;
2. ``containerlab grade --jobs auto`` (:func:`containerlab.batch.default_jobs`);
3. ``nbgrader autograde ch14 --student ID`` for each student in turn, in a
   scratch nbgrader course (what an instructor without the class grader does).

Before the timed runs one correct student is graded untimed, so that the
service's dependency layers are in the build cache for every mode alike. The
build cache is still colder for mode 1 than for the later modes (the wrong
Dockerfiles are built for the first time there), which favours the later ones.

Printed: wall time and students per hour of each mode, the ratio of
``--jobs auto`` to nbgrader (the goal is at least 5x, issue 21), where the
class grader's time goes (each exercise's grading time added up over the class,
from the ``exercise_seconds`` of every grade), the peak memory of the
grading process tree (the engine's own processes are not counted), and the
engine's disk growth per student (images, containers and build cache, as
``docker system df`` counts them; the class grader prunes the build cache down
to ``--keep-storage`` between students). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import psutil

from containerlab import batch, config, engine, exercises, report

GOAL_RATIO = 5.0
RELEASE = exercises.EXERCISES_DIR / "ch14"
SOURCE = exercises.SOLUTIONS_DIR / "ch14"

SLIM = config.PYTHON_SLIM_IMAGE
SOLUTION_EX1 = f"""%%writefile ex1.Dockerfile
FROM {SLIM}
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY src/ src/
EXPOSE 80
CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]
"""
COMPUTED_REPORT = """import docker
sizes = [docker.from_env().images.get(t).attrs["Size"] for t in ("cl-ex-ex1:latest", "cl-ex-ex2:latest")]
REPORTED_REDUCTION_PERCENT = round(100 * (sizes[0] - sizes[1]) / sizes[0], 1)
"""

#: (student, kind, overrides of answer cells by grade_id; "RAW:<notebook>" replaces a notebook's bytes)
VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("correct-anna", "correct", {}),
    ("Zoë Müller", "correct", {}),
    ("correct-li", "correct", {}),
    ("correct-omar", "correct", {}),
    ("starter-untouched", "wrong", {"*": "starter"}),
    ("shell-form-cmd", "wrong", {"ex1-dockerfile": SOLUTION_EX1.replace(
        'CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]',
        "CMD uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80")}),
    ("computed-report", "wrong", {"ex2-reported-reduction": COMPUTED_REPORT}),
    ("build-fails", "broken", {"ex1-dockerfile": f"%%writefile ex1.Dockerfile\nFROM {SLIM}\nRUN exit 3\n"}),
    ("not-json", "broken", {"RAW:ex1-write-a-dockerfile.ipynb": "{ this is not json"}),
    ("slow-step", "hostile", {"ex1-dockerfile": SOLUTION_EX1.replace("WORKDIR /app", "RUN sleep 20\nWORKDIR /app")}),
    ("memory-hog", "hostile", {"ex1-dockerfile": f"%%writefile ex1.Dockerfile\nFROM {SLIM}\n"
                               'CMD ["python", "-c", "x = bytearray(3 * 2**30); import time; time.sleep(600)"]\n'}),
    ("many-processes", "hostile", {"ex1-dockerfile": SOLUTION_EX1.replace(
        "WORKDIR /app", "RUN for i in $(seq 300); do sleep 3 & done; wait\nWORKDIR /app")}),
]


def make_submission(folder: Path, overrides: dict[str, str]) -> None:
    """Write one student's notebooks: the released ones with answers from the solutions, then ``overrides``."""
    folder.mkdir(parents=True)
    starter = overrides.get("*") == "starter"
    for release in sorted(RELEASE.glob("*.ipynb")):
        raw = overrides.get(f"RAW:{release.name}")
        if raw is not None:
            (folder / release.name).write_text(raw, encoding="utf-8")
            continue
        nb = nbformat.read(release, as_version=4)
        answers = {} if starter else {c.metadata["nbgrader"]["grade_id"]: c.source
                                      for c in nbformat.read(SOURCE / release.name, as_version=4).cells
                                      if c.metadata.get("nbgrader", {}).get("solution")}
        answers.update({k: v for k, v in overrides.items() if k != "*" and not k.startswith("RAW:")})
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
        nbformat.write(nb, folder / release.name)


def make_class(root: Path, students: int) -> list[str]:
    """Generate ``students`` submissions (the variants in turn) under ``root``; return the student ids."""
    names = []
    for i in range(students):
        name, _kind, overrides = VARIANTS[i % len(VARIANTS)]
        name = name if i < len(VARIANTS) else f"{name}-{i // len(VARIANTS)}"
        make_submission(root / name / "ch14", overrides)
        names.append(name)
    return names


class PeakMemory:
    """Sample the resident memory of this process and all its descendants every half second."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.5)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def engine_bytes() -> int:
    """What the engine holds on disk for images, containers and the build cache, in bytes."""
    usage = engine.disk_usage()
    return usage["images"] + usage["containers"] + usage["build_cache"]


def measure(label: str, students: int, work: Callable[[], object]) -> dict[str, float]:
    """Run ``work`` once; return its wall time, peak memory and engine disk growth.

    When ``work`` returns the class's grades, the figures also hold ``"exercise <key>"``: the
    seconds that exercise's grading took, added up over the class.
    """
    print(f"  {label} ...", flush=True)
    before = engine_bytes()
    start = time.monotonic()
    with PeakMemory() as memory:
        graded = work()
    seconds = time.monotonic() - start
    figures = {"seconds": seconds, "per_hour": students * 3600 / seconds, "peak": memory.peak,
               "disk_per_student": (engine_bytes() - before) / students}
    for grade in graded if isinstance(graded, list) else []:
        for key, spent in grade.exercise_seconds.items():
            figures[f"exercise {key}"] = figures.get(f"exercise {key}", 0.0) + spent
    print(f"  {label}: {seconds:.0f} s, {figures['per_hour']:.0f} students/h, peak {memory.peak / 1e6:.0f} MB, "
          f"disk {figures['disk_per_student'] / 1e6:+.0f} MB/student", flush=True)
    return figures


def _line(grade) -> None:  # noqa: ANN001
    print(f"    {report.summary_line(grade)}", flush=True)


def nbgrader_one_by_one(submissions: Path, names: list[str], scratch: Path) -> None:
    """Autograde each student in turn in a scratch nbgrader course, as ``nbgrader autograde`` does."""
    course = exercises.scratch_course(scratch)
    exercises.generate(course)
    for name in names:
        shutil.copytree(submissions / name, course / "submitted" / name)
        exercises.nbgrader(["db", "student", "add", name], course_dir=course)
        start = time.monotonic()
        try:
            exercises.nbgrader(["autograde", "ch14", "--student", name], course_dir=course, timeout=3600)
            print(f"    {name:<20} ({time.monotonic() - start:.1f} s)", flush=True)
        except exercises.NbgraderFailed as exc:  # a broken notebook can make nbgrader fail: count it, go on
            print(f"    nbgrader on {name}: {str(exc).splitlines()[0]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=len(VARIANTS), help="class size (at least 12)")
    parser.add_argument("--modes", default="1,auto,nbgrader",
                        help="which runs, in this order (default: 1,auto,nbgrader; the build cache is warmer for later ones)")
    args = parser.parse_args()
    students = max(12, args.students)
    engine.require_engine()
    run = uuid.uuid4().hex[:8]
    work = config.CACHE_DIR / "bench" / f"grading-{run}"
    kept_tags = {t for t in ("cl-ex-ex1:latest", "cl-ex-ex2:latest", "cl-ex-ex3:latest") if engine.image(t)}
    auto = batch.default_jobs()
    try:
        submissions = work / "submitted"
        names = make_class(submissions, students)
        print(f"A class of {students} submissions ({', '.join(sorted({v[1] for v in VARIANTS}))}) in {submissions}.")
        print("Warming the build cache with one correct student (untimed) ...", flush=True)
        batch.grade_class(submissions, out=work / "warm-up", only=[names[0]], jobs=1)

        figures = {}
        for mode in args.modes.split(","):
            if mode == "1":
                figures["jobs 1"] = measure("containerlab grade --jobs 1", students, lambda: batch.grade_class(
                    submissions, out=work / "jobs-1", jobs=1, progress=_line))
            elif mode == "auto":
                figures[f"jobs auto ({auto})"] = measure(
                    f"containerlab grade --jobs auto ({auto} jobs)", students,
                    lambda: batch.grade_class(submissions, out=work / "jobs-auto", jobs=None, progress=_line))
            elif mode == "nbgrader":
                figures["nbgrader autograde"] = measure(
                    "nbgrader autograde, one student at a time", students,
                    lambda: nbgrader_one_by_one(submissions, names, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for tag in ("cl-ex-ex1:latest", "cl-ex-ex2:latest", "cl-ex-ex3:latest"):
            if tag not in kept_tags:
                engine.remove_image(tag)

    print()
    print(f"Grading {students} submissions on {len(psutil.Process().cpu_affinity())} cores")
    print(f"  {'mode':<24}{'wall time':>11}{'students/h':>12}{'peak memory':>14}{'disk/student':>14}")
    for label, f in figures.items():
        print(f"  {label:<24}{f['seconds']:>9.0f} s{f['per_hour']:>12.0f}{f['peak'] / 1e6:>11.0f} MB"
              f"{f['disk_per_student'] / 1e6:>11.0f} MB")
    nbg = figures.get("nbgrader autograde")
    for label in [k for k in figures if k.startswith("jobs")] if nbg else []:
        ratio = figures[label]["per_hour"] / nbg["per_hour"]
        verdict = "meets the goal" if ratio >= GOAL_RATIO else "MISSES the goal"
        print(f"  {label} / nbgrader: {ratio:.1f} x   -> goal >= {GOAL_RATIO:.0f} x: {verdict}")
    where = {label: {k.split()[1]: v for k, v in f.items() if k.startswith("exercise ")} for label, f in figures.items()}
    where = {label: spent for label, spent in where.items() if spent}
    if where:
        print()
        print("Where the class grader's time goes: each exercise's grading time, added up over the class")
        keys = sorted({k for spent in where.values() for k in spent})
        print(f"  {'mode':<24}" + "".join(f"{k:>9}" for k in keys) + f"{'all':>9}")
        for label, spent in where.items():
            print(f"  {label:<24}" + "".join(f"{spent.get(k, 0.0):>7.0f} s" for k in keys)
                  + f"{sum(spent.values()):>7.0f} s")
        print("  (with several jobs, exercises of different students overlap: the sum is more than the wall time)")
    print(f"  (build cache pruned to {batch.DEFAULT_KEEP_STORAGE / 1e9:.0f} GB between students; "
          "peak memory counts the grader's processes, not the engine's)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except engine.EngineError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        sys.exit(1)
