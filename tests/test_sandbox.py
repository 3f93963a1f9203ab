"""The grading engine: builds and containers of hostile submissions stop at their limits, the main engine is untouched.

One grading engine is started for the session with `containerlab engine start`
under a test name and small limits (so that bombs hit them in seconds), on
addresses of its own, and stopped with its disk deleted at the end. It keeps
its images in the legacy (overlay2) image store, which engines upgraded from
before the containerd image store still use: the main engine of the test run
has the containerd store, so the store-dependent readings (the scan of a
``docker save`` archive, image sizes) are tried here on the other one.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from containerlab import cli, engine, sandbox, scan

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAME = f"cl-test-grading-{uuid.uuid4().hex[:6]}"
#: Small limits: a bomb reaches them in seconds; python:3.13-slim still starts.
SETTINGS = {
    "CL_GRADING_NAME": NAME,
    "CL_GRADING_IMAGES": "python:3.13-slim",
    "CL_GRADING_LINK": "10.213.254.0/30",
    "CL_GRADING_SUBNET": "10.215.0.1/24",
    "CL_GRADING_POOL": "10.216.0.0/16",
    "CL_GRADING_STORE": "overlay2",
}
MEMORY_MB = 384
PIDS = 200
DISK_GB = 3


def _docker0() -> str:
    """docker0 as the main engine has it: its interface index and address ("" when there is none)."""
    link = subprocess.run(["ip", "-o", "link", "show", "docker0"], capture_output=True, text=True).stdout
    addr = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "docker0"], capture_output=True, text=True).stdout
    return f"{link.split(':', 1)[0]} {' '.join(addr.split()[3:4])}".strip()


@pytest.fixture(scope="session")
def grading_engine() -> Iterator[dict[str, str]]:
    """A grading engine started with `containerlab engine start`; stopped (disk deleted) at the end."""
    saved = {key: os.environ.get(key) for key in SETTINGS}
    os.environ.update(SETTINGS)
    why = sandbox.cannot_run()
    if why:
        pytest.skip(f"this machine cannot run a grading engine: {why}")
    before = _docker0()
    status = cli.main(["engine", "start", "--memory-mb", str(MEMORY_MB), "--pids", str(PIDS), "--disk-gb", str(DISK_GB)])
    try:
        assert status == 0, "containerlab engine start failed"
        yield {"host": sandbox.host(NAME), "docker0": before}
    finally:
        sandbox.use(None)
        cli.main(["engine", "stop", "--purge"])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def on_grading_engine(grading_engine: dict[str, str]) -> Iterator[str]:
    """Point this process at the grading engine for one test, and back at the main engine after it."""
    sandbox.use(grading_engine["host"])
    try:
        yield grading_engine["host"]
    finally:
        sandbox.use(None)


def _build(tmp_path: Path, dockerfile: str, *, tag: str | None = None) -> engine.BuildResult:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return engine.build(tmp_path, tag=tag, timeout=120)


def test_status_names_the_limits(grading_engine: dict[str, str]) -> None:
    """Does `engine status` say it runs, with its memory and process limits, and that docker0 is there?"""
    running, text = sandbox.status(name=NAME)
    assert running, text
    assert f"memory {MEMORY_MB} MB" in text and f"pids {PIDS}" in text
    assert "main engine: docker0" in text


def test_grade_uses_it_and_says_builds_are_limited(grading_engine: dict[str, str]) -> None:
    """Does the grader's engine choice find the running grading engine and say builds are limited?"""
    try:
        choice = sandbox.choose(name=NAME)
        assert choice.builds_limited and choice.host == grading_engine["host"]
        assert os.environ["DOCKER_HOST"] == grading_engine["host"]
    finally:
        sandbox.use(None)
    assert not sandbox.choose(name="cl-test-no-such-engine").builds_limited
    assert "builds have only the build timeout" in sandbox.choose(name="cl-test-no-such-engine").note


