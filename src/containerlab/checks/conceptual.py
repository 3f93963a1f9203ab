"""Exercises 4 and 5: free-text answers, graded by a person against the rubric.

The automatic part only checks that an answer is there: the answer cell no
longer holds nbgrader's placeholder and has a minimum number of words. The
answer is read from the saved notebook file (``.ipynb`` JSON), found by the
nbgrader ``grade_id`` of its cell.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import CheckResult, CheckResults, results

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
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return ""


def check(notebook: str | Path, grade_id: str, *, exercise: str, manual_points: float) -> CheckResults:
    """Check that a free-text answer is present (worth no automatic points).

    Args:
        notebook: the saved notebook file.
        grade_id: nbgrader id of the answer cell.
        exercise: ``"ex4"`` or ``"ex5"``.
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
