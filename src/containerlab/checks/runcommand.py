"""Read exercise 3's run command the way the shell and Docker read it.

A student writes the command that starts their service (``ex3-run.sh``). The
check does not run it: it reads it, and starts the container itself inside the
grading sandbox with the environment and the mounts the command asks for. So
the reading must agree with what the student's terminal would do, step by step:

1. **The shell** (POSIX ``sh``, as bash runs it) splits the text into
   statements and words: quotes, ``\\`` escapes and continuations, comments,
   ``$NAME``/``${NAME}``/``${NAME:-default}``, ``$PWD``/``$(pwd)``. A few
   statements before ``docker run`` are understood, because they are how the
   book loads an env file: ``NAME=value``, ``export NAME[=value]``,
   ``set -a``/``set +a`` (``set -o allexport``), ``. FILE``/``source FILE``
   of a file inside the folder, ``unset``. Harmless lines (``docker build``,
   ``docker rm -f``, ``echo``, ``sleep``, ``curl``) are left out with a note.
   What the check cannot know without running it (command substitution,
   pipes, redirections, ``cd``, ``sudo``) is refused with what to write instead.
2. **The Docker CLI** reads the options of ``docker run`` with Go's pflag
   rules: combined short flags (``-dp 8000:80``, ``-itd``), a value glued to
   its short flag (``-p8000:80``, ``-p=8000:80``), ``--opt=value`` and
   ``--opt value``, boolean flags that take ``=true``/``=false`` but never
   the next word, ``--`` ending the options, and the first word that is not
   an option is the image; everything after it is the container's command.
   The option table (which options take a value) is Docker's reference for
   ``docker container run`` (docker/cli, ``docs/reference/commandline/
   container_run.md``, https://docs.docker.com/reference/cli/docker/container/run/),
   plus the hidden aliases the CLI still accepts (``--net``, ``--net-alias``,
   ``--kernel-memory``, ``--disable-content-trust``).
3. **Docker's meaning** of what matters here: ``-e NAME=value``, ``-e NAME``
   (the value comes from the environment of the shell that runs ``docker``;
   absent there, the variable is not set at all), ``--env-file`` (Docker's
   own line format, not the shell's: ``pkg/kvfile`` of docker/cli; measured
   with Docker 28.2: quotes are kept as part of the value), env files first
   and then ``-e`` whatever the order on the line, ``-v``/``--volume`` and
   ``--mount``. For ``-v SOURCE:TARGET``, a source that starts with neither
   ``/`` nor ``.`` is the *name of a volume*, not a path (so ``service/data``
   is an invalid volume name and Docker refuses the command); sources that
   start with ``.`` are made absolute by the CLI (docker/cli 23 and later,
   ``cli/command/container/opts.go``), as are ``--mount`` sources that start
   with ``./`` (``opts/mount.go``).

Every other option of the table is either left out with a note, because it
does not change what is graded (``--restart``, ``--name``, ``--rm``, ``-d``,
``-it``, ``-p``, resource limits: the sandbox sets its own), or refused
because it would weaken the sandbox (:data:`SECURITY_RULES`). Refusals of the
second kind say that they are the grader's security rule, not Docker's.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from .dockerfile import PLACEHOLDER

__all__ = ["RunCommandProblem", "SecurityRule", "RunSpec", "Mount", "parse_run_command", "read_env_file",
           "inside", "OPTIONS"]


class RunCommandProblem(ValueError):
    """The run command cannot be used as written; the message says what is wrong and what to write."""


class SecurityRule(RunCommandProblem):
    """The run command asks for something the grader's sandbox refuses (not a Docker error)."""


@dataclass(frozen=True)
class Mount:
    """One mount the command asks for.

    Attributes:
        kind: ``"bind"`` (a host path), ``"volume"`` (a named or anonymous volume) or ``"tmpfs"``.
        target: the path inside the container.
        source: for a bind, the resolved host path; for a volume, its name (``""`` when anonymous).
        read_only: mounted read-only.
        written: the option as the student wrote it (for messages; no host paths).
    """

    kind: str
    target: str
    source: Path | str = ""
    read_only: bool = False
    written: str = ""


@dataclass
class RunSpec:
    """What a student's ``docker run`` command asks for, resolved against their folder.

    Attributes:
        environment: the container's variables, as Docker would set them.
        volumes: bind mounts for the Docker SDK, absolute host path to ``{"bind": target, "mode": "ro"|"rw"}``.
        image: the image the command names.
        notes: what the check left out or read in a particular way, as sentences.
        mounts: every mount asked for (binds, volumes, tmpfs), in order.
        command: the words after the image (the container's command; the check runs the image's own).
        reads: files and folders the command reads from the exercise folder (env files, sourced
            files, bind sources), relative to it, POSIX form, in order.
    """

    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    image: str = ""
    notes: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)

    @property
    def named_volumes(self) -> list[Mount]:
        """The volume mounts (named or anonymous): Docker-managed storage, empty where the work is graded."""
        return [m for m in self.mounts if m.kind == "volume"]

    def host_file(self, path: str) -> Path | None:
        """The host file a bind mount puts at ``path`` inside the container, or ``None``.

        A file bind (``-v ./token:/run/secrets/api_token``) and a folder bind that
        holds the path (``-v ./secrets:/run/secrets``) both count; as in Docker, the
        deepest mount that holds the path wins. A file reached through a link that
        leads out of the mounted source is not given (the grader never reads it).
        """
        target = _clean_target(path)
        best: tuple[int, Path, Path] | None = None
        for mount in self.mounts:
            where = _clean_target(mount.target)
            if target != where and not target.startswith(where.rstrip("/") + "/"):
                continue
            if best is not None and len(where) < best[0]:
                continue
            if mount.kind != "bind":
                best = (len(where), Path(), Path())
                continue
            source = Path(mount.source)
            best = (len(where), source, source / target[len(where.rstrip("/")) + 1:] if target != where else source)
        if best is None or best[1] == Path():
            return None
        source, found = best[1].resolve(), best[2].resolve()
        return found if found == source or found.is_relative_to(source) else None


