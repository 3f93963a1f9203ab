"""One gradebook for the class: the CSV, merged result folders, and nbgrader's gradebook database.

The class grader writes one result file per student, ``OUT/results/<key>.json``
(:mod:`containerlab.resultfiles` reads and writes them). This module turns result
files into the class's gradebooks:

- :func:`write_csv`: ``gradebook.csv``, automatic points per exercise;
- :func:`load_results`, :func:`newest_results` and :func:`merge`: the result folders of one or many
  machines (shards) into one set of grades;
- :func:`to_nbgrader`: the automatic points, per graded cell, into nbgrader's
  gradebook database, the one formgrader and ``nbgrader export`` read, so that
  a person's manual points and the automatic ones add up in one place, and
  :func:`manual_points`: those manual points read back (for :mod:`containerlab.lms`);
- :func:`write_nbgrader_feedback`: the feedback pages where nbgrader's
  ``release_feedback`` picks them up.

Which check gives the points of which nbgrader cell is read from the graded
cells of the source notebooks (``results.require("builds")`` in the cell
``ex1-test-builds``), never from a table kept by hand.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import exercises
from .checks import registry
from .checks.submission import ASSIGNMENT, SOLUTIONS
from .grading import StudentGrade
from .resultfiles import ResultFile, ResultFileInvalid, ResultsNotFound, read_result, result_files, write_atomically

class GradebookMismatch(RuntimeError):
    """nbgrader's database does not hold the assignment's graded cells as the source notebooks define them."""


def _points(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- gradebook.csv


def write_csv(grades: Iterable[StudentGrade], path: Path) -> None:
    """Write the gradebook as CSV: one row per student, automatic points per exercise.

    The file is replaced atomically, so it can be rewritten after every student.

    Args:
        grades: the graded students (written in the order given).
        path: the CSV file to write.

    Columns: ``student``, one per exercise (points given; for the free-text
    exercises, which a person grades, ``answered`` or ``no answer``), ``total``,
    ``max``, ``problems`` (why an exercise could not be graded; empty when all went well).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", *(e.key for e in registry.exercises()), "total", "max", "problems"])
    for grade in grades:
        row = [grade.student]
        for exercise in registry.exercises():
            found = grade.results.get(exercise.key)
            if exercise.max_points == 0:  # graded by a person: say whether there is anything to grade
                answered = bool(found) and all(r.passed for r in found)
                row.append("answered" if answered else "no answer")
            else:
                row.append(_points(found.score) if found is not None else "0")
        problems = "; ".join(f"{k}: {v}" for k, v in grade.problems.items())
        writer.writerow([*row, _points(grade.score), _points(grade.max_score), problems])
    write_atomically(path, buffer.getvalue())


# --------------------------------------------------------------------------- result files


def load_results(folder: Path) -> list[StudentGrade]:
    """Read every result file of one grading run, ``folder/results/*.json``.

    Args:
        folder: the ``--out`` folder of ``containerlab grade``.

    Returns:
        One grade per result file, sorted by student.

    Raises:
        ResultsNotFound: there is no ``results/`` folder.
        ResultFileInvalid: a result file cannot be read (named in the message).
    """
    grades = [read_result(p).grade for p in result_files(folder)]
    return sorted(grades, key=lambda g: (g.student, g.key))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def newest_results(folders: Iterable[Path], *, say: Callable[[str], None] = _say,
                   invalid: Callable[[Path, ResultFileInvalid], None] | None = None) -> list[ResultFile]:
    """Read the result files of several grading runs (shards, machines) and keep one per student: the newer.

    A student's identity is their key (their name when a file has none). Of two files of one student,
    the one with the later ``graded_at`` (else modification time) is kept, and ``say`` is told which,
    and also when the two graded different submissions (their fingerprints differ).

    Args:
        folders: ``--out`` folders of ``containerlab grade``, read in this order.
        say: receives one sentence per student found more than once.
        invalid: receives each result file that cannot be read and the error (which names the file and
            why), and the file is left out; ``None``: such a file raises.

    Returns:
        The kept result files, sorted by student.

    Raises:
        ResultsNotFound: a folder has no ``results/`` folder.
        ResultFileInvalid: a result file cannot be read and ``invalid`` is ``None``.
    """
    kept: dict[str, ResultFile] = {}
    for folder in folders:
        for path in result_files(folder):
            try:
                new = read_result(path)
            except ResultFileInvalid as exc:
                if invalid is None:
                    raise
                invalid(path, exc)
                continue
            identity = new.grade.key or new.grade.student
            old = kept.get(identity)
            if old is None:
                kept[identity] = new
                continue
            newer, older = (new, old) if new.graded_at >= old.graded_at else (old, new)
            kept[identity] = newer
            message = (f"{newer.grade.student}: graded in {older.path.parent.parent} and in "
                       f"{newer.path.parent.parent}; kept the newer ({newer.graded_at:%Y-%m-%d %H:%M:%S} UTC).")
            if newer.fingerprint != older.fingerprint:
                message += (f" The two graded different submissions (fingerprint {older.fingerprint or '?'} "
                            f"then {newer.fingerprint or '?'}): check which one the student handed in last.")
            say(message)
    return sorted(kept.values(), key=lambda r: (r.grade.student, r.grade.key))


