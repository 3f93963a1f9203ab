"""Causes of failed builds and of services that do not start, named from evidence (issue 9, section 6).

The build logs in tests/fixtures/build-logs/ are what Engine 26.1's builder
(BuildKit 0.13 through buildx 0.13, containerd image store) printed for each
kind of mistake, recorded on 2026-12-06; each file starts with the Dockerfile
that made it. (Engine 20.10's BuildKit 0.8 worded several of them otherwise, and
failed on heredocs and `COPY --link`, which now build.) No engine is needed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from containerlab import engine
from containerlab.checks import causes, dockerfile

LOGS = Path(__file__).parent / "fixtures" / "build-logs"

#: log fixture -> (cause kind, words the problem or hint must contain)
BUILD_CAUSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fails_syntax_line": (causes.SYNTAX_LINE, ("# syntax=", "delete the line")),
    "fails_unknown_instruction": (causes.SYNTAX_ERROR, ("line 2: unknown instruction: RUNN",)),
    "fails_base_tag_unavailable": (causes.BASE_UNAVAILABLE, ("python:3.12-slim", "python:3.13-slim")),
    "fails_platform_unavailable": (causes.PLATFORM_UNAVAILABLE, ("--platform=linux/arm64", "linux/amd64")),
    "fails_download_add_url": (causes.NO_NETWORK, ("github.com", "COPY")),
    "fails_download_run_python": (causes.NO_NETWORK, ("example.com", "no network")),
    "fails_platform_only_package": (causes.PLATFORM_ONLY_PACKAGE, ("pywin32", "Windows", "sys_platform")),
    "fails_no_wheel_sdist": (causes.NO_WHEEL, ("psycopg2", "wheel", "compile")),
    "fails_copy_missing": (causes.FILE_MISSING, ("requirements file",)),
    "fails_requirements_not_copied": (causes.REQUIREMENTS_NOT_COPIED, ("requirements.txt", "before the RUN")),
    "fails_apt_package_missing": (causes.APT_PACKAGE_MISSING, ("libgl1-mesa-glx", "Debian")),
    "fails_log_clipped": (causes.LOG_CLIPPED, ("docker/buildx#484", "exit code 3", "--quiet")),
    "fails_run_command_not_found": (causes.RUN_COMMAND_NOT_FOUND, ("wget",)),
}


def _failure(name: str) -> tuple[engine.BuildFailed, dockerfile.Dockerfile]:
    text = (LOGS / f"{name}.log").read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("# ")]
    step = header[0].removeprefix("# step: ").strip()
    source = "\n".join(line.removeprefix("# | ") for line in header if line.startswith("# | "))
    log = "\n".join(line for line in text.splitlines() if not line.startswith("# "))
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    parsed = dockerfile.Dockerfile(Path("ex1.Dockerfile"), source, tuple(dockerfile.parse(source)), ())
    return engine.BuildFailed("failed", step=step, error_lines=errors, log=log), parsed


@pytest.mark.parametrize("name", sorted(BUILD_CAUSES))
def test_build_failure_names_its_cause(name: str, tmp_path: Path) -> None:
    """Does each kind of failed build get its own cause, a hint for that cause, and no machine details?"""
    kind, words = BUILD_CAUSES[name]
    exc, parsed = _failure(name)
    cause = causes.build_cause(exc, timeout=900, context=tmp_path, parsed=parsed,
                               local_images=["python:3.13-slim", "python:3.13", "postgres:17"],
                               platforms={"python:3.13-slim": "linux/amd64", "python:3.13": "linux/amd64"})
    assert cause.kind == kind, cause
    text = cause.problem + " " + cause.hint
    for word in words:
        assert word in text, (word, cause)
    assert "10.255.255.53" not in text and ":53" not in text  # the resolver's address
    assert str(tmp_path) not in text


def test_copy_of_an_ignored_file_says_dockerignore(tmp_path: Path) -> None:
    """Is a COPY of a file that exists but that .dockerignore leaves out told apart from a missing file?"""
    exc, parsed = _failure("fails_copy_missing")
    (tmp_path / "requirements-prod.txt").write_text("fastapi\n")
    cause = causes.build_cause(exc, timeout=900, context=tmp_path, parsed=parsed)
    assert cause.kind == causes.FILE_IGNORED and ".dockerignore" in cause.problem


def test_scrub_hides_the_machine() -> None:
    """Are resolver addresses, other addresses and the grader's folders taken out of a message?"""
    from containerlab import config

    text = ('dial tcp: lookup github.com on 10.255.255.53:53: no such host; '
            f'open {config.CACHE_DIR}/grading/jo/service/x: no such file; '
            'at /tmp/cl-ex-dockerfile-abc123/Dockerfile; COPY /tmp/requirements.txt; http://0.0.0.0:80')
    clean = causes.scrub(text, paths=[config.CACHE_DIR / "grading" / "jo" / "service"])
    assert "10.255.255.53" not in clean and "on :53" not in clean
    assert str(config.ROOT) not in clean and "cl-ex-dockerfile" not in clean
    assert "lookup github.com: no such host" in clean
    assert "/tmp/requirements.txt" in clean and "0.0.0.0:80" in clean


# The State the engine reported for each kind of start failure (seen on this engine, docker SDK).
NOT_IN_PATH = ('failed to create shim task: OCI runtime create failed: runc create failed: unable to start container '
               'process: exec: "{}": executable file not found in $PATH: unknown')
STARTED, SOON = "2026-12-01T15:16:41.327420578Z", "2026-12-01T15:16:41.364680251Z"

