"""What a check is doing while it works, as events sent to a callback.

A check emits :class:`Event` objects (a phase begins, the builder printed a
line, the check ended); it never prints. Showing them is the job of
:class:`containerlab.report.CheckProgress`: in a notebook one display updated
in place with the build's steps and the elapsed time, in a terminal plain
lines. When no callback is given, :func:`resolve` picks that display inside
IPython (a student's check cell) and stays silent elsewhere (the class grader,
tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: A phase of the check begins: ``text`` says what it does now ("Building your image ...").
PHASE = "phase"
#: The builder printed a line (``docker buildx build --progress=plain``); shown condensed to steps.
BUILD_OUTPUT = "build-output"
#: The check ended with results.
FINISHED = "finished"
#: The check was interrupted (KeyboardInterrupt); ``text`` says what was cleaned up.
INTERRUPTED = "interrupted"
#: The check stopped with an error that is not the student's (no engine, say).
FAILED = "failed"
#: Kinds after which no more events come.
FINAL = (FINISHED, INTERRUPTED, FAILED)


@dataclass(frozen=True)
class Event:
    """One thing a check reports while it works.

    Attributes:
        kind: :data:`PHASE`, :data:`BUILD_OUTPUT`, :data:`FINISHED`, :data:`INTERRUPTED` or :data:`FAILED`.
        text: what to show (a sentence, or one line of builder output).
        exercise: the exercise being checked, e.g. ``"ex1"``.
    """

    kind: str
    text: str
    exercise: str = ""


Progress = Callable[[Event], None]

#: Makes the live display of a check run in IPython, given whether it runs in a notebook (a Jupyter
#: kernel) rather than a terminal. :mod:`containerlab.report`, where all rendering lives, sets it when it
#: is imported (each check cell imports it); the checks never import it. ``None``: no display.
_live_display: Callable[[bool], Progress] | None = None


def use_live_display(factory: Callable[[bool], Progress] | None) -> None:
    """Set how a check run in IPython without a callback shows its progress (``factory(notebook)``)."""
    global _live_display
    _live_display = factory


def emit(progress: Progress | None, kind: str, text: str, *, exercise: str = "") -> None:
    """Send one event to ``progress``; nothing when there is no callback."""
    if progress is not None:
        progress(Event(kind, text, exercise))


def build_echo(progress: Progress | None, *, exercise: str = "") -> Callable[[str], None] | None:
    """A line handler for :func:`containerlab.engine.build` that forwards each line as a build-output event."""
    if progress is None:
        return None
    return lambda line: progress(Event(BUILD_OUTPUT, line, exercise))


def resolve(progress: Progress | None) -> Progress | None:
    """The callback a check uses: ``progress`` itself, or the live display when running in IPython.

    The live display is the one :func:`use_live_display` set (importing :mod:`containerlab.report` does).

    Inside a Jupyter kernel that is one display updated in place; in a terminal
    IPython plain lines; in plain Python (the class grader, tests) and in any
    thread but the main one (grading workers) nothing.
    """
    if progress is not None:
        return progress
    if threading.current_thread() is not threading.main_thread():
        return None  # a worker of the class grader, even when started from a notebook: no display per student
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or _live_display is None:
        return None
    return _live_display(type(shell).__name__ == "ZMQInteractiveShell")


@contextmanager
def reporting(progress: Progress | None, exercise: str) -> Iterator[Progress | None]:
    """Bracket one check run: yield the callback to pass down, and send its final event.

    On ``KeyboardInterrupt`` (the kernel's stop button) an :data:`INTERRUPTED`
    event is sent and the interrupt goes on; whoever started something on the
    engine has removed it on the way out (``finally`` blocks below this one).
    """
    sink = resolve(progress)
    emit(sink, PHASE, f"Checking {exercise}", exercise=exercise)
    try:
        yield sink
    except KeyboardInterrupt:
        emit(sink, INTERRUPTED, "Interrupted: the build or container this check started was stopped and removed.",
             exercise=exercise)
        raise
    except BaseException as exc:
        emit(sink, FAILED, f"The check stopped: {exc}", exercise=exercise)
        raise
    else:
        emit(sink, FINISHED, f"Checked {exercise}", exercise=exercise)
