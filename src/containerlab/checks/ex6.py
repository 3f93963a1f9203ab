"""Exercise 6 (optional): compose the service with its database.

The student writes ``compose.yaml`` with two services: ``api`` (the course's
customer-value image, ``cl-ex-ex6-api:latest``) and ``db`` (``postgres:17``).
The check reads the file through compose (:mod:`.composefile`), refuses what
would escape the sandbox, and starts the stack under a project name of its own,
with resource limits, its ports on free loopback ports and fresh values for
``API_TOKEN`` and ``POSTGRES_PASSWORD``. It then measures: the stack comes up
healthy; ``/predict`` answers through the published port and the prediction is
in the database (``GET /predictions``); the prediction is still there after
``down`` and ``up``, and the data volume is gone after ``down --volumes``; the
database's healthcheck ran and succeeded; the API waits for it; no password
or token is written in the file. The stack and its volumes are always removed.

Hidden checks (:func:`check_hidden`) start the stack twice more from a fresh
volume and ask for several customers.

No free points (issue 9): the checks read from the file alone (healthcheck, waiting,
no written secret) count once the stack comes up.

The class grader grades a submission with :func:`grade` (a notebook left as
handed out is not attempted); the exercise is registered as :data:`SPEC`
(:mod:`.registry`).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from .. import answers, config, engine, shared
from . import CheckResult, CheckResults, causes, counts_once, not_attempted, results
from . import progress as _progress
from . import service
from . import composefile
from .composefile import API, DB, DB_DATA, VARIABLES, StackFile
from .progress import Progress
from .runcommand import RunCommandProblem, read_env_file
from .dockerfile import PLACEHOLDER
from .registry import Exercise
from .submission import Submission, hidden_cases

EXERCISE = "ex6"
#: The image the task names for the API; the check builds its own, :data:`DEFAULT_API_TAG`.
API_IMAGE = "cl-ex-ex6-api:latest"
#: The check's build of the course's API image (per user and clone, like exercise 1's tag).
DEFAULT_API_TAG = f"cl-ex-ex6-api:{config.INSTANCE}"
#: The compose project of this user's check (two users never stop each other's stack: docker/compose#5104).
DEFAULT_PROJECT = f"{service.SANDBOX_PREFIX}-ex6"
#: The course's Dockerfile of the API (the one page 14.3 builds, in its build context config.SERVICE_DIR).
API_DOCKERFILE = config.SERVICE_DIR / "Dockerfile"
#: Seconds to keep asking /predict while it answers 503 (a database still starting, when the API did not wait).
PREDICT_PATIENCE = 30.0
#: Seconds to keep asking GET /predictions while nothing answers (an API not listening yet on a busy engine):
#: before, a request nothing answered counted as "listed nothing". A correct stack lost its data-kept
#: points once when the corpus was graded a second time beside the other tests (2026-12-07; the host's
#: disk was full then, and the cause was not found).
ANSWER_PATIENCE = 20.0

POINTS = {"stack-up": 2, "predicts": 2, "data-kept": 2, "db-healthcheck": 1, "waits-for-db": 1,
          "no-secret-in-file": 2, "fresh-start": 1, "many-customers": 1}
DESCRIPTIONS = {
    "stack-up": "The stack comes up healthy (docker compose up --wait)",
    "predicts": "POST /predict answers through the published port and the prediction is stored",
    "data-kept": "Stored predictions survive down and up (a named volume), and go with down --volumes",
    "db-healthcheck": "The database's healthcheck runs and succeeds",
    "waits-for-db": "The API starts once the database is healthy (condition: service_healthy)",
    "no-secret-in-file": "No password or token is written in the compose file",
    "fresh-start": "Started once more from a fresh volume, the stack answers the first request at once",
    "many-customers": "The stack scores and stores several customers",
}
HIDDEN = ("fresh-start", "many-customers")
UP = "the stack comes up healthy"
UP_HINT = "Make the stack come up first: the first check says what stops it."


def _result(name: str, passed: bool, message: str = "", hint: str = "", *,
            pressure: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], passed, POINTS[name], message, "" if passed else hint,
                       name in HIDDEN, pressure=pressure)


def _all_failed(names: Sequence[str], message: str, hint: str) -> list[CheckResult]:
    return [_result(n, False, message, hint) for n in names]


def _refused(names: Sequence[str], exc: RunCommandProblem) -> list[CheckResult]:
    """The first check says why the file cannot be run; the others count once it can."""
    first = _result(names[0], False, str(exc), "Change the compose file as the message says.")
    return [first, *_all_failed(names[1:], "Counts once the check can start your file.",
                                f"Fix the file first: the check \"{first.description}\" says how.")]


class _Stack:
    """One run of the student's stack: its sandboxed file, its variables, the API's address."""

    def __init__(self, stack: StackFile, *, project: str, api_image: str, limits: engine.SandboxLimits,
                 env: dict[str, str], work: Path):
        self.stack, self.project, self.env, self.limits = stack, project, env, limits
        model, self.notes = composefile.sandboxed(stack, project=project, api_image=api_image, limits=limits,
                                                  labels={service.CHECK_LABEL: EXERCISE})
        self.file = work / "compose.json"
        self.file.write_text(json.dumps(model), encoding="utf-8")
        self.file.chmod(0o600)
        self.headers = {"Authorization": f"Bearer {env['API_TOKEN']}"}
        ports = stack.service(API).get("ports") or []
        self.target = int(ports[0]["target"]) if ports else 80
        #: Send requests from inside the stack's network, not through the published port (see :meth:`go_inside`).
        self.inside = False
        self._api = None

    def listening(self) -> list[int]:
        """The ports the API's container listens on, below Linux's ephemeral range (not its outgoing sockets)."""
        container = engine.compose_container(self.file, project=self.project, service=API, env=self.env)
        return sorted({p for _a, p in engine.listening_sockets(container) if p < 32768}) if container else []

    def reach(self, url: str) -> None:
        """Send the requests to the API's container port on the stack's network when ``url`` cannot be reached.

        For an engine whose published ports this process cannot reach (a grading
        engine in a network namespace of its own), once the API is seen listening on
        the port the file publishes: the file is right, only the grader's view is not.
        """
        if self.inside or self.request("GET", f"{url}/health")[0] is not None or self.target not in self.listening():
            return
        self.inside = True
        self.notes.append(f"The published port could not be reached from the grader (its engine runs in a network "
                          f"namespace of its own), so requests went to the API's port {self.target} on the stack's "
                          "network, where it listens.")

    def up(self) -> list[engine.ComposeService]:
        self._api = None
        return engine.compose_up(self.file, project=self.project, env=self.env, build=False,
                                 wait_timeout=self.limits.ready_timeout, echo=lambda _line: None)

    def down(self, *, volumes: bool = False) -> None:
        engine.compose_down(self.file, project=self.project, env=self.env, volumes=volumes)

    def url(self) -> tuple[str, str]:
        """The API's address through its published port, or ``("", why)``."""
        ports = self.stack.service(API).get("ports") or []
        if not ports:
            return "", "Service api publishes no port, so nothing outside the stack can reach it."
        target = int(ports[0]["target"])
        try:
            port = engine.compose_port(self.file, project=self.project, service=API, port=target, env=self.env)
        except engine.EngineError as exc:
            return "", str(exc)
        return f"http://127.0.0.1:{port}", ""

    def request(self, method: str, url: str, body: dict | None = None) -> tuple[int | None, str]:
        """Send one request; ``(status, body)``, or ``(None, why)`` when nothing answered."""
        if self.inside:
            self._api = self._api or engine.compose_container(self.file, project=self.project, service=API,
                                                              env=self.env)
            if self._api is None:
                return None, "the api container is gone"
            path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
            answer = engine.http_from_inside(self._api, method, path, port=self.target,
                                             body=json.dumps(body) if body else "", headers=self.headers)
            return answer.status, answer.body if answer.status is not None else answer.error
        try:
            answer = requests.request(method, url, json=body, headers=self.headers, timeout=10)
        except requests.RequestException as exc:
            return None, type(exc).__name__
        return answer.status_code, answer.text

    def predict(self, url: str, customer: dict, *, patience: float) -> tuple[int | None, str]:
        """POST /predict, asking again for ``patience`` seconds while the database is not ready (503)."""
        deadline = time.monotonic() + patience
        while True:
            status, body = self.request("POST", f"{url}/predict", customer)
            if status != 503 or time.monotonic() > deadline:
                return status, body
            time.sleep(1)

    def stored(self, url: str) -> list[dict] | None:
        """The predictions in the database; ``None`` when nothing answered within :data:`ANSWER_PATIENCE` s.

        A 503 (the database not ready) is asked again for :func:`_patience` seconds, and then
        counts as nothing stored; a request nothing answered (an API still starting on a busy
        engine) is asked again for :data:`ANSWER_PATIENCE` seconds.
        """
        start = time.monotonic()
        while True:
            status, body = self.request("GET", f"{url}/predictions?limit=1000")
            if status == 200:
                return list(json.loads(body).get("predictions", []))
            waited = time.monotonic() - start
            if status is None and waited > ANSWER_PATIENCE:
                return None
            if status is not None and (status != 503 or waited > _patience(self.stack)):
                return []
            time.sleep(1)

    def api_log(self) -> str:
        return engine.compose_logs(self.file, project=self.project, service=API, tail=40, env=self.env,
                                   prefix=False)


