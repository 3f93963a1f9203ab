"""Exercise 3: data and secrets out of the image, in at run time.

The student writes a Dockerfile (``ex3.Dockerfile``) and the ``docker run``
command that starts the service with the data folder mounted and the API token
passed as an environment variable (``ex3-run.sh``). The check builds the image,
starts the container the way the command says, inside the engine's sandbox,
and then measures: the container has the mount and the variable, the service
sees the data and accepts the token, and a scan of every layer, the config and
the history of the image (:func:`containerlab.scan.scan_image`) finds neither
the secret value nor the data files.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import engine, scan
from . import CheckResult, CheckResults, counts_once, results, service

EXERCISE = "ex3"
DEFAULT_TAG = "cl-ex-ex3:latest"
#: The variable the service reads its token from.
TOKEN_VARIABLE = "API_TOKEN"

POINTS = {"builds": 1, "data-mounted": 2, "secret-from-env": 2, "no-secret-in-image": 2, "no-data-in-image": 1}
DESCRIPTIONS = {
    "builds": "The image builds",
    "data-mounted": "The running container has the data folder mounted, and the service sees its files",
    "secret-from-env": f"The running container gets the token in {TOKEN_VARIABLE}, and the service accepts it",
    "no-secret-in-image": "No layer, config entry or history step of the image holds the secret",
    "no-data-in-image": "No layer of the image holds the data files",
}


class RunCommandProblem(ValueError):
    """The run command cannot be used (not ``docker run``, an option the check refuses, a path outside)."""


@dataclass
class RunSpec:
    """What a student's ``docker run`` command asks for, resolved against their folder.

    Attributes:
        environment: variables set with ``-e``/``--env``/``--env-file``.
        volumes: bind mounts, absolute host path to ``{"bind": target, "mode": "ro"|"rw"}``.
        image: the image the command names.
        notes: options that the sandbox leaves out (published ports), as sentences.
    """

    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    image: str = ""
    notes: list[str] = field(default_factory=list)


_FLAGS = {"-d", "--detach", "--rm", "--init", "-it", "-i", "-t"}
_WITH_VALUE = {"--name", "-e", "--env", "--env-file", "-v", "--volume", "--mount", "-p", "--publish"}


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def parse_run_command(text: str, folder: Path) -> RunSpec:
    """Read a ``docker run`` command and resolve its paths against ``folder``.

    Only what this exercise needs is accepted: ``--detach``, ``--rm``,
    ``--init``, ``--name``, ``-e``/``--env``, ``--env-file``, ``-v``/``--volume``,
    ``--mount type=bind,...``, ``-p``/``--publish`` (left out: the sandbox
    publishes no port). Bind mounts must come from inside ``folder``.

    Args:
        text: the command (comment lines and ``\\`` continuations allowed).
        folder: the student's exercise folder (paths are relative to it; ``$PWD`` is it).

    Returns:
        The environment, the mounts and the image.

    Raises:
        RunCommandProblem: with a sentence naming what is wrong.
    """
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if not ln.strip().startswith("#")]
    joined = " ".join(ln.rstrip().removesuffix("\\") for ln in lines)
    folder = folder.resolve()
    for form in ("$(pwd)", "${PWD}", "$PWD", "`pwd`"):
        joined = joined.replace(form, str(folder))
    try:
        argv = shlex.split(joined)
    except ValueError as exc:
        raise RunCommandProblem(f"The run command cannot be read ({exc}); check its quotes.") from exc
    if argv[:2] != ["docker", "run"]:
        raise RunCommandProblem("The run command must start with `docker run`.")
    spec = RunSpec()
    args = iter(argv[2:])
    for arg in args:
        option, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option in _FLAGS:
            continue
        if option in _WITH_VALUE:
            value = inline if eq else next(args, "")
            if option in ("-e", "--env"):
                key, has, val = value.partition("=")
                spec.environment[key] = val if has else os.environ.get(key, "")
            elif option == "--env-file":
                path = _inside(folder, value)
                if not path.is_file():
                    raise RunCommandProblem(f"--env-file names {value}, which does not exist.")
                spec.environment.update(_read_env_file(path))
            elif option in ("-v", "--volume"):
                parts = value.split(":")
                if len(parts) < 2:
                    raise RunCommandProblem(f"-v {value} needs SOURCE:TARGET.")
                source = _inside(folder, parts[0])
                spec.volumes[str(source)] = {"bind": parts[1], "mode": parts[2] if len(parts) > 2 else "rw"}
            elif option == "--mount":
                fields = dict(p.partition("=")[::2] for p in value.split(","))
                if fields.get("type", "volume") != "bind":
                    raise RunCommandProblem("Use a bind mount of your data folder (--mount type=bind,...).")
                source = _inside(folder, fields.get("source") or fields.get("src", ""))
                target = fields.get("target") or fields.get("destination") or fields.get("dst", "")
                spec.volumes[str(source)] = {"bind": target, "mode": "ro" if "readonly" in fields else "rw"}
            elif option in ("-p", "--publish"):
                spec.notes.append(f"The check publishes no port (-p {value} left out): it asks from inside.")
            continue
        if arg.startswith("-"):
            raise RunCommandProblem(
                f"The check does not run the option {arg}. Use only --detach, --rm, --init, --name, "
                "-e/--env, --env-file, -v/--volume, --mount and -p.")
        spec.image = arg
        break
    if not spec.image:
        raise RunCommandProblem("The run command names no image (it comes after the options).")
    return spec


def _inside(folder: Path, path: str) -> Path:
    """Resolve ``path`` against ``folder`` and refuse anything outside it."""
    if not path:
        raise RunCommandProblem("A mount or env file has no source path.")
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder):
        raise RunCommandProblem(f"{path} is outside your exercise folder; mount only the data folder next "
                                "to this notebook (service/data).")
    return resolved


def _result(name: str, passed: bool, message: str = "", hint: str = "") -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], passed, POINTS[name], message, "" if passed else hint)


def secret_values(context: Path, spec: RunSpec | None) -> list[str]:
    """The secret values to look for: the service's ``.env`` values and the token passed at run time."""
    values = []
    env_file = context / ".env"
    if env_file.is_file():
        values += [v for v in _read_env_file(env_file).values() if len(v) >= 8]
    if spec is not None and spec.environment.get(TOKEN_VARIABLE):
        values.append(spec.environment[TOKEN_VARIABLE])
    return sorted(set(values))


