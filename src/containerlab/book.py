"""Build the Jupyter Book (executing every notebook against the Docker engine)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import config


class BookBuildFailed(RuntimeError):
    """``jupyter-book build`` failed; the message holds the tail of its output."""


@dataclass(frozen=True)
class BookBuild:
    """A finished book build.

    Attributes:
        html_dir: folder with the rendered pages (``_build/html``).
        seconds: wall time of the build, in seconds.
        log: everything jupyter-book printed.
    """

    html_dir: Path
    seconds: float
    log: str


#: Dependencies of every page, besides the course modules it imports (found by :func:`course_modules`).
DEFAULT_DEPENDENCIES: tuple[str, ...] = ()
#: The course package, relative to the book's root: the modules a page imports from it are dependencies.
PACKAGE_DIR = "src/containerlab"
#: Front-matter key of a page listing the files and folders its outputs depend on.
DEPENDENCIES_KEY = "execution_dependencies"
#: Where the digests of each page's dependencies, as last executed, are kept (inside the cache).
DIGESTS_FILE = "page-dependencies.json"
#: Left in ``_build`` while a build runs, removed only when it ended well: the next build then re-reads
#: every page (a fresh Sphinx environment), so that nothing a failed build saved is reported as good.
UNFINISHED_MARKER = "build-unfinished"
#: Files that never change what a page shows: bytecode, and secrets the pages write and delete.
_IGNORED_PARTS = ("__pycache__",)
_IGNORED_NAMES = (".env",)
_IGNORED_SUFFIXES = (".pyc",)


def course_modules(source: str, *, package_dir: Path) -> list[Path]:
    """The course package's modules that ``source`` imports, directly or through each other.

    Imports are read, not run: ``from containerlab import a``, ``from
    containerlab.b import x`` and ``import containerlab.c`` in ``source``, then,
    inside each module found, ``from . import d`` and ``from .e import y``
    (also inside functions). The package's ``__init__.py`` is always included.

    Args:
        source: Python code, or a whole MyST page (its imports are found by pattern).
        package_dir: the package's folder (``src/containerlab``).

    Returns:
        Module files, sorted.
    """
    import ast

    name = package_dir.name
    wanted: set[str] = set()
    for match in re.finditer(rf"^\s*from {name}(?:\.(\w+))? import ([\w, ()]+)", source, re.M):
        wanted |= {match.group(1)} if match.group(1) else set(re.findall(r"\w+", match.group(2)))
    wanted |= set(re.findall(rf"^\s*import {name}\.(\w+)", source, re.M))
    found: set[Path] = {package_dir / "__init__.py"}
    todo = [package_dir / f"{module}.py" for module in wanted]
    while todo:
        path = todo.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or node.module == name
                                                     or (node.module or "").startswith(name + ".")):
                module = (node.module or "").removeprefix(name).strip(".") if node.level == 0 else node.module
                names = [module] if module else [alias.name for alias in node.names]
                todo += [package_dir / f"{n.split('.')[0]}.py" for n in names]
    return sorted(p for p in found if p.is_file())


def page_dependencies(page: Path, *, root: Path, default: tuple[str, ...] = DEFAULT_DEPENDENCIES) -> list[str]:
    """The files and folders whose contents a notebook page's outputs depend on.

    jupyter-cache re-executes a page only when its code cells change
    (jupyter-book issue #1633), not when a Dockerfile or a module it uses does.
    The course modules a page imports are found from its import lines; each
    page lists, in its front matter, what else it reads::

        execution_dependencies:
          - docker/customer-value

    Args:
        page: the page's MyST markdown source.
        root: the book's root folder; listed paths are relative to it.
        default: dependencies of every page.

    Returns:
        Paths relative to ``root``: the defaults, the course modules the page
        imports (:func:`course_modules`), then the declared ones, without repeats.
    """
    import yaml

    text = page.read_text(encoding="utf-8")
    declared: list[str] = []
    if text.startswith("---"):
        front = yaml.safe_load(text.split("---", 2)[1]) or {}
        declared = list(front.get(DEPENDENCIES_KEY) or [])
    modules = [p.relative_to(root).as_posix() for p in course_modules(text, package_dir=root / PACKAGE_DIR)]
    return list(dict.fromkeys([*default, *modules, *declared]))


def dependency_digest(paths: list[str], *, root: Path) -> str:
    """A SHA-256 over the names and contents of every file under ``paths``.

    Bytecode caches and ``.env`` files (secrets the pages write and delete again)
    are left out. A path that does not exist counts as "missing", so creating it
    changes the digest.

    Args:
        paths: files or folders, relative to ``root``.
        root: the book's root folder.

    Returns:
        The digest as hex text.
    """
    total = hashlib.sha256()
    for name in paths:
        base = root / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            rel = path.relative_to(root).as_posix()
            if (set(path.parts) & set(_IGNORED_PARTS) or path.name in _IGNORED_NAMES
                    or path.suffix in _IGNORED_SUFFIXES):
                continue
            content = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
            total.update(f"{rel}\0{content}\n".encode())
    return total.hexdigest()


def notebook_pages(root: Path) -> list[Path]:
    """The executable pages of the book: MyST notebooks (a ``kernelspec`` in the front matter)."""
    return sorted(p for p in root.glob("*/*.md")
                  if not p.parts[-2].startswith((".", "_")) and "\nkernelspec:" in p.read_text(encoding="utf-8")[:2000])


def book_pages(root: Path) -> list[Path]:
    """The executable pages the book's ``_toc.yml`` lists (MyST notebooks), in the table's order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    names: list[str] = [toc["root"]] if toc.get("root") else []

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    notebooks = set(notebook_pages(root))
    pages = [root / f"{name}.md" for name in names]
    return [page for page in pages if page in notebooks]


def _reader_config(root: Path):
    """The MyST parser settings of ``_config.yml``, as myst-nb reads notebooks with them."""
    import yaml
    from myst_parser.config.main import MdParserConfig

    settings = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    extensions = ((settings.get("parse") or {}).get("myst_enable_extensions")) or []
    return MdParserConfig(enable_extensions=set(extensions))


def pages_without_a_run(*, root: Path, cache_dir: Path, pages: list[Path] | None = None) -> list[Path]:
    """The pages whose code, as it is now, has no successful execution in jupyter-cache.

    myst-nb caches an execution only when every cell ran without an error; a page
    that failed, or whose run was cut short (Ctrl-C, a killed process, a full
    disk), has no record that matches its cells. Each page is read the way
    myst-nb reads it and matched against the cache by the same hash (the
    kernelspec, and each code cell's source and metadata).

    Args:
        root: the book's root folder.
        cache_dir: jupyter-cache's folder (``_build/.jupyter_cache``).
        pages: the pages to look at (default: :func:`book_pages`).

    Returns:
        The pages with no matching successful run, in the order given.
    """
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    pages = book_pages(root) if pages is None else pages
    if not (cache_dir / "global.db").exists():
        return list(pages)
    cache = get_cache(str(cache_dir))
    reader = _reader_config(root)
    missing = []
    for page in pages:
        notebook = read_myst_markdown_notebook(page.read_text(encoding="utf-8"), reader, path=page)
        try:
            cache.match_cache_notebook(notebook)
        except KeyError:
            missing.append(page)
    return missing


def invalidate_stale_pages(*, root: Path, cache_dir: Path, pages: list[Path] | None = None,
                           default: tuple[str, ...] = DEFAULT_DEPENDENCIES) -> list[Path]:
    """Remove the cached executions of pages whose dependencies changed since they ran.

    For each page the digest of its dependencies (:func:`dependency_digest`) is
    compared with the one recorded when its cache entries were made. When they
    differ, or nothing was recorded, every cache record made from that page is
    removed with jupyter-cache's ``remove_cache``, so the next build executes it
    again, and the page's modification time is set to now, so that Sphinx reads
    it again instead of reusing its saved doctree. Then the new digest is
    recorded. All records of a page are therefore always made with the recorded
    dependencies.

    Args:
        root: the book's root folder.
        cache_dir: jupyter-cache's folder (``_build/.jupyter_cache``).
        pages: the pages to look at (default: :func:`notebook_pages`).
        default: dependencies of every page.

    Returns:
        The pages whose dependencies changed (or were never recorded).
    """
    from jupyter_cache import get_cache

    cache_dir.mkdir(parents=True, exist_ok=True)

    digests_path = cache_dir / DIGESTS_FILE
    recorded: dict[str, str] = json.loads(digests_path.read_text()) if digests_path.exists() else {}
    cache = get_cache(str(cache_dir))
    records = cache.list_cache_records()
    stale = []
    for page in pages if pages is not None else notebook_pages(root):
        key = page.resolve().relative_to(root.resolve()).as_posix()
        digest = dependency_digest(page_dependencies(page, root=root, default=default), root=root)
        if recorded.get(key) == digest:
            continue
        mine = [r for r in records if Path(r.uri).with_suffix("") == page.resolve().with_suffix("")]
        for record in mine:
            cache.remove_cache(record.pk)
        # Sphinx re-reads (and so re-executes) only sources newer than its saved environment.
        os.utime(page)
        stale.append(page)
        recorded[key] = digest
    digests_path.write_text(json.dumps(recorded, indent=1, sort_keys=True))
    return stale


def build_book(*, warnings_as_errors: bool = True, execute_all: bool = False, echo: bool = True,
               root: Path | None = None) -> BookBuild:
    """Run ``jupyter-book build`` on the repository root into ``_build/html``.

    Notebooks are executed through jupyter-cache: a notebook whose code did not
    change since its last successful run is taken from the cache, unless a file
    it depends on changed (:func:`invalidate_stale_pages`): a build context, a
    compose file, the service's code or the course package.

    A page without a successful run in the cache (it failed, or a build was cut
    short while it ran) runs again, and after a build that did not end well every
    page is read again: a failed build stays failed until each page has run to
    the end (:func:`pages_without_a_run`). The build is reported good only then.

    Args:
        warnings_as_errors: pass ``-W -n --keep-going`` (fail on any Sphinx warning).
        execute_all: empty the execution cache first and rebuild every page
            (``--all``), so that every notebook runs again.
        echo: stream jupyter-book's output to stdout while it runs.
        root: the book to build (default: this repository).

    Returns:
        Where the HTML is and how long the build took (seconds).

    Raises:
        BookBuildFailed: the build failed (a notebook cell raised, a warning with -W, ...), or a
            page has no successful run although jupyter-book ended well.
    """
    root = root or config.ROOT
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--builder", "html"]
    if warnings_as_errors:
        cmd += ["-W", "-n", "--keep-going"]
    cache_dir = root / "_build" / ".jupyter_cache"
    if execute_all:
        shutil.rmtree(cache_dir, ignore_errors=True)
        cmd.append("--all")
    stale = invalidate_stale_pages(root=root, cache_dir=cache_dir)
    if stale and echo:
        names = ", ".join(p.relative_to(root).as_posix() for p in stale)
        print(f"Files these pages depend on changed; they run again: {names}", flush=True)
    # Sphinx reads (and so executes) only sources newer than the environment it saved, and it
    # saves that environment even when a page failed. A page with no successful run in the cache
    # is made newer, so it runs again; after a build that did not end well (the marker is still
    # there: a failure, Ctrl-C, a crash) every page is re-read, those with a run from the cache.
    marker = root / "_build" / UNFINISHED_MARKER
    unfinished = pages_without_a_run(root=root, cache_dir=cache_dir)
    for page in unfinished:
        os.utime(page)
    if marker.exists() and "--all" not in cmd:
        cmd.append("--all")
        if echo:
            print("The last build did not end well: every page is read again "
                  "(pages that ran to the end come from the cache).", flush=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("A book build started here and has not ended well yet.\n")
    env = {**os.environ, **config.isolated_environment()}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=root)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    returncode = proc.wait()
    seconds = time.monotonic() - start
    log = "".join(lines)
    if returncode != 0:
        problems = [line for line in lines if "WARNING:" in line or "ERROR:" in line]
        detail = "".join(problems[-15:]) or "".join(lines[-25:])
        raise BookBuildFailed(f"jupyter-book build failed after {seconds:.0f} s:\n{detail}")
    # Without -W a failed page is only a warning; with it, one more check costs little.
    not_run = pages_without_a_run(root=root, cache_dir=cache_dir)
    if not_run:
        names = ", ".join(p.relative_to(root).as_posix() for p in not_run)
        raise BookBuildFailed(f"These pages did not run to the end, and their HTML shows the error: {names}. "
                              "The next build runs them again.")
    if _merges_streams(root):
        repair_merged_streams(root / "_build" / "jupyter_execute")
    marker.unlink(missing_ok=True)
    return BookBuild(html_dir=root / "_build" / "html", seconds=seconds, log=log)


def _merges_streams(root: Path | None = None) -> bool:
    """Whether ``_config.yml`` sets ``nb_merge_streams`` (only then are later streams duplicates)."""
    import yaml

    settings = yaml.safe_load(((root or config.ROOT) / "_config.yml").read_text(encoding="utf-8")) or {}
    return bool(((settings.get("sphinx") or {}).get("config") or {}).get("nb_merge_streams"))


def repair_merged_streams(folder: Path) -> int:
    """Drop the duplicated stream outputs myst-nb leaves in the executed notebooks it writes.

    With ``nb_merge_streams`` myst-nb (1.4) appends the text of every later
    ``stdout``/``stderr`` output to the first one of the same name, in place, but
    writes the notebook to ``_build/jupyter_execute`` with the later outputs still
    there. Every line printed after the first ``print`` of a cell then appears
    twice, and nbval, comparing a fresh run with that copy, reports a difference.
    The first stream of each name already holds all the text, so the later ones go.

    Args:
        folder: the ``jupyter_execute`` folder of a book build.

    Returns:
        How many outputs were removed, over all notebooks.
    """
    import nbformat

    removed = 0
    for path in sorted(folder.rglob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        changed = False
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            seen: set[str] = set()
            kept = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    if output.get("name") in seen:
                        changed = True
                        removed += 1
                        continue
                    seen.add(output.get("name"))
                kept.append(output)
            cell.outputs = kept
        if changed:
            nbformat.write(notebook, path)
    return removed