START_CAUSES = {
    "command_not_found": (dict(state={"Status": "created", "ExitCode": 127, "Error": NOT_IN_PATH.format("uvicornn")}),
                          causes.COMMAND_NOT_FOUND, ("uvicornn", "spelling")),
    "exec_form_one_string": (dict(state={"Status": "created", "ExitCode": 127,
                                         "Error": NOT_IN_PATH.format("uvicorn src.customer_value.api:app")}),
                             causes.COMMAND_NOT_FOUND, ("its own string",)),
    "path_missing": (dict(state={"Status": "created", "ExitCode": 127, "Error":
                                 'runc create failed: unable to start container process: exec: "/opt/venv/bin/uvicorn":'
                                 ' stat /opt/venv/bin/uvicorn: no such file or directory: unknown'}),
                     causes.PATH_MISSING, ("/opt/venv/bin/uvicorn", "final image")),
    "interpreter_missing": (dict(state={"Status": "exited", "ExitCode": 1, "StartedAt": STARTED, "FinishedAt": SOON},
                                 logs="exec /opt/venv/bin/uvicorn: no such file or directory\n"),
                            causes.INTERPRETER_MISSING, ("#!", "venv")),
    "out_of_memory": (dict(state={"Status": "exited", "ExitCode": 137, "OOMKilled": True}, memory_bytes=1024**3),
                      causes.OUT_OF_MEMORY, ("1 GiB", "OOMKilled")),
    "module_not_found_dependency": (dict(state={"Status": "exited", "ExitCode": 1, "StartedAt": STARTED,
                                                "FinishedAt": SOON},
                                         logs="ModuleNotFoundError: No module named 'fastapi'\n"),
                                    causes.MODULE_NOT_FOUND, ("fastapi", "PATH")),
    "module_not_found_app": (dict(state={"Status": "exited", "ExitCode": 1, "StartedAt": STARTED, "FinishedAt": SOON},
                                  logs='ERROR:    Error loading ASGI app. Could not import module "api".\n'),
                             causes.MODULE_NOT_FOUND, ("src.customer_value.api:app",)),
    "exited_at_once": (dict(state={"Status": "exited", "ExitCode": 0, "StartedAt": STARTED, "FinishedAt": SOON},
                            command=["python"]),
                       causes.EXITED_AT_ONCE, ("python", "ended at once", "uvicorn")),
    "shell_command_not_found": (dict(state={"Status": "exited", "ExitCode": 127, "StartedAt": STARTED,
                                            "FinishedAt": SOON}, logs="/bin/sh: 1: uvicornn: not found\n"),
                                causes.COMMAND_NOT_FOUND, ("uvicornn",)),
    "loopback_only": (dict(state={"Status": "running"}, listening=[("127.0.0.1", 80)]),
                      causes.LOOPBACK_ONLY, ("127.0.0.1:80", "0.0.0.0")),
    "wrong_port": (dict(state={"Status": "running"}, listening=[("0.0.0.0", 8000)]),
                   causes.WRONG_PORT, ("0.0.0.0:8000", "--port 80")),
    "nothing_listens": (dict(state={"Status": "running"}, waited=90, command=["sleep", "infinity"]),
                        causes.NOTHING_LISTENS, ("sleep infinity", "nothing listens")),
}


@pytest.mark.parametrize("name", sorted(START_CAUSES))
def test_start_failure_names_its_cause(name: str) -> None:
    """Does each kind of start failure get its own cause, and a hint for that cause (not always 0.0.0.0)?"""
    evidence, kind, words = START_CAUSES[name]
    cause = causes.start_cause(**evidence)
    assert cause.kind == kind, cause
    for word in words:
        assert word in cause.problem + " " + cause.hint, (word, cause)
    if kind != causes.LOOPBACK_ONLY:
        assert "all interfaces" not in cause.hint


def test_a_build_step_killed_for_memory_is_named() -> None:
    """Is a RUN step killed by the grading engine's memory limit (exit code 137) named as such, not as "failed"?"""
    log = ("#5 [2/2] RUN python -c \"b = bytearray(2 * 1024**3)\"\n#5 ERROR: executor failed running "
           "[/bin/sh -c python -c \"b = bytearray(2 * 1024**3)\"]: exit code: 137\n"
           "ERROR: failed to solve: executor failed running [/bin/sh -c python -c \"b = bytearray(2 * 1024**3)\"]: "
           "exit code: 137")
    exc = engine.BuildFailed("failed", step='[2/2] RUN python -c "b = bytearray(2 * 1024**3)"',
                             error_lines=[line for line in log.splitlines() if line.startswith("ERROR")], log=log)
    cause = causes.build_cause(exc, timeout=900)
    assert cause.kind == causes.BUILD_KILLED and "memory" in cause.problem


def test_container_output_keeps_only_lines_about_the_failure() -> None:
    """Does the output quoted under a failure leave out the probes' access log and uvicorn's routine lines?"""
    logs = "\n".join([
        "INFO:     Started server process [1]",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        "INFO:     Uvicorn running on http://0.0.0.0:80 (Press CTRL+C to quit)",
        'INFO:     172.18.0.1:40000 - "GET /health HTTP/1.1" 200 OK',
        "",
        "Traceback (most recent call last):",
        '  File "/app/src/customer_value/api.py", line 3, in <module>',
        "KeyError: 'MODEL_PATH'",
        'INFO:     172.18.0.1:40002 - "POST /predict HTTP/1.1" 500 Internal Server Error',
    ])
    kept = causes.relevant_output(logs).splitlines()
    assert kept == ["Traceback (most recent call last):", '  File "/app/src/customer_value/api.py", line 3, in <module>',
                    "KeyError: 'MODEL_PATH'"]
    assert causes.relevant_output("INFO:     Application startup complete.\n") == ""
