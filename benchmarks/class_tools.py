"""Benchmark for issue 21: how long the instructor's class tools take for a class of 500.

Run from the repository root (``make bench``)::

    .venv/bin/python benchmarks/class_tools.py [--students 500]

Both tools read files only (no engine). A class is generated with the test
suite's generators (``tests/class_fakes.py`` for result files,
``tests/test_lookalike.py`` for submitted notebooks with two planted copies),
then timed:

1. ``containerlab report`` of the class, compared with itself (``--compare``);
2. the look-alike comparison of every pair of students.

Printed: the seconds of each, the pairs the comparison found, and whether the
planted copies came first. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The generators live with the tests that check them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import class_fakes  # noqa: E402
import test_lookalike  # noqa: E402

from containerlab import classreport, lookalike  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=500)
    students = parser.parse_args().students
    with tempfile.TemporaryDirectory(prefix="cl-bench-class-") as tmp:
        root = Path(tmp)
        grades = class_fakes.write_class(root / "grades", class_fakes.make_class(students))
        start = time.monotonic()
        written = classreport.write_report([grades], out=root / "report", compare=[grades])
        report_seconds = time.monotonic() - start
        submissions = test_lookalike._make_class(root / "submitted", students=students)
        start = time.monotonic()
        pairs = lookalike.compare(lookalike.read_class(submissions))
        compare_seconds = time.monotonic() - start
    planted_first = {(p.a, p.b) for p in pairs[:2]} == set(test_lookalike.PLANTED)
    print(f"class report of {written.students} students, compared with itself: {report_seconds:.1f} s")
    print(f"look-alike comparison of {students} students: {compare_seconds:.1f} s, "
          f"{len(pairs)} pairs with something in common, planted copies first: {planted_first}")


if __name__ == "__main__":
    main()
