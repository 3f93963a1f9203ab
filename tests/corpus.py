"""The graded corpus: realistic submissions, each with the points and messages it must get.

A case is one YAML file under ``tests/corpus/<group>/``, named by its outcome
(``passes_file_alias_magic.yaml``, ``fails_named_volume_for_data.yaml``). It
names the exercise it is about, says in one line why it is there, lists edits
that turn the released notebook (``exercises/ch14/``) into the submission, and
gives what grading must find:

.. code-block:: yaml

    exercise: ex1
    why: IPython's alias of %%writefile; runs in JupyterLab
    edits:
      - set: ex1-dockerfile          # the source of the cell with this grade_id
        source: |
          %%file ex1.Dockerfile
          ...
    expect:
      points: 10                     # automatic points of this exercise
      phrases: ["..."]               # key phrases the student's feedback must hold

Edit kinds, applied in order (each may name ``notebook: exN`` to edit another
notebook than the case's own):

- ``{solve: GRADE_ID | all}``: the official answer from ``solutions/ch14``;
- ``{set: GRADE_ID, source: TEXT}``;
- ``{duplicate: GRADE_ID, source: TEXT, execution_count: N}``: a copy of the cell
  (metadata kept, as JupyterLab copies it) placed after it;
- ``{append_after: GRADE_ID, source: TEXT, execution_count: N}``: a new cell
  without nbgrader metadata;
- ``{delete: GRADE_ID}``; ``{execution_count: GRADE_ID, value: N}``;
- ``{rename: NEW_FILE_NAME}``: the notebook saved under another name;
- ``{file: PATH, source: TEXT}`` or ``{file: PATH, size_mb: N}``: a file in the
  student's folder (``service/.dockerignore``, a huge file in the context);
- ``{raw: TEXT}``: the notebook file's whole content (not JSON, say).

Exercise 2 compares with the student's exercise-1 image, so an ex2 case gets
exercise 1 answered with the official solution unless one of its edits names
``notebook: ex1``. Cases marked ``autograde: true`` are also graded by
``nbgrader autograde``, which must give the same points. Cases marked
``graded_twice: true`` are graded a second time by ``containerlab grade``, as an
instructor who grades the class again, and must get the same grade.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from containerlab import exercises

CORPUS = Path(__file__).parent / "corpus"
RELEASE = exercises.EXERCISES_DIR / exercises.ASSIGNMENT
SOURCE = exercises.SOLUTIONS_DIR / exercises.ASSIGNMENT
#: exercise key -> notebook stem
NOTEBOOKS = {p.stem.split("-", 1)[0]: p.stem for p in sorted(RELEASE.glob("ex*.ipynb"))}
EDIT_KINDS = {"solve", "set", "duplicate", "append_after", "delete", "execution_count", "rename", "file", "raw"}
_MARKER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*\n", re.MULTILINE)


class CaseError(ValueError):
    """A case file is not of the corpus's form; the message names the file and the fault."""


@dataclass(frozen=True)
class Case:
    """One submission of the corpus.

    Attributes:
        path: the case file.
        exercise: the exercise it is about (``"ex1"`` ...).
        why: one line on what it is.
        edits: the edits, in order.
        points: the automatic points it must get for ``exercise``.
        phrases: key phrases its feedback must hold.
        autograde: also grade it with ``nbgrader autograde``.
        twice: grade it a second time with ``containerlab grade``.
    """

    path: Path
    exercise: str
    why: str
    edits: tuple[dict, ...]
    points: float
    phrases: tuple[str, ...] = ()
    autograde: bool = False
    twice: bool = False

    @property
    def id(self) -> str:
        """The student id the case is graded under: ``<group>--<outcome>``."""
        return f"{self.path.parent.name}--{self.path.stem}"

    @property
    def expects_pass(self) -> bool:
        """Whether the name says the submission is correct (``passes_...``)."""
        return self.path.stem.startswith("passes_")


