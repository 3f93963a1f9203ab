"""Exercise 3: data and secrets out of the image, in at run time.

The student writes a Dockerfile (``ex3.Dockerfile``) and the ``docker run``
command that starts the service with the data folder mounted and the API token
passed as an environment variable (``ex3-run.sh``). The check builds the image,
runs the command with a real shell and lets Docker read it
(:func:`.runcommand.read_run_command`: the container is created, judged from
``docker inspect``, never started), starts the image with the environment and
mounts Docker gave that container, inside the engine's sandbox,
and then measures: the container has the mount and the variable, the service
sees the data and accepts the token, and a scan of every layer, the config and
the history of the image (:func:`containerlab.scan.scan_image`) finds neither
the secret value nor the data files.

In a class grading, a container another student's image and command already
started, with the same files mounted, is not started again: its runtime results,
when they all passed, are shared (:func:`_runtime_entry`, :mod:`containerlab.shared`).

The class grader grades a submission with :func:`grade` (with the presence of
the free-text explanation, :mod:`.conceptual`); the exercise is registered as
:data:`SPEC` (:mod:`.registry`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import config, engine, shared
from . import CheckResult, CheckResults, baked, causes, conceptual, counts_once, results, service
from . import progress as _progress
from .progress import Progress
from .runcommand import RunCommandProblem, RunSpec, SecurityRule, read_run_command
from .runcommand import read_env_file as _read_env_file
from .registry import Exercise
from .submission import Submission, copy_run_files

__all__ = ["RunCommandProblem", "RunSpec", "SecurityRule", "read_run_command", "check", "runtime_checks",
           "scan_checks", "secret_values"]

EXERCISE = "ex3"
DEFAULT_TAG = f"cl-ex-ex3:{config.INSTANCE}"
#: The variable the service reads its token from.
TOKEN_VARIABLE = "API_TOKEN"
#: The variable that names a file holding the token instead (taught in 14.3.3).
TOKEN_FILE_VARIABLE = "API_TOKEN_FILE"
#: A token file is read up to this many bytes (a token is a line, not a file's worth).
_MAX_TOKEN_BYTES = 4096

POINTS = {"builds": 1, "data-mounted": 2, "secret-from-env": 2, "no-secret-in-image": 2, "no-data-in-image": 1}
DESCRIPTIONS = {
    "builds": "The image builds",
    "data-mounted": "The running container has the data folder mounted, and the service sees its files",
    "secret-from-env": (f"The running container gets the token at run time ({TOKEN_VARIABLE}, or "
                        f"{TOKEN_FILE_VARIABLE} naming a mounted file), and the service accepts it"),
    "no-secret-in-image": "No layer, config entry or history step of the image holds the secret",
    "no-data-in-image": "No layer of the image holds the data files",
}


def _result(name: str, passed: bool, message: str = "", hint: str = "", *, cause: str = "",
            pressure: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], passed, POINTS[name], message, "" if passed else hint, cause=cause,
                       pressure=pressure)


def secret_values(context: Path, spec: RunSpec | None) -> list[str]:
    """The secret values to look for: the service's ``.env`` values and the token passed at run time.

    The token passed at run time is the value of ``API_TOKEN``, or the content of the
    mounted file that ``API_TOKEN_FILE`` names.
    """
    values = []
    env_file = context / ".env"
    if env_file.is_file():
        values += [v for v in _read_env_file(env_file).values() if len(v) >= 8]
    if spec is not None and spec.environment.get(TOKEN_VARIABLE):
        values.append(spec.environment[TOKEN_VARIABLE])
    if spec is not None and (token := _token_from_file(spec)[0]):
        values.append(token)
    return sorted(set(values))


def _token_from_file(spec: RunSpec) -> tuple[str, str]:
    """Read the token the way the service does from the file ``API_TOKEN_FILE`` names, on the host side.

    Returns:
        ``(token, "")``, or ``("", why not)`` (no such variable, no mount puts a file there,
        the file cannot be read or is empty).
    """
    name = spec.environment.get(TOKEN_FILE_VARIABLE, "")
    if not name:
        return "", f"{TOKEN_FILE_VARIABLE} is not set"
    host = spec.host_file(name)
    if host is None:
        return "", f"{TOKEN_FILE_VARIABLE} is {name}, but no mount of your command puts a file there"
    try:
        with host.open("rb") as handle:
            token = handle.read(_MAX_TOKEN_BYTES).decode("utf-8", errors="replace").strip()
    except OSError:
        return "", f"{TOKEN_FILE_VARIABLE} is {name}, but the file mounted there cannot be read"
    if not token:
        return "", f"{TOKEN_FILE_VARIABLE} is {name}, but the file mounted there is empty"
    return token, ""


def scan_checks(image: str, *, values: list[str], data_dir: Path) -> list[CheckResult]:
    """Scan every layer, the config and the history of ``image`` for the secret and the data files.

    The scan and its two results are shared with the check of any project
    (:func:`.baked.scan_checks`); here the data files are those of the service's data folder.
    """
    data = baked.data_files(data_dir.rglob("*"), data_dir.parent)
    return baked.scan_checks(image, values=values, data=data, make=_result)


def _answer_message(answer: engine.HttpAnswer) -> str:
    """The service's own explanation of a refused request (its JSON ``message``), or its status."""
    try:
        message = json.loads(answer.body).get("message", "")
    except (ValueError, AttributeError, TypeError):
        message = ""
    status = answer.status or answer.error
    return f"{status} ({message})" if message else str(status)