def merge(folders: list[Path], out: Path, *, say: Callable[[str], None] = _say) -> list[StudentGrade]:
    """Merge the result folders of several machines (or runs) into one gradebook.

    A student found in more than one folder keeps the newer result file (by
    its ``graded_at`` when it has one, else its modification time, which
    ``rsync -a`` and ``cp -p`` keep), and ``say`` is
    told which was kept. When the two files graded different submissions
    (their fingerprints differ), ``say`` is told that too: the student handed
    in again, or the machines were given different copies.

    ``out`` receives ``results/`` (the kept files, unchanged), ``gradebook.csv``
    and ``feedback/`` (text and HTML, rendered again from the kept results).
    ``out`` may be one of ``folders``; result files already in ``out`` take
    part in the merge either way (a new shard merged into last week's merge),
    so ``gradebook.csv`` always covers all of ``out/results``.

    Args:
        folders: ``--out`` folders of ``containerlab grade`` (one per machine or shard).
        out: where to write the merged gradebook.
        say: receives one sentence per student graded more than once (default: printed to stderr).

    Returns:
        The merged grades, sorted by student.

    Raises:
        ResultsNotFound: a folder has no ``results/`` folder, or none has any result file.
        ResultFileInvalid: a result file cannot be read.
    """
    from . import report

    inputs = list(folders)
    if (out / "results").is_dir() and out.resolve() not in {f.resolve() for f in inputs}:
        inputs.insert(0, out)
    kept = newest_results(inputs, say=say)
    if not kept:
        raise ResultsNotFound(f"No result file in {', '.join(str(f / 'results') for f in folders)}.")
    target = out / "results"
    target.mkdir(parents=True, exist_ok=True)
    for item in kept:
        destination = target / item.path.name
        if destination.resolve() != item.path.resolve():
            write_atomically(destination, item.path.read_text(encoding="utf-8"))
            os.utime(destination, (item.graded_at.timestamp(), item.graded_at.timestamp()))
    grades = [r.grade for r in kept]
    write_csv(grades, out / "gradebook.csv")
    for grade in grades:
        report.write_feedback(grade, out / "feedback")
    return grades


# --------------------------------------------------------------------------- nbgrader's gradebook


@dataclass(frozen=True)
class GradedCell:
    """A cell of a source notebook that nbgrader gives points for.

    Attributes:
        notebook: nbgrader's notebook id (the file name without ``.ipynb``).
        exercise: the exercise key of that notebook (``"ex1"``).
        grade_id: the cell's nbgrader id.
        points: the cell's points.
        checks: the names of the checks the cell requires; empty for a cell a person grades.
    """

    notebook: str
    exercise: str
    grade_id: str
    points: float
    checks: tuple[str, ...]

    @property
    def manual(self) -> bool:
        """Whether a person grades this cell (a free-text answer), not the checks."""
        return not self.checks

    def score(self, grade: StudentGrade) -> float:
        """The automatic points of this cell for one student: the points of its passed checks.

        A check that did not run (the exercise could not be graded) gives 0.
        """
        found = grade.results.get(self.exercise)
        by_name = {r.name: r for r in found} if found is not None else {}
        awarded = sum(by_name[name].awarded for name in self.checks if name in by_name)
        return min(self.points, awarded)


