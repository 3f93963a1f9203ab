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
    assert re.search(r"422\s+Invalid customer\. tenure_months", text)


def test_base_image_variants_give_the_same_prediction(built):
    """Does 14.3.2 show one and the same customer value from the full, slim and multi-stage containers?"""
    text = page_text(built, "14-3-2-base-images")
    values = re.findall(r"'(full|slim|multi-stage)': \{'customer_value': (\d+\.\d+)\}", text)
    assert {variant for variant, _ in values} == {"full", "slim", "multi-stage"}
    assert len({value for _, value in values}) == 1


def rendered_pages(built) -> list:
    return sorted(p for folder in ("book", "notebooks") for p in (built.html_dir / folder).glob("*.html"))


def cell_outputs(html: str) -> str:
    """The text of every cell output block on a page (what the engine printed, not the prose)."""
    blocks = re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>\s*</div>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", "", "\n".join(blocks)))


#: Lines that are a Dockerfile step as the builder names it: its paths are inside the image.
_DOCKERFILE_STEP = re.compile(r"^\s*\[[\w .-]*\d+/\d+\] ")
_HOST_PATH = re.compile(r"(?<![\w.])/(?:work|root|tmp)/")


def test_no_page_shows_a_traceback(built):
    """Does no rendered page hold a Python traceback (failures on purpose show the tool's own message)?"""
    for page in rendered_pages(built):
        html = page.read_text()
        assert "Traceback (most recent call last)" not in html, f"{page.name} shows a traceback"
        assert 'class="ansi-red-fg">---------------------------------------------------------------------------' \
            not in html, f"{page.name} shows an IPython error"


def test_no_output_shows_a_host_path(built):
    """Do the outputs on every page stay free of build-machine paths (the repository, /root/, /tmp/)?"""
    root = str(config.ROOT)
    for page in rendered_pages(built):
        for line in cell_outputs(page.read_text()).splitlines():
            if _DOCKERFILE_STEP.match(line):
                continue
            assert root not in line, f"{page.name}: {line.strip()[:120]}"
            assert not _HOST_PATH.search(line), f"{page.name}: {line.strip()[:120]}"


def test_every_image_has_alt_text(built):
    """Does every <img> on every page carry alt text that describes it (not empty, not a file name)?"""
    seen = 0
    for page in rendered_pages(built):
        for tag in re.findall(r"<img\b[^>]*>", page.read_text()):
            seen += 1
            alt = re.search(r'\balt="([^"]*)"', tag)
            assert alt and len(alt.group(1).split()) >= 4, f"{page.name}: {tag[:160]}"
            assert not re.search(r"\.(png|svg|jpe?g)$", alt.group(1)), f"{page.name}: {tag[:160]}"
    assert seen >= 2, "the charts of 14.3.1 and 14.3.2 should be on their pages"


def test_glossary_and_nested_sections_are_rendered(built):
    """Is the glossary a page of its own, and are 14.3.1 to 14.3.3 listed under 14.3 in the navigation?"""
    glossary = unescape(re.sub(r"<[^>]+>", " ", (built.html_dir / "book" / "glossary.html").read_text()))
    assert "Exec form" in glossary and "Digest" in glossary
    html = (built.html_dir / "notebooks" / "14-4-composing-services.html").read_text()
    entries = dict((href, level) for level, href in re.findall(
        r'<li class="toctree-l(\d)[^"]*"><a class="reference internal" href="([^"]*)"', html))
    assert entries["14-3-a-dockerfile-for-a-model-service.html"] == "1"
    for name in ("14-3-1-layer-caching", "14-3-2-base-images", "14-3-3-data-and-secrets"):
        assert entries[f"{name}.html"] == "2", name
    assert entries["../book/glossary.html"] == "1"


def test_stop_measurements_say_what_happened(built):
    """Does 14.3 show the measured exit codes of docker stop: 0 for exec form, 137 for shell form, 143 with --init?"""
    text = page_text(built, "14-3-a-dockerfile-for-a-model-service")
    assert "customer-value-demo  within the grace period" in text.replace("\xa0", " ")
    outputs = cell_outputs((built.html_dir / "notebooks" / "14-3-a-dockerfile-for-a-model-service.html").read_text())
    codes = {name.removesuffix(f"-{config.INSTANCE}"): code
             for name, code in re.findall(r"ExitCode}}' (\S+)'?\n(\d+)", outputs)}
    assert codes == {"customer-value-demo": "0", "cv-shell-form": "137", "cv-init-demo": "143"}, codes


def test_compose_up_without_build_keeps_the_old_image(built):
    """Does 14.4 show that up without --build keeps the image from before a code edit, and up --build does not?"""
    text = page_text(built, "14-4-composing-services")
    assert "up, no --build: same image as before the edit? True" in text
    assert "up --build:     same image as before the edit? False" in " ".join(text.split(" ")) or \
        re.search(r"up --build:\s+same image as before the edit\? False", text)


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


def test_a_page_depends_on_the_course_modules_it_imports_and_no_others(tmp_path):
    """Are the package modules a page imports, and those they import in turn, its dependencies, and no others?"""
    package = tmp_path / "src" / "containerlab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "notebook.py").write_text("from . import engine\n\ndef f():\n    from .tower import probe\n")
    (package / "engine.py").write_text("import json\n")
    (package / "tower.py").write_text("def probe(): pass\n")
    (package / "grading.py").write_text("from . import engine\n")
    page = tmp_path / "page.md"
    page.write_text("```{code-cell} ipython3\nfrom containerlab.notebook import setup\n```\n")
    assert book.page_dependencies(page, root=tmp_path) == [
        "src/containerlab/__init__.py", "src/containerlab/engine.py",
        "src/containerlab/notebook.py", "src/containerlab/tower.py"]
