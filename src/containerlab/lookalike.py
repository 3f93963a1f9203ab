"""Look-alike submissions: pairs of students whose answer files are much closer to each other than to the class.

This is a report for a person to read, never a grade: two students may write
alike for good reasons (they worked from the same example of the book, or
were allowed to work together). Nothing here changes a grade or a feedback.

What is compared: every file a source notebook's answer cell writes with
``%%writefile`` (the Dockerfiles of exercises 1 to 3, exercise 3's run command,
exercise 6's compose file), read from each student's notebook with the
grader's own reader (:func:`containerlab.answers.written_file`: the copy the
student ran last). Each file is first normalised (:func:`normalise`), so that
what does not change the meaning does not count: case of instructions,
whitespace, comments, ``ARG`` and stage names, the order of consecutive
``ENV``/``LABEL``/``EXPOSE`` lines, the order of a ``docker run`` command's
options and their long or short spelling, the order of keys in a compose file.
Lines the student shares with the released starter text or the official
solution count for nothing, and a line counts less the more students wrote
it (:func:`line_weights`): an honest class that all wrote the solution, or the
same common line, is not flagged.

Two normalised files are aligned with :class:`difflib.SequenceMatcher`; a
pair's *similarity* is the weight of the lines they share in the same order
over the weight of all their lines, pooled over the files (a line changed
in one value is a different line: such values are what tells honest
students apart). A pair is
flagged when its similarity is at least :data:`FLAG_SIMILARITY` and exceeds
by :data:`FLAG_MARGIN` what each of the two typically shares with the rest of
the class (the median of their similarities to everyone else).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shlex
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import combinations
from pathlib import Path

import yaml

from . import answers
from .checks.conceptual import NotebookUnreadable
from .exercises import EXERCISES_DIR
from .checks import registry
from .checks.submission import ASSIGNMENT, SOLUTIONS
from .resultfiles import write_atomically

#: Student versions of the notebooks (the released starter text).
STARTERS = EXERCISES_DIR / ASSIGNMENT
#: A pair is flagged from this similarity on (0 to 1) ...
FLAG_SIMILARITY = 0.8
#: ... when it is also this much above what each of the two typically shares with the class.
FLAG_MARGIN = 0.3
#: Normalised lines compared per file at most (an answer is a few dozen; a huge one would make a pair slow).
MAX_LINES = 2000
#: nbgrader's solution markers, which are in the source notebooks and never in a student's answer.
_MARKERS = re.compile(r"^\s*#+\s*(BEGIN|END) SOLUTION\s*$", re.MULTILINE)


@dataclass(frozen=True)
class AnswerFile:
    """A file an answer cell writes.

    Attributes:
        notebook: the notebook's file name.
        filename: the file the cell writes (``ex1.Dockerfile``).
        grade_id: the answer cell's nbgrader id.
        kind: ``"dockerfile"``, ``"run"`` (a shell script with ``docker run``) or ``"compose"``.
    """

    notebook: str
    filename: str
    grade_id: str
    kind: str


def _kind(filename: str) -> str | None:
    name = filename.lower()
    if "dockerfile" in name:
        return "dockerfile"
    if name.endswith(".sh"):
        return "run"
    if name.endswith((".yaml", ".yml")):
        return "compose"
    return None


def answer_files(solutions: Path = SOLUTIONS) -> list[AnswerFile]:
    """The files the answer cells of the source notebooks write, of the kinds compared, in exercise order."""
    found = []
    for exercise in registry.exercises():
        try:
            cells = answers.answer_cells(solutions / exercise.notebook)
        except NotebookUnreadable:
            continue
        found += [AnswerFile(exercise.notebook, filename, grade_id, kind) for filename, grade_id in cells.items()
                  if (kind := _kind(filename))]
    return found


# --------------------------------------------------------------------------- normalising


def _join_continuations(text: str) -> list[str]:
    """Dockerfile lines: comments and blank lines dropped, lines ending in a backslash joined to the next."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current.strip():
        lines.append(current)
    return lines