def runtime_checks(image: str, spec: RunSpec | None, problem: str, *, data_dir: Path,
                   limits: engine.SandboxLimits) -> list[CheckResult]:
    """Start the container as the run command says and look at it from outside and inside.

    The token counts as passed at run time when the container has ``API_TOKEN``, or
    ``API_TOKEN_FILE`` naming a file that one of the command's bind mounts puts there
    (the service reads either, :func:`customer_value.api.load_token`); in both cases
    ``/predict`` must accept that token. The data counts as mounted only when the
    folder ``service/data`` itself is bind-mounted where the service reads: a named
    volume starts empty where the work is graded, so it cannot hold that data.
    """
    names = ("data-mounted", "secret-from-env")
    if spec is None:
        return [_result(n, False, problem, "Fix the run command first.") for n in names]
    if not image:
        return [_result(n, False, "There is no image to run.", "Make the build pass first.") for n in names]
    token = spec.environment.get(TOKEN_VARIABLE, "")
    file_token, file_problem = _token_from_file(spec)
    token = token or file_token
    with engine.sandboxed_container(image, environment=spec.environment, volumes=spec.volumes, limits=limits,
                                    labels={service.CHECK_LABEL: "ex3"},
                                    name_prefix=service.SANDBOX_PREFIX) as container:
        try:
            engine.wait_http_inside(container, "/health", timeout=limits.ready_timeout)
        except engine.ContainerFailed as exc:
            why = f"{exc} {causes.relevant_output(exc.logs)}".strip()
            return [_result(n, False, why, "The service must start and answer on port 80 first.") for n in names]
        setup = engine.container_info(container)
        mounts, env = setup.mounts, setup.env
        headers = {"Authorization": f"Bearer {token}"}
        listed, predict = engine.http_many_from_inside(container, [
            engine.HttpRequest("GET", "/data", headers=headers),
            engine.HttpRequest("POST", "/predict", json.dumps(service.VISIBLE_CASES[0][0]), headers)])
    data_root = data_dir.resolve()
    shown_dir = f"{data_dir.parent.name}/{data_dir.name}" if data_dir.parent.name else data_dir.name
    bound = [m for m in mounts if m.type == "bind" and Path(m.source).resolve() == data_root]
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
            else f"; GET /data answered {_answer_message(listed)}")
    volumes = [m for m in spec.named_volumes if m.target.rstrip("/") == wanted_at.rstrip("/")]
    if not bound and volumes:
        name = volumes[0].source or "an anonymous volume"
        data = _result("data-mounted", False,
                       f"{volumes[0].written} mounts a volume ({name}) at {wanted_at}, not the folder "
                       f"{shown_dir}: a volume is storage Docker keeps apart from your folder, and it is "
                       "empty where your work is graded, so the service cannot see the data that way.",
                       f"The data must come from {shown_dir}: bind-mount that folder, e.g. "
                       f"-v \"$PWD/{shown_dir}:{wanted_at}:ro\" or -v ./{shown_dir}:{wanted_at}:ro.")
    elif not bound:
        data = _result("data-mounted", False, f"The container has {len(mounts)} mount(s), none of {shown_dir}.",
                       f"Bind-mount the data folder next to this notebook ({shown_dir}) with -v SOURCE:TARGET, "
                       f"e.g. -v \"$PWD/{shown_dir}:/data:ro\".")
    elif bound[0].destination.rstrip("/") != wanted_at.rstrip("/"):
        data = _result("data-mounted", False,
                       f"The folder is mounted at {bound[0].destination}, but the service reads {wanted_at}{seen}.",
                       "The service reads its data from /data unless DATA_DIR says otherwise: mount it there, "
                       "or set DATA_DIR to where you mount it.")
    elif listed.status == 200 and not set(expected) <= {Path(f).name for f in files}:
        data = _result("data-mounted", False, f"The folder is mounted at {wanted_at}{seen}.",
                       f"Mount the folder itself ({shown_dir}), not a file or a parent folder.")
    else:
        data = _result("data-mounted", True, f"{shown_dir}/ is mounted at {wanted_at}{seen}.")
    given = spec.environment
    how = (f"{TOKEN_VARIABLE} is set at run time" if given.get(TOKEN_VARIABLE)
           else f"{TOKEN_FILE_VARIABLE} names the mounted file {given.get(TOKEN_FILE_VARIABLE)}")
    hint = (f"Pass the token when the container starts: --env-file service/.env, -e {TOKEN_VARIABLE}=..., "
            f"or a mounted file named by -e {TOKEN_FILE_VARIABLE}=....")
    if not given.get(TOKEN_VARIABLE) and not given.get(TOKEN_FILE_VARIABLE):
        if env.get(TOKEN_VARIABLE) or env.get(TOKEN_FILE_VARIABLE):
            secret = _result("secret-from-env", False, "The container's token comes from the image (an ENV line "
                             "of the Dockerfile), not from the run command.", hint)
        else:
            secret = _result("secret-from-env", False, f"The run command passes no token: the container has "
                             f"neither {TOKEN_VARIABLE} nor {TOKEN_FILE_VARIABLE} (or they are empty).", hint)
    elif not given.get(TOKEN_VARIABLE) and file_problem:
        secret = _result("secret-from-env", False, f"{file_problem[0].upper()}{file_problem[1:]}.",
                         f"Mount the file that holds the token (e.g. -v \"$PWD/secrets/api_token:/run/secrets/"
                         f"api_token:ro\") and set {TOKEN_FILE_VARIABLE} to where it is inside the container.")
    elif predict.status != 200:
        secret = _result("secret-from-env", False,
                         f"{how}, but /predict with that token answered {_answer_message(predict)}.",
                         "Pass one token, the same one the requests send (set API_TOKEN or API_TOKEN_FILE, "
                         "not both).")
    else:
        secret = _result("secret-from-env", True, f"{how}, and /predict accepts its token.")
    return [data, secret]