def _required_checks(source: str, where: str) -> tuple[str, ...]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise GradebookMismatch(f"The graded cell {where} is not valid Python ({exc.msg}).") from exc
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "require":
            for arg in node.args:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    raise GradebookMismatch(f"The graded cell {where} names a check by an expression; "
                                            "write its name as a string, e.g. results.require(\"builds\").")
                names.append(arg.value)
    return tuple(names)


def graded_cells(solutions: Path = SOLUTIONS) -> list[GradedCell]:
    """Read the graded cells of the source notebooks and the checks each one requires.

    A code cell's checks are the string arguments of its ``*.require(...)``
    calls (visible ``results.require`` and hidden ``hidden.require`` alike); a
    graded markdown cell is a free-text answer, graded by a person.

    Args:
        solutions: the folder of source notebooks (``solutions/ch14``).

    Returns:
        The cells in notebook order.

    Raises:
        GradebookMismatch: a graded code cell names no check, or a notebook is not an exercise.
    """
    by_notebook = {Path(e.notebook).stem: e.key for e in registry.exercises()}
    cells = []
    for path in sorted(solutions.glob("*.ipynb")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for cell in data["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            where = f"{meta['grade_id']} of {path.name}"
            if path.stem not in by_notebook:
                raise GradebookMismatch(f"{path.name} has the graded cell {meta['grade_id']} but is not one of "
                                        "the exercises the grader knows.")
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            checks = _required_checks(source, where) if cell["cell_type"] == "code" else ()
            if cell["cell_type"] == "code" and not checks:
                raise GradebookMismatch(f"The graded cell {where} requires no check (results.require(...)), "
                                        "so the class grader cannot give its points.")
            cells.append(GradedCell(path.stem, by_notebook[path.stem], meta["grade_id"], float(meta["points"]),
                                    checks))
    return cells


def course_id() -> str:
    """The course id of the course's ``nbgrader_config.py`` (nbgrader keeps it with every assignment)."""
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader(exercises.NBGRADER_CONFIG.name, path=str(exercises.NBGRADER_CONFIG.parent))
    return str(loaded.load_config().CourseDirectory.course_id)


def absolute_db_url(db_url: str) -> str:
    """Make a relative sqlite URL (``sqlite:///gradebook.db``) absolute, so it names the same file from any folder."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:" \
            and not Path(url.database).is_absolute():
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


def create_assignment(*, db_url: str, assignment: str = ASSIGNMENT) -> None:
    """Record the assignment, its notebooks and cells in the database the way nbgrader does.

    Runs nbgrader's own ``generate_assignment`` on the course's source
    notebooks in a scratch course directory, with the database pointed at
    ``db_url``: nbgrader's ``SaveCells`` step writes the notebooks, grade,
    solution and source cells (with the checksums ``autograde`` later
    compares). The release files of the scratch course are thrown away.

    Raises:
        exercises.NbgraderFailed: nbgrader failed (e.g. the notebooks have submissions and changed cells).
    """
    course = exercises.scratch_course()
    try:
        exercises.nbgrader(["generate_assignment", assignment, "--force", f"--db={absolute_db_url(db_url)}"],
                           course_dir=course)
    finally:
        shutil.rmtree(course, ignore_errors=True)


@contextlib.contextmanager
def _nbgrader_gradebook(db_url: str) -> Iterator[Any]:
    """Open nbgrader's ``Gradebook`` on ``db_url`` for the course.

    A new database is stamped by running ``alembic``, which nbgrader looks up
    on ``PATH``; the environment's ``bin`` folder goes first for that moment
    (``containerlab`` may be started by its full path, without the venv on ``PATH``).
    """
    from nbgrader.api import Gradebook

    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved}"
    try:
        gb = Gradebook(db_url, course_id())
    finally:
        os.environ["PATH"] = saved
    with gb:
        yield gb


def to_nbgrader(grades: Iterable[StudentGrade], *, db_url: str, assignment: str = ASSIGNMENT,
                solutions: Path = SOLUTIONS, submitted: Path | None = None) -> None:
    """Write the automatic points, per graded cell, into nbgrader's gradebook database.

    For each student: the student and their submission are added if missing
    (with nbgrader's records of every notebook and cell), and each cell the
    checks grade gets its ``auto_score``: the points of the checks it requires
    that passed (the same sum as ``gradebook.csv``). As nbgrader's
    ``autograde`` does, a cell a person already graded is flagged for review
    and keeps the person's score. Free-text cells are left to a person (they
    stay "needs manual grade"), except, when ``submitted`` holds the student's
    notebooks, an answer still as released: it gets 0 and the comment "No
    response.", by nbgrader's own rule. When the database has no such assignment yet,
    it is created with nbgrader's ``generate_assignment``
    (:func:`create_assignment`). Running it again updates the same records.

    Args:
        grades: the graded students.
        db_url: nbgrader's database, e.g. ``sqlite:///gradebook.db`` (the course directory's).
        assignment: nbgrader's assignment id.
        solutions: the source notebooks whose graded cells name the checks.
        submitted: nbgrader's ``submitted/`` folder (optional): a student's
            ``<student>/<assignment>/timestamp.txt`` there (written by ``nbgrader collect``)
            becomes the submission's time, as ``autograde`` records it, and the
            notebooks there tell which answers are untouched.

    Raises:
        GradebookMismatch: the database's cells are not those of the source notebooks
            (run ``nbgrader generate_assignment`` again), or a cell names no check.
        exercises.NbgraderFailed: creating the assignment with nbgrader failed.
    """
    from nbgrader.api import MissingEntry
    from sqlalchemy.exc import SAWarning

    cells = graded_cells(solutions)
    db_url = absolute_db_url(db_url)
    with _nbgrader_gradebook(db_url) as gb:
        try:
            missing = not gb.find_assignment(assignment).notebooks  # e.g. only `nbgrader db assignment add`
        except MissingEntry:
            missing = True
    if missing:
        create_assignment(db_url=db_url, assignment=assignment)
    with _nbgrader_gradebook(db_url) as gb:
        for cell in cells:
            try:
                recorded = gb.find_grade_cell(cell.grade_id, cell.notebook, assignment)
            except MissingEntry as exc:
                raise GradebookMismatch(
                    f"nbgrader's database has no graded cell {cell.grade_id} in {cell.notebook} of {assignment}; "
                    "run `nbgrader generate_assignment` on the current source notebooks.") from exc
            if recorded.max_score != cell.points:
                raise GradebookMismatch(
                    f"The cell {cell.grade_id} is worth {_points(recorded.max_score)} in nbgrader's database but "
                    f"{_points(cell.points)} in the source notebook; run `nbgrader generate_assignment` again.")
        for grade in grades:
            gb.update_or_create_student(grade.student)
            stamp = submitted / grade.student / assignment / "timestamp.txt" if submitted else None
            when = stamp.read_text(encoding="utf-8").strip() if stamp and stamp.is_file() else ""
            with warnings.catch_warnings():  # nbgrader's add_submission warns of its own autoflush (autograde too)
                warnings.simplefilter("ignore", SAWarning)
                if when:
                    gb.update_or_create_submission(assignment, grade.student, timestamp=when)
                else:
                    gb.update_or_create_submission(assignment, grade.student)
            unchanged = _unchanged_answers(gb, submitted / grade.student / assignment, assignment) \
                if submitted else {}
            for cell in cells:
                if cell.manual and (cell.notebook, cell.grade_id) not in unchanged:
                    continue  # no collected notebook to look at: a person grades it
                record = gb.find_grade(cell.grade_id, cell.notebook, assignment, grade.student)
                if cell.manual:  # nbgrader's rule (utils.determine_grade): an untouched answer gets 0
                    record.auto_score = 0.0 if unchanged[cell.notebook, cell.grade_id] else None
                else:
                    record.auto_score = cell.score(grade)
                record.needs_manual_grade = record.manual_score is not None or record.auto_score is None
            for (notebook, grade_id), same in unchanged.items():  # as autograde's SaveAutoGrades comments
                try:
                    comment = gb.find_comment(grade_id, notebook, assignment, grade.student)
                except MissingEntry:
                    continue
                comment.auto_comment = "No response." if same else None
            gb.db.commit()


def manual_points(students: Iterable[str], *, db_url: str, assignment: str = ASSIGNMENT,
                  solutions: Path = SOLUTIONS) -> dict[str, float | None]:
    """Read back the points a person gave the free-text answers, from nbgrader's gradebook database.

    The free-text answers are the graded cells that name no check
    (:attr:`GradedCell.manual`). A cell counts once a person scored it in
    formgrader (its ``manual_score``) or nbgrader scored an untouched answer 0
    (its ``auto_score``, "No response."); its points are nbgrader's
    ``Grade.score`` (the manual score wins, extra credit included), the figure
    ``nbgrader export`` adds up.

    Args:
        students: the grader's student names (nbgrader's student ids, as :func:`to_nbgrader` writes them).
        db_url: nbgrader's database, e.g. ``sqlite:////course/gradebook.db``.
        assignment: nbgrader's assignment id.
        solutions: the source notebooks whose graded cells say which answers a person grades.

    Returns:
        Per student, the sum of the free-text points, or None when one of the
        answers has no score yet (or the student is not in the database).

    Raises:
        ResultsNotFound: ``db_url`` names a SQLite file that does not exist (it would be made empty).
    """
    from nbgrader.api import MissingEntry
    from sqlalchemy.engine import make_url

    url = make_url(absolute_db_url(db_url))
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise ResultsNotFound(f"There is no nbgrader database {url.database}; write the automatic points there "
                              "with `containerlab gradebook nbgrader` and grade the free-text answers in formgrader.")
    manual = [c for c in graded_cells(solutions) if c.manual]
    found: dict[str, float | None] = {}
    with _nbgrader_gradebook(url.render_as_string(hide_password=False)) as gb:
        for student in students:
            total: float | None = 0.0
            for cell in manual:
                try:
                    record = gb.find_grade(cell.grade_id, cell.notebook, assignment, student)
                except MissingEntry:
                    total = None
                    break
                if record.manual_score is None and record.auto_score is None:
                    total = None
                    break
                total += float(record.score)
            found[student] = total
    return found


def _unchanged_answers(gb: Any, handed_in: Path, assignment: str) -> dict[tuple[str, str], bool]:
    """For each answer cell of a collected submission: is it still the released cell (no response)?

    The cell's checksum (nbgrader's ``compute_checksum``) is compared with the
    one ``generate_assignment`` recorded in the database, not with the one in
    the student's file. Notebooks that are missing or unreadable give nothing.

    Returns:
        ``(notebook, grade_id)`` of each answer (solution) cell found, to whether it is unchanged.
    """
    import nbformat
    from nbgrader.api import MissingEntry
    from nbgrader.utils import compute_checksum, is_solution

    found: dict[tuple[str, str], bool] = {}
    for notebook in gb.find_assignment(assignment).notebooks:
        try:
            nb = nbformat.read(handed_in / f"{notebook.name}.ipynb", as_version=4)
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        for cell in nb.cells:
            if not is_solution(cell) or "grade_id" not in cell.metadata.nbgrader:
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            try:
                recorded = gb.find_source_cell(grade_id, notebook.name, assignment).checksum
            except MissingEntry:
                continue
            found[notebook.name, grade_id] = recorded == compute_checksum(cell)
    return found


# --------------------------------------------------------------------------- feedback for nbgrader


#: Files of a collected submission that ``release_feedback`` needs next to the feedback pages.
SUBMISSION_FILES = ("timestamp.txt", "submission_secret.txt")


def write_nbgrader_feedback(grade: StudentGrade, feedback: Path, *, submitted: Path | None = None,
                            assignment: str = ASSIGNMENT) -> list[Path]:
    """Write one page per notebook where nbgrader's ``release_feedback`` looks: ``feedback/<student>/<assignment>/``.

    ``release_feedback`` names each page for the student by the
    ``submission_secret.txt`` and ``timestamp.txt`` that ``nbgrader collect``
    put in the submission folder; they are copied from ``submitted`` when it
    holds them (without them ``release_feedback`` cannot release the pages,
    which are still there to hand out another way).

    Args:
        grade: the student's grade.
        feedback: nbgrader's feedback folder (``<course>/feedback``).
        submitted: the student's collected submission, ``submitted/<student>/<assignment>`` (optional).
        assignment: nbgrader's assignment id.

    Returns:
        The pages written.
    """
    from . import report

    folder = feedback / grade.student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for exercise in registry.exercises():
        if exercise.key not in grade.results:
            continue
        path = folder / f"{Path(exercise.notebook).stem}.html"
        write_atomically(path, report.feedback_page(grade, exercise.key))
        written.append(path)
    for name in SUBMISSION_FILES:
        if submitted is not None and (submitted / name).is_file():
            shutil.copy(submitted / name, folder / name)
    return written


# --------------------------------------------------------------------------- an nbgrader course


def _stamp(folder: Path) -> str | None:
    """The submission time ``nbgrader collect`` wrote in ``folder`` (``""`` without one, None without a folder)."""
    if not folder.is_dir():
        return None
    path = folder / "timestamp.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def course_db_url(course: Path) -> str:
    """nbgrader's database of a course directory: its config's ``CourseDirectory.db_url``, else nbgrader's default."""
    from traitlets.config.loader import PyFileConfigLoader

    if (course / "nbgrader_config.py").is_file():
        loaded = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        if loaded.CourseDirectory.get("db_url"):
            return absolute_db_url(str(loaded.CourseDirectory.db_url))
    return f"sqlite:///{(course / 'gradebook.db').resolve()}"


