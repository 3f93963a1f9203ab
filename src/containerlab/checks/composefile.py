"""Exercise 6's compose file: what it asks for, read from compose's own model, and the stack the check runs.

The file is never parsed by hand: ``docker compose config --format json``
(:func:`containerlab.engine.compose_config`) gives the normalised model
(short forms written out, paths absolute, ``env_file`` read in), once with the
check's variables filled in and once as written (``--no-interpolate``, for
passwords written into the file). A file that asks for what would weaken the
grading sandbox is refused with the same rules and words as exercise 3's
``docker run`` command (:mod:`.policy`). :func:`sandboxed` then turns the
model into the stack the check starts: the course's API image, a free host port
on the loopback address, resource limits on every service.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import engine, scan
from .dockerfile import PLACEHOLDER
from .policy import RunCommandProblem, SecurityRule, inside, security_rule, weakens

#: The two services the task names.
API, DB = "api", "db"
#: The variables the check sets (fresh values each run), as a student's shell or .env would.
VARIABLES = ("API_TOKEN", "POSTGRES_PASSWORD")
#: Where PostgreSQL keeps its data in the official image and the stand-in (``PGDATA``).
DB_DATA = "/var/lib/postgresql/data"
#: A password written into a URL (``postgresql://user:PASSWORD@host``).
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")

#: Service keys that map to a refused ``docker run`` option (:data:`.policy.SECURITY_RULES`).
_SERVICE_RULES = {
    "privileged": "privileged", "cap_add": "cap-add", "devices": "device",
    "device_cgroup_rules": "device-cgroup-rule", "security_opt": "security-opt", "network_mode": "network",
    "pid": "pid", "ipc": "ipc", "uts": "uts", "userns_mode": "userns", "cgroup": "cgroupns",
    "cgroup_parent": "cgroup-parent", "gpus": "gpus",
}


class ComposeFileProblem(RunCommandProblem):
    """The compose file cannot be run as it is (compose refuses it, a service is missing); the message says why."""


@dataclass(frozen=True)
class StackFile:
    """A student's compose file as compose reads it.

    Attributes:
        model: the normalised model with the check's variables filled in.
        written: the same model with ``${...}`` kept as written.
        warnings: compose's warnings (a variable that nobody set, ...).
        notes: what the check did to read the file (an env_file it wrote), for the feedback.
    """

    model: dict
    written: dict
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def service(self, name: str) -> dict:
        """The model of one service (``{}`` when the file has none of that name)."""
        return dict((self.model.get("services") or {}).get(name) or {})

    def data_mount(self) -> dict:
        """The database service's mount at :data:`DB_DATA` (``{}`` when there is none)."""
        for mount in self.service(DB).get("volumes") or []:
            if str(mount.get("target", "")).rstrip("/") == DB_DATA:
                return dict(mount)
        return {}

    def volume_name(self, source: str) -> str:
        """The engine's name of the file's named volume ``source`` (compose prefixes the project)."""
        return str(((self.model.get("volumes") or {}).get(source) or {}).get("name") or source)

    def unset_variables(self) -> list[str]:
        """Compose's warnings about variables that nobody set."""
        return [w for w in self.warnings if "variable is not set" in w]


def read(file: Path, folder: Path, *, project: str, env: dict[str, str]) -> StackFile:
    """Read a compose file through compose and refuse it when it would escape the sandbox.

    Args:
        file: the compose file.
        folder: the exercise folder; bind mounts must stay inside it.
        project: the compose project name the check uses.
        env: the variables the check sets (:data:`VARIABLES`).

    Returns:
        The file's models and compose's warnings.

    Raises:
        ComposeFileProblem: there is no file, compose refuses it, or it lacks the api or db service.
        SecurityRule: it asks for something the sandbox refuses (:func:`refuse`).
    """
    if not file.is_file():
        raise ComposeFileProblem(f"There is no file {file.name}: run the cell that writes your compose file.")
    if PLACEHOLDER in file.read_text(encoding="utf-8", errors="replace"):
        raise ComposeFileProblem(f"{file.name} still holds the placeholder `{PLACEHOLDER}`. Replace the two "
                                 "placeholder lines of the answer cell with your compose file and run the cell again.")
    notes: list[str] = []
    try:
        try:
            model, warnings = engine.compose_config(file, project=project, env=env)
        except engine.ComposeRejected as exc:
            made = _fill_missing_env_file(str(exc), folder, env)
            if not made:
                raise
            notes.append(f"Your file reads {made} (env_file), which was not there: the check wrote it with fresh "
                         f"values of {' and '.join(VARIABLES)}, as it sets them for variables.")
            model, warnings = engine.compose_config(file, project=project, env=env)
        written, _ = engine.compose_config(file, project=project, env=env, interpolate=False)
    except engine.ComposeRejected as exc:
        missing = re.search(r"required variable (\w+) is missing a value", str(exc))
        hint = (f" The check sets {' and '.join(VARIABLES)} only (fresh values, as your shell or .env would); "
                f"{missing.group(1)} is set by nobody." if missing and missing.group(1) not in VARIABLES else "")
        raise ComposeFileProblem(f"Compose refuses the file: {_scrubbed(str(exc), folder)}.{hint}") from exc
    written = _with_mappings(written)
    _fresh_env_file_values(model, written, env)
    stack = StackFile(model, written, tuple(_scrubbed(w, folder) for w in warnings), tuple(notes))
    names = sorted(model.get("services") or {})
    if API not in names or DB not in names:
        raise ComposeFileProblem(f"The file needs two services named {API} and {DB}; it has {names or 'none'}.")
    refuse(stack, folder.resolve())
    return stack