def _runtime_entry(image: str, spec: RunSpec | None, *, folder: Path, data_dir: Path,
                   limits: engine.SandboxLimits) -> str:
    """The key of :func:`runtime_checks`' outcome among the workers of a class grading (:mod:`containerlab.shared`).

    What the container does depends on the image's content (:func:`engine.content_digest`),
    the run command as Docker read it and the files its bind mounts show, not on who
    handed it in: the key is the run spec with the exercise folder written as a
    placeholder, the content of every bind-mounted file or folder and of the data folder
    (:func:`shared.files_key`), the limits and the customer asked. ``""`` (not shared):
    no image or spec, or a mount or the data folder outside the exercise folder or not
    readable.
    """
    found = engine.image(image) if image and spec is not None else None
    if found is None or spec is None:
        return ""
    root = folder.resolve()

    def placed(text: object) -> str:
        return str(text).replace(str(root), "<folder>")

    contents = {}
    for source in [*(Path(m.source) for m in spec.mounts if m.kind == "bind"), data_dir.resolve()]:
        content = shared.files_key(source) if source.is_relative_to(root) else None
        if content is None:
            return ""
        contents[placed(source)] = content
    asked = {"environment": {k: placed(v) for k, v in spec.environment.items()},
             "volumes": {placed(k): v for k, v in spec.volumes.items()},
             "mounts": [[m.kind, placed(m.source), m.target, m.read_only, placed(m.written)] for m in spec.mounts]}
    return shared.key("ex3-runtime", engine.content_digest(found), asked, contents, placed(data_dir.resolve()),
                      limits, service.VISIBLE_CASES[0][0])


def _runtime_read(doc: object) -> list[CheckResult] | None:
    """The runtime results another worker kept for the same key (:func:`_runtime_kept`), or ``None``."""
    try:
        return [CheckResult.from_dict(d) for d in doc]  # type: ignore[union-attr]
    except (KeyError, TypeError, ValueError):
        return None


def _runtime_kept(outcome: list[CheckResult]) -> list[dict] | None:
    """What the other workers may take of a container's runtime results: only results that all passed."""
    if not all(r.passed and not r.pressure for r in outcome):
        return None
    return [r.to_dict() for r in outcome]


