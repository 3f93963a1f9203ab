"""Result files: one student's grade on disk, in one format, with one reader and one atomic writer.

The class grader (:mod:`containerlab.batch`) writes a result file per student,
``OUT/results/<key>.json``::

    {"format": 1, "fingerprint": "...", "graded_at": "2026-12-07T16:00:00+00:00",
     "grade": StudentGrade.to_dict()}

and everything that reads grades back (the gradebooks, the merge of shards, the
class report, the LMS export) reads it here. Files are written through a
temporary file in the same folder and ``os.replace``, so a reader, or a rerun
after ``kill -9``, sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .grading import StudentGrade

#: The version of the result-file format written and read here.
RESULT_FORMAT = 1


class ResultsNotFound(FileNotFoundError):
    """A result folder is missing or holds no result file."""


class ResultFileInvalid(ValueError):
    """A result file is not JSON, or not in a format this version reads (the message names the file)."""


@dataclass(frozen=True)
class ResultFile:
    """One student's result file as read from disk.

    Attributes:
        path: the file.
        fingerprint: what the batch grader recorded of the submission it graded.
        graded_at: when the student was graded (UTC): the file's ``graded_at`` (ISO 8601) when it
            has one, else its modification time.
        grade: the student's grade.
    """

    path: Path
    fingerprint: str
    graded_at: datetime
    grade: StudentGrade


def file_mode() -> int:
    """The mode a new file gets from this process's umask (``0o666`` minus the umask), e.g. ``0o644``."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync, ``os.replace``.

    A reader never sees half a file. The new file gets the mode an ordinary file would
    (:func:`file_mode`), not ``mkstemp``'s 0600: a student must be able to read released feedback.
    The folder is made if missing, and fsynced after the rename, so the rename survives a power cut.

    Raises:
        OSError: the folder or file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_path(out: Path, key: str) -> Path:
    """The result file of one student: ``OUT/results/<key>.json``."""
    return out / "results" / f"{key}.json"


def result_files(folder: Path) -> list[Path]:
    """The result files of one grading run, ``folder/results/*.json`` (half-written ``.*.tmp`` left out), sorted.

    Raises:
        ResultsNotFound: there is no ``results/`` folder.
    """
    results = folder / "results"
    if not results.is_dir():
        raise ResultsNotFound(f"{folder} holds no results/ folder (the --out folder of `containerlab grade` has one).")
    return sorted(p for p in results.glob("*.json") if not p.name.startswith("."))


def write_result(out: Path, grade: StudentGrade, *, fingerprint: str) -> Path:
    """Write one student's result file, ``OUT/results/<key>.json``, atomically (:func:`write_atomically`).

    Args:
        out: the ``--out`` folder of the grading run.
        grade: the student's grade; its ``key`` names the file.
        fingerprint: what the grader recorded of the submission (:func:`containerlab.batch.fingerprint`).

    Returns:
        The file written.
    """
    path = result_path(out, grade.key)
    # graded_at: when, in UTC; a merge keeps the newer of two results by it (a file's mtime may not survive a copy).
    data = {"format": RESULT_FORMAT, "fingerprint": fingerprint,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "grade": grade.to_dict()}
    write_atomically(path, json.dumps(data, ensure_ascii=False, indent=1))
    return path


def read_result(path: Path) -> ResultFile:
    """Read one result file.

    Raises:
        ResultFileInvalid: the file is missing, not JSON, has another format number, or its grade is
            incomplete (the message names the file and says what to do).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultFileInvalid(f"{path} is not a readable result file ({exc}); grade that student again.") from exc
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ResultFileInvalid(f"{path} has result format {found!r}; this containerlab reads format "
                                f"{RESULT_FORMAT} (grade again, or use the containerlab that wrote it).")
    try:
        grade = StudentGrade.from_dict(data["grade"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: a list where a mapping goes
        raise ResultFileInvalid(f"{path} holds an incomplete grade ({type(exc).__name__}: {exc}).") from exc
    try:  # a time written in the file survives copies between machines; a file's mtime may not
        graded_at = datetime.fromisoformat(str(data["graded_at"])).astimezone(timezone.utc)
    except (KeyError, ValueError):
        graded_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return ResultFile(path, str(data.get("fingerprint", "")), graded_at, grade)
