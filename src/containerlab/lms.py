"""Grades out to a learning management system: the grade import files of Canvas and Moodle.

One grading run (``OUT/results``, the automatic points) and nbgrader's
gradebook database (the points a person gave the free-text answers in
formgrader, :func:`containerlab.gradebook.manual_points`) become one file that
the LMS imports. Students are matched to the LMS's users by an *id map* the
instructor supplies: a CSV whose first column is the grader's student (the
folder name ``containerlab grade`` saw, or its key) and whose other columns
are the LMS's own user columns, named as the format names them (see each
format's class). A student who cannot be matched is never dropped silently:
they are listed in :class:`Export` and in a file beside the import file.

Each format is one subclass of :class:`LmsFormat`; defining one registers it
under its :attr:`LmsFormat.name` (``--format``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import gradebook, resultfiles
from .checks import registry
from .checks.submission import ASSIGNMENT, SOLUTIONS
from .grading import StudentGrade


class IdMapInvalid(ValueError):
    """The id map cannot be read, or gives no column the format identifies students by (the message says which)."""


@dataclass(frozen=True)
class Row:
    """One student's line in an import file.

    Attributes:
        student: the grader's student name.
        key: the grader's key of that student.
        identity: the LMS's user columns for this student, from the id map (column name to value).
        automatic: the automatic points (the checks), or None when the grader failed on an exercise.
        manual: the free-text points from nbgrader's database, or None while some answer has no score.
    """

    student: str
    key: str
    identity: dict[str, str]
    automatic: float | None
    manual: float | None

    @property
    def total(self) -> float | None:
        """Automatic plus manual points; None while either is missing."""
        return None if self.automatic is None or self.manual is None else self.automatic + self.manual


@dataclass(frozen=True)
class Unmatched:
    """A graded student who is not in the import file, and why."""

    student: str
    key: str
    reason: str


@dataclass
class Export:
    """What :func:`export` wrote.

    Attributes:
        path: the import file.
        unmatched_path: the list of students who could not be matched (written even when empty).
        rows: the students written, in the order written.
        unmatched: graded students left out of the import file, with the reason (an unreadable
            result file is one, named by the file's name).
        incomplete: students written with blank manual points and total (free text not graded yet, or not
            in nbgrader's database) or blank automatic points (the grader failed on an exercise), with why.
        unknown: first-column values of the id map that match no graded student (no submission, or a typo).
        notes: sentences for the instructor about the file as a whole.
    """

    path: Path
    unmatched_path: Path
    rows: list[Row] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    incomplete: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


class LmsFormat:
    """One LMS's grade import file; subclasses register themselves under :attr:`name`.

    Attributes:
        name: the ``--format`` value.
        columns: the LMS's user columns the id map may give, in the order they are written.
        identifiers: the columns that identify a user; a student needs at least one, non-empty.
        aliases: other spellings of ``columns`` accepted in the id map (lower case), e.g. ``email``.
    """

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    identifiers: ClassVar[tuple[str, ...]]
    aliases: ClassVar[dict[str, str]] = {}
    registry: ClassVar[dict[str, type[LmsFormat]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        LmsFormat.registry[cls.name] = cls

    def column(self, header: str) -> str | None:
        """The LMS column a header of the id map names (case and surrounding spaces ignored), or None."""
        wanted = header.strip().casefold()
        for name in self.columns:
            if name.casefold() == wanted:
                return name
        return self.aliases.get(wanted)

    def notes(self, title: str) -> list[str]:
        """Sentences about ``title`` for the instructor (none by default)."""
        return []

    def render(self, rows: list[Row], *, title: str, present: list[str], max_automatic: float,
               max_manual: float) -> str:
        """The import file's text (CSV) for ``rows``; ``present`` are the id map's columns, in format order."""
        raise NotImplementedError


class Canvas(LmsFormat):
    """Canvas's Gradebook import CSV.

    Columns, as Instructure's Canvas Instructor Guide "How do I import grades
    in the Gradebook?" describes the file (the same as the Gradebook's own
    export): ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
    ``Section``, then one column per assignment headed ``Title (assignment
    id)``, and a second row whose first cell is ``Points Possible`` holding each
    assignment's maximum. Canvas finds the student by ``ID``, ``SIS User ID`` or
    ``SIS Login ID``; a column whose heading has no id becomes a new assignment
    (Ohio State's CarmenCanvas guide to importing a CSV file into Carmen grades
    says so too). Only the total is written, in one assignment column: each further
    number column would become an assignment of its own and count again in
    the course total. The breakdown stays in ``gradebook.csv`` and nbgrader.
    """

    name = "canvas"
    columns = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
    identifiers = ("ID", "SIS User ID", "SIS Login ID")

    def notes(self, title: str) -> list[str]:
        if re.search(r"\(\d+\)\s*$", title):
            return []
        return [f"The column {title!r} names no Canvas assignment id, so Canvas makes a new assignment of it; to "
                "fill an existing one, pass --title as Canvas's own export heads it, e.g. 'Chapter 14 (4211)'."]

    def render(self, rows: list[Row], *, title: str, present: list[str], max_automatic: float,
               max_manual: float) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*self.columns, title])
        writer.writerow(["Points Possible", *[""] * (len(self.columns) - 1), _points(max_automatic + max_manual)])
        for row in rows:
            writer.writerow([*(row.identity.get(c, "") for c in self.columns), _points(row.total)])
        return buffer.getvalue()


class Moodle(LmsFormat):
    """Moodle's "Import grades from CSV file".

    As MoodleDocs' "Grade import" page describes it, the CSV's columns are
    free: the first row names them, and the import form maps one user column
    ("Map from") to a user field ("Map to": email address, username, ID
    number or user id) and each other column to a grade item, or to nothing.
    This file has the id map's user columns (``Email address``, ``Username``,
    ``ID number``, as Moodle's own export heads them), then ``Title automatic``,
    ``Title manual`` and ``Title total``; map the ones you keep (usually the
    total) and leave the rest unmapped. A blank grade is not imported.
    """

    name = "moodle"
    columns = ("Email address", "Username", "ID number")
    identifiers = columns
    aliases = {"email": "Email address", "e-mail": "Email address", "idnumber": "ID number",
               "id number": "ID number", "username": "Username"}

    def render(self, rows: list[Row], *, title: str, present: list[str], max_automatic: float,
               max_manual: float) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*present, f"{title} automatic", f"{title} manual", f"{title} total"])
        for row in rows:
            writer.writerow([*(row.identity.get(c, "") for c in present), _points(row.automatic),
                             _points(row.manual), _points(row.total)])
        return buffer.getvalue()


def get_format(name: str) -> LmsFormat:
    """The registered format called ``name``.

    Raises:
        ValueError: no such format (the message lists those there are).
    """
    try:
        return LmsFormat.registry[name]()
    except KeyError:
        raise ValueError(f"No LMS format {name!r}; there are {', '.join(sorted(LmsFormat.registry))}.") from None


def read_id_map(path: Path, lms: LmsFormat) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Read the instructor's id map.

    Args:
        path: a CSV file with a header row; the first column holds the grader's
            student (folder name or key), the others the LMS's user columns
            (:attr:`LmsFormat.columns`, case ignored; other columns are ignored).
        lms: the format the map is for.

    Returns:
        The LMS columns present (in the format's order), and per first-column
        value, the student's LMS columns.

    Raises:
        IdMapInvalid: the file cannot be read, has no column that identifies a user
            in this format, or names one student twice (the lines are given).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IdMapInvalid(f"Cannot read the id map {path}: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or len(header) < 2:
        raise IdMapInvalid(f"The id map {path} needs a header row: the grader's student first, then the LMS's "
                           f"user columns ({', '.join(lms.columns)}).")
    named = {i: lms.column(h) for i, h in enumerate(header) if i > 0}
    present = [c for c in lms.columns if c in named.values()]
    if not any(c in lms.identifiers for c in present):
        raise IdMapInvalid(f"The id map {path} has no column {lms.name.capitalize()} identifies a student by "
                           f"(one of: {', '.join(lms.identifiers)}); its columns are {', '.join(header)}.")
    found: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not cells or not cells[0].strip():
            continue
        student = cells[0].strip()
        if student in found:
            raise IdMapInvalid(f"The id map {path} names {student!r} twice (lines {lines[student]} and {number}); "
                               "keep one line per student.")
        lines[student] = number
        found[student] = {name: cells[i].strip() for i, name in named.items() if name and i < len(cells)}
    return present, found


def _match(grade: StudentGrade, ids: dict[str, dict[str, str]], folded: dict[str, list[str]]) -> str | None:
    """The id map's first-column value for ``grade``: its exact name, its key, or its name with case ignored."""
    if grade.student in ids:
        return grade.student
    if grade.key and grade.key in ids:
        return grade.key
    candidates = folded.get(grade.student.casefold(), [])
    return candidates[0] if len(candidates) == 1 else None


def export(out: Path, *, lms: str, ids: Path, dest: Path, db_url: str, title: str = ASSIGNMENT,
           assignment: str = ASSIGNMENT, solutions: Path = SOLUTIONS) -> Export:
    """Write one grading run, with the free-text points, as an LMS's grade import file.

    Args:
        out: the ``--out`` folder of ``containerlab grade`` (its ``results/``).
        lms: the format's name (``"canvas"``, ``"moodle"``).
        ids: the id map (:func:`read_id_map`).
        dest: the import file to write (replaced atomically). The students who
            could not be matched go to ``dest`` with the suffix ``.unmatched.csv``
            (columns ``student``, ``key``, ``reason``).
        db_url: nbgrader's database, where formgrader keeps the free-text points.
        title: the LMS's name of the grade column (Canvas: ``Title (assignment id)``).
        assignment: nbgrader's assignment id.
        solutions: the source notebooks (which graded cells a person grades, and their points).

    Returns:
        What was written and who was left out.

    Raises:
        ValueError: no such format.
        IdMapInvalid: the id map cannot be used.
        resultfiles.ResultsNotFound: there is no ``results/`` folder, or no nbgrader database.

    A result file that cannot be read is one more unmatched student (named by
    the file), never the end of the export.
    """
    fmt = get_format(lms)
    present, id_map = read_id_map(ids, fmt)
    grades, unreadable = [], []
    for path in resultfiles.result_files(out):  # one unreadable result file never stops the export
        try:
            grades.append(resultfiles.read_result(path).grade)
        except resultfiles.ResultFileInvalid as exc:
            unreadable.append(Unmatched(path.stem, path.stem, str(exc)))
    grades.sort(key=lambda g: (g.student, g.key))
    manual = gradebook.manual_points([g.student for g in grades], db_url=db_url, assignment=assignment,
                                     solutions=solutions)
    manual_cells = [c for c in gradebook.graded_cells(solutions) if c.manual]
    folded: dict[str, list[str]] = {}
    for name in id_map:
        folded.setdefault(name.casefold(), []).append(name)
    result = Export(dest, dest.with_name(f"{dest.stem}.unmatched.csv"), unmatched=unreadable,
                    notes=fmt.notes(title))
    used: dict[str, str] = {}  # id map line -> the student it matched
    for grade in grades:
        entry = _match(grade, id_map, folded)
        automatic = None if grade.grader_errors else grade.score
        if entry is None:
            result.unmatched.append(Unmatched(grade.student, grade.key, "not in the id map"))
            continue
        if entry in used:
            result.unmatched.append(Unmatched(grade.student, grade.key, f"the id map's line {entry!r} already "
                                              f"matched {used[entry]!r}; give each student a line of their own"))
            continue
        used[entry] = grade.student
        identity = id_map[entry]
        if not any(identity.get(c) for c in fmt.identifiers):
            result.unmatched.append(Unmatched(grade.student, grade.key, f"the id map's line {entry!r} gives no "
                                              f"{' / '.join(c for c in fmt.identifiers if c in present)}"))
            continue
        row = Row(grade.student, grade.key, identity, automatic, manual[grade.student])
        result.rows.append(row)
        if automatic is None:
            result.incomplete.append((grade.student, "the grader failed on " + ", ".join(grade.grader_errors)
                                      + "; grade again"))
        if row.manual is None:
            result.incomplete.append((grade.student, "a free-text answer has no score in nbgrader's database yet"))
    result.unknown = [name for name in id_map if name not in used]
    text = fmt.render(result.rows, title=title, present=present,
                      max_automatic=sum(e.max_points for e in registry.exercises()),
                      max_manual=sum(c.points for c in manual_cells))
    resultfiles.write_atomically(dest, text)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "key", "reason"])
    for item in result.unmatched:
        writer.writerow([item.student, item.key, item.reason])
    resultfiles.write_atomically(result.unmatched_path, buffer.getvalue())
    return result


def summary(result: Export) -> str:
    """The lines the command prints: what was written, then every student left out or written incomplete."""
    lines = [f"{len(result.rows)} student(s) written to {result.path}."]
    lines += [f"Note: {n}" for n in result.notes]
    if result.unmatched:
        lines.append(f"{len(result.unmatched)} graded student(s) NOT in the file (also in {result.unmatched_path}):")
        lines += [f"  {u.student}: {u.reason}" for u in result.unmatched]
    if result.incomplete:
        lines.append(f"{len(result.incomplete)} line(s) written with blank points:")
        lines += [f"  {student}: {why}" for student, why in result.incomplete]
    if result.unknown:
        lines.append(f"{len(result.unknown)} line(s) of the id map match no graded student (no submission?): "
                     + ", ".join(result.unknown))
    return "\n".join(lines)


def formats() -> list[str]:
    """The names of the registered formats (for ``--format``'s choices)."""
    return sorted(LmsFormat.registry)
