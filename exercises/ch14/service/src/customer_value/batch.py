"""Customers to score in batch, read from a data directory mounted at run time.

The image holds no data. A directory of CSV files is mounted into the container
(a bind mount or a named volume) at ``DATA_DIR`` (default ``/data``), and the
service reads the file a request names from there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .model import FEATURES

#: Where the data directory is mounted unless DATA_DIR says otherwise.
DEFAULT_DATA_DIR = "/data"

#: Accepted range of each feature (the same bounds as a single /predict request).
BOUNDS = {
    "tenure_months": (0, 600),
    "orders_last_year": (0, 1000),
    "avg_order_value": (0, 100_000),
    "support_tickets": (0, 1000),
}


class DataProblem(Exception):
    """A batch file cannot be scored; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


def data_dir() -> Path:
    """The mounted data directory (``DATA_DIR``, default ``/data``).

    Raises:
        DataProblem (503): nothing is mounted there.
    """
    path = Path(os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    if not path.is_dir():
        raise DataProblem(
            f"No data directory at {path}. Mount one when you start the container, "
            f"e.g. `docker run -v \"$PWD/data:{path}:ro\" ...` or `-v VOLUME_NAME:{path}:ro`.",
            status=503,
        )
    return path


def list_files() -> list[dict[str, object]]:
    """The CSV files in the data directory: ``[{"name": str, "bytes": int}, ...]``, sorted by name."""
    root = data_dir()
    return [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(root.glob("*.csv")) if p.is_file()]


def read_customers(name: str) -> pd.DataFrame:
    """Read and check one CSV file of customers from the data directory.

    Args:
        name: a file name inside the data directory, e.g. ``"customers.csv"`` (no folders).

    Returns:
        The file's rows, with at least the model's feature columns, all numbers within bounds.

    Raises:
        DataProblem: 400 for a name with folders in it, 404 for a missing file,
            422 for a file that is not a CSV of valid customers.
    """
    if not name or Path(name).name != name or name in {".", ".."}:
        raise DataProblem(f"Give a plain file name inside the data directory, not {name!r}.", status=400)
    root = data_dir()
    path = root / name
    if not path.is_file():
        available = ", ".join(str(f["name"]) for f in list_files()) or "none"
        raise DataProblem(f"There is no file {name!r} in {root} (CSV files there: {available}).", status=404)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataProblem(f"{name} cannot be read as CSV: {exc}", status=422) from exc
    missing = [col for col in FEATURES if col not in frame.columns]
    if missing:
        raise DataProblem(f"{name} lacks the column(s) {', '.join(missing)}; it needs {', '.join(FEATURES)}.",
                          status=422)
    problems = []
    for col, (low, high) in BOUNDS.items():
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = frame.index[values.isna() | (values < low) | (values > high)]
        if len(bad):
            rows = ", ".join(str(i + 2) for i in bad[:5])  # +2: header line, 1-based lines
            problems.append(f"{col} is missing, not a number or outside {low}..{high} on line(s) {rows}")
        frame[col] = values
    if problems:
        raise DataProblem(f"{name} has invalid customers: " + "; ".join(problems) + ".", status=422)
    return frame