def scan_checks(image: str, *, values: list[str], data_dir: Path) -> list[CheckResult]:
    """Scan every layer, the config and the history of ``image`` for the secret and the data files.

    Secrets are found by their values (the ``.env`` values and the token passed at
    run time) in any file, ``ENV``, label or build step, whatever the file is
    called, and by file kind (``.env`` files, private keys). Data files are found by
    their bytes in any file of any layer, renamed or deleted later, and by name.
    """
    if not image:
        return [_result(n, False, "There is no image to scan.", "Make the build pass first.")
                for n in ("no-secret-in-image", "no-data-in-image")]
    data_files = {p.relative_to(data_dir.parent).as_posix(): p.read_bytes()
                  for p in sorted(data_dir.rglob("*")) if p.is_file() and p.stat().st_size <= 50_000_000}
    findings = scan.scan_image(image, secret_values=values, data_min_bytes=1, data_files=data_files)
    data_names = {Path(name).name for name in data_files}
    secret = [f for f in findings if f.kind in (scan.SECRET_VALUE, scan.SECRET_FILE, scan.SECRET_NAME)]
    data = [f for f in findings if f.kind == scan.DATA_COPY
            or (f.kind == scan.DATA_FILE and Path(f.path).name in data_names)]
    out = []
    if secret:
        first = secret[0]
        where = f"layer {first.layer} ({first.instruction})" if first.where == "layer" else first.where
        path = f"/{first.path}: " if first.where == "layer" else ""
        out.append(_result("no-secret-in-image", False, f"{len(secret)} finding(s); first in {where}: {path}{first.detail}",
                           "Keep secrets out of every instruction: no ENV or ARG with the token, no COPY or ADD of "
                           ".env under any name (deleting it in a later step does not remove it from the earlier "
                           "layer). Pass the token when the container starts."))
    else:
        out.append(_result("no-secret-in-image", True, "The scan found no secret in any layer, the config or the history."))
    if data:
        first = data[0]
        out.append(_result("no-data-in-image", False, f"{len(data)} data file(s) in the layers, e.g. /{first.path} "
                           f"in layer {first.layer} ({first.detail}).",
                           "Copy only the requirements file and the code; mount the data folder when the "
                           "container starts."))
    else:
        out.append(_result("no-data-in-image", True, "No file of the data folder is in any layer."))
    return out