# --- Docker's option table -------------------------------------------------------------------------

#: Options of ``docker container run``: long name -> (shorthand, takes a value).
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
_SHORT = {short: name for name, (short, _) in OPTIONS.items() if short}

#: What each refused option would open, for the message (the grader's rule, not Docker's).
SECURITY_RULES = {
    "privileged": "it gives the container every capability and the host's devices",
    "cap-add": "it gives the container Linux capabilities beyond Docker's default set",
    "device": "it hands a host device to the container",
    "device-cgroup-rule": "it lets the container use host devices",
    "gpus": "it hands the host's GPUs to the container",
    "security-opt": "it changes the container's seccomp, AppArmor or SELinux confinement",
    "use-api-socket": "it mounts the Docker engine's socket, which controls the whole machine",
    "volumes-from": "it mounts the volumes of another container, from outside your exercise folder",
    "cgroup-parent": "it moves the container out of the sandbox's resource limits",
    "network": "it puts the container in the host's (or another container's) network namespace",
    "net": "it puts the container in the host's (or another container's) network namespace",
    "pid": "it lets the container see the host's (or another container's) processes",
    "ipc": "it shares the host's (or another container's) shared memory with the container",
    "uts": "it shares the host's host name namespace with the container",
    "userns": "it turns off user-namespace remapping for the container",
    "cgroupns": "it puts the container in the host's cgroup namespace",
}
_HARDENING = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
_RESOURCES = {"memory", "memory-reservation", "memory-swap", "memory-swappiness", "cpus", "cpu-shares",
              "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems", "pids-limit", "ulimit", "shm-size",
              "blkio-weight", "kernel-memory", "oom-kill-disable", "oom-score-adj"}
_BOOL_WORDS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
               "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
#: moby's rule for local volume names (daemon/names: RestrictedNameChars, at least two characters).
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private",
                 "rprivate", "consistent", "cached", "delegated"}
_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")

_SECURITY = ("Security rule of the grader (not a Docker error): {what}, so the check does not start it "
             "({why}). Leave it out: the service does not need it.")


def security_rule(what: str, option: str, value: str = "") -> SecurityRule:
    """The grader's refusal of one option that would weaken the sandbox, worded the same for every exercise.

    Args:
        what: who asks for it and how it was written, e.g. "the command asks for `--privileged`"
            or "service api asks for `privileged: true`".
        option: the ``docker run`` option it amounts to, a key of :data:`SECURITY_RULES` (its reason
            is given).
        value: the option's value (``host``, ``container:NAME``), to word the reason.

    Returns:
        The exception to raise (its message says what was asked, why it is refused, and to leave it out).
    """
    why = SECURITY_RULES[option]
    if value == "host":
        why = why.replace(" (or another container's)", "")
    elif value.startswith(("container:", "service:")):
        why = why.replace("the host's (or another container's)", "another container's")
    return SecurityRule(_SECURITY.format(what=what, why=why))


def _security(name: str, value: str) -> SecurityRule:
    what = f"`--{name} {value}`" if value else f"`--{name}`"
    return security_rule(f"the command asks for {what}", name, value)


# --- the shell ------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
#: Commands left out with a note: they do not change what the container gets.
_HARMLESS = {"echo", "printf", "sleep", "curl", "wget", "clear", "wait", "date"}
_SILENT = {"true", ":"}
_DOCKER_HARMLESS = {"build", "buildx", "rm", "stop", "kill", "ps", "logs", "images", "image", "inspect",
                    "pull", "tag", "volume", "network", "exec", "start", "restart", "compose", "version",
                    "info", "system", "container"}
_MAX_SOURCE_DEPTH = 3
_TYPOGRAPHIC_QUOTES = "“”‘’„«»"
_BLANKS_AFTER_BACKSLASH = re.compile(r"\\[ \t]+\n")


@dataclass
class _Part:
    """A piece of a word: literal text, a variable, or ``$(pwd)``; quoted pieces are not split."""

    kind: str  # "text" | "var" | "pwd"
    value: str
    quoted: bool
    default: str | None = None  # ${NAME:-default}
    colon: bool = False


@dataclass
class _Word:
    parts: list[_Part] = field(default_factory=list)


