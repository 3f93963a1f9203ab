"""Free-text answers (exercises 4 and 5, and exercise 3's explanation), graded by a person against the rubric.

The automatic part only checks that an answer is there: the answer cell no
longer holds nbgrader's placeholder and has a minimum number of words. The
answer is read from the saved notebook file (``.ipynb`` JSON), found by the
nbgrader ``grade_id`` of its cell; the points a person gives are those the
source notebook's answer cell carries. :func:`grade` grades an exercise that
is only a free-text answer (``ex4.py``, ``ex5.py`` declare theirs with it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from . import CheckResult, CheckResults, results

if TYPE_CHECKING:
    from .submission import Submission

#: What nbgrader puts in a free-text answer cell of the student version.
TEXT_PLACEHOLDER = "YOUR ANSWER HERE"
#: Fewer words than this is not an answer yet.
MIN_WORDS = 25


class NotebookUnreadable(ValueError):
    """The notebook file is missing or is not a valid notebook (JSON)."""


def read_cell(notebook: str | Path, grade_id: str) -> str:
    """Return the source of the cell whose nbgrader ``grade_id`` is ``grade_id``.

    Args:
        notebook: path of the ``.ipynb`` file.
        grade_id: the cell's nbgrader id, e.g. ``"ex4-answer"``.

    Returns:
        The cell's text; ``""`` when no cell has that id.

    Raises:
        NotebookUnreadable: the file is missing or not valid notebook JSON (message names the file).
    """
    source = _cell(notebook, grade_id).get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cell(notebook: str | Path, grade_id: str) -> dict:
    """The cell whose nbgrader ``grade_id`` is ``grade_id`` (``{}`` when none has it).

    Raises:
        NotebookUnreadable: the file is missing or not valid notebook JSON (message names the file).
    """
    path = Path(notebook)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotebookUnreadable(f"There is no notebook {path.name} in the folder {path.parent.name}/.") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotebookUnreadable(
            f"{path.name} is not a valid notebook file (not JSON: {exc}). Open it in JupyterLab; if it "
            "does not open, restore it from your last saved copy."
        ) from exc
    for cell in data.get("cells", []) if isinstance(data, dict) else []:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == grade_id:
            return cell
    return {}


def cell_points(notebook: str | Path, grade_id: str) -> float:
    """The points nbgrader's metadata gives the cell ``grade_id`` (0 when it has none).

    Raises:
        NotebookUnreadable: the file is missing or not valid notebook JSON.
    """
    return float(_cell(notebook, grade_id).get("metadata", {}).get("nbgrader", {}).get("points", 0))


def check(notebook: str | Path, grade_id: str, *, exercise: str, manual_points: float) -> CheckResults:
    """Check that a free-text answer is present (worth no automatic points).

    Args:
        notebook: the saved notebook file.
        grade_id: nbgrader id of the answer cell.
        exercise: the exercise's key (``"ex4"``).
        manual_points: the points a person gives with the rubric (named in the message).

    Returns:
        One ``answer-present`` result.
    """
    description = "An answer is written in the answer cell"
    try:
        text = read_cell(notebook, grade_id)
    except NotebookUnreadable as exc:
        return results(exercise, [CheckResult("answer-present", description, False, 0, str(exc),
                                              "Keep the notebook's original name and save it from "
                                              "JupyterLab (File > Save Notebook).")])
    words = len(text.replace(TEXT_PLACEHOLDER, "").split())
    if not text.strip() or TEXT_PLACEHOLDER in text:
        result = CheckResult("answer-present", description, False, 0,
                             "The answer cell still holds the placeholder (or the notebook was not saved).",
                             f"Replace {TEXT_PLACEHOLDER} with your answer, save the notebook, run this again.")
    elif words < MIN_WORDS:
        result = CheckResult("answer-present", description, False, 0, f"The answer has {words} words.",
                             f"Answer each part of the question in full sentences (at least {MIN_WORDS} words).")
    else:
        result = CheckResult("answer-present", description, True, 0,
                             f"{words} words; a person grades it against the rubric ({manual_points:g} points).")
    return results(exercise, [result])


def answered(submission: Submission, grade_id: str) -> CheckResults:
    """:func:`check` on a submission's answer cell ``grade_id``, worth the points its source notebook's cell gives."""
    return check(submission.notebook, grade_id, exercise=submission.exercise.key,
                 manual_points=cell_points(submission.exercise.source, grade_id))


def grade(submission: Submission) -> CheckResults:
    """Grade an exercise that is one free-text answer, the cell ``<key>-answer``: is there an answer."""
    return answered(submission, f"{submission.exercise.key}-answer").noted(submission.notes)


def unreadable(checked: CheckResults) -> str:
    """The problem :func:`grade`'s results record: why the notebook could not be read, else ``""``."""
    first = checked.results[0]
    return first.message if "not a valid notebook" in first.message or "There is no notebook" in first.message else ""
