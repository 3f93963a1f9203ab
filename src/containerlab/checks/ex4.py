"""Exercise 4: the container as the end of the lockfile, a free-text answer a person grades (:mod:`.conceptual`)."""

from __future__ import annotations

from . import conceptual
from .registry import Exercise

SPEC = Exercise("ex4", "ex4-the-lockfile-analogy.ipynb", conceptual.grade, problem=conceptual.unreadable)