class _Lexer:
    """Split shell text into statements of words (POSIX sh rules, the subset a run script uses)."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def problem(self, message: str) -> RunCommandProblem:
        line = self.text.count("\n", 0, self.i) + 1
        return RunCommandProblem(f"The run command cannot be read (line {line}): {message}")

    def statements(self) -> list[list[_Word]]:
        text, out, words = self.text, [], []
        word: _Word | None = None

        def end_word() -> None:
            nonlocal word
            if word is not None:
                words.append(word)
                word = None

        def end_statement() -> None:
            nonlocal words
            end_word()
            if words:
                out.append(words)
            words = []

        while self.i < len(text):
            c = text[self.i]
            if c == "\\" and text.startswith("\\\n", self.i):
                self.i += 2
                continue
            if c == "\\" and _BLANKS_AFTER_BACKSLASH.match(text, self.i):
                raise self.problem("the line ends with a backslash followed by blanks, so it does not continue "
                                   "on the next line (bash would start a new command there); remove the blanks "
                                   "after the backslash.")
            if c in " \t":
                end_word()
                self.i += 1
            elif c == "\n" or c == ";":
                end_statement()
                self.i += 1
            elif c == "#" and word is None:
                while self.i < len(text) and text[self.i] != "\n":
                    self.i += 1
            elif text.startswith("&&", self.i) or text.startswith("||", self.i):
                end_statement()
                self.i += 2
            elif c == "&":
                if text.startswith("&>", self.i):
                    raise self.problem("a redirection (&>) is not read by the check; leave it out.")
                end_statement()
                self.i += 1
            elif c in "|<>()":
                what = {"|": "a pipe (|)", "<": "a redirection (<)", ">": "a redirection (>)",
                        "(": "a subshell ( ... )", ")": "a subshell ( ... )"}[c]
                raise self.problem(f"{what} is not read by the check: write the `docker run` command itself, "
                                   "and the lines that set its variables (NAME=value, export, set -a, . FILE).")
            else:
                if word is None:
                    word = _Word()
                self.word_piece(word)
        end_statement()
        return out

    def word_piece(self, word: _Word) -> None:
        text, c = self.text, self.text[self.i]
        if c == "\\":
            if self.i + 1 < len(text):
                word.parts.append(_Part("text", text[self.i + 1], True))
            self.i += 2
        elif c == "'":
            end = text.find("'", self.i + 1)
            if end < 0:
                raise self.problem("a single quote (') is never closed; check the quotes.")
            word.parts.append(_Part("text", text[self.i + 1:end], True))
            self.i = end + 1
        elif c == '"':
            self.i += 1
            self.double_quoted(word)
        elif c == "$":
            self.dollar(word, quoted=False)
        elif c == "`":
            self.backtick(word, quoted=False)
        else:
            start = self.i
            while self.i < len(text) and text[self.i] not in " \t\n;&|<>()\\'\"$`":
                self.i += 1
            word.parts.append(_Part("text", text[start:self.i], False))

    def double_quoted(self, word: _Word) -> None:
        text, buf = self.text, []
        while True:
            if self.i >= len(text):
                raise self.problem('a double quote (") is never closed; check the quotes.')
            c = text[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.i + 1 < len(text) and text[self.i + 1] in '$`"\\\n':
                if text[self.i + 1] != "\n":
                    buf.append(text[self.i + 1])
                self.i += 2
            elif c in "$`":
                word.parts.append(_Part("text", "".join(buf), True))
                buf = []
                (self.dollar if c == "$" else self.backtick)(word, quoted=True)
            else:
                buf.append(c)
                self.i += 1
        word.parts.append(_Part("text", "".join(buf), True))

    def backtick(self, word: _Word, *, quoted: bool) -> None:
        text = self.text
        end = text.find("`", self.i + 1)
        rest = text[self.i + 1:].split("\n", 1)[0]
        if not rest.strip() or end < 0:
            raise self.problem("a backtick (`) at the end of a line is PowerShell's way to continue a line; "
                               "the check reads the command as a POSIX shell (bash) does: end the line "
                               "with a backslash (\\) instead.")
        inner = text[self.i + 1:end].strip()
        if inner != "pwd":
            raise self.problem(f"the check does not run commands inside `...` (here `{inner}`); "
                               "only `pwd` is understood.")
        word.parts.append(_Part("pwd", "", quoted))
        self.i = end + 1

    def dollar(self, word: _Word, *, quoted: bool) -> None:
        text, i = self.text, self.i
        if text.startswith("$((", i):
            raise self.problem("arithmetic ($((...))) is not read by the check.")
        if text.startswith("$(", i):
            end = text.find(")", i)
            inner = text[i + 2:end].strip() if end > 0 else ""
            if inner == "pwd":
                word.parts.append(_Part("pwd", "", quoted))
                self.i = end + 1
                return
            raise self.problem(
                f"the check does not run command substitutions ($({inner or '...'})). To load an env "
                "file into the shell, write `set -a; . service/.env; set +a` on the line before "
                "`docker run`, or let Docker read it with `--env-file service/.env`.")
        if text.startswith("${", i):
            end = text.find("}", i)
            if end < 0:
                raise self.problem("a ${ is never closed with }.")
            inner = text[i + 2:end]
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-(.*))?", inner, re.DOTALL)
            if not match:
                raise self.problem(f"the check does not read the expansion ${{{inner}}}; write $NAME, "
                                   "${NAME} or ${NAME:-default}.")
            name, colon, default = match.groups()
            word.parts.append(_Part("var", name, quoted, default, colon == ":"))
            self.i = end + 1
            return
        match = _NAME.match(text, i + 1)
        if match:
            word.parts.append(_Part("var", match.group(), quoted))
            self.i = match.end()
            return
        if i + 1 < len(text) and text[i + 1] in "0123456789@*#?$!-":
            raise self.problem(f"the check does not read the special parameter ${text[i + 1]}.")
        word.parts.append(_Part("text", "$", quoted))
        self.i += 1


@dataclass
class _Shell:
    """The shell's state while the check reads the script: variables, exported ones, ``set -a``."""

    folder: Path
    variables: dict[str, str] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)
    allexport: bool = False
    unset_used: set[str] = field(default_factory=set)

    def value(self, part: _Part) -> str:
        if part.kind == "pwd" or part.value == "PWD":
            return str(self.folder)
        if part.value in ("HOME", "USERPROFILE"):
            raise RunCommandProblem(
                f"${part.value} is your home folder, which the grader does not have: write paths from the "
                "folder of this notebook, e.g. \"$PWD/service/data\" or ./service/data.")
        present = part.value in self.variables
        current = self.variables.get(part.value, "")
        if part.default is not None and (not present or (part.colon and not current)):
            return part.default
        if not present:
            self.unset_used.add(part.value)
        return current

    def expand(self, word: _Word) -> list[str]:
        """The words one shell word becomes: expansions filled in, unquoted ones split on blanks.

        ``$PWD`` is never split, so that grading does not depend on where the grader's folder is.
        """
        fields: list[str] = []
        current: str | None = None
        for part in word.parts:
            if part.kind == "text":
                current = (current or "") + part.value
                continue
            value = self.value(part)
            if part.quoted or part.kind == "pwd" or part.value == "PWD":
                current = (current or "") + value
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[:1].isspace() and current is not None:
                fields.append(current)
                current = None
            for piece in pieces[:-1]:
                fields.append((current or "") + piece)
                current = None
            current = (current or "") + pieces[-1]
            if value[-1:].isspace():
                fields.append(current)
                current = None
        if current is not None or (not fields and any(p.quoted for p in word.parts)):
            fields.append(current or "")
        return fields

    def assign(self, name: str, value: str, *, export: bool = False) -> None:
        self.variables[name] = value
        if export or self.allexport:
            self.exported.add(name)

    def environment(self) -> dict[str, str]:
        return {name: self.variables[name] for name in self.exported if name in self.variables}


