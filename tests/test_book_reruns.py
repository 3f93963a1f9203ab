"""A book build in which a page failed: does the next build run that page again instead of calling it good?

Sphinx re-reads only sources newer than the environment it saved, and it saves
that environment even when a page's execution failed; jupyter-cache keeps only
successful runs. Before the fix, a second ``make book`` after a failed one
printed "Book built", exited 0 and kept the page with its traceback (issue 19).
These tests build a one-page book in a temporary folder (no Docker needed) whose
only cell fails while a file standing for an engine fault exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from containerlab import book

pytestmark = [pytest.mark.slow]

PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page that needs the engine

```{code-cell} ipython3
from pathlib import Path

if Path("../engine-fault").exists():
    raise RuntimeError("the engine went away (on purpose, for this test)")
print("ran to the end")
```
"""


@pytest.fixture
def small_book(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text(
        'title: "rerun test"\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n'
        'exclude_patterns: ["_build", ".*"]\n'
    )
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/page\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "page.md").write_text(PAGE)
    return tmp_path


def page_html(root: Path) -> str:
    return (root / "_build" / "html" / "notebooks" / "page.html").read_text()


def page_output(root: Path) -> str:
    """The text of the page's cell outputs (what ran, not the code)."""
    html = page_html(root)
    return re.sub(r"<[^>]+>", "", "".join(html.split('class="cell_output')[1:]))


def test_a_page_that_failed_runs_again_until_it_succeeds(small_book: Path):
    """After a build in which a page failed, does the next build fail again while the fault lasts, then run
    the page again once the fault is gone, and report success only with the page's real output and no
    traceback?"""
    fault = small_book / "engine-fault"
    fault.write_text("")
    with pytest.raises(book.BookBuildFailed):
        book.build_book(root=small_book, echo=False)
    assert book.pages_without_a_run(root=small_book, cache_dir=small_book / "_build" / ".jupyter_cache") \
        == [small_book / "notebooks" / "page.md"]

    # The source did not change; before the fix this build exited 0 and kept the traceback.
    with pytest.raises(book.BookBuildFailed):
        book.build_book(root=small_book, echo=False)

    fault.unlink()
    built = book.build_book(root=small_book, echo=False)
    shown = page_output(small_book)
    assert "ran to the end" in shown
    assert "Traceback" not in page_html(small_book) and "engine went away" not in shown
    assert not (small_book / "_build" / book.UNFINISHED_MARKER).exists()
    assert built.html_dir == small_book / "_build" / "html"

    # And a build with nothing to do stays quick and good: the page comes from the cache.
    again = book.build_book(root=small_book, echo=False)
    assert "ran to the end" in page_output(small_book)
    assert not re.search(r"Executing notebook", again.log)


def test_a_failed_page_is_not_success_even_without_warnings_as_errors(small_book: Path):
    """Without -W, jupyter-book itself exits 0 after a failed page; does build_book still refuse to call
    the build good, and name the page?"""
    (small_book / "engine-fault").write_text("")
    with pytest.raises(book.BookBuildFailed, match="notebooks/page.md"):
        book.build_book(root=small_book, echo=False, warnings_as_errors=False)
