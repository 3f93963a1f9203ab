"""Find a student's notebook and read its answer cells the way IPython runs them.

An answer cell of the exercises is a ``%%writefile NAME`` cell: running it in
JupyterLab saves the rest of the cell as the file ``NAME``. The grader never
runs a student's code, so it has to know what such a cell writes without
running it, and know it exactly as IPython does: IPython's own input
transformer (:class:`IPython.core.inputtransformer2.TransformerManager`) turns
the cell into the Python it runs, ``get_ipython().run_cell_magic('writefile',
ARGS, BODY)``, and that call is read with :mod:`ast`. The arguments are parsed
with the magic's own argument parser. So a blank line above the magic, the
alias ``%%file``, ``-a``, a quoted or ``./`` file name count as they do in
JupyterLab, and a cell IPython would not run as the magic (a comment above it,
an indented magic) is not an answer.

Students copy cells (JupyterLab keeps the nbgrader metadata of a copy, so a
``grade_id`` can appear twice: jupyter/nbgrader#1083), delete the answer cell
and paste the answer into a new one, or save the notebook under a browser's
duplicate name. Every code cell that writes the file is a candidate; the one
graded is the one the student ran last (highest ``execution_count``; when
none was run, the last one in the notebook), and the feedback says so in
:attr:`Answer.notes`.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.magics.osm import OSMagics

from .checks.conceptual import NotebookUnreadable

#: IPython's cell magic that writes a file, and its alias
#: (``InteractiveShell.init_magics``: ``register_alias('file', 'writefile', 'cell')``).
WRITEFILE_MAGICS = ("writefile", "file")

#: Names browsers and JupyterLab give a second copy of ``NAME.ipynb``:
#: ``NAME (1).ipynb`` (Chrome, Edge), ``NAME(1).ipynb`` (Firefox), ``NAME-Copy1.ipynb`` (JupyterLab's Duplicate).
_DUPLICATE = r"(?: ?\(\d+\)|-Copy\d+)"


class AnswerMissing(ValueError):
    """No cell of the notebook writes the answer file; the message says what to write."""


@dataclass(frozen=True)
class Answer:
    """What a notebook's answer cell writes.

    Attributes:
        text: what the cell writes to the file (the body under the magic).
        notes: plain sentences for the feedback (another cell was graded, copies were found, ...).
        cell: index of the graded cell among the notebook's cells (0-based).
    """

    text: str
    notes: tuple[str, ...] = ()
    cell: int = -1


@dataclass(frozen=True)
class Write:
    """One code cell that writes the file when IPython runs it.

    Attributes:
        index: the cell's index in the notebook (0-based).
        append: the magic appends (``-a``) instead of overwriting.
        body: what the cell writes.
        execution_count: the ``[n]`` JupyterLab shows, ``None`` when the cell was not run.
        grade_id: the cell's nbgrader ``grade_id`` (``None`` for a cell without nbgrader metadata).
    """

    index: int
    append: bool
    body: str
    execution_count: int | None
    grade_id: str | None


@dataclass(frozen=True)
class Resolution:
    """Which cells write a file, and which one is graded.

    Attributes:
        answer: the graded text and its notes.
        chosen: the cell graded (its text is ``answer.text`` unless it appends to earlier cells).
        writes: every cell that writes the file, in notebook order.
        used: the cells whose bodies make up ``answer.text`` (more than one when ``-a`` cells append).
    """

    answer: Answer
    chosen: Write
    writes: tuple[Write, ...]
    used: tuple[Write, ...]


def cell_magic(source: str) -> tuple[str, str, str] | None:
    """Return ``(magic, line, body)`` when IPython runs ``source`` as one cell magic, else ``None``.

    Uses IPython's own transformer, so the rules are IPython's: only blank lines
    may come before ``%%magic``, and it must start the line.
    """
    try:
        code = TransformerManager().transform_cell(source)
        tree = ast.parse(code)
    except Exception:  # noqa: BLE001  (a cell IPython cannot transform is not a magic)
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_cell_magic" and isinstance(call.func.value, ast.Call)
            and getattr(call.func.value.func, "id", "") == "get_ipython" and len(call.args) == 3
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)):
        return None
    magic, line, body = (a.value for a in call.args)  # type: ignore[union-attr]
    return magic, line, body


def writefile_target(line: str) -> tuple[str, bool]:
    """Parse the arguments of ``%%writefile`` as IPython does: ``(file name, append)``.

    Raises:
        ValueError: IPython would refuse the arguments (the message is IPython's reason).
    """
    try:
        args = magic_arguments.parse_argstring(OSMagics.writefile, line)
    except (UsageError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    filename = args.filename
    if re.match(r'^(\'.*\')|(".*")$', filename):  # the quote rule of OSMagics.writefile
        filename = filename[1:-1]
    return os.path.expanduser(filename), bool(args.append)


def written_name(cell_type: str, source: str) -> str | None:
    """The file a cell writes when IPython runs it (a ``%%writefile NAME`` code cell), else ``None``.

    Args:
        cell_type: the cell's type (``"code"``, ``"markdown"``).
        source: the cell's text.
    """
    magic = cell_magic(source) if cell_type == "code" else None
    if not magic or magic[0] not in WRITEFILE_MAGICS:
        return None
    try:
        return writefile_target(magic[1])[0]
    except ValueError:
        return None


def answer_cells(notebook: Path) -> dict[str, str]:
    """The answer cells of a source notebook: file name -> ``grade_id`` of each cell that writes one.

    Args:
        notebook: the instructor's source notebook (``solutions/ch14/ex1-....ipynb``).

    Returns:
        In notebook order, every cell with a ``grade_id`` that is a ``%%writefile`` cell.

    Raises:
        NotebookUnreadable: the file is missing or is not notebook JSON.
    """
    found = {}
    for cell in load_cells(notebook):
        grade_id = cell_grade_id(cell)
        filename = written_name(str(cell.get("cell_type", "")), cell_text(cell)) if grade_id else None
        if filename:
            found[filename] = grade_id
    return found


def _same_file(written: str, filename: str) -> bool:
    return os.path.normpath(written) == os.path.normpath(filename)


def cell_text(cell: dict) -> str:
    """A cell's source as one string (``.ipynb`` files may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_grade_id(cell: dict) -> str | None:
    """A cell's nbgrader ``grade_id``, ``None`` for a cell without nbgrader metadata."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return meta.get("grade_id") if isinstance(meta, dict) else None


def writes(cells: list[dict], filename: str) -> list[Write]:
    """Every code cell that writes ``filename`` when IPython runs it, in notebook order."""
    found = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        magic = cell_magic(cell_text(cell))
        if magic is None or magic[0] not in WRITEFILE_MAGICS:
            continue
        try:
            target, append = writefile_target(magic[1])
        except ValueError:
            continue
        if _same_file(target, filename):
            count = cell.get("execution_count")
            found.append(Write(index, append, magic[2], count if isinstance(count, int) else None,
                               cell_grade_id(cell)))
    return found


def run_order(found: list[Write]) -> list[Write]:
    """The cells in the order the student last ran them: cells not run first (notebook order),
    then run cells by ``execution_count``."""
    return sorted(found, key=lambda w: (w.execution_count is not None, w.execution_count or 0, w.index))


def describe_cell(write: Write) -> str:
    """``cell 5 (run as [7])``: a cell as the student finds it in JupyterLab."""
    ran = f"run as [{write.execution_count}]" if write.execution_count is not None else "not run"
    return f"cell {write.index + 1} ({ran})"


def why_not_an_answer(source: str, filename: str) -> str:
    """Say, in a sentence fragment, why IPython would not write ``filename`` from this cell."""
    if not source.strip():
        return "is empty"
    magic = cell_magic(source)
    if magic is None:
        for number, line in enumerate(source.splitlines(), start=1):
            if line.lstrip().startswith("%%"):
                if number == 1 or not any(x.strip() for x in source.splitlines()[:number - 1]):
                    return (f"has `{line.strip()}` indented; IPython runs a cell magic only when `%%` "
                            "starts the line")
                return (f"has `{line.strip()}` on line {number}, but IPython runs a cell magic only on the "
                        "cell's first line (only blank lines may come before it)")
        return f"does not start with `%%writefile {filename}`"
    name, line, _ = magic
    if name not in WRITEFILE_MAGICS:
        return f"starts with `%%{name}`, not `%%writefile`"
    try:
        target, _ = writefile_target(line)
    except ValueError as exc:
        return f"starts with `%%{name} {line}`, which IPython refuses ({exc})"
    return f"writes `{target}`, not `{filename}`"


def resolve(cells: list[dict], filename: str, *, grade_id: str, notebook: str = "the notebook") -> Resolution:
    """Find the cells that write ``filename`` and the one to grade.

    Args:
        cells: the notebook's cells (``.ipynb`` JSON).
        filename: the file the answer cell writes, e.g. ``"ex1.Dockerfile"``.
        grade_id: nbgrader id of the answer cell, e.g. ``"ex1-dockerfile"``.
        notebook: the notebook's name, for messages.

    Returns:
        The graded text with its notes, and the cells involved.

    Raises:
        AnswerMissing: no cell writes the file (the message says why and what to write).
    """
    found = writes(cells, filename)
    expected = f"`%%writefile {filename}`"
    if not found:
        graded = [c for c in cells if isinstance(c, dict) and cell_grade_id(c) == grade_id]
        if graded:
            reason = why_not_an_answer(cell_text(graded[-1]), filename)
            raise AnswerMissing(
                f"The answer cell of {notebook} {reason}, so running it does not write {filename}. Make "
                f"{expected} the cell's first line, put your answer under it, run the cell and save "
                "the notebook.")
        raise AnswerMissing(
            f"{notebook} has no answer cell for {filename} (it was deleted) and no other cell writes it. Add a "
            f"code cell whose first line is {expected}, put your answer under it, run the cell and save "
            "the notebook.")
    ordered = run_order(found)
    chosen = ordered[-1]
    used = [chosen]
    for earlier in reversed(ordered[:-1]):
        if not used[0].append:
            break
        used.insert(0, earlier)
    text = "".join(w.body for w in used)

    notes = []
    others = [w for w in found if w not in used]
    if others:
        why = ("the one you ran last" if chosen.execution_count is not None
               else "none of them was run, so the last one in the notebook")
        notes.append(f"{len(found)} cells of {notebook} write {filename}; graded {describe_cell(chosen)}, {why}; "
                     f"not graded: {', '.join(describe_cell(w) for w in others)}. Keep one answer cell and delete "
                     "the copies.")
    if len(used) > 1:
        this = describe_cell(chosen)
        notes.append(f"{this[0].upper()}{this[1:]} appends (-a) to {filename}; graded the "
                     f"file as the cells you ran wrote it: {', '.join(describe_cell(w) for w in used)}.")
    if all(w.grade_id != grade_id for w in used):
        present = any(isinstance(c, dict) and cell_grade_id(c) == grade_id for c in cells)
        where = "is not the cell you ran last" if present else "was deleted"
        notes.append(f"The answer for {filename} was taken from {describe_cell(chosen)}, a cell you added: the "
                     f"notebook's answer cell {where}. Next time keep your answer in the original answer cell.")
    return Resolution(Answer(text, tuple(notes), chosen.index), chosen, tuple(found), tuple(used))


def copy_run_last(cells: list[dict], grade_id: str) -> tuple[int | None, tuple[int, ...]]:
    """Among the code cells carrying ``grade_id`` (copies keep it), the one the student ran last.

    Returns:
        The index of that cell (``None`` when no code cell has the id) and the indices of all of them.
    """
    copies = [i for i, c in enumerate(cells) if isinstance(c, dict) and c.get("cell_type") == "code"
              and cell_grade_id(c) == grade_id]
    if not copies:
        return None, ()
    def order(i: int) -> tuple[bool, int, int]:
        count = cells[i].get("execution_count")
        return isinstance(count, int), count if isinstance(count, int) else 0, i
    return max(copies, key=order), tuple(copies)


def cell_source(notebook: Path, grade_id: str) -> tuple[str, tuple[str, ...]]:
    """The source of the copy of code cell ``grade_id`` run last, and a note when there are copies.

    Returns:
        The source (``""`` when no code cell has that id) and notes for the feedback.

    Raises:
        NotebookUnreadable: the notebook is missing or not valid JSON.
    """
    cells = load_cells(Path(notebook))
    chosen, copies = copy_run_last(cells, grade_id)
    if chosen is None:
        return "", ()
    notes = ()
    if len(copies) > 1:
        count = cells[chosen].get("execution_count")
        ran = f"run as [{count}]" if isinstance(count, int) else "none was run, so the last one"
        notes = (f"The cell {grade_id} appears {len(copies)} times in {Path(notebook).name}; graded cell "
                 f"{chosen + 1} ({ran}). Keep one and delete the copies.",)
    return cell_text(cells[chosen]), notes


def load_cells(notebook: Path) -> list[dict]:
    """Read a notebook's cells from its ``.ipynb`` JSON.

    Raises:
        NotebookUnreadable: the file is missing or is not notebook JSON (the message names the file).
    """
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotebookUnreadable(f"There is no notebook {notebook.name} in the folder "
                                 f"{notebook.parent.name}/.") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotebookUnreadable(
            f"{notebook.name} is not a valid notebook file (not JSON: {exc}). Open it in JupyterLab; if it "
            "does not open, restore it from your last saved copy.") from exc
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise NotebookUnreadable(f"{notebook.name} is not a valid notebook file (it has no list of cells).")
    return cells


def written_file(notebook: Path, filename: str, *, grade_id: str) -> Answer:
    """Return what the notebook's answer cell for ``filename`` writes, as IPython would write it.

    Args:
        notebook: the saved ``.ipynb`` file.
        filename: the file the answer cell writes, e.g. ``"ex1.Dockerfile"``.
        grade_id: nbgrader id of the answer cell, e.g. ``"ex1-dockerfile"``.

    Returns:
        The text the graded cell writes, and notes for the feedback.

    Raises:
        NotebookUnreadable: the notebook is missing or not valid JSON.
        AnswerMissing: no cell writes the file (the message says what to write).
    """
    notebook = Path(notebook)
    return resolve(load_cells(notebook), filename, grade_id=grade_id, notebook=notebook.name).answer


def find_notebook(folder: Path, name: str) -> tuple[Path, tuple[str, ...]]:
    """Find the notebook ``name`` in a student's folder, also under a duplicate name.

    A browser that downloads a notebook twice saves ``NAME (1).ipynb``; JupyterLab's
    Duplicate makes ``NAME-Copy1.ipynb``. The exact name wins when it exists (it is
    what nbgrader grades); otherwise the most recently saved duplicate is taken.

    Args:
        folder: the student's folder of notebooks.
        name: the notebook's file name, e.g. ``"ex1-write-a-dockerfile.ipynb"``.

    Returns:
        The path to read (``folder / name`` when nothing matches, so that reading it says the
        notebook is missing), and notes for the feedback.
    """
    folder = Path(folder)
    exact = folder / name
    stem, suffix = os.path.splitext(name)
    pattern = re.compile(rf"^{re.escape(stem)}{_DUPLICATE}{re.escape(suffix)}$")
    try:
        duplicates = sorted(p for p in folder.iterdir() if p.is_file() and pattern.match(p.name))
    except OSError:
        duplicates = []
    if exact.is_file():
        if duplicates:
            return exact, (f"Graded {name}; also found {', '.join(p.name for p in duplicates)}, which "
                           "was not graded (only the original name is).",)
        return exact, ()
    if not duplicates:
        return exact, ()
    taken = max(duplicates, key=lambda p: (p.stat().st_mtime, p.name))
    note = f"There is no {name}; graded {taken.name} instead (a copy under a duplicate name)"
    if len(duplicates) > 1:
        others = ", ".join(p.name for p in duplicates if p != taken)
        note += f", the most recently saved of {len(duplicates)} copies (not graded: {others})"
    return taken, (note + f". Rename your notebook to {name} before you submit.",)
