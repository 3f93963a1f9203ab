"""Exercise 3's checks: Dockerfiles and run commands named by outcome, on the real engine."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import pytest

from containerlab import config, engine, shared
from containerlab.checks import ex3

FIXTURES = Path(__file__).parent / "fixtures" / "ex3"
FOLDER = config.ROOT / "solutions" / "ch14"
SERVICE = FOLDER / "service"
ALL = set(ex3.POINTS)

#: (dockerfile fixture, run-command fixture) -> (checks that must fail, {check: words in its hint})
EXPECTED: dict[tuple[str, str], tuple[set[str], dict[str, str]]] = {
    ("passes_all", "passes_all"): (set(), {}),
    ("fails_secret_in_env", "passes_all"): ({"no-secret-in-image"}, {"no-secret-in-image": "no ENV or ARG"}),
    ("fails_baked_secret_removed_later", "passes_all"): ({"no-secret-in-image"},
                                                         {"no-secret-in-image": "does not remove it"}),
    ("fails_data_copied", "passes_all"): ({"no-data-in-image"}, {"no-data-in-image": "mount the data folder"}),
    ("passes_all", "fails_no_mount"): ({"data-mounted"}, {"data-mounted": "service/data"}),
    ("passes_all", "fails_no_secret"): ({"secret-from-env"}, {"secret-from-env": "--env-file"}),
    ("passes_all", "fails_mounted_elsewhere"): ({"data-mounted"}, {"data-mounted": "DATA_DIR"}),
    ("passes_all", "fails_refused_option"): (ALL, {"builds": "Counts once your run command can be run"}),
    ("passes_all", "passes_sourced_env"): (set(), {}),
    ("passes_all", "fails_named_volume"): ({"data-mounted"}, {"data-mounted": "bind-mount that folder"}),
    ("passes_all", "fails_token_file_not_mounted"): ({"secret-from-env"}, {"secret-from-env": "API_TOKEN_FILE"}),
    ("fails_starts_nothing", "passes_all"): (ALL, {"builds": "ended at once"}),
    ("fails_secret_copied_renamed", "passes_all"): ({"no-secret-in-image"}, {"no-secret-in-image": "under any name"}),
    ("fails_secret_added", "passes_all"): ({"no-secret-in-image"}, {"no-secret-in-image": ".env"}),
    ("fails_secret_build_arg", "passes_all"): ({"no-secret-in-image"}, {"no-secret-in-image": "ARG"}),
    ("fails_data_copied_renamed", "passes_all"): ({"no-data-in-image"}, {"no-data-in-image": "reference.txt"}),
    ("passes_all", "passes_command_substitution"): (set(), {}),
    ("passes_all", "passes_variable_set_before"): (set(), {}),
    ("passes_all", "passes_env_file_continuation"): (set(), {}),
    ("passes_all", "passes_rm_then_run"): (set(), {}),
    ("passes_all", "fails_sourced_not_exported"): ({"secret-from-env"}, {"secret-from-env": "--env-file"}),
    ("passes_all", "fails_docker_refuses"): (ALL, {"data-mounted": "invalid characters for a local volume name"}),
    ("passes_all", "fails_runs_docker_twice"): (ALL, {"secret-from-env": "more than once"}),
}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the containers the check starts in this test (other helpers share the engine and its labels)."""
    ids: list[str] = []
    original = engine.sandboxed_container

    @contextlib.contextmanager
    def recording(*args, **kwargs):
        with original(*args, **kwargs) as container:
            ids.append(container.id)
            yield container

    monkeypatch.setattr(engine, "sandboxed_container", recording)
    return ids


def _left_over(docker_client, ids: list[str]) -> list[str]:
    """Which of the containers ``ids`` still exist (one listing call: others' containers come and go meanwhile)."""
    return [c["Id"] for c in docker_client.api.containers(all=True) if c["Id"] in ids]


@pytest.fixture
def student_tag():
    """A unique tag for the student's image; removed after the test, pass or fail."""
    tag = f"cl-ex-test-{uuid.uuid4().hex[:10]}:ex3"
    yield tag
    engine.remove_image(tag)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("dockerfile,command", sorted(EXPECTED), ids=lambda v: v)
