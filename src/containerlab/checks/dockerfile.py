"""Read and parse a student's Dockerfile (static facts: base image, CMD form).

Only what the checks need: instructions with their arguments and line
numbers, ``ARG`` defaults substituted into ``FROM``, stage names followed to
the final stage's base. The build itself is left to BuildKit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

#: What nbgrader puts in place of a solution; a Dockerfile still holding it is untouched.
PLACEHOLDER = "raise NotImplementedError()"
_BOM = "\ufeff"


class DockerfileProblem(ValueError):
    """The Dockerfile cannot be used at all (missing, empty, not text, still the placeholder)."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction.

    Attributes:
        keyword: upper-case instruction, e.g. ``"FROM"``.
        args: the rest of the instruction with line continuations joined.
        line: 1-based line number where it starts.
    """

    keyword: str
    args: str
    line: int


@dataclass(frozen=True)
class Dockerfile:
    """A Dockerfile read from disk, cleaned for the build, and parsed.

    Attributes:
        path: where it was read from.
        text: its text with a byte-order mark removed and Unix line endings.
        instructions: the parsed instructions in order.
        notes: what was cleaned (BOM, CRLF), as sentences for the student.
    """

    path: Path
    text: str
    instructions: tuple[Instruction, ...]
    notes: tuple[str, ...]

    def final_base(self) -> str:
        """Return the image reference the final stage starts from, ``ARG`` defaults substituted.

        A ``FROM`` that names an earlier stage is followed back to that stage's base.
        Returns ``""`` when there is no ``FROM``.
        """
        args: dict[str, str] = {}
        stages: dict[str, str] = {}
        base = ""
        for ins in self.instructions:
            if ins.keyword == "ARG" and not stages and not base:
                name, _, default = ins.args.partition("=")
                args[name.strip()] = default.strip().strip('"').strip("'")
            elif ins.keyword == "FROM":
                words = [w for w in ins.args.split() if not w.startswith("--platform")]
                if not words:
                    continue
                ref = _substitute(words[0], args)
                base = stages.get(ref.lower(), ref)
                if len(words) >= 3 and words[1].lower() == "as":
                    stages[words[2].lower()] = base
        return base

    def stage_count(self) -> int:
        """Number of ``FROM`` instructions (build stages)."""
        return sum(1 for ins in self.instructions if ins.keyword == "FROM")

    def last(self, keyword: str) -> Instruction | None:
        """The last instruction with this keyword (the one that counts for CMD), or ``None``."""
        found = [ins for ins in self.instructions if ins.keyword == keyword]
        return found[-1] if found else None


def _substitute(word: str, args: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return args.get(name, "")

    return re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)", value, word)


def read(path: str | Path) -> Dockerfile:
    """Read and parse a Dockerfile.

    Args:
        path: the file.

    Returns:
        The cleaned text and its instructions; ``notes`` says what was cleaned.

    Raises:
        DockerfileProblem: the file is missing, not UTF-8 text, empty, or still the placeholder.
    """
    path = Path(path)
    if not path.is_file():
        raise DockerfileProblem(
            f"There is no file {path.name} in {path.parent}. Write your Dockerfile in the answer "
            "cell and run that cell: it saves the file."
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DockerfileProblem(
            f"{path.name} is not UTF-8 text (byte {exc.start} cannot be read). Save it as plain UTF-8."
        ) from exc
    notes = []
    if text.startswith(_BOM):
        text = text[1:]
        notes.append(f"{path.name} starts with a byte-order mark (BOM); it was removed for the build. "
                     "Save the file as UTF-8 without BOM.")
    if "\r\n" in text or "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        notes.append(f"{path.name} has Windows (CRLF) line endings; they were changed to Unix (LF) for "
                     "the build. Set your editor to LF line endings.")
    if PLACEHOLDER in text:
        raise DockerfileProblem(
            f"{path.name} still holds the placeholder `{PLACEHOLDER}`. Replace the two placeholder "
            "lines of the answer cell with your Dockerfile and run the cell again."
        )
    instructions = parse(text)
    if not instructions:
        raise DockerfileProblem(f"{path.name} holds no instructions. Start it with a FROM line.")
    return Dockerfile(path=path, text=text, instructions=tuple(instructions), notes=tuple(notes))


def parse(text: str) -> list[Instruction]:
    """Split Dockerfile text into instructions (comments dropped, continuations joined)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        joined = " ".join(pending)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    return instructions


def exec_form(args: str) -> list[str] | None:
    """Return the argument list when ``args`` is exec form (a JSON array of strings), else ``None``."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def is_slim_python(reference: str) -> bool:
    """Whether an image reference names a slim Python image (``python:3.13-slim``, ``python:slim-bookworm``).

    The registry and ``library/`` prefixes are ignored; a digest pin is allowed.
    """
    ref = reference.split("@", 1)[0]
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    name = name.removeprefix("docker.io/").removeprefix("library/")
    return name == "python" and "slim" in tag.split("-")


#: Files that list dependencies: copying them before the install keeps the install cacheable.
_MANIFEST = re.compile(r"(^|/)(requirements[\w.-]*\.(txt|in)|constraints[\w.-]*\.txt|pyproject\.toml|setup\.cfg"
                       r"|poetry\.lock|uv\.lock|Pipfile(\.lock)?|[\w.-]+\.lock)$", re.IGNORECASE)
_INSTALL = re.compile(r"\b(pip3?|uv pip|poetry|pipenv)\b.*\b(install|sync)\b")


def copy_sources(ins: Instruction) -> list[str]:
    """The sources of a ``COPY``/``ADD`` (flags and the destination left out); ``[]`` for ``--from`` copies."""
    exec_args = exec_form(ins.args)
    words = exec_args if exec_args is not None else ins.args.split()
    if any(w.startswith("--from") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def is_dependency_manifest(path: str) -> bool:
    """Whether ``path`` names a file that lists dependencies (``requirements.txt``, ``pyproject.toml``, a lockfile)."""
    return bool(_MANIFEST.search(path.rstrip("/")))


def code_before_deps(parsed: Dockerfile) -> bool:
    """Whether a stage copies more than the dependency files before the step that installs the dependencies.

    Such a Dockerfile reinstalls every dependency after any code edit: the install
    step depends on the copied code, so the build cache cannot reuse it.
    """
    copied_code = False
    for ins in parsed.instructions:
        if ins.keyword == "FROM":
            copied_code = False
        elif ins.keyword in ("COPY", "ADD"):
            if any(not is_dependency_manifest(src) for src in copy_sources(ins)):
                copied_code = True
        elif ins.keyword == "RUN" and _INSTALL.search(ins.args) and copied_code:
            return True
    return False


def pinned_platforms(parsed: Dockerfile) -> list[tuple[Instruction, str]]:
    """``FROM`` lines that pin a literal ``--platform`` (not ``$BUILDPLATFORM``/``$TARGETPLATFORM``)."""
    found = []
    for ins in parsed.instructions:
        if ins.keyword == "FROM":
            match = re.search(r"--platform=(\S+)", ins.args)
            if match and "$" not in match.group(1):
                found.append((ins, match.group(1)))
    return found