def _message(body: str) -> str:
    try:
        return str(json.loads(body).get("message", body))[:300]
    except (ValueError, AttributeError):
        return body[:300]


_LOG_PREFIX = re.compile(r"^(?:\x1b\[[0-9;]*[A-Za-z])*(?:[\w.-]+\s+\|\s?)?")


def _plain(log: str) -> str:
    """A service's log without terminal codes and compose's ``api-1  | `` prefixes."""
    return "\n".join(_LOG_PREFIX.sub("", line) for line in log.splitlines())


def _startup_line(log: str) -> str:
    """The API's own line that says which database it uses (``customer-value: ... database HOST:PORT/DB``)."""
    lines = [ln.strip() for ln in _plain(log).splitlines() if ln.startswith("customer-value:") and "database" in ln]
    return lines[-1] if lines else ""


def _up_failure(exc: engine.ComposeFailed, stack: StackFile) -> str:
    """Why the stack did not come up, from the evidence: states, health logs, logs, compose's warnings."""
    parts = []
    for c in exc.containers:
        if c.service not in exc.services:
            continue
        state = c.state + (f", {c.health}" if c.health else "") + (f", exit code {c.exit_code}"
                                                                      if c.state == "exited" else "")
        line = (f"Service {c.service} was never started (it waits for the services it depends on)."
                if c.state == "created" else f"Service {c.service} is {state}.")
        probes = exc.health.get(c.service) or []
        failing = [p for p in probes if p.exit_code != 0]
        if failing:
            line += f" Its healthcheck failed {len(failing)} time(s); the last probe said: " \
                    f"{causes.scrub(failing[-1].output.strip())[:300] or '(nothing)'}."
        output = causes.relevant_output(_plain(exc.logs.get(c.service, "")))
        if output:
            line += f" Its last output:\n{output}"
        parts.append(line)
    if not parts:
        parts.append(f"Compose says: {causes.scrub(exc.output)[-400:]}")
    for warning in stack.unset_variables():
        parts.append(f"Compose warned: {warning}")
    return "\n".join(parts)


