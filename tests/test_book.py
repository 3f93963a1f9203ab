"""The rendered book: does it build with warnings as errors, holding real outputs from the engine?"""

from __future__ import annotations

import re
from html import unescape

import pytest

from containerlab import book, config

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def built():
    """Build the book once for this module (notebooks come from the execution cache when unchanged)."""
    return book.build_book(warnings_as_errors=True, echo=False)


def page_text(built, name: str) -> str:
    html = (built.html_dir / "notebooks" / f"{name}.html").read_text()
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_every_section_is_rendered(built):
    """Are the introduction and the three sections rendered and linked from the start page?"""
    index = (built.html_dir / "index.html").read_text()
    intro = (built.html_dir / "book" / "intro.html").read_text()
    assert "intro.html" in index
    for name in ("14-1-shipping-the-environment", "14-2-images-and-containers",
                 "14-3-a-dockerfile-for-a-model-service"):
        assert (built.html_dir / "notebooks" / f"{name}.html").exists()
        assert name in intro


def test_tower_table_shows_the_containers_python(built):
    """Does 14.2 show the tower table with Python 3.13 in the container column and rows marked as differing?"""
    html = (built.html_dir / "notebooks" / "14-2-images-and-containers.html").read_text()
    table = html[html.index('id="T_tower"'):]
    table = table[: table.index("</table>")]
    cells = [unescape(c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.S)]
    python_row = cells[cells.index("Python"): cells.index("Python") + 4]
    assert python_row[2].startswith("3.13")
    assert "differs" in cells
    assert "kernel" in cells


def test_prediction_from_the_running_container_is_shown(built):
    """Does 14.3 show a 200 answer with a customer value and the 422 message, as returned by the container?"""
    text = page_text(built, "14-3-a-dockerfile-for-a-model-service")
    assert re.search(r"200 \{'customer_value': \d+\.\d+\}", text)
    assert "422 Invalid customer. tenure_months" in text


def test_base_image_variants_give_the_same_prediction(built):
    """Does 14.3.2 show one and the same customer value from the full, slim and multi-stage containers?"""
    text = page_text(built, "14-3-2-base-images")
    values = re.findall(r"'(full|slim|multi-stage)': \{'customer_value': (\d+\.\d+)\}", text)
    assert {variant for variant, _ in values} == {"full", "slim", "multi-stage"}
    assert len({value for _, value in values}) == 1


def test_only_cells_meant_to_fail_show_a_traceback(built):
    """Does every traceback on every page sit in a cell tagged raises-exception (a deliberate failure)?"""
    for page in (built.html_dir / "notebooks").glob("*.html"):
        html = page.read_text()
        for match in re.finditer(r"Traceback \(most recent call last\)", html):
            cell_start = html.rfind('<div class="cell ', 0, match.start())
            cell_classes = html[cell_start: html.index(">", cell_start)]
            assert "tag_raises-exception" in cell_classes, f"{page.name}: a cell raised unexpectedly"


PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
execution_dependencies:
  - context
---

# A page that reads a build context

```{code-cell} ipython3
print(open("../context/Dockerfile").read())
```
"""


def test_a_changed_dependency_runs_its_page_again(tmp_path):
    """When a file in a page's declared build context changes, does the next build execute that page
    again and show the new contents, while an unchanged build still comes from the cache?"""
    (tmp_path / "_config.yml").write_text(
        'title: "dependency test"\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n'
        'exclude_patterns: ["_build", ".*"]\n'
    )
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/page\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "page.md").write_text(PAGE)
    (tmp_path / "context").mkdir()
    dockerfile = tmp_path / "context" / "Dockerfile"
    dockerfile.write_text("FROM python:3.13-slim AS first-version\n")

    def shown() -> str:
        build = book.build_book(root=tmp_path, echo=False)
        return build, (build.html_dir / "notebooks" / "page.html").read_text()

    first, html = shown()
    assert "first-version" in html

    dockerfile.write_text("FROM python:3.13-slim AS second-version\n")
    second, html = shown()
    assert "second-version" in html and "first-version" not in html

    third, html = shown()
    assert "second-version" in html
    stale = book.invalidate_stale_pages(root=tmp_path, cache_dir=tmp_path / "_build" / ".jupyter_cache")
    assert stale == [], "an unchanged dependency must not empty the cache"


def test_pages_declare_the_build_contexts_they_name():
    """Does every docker/ folder a page's cells or listings name appear among that page's declared dependencies?"""
    for page in book.notebook_pages(config.ROOT):
        declared = book.page_dependencies(page, root=config.ROOT)
        named = set(re.findall(r"\b(docker/[\w.-]+)", page.read_text()))
        missing = {path for path in named if not any(path == d or path.startswith(d + "/") for d in declared)}
        assert not missing, f"{page.name} names {sorted(missing)} but does not list them in execution_dependencies"
