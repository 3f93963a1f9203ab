"""Signs of pressure on the engine travel in results, never in a record kept by the process (issue 20).

A fake ``docker`` program on ``PATH`` stands in for the command line, so that the
engine's one runner (:func:`engine.docker_cli`), a build through it, and a whole
grading can be tried without an engine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from containerlab import engine, grading, scan
from containerlab.checks import ex1
from containerlab.checks.registry import Exercise
from containerlab.checks.submission import Submission

FAKE_HOST = "unix:///run/cl-test-fake.sock"

#: What the fake `docker buildx build` prints for a submission whose key starts with "full": BuildKit's plain
#: progress of a step that ran out of disk space.
FULL_BUILD = r"""
case "$*" in
  *cl-ex-full*)
    echo '#5 [2/2] RUN dd if=/dev/zero of=/big bs=1M count=99999'
    echo '#5 0.210 dd: error writing /big: No space left on device'
    echo '#5 ERROR: process "/bin/sh -c dd" did not complete successfully: exit code: 1'
    echo 'ERROR: failed to solve: process "/bin/sh -c dd" did not complete successfully: exit code: 1' ;;
  *)
    echo '#1 [internal] load build definition from Dockerfile'
    echo 'ERROR: failed to solve: dockerfile parse error on line 1: unknown instruction: FORM' ;;
esac
exit 1
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Put a fake ``docker`` first on ``PATH`` (its shell script given to the function yielded), and point this
    process's engine at :data:`FAKE_HOST`."""
    folder = tmp_path / "bin"
    folder.mkdir()

    def install(script: str) -> None:
        program = folder / "docker"
        program.write_text("#!/bin/sh\n" + script)
        program.chmod(0o755)

    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", FAKE_HOST)
    engine.reconnect()
    yield install
    engine.reconnect()  # the next call connects to the engine DOCKER_HOST names once it is restored


def test_the_runner_points_docker_at_the_engine_this_process_reached(fake_docker, monkeypatch) -> None:
    """Does `docker` get the address the SDK client uses, kept until reconnect, even when DOCKER_HOST changes?"""
    fake_docker('echo "$DOCKER_HOST"')
    assert engine.docker_cli(["context", "ls"], timeout=30).stdout.strip() == FAKE_HOST
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/cl-test-other.sock")
    assert engine.docker_cli(["context", "ls"], timeout=30, env={"DOCKER_HOST": "tcp://x:1"}).stdout.strip() == FAKE_HOST
    engine.reconnect()
    assert engine.docker_cli(["context", "ls"], timeout=30).stdout.strip() == "unix:///run/cl-test-other.sock"


def test_the_runner_stops_a_silent_command_at_its_timeout(fake_docker) -> None:
    """Is a command that prints nothing stopped at its timeout, with an error naming it and the seconds?"""
    fake_docker("sleep 60")
    start = time.monotonic()
    with pytest.raises(engine.CommandTimedOut, match=r"`docker pull python:3.13-slim` ran past its 1 s timeout"):
        engine.docker_cli(["pull", "python:3.13-slim"], timeout=1)
    assert time.monotonic() - start < 20


def test_the_runner_returns_a_full_disk_as_pressure(fake_docker) -> None:
    """Does a failed command that says the disk was full return that as pressure, and only a failed one?"""
    fake_docker('echo "out"; echo "write /var/lib/docker/tmp/x: no space left on device" >&2; exit "${CODE:-1}"')
    failed = engine.docker_cli(["compose", "up"], timeout=30, merge=False)
    assert (failed.returncode, failed.stdout, failed.pressure) == (1, "out\n", ("`docker compose up` found the "
                                                                              "engine's disk full",))
    assert "no space left" in failed.stderr
    assert engine.docker_cli(["compose", "up"], timeout=30, env={"CODE": "0"}).pressure == ()


def test_a_build_that_fills_the_disk_raises_its_sign(fake_docker, monkeypatch) -> None:
    """Does a build step that ran out of disk space fail with a pressure sign, and a Dockerfile typo without one?"""
    fake_docker(FULL_BUILD)
    monkeypatch.setattr(engine.builds, "client", lambda: None)  # no engine to ask
    monkeypatch.setattr(engine.builds, "_engine_answers", lambda: True)
    with pytest.raises(engine.BuildFailed) as full:
        engine.build("/nonexistent", tag="cl-ex-full:x")
    assert full.value.pressure == ("a build step met a limit the engine's builds share: The step ran out of disk "
                                   "space: it wrote more than the build's disk limit allows.",)
    with pytest.raises(engine.BuildFailed) as typo:
        engine.build("/nonexistent", tag="cl-ex-typo:x")
    assert typo.value.pressure == ()


def _build_exercise(submission: Submission):  # type: ignore[no-untyped-def]
    """Exercise 1's visible checks on a Dockerfile of the submission's scratch folder."""
    dockerfile = submission.work / "Dockerfile"
    dockerfile.write_text("FROM python:3.13-slim\nCMD [\"python\"]\n")
    (submission.work / "service").mkdir(exist_ok=True)
    return ex1.check(dockerfile, submission.work / "service", tag=f"cl-ex-{submission.key}:ex1")


def _unreadable_image(submission: Submission):  # type: ignore[no-untyped-def]
    """An exercise whose image cannot be read for a full disk in the grader's own process."""
    raise scan.ScanError("The archive could not be read", pressure=("the disk was full while the archive was read",))


def test_a_full_disk_reaches_the_grade_and_no_other_students(fake_docker, monkeypatch, tmp_path) -> None:
    """Does a full disk met by one student's build reach StudentGrade.pressure, with nothing recorded process-wide:
    the next student graded in the same process has none?"""
    fake_docker(FULL_BUILD)
    monkeypatch.setattr(engine.builds, "client", lambda: None)
    monkeypatch.setattr(engine.builds, "_engine_answers", lambda: True)
    monkeypatch.setattr(engine.builds, "uses_containerd_store", lambda: False)
    monkeypatch.setattr(engine, "image", lambda name: None)
    built = Exercise("ex1", "ex1.ipynb", _build_exercise)
    monkeypatch.setattr(grading.registry, "exercises", lambda: [built])

    def grade(key: str) -> grading.StudentGrade:
        return grading.grade_student(key, tmp_path / "hand-ins" / key, key=key, work_root=tmp_path / "work", cases=[])

    full = grade("full-1")
    assert full.pressure == {"ex1": ["a build step met a limit the engine's builds share: The step ran out of "
                                     "disk space: it wrote more than the build's disk limit allows."]}
    assert not full.results["ex1"].get("builds").passed
    assert grade("typo-2").pressure == {}
    assert grade("full-3").pressure == full.pressure
    saved = grading.StudentGrade.from_dict(full.to_dict())
    assert saved.pressure == full.pressure and "pressure" not in full.to_dict()["results"]["ex1"]["results"][0]

    monkeypatch.setattr(grading.registry, "exercises", lambda: [built, Exercise("ex2", "ex2.ipynb", _unreadable_image)])
    both = grade("typo-4")
    assert both.pressure == {"ex2": ["the disk was full while the archive was read",
                                     "the grader failed (ScanError: The archive could not be read)"]}