def _up_hint(exc: engine.ComposeFailed, stack: StackFile) -> str:
    """What to change for the evidence :func:`_up_failure` found."""
    text = "\n".join([*exc.logs.values(), *(p.output for ps in exc.health.values() for p in ps), exc.output])
    test = (stack.service(DB).get("healthcheck") or {}).get("test") or []
    if stack.unset_variables():
        return (f"Use the variables the check sets ({' and '.join(VARIABLES)}), as ${{POSTGRES_PASSWORD}}; "
                "a variable nobody set becomes an empty string.")
    if _one_string_exec(test):
        return _ONE_STRING_HINT.format(test[1])
    over_app = [m for m in stack.service(API).get("volumes") or []
                if str(m.get("target", "")).rstrip("/") in ("/app", "/app/src")]
    if over_app and ("No module named" in text or "Could not import module" in text):
        mount = over_app[0]
        source = Path(str(mount.get("source", ""))).name or str(mount.get("source", ""))
        return (f"Service api mounts {source or 'a volume'} over {mount['target']}, the image's working folder: "
                "the mount hides the code the image put there. Mount nothing over /app; the image has the code.")
    if "executable file not found" in text:
        return "The healthcheck names a program the image does not have: check the command's spelling."
    return "Read the service's output above; the stack must come up with `docker compose up --wait`."


_ONE_STRING_HINT = ("In exec form (\"CMD\") each word is its own list item: \"{0}\" is taken as the name of one "
                    "program. Write [\"CMD\", \"pg_isready\", ...] with one item per word, "
                    "or [\"CMD-SHELL\", \"{0}\"].")


def _one_string_exec(test: Sequence[str]) -> bool:
    return len(test) == 2 and test[0] == "CMD" and " " in str(test[1]).strip()