def test_memory_bomb_in_run_fails_with_the_memory_limit(on_grading_engine: str, tmp_path: Path) -> None:
    """Is a RUN step that allocates more than the engine's memory killed, with a message naming the limit?"""
    with pytest.raises(engine.BuildFailed) as failed:
        _build(tmp_path, "FROM python:3.13-slim\n"
                         f"RUN python3 -c \"b = bytearray({2 * MEMORY_MB} * 1024 * 1024); print(len(b))\"\n")
    assert "more memory than the build's memory limit" in str(failed.value)


def test_fork_bomb_in_run_fails_with_the_process_limit(on_grading_engine: str, tmp_path: Path) -> None:
    """Does a RUN step that starts more processes than the engine allows fail, with a message naming the limit?"""
    with pytest.raises(engine.BuildFailed) as failed:
        _build(tmp_path, f"FROM python:3.13-slim\nRUN for i in $(seq 1 {2 * PIDS}); do sleep 30 & done; wait\n")
    assert "process limit" in str(failed.value)


def test_disk_bomb_in_run_fails_and_leaves_the_space(on_grading_engine: str, tmp_path: Path) -> None:
    """Does a RUN step that writes more than the engine's disk fail with a disk message, and is the space back after?"""
    with pytest.raises(engine.BuildFailed) as failed:
        _build(tmp_path, f"FROM python:3.13-slim\nRUN dd if=/dev/zero of=/filler bs=1M count={(DISK_GB + 1) * 1024}\n")
    assert "disk limit" in str(failed.value)
    built = _build(tmp_path, "FROM python:3.13-slim\nRUN dd if=/dev/zero of=/filler bs=1M count=512\n")
    engine.remove_image(built.image.id)


def test_builds_do_not_reach_the_host(on_grading_engine: str, tmp_path: Path) -> None:
    """Can a RUN step reach the package index but not this host's own addresses or the main engine's bridge?"""
    gateway = _docker0().split(" ")[-1].split("/")[0] or "172.17.0.1"
    (tmp_path / "probe.py").write_text(
        "import socket, sys\n"
        f"for host in sys.argv[1:]:\n"
        "    try:\n"
        "        socket.create_connection((host, 22), timeout=2)\n"
        "        print('reached', host)\n"
        "    except ConnectionRefusedError:\n"
        "        print('reached', host)\n"
        "    except OSError:\n"
        "        print('blocked', host)\n")
    built = _build(tmp_path, f"FROM python:3.13-slim\nCOPY probe.py /\nRUN python3 /probe.py {gateway} 10.213.254.1\n")
    engine.remove_image(built.image.id)
    assert f"blocked {gateway}" in built.log and "blocked 10.213.254.1" in built.log, built.log


def test_containers_are_read_only_with_a_small_tmp(on_grading_engine: str, tmp_path: Path) -> None:
    """At run time, is the root file system read-only, /tmp capped, and a fork loop stopped by the pids limit?"""
    tag = f"cl-test-sleeper-{uuid.uuid4().hex[:8]}:test"
    _build(tmp_path, 'FROM python:3.13-slim\nCMD ["sleep", "120"]\n', tag=tag)
    limits = engine.SandboxLimits(memory_bytes=128 * 1024**2, pids=32, tmp_bytes=8 * 1024**2)
    try:
        with engine.sandboxed_container(tag, limits=limits, name_prefix="cl-test-sbx") as container:
            code, output = engine.exec_inside(container, ["sh", "-c", "echo x > /written"])
            assert code not in (None, 0) and "Read-only file system" in output
            code, output = engine.exec_inside(container, ["sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1M count=64"])
            assert code not in (None, 0) and "No space left on device" in output
            code, output = engine.exec_inside(container, ["sh", "-c", "for i in $(seq 1 100); do sleep 5 & done; wait"])
            assert code is not None and ("fork" in output.lower() or "resource temporarily unavailable" in output.lower())
            host_config = engine.inspect_container(container.id)["HostConfig"]
            assert host_config["CapDrop"] == ["ALL"] and host_config["ReadonlyRootfs"]
    finally:
        engine.remove_image(tag)


