"""What the workers of one class grading share: results keyed by what they were computed from.

A class hands in many copies of the same work: the Dockerfile of the book, the
official solution, a neighbour's file. When two students' images have the same
content (:func:`containerlab.engine.content_digest`: layers, config and build
history), reading the image again or starting a container of it again can only
give what the first time gave. The class grader's workers name one folder
(:func:`share`); what one worker computed there, the others read instead of
computing it again. Each entry is one JSON file named by its kind and key,
written through a temporary file and ``os.replace``, so a reader sees a whole
entry or none. An entry that cannot be read counts as missing (it is computed
again), and one that cannot be written is simply not shared.

While one worker computes an entry, the others that need the same one wait for
it (:func:`computed`) instead of computing it beside it: the first students of a
class are graded side by side, and most of them hand in the same image.

Outside a class grading (a student's check cell) nothing is shared: :func:`load`
finds nothing, :func:`store` keeps nothing and :func:`computed` computes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

#: The folder entries are kept in for this process (:func:`share`), or None.
_folder: Path | None = None


def share(folder: Path | None) -> None:
    """Keep and look up shared entries in ``folder`` (made when missing); ``None`` stops sharing.

    Args:
        folder: a folder every worker of the same class grading names.
    """
    global _folder
    _folder = folder


def key(*parts: object) -> str:
    """A key for an entry: the SHA-256 (hex) of ``parts`` written as JSON (keys sorted; other objects as text)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def files_key(path: Path, *, limit: int = 64 * 1024 * 1024) -> str | None:
    """A SHA-256 (hex) over what ``path`` holds: a file's bytes, or a folder's names, bytes and links.

    A symbolic link counts by its target text (it is not followed); names are relative to ``path``.

    Args:
        path: a file or a folder.
        limit: bytes read at most; past it the content is not worth a key.

    Returns:
        The digest, or ``None`` when ``path`` is missing, unreadable, larger than ``limit`` or
        something other than files, folders and links.
    """
    digest, read = hashlib.sha256(), 0
    try:
        entries = [path] if not path.is_dir() or path.is_symlink() else [path, *sorted(path.rglob("*"))]
        for item in entries:
            name = item.relative_to(path).as_posix()
            if item.is_symlink():
                digest.update(f"link {name}\0{os.readlink(item)}\0".encode("utf-8", "surrogateescape"))
            elif item.is_dir():
                digest.update(f"folder {name}\0".encode("utf-8", "surrogateescape"))
            elif item.is_file():
                read += item.stat().st_size
                if read > limit:
                    return None
                digest.update(f"file {name}\0{item.stat().st_size}\0".encode("utf-8", "surrogateescape"))
                digest.update(item.read_bytes())
            else:
                return None
    except OSError:
        return None
    return digest.hexdigest()


def _path(kind: str, entry: str) -> Path | None:
    return None if _folder is None else _folder / f"{kind}-{entry[:64]}.json"


def load(kind: str, entry: str) -> Any | None:
    """The entry of ``kind`` (a word: ``"scan"``, ``"probe"``) under key ``entry``, or ``None`` (not there, unreadable)."""
    path = _path(kind, entry)
    try:
        return None if path is None else json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def store(kind: str, entry: str, doc: Any) -> None:
    """Keep ``doc`` (JSON-safe data) as the entry of ``kind`` under key ``entry``, when sharing; never raises OSError."""
    path = _path(kind, entry)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        os.replace(scratch, path)
    except OSError:
        pass  # not shared: every worker still computes it for itself


@contextlib.contextmanager
def _one_at_a_time(kind: str, entry: str) -> Iterator[None]:
    """Hold the entry's lock file (``flock``; the kernel lets go of it when the holder dies), or go on without."""
    path = _path(kind, entry)
    fd = None
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def computed(kind: str, entry: str, compute: Callable[[], _T], *, read: Callable[[Any], _T | None],
             write: Callable[[_T], Any | None]) -> _T:
    """The value of an entry: another worker's, or ``compute()`` here, kept for the others.

    Args:
        kind: a word for what the entry is (``"scan"``, ``"probe"``, ``"stack"``).
        entry: its key (:func:`key`); ``""``: this value is not to be shared.
        compute: makes the value (a scan, a probe: minutes at most).
        read: the value from kept data, or ``None`` when the data is missing (``None``) or unreadable.
        write: the data to keep for a value, or ``None`` when the value must not be shared (a failed probe).

    Returns:
        The value. While a worker computes an entry, another asking for the same waits for it and
        then reads it; when it was not kept, the waiting worker computes it itself.
    """
    if _folder is None or not entry:
        return compute()
    if (found := read(load(kind, entry))) is not None:
        return found
    with _one_at_a_time(kind, entry):
        if (found := read(load(kind, entry))) is not None:
            return found
        value = compute()
        if (doc := write(value)) is not None:
            store(kind, entry, doc)
        return value