def load(path: Path) -> Case:
    """Read one case file.

    Raises:
        CaseError: a key is missing, an edit is of no known kind, or the name is not passes_/fails_.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = path.relative_to(CORPUS)
    if not isinstance(data, dict):
        raise CaseError(f"{where}: not a YAML mapping")
    for key in ("exercise", "why", "expect"):
        if key not in data:
            raise CaseError(f"{where}: no {key!r}")
    if data["exercise"] not in NOTEBOOKS:
        raise CaseError(f"{where}: exercise {data['exercise']!r} is none of {sorted(NOTEBOOKS)}")
    if not path.stem.startswith(("passes_", "fails_")):
        raise CaseError(f"{where}: the name must say the outcome (passes_... or fails_...)")
    edits = tuple(data.get("edits") or ())
    for edit in edits:
        kinds = set(edit) & EDIT_KINDS
        if len(kinds) > 1:  # a copy or a new cell may say how it was run
            kinds -= {"execution_count"}
        if len(kinds) != 1:
            raise CaseError(f"{where}: edit {edit} must have exactly one of {sorted(EDIT_KINDS)}")
    expect = data["expect"]
    if "points" not in expect:
        raise CaseError(f"{where}: expect has no points")
    return Case(path, data["exercise"], str(data["why"]), edits, float(expect["points"]),
                tuple(expect.get("phrases") or ()), bool(data.get("autograde", False)),
                bool(data.get("graded_twice", False)))


def load_all() -> list[Case]:
    """Every case of the corpus, sorted by id."""
    return sorted((load(p) for p in CORPUS.glob("*/*.yaml")), key=lambda c: c.id)


def case(case_id: str) -> Case:
    """The case of id ``case_id`` (``<group>--<outcome>``).

    Raises:
        KeyError: no case has that id.
    """
    group, _, outcome = case_id.partition("--")
    path = CORPUS / group / f"{outcome}.yaml"
    if not path.exists():
        raise KeyError(case_id)
    return load(path)


def solution_source(stem: str, grade_id: str) -> str:
    """The official answer of an answer cell: the source notebook's cell without nbgrader's markers."""
    nb = nbformat.read(SOURCE / f"{stem}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return _MARKER.sub("", cell.source)
    raise CaseError(f"{stem} has no cell {grade_id}")


def _index(nb: nbformat.NotebookNode, grade_id: str, where: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise CaseError(f"{where}: the notebook has no cell {grade_id}")


def _code_cell(source: str, execution_count: int | None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.execution_count = execution_count
    return cell


def materialise(case: Case, folder: Path) -> None:
    """Write the case as a student's submission folder (nbgrader's ``<student>/ch14`` contents).

    The folder holds the released copy of the service, as a student's does, and
    the notebooks the case touches.

    Args:
        case: the case.
        folder: the student's assignment folder; made, must not exist.
    """
    folder.mkdir(parents=True)
    shutil.copytree(RELEASE / "service", folder / "service")
    targets = {e.get("notebook", case.exercise) for e in case.edits if not {"file"} & set(e)}
    wanted = {case.exercise} | targets
    if case.exercise == "ex2" and "ex1" not in targets:
        wanted.add("ex1")
    notebooks = {key: nbformat.read(RELEASE / f"{NOTEBOOKS[key]}.ipynb", as_version=4) for key in wanted}
    names = {key: f"{NOTEBOOKS[key]}.ipynb" for key in wanted}
    raw: dict[str, str] = {}
    if case.exercise == "ex2" and "ex1" not in targets:
        _solve_all(notebooks["ex1"], "ex1")
    where = str(case.path.relative_to(CORPUS))
    for edit in case.edits:
        if "file" in edit:
            path = folder / edit["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if "size_mb" in edit:
                with path.open("wb") as handle:
                    handle.truncate(int(edit["size_mb"] * 1024**2))
            else:
                path.write_text(edit["source"], encoding="utf-8")
            continue
        key = edit.get("notebook", case.exercise)
        nb = notebooks[key]
        if "solve" in edit:
            if edit["solve"] == "all":
                _solve_all(nb, key)
            else:
                nb.cells[_index(nb, edit["solve"], where)].source = solution_source(NOTEBOOKS[key], edit["solve"])
        elif "set" in edit:
            nb.cells[_index(nb, edit["set"], where)].source = edit["source"]
        elif "duplicate" in edit:
            i = _index(nb, edit["duplicate"], where)
            copy = nbformat.from_dict(nb.cells[i].copy())
            copy.source = edit["source"]
            copy.execution_count = edit.get("execution_count")
            copy.id = uuid.uuid4().hex[:8]
            nb.cells.insert(i + 1, copy)
        elif "append_after" in edit:
            i = _index(nb, edit["append_after"], where)
            nb.cells.insert(i + 1, _code_cell(edit["source"], edit.get("execution_count")))
        elif "delete" in edit:
            del nb.cells[_index(nb, edit["delete"], where)]
        elif "execution_count" in edit:
            nb.cells[_index(nb, edit["execution_count"], where)].execution_count = edit["value"]
        elif "rename" in edit:
            names[key] = edit["rename"]
        elif "raw" in edit:
            raw[key] = edit["raw"]
    for key, nb in notebooks.items():
        target = folder / names[key]
        if key in raw:
            target.write_text(raw[key], encoding="utf-8")
        else:
            nbformat.write(nb, target, version=4)


def _solve_all(nb: nbformat.NotebookNode, key: str) -> None:
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = solution_source(NOTEBOOKS[key], meta["grade_id"])


def max_points(exercise: str) -> float:
    """The automatic points an exercise gives (0 for the free-text ones), as the grader counts them."""
    from containerlab.checks import registry

    return float(registry.exercise(exercise).max_points)


def dockerfile(case: Case) -> str | None:
    """The Dockerfile the case's own exercise cell writes (the cell's text after ``%%writefile``), or None."""
    for edit in case.edits:
        source = str(edit.get("source", ""))
        first, _, rest = source.partition("\n")
        if "notebook" not in edit and first.startswith(("%%writefile", "%%file")) and "Dockerfile" in first:
            return rest
    return None


def _instructions(text: str) -> list[str]:
    """A Dockerfile's words without its comments: two files that differ only in comments or layout build alike."""
    return re.sub(r"#.*", "", text).split()


