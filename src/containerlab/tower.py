"""The "environment tower": what an environment is made of, from the OS up to the packages.

A lockfile pins only the top rows (packages); an image freezes every row except
the kernel, which containers share with their host.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import engine, tower_probe

_PROBE_SOURCE = Path(tower_probe.__file__).read_text()


def host_tower() -> dict[str, str]:
    """Return the tower of the Python running this code (row name to version text)."""
    return tower_probe.probe()


def image_tower(image_name: str) -> dict[str, str]:
    """Return the tower inside a throwaway container of ``image_name``.

    Args:
        image_name: an image with ``python`` on its PATH.

    Raises:
        engine.ContainerFailed: the probe could not run in the image.
    """
    return json.loads(engine.exec_output(image_name, ["python", "-c", _PROBE_SOURCE]))


def compare(left: dict[str, str], right: dict[str, str], *, names: tuple[str, str] = ("host", "container")
            ) -> pd.DataFrame:
    """Put two towers side by side, one row per layer, marking the rows that differ.

    Args:
        left, right: towers as returned by :func:`host_tower` / :func:`image_tower`.
        names: column titles for the two towers.

    Returns:
        A DataFrame indexed by layer with the two version columns and a boolean
        ``differs`` column.
    """
    rows = list(dict.fromkeys([*left, *right]))
    table = pd.DataFrame(
        {names[0]: [left.get(r, "-") for r in rows], names[1]: [right.get(r, "-") for r in rows]},
        index=pd.Index(rows, name="layer"),
    )
    table["differs"] = table[names[0]] != table[names[1]]
    return table
