"""Shared fixtures: a session Docker client and cleanup of everything tests create."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from containerlab import config

# Keep Jupyter, IPython and matplotlib (also in nbval's kernels) inside the project.
os.environ.update(config.isolated_environment())

# Fixture files (broken notebooks, Dockerfiles) are inputs, never tests to collect.
collect_ignore = ["fixtures"]

#: Label put on every container, image, network and volume a test creates.
TEST_LABEL = "org.containerlab.test-run"


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client of the session's own, to look at the engine apart from containerlab.engine
    (which gives no SDK object); skips nothing: a missing engine is an error."""
    import docker

    from containerlab import engine

    engine.connect()
    return docker.from_env(timeout=120)


@pytest.fixture
def unique_tag() -> Iterator[str]:
    """A fresh image tag for one test; the image is removed afterwards, pass or fail."""
    from containerlab import engine

    tag = f"containerlab-test-{uuid.uuid4().hex[:10]}:latest-test"
    yield tag
    engine.remove_image(tag)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests of the graded corpus last, and have its grading run beside the other tests.

    The grading runs on a grading engine of its own (tests/corpus_grading.py), so
    it overlaps the book's build and the rest of the suite instead of adding half
    an hour to them: pytest takes over the grading ``make test`` started before
    the book, or starts it now. Where no grading engine can run, the corpus is
    graded on the main engine when its tests come.
    """
    graded = [item for item in items
              if item.path.name == "test_corpus.py" and "graded" in getattr(item, "fixturenames", ())]
    if not graded or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in graded] + graded
    import corpus_grading

    if not corpus_grading.NO_SANDBOX:
        ids = corpus_grading.wanted(graded)
        # `make test` started it before the book's build; a run of pytest alone starts it now.
        config.stash[corpus_grading.BACKGROUND] = (
            corpus_grading.Background.adopt(corpus_grading.PRESTARTED, ids)
            or corpus_grading.Background.start(Path(tempfile.mkdtemp(prefix="cl-test-corpus-")), ids))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop a background grading of the corpus that is still running (an interrupted run), and remove its folder."""
    corpus_grading = sys.modules.get("corpus_grading")
    background = config.stash.get(corpus_grading.BACKGROUND, None) if corpus_grading else None
    if background is not None:
        background.stop()
        shutil.rmtree(background.root, ignore_errors=True)