def inside(folder: Path, path: str, *, what: str = "A mount", who: str = "the command",
           instead: str = "the data folder is service/data") -> Path:
    """Resolve ``path`` (as the CLI would, after ``$PWD`` is filled in) and refuse anything outside ``folder``.

    Args:
        folder: the exercise folder (absolute).
        path: the mount source as written.
        what: what has the path, for the message about an empty one.
        who: who asks for the mount, for the refusal ("the command", "service api").
        instead: what to mount instead, completing "Mount only what is next to this notebook: ...".

    Raises:
        SecurityRule: the path is the Docker socket or leads outside the folder (also through a link).
        RunCommandProblem: the path is empty.
    """
    if not path:
        raise RunCommandProblem(f"{what} has no source path.")
    shown = _shown(path, folder)
    if path.startswith("~"):
        raise RunCommandProblem(f"{shown}: ~ is your home folder, which the grader does not have; write paths "
                                "from the folder of this notebook, e.g. \"$PWD/service/data\" or ./service/data.")
    resolved = (folder / path).resolve()
    if Path(path).name.endswith(_SOCKETS) or resolved.name.endswith(_SOCKETS):
        raise SecurityRule(_SECURITY.format(
            what=f"{who} mounts the Docker socket ({shown})",
            why="the socket controls the Docker engine and, through it, the whole machine"))
    if not resolved.is_relative_to(folder):
        raise SecurityRule(f"Security rule of the grader (not a Docker error): {shown} is outside your exercise "
                           "folder, and the check mounts nothing from outside it. Mount only what is next to "
                           f"this notebook: {instead}.")
    return resolved


def _shown(text: str, folder: Path) -> str:
    """``text`` with the grader's folder written back as ``$PWD`` (no host paths in feedback)."""
    return text.replace(str(folder), "$PWD")


def read_env_file(path: Path, lookup: dict[str, str] | None = None) -> dict[str, str]:
    """Read an env file the way ``docker run --env-file`` does (docker/cli ``pkg/kvfile``).

    Leading blanks are dropped; blank lines and lines starting with ``#`` are skipped;
    ``KEY=VALUE`` keeps the value exactly (blanks and quotes included, as Docker 28
    does); a line ``KEY`` alone takes the value from ``lookup`` (the environment of
    the shell that runs ``docker``) and is skipped when it is not there.

    Raises:
        RunCommandProblem: a line has no name or a name with blanks (Docker refuses the file).
    """
    values: dict[str, str] = {}
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has, value = line.partition("=")
        if not key:
            raise RunCommandProblem(f"Docker refuses the env file {path.name}: line {number} has no variable name.")
        if " " in key or "\t" in key:
            raise RunCommandProblem(f"Docker refuses the env file {path.name}: the variable '{key}' on line "
                                    f"{number} contains blanks.")
        if has:
            values[key] = value
        elif lookup is not None and key in lookup:
            values[key] = lookup[key]
    return values


def _clean_target(path: str) -> str:
    cleaned = re.sub(r"/+", "/", path)
    return cleaned.rstrip("/") or "/"


# --- reading the script ---------------------------------------------------------------------------