def runtime_checks(image: str, spec: RunSpec | None, problem: str, *, data_dir: Path,
                   limits: engine.SandboxLimits) -> list[CheckResult]:
    """Start the container as the run command says and look at it from outside and inside."""
    names = ("data-mounted", "secret-from-env")
    if spec is None:
        return [_result(n, False, problem, "Fix the run command first.") for n in names]
    if not image:
        return [_result(n, False, "There is no image to run.", "Make the build pass first.") for n in names]
    token = spec.environment.get(TOKEN_VARIABLE, "")
    with engine.sandboxed_container(image, environment=spec.environment, volumes=spec.volumes, limits=limits,
                                    labels={service.CHECK_LABEL: "ex3"}) as container:
        try:
            engine.wait_http_inside(container, "/health", timeout=limits.ready_timeout)
        except engine.ContainerFailed as exc:
            why = f"{exc} {exc.logs.strip()[-300:]}".strip()
            return [_result(n, False, why, "The service must start and answer on port 80 first.") for n in names]
        container.reload()
        mounts = container.attrs.get("Mounts") or []
        env = dict(e.partition("=")[::2] for e in container.attrs["Config"].get("Env") or [])
        headers = {"Authorization": f"Bearer {token}"}
        listed = engine.http_from_inside(container, "GET", "/data", headers=headers)
        predict = engine.http_from_inside(container, "POST", "/predict", headers=headers,
                                          body=json.dumps(service.VISIBLE_CASES[0][0]))
    data_root = data_dir.resolve()
    bound = [m for m in mounts if m.get("Type") == "bind" and Path(m.get("Source", "")).resolve() == data_root]
    files = []
    if listed.status == 200:
        try:
            files = [str(f.get("name", f)) if isinstance(f, dict) else str(f)
                     for f in json.loads(listed.body).get("files", [])]
        except (ValueError, AttributeError):
            files = []
    expected = sorted(p.name for p in data_dir.glob("*.csv"))
    wanted_at = env.get("DATA_DIR") or "/data"
    seen = (f"; the service lists {files}" if listed.status == 200
            else f"; GET /data answered {listed.status or listed.error}")
    if not bound:
        data = _result("data-mounted", False, f"The container has {len(mounts)} mount(s), none of {data_dir}.",
                       "Bind-mount the data folder next to this notebook (service/data) with -v SOURCE:TARGET.")
    elif bound[0]["Destination"].rstrip("/") != wanted_at.rstrip("/"):
        data = _result("data-mounted", False,
                       f"The folder is mounted at {bound[0]['Destination']}, but the service reads {wanted_at}{seen}.",
                       "The service reads its data from /data unless DATA_DIR says otherwise: mount it there, "
                       "or set DATA_DIR to where you mount it.")
    elif listed.status == 200 and not set(expected) <= {Path(f).name for f in files}:
        data = _result("data-mounted", False, f"The folder is mounted at {wanted_at}{seen}.",
                       "Mount the folder itself (service/data), not a file or a parent folder.")
    else:
        data = _result("data-mounted", True, f"{data_dir.name}/ is mounted at {wanted_at}{seen}.")
    if not env.get(TOKEN_VARIABLE):
        secret = _result("secret-from-env", False, f"The container has no {TOKEN_VARIABLE} variable.",
                         f"Pass the token when the container starts: --env-file service/.env or -e {TOKEN_VARIABLE}=...")
    elif predict.status != 200:
        secret = _result("secret-from-env", False, f"{TOKEN_VARIABLE} is set, but /predict with it answered "
                         f"{predict.status or predict.error}.", "Pass the same token the requests send.")
    else:
        secret = _result("secret-from-env", True, f"{TOKEN_VARIABLE} is set at run time and /predict accepts it.")
    return [data, secret]


def check(dockerfile: str | Path = "ex3.Dockerfile", run_command: str | Path = "ex3-run.sh",
          context: str | Path = "service", *, folder: str | Path = ".", tag: str = DEFAULT_TAG,
          limits: engine.SandboxLimits = engine.SandboxLimits(),
          build_timeout: float = service.BUILD_TIMEOUT) -> CheckResults:
    """Run the checks of exercise 3.

    Args:
        dockerfile: the student's Dockerfile.
        run_command: the file holding their ``docker run`` command.
        context: the service folder (its ``data/`` is what must be mounted, its ``.env``
            holds the secret).
        folder: the exercise folder; the command's relative paths start here.
        tag: tag for the image (kept).
        limits: sandbox limits.
        build_timeout: seconds after which the build is stopped.

    Returns:
        builds, data-mounted, secret-from-env, no-secret-in-image, no-data-in-image.
    """
    context, folder = Path(context), Path(folder)
    data_dir = context / "data"
    built = service.build_submission(dockerfile, context, tag=tag, timeout=build_timeout)
    builds = (_result("builds", True, f"Built {tag} in {built.seconds:.1f} s.") if built.image else
              _result("builds", False, built.problem, built.hint or "Fix the problem above and check again."))
    spec: RunSpec | None = None
    problem = ""
    try:
        path = Path(run_command)
        if not path.is_file():
            raise RunCommandProblem(f"There is no file {path.name}: run the cell that writes your run command.")
        spec = parse_run_command(path.read_text(encoding="utf-8-sig"), folder)
    except RunCommandProblem as exc:
        problem = str(exc)
    runtime = runtime_checks(built.image, spec, problem, data_dir=data_dir, limits=limits)
    scans = scan_checks(built.image, values=secret_values(context, spec), data_dir=data_dir)
    # No free points: the image and the scans count only for a service that starts as the command says.
    gated = [builds, *scans]
    probe: service.Probe | None = None
    if spec is None:
        gated = [counts_once(r, "your run command can be run", "Fix the run command first: the data and "
                             "secret checks say what is wrong with it.") for r in gated]
    elif built.image and not any(r.passed for r in runtime):
        probe = service.probe_service(built.image, [], environment=spec.environment, volumes=spec.volumes,
                                      limits=limits)
        if not probe.healthy:
            condition = f"a container started as your run command says answers GET /health ({probe.problem})"
            gated = [counts_once(r, condition, probe.hint) for r in gated]
    items = [gated[0], *runtime, *gated[1:]]
    notes = [*built.notes, *(spec.notes if spec else []), *service.risk_notes(built),
             *(probe.notes if probe else [])]
    return results(EXERCISE, items, image=built.image, notes=notes)