def static_checks(stack: StackFile, known: tuple[str, ...]) -> dict[str, CheckResult]:
    """The checks read from the file: the database's healthcheck, the API waiting for it, no written secret."""
    db, api = stack.service(DB), stack.service(API)
    health = db.get("healthcheck") or {}
    test = [str(t) for t in health.get("test") or []]
    if not health or health.get("disable") or test[:1] == ["NONE"]:
        healthcheck = _result("db-healthcheck", False, "Service db has no healthcheck.",
                              "Give db a healthcheck that asks PostgreSQL whether it accepts connections "
                              "(pg_isready), with a short interval.")
    elif _one_string_exec(test):
        healthcheck = _result("db-healthcheck", False, f"The healthcheck test is {json.dumps(test)}.",
                              _ONE_STRING_HINT.format(test[1]))
    else:
        healthcheck = _result("db-healthcheck", True, f"Service db has the healthcheck {json.dumps(test)}.")
    condition = str(((api.get("depends_on") or {}).get(DB) or {}).get("condition", ""))
    if condition == "service_healthy":
        waits = _result("waits-for-db", True, "Service api depends on db with condition: service_healthy.")
    elif condition:
        waits = _result("waits-for-db", False,
                        f"Service api depends on db with condition {condition}: that waits until db's container "
                        "has started, not until PostgreSQL accepts connections (a short `depends_on: [db]` "
                        "means exactly this).",
                        "Write depends_on: db: condition: service_healthy (the long form), with a healthcheck on db.")
    else:
        waits = _result("waits-for-db", False, "Service api does not depend on db: it may start first.",
                        "Write depends_on: db: condition: service_healthy under api.")
    found = composefile.written_secrets(stack, known)
    secret = (_result("no-secret-in-file", True, "Every password and token comes from a variable.") if not found else
              _result("no-secret-in-file", False, "The file writes secrets itself: " + "; ".join(found) + ".",
                      "Write ${POSTGRES_PASSWORD} and ${API_TOKEN} where the values go; they come from the "
                      "environment or a .env file beside the compose file, which is never shared."))
    return {r.name: r for r in (healthcheck, waits, secret)}


def _waits_for_db(stack: StackFile) -> bool:
    """Whether the API starts only once the database is healthy (``condition: service_healthy``)."""
    return ((stack.service(API).get("depends_on") or {}).get(DB) or {}).get("condition") == "service_healthy"


def _patience(stack: StackFile) -> float:
    """Seconds to keep asking /predict: an API that does not wait for the database gets time for it to start."""
    return 2.0 if _waits_for_db(stack) else PREDICT_PATIENCE


def _database_trouble(run: _Stack) -> tuple[str, str]:
    """Why the API could not use the database, from its log: (what the log says, or ``""``; the hint)."""
    line = _startup_line(run.api_log())
    said = f" The API's log says: \"{line}\"." if line else ""
    hint = ("Inside a container, localhost is the container itself: reach the database by its service "
            "name, db (postgresql://USER:${POSTGRES_PASSWORD}@db:5432/DB)."
            if "localhost" in line or "127.0.0.1" in line else
            "Set DATABASE_URL for api to postgresql://USER:PASSWORD@db:5432/DB, with the user, password and "
            "database db was started with.")
    return said, hint


def _runtime(run: _Stack, customer: dict,
             hidden_cases: Sequence[tuple[dict[str, float], float]] = ()) -> dict[str, CheckResult]:
    """Start the stack, ask it for a prediction, take it down and up, and down with its volumes.

    With ``hidden_cases`` the hidden checks are made on the same start, which is from a fresh
    volume too: the first of them is the first request after ``up --wait`` (fresh-start), then
    the visible customer, then every hidden case (many-customers), before the down and up.
    """
    stack = run.stack
    names = ("stack-up", "predicts", "data-kept", "db-healthcheck")
    start = time.monotonic()
    try:
        run.up()
    except engine.ComposeFailed as exc:
        probes = exc.health.get(DB) or []
        out = {n: r for n, r in zip(names, _all_failed(names, f"Counts once {UP}.", UP_HINT))}
        out["stack-up"] = _result("stack-up", False, _up_failure(exc, stack), _up_hint(exc, stack),
                                  pressure=exc.pressure)
        if hidden_cases:
            out.update(zip(HIDDEN, _counts_once_up(HIDDEN)))
        if probes and not any(p.exit_code == 0 for p in probes):
            out["db-healthcheck"] = _result("db-healthcheck", False, "None of its probes succeeded; the last said: "
                                            f"{causes.scrub(probes[-1].output.strip())[:300]}",
                                            "The probe must succeed once PostgreSQL accepts connections.")
        return out
    out = {"stack-up": _result("stack-up", True, f"Every service is up (and healthy where it has a healthcheck) after "
                                                  f"{time.monotonic() - start:.0f} s.")}
    probes = engine.compose_health(run.file, project=run.project, service=DB, env=run.env)
    if probes is None:
        out["db-healthcheck"] = _result("db-healthcheck", False, "Service db ran without a healthcheck.",
                                        "Give db a healthcheck (pg_isready).")
    elif any(p.exit_code == 0 for p in probes):
        # Not how many of the last probes succeeded: that depends on how long the database took to start,
        # and the same file graded twice must get the same message (issue 21, item 4).
        out["db-healthcheck"] = _result("db-healthcheck", True,
                                        "Its probes succeeded once PostgreSQL accepted connections.")
    else:
        out["db-healthcheck"] = _result("db-healthcheck", False, "No probe succeeded yet.",
                                        "The probe must succeed once PostgreSQL accepts connections.")
    url, why = run.url()
    if hidden_cases and not url:
        out.update(zip(HIDDEN, _all_failed(HIDDEN, why, "Publish the API's port.")))
    elif hidden_cases:
        run.reach(url)
        out["fresh-start"] = _fresh(run, url, hidden_cases[0][0])
    out["predicts"] = _predicts(run, url, why, customer)
    if hidden_cases and url:
        out["many-customers"] = _many(run, url, hidden_cases)
    if not out["predicts"].passed:
        out["data-kept"] = _result("data-kept", False, "Counts once a prediction is stored.",
                                   "Make /predict store a prediction first: the check above says what stops it.")
        return out
    out["data-kept"] = _data_kept(run)
    return out


