"""Exercise 1: write a Dockerfile for the customer-value service.

Visible checks: it builds; the base is a slim Python image; ``CMD`` is exec
form; a container answers ``/health`` on port 80; ``/predict`` gives the
reference answers. Hidden checks (:func:`check_hidden`): a second set of
customers, and no file of the service's ``data/`` folder inside the image.

No free points (issue 9): the checks that a Dockerfile can pass without doing
the task (it builds, slim base, exec form, no data inside) count only for an
image whose container answers ``GET /health``; otherwise they fail with a
message that says so (:func:`.counts_once`). Right-but-risky choices (root
user, a pinned ``--platform``, a HEALTHCHECK that fails) are notes.

The class grader grades a submission with :func:`grade` (both sets of
customers from one container); the exercise is registered as :data:`SPEC`
(:mod:`.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .. import config, engine, scan
from . import CheckResult, CheckResults, counts_once, results
from . import progress as _progress
from . import service
from .progress import Progress
from .registry import Exercise
from .submission import Submission
from .dockerfile import exec_form, is_slim_python

EXERCISE = "ex1"
#: The tag the check gives the student's image (kept after the check): the repository every student
#: reads, ``cl-ex-ex1``, with a tag of this user and clone (:data:`config.INSTANCE`), so that users
#: sharing one engine never build over each other's image.
DEFAULT_TAG = f"cl-ex-ex1:{config.INSTANCE}"
#: Points of each check, as the notebook's graded cells give them.
POINTS = {"builds": 2, "slim-base": 1, "exec-form-cmd": 1, "health": 2, "predict": 2,
          "predict-hidden": 1, "no-test-data": 1}

DESCRIPTIONS = {
    "builds": "The image builds from your Dockerfile",
    "slim-base": "The final image starts from a slim Python base image",
    "exec-form-cmd": "CMD is in exec form (a JSON list)",
    "health": "A container answers GET /health on port 80",
    "predict": "POST /predict gives the right answers",
    "predict-hidden": "POST /predict gives the right answers for more customers",
    "no-test-data": "The image holds none of the files in the service's data/ folder",
}


#: What the checks that a non-working answer could pass wait for.
SERVES = "a container of the image answers GET /health on port 80"
SERVES_HINT = "Make the service answer first: the health check below says what stops it."


def _result(name: str, passed: bool, message: str = "", hint: str = "", *, hidden: bool = False,
            cause: str = "", pressure: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(name, DESCRIPTIONS[name], passed, POINTS[name], message, "" if passed else hint, hidden,
                       cause=cause, pressure=pressure)


def static_checks(built: service.Built) -> list[CheckResult]:
    """Checks read from the Dockerfile itself: slim base, exec-form CMD."""
    parsed = built.dockerfile
    if parsed is None:
        why = built.problem or "The Dockerfile could not be read."
        return [_result("slim-base", False, why, "Fix the Dockerfile first."),
                _result("exec-form-cmd", False, why, "Fix the Dockerfile first.")]
    base = parsed.final_base()
    slim = _result("slim-base", is_slim_python(base), f"The final stage starts FROM {base or 'nothing'}.",
                   "Use a slim variant of the official Python image (its tag ends in -slim): the full "
                   "image carries compilers and tools the service never uses.")
    cmd = parsed.last("CMD")
    if cmd is None:
        form = _result("exec-form-cmd", False, "There is no CMD instruction.",
                       "End with a CMD that starts the web server, written as a JSON list of strings.")
    elif exec_form(cmd.args) is None:
        form = _result("exec-form-cmd", False, f"Line {cmd.line}: CMD {cmd.args} is shell form.",
                       "Write CMD as a JSON list, e.g. [\"program\", \"arg\", ...]: then the server runs as "
                       "the container's main process and receives stop signals.")
    else:
        form = _result("exec-form-cmd", True, f"Line {cmd.line}: CMD {cmd.args}")
    return [slim, form]


def probe_checks(built: service.Built, cases: Sequence[tuple[dict[str, float], float]],
                 *, health: str = "health", predict: str = "predict", hidden: bool = False,
                 limits: engine.SandboxLimits = engine.SandboxLimits(), progress: Progress | None = None
                 ) -> tuple[list[CheckResult], service.Probe | None]:
    """Run the built image and check ``/health`` and ``/predict``; also return the probe (``None``: no image).

    A failed health check names its cause from evidence and gives the hint for
    that cause (:func:`.causes.start_cause`).
    """
    if not built.image:
        return _probe_results(None, health=health, predict=predict, hidden=hidden), None
    probe = service.probe_service(built.image, cases, limits=limits, progress=progress)
    return _probe_results(probe, health=health, predict=predict, hidden=hidden), probe


def _probe_results(probe: service.Probe | None, *, health: str, predict: str, hidden: bool) -> list[CheckResult]:
    """The ``health`` and ``predict`` results (either name empty: not checked) of a probe; ``None``: no image."""
    names = [n for n in (health, predict) if n]
    if probe is None:
        return [_result(n, False, "There is no image to run.", "Make the build pass first.", hidden=hidden)
                for n in names]
    out = []
    if health:
        if probe.healthy:
            out.append(_result(health, True, "GET /health answered 200.", hidden=hidden))
        else:
            out.append(_result(health, False, probe.problem, probe.hint, hidden=hidden, cause=probe.cause))
    if predict:
        if not probe.healthy:
            out.append(_result(predict, False, f"The service never became ready: {probe.problem}",
                               "Make the health check pass first.", hidden=hidden))
        else:
            wrong = probe.wrong_answers()
            out.append(_result(predict, not wrong, service.describe_wrong(probe),
                               "Serve the unchanged service code with the locked requirements installed.",
                               hidden=hidden))
    return out


def check(dockerfile: str | Path = "ex1.Dockerfile", context: str | Path = "service", *,
          tag: str = DEFAULT_TAG, limits: engine.SandboxLimits = engine.SandboxLimits(),
          build_timeout: float = service.BUILD_TIMEOUT, progress: Progress | None = None) -> CheckResults:
    """Run the visible checks of exercise 1.

    Builds the image (tagged ``tag``, which is kept), runs a container in the
    sandbox, asks it three customers, and removes the container. The build and
    static checks count only once the container answers ``/health``.

    Args:
        dockerfile: the student's Dockerfile.
        context: the build context (the service folder).
        tag: the tag for the student's image.
        limits: sandbox limits for the container.
        build_timeout: seconds after which the build is stopped.
        progress: gets what the check is doing as it works (:mod:`.progress`); by default the live
            display in a notebook (the build's steps, elapsed time), nothing outside IPython.

    Returns:
        The results, in checklist order, with the image tag (``""`` when the build failed)
        and notes (cleaned file, right-but-risky choices).

    Raises:
        KeyboardInterrupt: the kernel was interrupted; the build or container is stopped and
            removed first.
    """
    with _progress.reporting(progress, EXERCISE) as sink:
        return _check(dockerfile, context, tag=tag, limits=limits, build_timeout=build_timeout, progress=sink)[0]


def check_with_hidden(dockerfile: str | Path, context: str | Path,
                      cases: Sequence[tuple[dict[str, float], float]], *, data_dir: str | Path, tag: str,
                      limits: engine.SandboxLimits = engine.SandboxLimits(),
                      build_timeout: float = service.BUILD_TIMEOUT) -> CheckResults:
    """The visible and the hidden checks of exercise 1, as :func:`check` and then :func:`check_hidden` give them.

    For the class grader: one container answers both sets of customers (the
    visible ones first), so each student costs one container start fewer. The
    notebook runs the two in separate cells and so starts two.

    Args:
        dockerfile: the student's Dockerfile.
        context: the build context (the service folder).
        cases: the hidden customers with their expected answers.
        data_dir: the service's data folder; none of its files may be in the image.
        tag: the tag for the student's image.
        limits: sandbox limits for the container.
        build_timeout: seconds after which the build is stopped.

    Returns:
        The visible results followed by the hidden ones, with the image tag and notes.

    Raises:
        scan.ScanError: the image built could not be read (:func:`data_check`).
    """
    visible, probe = _check(dockerfile, context, tag=tag, limits=limits, build_timeout=build_timeout,
                            progress=None, hidden_cases=cases)
    asked_hidden = None if probe is None else replace(probe, answers=probe.answers[len(service.VISIBLE_CASES):])
    return visible + _hidden_results(visible.image, asked_hidden, data_dir)


def _check(dockerfile: str | Path, context: str | Path, *, tag: str, limits: engine.SandboxLimits,
           build_timeout: float, progress: Progress | None,
           hidden_cases: Sequence[tuple[dict[str, float], float]] = ()
           ) -> tuple[CheckResults, service.Probe | None]:
    """The visible checks, and the probe (``None``: no image); with ``hidden_cases``, it asked those too, last."""
    built = service.build_submission(dockerfile, context, tag=tag, timeout=build_timeout, progress=progress)
    builds = (_result("builds", True, f"Built {tag} in {built.seconds:.1f} s.") if built.image else
              _result("builds", False, built.problem,
                      built.hint or "Fix the problem above and run the answer cell, then this check, again.",
                      cause=built.cause, pressure=built.pressure))
    cases = [*service.VISIBLE_CASES, *hidden_cases]
    probe = service.probe_service(built.image, cases, limits=limits, progress=progress) if built.image else None
    shown = None if probe is None else replace(probe, answers=probe.answers[:len(service.VISIBLE_CASES)])
    runtime = _probe_results(shown, health="health", predict="predict", hidden=False)
    items = [builds, *static_checks(built)]
    if probe is None or not probe.healthy:
        hint = SERVES_HINT if built.image else "Make the build pass first: the first check says what stops it."
        items = [counts_once(r, SERVES, hint) for r in items]
    notes = [*built.notes, *service.risk_notes(built), *(probe.notes if probe else [])]
    return results(EXERCISE, [*items, *runtime], image=built.image, notes=notes), probe


def check_hidden(image: str, cases: Sequence[tuple[dict[str, float], float]], *,
                 data_dir: str | Path = "service/data",
                 limits: engine.SandboxLimits = engine.SandboxLimits()) -> CheckResults:
    """Run the hidden checks of exercise 1 on an image the visible checks built.

    Args:
        image: the student's image tag (``CheckResults.image``; ``""`` when it did not build).
        cases: the second set of customers with their expected answers.
        data_dir: the service's data folder; none of its files may be in the image.
        limits: sandbox limits.

    Returns:
        The ``predict-hidden`` and ``no-test-data`` results; ``no-test-data`` counts
        only when the service answered.

    Raises:
        scan.ScanError: the image could not be read (:func:`data_check`).
    """
    probe = service.probe_service(image, cases, limits=limits) if image else None
    return _hidden_results(image, probe, data_dir)


def _hidden_results(image: str, probe: service.Probe | None, data_dir: str | Path) -> CheckResults:
    """``predict-hidden`` from a probe that asked the hidden customers (``None``: no image), and ``no-test-data``."""
    items = _probe_results(probe, health="", predict="predict-hidden", hidden=True)
    data = data_check(image, data_dir)
    if probe is None or not probe.healthy:
        data = counts_once(data, SERVES, SERVES_HINT if image else "Make the build pass first.")
    return results(EXERCISE, [*items, data], image=image)


def data_files(data_dir: str | Path) -> dict[str, bytes]:
    """The files of the data folder, by their path relative to its parent (``data/customers.csv``), with their bytes."""
    root = Path(data_dir)
    return {p.relative_to(root.parent).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.stat().st_size <= 50_000_000}


def data_check(image: str, data_dir: str | Path, *, name: str = "no-test-data") -> CheckResult:
    """Check that no layer of the image holds a file of ``data_dir``, whatever it is called there.

    Every layer is read (:func:`containerlab.scan.scan_image`), so a copy that a
    later step deletes, a renamed copy or a file that holds a data file's bytes
    are all found.

    Raises:
        scan.ScanError: the image just built could not be read (the grader's side, such as a full
            disk: never the student's failed check; the grader records it as its own failure).
    """
    if not image:
        return _result(name, False, "There is no image to look into.", "Make the build pass first.", hidden=True)
    data = data_files(data_dir)
    findings = scan.scan_image(image, data_files=data, data_min_bytes=1 << 62)
    found = [f for f in findings if f.kind == scan.DATA_COPY]
    if found:
        first = found[0]
        return _result(name, False, f"The image holds {len(found)} copy(ies) of data files; e.g. /{first.path} "
                       f"({first.detail}, layer {first.layer}: {first.instruction}).",
                       "Copy only what the service needs to run (the requirements file and the code), or "
                       "exclude the data folder with .dockerignore; data comes in at run time.", hidden=True)
    return _result(name, True, f"None of the {len(data)} data file(s) is in any layer of the image.", hidden=True)


def grade(submission: Submission) -> CheckResults:
    """Grade exercise 1 of one submission: visible and hidden checks (:func:`check_with_hidden`).

    Raises:
        conceptual.NotebookUnreadable: the notebook is missing or not valid JSON.
        answers.AnswerMissing: no cell writes ex1.Dockerfile.
    """
    dockerfile, found = submission.answer("ex1.Dockerfile")
    context, context_notes = submission.context()
    checked = check_with_hidden(dockerfile, context, submission.cases, data_dir=context / "data",
                                tag=submission.tag, limits=submission.limits, build_timeout=submission.build_timeout)
    return checked.noted(submission.notes, found, context_notes)


SPEC = Exercise(EXERCISE, "ex1-write-a-dockerfile.ipynb", grade, POINTS, image=True)
