"""The engine module against a real engine: are failures reported clearly and cleaned up?"""

from __future__ import annotations

import uuid

import pytest

from containerlab import config, engine

pytestmark = pytest.mark.docker


def test_failed_build_names_the_step_and_the_error(tmp_path, unique_tag):
    """Does a failing RUN raise BuildFailed naming that step and the command's own error?"""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {config.PYTHON_SLIM_IMAGE}\nRUN echo fine\nRUN python -c 'import no_such_module_here'\n"
    )
    with pytest.raises(engine.BuildFailed) as caught:
        engine.build(tmp_path, tag=unique_tag)
    error = caught.value
    assert "import no_such_module_here" in error.step
    assert "[3/3]" in error.step
    assert any("did not complete successfully" in line or "exit code" in line for line in error.error_lines)
    assert "No module named 'no_such_module_here'" in error.log
    assert engine.image(unique_tag) is None


def test_successful_build_returns_image_and_seconds(tmp_path, unique_tag):
    """Does a build return the tagged image, a positive wall time and stream its log?"""
    (tmp_path / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\nLABEL purpose=test\n")
    seen: list[str] = []
    result = engine.build(tmp_path, tag=unique_tag, echo=seen.append)
    assert result.seconds > 0
    assert unique_tag in result.image.tags
    assert result.image.labels["purpose"] == "test"
    assert seen and seen == result.log.splitlines()


def test_wait_http_reports_a_container_that_exits():
    """Does waiting on a container that crashes stop early and carry its last log lines?"""
    container = engine.run(
        config.PYTHON_SLIM_IMAGE,
        ["python", "-c", "print('starting'); raise SystemExit('model file missing')"],
        ports={80: None},
    )
    try:
        with pytest.raises(engine.ContainerFailed) as caught:
            engine.wait_http("http://127.0.0.1:9/health", container=container, timeout=30)
        assert "stopped" in str(caught.value)
        assert "model file missing" in caught.value.logs
    finally:
        engine.remove_container(container)


def test_build_names_an_engine_that_stopped_answering(tmp_path, monkeypatch):
    """When the engine is gone by the time the builder runs, is that said, rather than a build error?"""
    # The engine answered when the build began (client() passed); then its socket went away.
    monkeypatch.setattr(engine.builds, "client", lambda: None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/engine-gone.sock")
    (tmp_path / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\n")
    with pytest.raises(engine.EngineUnavailable, match="stopped answering"):
        engine.build(tmp_path, tag="cl-test-never-built:x", timeout=60)


@pytest.mark.docker
def test_an_old_image_still_tagged_elsewhere_is_kept(docker_client, unique_tag, tmp_path):
    """Does remove_unused_image keep an image that one other tag still names (Docker would delete it by id)?"""
    (tmp_path / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\nLABEL test.id={uuid.uuid4().hex}\n")
    built = engine.build(tmp_path, tag=unique_tag, timeout=120)
    assert engine.remove_unused_image(built.image.id) is False
    assert docker_client.images.get(unique_tag).id == built.image.id