def _counts_once_up(names: Sequence[str]) -> list[CheckResult]:
    """``names`` failed because the stack did not come up (the first check says why)."""
    return _all_failed(names, f"Counts once {UP}.", UP_HINT)


def _predicts(run: _Stack, url: str, why: str, customer: dict) -> CheckResult:
    if not url:
        return _result("predicts", False, why, "Publish the API's port 80 on a host port: ports: [\"8000:80\"].")
    run.reach(url)
    status, body = run.predict(url, customer, patience=_patience(run.stack))
    target = run.target
    if status is None:
        listening = run.listening()
        if target not in listening:
            return _result("predicts", False,
                           f"Nothing answered on the published port: the file publishes the API's container port "
                           f"{target}, but the API listens on {', '.join(map(str, listening)) or 'no port'}.",
                           f"Publish the port the API listens on: \"HOST:{listening[0] if listening else 80}\".")
        return _result("predicts", False, f"Nothing answered on the published port ({body}).",
                       "The API must answer on the port the file publishes.")
    if status != 200:
        said, hint = _database_trouble(run)
        return _result("predicts", False, f"POST /predict answered {status}: {_message(body)}{said}", hint)
    value = json.loads(body).get("customer_value")
    stored = [p for p in run.stored(url) or [] if p.get("customer") == customer]
    if not stored:
        return _result("predicts", False, f"/predict answered {value}, but GET /predictions does not list it.",
                       "Give the API a DATABASE_URL that points at db.")
    how = "on the API's port inside the stack" if run.inside else "through the published port"
    return _result("predicts", True, f"/predict answered {value} {how}, and the database holds the prediction.")


def _start(run: _Stack, name: str, what: str) -> CheckResult | None:
    """Start the stack again; when it does not come up, check ``name`` fails with ``what`` and the evidence."""
    try:
        run.up()
    except engine.ComposeFailed as exc:
        return _result(name, False, f"{what}: {_up_failure(exc, run.stack)}", _up_hint(exc, run.stack),
                       pressure=exc.pressure)
    return None


def _data_kept(run: _Stack) -> CheckResult:
    mount = run.stack.data_mount()
    run.down()
    if failed := _start(run, "data-kept", "After down, the stack did not come up again"):
        return failed
    url, _ = run.url()
    listed = run.stored(url) if url else []
    kept = bool(listed)
    run.down(volumes=True)
    if not mount:
        return _result("data-kept", False, f"Service db mounts nothing at {DB_DATA}: the data lived in the "
                       "container's own volume and went with it." if not kept else
                       f"Service db mounts nothing at {DB_DATA}.",
                       f"Mount a named volume at {DB_DATA} (volumes: [\"db-data:{DB_DATA}\"], and db-data under "
                       "the top-level volumes).")
    if mount.get("type") == "bind":
        return _result("data-kept", False, f"The data is in a bind mount of {Path(str(mount['source'])).name}/: "
                       "down --volumes leaves it behind, and every stack started from this folder shares it.",
                       "Keep the database's data in a named volume, which compose makes and removes.")
    if listed is None:
        return _result("data-kept", False, f"After down and up, nothing answered GET /predictions within "
                       f"{ANSWER_PATIENCE:.0f} s.", "The API must answer again after docker compose down and up.")
    if not kept:
        return _result("data-kept", False, "After down and up, GET /predictions listed nothing.",
                       f"Mount a named volume at {DB_DATA}.")
    name = run.stack.volume_name(str(mount.get("source", "")))
    if name in engine.volume_names():
        return _result("data-kept", False, f"The volume {name} is still there after down --volumes.",
                       "Let compose make the volume: list it under the top-level volumes, not as external.")
    return _result("data-kept", True, "The prediction was still there after down and up, and the named volume "
                                      "went with down --volumes.")


