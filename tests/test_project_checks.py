"""The checks of any project's Dockerfile (``containerlab check``), on fixture projects named by outcome.

The fixture tests build and run on the real engine. The dashboard fixture stands
in for a Streamlit app (Streamlit is not installed: it is large): a standard-library
HTTP server on Streamlit's port, 8501, without EXPOSE.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from containerlab import cli, config, engine, layers, report
from containerlab.checks import CheckResult, lint, project, results, service
from containerlab.checks import dockerfile as df

PROJECTS = Path(__file__).parent / "fixtures" / "projects"

#: fixture -> (checks that must fail, checks that must be notes, {check: words its message or hint holds}).
#: A fixture is a folder with its Dockerfile, or ``folder/<outcome>.dockerfile``: the Flask app's
#: variants share one build context.
EXPECTED: dict[str, tuple[set[str], set[str], dict[str, str]]] = {
    "flask_app/passes.dockerfile": (set(), set(), {"answers-http": "port 8000", "healthcheck": "passed",
                                                   "deps-reused": "came from the cache", "non-root": "10001"}),
    "flask_app/fails_bloated_image.dockerfile": ({"image-size", "lint"}, set(),
                                                 {"image-size": "apt's package lists", "lint": "DL3042"}),
    "flask_app/fails_cache_broken.dockerfile": ({"deps-reused"}, set(),
                                                {"deps-reused": "'COPY . .' (line 9) ran again"}),
    "passes_batch_job_no_port": (set(), {"deps-reused", "answers-http", "stops-fast", "healthcheck"},
                                 {"keeps-running": "exit code 0", "answers-http": "nothing to ask"}),
    "passes_streamlit_style_port_8501": (set(), {"deps-reused", "healthcheck", "non-root"},
                                         {"answers-http": "port 8501 (found listening)",
                                          "non-root": "runs as root"}),
    "fails_bakes_env": ({"no-secret-in-image"}, {"deps-reused", "answers-http", "stops-fast", "healthcheck"},
                        {"no-secret-in-image": "list them in .dockerignore"}),
}


def _fixture(name: str) -> tuple[Path, Path | None]:
    """The build context and Dockerfile of a fixture (``None``: the context's own Dockerfile)."""
    path = PROJECTS / name
    return (path.parent, path) if path.suffix == ".dockerfile" else (path, None)


@pytest.fixture
def tag():
    """A unique tag for the project's image; removed after the test, pass or fail."""
    name = f"cl-check-test-{uuid.uuid4().hex[:10]}:{config.INSTANCE}"
    yield name
    engine.remove_image(name)


def _leftovers() -> list[str]:
    """What a check may not leave behind: edited rebuilds, context probes, its containers."""
    sdk = docker.from_env()
    images = [t for i in sdk.images.list() for t in i.tags
              if t.startswith(("cl-ex-edited-", "cl-cache-context-probe:"))]
    containers = [c.name for c in sdk.containers.list(
        all=True, filters={"label": f"{service.CHECK_LABEL}=project"})]
    return images + containers


def _notes_allowing_a_slow_stop(checked) -> set[str]:  # type: ignore[no-untyped-def]
    """The names of the notes, leaving out a stop that was slow but ended by itself.

    A program that gets the stop signal and ends by itself is a note when it took 2 s or more:
    on a busy machine (parallel builds) a 0.5 s shutdown was seen to take 9 s. It is never a failure.
    """
    stop = checked.get("stops-fast")
    slow = stop.note and "ended by itself" in stop.message
    return {r.name for r in checked if r.note and not (slow and r.name == "stops-fast")}


# --------------------------------------------------------------------------- on the real engine


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_gives_its_checklist(fixture: str, tag: str) -> None:
    """Does each fixture project fail exactly the checks its name says, with the notes and hints intended?"""
    must_fail, notes, words = EXPECTED[fixture]
    folder, dockerfile = _fixture(fixture)
    checked = project.check(folder, dockerfile=dockerfile, tag=tag, progress=lambda event: None)
    assert {r.name for r in checked if not r.passed} == must_fail, report.render_text(checked)
    assert _notes_allowing_a_slow_stop(checked) == notes, report.render_text(checked)
    assert [r.name for r in checked] == list(project.DESCRIPTIONS)
    for name, word in words.items():
        found = checked.get(name)
        assert word in found.message + found.hint, found
    assert checked.image == tag and engine.image(tag) is not None
    assert _leftovers() == []


@pytest.mark.docker
@pytest.mark.slow
def test_the_course_service_passes(tag: str) -> None:
    """Does the course's own service (docker/customer-value) pass every check, root being a note?"""
    checked = project.check(config.SERVICE_DIR, tag=tag, health_path="/health",
                            environment={"API_TOKEN": "test-FAKE-token-0123456789"}, progress=lambda event: None)
    assert [r.name for r in checked if not r.passed] == [], report.render_text(checked)
    assert _notes_allowing_a_slow_stop(checked) == {"non-root"}
    assert "port 80" in checked.get("answers-http").message
    assert "test folders" in checked.get("image-size").message  # named with its saving, not a failure


@pytest.mark.docker
@pytest.mark.slow
def test_a_port_that_never_answers_is_named(tag: str) -> None:
    """With a port the program does not use, does answers-http fail and say where it listens instead?"""
    checked = project.check(PROJECTS / "passes_streamlit_style_port_8501", tag=tag, port=9999,
                            limits=engine.SandboxLimits(ready_timeout=15), remove_image=True,
                            progress=lambda event: None)
    http = checked.get("answers-http")
    assert not http.passed and "9999" in http.message and "8501" in http.message, http
    assert checked.image == "" and engine.image(tag) is None
    assert _leftovers() == []


@pytest.mark.docker
def test_a_dockerfile_that_does_not_build_says_why(tmp_path: Path, tag: str) -> None:
    """Does a build that fails give a failed builds check with the cause named, and lint still run?"""
    (tmp_path / "Dockerfile").write_text("FROM python:3.13-slim\nCOPY requirements.txt .\n", encoding="utf-8")
    checked = project.check(tmp_path, tag=tag, progress=lambda event: None)
    assert [r.name for r in checked] == ["builds", "lint"]
    assert not checked.get("builds").passed and "requirements.txt" in checked.get("builds").message
    assert checked.image == ""


@pytest.mark.docker
def test_cli_exit_status_says_whether_a_check_failed(tmp_path: Path, capsys) -> None:
    """Does `containerlab check` exit 2 for a folder without a Dockerfile and 1 when a check fails?"""
    assert cli.main(["check", str(tmp_path)]) == 2
    assert "no Dockerfile" in capsys.readouterr().err
    (tmp_path / "Dockerfile").write_text("FROM python:3.13-slim\nRUN exit 3\n", encoding="utf-8")
    tag = f"cl-check-test-{uuid.uuid4().hex[:10]}:{config.INSTANCE}"
    with pytest.raises(SystemExit) as failed:
        cli.main(["check", str(tmp_path), "--tag", tag, "--html", str(tmp_path / "checklist.html")])
    assert failed.value.code == 1
    assert "[FAIL]" in capsys.readouterr().out
    page = (tmp_path / "checklist.html").read_text(encoding="utf-8")
    assert "containerlab-checklist" in page and f"<title>Checks for {tmp_path.name}</title>" in page
    assert engine.image(tag) is None


# --------------------------------------------------------------------------- without an engine


def test_missing_folder_or_dockerfile_is_a_clear_problem(tmp_path: Path) -> None:
    """Is a missing folder, or a folder without a Dockerfile, refused before anything is built?"""
    with pytest.raises(project.ProjectProblem, match="There is no folder"):
        project.check(tmp_path / "nothing")
    with pytest.raises(project.ProjectProblem, match="no Dockerfile"):
        project.check(tmp_path)


def test_the_file_edited_is_code_the_last_copy_takes() -> None:
    """Is the edited file one the last COPY brings in, a .py file before others, never a dependency list?"""
    parsed = df.Dockerfile(Path("Dockerfile"), "", tuple(df.parse(
        "FROM python:3.13-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY src/ src/\n")), ())
    sent = [("requirements.txt", 10), ("src/data.yaml", 5), ("src/pkg/api.py", 50), ("src/main.py", 40)]
    assert project.file_to_edit(parsed, sent) == "src/main.py"
    only_deps = df.Dockerfile(Path("Dockerfile"), "", tuple(df.parse("FROM x\nCOPY requirements.txt .\n")), ())
    assert project.file_to_edit(only_deps, sent) is None


def test_removable_files_are_told_by_path() -> None:
    """Are pip's cache, apt's lists and caches, compilers and test folders told apart, and code not?"""
    kinds = layers.removable_bytes([
        ("root/.cache/pip/http/a", 3), ("var/lib/apt/lists/deb_main", 5), ("var/cache/apt/pkgcache.bin", 7),
        ("usr/bin/x86_64-linux-gnu-gcc-14", 11), ("usr/local/lib/python3.13/site-packages/numpy/tests/t.py", 13),
        ("app/main.py", 17), ("usr/local/lib/python3.13/site-packages/tests.py", 19)])
    assert kinds == {layers.PIP_CACHE: 3, layers.APT_LISTS: 5, layers.APT_ARCHIVES: 7, layers.COMPILERS: 11,
                     layers.TEST_FOLDERS: 13}


def test_hadolint_findings_are_grouped_with_reasons() -> None:
    """Does the lint group hadolint's findings by rule, warnings first, with the house style's reason?"""
    found = lint.lint(Path(__file__).parent / "fixtures" / "fails_lint.dockerfile.txt")
    codes = [f.code for f in found]
    assert len(codes) == len(set(codes)) and {"DL3007", "DL3003", "DL3025"} <= set(codes)
    assert "exec form" in next(f for f in found if f.code == "DL3025").reason
    levels = [f.level in lint.FAILING_LEVELS for f in found]
    assert levels == sorted(levels, reverse=True)


def test_a_slow_stop_names_shell_form_or_an_ignored_signal() -> None:
    """Does a stop the engine had to force fail with the reason that fits the command, and a slow one only note?"""
    shell = project._stop_result(10.2, {"Cmd": ["/bin/sh", "-c", "python app.py"]}, killed=True)
    plain = project._stop_result(10.2, {"Cmd": ["python", "app.py"]}, killed=True)
    slow = project._stop_result(3.5, {"Cmd": ["python", "app.py"]}, killed=False)
    assert not shell.passed and "shell form" in shell.hint
    assert not plain.passed and "ignores SIGTERM" in plain.hint and "exit code 137" in plain.message
    assert slow.note and "by itself, but slowly" in slow.message
    assert project._stop_result(0.4, {"Cmd": ["python", "app.py"]}, killed=False).passed


def test_a_note_is_shown_as_a_note_and_costs_nothing() -> None:
    """Does a note render as NOTE with its hint, count as passed and add no points?"""
    checked = results("project", [CheckResult("builds", "It builds", True, 1, "Built."),
                                  CheckResult("non-root", "Not root", True, 0, "Runs as root.", "Add USER.",
                                              note=True)])
    text = report.render_text(checked)
    assert "[NOTE] 0/0  Not root" in text and "hint: Add USER." in text
    assert "Score: 1 / 1" in text and report.failed(checked) == []
    assert "\u2139" in report.render_html(checked)


@pytest.mark.docker
@pytest.mark.slow
def test_run_arguments_and_environment_reach_the_container(tag: str) -> None:
    """Do the run arguments replace CMD and the environment reach the program (a job failing on purpose)?"""
    checked = project.check(PROJECTS / "passes_batch_job_no_port", tag=tag, remove_image=True,
                            command=["python", "-c", "import os, sys; sys.exit(int(os.environ['EXIT_WITH']))"],
                            environment={"EXIT_WITH": "3"}, progress=lambda event: None)
    running = checked.get("keeps-running")
    assert not running.passed and "exit code 3" in running.message, running
