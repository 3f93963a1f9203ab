"""Pages that run again cleanly: after a run killed halfway, and twice in a row (issue 19, item 5).

Each page is executed the way the book executes it (jupytext reads the MyST
source, nbclient runs it with the page's folder as working directory). First a
run is killed (SIGKILL to its kernel) right after the cell that leaves the most
behind: running containers, a compose stack with its volume, the local
registry's process. Then the page runs to the end; it must succeed, show the
outputs of the book's own run where the page does not mark them as varying,
and leave nothing of this instance behind on the engine.
"""

from __future__ import annotations

import configparser
import os
import re
import signal
from pathlib import Path

import docker
import jupytext
import nbclient
import pytest

from containerlab import config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTEBOOKS = config.ROOT / "notebooks"

#: Page -> text of the cell after which its first run is killed (the most left running there).
KILL_AFTER = {
    "14-1-shipping-the-environment.md": "import platform as p",
    "14-2-images-and-containers.md": "import sklearn",
    "14-3-a-dockerfile-for-a-model-service.md": "--init --name {INIT_DEMO}",
    # 14.3.1 leaves its copy of the service (a second `cp -r` would copy into it): killed right
    # after making it, before ten minutes of builds that every later run makes anew anyway.
    "14-3-1-layer-caching.md": "cp -r docker/customer-value .cache/caching-demo",
    "14-3-2-base-images.md": "--env API_TOKEN=demo-FAKE-token",
    "14-3-3-data-and-secrets.md": "for layer in $layers; do",
    "14-4-composing-services.md": "up --no-start --build",
}


def _client(notebook) -> nbclient.NotebookClient:
    return nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(NOTEBOOKS)}})


def run_killed(page: Path, marker: str) -> None:
    """Run ``page`` up to and including the first cell whose source holds ``marker``, then SIGKILL its kernel."""
    notebook = jupytext.read(page)
    cut = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and marker in cell.source)
    client = _client(notebook)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells[: cut + 1]):
            client.execute_cell(cell, index)
        # SIGKILL, as when a build is killed: no clean-up of the page's runs, no atexit.
        kernel = client.km.provisioner.process
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(timeout=30)


def run_whole(page: Path):
    notebook = jupytext.read(page)
    _client(notebook).execute()
    return notebook


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    parser = configparser.ConfigParser()
    parser.read(config.ROOT / "tests" / "nbval-sanitize.cfg")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def stable_outputs(notebook) -> list[str]:
    """The text outputs of the cells whose output the page does not mark as varying, sanitized as nbval does."""
    shown = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        text = ""
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text += output.get("text", "") + data.get("text/markdown", "")
            if "text/html" not in data:  # a Styler's repr holds its object address; its HTML does not vary
                text += data.get("text/plain", "")
        for pattern, replacement in _sanitizers():
            text = pattern.sub(replacement, text)
        shown.append(text)
    return shown


def instance_objects() -> set[str]:
    """This instance's containers, volumes, networks and image tags on the engine, and the registry if it runs."""
    # One listing call each: other users of the engine add and remove objects meanwhile.
    api = docker.from_env().api
    names = {f"container {name.lstrip('/')}"
             + (f" (labelled for {config.INSTANCE})" if config.INSTANCE in str(x.get("Labels")) else "")
             for x in api.containers(all=True) for name in x["Names"]}
    names |= {f"image {tag}" for x in api.images() for tag in x.get("RepoTags") or []}
    names |= {f"volume {x['Name']}" for x in api.volumes().get("Volumes") or []}
    names |= {f"network {x['Name']}" for x in api.networks()}
    found = {name for name in names if config.INSTANCE in name}
    if (config.CACHE_DIR / "registry").exists():
        found.add("folder .cache/registry")
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"registry/config.yml" in proc.read_bytes() and os.readlink(proc.parent / "cwd") == str(config.ROOT):
                found.add(f"process {proc.parent.name} (the local registry)")
        except OSError:
            pass
    return found


@pytest.mark.parametrize("name", sorted(KILL_AFTER))
def test_page_runs_after_a_killed_run_and_leaves_nothing(name: str):
    """After a run of the page killed halfway, does the page run to the end, with the outputs the book
    recorded (where it does not mark them as varying), leaving nothing of this instance on the engine?

    The book build ran the page once already; this is its second run in a row, compared with the
    book's own run under nbval's sanitizing rules (``tests/nbval-sanitize.cfg``). It is what a pass of
    nbval over the executed pages would check, so the README's test command makes no such third run.
    """
    page = NOTEBOOKS / name
    before = instance_objects()
    run_killed(page, KILL_AFTER[name])
    again = run_whole(page)
    assert instance_objects() <= before, f"{name} left {sorted(instance_objects() - before)}"
    built = config.ROOT / "_build" / "jupyter_execute" / "notebooks" / name.replace(".md", ".ipynb")
    if built.exists():  # the book's run of it (README's test command builds the book first)
        import nbformat

        assert stable_outputs(nbformat.read(built, as_version=4)) == stable_outputs(again)
