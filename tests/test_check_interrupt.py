"""Interrupting a check (the kernel's stop button: SIGINT) on the real engine: does it stop the build or the
container at once and leave nothing behind?

The check runs in a child Python process, which reports its progress events on
stdout; when the slow step has begun, the test sends it SIGINT, as Jupyter does
when a student interrupts the kernel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from containerlab import config, engine
from conftest import TEST_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: The child: runs one step of a check with a callback that prints each event as a JSON line.
CHILD = textwrap.dedent("""
    import json, signal, sys
    from containerlab import engine
    from containerlab.checks import service

    # As a Jupyter kernel does: SIGINT interrupts, even when this test runs in a shell's background
    # job, whose children inherit SIGINT as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    what, image_or_dockerfile, context, tag, run_id = sys.argv[1:6]

    def progress(event):
        print(json.dumps({"kind": event.kind, "text": event.text}), flush=True)

    try:
        with engine.run_labels({"org.containerlab.test-run": run_id}):
            if what == "build":
                service.build_submission(image_or_dockerfile, context, tag=tag, progress=progress)
            else:
                service.probe_service(image_or_dockerfile, service.VISIBLE_CASES, progress=progress)
    except KeyboardInterrupt:
        print(json.dumps({"kind": "child-interrupted", "text": ""}), flush=True)
        sys.exit(130)
    print(json.dumps({"kind": "child-finished", "text": ""}), flush=True)
""")


def _start_child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(config.ROOT / "src")}
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=config.ROOT)


def _interrupt_when(child: subprocess.Popen[str], started, *, timeout: float = 300,  # type: ignore[no-untyped-def]
                    running=lambda: True) -> tuple[list[dict], float]:
    """Read the child's events; once ``started(event)`` holds, send SIGINT. Return the events and the seconds
    from SIGINT to the child's exit."""
    assert child.stdout is not None
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    for line in child.stdout:
        events.append(json.loads(line))
        if started(events[-1]):
            time.sleep(2)  # well inside the slow step
            assert running(), "the slow step is not running"
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, events
    else:
        child.wait(timeout=30)
        pytest.fail(f"the slow step never started: {events}\n{child.stderr.read()[-3000:] if child.stderr else ''}")
    rest, _ = child.communicate(timeout=60)
    events += [json.loads(line) for line in rest.splitlines() if line.strip()]
    return events, time.monotonic() - sent


def _marker_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _poll(condition, *, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def test_interrupt_stops_the_build_and_keeps_the_tag_where_it_was(tmp_path):
    """Interrupted during a slow RUN step, does the check stop the buildx process and the step itself within
    seconds, leave the tag on the image it named before, and re-raise the interrupt?"""
    run_id = uuid.uuid4().hex[:10]
    tag = f"containerlab-test-interrupt-{run_id}:latest"
    marker = f"cl-interrupt-{run_id}"
    context = tmp_path / "context"
    context.mkdir()
    (context / "before.Dockerfile").write_text(f'FROM {config.PYTHON_SLIM_IMAGE}\nLABEL before="{run_id}"\n')
    (context / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\nRUN sleep 30 && echo {marker}\n")
    try:
        before = engine.build(context, tag=tag, dockerfile=context / "before.Dockerfile").image.id
        child = _start_child("build", str(context / "Dockerfile"), str(context), tag, run_id)
        events, seconds = _interrupt_when(
            child, lambda e: e["kind"] == "build-output" and "RUN sleep 30" in e["text"],
            running=lambda: bool(_marker_processes(marker)))
        assert child.returncode == 130 and events[-1]["kind"] == "child-interrupted", events[-3:]
        assert seconds < 15, f"the child took {seconds:.1f} s to stop"
        # The step itself ends: BuildKit cancels it once the client is gone.
        _poll(lambda: not _marker_processes(marker), timeout=20, what="the RUN step still runs after the interrupt")
        assert not [p for p in _marker_processes("buildx") if tag in " ".join(p.cmdline())], "buildx still runs"
        now = engine.image(tag)
        assert now is not None and now.id == before, "the tag no longer names the image it named before"
    finally:
        engine.remove_image(tag)


def test_interrupt_during_the_run_removes_the_container_and_its_network(tmp_path):
    """Interrupted while waiting for a container that never answers, does the check remove the container
    and its internal network, and re-raise the interrupt?"""
    run_id = uuid.uuid4().hex[:10]
    tag = f"containerlab-test-interrupt-{run_id}:latest"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f'FROM {config.PYTHON_SLIM_IMAGE}\nCMD ["sleep", "300"]\n')
    label = f"{TEST_LABEL}={run_id}"
    try:
        engine.build(context, tag=tag)
        child = _start_child("run", tag, str(context), tag, run_id)
        events, seconds = _interrupt_when(child, lambda e: e["kind"] == "phase" and "Starting a container" in e["text"],
                                          running=lambda: bool(engine.labelled(label)["containers"]))
        assert child.returncode == 130 and events[-1]["kind"] == "child-interrupted", events[-3:]
        assert seconds < 20, f"the child took {seconds:.1f} s to stop"
        left = engine.labelled(label)
        assert not left["containers"] and not left["networks"], left
    finally:
        engine.remove_objects(engine.labelled(label))
        engine.remove_image(tag)