def fixture_twins(exercise: str, fixtures: Path) -> dict[str, str]:
    """Check-level fixtures (``fixtures/<name>.dockerfile``) that a corpus case of ``exercise`` submits as is.

    The corpus's grading builds and runs such a Dockerfile anyway, so the fixture's expectations are
    checked on that grading (tests/test_corpus.py) instead of by a second build and run of their own.

    Returns:
        fixture name -> id of the first case (by id) whose exercise cell writes the same Dockerfile,
        comments and layout aside.
    """
    cases = [(case.id, dockerfile(case)) for case in load_all() if case.exercise == exercise]
    twins: dict[str, str] = {}
    for path in sorted(fixtures.glob("*.dockerfile")):
        words = _instructions(path.read_text(encoding="utf-8"))
        found = [case_id for case_id, text in cases if text is not None and _instructions(text) == words]
        if found:
            twins[path.stem] = found[0]
    return twins


def checks_in_feedback(text: str, exercise: str, descriptions: dict[str, str]) -> tuple[set[str], str]:
    """The checks of ``exercise`` that a feedback file marks as failed, and that exercise's part of it.

    Args:
        text: a feedback file (``grades/feedback/<student>.txt``).
        exercise: ``"ex1"`` ...
        descriptions: check name -> description (the check module's ``DESCRIPTIONS``); the feedback
            shows descriptions, hidden ones with `` (hidden test)`` after them.

    Raises:
        KeyError: the feedback has no part for the exercise, or names a check ``descriptions`` does not.
    """
    part = text.split(f"Checks for {exercise}\n", 1)[1].split("\nScore:", 1)[0]
    names = {description: name for name, description in descriptions.items()}
    failed = set()
    for line in part.splitlines():
        found = re.match(r"\[FAIL\] \S+\s+(.*)$", line)
        if found:
            failed.add(names[found.group(1).removesuffix(" (hidden test)")])
    return failed, part