def check(dockerfile: str | Path = "ex3.Dockerfile", run_command: str | Path = "ex3-run.sh",
          context: str | Path = "service", *, folder: str | Path = ".", tag: str = DEFAULT_TAG,
          limits: engine.SandboxLimits = engine.SandboxLimits(),
          build_timeout: float = service.BUILD_TIMEOUT, progress: Progress | None = None) -> CheckResults:
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
        progress: gets what the check is doing as it works (:mod:`.progress`); by default the live
            display in a notebook, nothing outside IPython.

    Returns:
        builds, data-mounted, secret-from-env, no-secret-in-image, no-data-in-image.
    """
    with _progress.reporting(progress, EXERCISE) as sink:
        return _check(dockerfile, run_command, context, folder=folder, tag=tag, limits=limits,
                      build_timeout=build_timeout, progress=sink)


def _check(dockerfile: str | Path, run_command: str | Path, context: str | Path, *, folder: str | Path,
           tag: str, limits: engine.SandboxLimits, build_timeout: float, progress: Progress | None) -> CheckResults:
    context, folder = Path(context), Path(folder)
    data_dir = context / "data"
    built = service.build_submission(dockerfile, context, tag=tag, timeout=build_timeout, progress=progress)
    builds = (_result("builds", True, f"Built {tag} in {built.seconds:.1f} s.") if built.image else
              _result("builds", False, built.problem, built.hint or "Fix the problem above and check again.",
                      cause=built.cause, pressure=built.pressure))
    spec: RunSpec | None = None
    problem = ""
    try:
        path = Path(run_command)
        if not path.is_file():
            raise RunCommandProblem(f"There is no file {path.name}: run the cell that writes your run command.")
        _progress.emit(progress, _progress.PHASE, "Running your run command in a sandbox")
        spec = read_run_command(path.read_text(encoding="utf-8-sig"), folder)
    except RunCommandProblem as exc:
        problem = str(exc)
    if built.image and spec is not None:
        _progress.emit(progress, _progress.PHASE, "Starting a container as your run command says")
    runtime = shared.computed(
        "ex3-runtime", _runtime_entry(built.image, spec, folder=folder, data_dir=data_dir, limits=limits),
        lambda: runtime_checks(built.image, spec, problem, data_dir=data_dir, limits=limits),
        read=_runtime_read, write=_runtime_kept)
    _progress.emit(progress, _progress.PHASE, "Looking through every layer of the image for the secret and the data")
    scans = scan_checks(built.image, values=secret_values(context, spec), data_dir=data_dir)
    # No free points: the image and the scans count only for a service that starts as the command says.
    gated = [builds, *scans]
    probe: service.Probe | None = None
    if spec is None:
        gated = [counts_once(r, "your run command can be run", "Fix the run command first: the data and "
                             "secret checks say what is wrong with it.") for r in gated]
    elif built.image and not any(r.passed for r in runtime):
        probe = service.probe_service(built.image, [], environment=spec.environment, volumes=spec.volumes,
                                      limits=limits, progress=progress)
        if not probe.healthy:
            condition = f"a container started as your run command says answers GET /health ({probe.problem})"
            gated = [counts_once(r, condition, probe.hint) for r in gated]
    items = [gated[0], *runtime, *gated[1:]]
    notes = [*built.notes, *(spec.notes if spec else []), *service.risk_notes(built),
             *(probe.notes if probe else [])]
    return results(EXERCISE, items, image=built.image, notes=notes)


def grade(submission: Submission) -> CheckResults:
    """Grade exercise 3 of one submission: the Dockerfile, the run command, the free-text answer's presence.

    The student's own files that the run command names are copied beside it
    (:func:`.submission.copy_run_files`).
    """
    dockerfile, found = submission.answer("ex3.Dockerfile")
    run_command, found_run = submission.answer("ex3-run.sh")
    context, context_notes = submission.context()
    run_files = copy_run_files(run_command.read_text(encoding="utf-8"), submission.notebook.parent, submission.work)
    checked = check(dockerfile, run_command, context, folder=submission.work, tag=submission.tag,
                    limits=submission.limits, build_timeout=submission.build_timeout)
    return (checked + conceptual.answered(submission, "ex3-answer")).noted(
        submission.notes, found, found_run, context_notes, run_files)


SPEC = Exercise(EXERCISE, "ex3-data-and-secrets-out.ipynb", grade, POINTS, image=True)