def parse_run_command(text: str, folder: Path) -> RunSpec:
    """Read a run script and resolve what its ``docker run`` asks for against ``folder``.

    Args:
        text: the script (the body of the ``%%writefile ex3-run.sh`` cell).
        folder: the student's exercise folder (relative paths start here; ``$PWD`` is it).

    Returns:
        The container's environment, its mounts, the image, and notes on what was left out.

    Raises:
        SecurityRule: the command asks for something that would weaken the sandbox.
        RunCommandProblem: Docker (or the shell) would refuse it, or the check cannot read it;
            the message says what to write instead.
    """
    if PLACEHOLDER in text:
        raise RunCommandProblem(f"The run command still holds the placeholder `{PLACEHOLDER}`. Replace the two "
                                "placeholder lines of the answer cell with your `docker run ...` command and run "
                                "the cell again.")
    folder = folder.resolve()
    shell = _Shell(folder, variables={"PWD": str(folder)})
    spec = RunSpec()
    found = _run_script(text.replace("\r\n", "\n").replace("\r", "\n"), shell, spec, folder, depth=0)
    spec.notes = list(dict.fromkeys(spec.notes))
    if not found:
        raise RunCommandProblem("The run command must contain `docker run ...` (the check found no docker run "
                                "in it); write the command you would type in a terminal next to this notebook.")
    return spec


def _run_script(text: str, shell: _Shell, spec: RunSpec, folder: Path, *, depth: int) -> bool:
    """Read the statements of ``text`` in order; return whether one of them was ``docker run``."""
    found = False
    for statement in _Lexer(text).statements():
        words: list[str] = []
        for word in statement:
            words += shell.expand(word)
        curly = next((w for w in words if any(q in w for q in _TYPOGRAPHIC_QUOTES)), None)
        if curly is not None:
            raise RunCommandProblem(f"`{_shown(curly, folder)}` holds typographic quotes (“ ” ‘ ’), which the shell "
                                    "reads as ordinary characters; type straight quotes (\" or ') instead.")
        prefix: dict[str, str] = {}
        while words and (match := _ASSIGNMENT.match(words[0])):
            prefix[match.group(1)] = match.group(2)
            words = words[1:]
        if not words:
            for name, value in prefix.items():
                shell.assign(name, value)
            continue
        command, args = words[0], words[1:]
        if depth and command not in ("export", "set", "unset", ".", "source"):
            raise RunCommandProblem(f"A file the script sources holds the command `{command}`; the check reads "
                                    "only NAME=value, export and set lines in sourced files.")
        if command == "export":
            for arg in args:
                if arg.startswith("-"):
                    continue
                match = _ASSIGNMENT.match(arg)
                if match:
                    shell.assign(match.group(1), match.group(2), export=True)
                elif _NAME.fullmatch(arg):
                    shell.exported.add(arg)
                    shell.unset_used.discard(arg)
                else:
                    raise RunCommandProblem(f"`export {arg}` is not a variable name.")
        elif command == "unset":
            for arg in args:
                shell.variables.pop(arg, None)
                shell.exported.discard(arg)
        elif command == "set":
            _set_options(args, shell)
        elif command in (".", "source"):
            if not args:
                raise RunCommandProblem(f"`{command}` needs the file to read (e.g. `{command} service/.env`).")
            if depth >= _MAX_SOURCE_DEPTH:
                raise RunCommandProblem("The sourced files source each other too deeply.")
            path = inside(folder, args[0], what=f"`{command}`")
            if not path.is_file():
                raise RunCommandProblem(f"`{command} {_shown(args[0], folder)}`: there is no such file in your "
                                        "exercise folder.")
            _read(spec, path, folder)
            _run_script(path.read_text(encoding="utf-8-sig", errors="replace"), shell, spec, folder,
                        depth=depth + 1)
        elif command == "docker":
            if _docker(args, shell, prefix, spec, folder, seen=found):
                found = True
        elif command in _SILENT:
            continue
        elif command in _HARMLESS:
            spec.notes.append(f"The check leaves out `{command}` lines: it only starts the container.")
        elif command in ("podman", "nerdctl"):
            raise RunCommandProblem(f"The run command must use `docker run` (not {command}).")
        elif command == "cd":
            raise RunCommandProblem("The check reads the command from the folder of this notebook; leave out `cd` "
                                    "and write paths from here (e.g. ./service/data).")
        elif command == "sudo":
            raise RunCommandProblem("Leave out `sudo`: write `docker run ...` itself (sudo also drops the "
                                    "variables your script exports, so `-e NAME` would get nothing).")
        else:
            raise RunCommandProblem(
                f"The check does not run `{command}`. It reads `docker run` and the lines that set its "
                "variables (NAME=value, export NAME=value, set -a / set +a, . FILE); write those instead.")
    return found


def _set_options(args: list[str], shell: _Shell) -> None:
    it = iter(args)
    for arg in it:
        if arg in ("-o", "+o"):
            if next(it, "") == "allexport":
                shell.allexport = arg == "-o"
        elif arg[:1] in "-+" and len(arg) > 1 and arg != "--":
            if "a" in arg[1:]:
                shell.allexport = arg[0] == "-"
        elif arg == "--":
            break


def _read(spec: RunSpec, path: Path, folder: Path) -> None:
    relative = path.relative_to(folder).as_posix()
    if relative not in spec.reads:
        spec.reads.append(relative)