def _prepare(compose_file: str | Path, context: str | Path, folder: str | Path, *, project: str, tag: str,
             build_timeout: float, progress: Progress | None) -> tuple[StackFile, dict[str, str], str, tuple[str, ...]]:
    """Read the file, the given secrets, and build the API image.

    Raises:
        RunCommandProblem: the file is refused or cannot be read (the message says why).
    """
    env = {"API_TOKEN": service.new_token(), "POSTGRES_PASSWORD": service.new_token()}
    stack = composefile.read(Path(compose_file), Path(folder).resolve(), project=project, env=env)
    try:
        known = tuple(v for v in read_env_file(Path(context) / ".env").values() if len(v) >= 8)
    except (OSError, RunCommandProblem):
        known = ()
    _progress.emit(progress, _progress.PHASE, f"Building the course's API image as {tag}")
    # The course's own build context: nothing of the student's (a .dockerignore of exercise 3) changes the API.
    built = service.build_submission(API_DOCKERFILE, config.SERVICE_DIR, tag=tag, timeout=build_timeout,
                                     progress=progress)
    if not built.image:
        raise engine.EngineError(f"The course's API image did not build: {built.problem}")
    return stack, env, built.image, known


def _shared_entry(run: _Stack, hidden_cases: Sequence[tuple[dict[str, float], float]]) -> str:
    """The key of this stack's measured outcome among the workers of a class grading (:mod:`containerlab.shared`).

    What the stack does depends on the model compose is given and the images it runs, not on
    who handed it in: the key is the model with the project's name and the check's fresh
    variable values written as placeholders, each service's image given by its content
    (:func:`engine.content_digest`), the limits and the customers asked. A bind mount names a
    folder of the student's own (its files may differ), so such a stack is never shared.
    """
    if any(v.get("type") == "bind" for spec in run.stack.model["services"].values() for v in spec.get("volumes") or []):
        return ""
    text = run.file.read_text(encoding="utf-8")
    for name, value in run.env.items():
        text = text.replace(value, f"<{name}>")
    model = json.loads(text.replace(run.project, "<project>"))
    for spec in model["services"].values():
        found = engine.image(str(spec.get("image", "")))
        spec["image"] = engine.content_digest(found) if found is not None else spec.get("image")
    return shared.key("ex6", model, run.limits, [list(c) for c in hidden_cases], service.VISIBLE_CASES[0][0])


def _shared_outcome(doc: object) -> tuple[dict[str, CheckResult], list[str]] | None:
    """The measured checks and notes another worker kept for the same stack (:func:`_outcome_kept`), or ``None``."""
    try:
        return ({d["name"]: CheckResult.from_dict(d) for d in doc["measured"]},
                [str(n) for n in doc["notes"]])
    except (KeyError, TypeError, ValueError):
        return None


def _outcome_kept(outcome: tuple[dict[str, CheckResult], list[str]]) -> dict | None:
    """What the other workers may take of a stack's outcome: only one whose measured checks all passed."""
    measured, notes = outcome
    if not all(r.passed and not r.pressure for r in measured.values()):
        return None
    return {"measured": [r.to_dict() for r in measured.values()], "notes": notes}