#: Compose's words for an env_file that is not there (compose 2.26: "env file /abs/path/.env not found: ...").
_MISSING_ENV_FILE = re.compile(r"env file (\S+) not found")


def _fill_missing_env_file(message: str, folder: Path, env: dict[str, str]) -> str:
    """Write an env_file that compose did not find, inside ``folder``, with the check's variables.

    A student keeps the secrets of exercise 6 in a ``.env`` that is never handed
    in (the task allows ``env_file: .env``); the grader then has none. It gets the
    check's fresh values, as the variables do. Nothing is written outside ``folder``
    or over an existing file.

    Returns:
        The file's path relative to ``folder`` (``".env"``), or ``""`` when nothing was written.
    """
    match = _MISSING_ENV_FILE.search(message)
    if not match:
        return ""
    path = Path(match.group(1))
    try:
        relative = path.resolve().relative_to(folder.resolve())
    except ValueError:
        return ""
    if path.exists():
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by the check: the values it uses for this run.\n"
                    + "".join(f"{name}={env[name]}\n" for name in VARIABLES if name in env), encoding="utf-8")
    return relative.as_posix()


def _as_mapping(value: object) -> dict:
    """``environment``/``args``/``labels`` as a mapping: compose's list form (``["KEY=value", "KEY"]``) too.

    ``docker compose config --no-interpolate`` keeps the list form as written (compose 2.26);
    a ``KEY`` without ``=`` takes its value from the environment, shown here as ``None``.
    """
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {key: (val if sep else None) for key, sep, val in pairs}
    return {}


def _with_mappings(written: dict) -> dict:
    """The written model with every service's ``environment`` and ``build.args`` as mappings."""
    for service in (written.get("services") or {}).values():
        if "environment" in service:
            service["environment"] = _as_mapping(service["environment"])
        if isinstance(service.get("build"), dict) and "args" in service["build"]:
            service["build"]["args"] = _as_mapping(service["build"]["args"])
    return written


def _fresh_env_file_values(model: dict, written: dict, env: dict[str, str]) -> None:
    """Give the check's fresh values to the variables a service takes from an env_file.

    Compose reads an ``env_file`` into ``environment``: the database would get the
    student's own password there while the API's ``${POSTGRES_PASSWORD}`` gets the
    check's, and the two would never meet. A value written in the file itself is
    left alone (the static check names it).
    """
    for name, service in (model.get("services") or {}).items():
        as_written = (written.get("services") or {}).get(name) or {}
        if not as_written.get("env_file"):
            continue
        own = _as_mapping(as_written.get("environment"))
        environment = service.get("environment")
        if not isinstance(environment, dict):
            continue
        for variable in VARIABLES:
            if variable in environment and variable in env and own.get(variable) is None and variable not in own:
                environment[variable] = env[variable]


def _scrubbed(text: str, folder: Path) -> str:
    return text.replace(str(folder.resolve()), ".").replace(str(folder), ".")


def refuse(stack: StackFile, folder: Path) -> None:
    """Raise when the file asks for anything that would weaken the grading sandbox.

    Refused, as for exercise 3's run command: privileged services, added capabilities,
    devices and GPUs, a changed seccomp/AppArmor confinement, the host's (or another
    container's) network, PID, IPC, UTS, user or cgroup namespace, another cgroup parent,
    the volumes of a container outside the stack, the Docker socket, and bind mounts (also
    through a volume's driver options, a secret or a config) from outside ``folder``;
    also env files from outside ``folder`` and external volumes and networks (someone
    else's, on a shared engine).

    Raises:
        SecurityRule: naming the service, the key as written and why it is refused.
    """
    for name, service in (stack.model.get("services") or {}).items():
        who = f"service {name}"
        for key, option in _SERVICE_RULES.items():
            value = service.get(key)
            if value in (None, False, "", [], {}):
                continue
            values = value if isinstance(value, list) else [value]
            for item in values:
                shown = ("true" if item is True else f"{item.get('source', '')}:{item.get('target', '')}"
                         if isinstance(item, dict) else str(item))
                if isinstance(item, dict) or weakens(option, shown):
                    raise security_rule(f"{who} asks for `{key}: {shown}`", option, shown)
        for reservation in (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}) \
                .get("devices") or []:
            raise security_rule(f"{who} reserves devices ({json.dumps(reservation)})", "gpus")
        for source in service.get("volumes_from") or []:
            if str(source).startswith("container:"):
                raise security_rule(f"{who} asks for `volumes_from: {source}`", "volumes-from")
        for mount in service.get("volumes") or []:
            if mount.get("type") in ("bind", "npipe"):
                inside(folder, str(mount.get("source", "")), what=f"A bind mount of {who}", who=who,
                       instead="keep the database's data in a named volume")
    for name, service in (stack.written.get("services") or {}).items():
        # Compose reads env files into the model; only the file as written still names them.
        for env_file in service.get("env_file") or []:
            path = str(env_file.get("path", "") if isinstance(env_file, dict) else env_file)
            if "$" in path:
                raise ComposeFileProblem(f"The env_file {path} of service {name} is named through a variable; "
                                         "write its path itself (e.g. .env).")
            inside(folder, path, what=f"An env_file of service {name}", who=f"service {name}",
                   instead="keep the .env file beside the compose file")
    for kind in ("secrets", "configs"):
        for name, item in (stack.model.get(kind) or {}).items():
            if item.get("file"):
                inside(folder, str(item["file"]), what=f"The {kind[:-1]} {name}", who=f"the {kind[:-1]} {name}",
                       instead="keep the file next to this notebook")
    for kind in ("volumes", "networks"):
        for name, item in (stack.model.get(kind) or {}).items():
            item = item or {}
            if item.get("external"):
                raise SecurityRule(f"Security rule of the grader (not a Docker error): the {kind[:-1]} {name} is "
                                   "external, one that exists outside your stack, so the check does not use it. "
                                   "Let compose make it: leave out `external: true`.")
            device = str((item.get("driver_opts") or {}).get("device", ""))
            if device:
                inside(folder, device, what=f"The volume {name}", who=f"the volume {name}",
                       instead="a named volume without driver options")