def _docker(args: list[str], shell: _Shell, prefix: dict[str, str], spec: RunSpec, folder: Path, *,
            seen: bool) -> bool:
    """Read one ``docker ...`` statement; return whether it was ``docker run``."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        option = args[i].split("=", 1)[0]
        if option in ("-H", "--host", "-c", "--context", "--config") or option.startswith("--tls"):
            raise SecurityRule(_SECURITY.format(
                what=f"the command sends `docker` to another engine or configuration ({option})",
                why="the check runs your container on its own sandboxed engine"))
        if option in ("-l", "--log-level") and "=" not in args[i]:
            i += 1
        i += 1
    rest = args[i:]
    if not rest:
        raise RunCommandProblem("`docker` alone starts nothing; write `docker run ...`.")
    if rest[:1] == ["container"] and rest[1:2] == ["run"]:
        rest = rest[1:]
    if rest[:1] != ["run"]:
        if rest[:1] == ["create"]:
            raise RunCommandProblem("Write `docker run ...`: the check reads docker run, not docker create.")
        if rest[0] not in _DOCKER_HARMLESS:
            raise RunCommandProblem(f"The check does not run `docker {rest[0]}`; write `docker run ...`.")
        what = " ".join(rest[:2]) if len(rest) > 1 and not rest[1].startswith("-") else rest[0]
        spec.notes.append(f"The check leaves out `docker {what}`: it reads only `docker run` (and builds your "
                          "image from ex3.Dockerfile itself).")
        return False
    if seen:
        raise RunCommandProblem("The script has more than one `docker run`; write one, the command that "
                                "starts the service.")
    env = shell.environment() | prefix
    _docker_run(rest[1:], env, spec, folder)
    for name in sorted(shell.unset_used):
        spec.notes.append(f"${name} is not set by the script, so the shell puts nothing there (your terminal "
                          "may have it; the grader's shell does not).")
    return True


def _docker_run(argv: list[str], env: dict[str, str], spec: RunSpec, folder: Path) -> None:
    """Read the arguments of ``docker run`` with pflag's rules, then give them Docker's meaning."""
    given: list[tuple[str, str, str]] = []  # (long name, value, as written)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if len(arg) < 2 or arg[0] != "-":
            i -= 1
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in OPTIONS:
                raise RunCommandProblem(f"Docker does not know the option --{name} (docker run answers "
                                        f"\"unknown flag: --{name}\"); check its spelling.")
            takes_value = OPTIONS[name][1]
            if takes_value and not eq:
                if i >= len(argv):
                    raise RunCommandProblem(f"--{name} needs a value (docker run answers \"flag needs an "
                                            f"argument: --{name}\").")
                value = argv[i]
                i += 1
            elif not takes_value:
                value = _bool(f"--{name}", value if eq else "true")
            given.append((name, value, arg if eq or not takes_value else f"{arg} {_quoted(value)}"))
            continue
        shorts = arg[1:]
        while shorts:
            c = shorts[0]
            if c not in _SHORT:
                raise RunCommandProblem(f"Docker does not know the option -{c} (docker run answers \"unknown "
                                        f"shorthand flag: '{c}' in {arg}\").")
            name = _SHORT[c]
            takes_value = OPTIONS[name][1]
            if len(shorts) > 2 and shorts[1] == "=":
                value, shorts = shorts[2:], ""
                if not takes_value:
                    value = _bool(f"-{c}", value)
            elif not takes_value:
                value, shorts = "true", shorts[1:]
            elif len(shorts) > 1:
                value, shorts = shorts[1:], ""
            elif i < len(argv):
                value, shorts = argv[i], ""
                i += 1
            else:
                raise RunCommandProblem(f"-{c} needs a value (docker run answers \"flag needs an argument: "
                                        f"'{c}' in {arg}\").")
            given.append((name, value, f"-{c} {_quoted(value)}" if takes_value else f"-{c}"))
    if i >= len(argv):
        raise RunCommandProblem("The run command names no image: after the options, write the image to start "
                                "(cl-ex-ex3:latest).")
    spec.image, spec.command = argv[i], argv[i + 1:]
    if spec.command and spec.command[0].startswith("-"):
        raise RunCommandProblem(
            f"Docker reads everything after the image name ({spec.image}) as the command to run inside the "
            f"container, so it would try to run `{spec.command[0]}` and the container would not start. Put "
            "every option before the image.")
    if spec.command:
        spec.notes.append(f"The check starts the image's own CMD; the command after the image "
                          f"(`{' '.join(spec.command)}`) is left out.")
    if spec.image.split("@")[0] not in ("cl-ex-ex3", "cl-ex-ex3:latest"):
        spec.notes.append(f"The command starts {spec.image}; the check starts the image it built from "
                          "ex3.Dockerfile (cl-ex-ex3:latest), which is what the task asks your command to run.")
    _meaning(given, env, spec, folder)


def _quoted(value: str) -> str:
    """A value as a student would type it: in double quotes when it holds blanks or is empty."""
    return f'"{value}"' if not value or any(c.isspace() for c in value) else value


def _bool(option: str, value: str) -> str:
    if value not in _BOOL_WORDS:
        raise RunCommandProblem(f"{option} is on or off: write {option}, {option}=true or {option}=false "
                                f"(docker run refuses {option}={value}).")
    return "true" if _BOOL_WORDS[value] else "false"


def _meaning(given: list[tuple[str, str, str]], env: dict[str, str], spec: RunSpec, folder: Path) -> None:
    """Apply Docker's meaning to the parsed options, in the order Docker applies them."""
    env_files, env_values, published, left_out, limits = [], [], [], [], []
    for name, value, written in given:
        shown = _shown(written, folder)
        if name in SECURITY_RULES and weakens(name, value):
            raise _security(name, "" if OPTIONS[name][1] is False else _shown(value, folder))
        if name == "help" and value == "true":
            raise RunCommandProblem("`docker run --help` prints the help and starts no container; leave out --help.")
        if name == "env":
            env_values.append(value)
        elif name == "env-file":
            env_files.append(value)
        elif name == "volume":
            _volume(value, shown, spec, folder)
        elif name == "mount":
            _mount(value, shown, spec, folder)
        elif name == "tmpfs":
            spec.mounts.append(Mount("tmpfs", value.split(":", 1)[0], written=shown))
            left_out.append(shown)
        elif name in ("publish", "publish-all", "expose"):
            published.append(shown)
        elif name in _RESOURCES:
            limits.append(shown)
        elif name in ("network", "net") and value == "none":
            left_out.append(shown)
        elif name == "entrypoint":
            spec.notes.append(f"The check starts the image's own ENTRYPOINT and CMD; `{shown}` is left out.")
        elif name in ("detach", "interactive", "tty", "rm", "init", "sig-proxy", "quiet"):
            continue
        else:
            left_out.append(shown)
    for value in env_files:
        path = inside(folder, value, what="--env-file")
        if not path.is_file():
            raise RunCommandProblem(f"--env-file {_shown(value, folder)}: there is no such file in your exercise "
                                    "folder (docker run answers \"no such file or directory\").")
        _read(spec, path, folder)
        spec.environment.update(read_env_file(path, env))
    for value in env_values:
        key, has, val = value.partition("=")
        if not key:
            raise RunCommandProblem(f"-e {value}: Docker refuses it (\"invalid environment variable: {value}\").")
        if has:
            spec.environment[key] = val
        elif key in env:
            spec.environment[key] = env[key]
        else:
            spec.environment.pop(key, None)
            spec.notes.append(f"-e {key} takes the value of {key} from the environment of the shell that runs "
                              f"docker, and the script does not export {key}, so Docker passes nothing. Load "
                              "it first (`set -a; . service/.env; set +a`), or use --env-file service/.env.")
    _check_targets(spec)
    if published:
        spec.notes.append(f"The check publishes no port ({', '.join(published)} left out): it asks the service "
                          "from inside the container.")
    if limits:
        spec.notes.append(f"The sandbox sets its own limits ({', '.join(limits)} left out).")
    if left_out:
        spec.notes.append(f"The check leaves out options that do not change what is graded: {', '.join(left_out)}.")


