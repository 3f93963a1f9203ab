"""Exercise 5: when is a container worth it, a free-text answer a person grades (:mod:`.conceptual`)."""

from __future__ import annotations

from . import conceptual
from .registry import Exercise

SPEC = Exercise("ex5", "ex5-when-not-to-containerise.ipynb", conceptual.grade, problem=conceptual.unreadable)
