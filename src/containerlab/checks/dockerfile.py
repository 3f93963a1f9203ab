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


#: The newest Dockerfile syntax (1.MINOR) built into the oldest engine the course supports: Engine 26.1
#: vendors BuildKit 0.13, whose Dockerfile frontend is 1.7 (source: moby v26.1 ``vendor/modules.txt``,
#: BuildKit v0.13 ``frontend/dockerfile`` release notes). Newer engines build a newer one in.
BUILTIN_SYNTAX_MINOR = 7
#: A ``# syntax=`` parser directive (only before the first instruction or comment line).
_SYNTAX = re.compile(r"^#\s*syntax\s*=\s*(\S+)\s*$", re.IGNORECASE)
_STABLE_FRONTEND = re.compile(r"^(?:docker\.io/)?docker/dockerfile:1(?:\.(\d+)(?:\.\d+)?)?$")


def builtin_syntax(text: str) -> tuple[str, str]:
    """Build a ``# syntax=docker/dockerfile:1`` Dockerfile with the builder's own frontend.

    Docker's documentation starts its examples with ``# syntax=docker/dockerfile:1``:
    the builder then downloads that frontend image from a registry before it
    reads a line. The course's grading machines reach no registry, and the
    frontend built into the engine already reads stable Dockerfile syntax up to
    1.:data:`BUILTIN_SYNTAX_MINOR` (heredocs, ``COPY --link``, ``--chmod``,
    ``RUN --mount``). So a directive that asks for a stable 1.x release that old
    or older is turned into a comment (the line count stays, so the builder's
    line numbers still match the student's file); any other directive (a newer
    minor, a ``-labs`` channel, another frontend) is kept and built as written.

    Args:
        text: the Dockerfile's text.

    Returns:
        The text to build, and a note for the student (``""`` when nothing changed).
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        match = _SYNTAX.match(line.strip())
        if not match:
            if line.strip().startswith("#") and re.match(r"^#\s*\w+\s*=", line.strip()):
                continue  # another parser directive (escape=, check=)
            break
        stable = _STABLE_FRONTEND.match(match.group(1))
        if stable and int(stable.group(1) or 0) <= BUILTIN_SYNTAX_MINOR:
            lines[index] = f"# (containerlab: built with the engine's own Dockerfile frontend) {line.strip()[1:]}"
            return "\n".join(lines), (
                f"Your `{line.strip()}` line asks the builder to download that frontend from a registry; this "
                "check built with the Dockerfile frontend the engine has built in, which reads the same stable "
                f"syntax (1.{BUILTIN_SYNTAX_MINOR} and older). The line is fine to keep.")
        break
    return text, ""


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
    text, syntax_note = builtin_syntax(text)
    if syntax_note:
        notes.append(syntax_note)
    instructions = parse(text)
    if not instructions:
        raise DockerfileProblem(f"{path.name} holds no instructions. Start it with a FROM line.")
    return Dockerfile(path=path, text=text, instructions=tuple(instructions), notes=tuple(notes))


#: A heredoc opener in an instruction (Dockerfile 1.4): ``<<EOF``, ``<<-EOF``, ``<<"EOF"``, ``<<'EOF'``.
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def parse(text: str) -> list[Instruction]:
    """Split Dockerfile text into instructions (comments dropped, continuations joined, heredocs kept).

    A heredoc (``RUN <<EOF`` ... ``EOF``, Dockerfile syntax 1.4, built into
    BuildKit since Engine 23) belongs to the instruction that opens it: its lines
    are added to that instruction's ``args``, one per line, and are never read as
    instructions of their own. Source: docs.docker.com/reference/dockerfile/#here-documents.
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    bodies: list[str] = []
    heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs) still to read, in order
    start = 0

    def finish() -> None:
        joined = " ".join(part for part in pending if part)
        keyword, _, args = joined.partition(" ")
        args = "\n".join([args.strip(), *bodies]) if bodies else args.strip()
        instructions.append(Instruction(keyword.upper(), args, start))
        pending.clear()
        bodies.clear()

    for number, line in enumerate(text.split("\n"), start=1):
        if heredocs:
            delimiter, strip_tabs = heredocs[0]
            body_line = line.lstrip("\t") if strip_tabs else line
            if body_line == delimiter:
                heredocs.pop(0)
                if not heredocs:
                    finish()
            else:
                bodies.append(body_line)
            continue
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
        opened = [(m.group(3), m.group(1) == "-") for m in _HEREDOC.finditer(" ".join(pending))]
        if opened:
            heredocs.extend(opened)
            continue
        finish()
    if pending:
        finish()
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
    first_line = ins.args.split("\n", 1)[0]  # the lines after it are heredoc bodies
    exec_args = exec_form(first_line)
    words = exec_args if exec_args is not None else first_line.split()
    if any(w.startswith("--from") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    # A heredoc source (COPY <<EOF /app/settings.toml) is text written in the Dockerfile, not a file of the context.
    return [w for w in words[:-1] if not _HEREDOC.match(w)]


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