def weakens(name: str, value: str) -> bool:
    """Whether ``docker run --NAME=VALUE`` (a key of :data:`SECURITY_RULES`) weakens the sandbox.

    ``--privileged=false``, ``--security-opt no-new-privileges`` or ``--network mynet`` do not;
    ``--network host`` and every capability or device do.
    """
    if name in ("privileged", "use-api-socket"):
        return value == "true"
    if name == "security-opt":
        return value not in _HARDENING
    if name in ("network", "net", "pid", "ipc"):
        return value == "host" or value.startswith("container:")
    if name in ("uts", "userns", "cgroupns"):
        return value == "host"
    return True


def _bind(source: str, target: str, read_only: bool, shown: str, spec: RunSpec, folder: Path, *,
          must_exist: bool) -> None:
    if not target.startswith("/"):
        raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mount path: '{target}' mount path must "
                                "be absolute\"); the target inside the container starts with /, e.g. /data.")
    path = inside(folder, source)
    if not path.exists():
        if must_exist:
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"bind source path does not exist\"): there is "
                                    f"no {_shown(source, folder)} in your exercise folder.")
        spec.notes.append(f"{shown}: there is no {_shown(source, folder)} in your exercise folder; Docker would "
                          "make an empty folder there, so the check mounts nothing for it.")
        return
    _read(spec, path, folder)
    spec.mounts.append(Mount("bind", target, path, read_only, shown))
    if str(path) in spec.volumes:
        spec.notes.append(f"{shown}: the same folder is mounted twice; the check mounts it once, at {target}.")
    spec.volumes[str(path)] = {"bind": target, "mode": "ro" if read_only else "rw"}


def _volume(value: str, shown: str, spec: RunSpec, folder: Path) -> None:
    """``-v``/``--volume``, read as Docker on Linux reads it (moby volume/mounts/parser_linux.go)."""
    parts = value.split(":")
    if len(parts) == 1:
        if not value.startswith("/"):
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mount path: '{value}' mount path must "
                                    "be absolute\"). To mount the data folder write -v \"$PWD/service/data:/data\".")
        spec.mounts.append(Mount("volume", value, "", False, shown))
        return
    if len(parts) > 3:
        raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid volume specification\"): write "
                                "SOURCE:TARGET or SOURCE:TARGET:ro.")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    unknown = [m for m in modes if m not in _VOLUME_MODES]
    if unknown:
        raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mode: {parts[2]}\"); use :ro or :rw.")
    read_only = "ro" in modes
    if source.startswith(("/", ".", "~")):
        _bind(source, target, read_only, shown, spec, folder, must_exist=False)
        return
    if source.startswith("$"):
        raise RunCommandProblem(
            f"{shown}: the shell did not fill in {source.split('/')[0]} (single quotes keep it as written), so "
            "Docker reads it as the name of a volume and refuses it. Use double quotes: "
            f"-v \"{source}:{target}\".")
    if not _VOLUME_NAME.match(source):
        raise RunCommandProblem(
            f"{shown}: Docker reads a source that starts with neither / nor . as the name of a volume, and "
            f"refuses this one (\"{source}\" includes invalid characters for a local volume name, only "
            "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute "
            f"path). Write -v \"$PWD/{source}:{target}\" or -v ./{source}:{target}: Docker accepts paths that start "
            "with ./ and makes them absolute.")
    if not target.startswith("/"):
        raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mount path: '{target}' mount path must "
                                "be absolute\").")
    spec.mounts.append(Mount("volume", target, source, read_only, shown))


