"""The ``containerlab`` command: one entry point, one subcommand per job.

Each subcommand is a thin wrapper over a keyword-only function of the package,
which is also the Python API. Errors the user can act on are printed as one
clear message, never as a traceback. Exit status: 0 done; 1 a check found a
problem (``check``: a check of the project failed; ``scan``: a secret or data; ``exercises check``: the student versions
are out of date; ``doctor``: the machine is not ready); 2 the command could not do its job (the message says why),
like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import baseimages, book, engine, exercises


class CommandError(RuntimeError):
    """A command cannot do what was asked, for a reason the message gives (exit status 2)."""


def _cmd_engine(args: argparse.Namespace) -> None:
    from . import sandbox

    if args.action is None:
        print(engine.require_engine())
    elif args.action == "start":
        limits = sandbox.EngineLimits(memory_bytes=int(args.memory_mb * 1024**2), pids=args.pids, cpus=args.cpus,
                                      disk_bytes=int(args.disk_gb * 1024**3))
        print(sandbox.start(limits=limits, echo=lambda line: print(line, file=sys.stderr, flush=True)))
    elif args.action == "stop":
        sandbox.stop(purge=args.purge, echo=lambda line: print(line, file=sys.stderr, flush=True))
    else:
        running, text = sandbox.status()
        print(text)
        if not running:
            raise SystemExit(1)


def _cmd_images(args: argparse.Namespace) -> None:
    baseimages.ensure_images(names=args.names or None, pull=not args.no_pull)


def _cmd_book(args: argparse.Namespace) -> None:
    engine.require_engine()
    result = book.build_book(execute_all=args.all)
    print(f"\nBook built in {result.seconds:.1f} s: {result.html_dir / 'index.html'}")


def _cmd_scan(args: argparse.Namespace) -> None:
    from . import scan

    findings = scan.scan_image(args.image, secret_values=_secret_values(args), data_min_bytes=args.data_min_bytes,
                               skip_layers_of=args.skip_base)
    if not findings:
        print(f"{args.image}: no secrets and no data files found.")
        return
    for f in findings:
        place = f"layer {f.layer} ({f.instruction})" if f.where == "layer" else f.where
        print(f"{f.kind:<13} {place}: {f.path or f.instruction}: {f.detail}")
    raise SystemExit(1)


def _cmd_check(args: argparse.Namespace) -> None:
    from . import report
    from .checks import project
    from .checks.runcommand import RunCommandProblem, read_env_file

    environment: dict[str, str] = {}
    for name in args.env_file:
        try:
            environment.update(read_env_file(Path(name), dict(os.environ)))
        except (OSError, RunCommandProblem) as exc:
            raise CommandError(f"Cannot read the env file {name}: {exc}") from exc
    for pair in args.env:
        key, has, value = pair.partition("=")
        if not key:
            raise CommandError(f"--env takes NAME=VALUE (or NAME, from this shell), not {pair!r}")
        if has:
            environment[key] = value
        elif key in os.environ:
            environment[key] = os.environ[key]
    limits = _sandbox_limits(args)
    try:
        checked = project.check(Path(args.folder), dockerfile=args.dockerfile, tag=args.tag, port=args.port,
                                health_path=args.health_path, command=args.run_arg or None,
                                environment=environment, limits=limits, build_timeout=args.build_timeout,
                                remove_image=args.remove_image,
                                progress=report.CheckProgress(notebook=False, out=sys.stderr))
    except project.ProjectProblem as exc:
        raise CommandError(str(exc)) from exc
    print(report.render_text(checked))
    if args.html:
        page = report.html_page(f"Checks for {Path(args.folder).resolve().name}", report.render_html(checked))
        Path(args.html).write_text(page, encoding="utf-8")
        print(f"The checklist as HTML: {args.html}")
    if any(not r.passed for r in checked):
        raise SystemExit(1)


def _secret_values(args: argparse.Namespace) -> list[str]:
    """The secrets to look for: given inline, read from files, or read from environment variables.

    Files and variables keep the value out of the shell's history, as Docker's own
    ``--secret src=...`` and ``--secret env=...`` do. A file holds one secret (its
    whole content, without the final line break).

    Raises:
        CommandError: a file cannot be read, or a variable is unset or empty.
    """
    import os
    from pathlib import Path

    values = list(args.secret)
    for name in args.secret_file:
        try:
            value = Path(name).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read the secret file {name}: {exc}") from exc
        if not value:
            raise CommandError(f"The secret file {name} is empty.")
        values.append(value)
    for name in args.secret_env:
        value = os.environ.get(name, "")
        if not value:
            raise CommandError(f"The environment variable {name} is not set (or empty), so it names no secret.")
        values.append(value)
    return values


def _size(text: str) -> int:
    """Read a size such as ``5GB``, ``500MB``, ``1.5GiB`` or a number of bytes (for argparse)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 5GB, 500MB, or bytes)")
    unit = (match.group(2) or "").rstrip("b")
    factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
    return int(float(match.group(1)) * factor[unit])


