"""The engine module against a real engine: are failures reported clearly and cleaned up?"""

from __future__ import annotations

import uuid
from pathlib import Path

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
    engine.reconnect()  # this process's engine is the one whose socket is gone
    (tmp_path / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\n")
    try:
        with pytest.raises(engine.EngineUnavailable, match="stopped answering"):
            engine.build(tmp_path, tag="cl-test-never-built:x", timeout=60)
    finally:
        monkeypatch.undo()
        engine.reconnect()


@pytest.mark.docker
def test_an_old_image_still_tagged_elsewhere_is_kept(docker_client, unique_tag, tmp_path):
    """Does remove_unused_image keep an image that one other tag still names (Docker would delete it by id)?"""
    (tmp_path / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\nLABEL test.id={uuid.uuid4().hex}\n")
    built = engine.build(tmp_path, tag=unique_tag, timeout=120)
    assert engine.remove_unused_image(built.image.id) is False
    assert docker_client.images.get(unique_tag).id == built.image.id


def test_a_container_is_read_and_ended_through_its_ref(tmp_path):
    """Do the functions that take a ContainerRef read its environment, mounts, output, files and exit status?"""
    (tmp_path / "data.csv").write_text("a,b\n")
    container = engine.run(config.PYTHON_SLIM_IMAGE, ["sh", "-c", "echo one; echo two; sleep 60"],
                           environment={"TOKEN": "x=y"}, volumes={str(tmp_path): {"bind": "/data", "mode": "ro"}})
    try:
        assert isinstance(container, engine.ContainerRef) and container.name and len(container.id) == 64
        setup = engine.container_info(container)
        assert setup.env["TOKEN"] == "x=y" and setup.env["PATH"]  # the run's ENV and the image's
        [mount] = setup.mounts
        assert (mount.type, mount.destination) == ("bind", "/data") and Path(mount.source) == tmp_path
        assert engine.exec_inside(container, ["cat", "/data/data.csv"]) == (0, "a,b\n")
        assert engine.exec_inside(container, ["sh", "-c", "exit 3"])[0] == 3
        assert engine.container_state(container)["Status"] == "running"
        _seconds, state = engine.stop_seconds(container, grace=1)  # sh as PID 1 ignores SIGTERM: killed
        assert state["ExitCode"] == 137
        assert engine.wait_container(container, timeout=10) == 137
        assert engine.logs(container, tail=None) == "one\ntwo\n" and engine.logs(container, tail=1) == "two\n"
    finally:
        engine.remove_container(container)
    assert engine.container_state(container) == {}
    with pytest.raises(engine.EngineError, match="gone"):
        engine.container_info(container)
    engine.remove_container(container)  # a second time: nothing happens


def test_an_image_and_the_engine_are_described_as_plain_data():
    """Do ImageInfo, image_file, networks, version and info carry what the checks and the doctor read?"""
    found = engine.image(config.PYTHON_SLIM_IMAGE)
    assert isinstance(found, engine.ImageInfo) and found.id.startswith("sha256:")
    assert config.PYTHON_SLIM_IMAGE in found.tags and found.os == "linux" and found.architecture
    assert list(found.layers) == engine.image_layers(config.PYTHON_SLIM_IMAGE) and found.layers
    assert found.config.get("Cmd") and found.size > 0 and found.created
    assert b"ID=debian" in (engine.image_file(config.PYTHON_SLIM_IMAGE, "/etc/os-release") or b"")
    assert engine.image_file(config.PYTHON_SLIM_IMAGE, "/no/such/file") is None
    assert [n.driver for n in engine.networks() if n.name == "bridge"] == ["bridge"]
    assert engine.version()["Version"] and "DriverStatus" in engine.info()
