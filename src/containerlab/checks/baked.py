"""What must not be baked into an image: a secret value or a data file, in any layer, the config or the history.

Exercise 3 (:func:`.ex3.scan_checks`) and the check of any project (:mod:`.project`)
give the same two results, ``no-secret-in-image`` and ``no-data-in-image``; the scan
itself is :func:`containerlab.scan.scan_image`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from .. import scan
from . import CheckResult

#: Data files larger than this (bytes) are not read to be searched for (the scan holds them in memory).
MAX_DATA_FILE_BYTES = 50_000_000

#: Makes one result: ``(name, passed, message, hint) -> CheckResult`` (each caller has its own points).
MakeResult = Callable[[str, bool, str, str], CheckResult]


def data_files(paths: Iterable[Path], root: Path) -> dict[str, bytes]:
    """The bytes of data files to look for, by their path relative to ``root`` (POSIX form).

    Files larger than :data:`MAX_DATA_FILE_BYTES` are left out.
    """
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(paths) if p.is_file() and p.stat().st_size <= MAX_DATA_FILE_BYTES}


def scan_checks(image: str, *, values: list[str], data: dict[str, bytes], make: MakeResult,
                data_source: str = "the data folder") -> list[CheckResult]:
    """Scan every layer, the config and the history of ``image`` for secret values and data files.

    Secrets are found by their values in any file, ``ENV``, label or build step,
    whatever the file is called, and by file kind (``.env`` files, private keys).
    Data files are found by their bytes in any file of any layer, renamed or
    deleted later, and by name.

    Args:
        image: the image tag (``""`` when there is none: both checks fail, saying so).
        values: the secret values to look for.
        data: data file path to its bytes (:func:`data_files`).
        make: makes each result.
        data_source: where the data files come from, for the message ("the data folder").

    Returns:
        The ``no-secret-in-image`` and ``no-data-in-image`` results.

    Raises:
        scan.ScanError: the image could not be read.
    """
    if not image:
        return [make(n, False, "There is no image to scan.", "Make the build pass first.")
                for n in ("no-secret-in-image", "no-data-in-image")]
    findings = scan.scan_image(image, secret_values=values, data_min_bytes=1, data_files=data)
    data_names = {Path(name).name for name in data}
    secret = [f for f in findings if f.kind in (scan.SECRET_VALUE, scan.SECRET_FILE, scan.SECRET_NAME)]
    baked = [f for f in findings if f.kind == scan.DATA_COPY
             or (f.kind == scan.DATA_FILE and Path(f.path).name in data_names)]
    out = []
    if secret:
        out.append(make("no-secret-in-image", False, f"{len(secret)} finding(s):\n" + _listed(secret),
                        "Keep secrets out of every instruction: no ENV or ARG with the token, no COPY or ADD of "
                        ".env under any name (deleting it in a later step does not remove it from the earlier "
                        "layer). Pass the token when the container starts."))
    else:
        out.append(make("no-secret-in-image", True, "The scan found no secret in any layer, the config or the "
                        "history.", ""))
    if baked:
        out.append(make("no-data-in-image", False, f"{len(baked)} data file(s) in the layers:\n" + _listed(baked),
                        "Copy only the requirements file and the code; mount the data folder when the "
                        "container starts."))
    else:
        out.append(make("no-data-in-image", True, f"No file of {data_source} is in any layer.", ""))
    return out


#: Findings named one by one in a message; the rest are counted.
LISTED_FINDINGS = 5


def _listed(findings: list[scan.Finding]) -> str:
    """The first :data:`LISTED_FINDINGS` findings, one line each (where, path, what), and how many more."""
    lines = []
    for f in findings[:LISTED_FINDINGS]:
        where = f"layer {f.layer} ({f.instruction})" if f.where == "layer" else f.where
        path = f"/{f.path}: " if f.where == "layer" else ""
        lines.append(f"- {where}: {path}{f.detail}")
    if len(findings) > LISTED_FINDINGS:
        lines.append(f"- and {len(findings) - LISTED_FINDINGS} more")
    return "\n".join(lines)