def test_fixture_fails_exactly_its_checks(dockerfile: str, command: str, student_tag: str, docker_client,
                                          started: list[str]) -> None:
    """Does each Dockerfile/run-command pair fail exactly the checks its names say, with the intended hint?"""
    must_fail, words = EXPECTED[(dockerfile, command)]
    res = ex3.check(FIXTURES / f"{dockerfile}.dockerfile", FIXTURES / f"{command}.run.sh", SERVICE,
                    folder=FOLDER, tag=student_tag)
    assert {r.name for r in res if not r.passed} == must_fail, [(r.name, r.message) for r in res]
    for name, word in words.items():
        assert word in res.get(name).hint + res.get(name).message, res.get(name)
    assert _left_over(docker_client, started) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_container_another_student_already_ran_is_not_started_again(student_tag: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      started: list[str]) -> None:
    """In a class grading, does a second student's identical image and run command get the first one's runtime
    results without a container of its own, while a student whose mounted data differ gets a container?"""
    monkeypatch.setattr(shared, "_folder", tmp_path / "shared")  # as in a class grading
    folders = {}
    for name in ("anna", "omar", "lena"):
        folders[name] = tmp_path / name
        shutil.copytree(SERVICE, folders[name] / "service")
    extra = folders["lena"] / "service" / "data" / "more.csv"
    extra.write_text("customer_id,value\n1,2\n", encoding="utf-8")

    def graded(name: str) -> ex3.CheckResults:
        return ex3.check(FIXTURES / "passes_all.dockerfile", FIXTURES / "passes_all.run.sh",
                         folders[name] / "service", folder=folders[name], tag=student_tag)

    first = graded("anna")
    assert [r.name for r in first if not r.passed] == [], [(r.name, r.message) for r in first]
    assert len(started) == 1
    second = graded("omar")
    assert len(started) == 1, "the second student's identical container was started"
    runtime = ("data-mounted", "secret-from-env")  # the build's message holds its time, which differs
    assert [(r.name, r.passed) for r in second] == [(r.name, r.passed) for r in first]
    assert [second.get(n).message for n in runtime] == [first.get(n).message for n in runtime]
    third = graded("lena")
    assert len(started) == 2, "a container with other data mounted was taken from another student"
    assert "more.csv" in third.get("data-mounted").message


@pytest.mark.docker
@pytest.mark.slow
def test_token_file_mounted_from_the_folder_earns_the_secret_points(student_tag: str, tmp_path: Path,
                                                                   docker_client, started: list[str]) -> None:
    """Does API_TOKEN_FILE naming a mounted file of the folder pass, with the token's file scanned for too?"""
    shutil.copytree(SERVICE, tmp_path / "service")
    token = ex3._read_env_file(SERVICE / ".env")["API_TOKEN"]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api_token").write_text(token + "\n", encoding="utf-8")
    res = ex3.check(FIXTURES / "passes_all.dockerfile", FIXTURES / "passes_token_file.run.sh", tmp_path / "service",
                    folder=tmp_path, tag=student_tag)
    assert [r.name for r in res if not r.passed] == [], [(r.name, r.message) for r in res]
    assert "API_TOKEN_FILE names the mounted file /run/secrets/api_token" in res.get("secret-from-env").message
    assert str(tmp_path) not in " ".join(r.message + r.hint for r in res)
    assert _left_over(docker_client, started) == []


@pytest.mark.docker
def test_run_command_refuses_options_and_paths_outside() -> None:
    """Are privileged options and mounts from outside the exercise folder refused with a clear message?"""
    with pytest.raises(ex3.RunCommandProblem, match="--privileged"):
        ex3.read_run_command("docker run --privileged img", FOLDER)
    with pytest.raises(ex3.RunCommandProblem, match="outside your exercise folder"):
        ex3.read_run_command("docker run -v /etc:/x img", FOLDER)
    with pytest.raises(ex3.RunCommandProblem, match="docker run"):
        ex3.read_run_command("podman run img", FOLDER)
    spec = ex3.read_run_command('docker run -d \\\n  -e API_TOKEN=abc -v "$PWD/service/data:/data:ro" img', FOLDER)
    assert spec.environment == {"API_TOKEN": "abc"} and spec.image == "img"
    assert spec.volumes == {str((FOLDER / "service" / "data").resolve()): {"bind": "/data", "mode": "ro"}}