def _mount(value: str, shown: str, spec: RunSpec, folder: Path) -> None:
    """``--mount``, read as docker/cli's opts/mount.go reads it (CSV fields, default type volume)."""
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise RunCommandProblem(f"{shown}: Docker cannot read it ({exc}).") from exc
    kind, source, target, read_only, volume_opts = "volume", "", "", False, {}
    for item in fields:
        key, has, val = item.partition("=")
        if not has:
            if key in ("readonly", "ro"):
                read_only = True
                continue
            if key in ("volume-nocopy", "bind-nonrecursive"):
                continue
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid field '{item}' must be a key=value "
                                    "pair\").")
        if key == "type":
            kind = val.lower()
        elif key in ("source", "src"):
            source = val
        elif key in ("target", "dst", "destination"):
            target = val
        elif key in ("readonly", "ro"):
            read_only = _bool(key, val) == "true"
        elif key == "volume-opt":
            opt, _, opt_value = val.partition("=")
            volume_opts[opt] = opt_value
        elif key not in ("consistency", "bind-propagation", "bind-nonrecursive", "volume-nocopy", "volume-label",
                         "volume-driver", "tmpfs-size", "tmpfs-mode", "bind-recursive", "volume-subpath",
                         "image-subpath", "tmpfs-options"):
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"unexpected key '{key}' in '{item}'\").")
    if not target:
        raise RunCommandProblem(f"{shown}: Docker refuses it (\"target is required\").")
    if kind == "bind":
        if not source:
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"field Source must not be empty\").")
        if not source.startswith("/") and not (source == "." or source.startswith("./")):
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mount path: '{source}' mount path "
                                    f"must be absolute\"). Write source=\"$PWD/{source}\" or source=./{source}.")
        _bind(source, target, read_only, shown, spec, folder, must_exist=True)
    elif kind == "volume":
        if "device" in volume_opts or "bind" in volume_opts.get("o", ""):
            raise SecurityRule(_SECURITY.format(
                what=f"the command mounts a host path through a volume driver option ({shown})",
                why="it mounts host paths from outside your exercise folder"))
        if not target.startswith("/"):
            raise RunCommandProblem(f"{shown}: Docker refuses it (\"invalid mount path: '{target}' mount path "
                                    "must be absolute\").")
        spec.mounts.append(Mount("volume", target, source, read_only, shown))
    elif kind == "tmpfs":
        spec.mounts.append(Mount("tmpfs", target, written=shown))
        spec.notes.append(f"The check leaves out {shown}: an empty in-memory folder changes nothing graded.")
    else:
        raise RunCommandProblem(f"{shown}: the check mounts bind, volume and tmpfs mounts, not type={kind}; mount "
                                "the data folder with --mount type=bind,source=./service/data,target=/data.")


def _check_targets(spec: RunSpec) -> None:
    seen: set[str] = set()
    for mount in spec.mounts:
        target = _clean_target(mount.target)
        if target in seen:
            raise RunCommandProblem(f"{mount.written}: Docker refuses it (\"Duplicate mount point: {target}\"): "
                                    "two mounts at the same place in the container.")
        seen.add(target)


def student_files(text: str, folder: Path, *, course_folders: tuple[str, ...] = ("service",),
                  limit: int = 16) -> tuple[str, ...]:
    """The student's own files that a run command mounts or reads, for a grader that grades a copy.

    A batch grader rebuilds the exercise folder from the course's files; a token file the
    student made (``-v ./secrets/api_token:/run/secrets/api_token`` with ``API_TOKEN_FILE``)
    must come along from their folder, and nothing else. This reads the command against
    the student's own folder and lists the regular files (no links) it mounts, sources or
    passes with ``--env-file``, outside the course's folders; for a mounted folder, the
    regular files directly in it.

    Args:
        text: the run command.
        folder: the student's own exercise folder.
        course_folders: top-level folders the grader takes from the course instead.
        limit: at most this many files.

    Returns:
        Paths relative to ``folder``, POSIX form; none when the command cannot be read.
    """
    try:
        spec = parse_run_command(text, folder)
    except RunCommandProblem:
        return ()
    root, found = folder.resolve(), []
    for relative in spec.reads:
        if relative.split("/", 1)[0] in course_folders:
            continue
        path = root / relative
        candidates = sorted(path.iterdir()) if path.is_dir() and not path.is_symlink() else [path]
        for candidate in candidates:
            if candidate.is_file() and not candidate.is_symlink():
                found.append(candidate.relative_to(root).as_posix())
    return tuple(dict.fromkeys(found))[:limit]