def publish(out: Path, *, course: Path, db_url: str | None = None, feedback: bool = True,
            assignment: str = ASSIGNMENT) -> list[StudentGrade]:
    """Put one grading run into an nbgrader course: points in its database, pages in its feedback folder.

    The grading run's result files (``out/results``) are read; their automatic
    points go into the course's gradebook database (:func:`to_nbgrader`), so
    that formgrader shows them next to the manual points and ``nbgrader
    export`` gives the final grade. With ``feedback``, each student's pages go
    to ``course/feedback/<student>/<assignment>/`` (:func:`write_nbgrader_feedback`),
    where ``nbgrader release_feedback`` picks them up. A student's collected
    notebooks (``course/submitted/<student>/<assignment>``) are copied to
    ``course/autograded/`` when nothing is there yet or they were handed in
    again (``timestamp.txt`` differs): formgrader counts a submission as graded
    only with that folder, and opens the free-text answers from it. An
    ``autograded/`` folder of the same submission (e.g. from ``nbgrader
    autograde``) is left as it is.

    Args:
        out: the ``--out`` folder of ``containerlab grade``.
        course: nbgrader's course directory (the one with ``nbgrader_config.py``).
        db_url: nbgrader's database (default: :func:`course_db_url`).
        feedback: write the feedback pages.
        assignment: nbgrader's assignment id.

    Returns:
        The grades written.

    Raises:
        ResultsNotFound, ResultFileInvalid: the result files cannot be read.
        GradebookMismatch: the database's cells are not those of the source notebooks.
    """
    grades = load_results(out)
    submitted = course / "submitted"
    to_nbgrader(grades, db_url=db_url or course_db_url(course),
                assignment=assignment, submitted=submitted)
    for grade in grades:
        handed_in = submitted / grade.student / assignment
        if feedback:
            write_nbgrader_feedback(grade, course / "feedback", submitted=handed_in, assignment=assignment)
        autograded = course / "autograded" / grade.student / assignment
        if handed_in.is_dir() and _stamp(autograded) != _stamp(handed_in):  # missing, or handed in again
            shutil.rmtree(autograded, ignore_errors=True)
            shutil.copytree(handed_in, autograded)
    return grades
