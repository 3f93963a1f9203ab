"""The check cell's progress, with a fake emitter and a fake clock: what does the student see while a check works?"""

from __future__ import annotations

import io

import pytest

from containerlab import engine
from containerlab.checks import progress as p
from containerlab.checks import service
from containerlab.report import CheckProgress

#: What `docker buildx build --progress=plain` prints for a two-step build, in two bursts.
BUILD_START = [
    "#1 [internal] load build definition from Dockerfile",
    "#1 DONE 0.0s",
    "#5 [1/3] FROM docker.io/library/python:3.13-slim",
    "#5 DONE 0.0s",
    "#6 [2/3] COPY requirements.txt .",
    "#6 DONE 0.1s",
    "#7 [3/3] RUN pip install -r requirements.txt",
    "#7 1.234 Collecting fastapi",
]
BUILD_END = ["#7 DONE 41.2s", "#8 exporting to image", "#8 naming to docker.io/library/cl-ex-ex1:latest done"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeHandle:
    def __init__(self, first) -> None:  # type: ignore[no-untyped-def]
        self.shown = [first]

    def update(self, view) -> None:  # type: ignore[no-untyped-def]
        self.shown.append(view)


def test_notebook_display_is_updated_in_place_with_steps_and_elapsed_time():
    """In a notebook, is one display made and then updated with each finished step, the running step and the
    seconds since the check began, ending with the time the whole check took?"""
    clock, handles = FakeClock(), []

    def display(view, *, display_id):  # type: ignore[no-untyped-def]
        assert display_id is True
        handles.append(FakeHandle(view))
        return handles[-1]

    show = CheckProgress(notebook=True, clock=clock, display=display, tick=0)
    show(p.Event(p.PHASE, "Checking ex1", "ex1"))
    show(p.Event(p.PHASE, "Building cl-ex-ex1:latest from ex1.Dockerfile", "ex1"))
    clock.now += 3
    for line in BUILD_START:
        show(p.Event(p.BUILD_OUTPUT, line, "ex1"))
    during = handles[0].shown[-1]
    assert len(handles) == 1, "one display, updated in place"
    assert during.seconds == 3
    assert "[2/3] COPY requirements.txt .  -> DONE 0.1s" in during.lines
    assert during.running == ["[3/3] RUN pip install -r requirements.txt"]
    assert "3 s" in during._repr_html_() and "running: [3/3] RUN pip install" in repr(during)
    assert "Collecting fastapi" not in repr(during), "a step's own output is not shown, only its line"

    clock.now += 41.5
    for line in BUILD_END:
        show(p.Event(p.BUILD_OUTPUT, line, "ex1"))
    show(p.Event(p.FINISHED, "Checked ex1", "ex1"))
    last = handles[0].shown[-1]
    assert "[3/3] RUN pip install -r requirements.txt  -> DONE 41.2s" in last.lines
    assert last.title == "Checked ex1 in 44.5 s" and last.running == []
    assert len(handles) == 1


def test_notebook_timer_refreshes_the_elapsed_time_while_nothing_prints():
    """While a step prints nothing (a long pip install), does the timer thread refresh the display on its own?"""
    clock, handles = FakeClock(), []
    show = CheckProgress(notebook=True, clock=clock,
                         display=lambda view, display_id: handles.append(FakeHandle(view)) or handles[-1], tick=0.05)
    show(p.Event(p.PHASE, "Checking ex1"))
    clock.now += 12
    import time

    deadline = time.monotonic() + 5
    while not any(v.seconds == 12 for v in handles[0].shown):
        assert time.monotonic() < deadline, "the display was not refreshed by the timer"
        time.sleep(0.02)
    show(p.Event(p.INTERRUPTED, "Interrupted: stopped"))
    assert handles[0].shown[-1].state == "interrupted"
    assert show._timer is not None
    show._timer.join(timeout=5)
    assert not show._timer.is_alive(), "the timer thread ends with the check"


def test_terminal_gets_plain_lines_with_elapsed_seconds():
    """In a terminal, is each phase and finished step printed once as a plain line with the elapsed seconds?"""
    clock, out = FakeClock(), io.StringIO()
    show = CheckProgress(notebook=False, clock=clock, out=out, tick=0, quiet_every=0)
    show(p.Event(p.PHASE, "Checking ex1"))
    for line in BUILD_START:
        show(p.Event(p.BUILD_OUTPUT, line))
    clock.now += 41.2
    for line in BUILD_END:
        show(p.Event(p.BUILD_OUTPUT, line))
    show(p.Event(p.FINISHED, "Checked ex1"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[   0.0 s] Checking ex1"
    assert "[  41.2 s] [3/3] RUN pip install -r requirements.txt  -> DONE 41.2s" in lines
    assert lines[-1] == "[  41.2 s] Checked ex1 in 41.2 s"
    assert sum("[2/3] COPY" in line for line in lines) == 1
    assert "\x1b" not in out.getvalue()


def test_build_submission_emits_its_build_lines_as_events(monkeypatch, tmp_path):
    """Does the build of a submission send a phase, every builder line as it arrives, and the build time to the
    callback (the builder faked: no engine needed)?"""
    (tmp_path / "Dockerfile").write_text("FROM python:3.13-slim\n")
    events: list[p.Event] = []

    def fake_build(context, *, echo, **kwargs):  # type: ignore[no-untyped-def]
        for line in BUILD_START + BUILD_END:
            echo(line)
            assert events[-1] == p.Event(p.BUILD_OUTPUT, line), "each line goes out as it arrives"
        return engine.BuildResult(image=engine.ImageInfo(id="sha256:new"), seconds=41.5, log="")

    monkeypatch.setattr(engine, "image", lambda tag: None)
    monkeypatch.setattr(engine, "build", fake_build)
    built = service.build_submission(tmp_path / "Dockerfile", tmp_path, tag="cl-ex-fake:latest",
                                     progress=events.append)
    assert built.image == "cl-ex-fake:latest"
    assert events[0] == p.Event(p.PHASE, "Building cl-ex-fake:latest from Dockerfile")
    assert [e.text for e in events if e.kind == p.BUILD_OUTPUT] == BUILD_START + BUILD_END
    assert events[-1] == p.Event(p.PHASE, "Built cl-ex-fake:latest in 41.5 s")


def test_reporting_sends_the_final_event_and_lets_an_interrupt_go_on():
    """Does a check run end with a finished event, and with an interrupted event when the kernel is interrupted,
    the KeyboardInterrupt still raised?"""
    events: list[p.Event] = []
    with p.reporting(events.append, "ex1") as sink:
        assert sink is not None
    assert [e.kind for e in events] == [p.PHASE, p.FINISHED]
    events.clear()
    with pytest.raises(KeyboardInterrupt):
        with p.reporting(events.append, "ex1"):
            raise KeyboardInterrupt
    assert events[-1].kind == p.INTERRUPTED


def test_no_progress_outside_ipython():
    """Outside IPython (the class grader, tests) is a check silent unless given a callback?"""
    assert p.resolve(None) is None
    sink = print
    assert p.resolve(sink) is sink


def test_no_progress_in_a_worker_thread(monkeypatch):
    """In a thread other than the main one (a grading worker started from a notebook), is a check silent?"""
    import threading

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    found = []
    worker = threading.Thread(target=lambda: found.append(p.resolve(None)))
    worker.start()
    worker.join()
    assert found == [None]


def test_a_check_in_a_notebook_shows_the_live_display_of_report(monkeypatch):
    """In a Jupyter kernel, does a check without a callback get report's CheckProgress, which report set
    when it was imported (the checks never import report)?"""
    import IPython

    from containerlab import report

    class ZMQInteractiveShell:  # the class name is what tells a notebook's kernel from a terminal
        pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    sink = p.resolve(None)
    assert isinstance(sink, report.CheckProgress) and sink.notebook
