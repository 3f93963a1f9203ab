"""Shared fixtures: a session Docker client and cleanup of everything tests create."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

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
    """The session's Docker SDK client; skips nothing: a missing engine is an error."""
    from containerlab import engine

    return engine.client()


@pytest.fixture
def unique_tag() -> Iterator[str]:
    """A fresh image tag for one test; the image is removed afterwards, pass or fail."""
    from containerlab import engine

    tag = f"containerlab-test-{uuid.uuid4().hex[:10]}:latest-test"
    yield tag
    engine.remove_image(tag)