def _jobs(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a number of at least 1 or 'auto', not {text!r}")
    return int(text)


def _shard(text: str) -> tuple[int, int]:
    from . import batch

    try:
        return batch.parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _cmd_grade(args: argparse.Namespace) -> None:
    from . import sandbox

    out = Path(args.out)
    limits = _sandbox_limits(args)
    # Before the workers start, so that they inherit DOCKER_HOST of the engine chosen.
    with sandbox.grading_on(args.engine) as choice:
        print(choice.note, flush=True)
        _grade_class(args, out, limits)


def _grade_class(args: argparse.Namespace, out: Path, limits: engine.SandboxLimits) -> None:
    """Grade the class of ``args`` into ``out`` (a folder) on the engine already chosen."""
    from tqdm import tqdm

    from . import batch, report

    jobs = args.jobs or batch.default_jobs(memory_limit_bytes=limits.memory_bytes)
    shard = f", shard {args.shard[0]}/{args.shard[1]}" if args.shard else ""
    print(f"Grading {args.submissions} into {out} with {jobs} job(s){shard}.", flush=True)
    try:
        grades = batch.grade_class(
            Path(args.submissions), out=out, jobs=jobs, shard=args.shard, only=args.student, limits=limits,
            build_timeout=args.build_timeout, keep_images=args.keep_images,
            keep_storage=None if args.no_prune else args.keep_storage, engines=args.engine,
            progress=lambda grade: tqdm.write(report.summary_line(grade)), say=tqdm.write, bar=sys.stderr.isatty())
    except (batch.OutputInUse, batch.SubmissionsNotFound, batch.WorkersFailed) as exc:
        raise CommandError(str(exc)) from exc
    print(f"\n{len(grades)} submission(s) graded: {out / 'gradebook.csv'}, feedback in {out / 'feedback'}/, "
          f"results in {out / 'results'}/")


def _cmd_gradebook(args: argparse.Namespace) -> None:
    from pathlib import Path

    from . import gradebook, resultfiles

    if args.action == "merge":  # batch's subcommand, in the same form as on its branch
        try:
            grades = gradebook.merge([Path(d) for d in args.folders], Path(args.out))
        except resultfiles.ResultFileInvalid as exc:
            raise CommandError(str(exc)) from exc
        print(f"Merged {len(grades)} student(s) from {len(args.folders)} folder(s): {Path(args.out) / 'gradebook.csv'}")
    elif args.action == "nbgrader":
        try:
            grades = gradebook.publish(Path(args.out), course=Path(args.course), db_url=args.db,
                                       feedback=not args.no_feedback)
        except (resultfiles.ResultFileInvalid, gradebook.GradebookMismatch) as exc:
            raise CommandError(str(exc)) from exc
        print(f"Automatic points of {len(grades)} student(s) are in nbgrader's gradebook "
              f"{args.db or gradebook.course_db_url(Path(args.course))}; "
              "grade the free-text answers in formgrader, then `nbgrader export`.")


def _cmd_report(args: argparse.Namespace) -> None:
    from . import classreport

    written = classreport.write_report([Path(d) for d in args.folders], out=Path(args.out) if args.out else None,
                                       compare=[Path(d) for d in args.compare])
    print(classreport.summary(written))


def _cmd_gradebook_export(args: argparse.Namespace) -> None:
    from . import gradebook, lms

    try:
        result = lms.export(Path(args.out), lms=args.format, ids=Path(args.ids), dest=Path(args.dest),
                            db_url=args.db or gradebook.course_db_url(Path(args.course)), title=args.title)
    except (lms.IdMapInvalid, gradebook.GradebookMismatch) as exc:
        raise CommandError(str(exc)) from exc
    print(lms.summary(result))


def _cmd_lookalike(args: argparse.Namespace) -> None:
    from . import batch, lookalike, report

    try:
        result = lookalike.report(Path(args.submissions), out=Path(args.out))
    except batch.SubmissionsNotFound as exc:
        raise CommandError(str(exc)) from exc
    print(report.lookalike_text(result.pairs, result.answers.problems, students=len(result.answers.lines)))
    print(f"\nThe report: {result.html} (shared lines of each flagged pair), every pair: {result.csv}")


def _cmd_exercises(args: argparse.Namespace) -> None:
    if args.action == "generate":
        print(f"Student versions written to {exercises.write_student_versions()}")
        return
    course = exercises.scratch_course()
    try:
        diffs = exercises.differences(exercises.generate(course), exercises.EXERCISES_DIR / exercises.ASSIGNMENT)
    finally:
        shutil.rmtree(course, ignore_errors=True)
    if diffs:
        print("exercises/ch14 is out of date; run `containerlab exercises generate`:\n" + "\n".join(diffs),
              file=sys.stderr)
        raise SystemExit(1)
    print("exercises/ch14 is what solutions/ch14 generates.")


def _cmd_doctor(args: argparse.Namespace) -> None:
    from . import doctor, report

    findings = doctor.diagnose()
    print(report.render_doctor(findings))
    if not doctor.all_well(findings):
        raise SystemExit(1)


def _add_sandbox_options(p: argparse.ArgumentParser) -> None:
    """The build timeout and the container limits of the sandbox (``grade`` and ``check``; :func:`_sandbox_limits`)."""
    p.add_argument("--build-timeout", type=float, default=900, metavar="SECONDS",
                   help="stop a build after this long (default: 900)")
    p.add_argument("--ready-timeout", type=float, default=90, metavar="SECONDS",
                   help="wait this long at most for a service to answer (default: 90)")
    p.add_argument("--memory-mb", type=float, default=1024, help="memory limit per container (default: 1024)")
    p.add_argument("--cpus", type=float, default=1.0, help="CPU limit per container (default: 1.0)")
    p.add_argument("--pids", type=int, default=256, help="process limit per container (default: 256)")
    p.add_argument("--tmp-mb", type=float, default=64,
                   help="size of the in-memory /tmp of a container, whose root file system is read-only "
                   "(default: 64); builds of `grade` are limited by the grading engine (`containerlab engine start`)")


def _sandbox_limits(args: argparse.Namespace) -> engine.SandboxLimits:
    """The container limits that :func:`_add_sandbox_options` read."""
    return engine.SandboxLimits(memory_bytes=int(args.memory_mb * 1024**2), cpus=args.cpus, pids=args.pids,
                                ready_timeout=args.ready_timeout, tmp_bytes=int(args.tmp_mb * 1024**2))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``containerlab`` command."""
    parser = argparse.ArgumentParser(
        prog="containerlab",
        description="Tools behind Chapter 14, Containerisation: engine checks, base images, grading.",
        epilog="Exit status: 0 done, 1 a check found a problem (check, scan, exercises check, doctor), "
        "2 the command could not do its job (the message says why).",
    )
    from . import batch

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "engine",
        help="check the Docker engine; start, stop or report the grading engine",
        description="Without an action: print the versions of the engine and of the buildx and compose "
        "plugins, or say what is missing and how to get it (exit status 2). `start`, `stop`, `status`: the "
        "grading engine, a second dockerd (as root on Linux) whose builds and containers run together under "
        "the memory, process and CPU limits given here, on a disk of the given size; `containerlab grade` "
        "uses it when it runs (docker context `grading`). The main engine is left as it is.",
    )
    p.add_argument("action", nargs="?", choices=["start", "stop", "status"], help="what to do with the grading engine")
    p.add_argument("--memory-mb", type=float, default=2048,
                   help="start: memory of all its builds and containers together (default: 2048)")
    p.add_argument("--pids", type=int, default=2048, help="start: processes of all of them together (default: 2048)")
    p.add_argument("--cpus", type=float, default=None,
                   help="start: CPU cores for all of them together (default: all cores but half of one)")
    p.add_argument("--disk-gb", type=float, default=20,
                   help="start: size of its disk for images, layers and build cache (default: 20)")
    p.add_argument("--purge", action="store_true", help="stop: also delete its disk (build cache, base images)")
    p.set_defaults(func=_cmd_engine)

    p = sub.add_parser(
        "images",
        help="make sure the course's base images exist (pull, or build local stand-ins)",
        description="Pull python:3.13-slim, python:3.13 and postgres:17, or build stand-ins from Debian 13 "
        "packages when no registry can be reached. A second run changes nothing.",
    )
    p.add_argument("names", nargs="*", help="only these images (default: all)")
    p.add_argument("--no-pull", action="store_true", help="do not try the registry first")
    p.set_defaults(func=_cmd_images)

    p = sub.add_parser(
        "book",
        help="build the book into _build/html, executing the notebooks (cached)",
        description="Run jupyter-book with warnings as errors. Notebooks whose code did not change "
        "since their last successful run come from the execution cache; the build time is printed.",
    )
    p.add_argument("--all", action="store_true", help="re-execute every notebook, ignoring the cache")
    p.set_defaults(func=_cmd_book)

    p = sub.add_parser(
        "scan",
        help="look for secrets and data baked into an image (layers, config, history)",
        description="Read every layer of IMAGE (via docker save), its config and its history for the "
        "given secret values and for files that look like secrets or data. Exit status 1 when "
        "anything is found.",
    )
    p.add_argument("image", help="a local image, e.g. customer-value:1.0")
    p.add_argument("--secret", action="append", default=[], metavar="VALUE",
                   help="a value that must not appear anywhere (repeat for several; "
                   "--secret-file or --secret-env keep it out of your shell history)")
    p.add_argument("--secret-file", action="append", default=[], metavar="PATH",
                   help="a file whose content is a secret value, e.g. a token file (repeatable)")
    p.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                   help="an environment variable whose value is a secret (repeatable)")
    p.add_argument("--data-min-bytes", type=int, default=1_000_000, metavar="BYTES",
                   help="report CSV/Parquet files of at least this size (default: 1000000)")
    p.add_argument("--skip-base", metavar="IMAGE", help="do not scan the layers shared with this base image")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser(
        "check",
        help="check any project's Dockerfile: build, cache, size, secrets, run, stop, lint",
        description="Build the image of FOLDER (its Dockerfile), rebuild it after a code-only edit, look through "
        "its layers, run one container in the grading sandbox, and print a checklist: it builds; a slim base; "
        "the dependency layer survives a code edit; a size breakdown with what could go; no secret or data "
        "file inside; it keeps running, answers HTTP on all interfaces, stops in under 2 s, its HEALTHCHECK "
        "passes, it runs as non-root; hadolint's findings. Only the image is left (--remove-image: not even "
        "that). Exit status 1 when a check failed, 2 when the folder cannot be checked.",
    )
    p.add_argument("folder", metavar="FOLDER", help="the build context, with a Dockerfile")
    p.add_argument("--dockerfile", metavar="PATH", help="the Dockerfile (default: FOLDER/Dockerfile)")
    p.add_argument("--tag", help="the image's tag (default: cl-check-<folder>:<user and clone>)")
    p.add_argument("--port", type=int, metavar="N",
                   help="the container port it serves HTTP on (default: from EXPOSE, else where it listens)")
    p.add_argument("--health-path", default="/", metavar="PATH",
                   help="the path asked for over HTTP; any answer below 500 counts (default: /)")
    p.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                   help="an argument after the image, as in docker run IMAGE ARG... (replaces CMD; repeat)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for the container (NAME alone: from this shell; repeat)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="environment variables from a file, as docker run --env-file reads it (repeat)")
    _add_sandbox_options(p)
    p.add_argument("--remove-image", action="store_true", help="remove the image at the end too")
    p.add_argument("--html", metavar="FILE", help="also write the checklist as an HTML page")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "grade",
        help="grade a folder of exercise submissions: gradebook.csv and per-student feedback",
        description="Grade every student folder in SUBMISSIONS (nbgrader's submitted/ layout or one "
        "folder of notebooks per student). Answers are read from the notebooks without running them; "
        "Dockerfiles are built with a timeout and run in a sandbox (internal network, memory, CPU and "
        "process limits). A submission that cannot be graded gets a row saying why; the batch goes on.",
    )
    p.add_argument("submissions", help="folder with one subfolder per student")
    p.add_argument("--out", default="grades", help="where to write gradebook.csv and feedback/ (default: grades)")
    p.add_argument("--student", action="append", default=[], metavar="ID", help="grade only this student (repeat)")
    _add_sandbox_options(p)
    p.add_argument("--keep-images", action="store_true", help="keep the images built from submissions")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="students graded at once (default: auto, twice the cores as memory allows)")
    p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="grade only the K-th of N slices of the class (the same slice on every machine); "
                   "merge the slices with `containerlab gradebook merge`")
    p.add_argument("--keep-storage", type=_size, default=batch.DEFAULT_KEEP_STORAGE, metavar="SIZE",
                   help="prune the build cache down to this between students (default: 5GB, and at most a quarter of the engine's disk)")
    p.add_argument("--no-prune", action="store_true", help="never prune the build cache")
    p.add_argument("--engine", action="append", default=[], metavar="CONTEXT",
                   help="a docker context of an engine on this machine to grade on (repeat: workers take the "
                   "engines in turn)")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser(
        "gradebook",
        help="one gradebook: merge result folders (shards, machines), or fill nbgrader's database",
        description="`merge DIR... --out OUT`: read DIR/results/*.json of each folder (the --out folders of "
        "`containerlab grade`, e.g. one per shard), keep the newer result of a student graded twice, and "
        "write OUT/results, OUT/gradebook.csv and OUT/feedback. `nbgrader OUT`: write the automatic points "
        "of OUT/results, per graded cell, into nbgrader's gradebook database (the one formgrader and "
        "`nbgrader export` use), and the feedback pages where `nbgrader release_feedback` finds them.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("merge", help="merge the result folders of several grading runs into one gradebook",
                           description="Keep the newer result of a student graded twice (and say so); write "
                           "OUT/results, OUT/gradebook.csv and OUT/feedback.")
    q.add_argument("folders", nargs="+", metavar="DIR", help="result folders to merge")
    q.add_argument("--out", required=True, help="where to write the merged gradebook")
    q.set_defaults(func=_cmd_gradebook)
    q = actions.add_parser("nbgrader", help="write the automatic points into nbgrader's gradebook database",
                           description="Write the automatic points of OUT/results into nbgrader's database. "
                           "The assignment is created there with nbgrader's generate_assignment when missing; "
                           "points a person gave in formgrader are kept.")
    q.add_argument("out", metavar="OUT", help="the --out folder of `containerlab grade` (holds results/)")
    q.add_argument("--course", default=".", metavar="DIR",
                   help="nbgrader's course directory: feedback/, submitted/, autograded/ (default: .)")
    q.add_argument("--db", metavar="URL", help="nbgrader's database (default: DIR's nbgrader_config.py "
                   "CourseDirectory.db_url, else sqlite:///DIR/gradebook.db)")
    q.add_argument("--no-feedback", action="store_true", help="do not write DIR/feedback/<student>/ch14/*.html")
    q.set_defaults(func=_cmd_gradebook)
    from . import lms

    q = actions.add_parser(
        "export", help="write the grades as Canvas's or Moodle's grade import CSV",
        description="Write the automatic points of OUT/results and the free-text points a person gave in "
        "formgrader (nbgrader's database) as an LMS's grade import file, students matched by an id map: a CSV "
        "whose first column is the grader's student (folder name or key) and whose other columns are the LMS's "
        "user columns (Canvas: ID, SIS User ID, SIS Login ID, Student, Section; Moodle: Email address, Username, "
        "ID number). Students who cannot be matched are printed and written to FILE's .unmatched.csv.")
    q.add_argument("out", metavar="OUT", help="the --out folder of `containerlab grade` (holds results/)")
    q.add_argument("--format", required=True, choices=lms.formats(), help="the LMS's import format")
    q.add_argument("--ids", required=True, metavar="MAP.csv", help="the id map (grader's student -> LMS user)")
    q.add_argument("--out", dest="dest", required=True, metavar="FILE", help="the import file to write")
    q.add_argument("--title", default="ch14", help="the LMS's grade column; for Canvas as its export heads "
                   "it, 'Title (assignment id)' (default: ch14)")
    q.add_argument("--course", default=".", metavar="DIR", help="nbgrader's course directory (default: .)")
    q.add_argument("--db", metavar="URL", help="nbgrader's database (default: as for `gradebook nbgrader`)")
    q.set_defaults(func=_cmd_gradebook_export)

    p = sub.add_parser(
        "lookalike",
        help="list pairs of students whose Dockerfiles, run commands or compose files look alike (not a grade)",
        description="Read every student's answer files from their notebooks (as `grade` does), normalise what "
        "does not matter (case, whitespace, comments, ARG and stage names, the order of ENV/LABEL/EXPOSE lines, "
        "of docker run options, of compose keys), discount the starter text, the official solution and lines "
        "many students wrote, and list the pairs much closer to each other than to the rest of the class. "
        "Writes OUT/lookalike.html and OUT/lookalike.csv. A report for a person to read, never a grade.",
    )
    p.add_argument("submissions", help="folder with one subfolder per student")
    p.add_argument("--out", default="lookalike", help="where to write the report (default: lookalike)")
    p.set_defaults(func=_cmd_lookalike)

    p = sub.add_parser(
        "report",
        help="the instructor's view of a graded class: an HTML page with charts, and its figures as CSV",
        description="Read GRADES/results/*.json (the --out folder of `containerlab grade`; several folders, "
        "e.g. shards, are merged as `gradebook merge` merges them) and write index.html and CSV files: points "
        "per exercise, students who passed, failed or were not graded on each check, the named causes of "
        "failures with the book's section that teaches the fix, and students graded again or not graded. "
        "A result file that cannot be read is named and skipped. Reads result files only (no engine).",
    )
    p.add_argument("folders", nargs="+", metavar="GRADES", help="--out folders of `containerlab grade`")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: GRADES/report, of the first)")
    p.add_argument("--compare", action="append", default=[], metavar="OTHER_GRADES",
                   help="another grading run of the same class (repeat for its shards): list every check "
                   "whose verdict differs for the same student")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("exercises", help="generate the student versions of the exercises, or check them",
                       description="`generate` runs nbgrader's generate_assignment on solutions/ch14 and "
                       "writes exercises/ch14; `check` says whether exercises/ch14 is up to date.")
    p.add_argument("action", choices=["generate", "check"])
    p.set_defaults(func=_cmd_exercises)

    p = sub.add_parser(
        "doctor",
        help="check that this machine is ready for the course, and print a fix for each problem",
        description="Check the Docker engine and its version, the buildx and compose plugins, that the active "
        "buildx builder puts images into the engine, the base images, free disk and the build cache, the "
        "networks' address pools, that builds trust the host's CA bundle, Python and the course environment, "
        "and Chromium for the browser tests. Exit status 0 when all is well, 1 when a problem was found.",
    )
    p.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        return _run(build_parser().parse_args(argv))
    except BrokenPipeError:
        # Whoever read the output stopped reading (`containerlab check . | head`): end quietly, as Unix
        # tools do. Python's own advice (the signal module's note on SIGPIPE): point stdout at devnull,
        # so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; return the exit status."""
    try:
        args.func(args)
    except (engine.EngineError, baseimages.BaseImageError, book.BookBuildFailed, FileNotFoundError,
            exercises.NbgraderFailed, CommandError) as exc:
        print(f"containerlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"containerlab {args.command}: interrupted. Whatever was finished is saved; run the same command "
              "again to go on.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
