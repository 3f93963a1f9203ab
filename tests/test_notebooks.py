"""The MyST notebooks: are the paired .ipynb files in step, and does each page keep the house shape?"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from containerlab import config

NOTEBOOKS = sorted((config.ROOT / "notebooks").glob("*.md"))


def _sources(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("md", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_ipynb_matches_its_markdown_source(md: Path):
    """Does the committed .ipynb hold exactly the cells of its .md source (no drift, no outputs)?"""
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"run `jupytext --sync {md.relative_to(config.ROOT)}`"
    from_md = jupytext.read(md)
    from_ipynb = jupytext.read(ipynb)
    assert _sources(from_ipynb) == _sources(from_md), f"{ipynb.name} drifted: run `jupytext --sync`"
    assert all(not cell.get("outputs") for cell in from_ipynb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("md", NOTEBOOKS, ids=lambda p: p.name)
def test_page_has_label_objectives_setup_and_key_points(md: Path):
    """Does each page open with a label and objectives, hide its setup cell and end with key points?"""
    notebook = jupytext.read(md)
    text = md.read_text()
    assert text.split("---", 2)[2].lstrip().startswith("(")
    assert "Learning objectives" in text
    assert "Key points" in text.rsplit(":::{admonition}", 1)[-1]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "remove-cell" in code[0].metadata.get("tags", [])
    assert "setup()" in code[0].source


def test_every_notebook_is_in_the_table_of_contents():
    """Is every notebook listed in _toc.yml, and every listed file present?"""
    toc = yaml.safe_load((config.ROOT / "_toc.yml").read_text())

    def entries(items):
        for item in items:
            yield item["file"]
            yield from entries(item.get("sections", []))

    files = set(entries(chapter for part in toc["parts"] for chapter in part["chapters"]))
    assert {f"notebooks/{md.stem}" for md in NOTEBOOKS} <= files
    for name in files:
        assert (config.ROOT / f"{name}.md").exists(), name


def test_subsections_of_14_3_nest_under_it():
    """Are 14.3.1 to 14.3.3 listed as sections of 14.3 in _toc.yml, and is the glossary listed?"""
    toc = yaml.safe_load((config.ROOT / "_toc.yml").read_text())
    chapters = {c["file"]: c for part in toc["parts"] for c in part["chapters"]}
    nested = [s["file"] for s in chapters["notebooks/14-3-a-dockerfile-for-a-model-service"]["sections"]]
    assert nested == ["notebooks/14-3-1-layer-caching", "notebooks/14-3-2-base-images",
                      "notebooks/14-3-3-data-and-secrets"]
    assert "book/glossary" in chapters


def _is_solution(cell) -> bool:
    """A code cell that holds a task's solution: it runs with the page, and its output opens on click."""
    tags = cell.metadata.get("tags", [])
    prompt = (cell.metadata.get("mystnb") or {}).get("code_prompt_show", "")
    return cell.cell_type == "code" and ("hide-output" in tags or "hide-cell" in tags) and "solution" in prompt


@pytest.mark.parametrize("md", NOTEBOOKS, ids=lambda p: p.name)
def test_page_opens_with_questions_and_time_and_has_a_challenge(md: Path):
    """Does each page say up front which questions it answers and how long it takes, and hold a
    "try it" challenge whose answer opens on click (a dropdown, or a solution cell that runs)?"""
    text = md.read_text()
    overview = text.split(":::{admonition} Learning objectives", 1)[0]
    assert "Questions" in overview and "minutes" in overview
    assert "Try it" in text
    after = text.split("Try it", 1)[1]
    assert ":class: dropdown" in after or re.search(r"code_prompt_show: \"?Show the solution", after)


#: Pages rewritten to the hands-on convention of issue 19: at least two tasks, each solved by a cell
#: that runs when the book is built (so a wrong solution fails the build).
HANDS_ON_PAGES = ["14-1-shipping-the-environment.md", "14-2-images-and-containers.md",
                  "14-3-a-dockerfile-for-a-model-service.md", "14-3-1-layer-caching.md",
                  "14-3-2-base-images.md", "14-3-3-data-and-secrets.md", "14-4-composing-services.md"]


@pytest.mark.parametrize("name", HANDS_ON_PAGES)
def test_page_has_two_tasks_whose_solutions_run(name: str):
    """Does the page give the reader at least two "Try it" tasks, each followed by its own solution cell
    (hidden until clicked, executed with the page) before the next task begins?"""
    notebook = jupytext.read(config.ROOT / "notebooks" / name)
    tasks, open_task = 0, False
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "{admonition} Try it" in cell.source:
            assert not open_task, f"{name}: a task without a solution cell before the next task"
            tasks += cell.source.count("{admonition} Try it")
            assert cell.source.count("{admonition} Try it") == 1, f"{name}: two tasks in one cell"
            open_task = True
        elif open_task and _is_solution(cell):
            open_task = False
    assert not open_task, f"{name}: its last task has no solution cell"
    assert tasks >= 2, f"{name} has {tasks} task(s)"


def test_only_the_introduction_talks_about_stand_in_images():
    """Is the note on locally built stand-in images made once, in the introduction, and nowhere else?"""
    pages = [*NOTEBOOKS, *sorted((config.ROOT / "book").glob("*.md"))]
    mentions = [p.name for p in pages if "stand-in" in p.read_text().lower()]
    assert mentions == ["intro.md"]

