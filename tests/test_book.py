"""The rendered book: does it build with warnings as errors, holding real outputs from the engine?"""

from __future__ import annotations

import re
from html import unescape

import pytest

from containerlab import book

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


def test_no_cell_raised(built):
    """Does no executed cell show a Python traceback on any page?"""
    for page in (built.html_dir / "notebooks").glob("*.html"):
        assert "Traceback (most recent call last)" not in page.read_text(), page.name