def check(compose_file: str | Path = "compose.yaml", context: str | Path = "service", *, folder: str | Path = ".",
          project: str = DEFAULT_PROJECT, tag: str = DEFAULT_API_TAG,
          limits: engine.SandboxLimits = engine.SandboxLimits(), build_timeout: float = service.BUILD_TIMEOUT,
          progress: Progress | None = None,
          hidden_cases: Sequence[tuple[dict[str, float], float]] = ()) -> CheckResults:
    """Run the visible checks of exercise 6 (and, with ``hidden_cases``, the hidden ones on the same stack).

    For the class grader, ``hidden_cases`` makes the hidden checks of :func:`check_hidden`
    on the stack's first start, which is from a fresh volume too: one stack start and one
    build fewer per student. The notebook runs the two in separate cells. In a class grading
    (:mod:`containerlab.shared`), a stack another student's file already made, whose measured
    checks all passed, is not started again (:func:`_shared_entry`).

    Args:
        compose_file: the student's compose file.
        context: the service folder beside the notebook; its ``.env`` holds the token handed out, which
            must not be written in the file. (The API image is built from the course's own
            ``docker/customer-value``, with its Dockerfile of page 14.3.)
        folder: the exercise folder; bind mounts must stay inside it.
        project: the compose project name the stack runs under (removed afterwards, volumes too).
        tag: tag for the check's build of the course's API image (kept, for the next check).
        limits: memory, CPU and process limits of every service; ``ready_timeout`` is the seconds
            ``up --wait`` may take.
        build_timeout: seconds after which the API image's build is stopped.
        progress: gets what the check is doing (:mod:`.progress`).
        hidden_cases: ``(customer, expected customer_value)`` pairs for the hidden checks; none: not made.

    Returns:
        stack-up, predicts, data-kept, db-healthcheck, waits-for-db, no-secret-in-file; then
        fresh-start and many-customers (hidden) when ``hidden_cases`` are given.

    Raises:
        EngineUnavailable: no engine answers.
        EngineError: the course's API image did not build (not the student's fault).
    """
    names = [n for n in POINTS if n not in HIDDEN]
    hidden = list(HIDDEN) if hidden_cases else []
    with _progress.reporting(progress, EXERCISE) as sink:
        try:
            stack, env, image, known = _prepare(compose_file, context, folder, project=project, tag=tag,
                                                build_timeout=build_timeout, progress=sink)
        except RunCommandProblem as exc:
            return results(EXERCISE, [*_refused(names, exc), *_counts_once_up(hidden)])
        static = static_checks(stack, known)
        with tempfile.TemporaryDirectory(prefix="cl-ex-ex6-") as work:
            run = _Stack(stack, project=project, api_image=image, limits=limits, env=env, work=Path(work))

            def measure() -> tuple[dict[str, CheckResult], list[str]]:
                """The measured checks, and the notes the run added (taken out of ``run.notes``)."""
                noted = len(run.notes)
                try:
                    engine.compose_down(None, project=project, volumes=True)
                    _progress.emit(sink, _progress.PHASE, "Starting your stack (docker compose up --wait)")
                    measured = _runtime(run, service.VISIBLE_CASES[0][0], hidden_cases)
                finally:
                    engine.compose_down(None, project=project, volumes=True)
                added = run.notes[noted:]
                del run.notes[noted:]
                return measured, added

            entry = _shared_entry(run, hidden_cases) if hidden_cases else ""
            measured, added = shared.computed("stack", entry, measure, read=_shared_outcome, write=_outcome_kept)
            run.notes += added
    if not static["db-healthcheck"].passed:
        measured["db-healthcheck"] = static["db-healthcheck"]
    items = {**static, **measured}
    if not items["stack-up"].passed:
        for name in ("db-healthcheck", "waits-for-db", "no-secret-in-file"):
            items[name] = counts_once(items[name], UP, UP_HINT)
    return results(EXERCISE, [items[n] for n in [*names, *hidden]], image=image,
                   notes=[*stack.notes, *run.notes, *(f"Compose warned: {w}" for w in stack.warnings)])


def check_hidden(compose_file: str | Path, cases: Sequence[tuple[dict[str, float], float]],
                 context: str | Path = "service", *, folder: str | Path = ".", project: str = DEFAULT_PROJECT,
                 tag: str = DEFAULT_API_TAG, limits: engine.SandboxLimits = engine.SandboxLimits(),
                 build_timeout: float = service.BUILD_TIMEOUT) -> CheckResults:
    """Run the hidden checks of exercise 6: one more start from a fresh volume, and several customers.

    The stack comes up once more from a fresh volume (the visible check ended with
    ``down --volumes``). The first request right after ``up --wait`` must be answered and
    stored at once: an API that does not wait for its database loses this race. Then every
    case is sent: each answer within :data:`service.TOLERANCE` of the reference, and all stored.

    Args:
        compose_file, context, folder, project, tag, limits, build_timeout: as for :func:`check`.
        cases: ``(customer, expected customer_value)`` pairs, at least one.

    Returns:
        fresh-start, many-customers (both hidden).
    """
    names = list(HIDDEN)
    try:
        stack, env, image, _ = _prepare(compose_file, context, folder, project=project, tag=tag,
                                        build_timeout=build_timeout, progress=None)
    except RunCommandProblem as exc:
        return results(EXERCISE, _refused(names, exc))
    with tempfile.TemporaryDirectory(prefix="cl-ex-ex6-") as work:
        run = _Stack(stack, project=project, api_image=image, limits=limits, env=env, work=Path(work))
        try:
            engine.compose_down(None, project=project, volumes=True)
            if failed := _start(run, "fresh-start", "The stack did not come up from a fresh volume"):
                checked = [failed, _result("many-customers", False, "Counts once the stack comes up.", failed.hint)]
            else:
                checked = _fresh_and_many(run, cases)
        finally:
            engine.compose_down(None, project=project, volumes=True)
    return results(EXERCISE, checked, image=image)


