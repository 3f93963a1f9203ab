"""Benchmark: a cold book build (every notebook executed) against a warm one (nothing changed).

Run with ``.venv/bin/python benchmarks/book.py``. Prints both wall times and
their ratio, measured one after the other in this run; nothing is asserted.
The goal (issue: foundation) is that the warm build takes a small fraction of
the cold one, thanks to jupyter-cache.
"""

from __future__ import annotations

from containerlab import book


def main() -> None:
    """Build the book twice, cold then warm, and print the figures."""
    cold = book.build_book(execute_all=True, echo=False)
    warm = book.build_book(echo=False)
    print(f"cold build (execution cache emptied): {cold.seconds:7.1f} s")
    print(f"warm build (nothing changed):         {warm.seconds:7.1f} s")
    print(f"warm / cold:                          {warm.seconds / cold.seconds:7.1%}")


if __name__ == "__main__":
    main()