def written_secrets(stack: StackFile, known: tuple[str, ...] = ()) -> list[str]:
    """Where the file, as written, holds a password or token itself instead of taking it from a variable.

    Args:
        stack: the file.
        known: secret values that must not appear anywhere in it (the token in ``service/.env``).

    Returns:
        One line per finding, the value masked (:func:`containerlab.scan.mask`), e.g.
        ``"POSTGRES_PASSWORD of service db (environment) is 'exa…' (7 chars)"``.
    """
    found = []
    for name, service in (stack.written.get("services") or {}).items():
        settings = {"environment": service.get("environment") or {},
                    "build.args": (service.get("build") or {}).get("args") or {}}
        for where, values in settings.items():
            for key, value in values.items():
                value = "" if value is None else str(value)
                literal = value and "${" not in value and "$" not in value.replace("$$", "")
                if literal and scan.SECRET_NAME_PATTERN.search(key):
                    found.append(f"{key} of service {name} ({where}) is {scan.mask(value)}")
                for password in _URL_PASSWORD.findall(value):
                    if "$" not in password:
                        found.append(f"{key} of service {name} ({where}) holds the password {scan.mask(password)}")
    text = json.dumps(stack.written)
    found += [f"the value {scan.mask(v)} (from the service's .env)" for v in known if v and v in text]
    return found


def sandboxed(stack: StackFile, *, project: str, api_image: str, limits: engine.SandboxLimits,
              labels: dict[str, str]) -> tuple[dict, list[str]]:
    """The stack the check starts: the student's model, with the sandbox's own settings.

    Every service gets the memory (no swap beyond it), CPU and process limits of
    ``limits``, no new privileges, ``labels``, no ``container_name`` (names are per
    project, so two users never collide) and no restarting; every published port goes
    to a free port on 127.0.0.1; nothing is built (``build:`` is left out). The API runs
    the course's image ``api_image``, with ``init: true`` so that ``down`` is quick, and a
    healthcheck probed every second unless the file has its own.

    Returns:
        The model to hand to compose, and notes for the feedback about what was changed.
    """
    model = json.loads(json.dumps(stack.model))
    model["name"] = project
    notes = []
    for name, service in model["services"].items():
        for key in ("mem_limit", "memswap_limit", "mem_reservation", "cpus", "cpu_count", "cpu_quota",
                    "pids_limit", "deploy", "container_name", "restart"):
            if service.pop(key, None) not in (None, "", "no") and key in ("container_name", "restart"):
                notes.append(f"The check left out `{key}` of service {name}: "
                             + ("compose names containers per project, which keeps users apart."
                                if key == "container_name" else "a service that fails should stay stopped, "
                                "so that its log says why."))
        service.update(mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes, cpus=limits.cpus,
                       pids_limit=limits.pids, restart="no")
        service["security_opt"] = ["no-new-privileges:true"]
        service["labels"] = {**(service.get("labels") or {}), **labels}
        for port in service.get("ports") or []:
            port["host_ip"] = "127.0.0.1"
            port["published"] = ""
        if service.pop("build", None) is not None:
            notes.append(f"The check builds nothing: the `build:` section of service {name} was left out"
                         + (" (the API runs the course's image)." if name == API else "."))
        service.pop("pull_policy", None)
    api = model["services"][API]
    api["image"] = api_image
    api.setdefault("init", True)
    api.setdefault("healthcheck", {
        "test": ["CMD", "python", "-c",
                 "import urllib.request; urllib.request.urlopen('http://127.0.0.1/health', timeout=2)"],
        "interval": "1s", "timeout": "3s", "retries": 60})
    return model, notes
