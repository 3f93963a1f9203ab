"""nbgrader's side of :mod:`containerlab.answers`: autograde runs the answer the student ran last.

``nbgrader autograde`` runs every cell of a submission in notebook order. When a
student has copied an answer cell (JupyterLab keeps the nbgrader metadata of a
copy: jupyter/nbgrader#1083), nbgrader's ``DeduplicateIds`` strips the metadata
of all but the last copy, and all copies still run, so the file the checks read
is whatever the last copy in the notebook writes, not what the student ran
last. :class:`LastRunAnswers` settles this before nbgrader clears the outputs
(and with them the execution counts): for every file an answer cell of the
source notebook writes (``%%writefile NAME``), the cell
:func:`containerlab.answers.resolve` grades stays, the other cells that write
the file are turned into comments that say why, so ``nbgrader autograde`` and
``containerlab grade`` grade the same text. Copies also lose their nbgrader
metadata (:func:`deduplicate`): nbgrader 0.9 otherwise fails the whole
notebook on a repeated ``grade_id``.

Configured in ``nbgrader_config.py`` as the first of ``Autograde.sanitize_preprocessors``.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

from . import answers


def answer_files(source_cells) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """``(file name, grade_id)`` of each source cell that is a ``%%writefile`` cell, in notebook order.

    Args:
        source_cells: objects with ``name`` (the grade_id), ``cell_type`` and ``source``
            (nbgrader's ``SourceCell`` rows, or anything alike).
    """
    return [(filename, cell.name) for cell in source_cells
            if (filename := answers.written_name(cell.cell_type, cell.source))]


def _commented(source: str, why: str) -> str:
    lines = source.splitlines() or [""]
    return "\n".join([f"# {why}", *(f"# {line}" if line else "#" for line in lines)]) + "\n"


def settle(cells: list, filename: str, grade_id: str, *, notebook: str = "the notebook") -> list[str]:
    """Keep only the graded cell that writes ``filename``; comment out the others (in place).

    When the graded cell comes after locked (instructor) code cells that follow the first
    cell writing the file, such as the check cell, its text is moved to that first cell,
    so that it is written before the checks run, as it was when the student ran it.

    Returns:
        The notes of :func:`answers.resolve` (empty when nothing had to be settled or no cell writes the file).
    """
    try:
        resolution = answers.resolve(cells, filename, grade_id=grade_id, notebook=notebook)
    except answers.AnswerMissing:
        return []
    if len(resolution.writes) == 1:
        return list(resolution.answer.notes)
    chosen, first = resolution.chosen, resolution.writes[0]
    between = cells[first.index + 1:chosen.index]
    locked = [c for c in between if c.get("cell_type") == "code"
              and c.get("metadata", {}).get("nbgrader", {}).get("locked")]
    text = (answers.cell_text(cells[chosen.index]) if len(resolution.used) == 1
            else f"%%writefile {filename}\n{resolution.answer.text}")
    keep = chosen if not locked and len(resolution.used) == 1 else first
    why = (f"Not run by the grader: the answer for {filename} is the cell you ran last "
           f"({answers.describe_cell(chosen)}).")
    for write in resolution.writes:
        cell = cells[write.index]
        if write is keep:
            if keep is not chosen:
                cell["source"] = text
            continue
        cell["source"] = _commented(answers.cell_text(cell), why)
        if keep.grade_id is not None and write.grade_id == keep.grade_id:
            del cell["metadata"]["nbgrader"]  # one cell keeps the grade_id (see deduplicate)
    return list(resolution.answer.notes)


def settle_copies(cells: list, grade_id: str) -> bool:
    """Comment out the copies of code cell ``grade_id`` except the one run last (in place).

    Returns:
        Whether there were copies.
    """
    chosen, copies = answers.copy_run_last(cells, grade_id)
    if len(copies) < 2:
        return False
    for index in copies:
        if index != chosen:
            cell = cells[index]
            cell["source"] = _commented(answers.cell_text(cell), f"Not run by the grader: a copy of {grade_id}; "
                                        f"the copy you ran last is cell {chosen + 1}.")
            del cell["metadata"]["nbgrader"]
    return True


def deduplicate(cells: list) -> list[str]:
    """Leave each ``grade_id`` on one cell, the last one, and take the nbgrader metadata off the others.

    nbgrader 0.9's ``DeduplicateIds`` keeps the last copy too, but sets the others'
    metadata to ``{}``, which its ``CheckCellMetadata`` then rejects as an old metadata
    format, failing the whole notebook (jupyter/nbgrader#1083). Without the key the
    copies are plain cells.

    Returns:
        The grade_ids that appeared more than once.
    """
    last: dict[str, int] = {}
    for index, cell in enumerate(cells):
        grade_id = answers.cell_grade_id(cell)
        if grade_id is not None:
            last[grade_id] = index
    repeated = set()
    for index, cell in enumerate(cells):
        grade_id = answers.cell_grade_id(cell)
        if grade_id is not None and last[grade_id] != index:
            del cell["metadata"]["nbgrader"]
            repeated.add(grade_id)
    return sorted(repeated)


class LastRunAnswers(NbGraderPreprocessor):
    """Make autograde run the answer cell the student ran last, as ``containerlab grade`` grades it."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        try:
            with Gradebook(info["db_url"]) as gb:
                source = gb.find_notebook(info["notebook"], info["assignment"])
                targets = answer_files(source.source_cells)
                solutions = [c.name for c in source.solution_cells]
        except MissingEntry:
            return nb, resources
        for filename, grade_id in targets:
            for note in settle(nb.cells, filename, grade_id, notebook=f"{info['notebook']}.ipynb"):
                self.log.warning("%s", note)
        written = {grade_id for _, grade_id in targets}
        for grade_id in solutions:
            if grade_id not in written and settle_copies(nb.cells, grade_id):
                self.log.warning("Cell %s was copied; autograde runs the copy run last.", grade_id)
        for grade_id in deduplicate(nb.cells):
            self.log.warning("Cell %s was copied; only the last copy keeps its nbgrader metadata.", grade_id)
        return nb, resources
