"""Which students a batch grades: their folders, their keys, the shard they fall in, and what they handed in.

Nothing here touches the engine or starts a process: it reads the submissions
folder and hashes names and files.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from .. import resultfiles
from ..checks import submission


class SubmissionsNotFound(FileNotFoundError):
    """The submissions folder does not exist or holds no student folder (or not the one asked for)."""


def student_key(student: str) -> str:
    """Return the key of a student: a readable slug plus a short hash of the exact name.

    The slug drops accents and case (``José García`` -> ``jose-garcia``) so that
    tags and folder names stay readable; the hash (8 hex digits of SHA-256 of
    the name as given, in UTF-8) keeps names that share a slug apart:
    ``student_key("José García") != student_key("jose-garcia")``. The key is
    safe in image tags, container names and file names, and at most 49
    characters long.
    """
    plain = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40].strip("-") or "student"
    digest = hashlib.sha256(student.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"


def student_folders(submissions: Path) -> dict[str, Path]:
    """Find each student's folder of notebooks.

    Returns:
        Student id (the folder's name) to the folder holding their notebooks, sorted by id.

    Raises:
        SubmissionsNotFound: the folder is missing or holds no student folder.
    """
    if not submissions.is_dir():
        raise SubmissionsNotFound(f"There is no submissions folder {submissions}.")
    found = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        inner = folder / submission.ASSIGNMENT
        found[folder.name] = inner if inner.is_dir() else folder
    if not found:
        raise SubmissionsNotFound(f"{submissions} holds no student folder (one folder per student expected).")
    return found


def select(submissions: Path, *, only: Iterable[str] = (), shard: tuple[int, int] | None = None) -> dict[str, Path]:
    """The students a batch grades: those of ``only`` (all when empty), then those of ``shard``.

    Args:
        submissions: one folder per student (:func:`student_folders`).
        only: student ids (folder names) to keep.
        shard: ``(K, N)``: keep the K-th of N slices (:func:`in_shard`); ``None`` keeps all.

    Returns:
        Student id to the folder holding their notebooks, sorted by id.

    Raises:
        SubmissionsNotFound: no submissions folder, no student in it, or a student named in ``only``
            has no folder there.
    """
    folders = student_folders(submissions)
    wanted = set(only)
    if wanted:
        unknown = sorted(wanted - set(folders))
        if unknown:
            raise SubmissionsNotFound(f"No submission for {', '.join(unknown)} in {submissions} "
                                      f"(students there: {', '.join(sorted(folders)) or 'none'}).")
        folders = {s: f for s, f in folders.items() if s in wanted}
    return {s: f for s, f in folders.items() if in_shard(student_key(s), shard)}


def parse_shard(text: str) -> tuple[int, int]:
    """Read ``"K/N"`` (1 <= K <= N), e.g. ``"2/5"``.

    Raises:
        ValueError: the text is not of that form.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"A shard is K/N with 1 <= K <= N (e.g. 2/5), not {text!r}.")
    return int(match.group(1)), int(match.group(2))


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether the student with ``key`` belongs to shard ``(K, N)`` (all do when ``shard`` is ``None``).

    The slice is chosen by the SHA-256 of the key, so it is the same on every
    machine and does not move when students are added or removed.
    """
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) % n == k - 1


def fingerprint(folder: Path) -> str:
    """A SHA-256 over the names and bytes of every file of a submission (checkpoints left out).

    Two submissions have the same fingerprint exactly when they hold the same files
    with the same content; a rerun grades again only the students whose
    fingerprint changed.

    Raises:
        OSError: a file of the submission cannot be read.
    """
    digest = hashlib.sha256(f"format {resultfiles.RESULT_FORMAT}\n".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(folder).as_posix()
        if ".ipynb_checkpoints" in relative.split("/") or "__pycache__" in relative.split("/"):
            continue
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode("utf-8", "surrogateescape"))
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]