def test_main_engine_is_left_as_found(grading_engine: dict[str, str]) -> None:
    """After the bombs, does docker0 keep its index and address, and does the main engine still run containers on it?"""
    sandbox.use(None)
    assert _docker0() == grading_engine["docker0"]
    client = docker.from_env(timeout=120)
    assert client.ping()
    assert not sandbox.is_grading_engine(None)
    name = f"cl-test-main-{uuid.uuid4().hex[:8]}"
    out = client.containers.run("python:3.13-slim", ["python3", "-c", "import socket; print(socket.gethostname())"],
                                name=name, remove=True)
    assert out.strip()


def test_status_names_the_store(grading_engine: dict[str, str]) -> None:
    """Does `engine status` name the image store the settings asked for (here the legacy one)?"""
    running, text = sandbox.status(name=NAME)
    assert running and "legacy image store (overlay2)" in text, text


def test_one_students_builds_get_a_budget_of_their_own(on_grading_engine: str, tmp_path: Path) -> None:
    """Does a student's budget of 64 processes stop a RUN step that starts 120, which the engine's 200 let build?"""
    step = f"RUN for i in $(seq 1 120); do sleep 3 & done; wait; echo {uuid.uuid4().hex}\n"
    budget = engine.SandboxLimits(memory_bytes=256 * 1024**2, pids=64)
    with sandbox.build_budget("cl-test-worker", budget, name=NAME) as path:
        assert path == f"/{NAME}/workers/cl-test-worker"
        with pytest.raises(engine.BuildFailed) as failed:
            _build(tmp_path, "FROM python:3.13-slim\n" + step)
        assert "process limit" in str(failed.value)
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{NAME}/workers/cl-test-worker"))
    built = _build(tmp_path, "FROM python:3.13-slim\n" + step)
    engine.remove_image(built.image.id)


def test_the_next_student_of_a_worker_finds_the_build_cache(on_grading_engine: str, tmp_path: Path) -> None:
    """Does a RUN step built under a worker's budget come from the cache when that worker builds it again?

    BuildKit keys a step's cache on its cgroup parent too: a budget per student
    made every student install the service's dependencies again (70 s a build).
    """
    # The step sleeps so that, run twice, its two creation times (whole seconds) differ.
    dockerfile = f"FROM python:3.13-slim\nRUN echo {uuid.uuid4().hex} > /marker && sleep 2\n"
    budget = engine.SandboxLimits(memory_bytes=256 * 1024**2, pids=64)
    with sandbox.build_budget("cl-test-worker", budget, name=NAME):
        first = _build(tmp_path, dockerfile)
    with sandbox.build_budget("cl-test-worker", budget, name=NAME):
        second = _build(tmp_path, dockerfile)
    # A step taken from the cache keeps the creation time of the build that ran it (the image's history).
    made = [[(step["created"], step["created_by"]) for step in reversed(engine.image_history(built.image.id))]
            for built in (first, second)]
    assert "RUN" in made[0][0][1] and made[1][0] == made[0][0], made
    engine.remove_image(second.image.id)


def test_the_scan_and_sizes_read_the_legacy_store(on_grading_engine: str, tmp_path: Path) -> None:
    """On the legacy store, does the scan find a .env deleted by a later layer, and do sizes agree with inspect?"""
    assert not engine.uses_containerd_store()
    (tmp_path / ".env").write_text("DEMO_API_TOKEN=cl-test-not-a-real-token-123\n")
    tag = f"cl-test-legacy-{uuid.uuid4().hex[:8]}:test"
    _build(tmp_path, "FROM python:3.13-slim\nCOPY .env /app/.env\nRUN rm /app/.env\n", tag=tag)
    try:
        findings = scan.scan_image(tag, secret_values=["cl-test-not-a-real-token-123"])
        assert {(f.kind, f.path) for f in findings} >= {(scan.SECRET_FILE, "app/.env"), (scan.SECRET_VALUE, "app/.env")}
        sizes = engine.image_sizes(tag)
        assert sizes.content == 0 and abs(sizes.listed - engine.image(tag).size) < 1024**2
    finally:
        engine.remove_image(tag)
