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

Outside a class grading (a student's check cell) nothing is shared: :func:`load`
finds nothing and :func:`store` keeps nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