def _pairs(args: str) -> list[str]:
    """``ENV``/``LABEL`` arguments as ``key=value`` items (the ``key value`` form is one pair)."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    if words and "=" not in words[0]:
        return [f"{words[0]}={' '.join(words[1:])}"]
    return words


def normalise_dockerfile(text: str) -> list[str]:
    """A Dockerfile as one normalised line per instruction.

    Instructions are upper case, whitespace is one space, exec-form lists
    are written one way, ``ENV``/``LABEL`` give one line per key, ``ARG``
    names become ``arg1``, ``arg2``... and stage names ``stage1``... (their
    uses too), and each run of consecutive ``ENV``/``LABEL``/``EXPOSE`` lines is
    sorted (their order does not change the image).
    """
    instructions: list[tuple[str, str]] = []
    for line in _join_continuations(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), re.sub(r"\$\{(\w+)\}", r"$\1", " ".join(args.split()))
        if args.startswith("["):
            try:
                args = json.dumps(json.loads(args))
            except ValueError:
                pass
        if keyword in ("ENV", "LABEL"):
            instructions += [(keyword, pair) for pair in _pairs(args)]
        else:
            instructions.append((keyword, args))
    names: dict[str, str] = {}
    stages: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword == "ARG":
            name = args.split("=", 1)[0].strip()
            names.setdefault(name, f"arg{len(names) + 1}")
        elif keyword == "FROM":
            match = re.search(r"\s+as\s+(\S+)\s*$", args, re.IGNORECASE)
            if match:
                stages.setdefault(match.group(1).lower(), f"stage{len(stages) + 1}")

    def renamed(keyword: str, args: str) -> str:
        for name, new in names.items():
            args = re.sub(rf"\$\{{{re.escape(name)}(?=[:}}])", "${" + new, args)
            args = re.sub(rf"\${re.escape(name)}\b", "$" + new, args)
            if keyword == "ARG" and re.match(rf"{re.escape(name)}(=|$)", args):
                args = new + args[len(name):]
        if keyword == "FROM":
            words = args.split()
            if len(words) >= 3 and words[-2].lower() == "as":
                words[-2:] = ["AS", stages.get(words[-1].lower(), words[-1])]
            first = next((i for i, w in enumerate(words) if not w.startswith("--")), None)
            if first is not None:
                words[first] = stages.get(words[first].lower(), words[first])
            args = " ".join(words)
        for stage, new in stages.items():
            args = re.sub(rf"(?i)(\bfrom=){re.escape(stage)}(?=[\s,]|$)", lambda m, new=new: m.group(1).lower() + new,
                          args)
        return f"{keyword} {args}".strip()

    lines = [renamed(k, a) for k, a in instructions]
    keywords = [k for k, _ in instructions]
    ordered: list[str] = []
    run: list[str] = []
    for keyword, line in zip(keywords, lines, strict=True):
        if keyword in ("ENV", "LABEL", "EXPOSE"):
            run.append(line)
            continue
        ordered += sorted(run) + [line]
        run = []
    return ordered + sorted(run)


#: Options of ``docker container run``: long name -> (shorthand, takes a value), for normalising a run
#: command's option order and spelling only (grading lets Docker's own client read the command).
#: From Docker's CLI reference (docker/cli docs/reference/commandline/container_run.md, the table
#: generated from the CLI's own flag set), plus hidden aliases the CLI still accepts.
OPTIONS: dict[str, tuple[str, bool]] = {
    "add-host": ("", True), "annotation": ("", True), "attach": ("a", True), "blkio-weight": ("", True),
    "blkio-weight-device": ("", True), "cap-add": ("", True), "cap-drop": ("", True),
    "cgroup-parent": ("", True), "cgroupns": ("", True), "cidfile": ("", True), "cpu-count": ("", True),
    "cpu-percent": ("", True), "cpu-period": ("", True), "cpu-quota": ("", True),
    "cpu-rt-period": ("", True), "cpu-rt-runtime": ("", True), "cpu-shares": ("c", True),
    "cpus": ("", True), "cpuset-cpus": ("", True), "cpuset-mems": ("", True), "detach": ("d", False),
    "detach-keys": ("", True), "device": ("", True), "device-cgroup-rule": ("", True),
    "device-read-bps": ("", True), "device-read-iops": ("", True), "device-write-bps": ("", True),
    "device-write-iops": ("", True), "dns": ("", True), "dns-option": ("", True), "dns-search": ("", True),
    "domainname": ("", True), "entrypoint": ("", True), "env": ("e", True), "env-file": ("", True),
    "expose": ("", True), "gpus": ("", True), "group-add": ("", True), "health-cmd": ("", True),
    "health-interval": ("", True), "health-retries": ("", True), "health-start-interval": ("", True),
    "health-start-period": ("", True), "health-timeout": ("", True), "help": ("", False),
    "hostname": ("h", True), "init": ("", False), "interactive": ("i", False),
    "io-maxbandwidth": ("", True), "io-maxiops": ("", True), "ip": ("", True), "ip6": ("", True),
    "ipc": ("", True), "isolation": ("", True), "label": ("l", True), "label-file": ("", True),
    "link": ("", True), "link-local-ip": ("", True), "log-driver": ("", True), "log-opt": ("", True),
    "mac-address": ("", True), "memory": ("m", True), "memory-reservation": ("", True),
    "memory-swap": ("", True), "memory-swappiness": ("", True), "mount": ("", True), "name": ("", True),
    "network": ("", True), "network-alias": ("", True), "no-healthcheck": ("", False),
    "oom-kill-disable": ("", False), "oom-score-adj": ("", True), "pid": ("", True),
    "pids-limit": ("", True), "platform": ("", True), "privileged": ("", False), "publish": ("p", True),
    "publish-all": ("P", False), "pull": ("", True), "quiet": ("q", False), "read-only": ("", False),
    "restart": ("", True), "rm": ("", False), "runtime": ("", True), "security-opt": ("", True),
    "shm-size": ("", True), "sig-proxy": ("", False), "stop-signal": ("", True),
    "stop-timeout": ("", True), "storage-opt": ("", True), "sysctl": ("", True), "tmpfs": ("", True),
    "tty": ("t", False), "ulimit": ("", True), "use-api-socket": ("", False), "user": ("u", True),
    "userns": ("", True), "uts": ("", True), "volume": ("v", True), "volume-driver": ("", True),
    "volumes-from": ("", True), "workdir": ("w", True),
    # hidden, still accepted by the CLI
    "net": ("", True), "net-alias": ("", True), "kernel-memory": ("", True),
    "disable-content-trust": ("", False),
}

#: Short options of ``docker run`` to their long names.
_SHORT = {short: name for name, (short, _) in OPTIONS.items() if short}


def _docker_run(words: list[str]) -> list[str]:
    """The lines of one ``docker run``: its options sorted, each as ``--long value``, then the image and arguments."""
    options, rest, i = [], [], 0
    while i < len(words):
        word = words[i]
        if word == "--":
            rest = words[i + 1:]
            break
        if word.startswith("--"):
            name, has, value = word[2:].partition("=")
            if not has and OPTIONS.get(name, ("", False))[1] and i + 1 < len(words):
                i, value = i + 1, words[i + 1]
            options.append(f"--{name} {value}".strip())
        elif word.startswith("-") and len(word) > 1:
            for k, letter in enumerate(word[1:], start=1):
                name = _SHORT.get(letter, letter)
                if OPTIONS.get(name, ("", False))[1]:
                    value = word[k + 1:].lstrip("=")
                    if not value and i + 1 < len(words):
                        i, value = i + 1, words[i + 1]
                    options.append(f"--{name} {value}")
                    break
                options.append(f"--{name}")
        else:
            rest = words[i:]
            break
        i += 1
    image = [f"image {rest[0]}"] if rest else []
    return sorted(options) + image + ([" ".join(["args", *rest[1:]])] if len(rest) > 1 else [])


def normalise_run_command(text: str) -> list[str]:
    """A shell script with ``docker run`` as normalised lines.

    Words are read as the shell splits them (quotes and comments gone,
    continued lines joined); ``$(pwd)`` and ``${PWD}`` are written ``$PWD``. Each
    ``docker run`` (or ``docker container run``) gives one line per option, in
    a fixed order and with the long name (``-p`` is ``--publish``), then its
    image and its arguments; any other command is one line.
    """
    text = re.sub(r"\\\s*\n", " ", text)
    text = re.sub(r"\$\(\s*pwd\s*\)|\$\{PWD\}|`pwd`", "$PWD", text)
    lines = []
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if not words:
            continue
        if words[:2] == ["docker", "run"] or words[:3] == ["docker", "container", "run"]:
            lines += _docker_run(words[2 if words[1] == "run" else 3:])
        else:
            lines.append(" ".join(words))
    return lines


class _TooLarge(ValueError):
    """A compose file expands to more than :data:`MAX_LINES` lines (e.g. YAML aliases nested many deep)."""


def _flatten(node: object, path: str, out: list[str]) -> None:
    if len(out) > MAX_LINES:
        raise _TooLarge(path)
    if isinstance(node, list) and path.endswith(("environment", "labels")) \
            and all(isinstance(i, str) for i in node):
        node = dict(item.partition("=")[::2] for item in node)  # the list form of a mapping
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(node, list):
        for item in node:
            _flatten(item, f"{path}[]", out)
    else:
        out.append(f"{path}={'' if node is None else node}")


def normalise_compose(text: str) -> list[str]:
    """A compose file as sorted ``path=value`` lines (``services.api.ports[]=8000:80``).

    The file is read as YAML (comments, quoting, layout and key order gone;
    ``environment``/``labels`` lists read as the mappings they stand for). A
    file that is not YAML, or that expands to more than :data:`MAX_LINES`
    lines, is compared line by line, comments and whitespace dropped.
    """
    as_text = [" ".join(line.split()) for line in text.splitlines()
               if line.strip() and not line.strip().startswith("#")]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return as_text
    if not isinstance(data, dict):
        return as_text
    lines: list[str] = []
    try:
        _flatten(data, "", lines)
    except _TooLarge:
        return as_text
    return sorted(lines)


#: How each kind of answer file is normalised.
NORMALISERS: dict[str, Callable[[str], list[str]]] = {
    "dockerfile": normalise_dockerfile, "run": normalise_run_command, "compose": normalise_compose}


def normalise(text: str, kind: str) -> list[str]:
    """The normalised lines of one answer file of ``kind`` (see :class:`AnswerFile`)."""
    return NORMALISERS[kind](text)


# --------------------------------------------------------------------------- reading the class


def reference_lines(file: AnswerFile, *, solutions: Path = SOLUTIONS, starters: Path = STARTERS) -> set[str]:
    """The normalised lines of the released starter text and of the official solution of one answer file.

    Both are read with the grader's reader from the answer cell of the source
    notebook (nbgrader's solution markers removed) and of the student version.
    """
    found: set[str] = set()
    for folder in (solutions, starters):
        try:
            text = answers.written_file(folder / file.notebook, file.filename, grade_id=file.grade_id).text
        except (NotebookUnreadable, answers.AnswerMissing):
            continue
        found.update(normalise(_MARKERS.sub("", text), file.kind))
    return found


@dataclass
class ClassAnswers:
    """The normalised answer files of a class.

    Attributes:
        files: the answer files compared.
        lines: per student, per file name, the normalised lines (a file the student did not write is absent).
        reference: per file name, the lines of the starter and the solution.
        problems: per student, why a file could not be read (a sentence each).
    """

    files: list[AnswerFile]
    lines: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    reference: dict[str, set[str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)


def read_class(submissions: Path, *, solutions: Path = SOLUTIONS, starters: Path = STARTERS) -> ClassAnswers:
    """Read and normalise every student's answer files.

    Args:
        submissions: one folder per student, as ``containerlab grade`` reads it.
        solutions: the source notebooks (which files are answers; the official solution).
        starters: the student versions (the starter text).

    Returns:
        The class's answers; a notebook that cannot be read is a problem of that student, never an error.

    Raises:
        batch.SubmissionsNotFound: there is no student folder.
    """
    from .batch import student_folders

    files = answer_files(solutions)
    found = ClassAnswers(files, reference={f.filename: reference_lines(f, solutions=solutions, starters=starters)
                                           for f in files})
    for student, folder in student_folders(submissions).items():
        mine: dict[str, list[str]] = {}
        for file in files:
            notebook, _ = answers.find_notebook(folder, file.notebook)
            try:
                text = answers.written_file(notebook, file.filename, grade_id=file.grade_id).text
            except (NotebookUnreadable, answers.AnswerMissing) as exc:
                found.problems.setdefault(student, []).append(f"{file.filename}: {exc}")
                continue
            lines = normalise(text, file.kind)
            if len(lines) > MAX_LINES:
                found.problems.setdefault(student, []).append(
                    f"{file.filename}: {len(lines)} lines; only the first {MAX_LINES} were compared")
            mine[file.filename] = lines[:MAX_LINES]
        found.lines[student] = mine
    return found


# --------------------------------------------------------------------------- comparing


def line_weights(lines: dict[str, dict[str, list[str]]], reference: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    """How much a shared line says, per file name and line: 0 for starter or solution lines, else by rarity.

    A line written by ``df`` of ``n`` students weighs ``log(n / df) / log(n)``:
    1 for a line only one student wrote, 0 for a line everyone wrote (with
    fewer than three students, every own line weighs 1).
    """
    n = len(lines)
    counts: dict[str, Counter[str]] = {}
    for mine in lines.values():
        for filename, own in mine.items():
            counts.setdefault(filename, Counter()).update(set(own))
    weights: dict[str, dict[str, float]] = {}
    for filename, counter in counts.items():
        ref = reference.get(filename, set())
        weights[filename] = {line: 0.0 if line in ref else 1.0 if n < 3 else math.log(n / df) / math.log(n)
                             for line, df in counter.items()}
    return weights


@dataclass(frozen=True)
class Pair:
    """Two students and how alike their answer files are.

    Attributes:
        a, b: the students (``a`` before ``b`` in sort order).
        similarity: 0 (nothing of their own in common) to 1 (the same own lines), pooled over the files.
        files: per file name, that file's similarity (files both wrote with lines of their own).
        shared: per file name, the normalised lines of their own they share (the evidence to read).
        typical_a, typical_b: the median similarity of ``a`` (``b``) to every other student.
        flagged: whether the pair is much closer than either is to the class (see the module's text).
    """

    a: str
    b: str
    similarity: float
    files: dict[str, float]
    shared: dict[str, list[str]]
    typical_a: float = 0.0
    typical_b: float = 0.0
    flagged: bool = False


def _compare(a: list[str], b: list[str], weight: dict[str, float]) -> tuple[float, float, list[str]]:
    """Matched weight, total weight and shared own lines of two normalised files."""
    total = sum(weight.get(x, 1.0) for x in a) + sum(weight.get(x, 1.0) for x in b)
    if total == 0:
        return 0.0, 0.0, []
    matched, shared = 0.0, []
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    for i, _, size in matcher.get_matching_blocks():
        for line in a[i:i + size]:
            if weight.get(line, 1.0):
                matched += 2 * weight.get(line, 1.0)
                shared.append(line)
    return matched, total, shared


def compare(answers_: ClassAnswers) -> list[Pair]:
    """Compare every pair of students; flagged pairs first, then by similarity (highest first).

    Returns:
        Every pair with a similarity above 0 (pairs with nothing of their own in common are left out).
    """
    weights = line_weights(answers_.lines, answers_.reference)
    students = sorted(answers_.lines)
    distinct: dict[tuple[str, ...], int] = {}  # students who wrote the same file are compared once
    ids = {s: {f: distinct.setdefault(tuple(lines), len(distinct)) for f, lines in answers_.lines[s].items()}
           for s in students}
    done: dict[tuple[str, int, int], tuple[float, float, list[str]]] = {}
    found: dict[tuple[str, str], Pair] = {}
    for a, b in combinations(students, 2):
        matched = total = 0.0
        files: dict[str, float] = {}
        shared: dict[str, list[str]] = {}
        for filename in sorted(answers_.lines[a].keys() & answers_.lines[b].keys()):
            key = (filename, ids[a][filename], ids[b][filename])
            if key not in done:
                done[key] = _compare(answers_.lines[a][filename], answers_.lines[b][filename],
                                     weights.get(filename, {}))
            m, t, lines = done[key]
            matched, total = matched + m, total + t
            if t:
                files[filename] = m / t
            if lines:
                shared[filename] = lines
        if matched:
            found[a, b] = Pair(a, b, matched / total, files, shared)
    by_student: dict[str, list[float]] = {s: [0.0] * (len(students) - 1) for s in students}
    filled: Counter[str] = Counter()
    for (a, b), pair in found.items():
        by_student[a][filled[a]] = pair.similarity
        by_student[b][filled[b]] = pair.similarity
        filled[a] += 1
        filled[b] += 1
    typical = {s: statistics.median(v) if v else 0.0 for s, v in by_student.items()}
    pairs = []
    for pair in found.values():
        ta, tb = typical[pair.a], typical[pair.b]
        flagged = pair.similarity >= FLAG_SIMILARITY and pair.similarity - max(ta, tb) >= FLAG_MARGIN
        pairs.append(Pair(pair.a, pair.b, pair.similarity, pair.files, pair.shared, ta, tb, flagged))
    return sorted(pairs, key=lambda p: (not p.flagged, -p.similarity, p.a, p.b))


def write_csv(pairs: list[Pair], path: Path) -> None:
    """Write the pairs as CSV: ``student_a``, ``student_b``, ``similarity``, ``typical_a``, ``typical_b``,
    ``flagged`` (``yes``/``no``), then one column per answer file (its similarity, empty when not compared)."""
    filenames = sorted({f for p in pairs for f in p.files})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student_a", "student_b", "similarity", "typical_a", "typical_b", "flagged", *filenames])
    for p in pairs:
        writer.writerow([p.a, p.b, f"{p.similarity:.3f}", f"{p.typical_a:.3f}", f"{p.typical_b:.3f}",
                         "yes" if p.flagged else "no", *(f"{p.files[f]:.3f}" if f in p.files else ""
                                                         for f in filenames)])
    write_atomically(path, buffer.getvalue())


@dataclass
class LookalikeReport:
    """What :func:`report` wrote: the pairs, the problems met, and the files."""

    pairs: list[Pair]
    answers: ClassAnswers
    csv: Path
    html: Path


def report(submissions: Path, *, out: Path, solutions: Path = SOLUTIONS, starters: Path = STARTERS) -> LookalikeReport:
    """Compare a class's answer files and write ``out/lookalike.csv`` and ``out/lookalike.html``.

    Args:
        submissions: one folder per student, as ``containerlab grade`` reads it.
        out: the folder to write into (made when missing).
        solutions: the source notebooks. starters: the student versions.

    Raises:
        batch.SubmissionsNotFound: there is no student folder.
    """
    from . import report as render

    read = read_class(submissions, solutions=solutions, starters=starters)
    pairs = compare(read)
    result = LookalikeReport(pairs, read, out / "lookalike.csv", out / "lookalike.html")
    write_csv(pairs, result.csv)
    write_atomically(result.html, render.lookalike_html(pairs, read.problems, students=len(read.lines)))
    return result