def _fresh_and_many(run: _Stack, cases: Sequence[tuple[dict[str, float], float]]) -> list[CheckResult]:
    """On a stack just started from a fresh volume: the first request at once, then every case."""
    url, why = run.url()
    if not url:
        return _all_failed(HIDDEN, why, "Publish the API's port.")
    run.reach(url)
    return [_fresh(run, url, cases[0][0]), _many(run, url, cases)]


def _fresh(run: _Stack, url: str, customer: dict) -> CheckResult:
    """fresh-start: ``customer`` asked at once, as the first request after ``up --wait``, must be answered and stored."""
    status, body = run.predict(url, customer, patience=0)
    if status == 200 and any(p.get("customer") == customer for p in run.stored(url) or []):
        fresh = _result("fresh-start", True, "The first request after a fresh start was answered and stored.")
    elif _waits_for_db(run.stack):
        # It waited for a healthy database and still failed: the log tells why (localhost, a wrong password).
        said, hint = _database_trouble(run)
        fresh = _result("fresh-start", False,
                        f"Right after up --wait, /predict answered {status}: {_message(body)}{said}", hint)
    else:
        fresh = _result("fresh-start", False, f"Right after up --wait, /predict answered {status}: {_message(body)}",
                        "The API must wait until the database is healthy (condition: service_healthy).")
    return fresh


def _many(run: _Stack, url: str, cases: Sequence[tuple[dict[str, float], float]]) -> CheckResult:
    """many-customers: every case answered within :data:`service.TOLERANCE`, and each one stored."""
    before = len(run.stored(url) or [])
    wrong = []
    for customer, expected in cases:
        status, body = run.predict(url, customer, patience=_patience(run.stack))
        got = json.loads(body).get("customer_value") if status == 200 else f"{status}: {_message(body)}"
        if not isinstance(got, float) or abs(got - expected) > service.TOLERANCE:
            wrong.append(f"{customer} -> {got}")
    stored = len(run.stored(url) or []) - before
    if wrong:
        shown = "; ".join(wrong[:2])
        many = _result("many-customers", False, f"{len(wrong)} of {len(cases)} answers were wrong or missing"
                       + (f", for example: {shown}" if len(wrong) > 2 else f": {shown}"),
                       "Every /predict must be answered and stored.")
    elif stored < len(cases):
        many = _result("many-customers", False, f"{stored} of {len(cases)} predictions were stored.",
                       "Every prediction must reach the database.")
    else:
        many = _result("many-customers", True, f"{len(cases)} customers scored and stored.")
    return many


def grade(submission: Submission) -> CheckResults:
    """Grade the optional exercise 6 of one submission: the compose file, visible and hidden checks.

    A notebook that is missing, or whose answer cell still holds the placeholder, is not
    attempted: every check gets 0 with :data:`.NOT_ATTEMPTED`, and nothing else is said.
    The stack runs as the compose project ``submission.project``
    (:meth:`.registry.Exercise.stack_project`: two graders on one engine never stop each
    other's stack), with ``submission.limits`` on every service.
    """
    skipped = not_attempted(EXERCISE, POINTS, DESCRIPTIONS, HIDDEN)
    if not submission.notebook.is_file():
        return skipped
    try:
        compose_file, found = submission.answer("compose.yaml")
    except answers.AnswerMissing:
        return skipped
    text = compose_file.read_text(encoding="utf-8")
    if PLACEHOLDER in text or not text.strip():
        return skipped
    context, _ = submission.context()
    cases = hidden_cases(notebook=SPEC.notebook, grade_id="ex6-test-hidden-many-customers")
    checked = check(compose_file, context, folder=submission.work, project=submission.project,
                    limits=submission.limits, build_timeout=submission.build_timeout, hidden_cases=cases)
    return checked.noted(submission.notes, found)


SPEC = Exercise(EXERCISE, "ex6-compose-the-stack.ipynb", grade, POINTS, stack=True)
