"""Exercise 6's checks: compose files named by outcome, on the real engine with a real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import requests

from containerlab import config, engine, shared
from containerlab.checks import composefile, ex6, submission

FIXTURES = Path(__file__).parent / "fixtures" / "ex6"
SERVICE = config.ROOT / "solutions" / "ch14" / "service"
#: Every visible check: a file that cannot run, or a stack that does not come up, fails them all.
VISIBLE = {n for n in ex6.POINTS if n not in ex6.HIDDEN}
#: The hidden request set, read from the solution notebook's hidden test cell (as the grader reads it).
HIDDEN_CASES = submission.hidden_cases(notebook="ex6-compose-the-stack.ipynb",
                                       grade_id="ex6-test-hidden-many-customers")

#: fixture -> (checks that must fail, {check: words in its message or hint})
ON_ENGINE: dict[str, tuple[set[str], dict[str, str]]] = {
    "passes_all": (set(), {"data-kept": "went with down --volumes", "db-healthcheck": "probes succeeded"}),
    # Compose's long forms (list environment, long ports with host_ip, long volume, CMD-SHELL) crashed the grader.
    "passes_long_forms": (set(), {"db-healthcheck": "probes succeeded"}),
    # env_file: .env, a file never handed in: the check writes it with its fresh values.
    "passes_env_file": (set(), {"data-kept": "went with down --volumes"}),
    "fails_no_healthcheck": ({"db-healthcheck", "waits-for-db"}, {"db-healthcheck": "no healthcheck"}),
    "fails_short_depends_on": ({"waits-for-db"}, {"waits-for-db": "condition: service_healthy"}),
    "fails_database_on_localhost": ({"predicts", "data-kept"},
                                    {"predicts": "localhost is the container itself",
                                     "data-kept": "Counts once a prediction is stored"}),
    "fails_bind_mount_hides_app": (VISIBLE, {"stack-up": "hides the code the image put there"}),
    "fails_password_in_file": ({"no-secret-in-file"}, {"no-secret-in-file": "POSTGRES_PASSWORD of service db"}),
    "fails_healthcheck_one_string": (VISIBLE, {"stack-up": "executable file not found",
                                                  "db-healthcheck": "each word is its own list item"}),
    "fails_port_not_listened_on": ({"predicts", "data-kept"}, {"predicts": "the API listens on 80"}),
    "fails_data_in_bind_mount": ({"data-kept"}, {"data-kept": "down --volumes leaves it behind"}),
    "fails_unset_variable_blank": (VISIBLE, {"stack-up": 'The "DB_PASSWORD" variable is not set'}),
}
#: Files refused before anything starts: fixture -> words of the first check's message.
REFUSED = {
    "refused_privileged": "`privileged: true`",
    "refused_docker_socket": "mounts the Docker socket",
    "refused_host_network": "`network_mode: host`",
    "refused_host_path": "/srv/pgdata is outside your exercise folder",
    "refused_env_file_outside": "/etc/hostname is outside your exercise folder",
    "refused_cap_add": "`cap_add: SYS_ADMIN`",
    "refused_device": "service db asks for `devices: /dev/fuse:/dev/fuse`",
    "fails_missing_variable": "DB_PASSWORD is set by nobody",
}


@pytest.fixture(scope="session")
def api_tag():
    """One build of the course's API image for the whole session (the build cache makes it quick); removed after."""
    tag = f"cl-ex-test-ex6-api:{uuid.uuid4().hex[:8]}"
    yield tag
    engine.remove_image(tag)


@pytest.fixture
def project(docker_client):
    """A fresh compose project; afterwards nothing of it may be left (containers, networks, volumes)."""
    name = f"cl-ex-test-ex6-{uuid.uuid4().hex[:8]}"
    yield name
    label = {"label": f"com.docker.compose.project={name}"}
    left = [x.name for x in docker_client.containers.list(all=True, filters=label)] + \
           [x.name for x in docker_client.volumes.list(filters=label)] + \
           [x.name for x in docker_client.networks.list(filters=label)]
    engine.compose_down(None, project=name, volumes=True)
    assert left == []


def _folder(tmp_path: Path, fixture: str) -> Path:
    """An exercise folder holding only the fixture as compose.yaml (bind mounts resolve against it)."""
    shutil.copy(FIXTURES / f"{fixture}.compose.yaml", tmp_path / "compose.yaml")
    return tmp_path


#: The hidden checks a fixture fails besides its visible ones (a stack that does not come up fails both).
HIDDEN_FAILS = {"fails_database_on_localhost": set(ex6.HIDDEN), "fails_port_not_listened_on": set(ex6.HIDDEN)}
#: The checks measured on the running stack (the others are read from the file).
MEASURED = {"stack-up", "predicts", "data-kept", "db-healthcheck", *ex6.HIDDEN}
#: Fixtures with a bind mount: their stack's outcome depends on the student's own folder.
BIND_MOUNTED = {"fails_bind_mount_hides_app", "fails_data_in_bind_mount"}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(ON_ENGINE))
def test_fixture_fails_exactly_its_checks(fixture: str, tmp_path: Path, project: str, api_tag: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Does each compose file fail exactly the checks its name says, each with the intended message?

    Checked as the class grader checks it: the hidden checks on the same stack as the visible ones.
    """
    must_fail, words = ON_ENGINE[fixture]
    hidden_fail = set(ex6.HIDDEN) if "stack-up" in must_fail else HIDDEN_FAILS.get(fixture, set())
    folder = _folder(tmp_path, fixture)
    monkeypatch.setattr(shared, "_folder", tmp_path / "shared")  # as in a class grading
    res = ex6.check(folder / "compose.yaml", SERVICE, folder=folder, project=project, tag=api_tag,
                    hidden_cases=HIDDEN_CASES)
    assert [r.name for r in res] == list(ex6.POINTS), [r.name for r in res]
    assert {r.name for r in res if not r.passed} == must_fail | hidden_fail, [(r.name, r.message) for r in res]
    assert all(r.hidden == (r.name in ex6.HIDDEN) for r in res)
    # Only a stack whose measured checks all passed, with no bind mount, is kept for the class's other students.
    shareable = not (must_fail | hidden_fail) & MEASURED and fixture not in BIND_MOUNTED
    assert bool(list((tmp_path / "shared").glob("stack-*.json"))) == shareable
    for name, word in words.items():
        assert word in res.get(name).message + res.get(name).hint, res.get(name)
    assert str(tmp_path) not in " ".join(r.message + r.hint for r in res)


@pytest.mark.docker
@pytest.mark.slow
def test_hidden_checks_pass_the_solution_and_fail_an_api_on_localhost(tmp_path: Path, project: str,
                                                                      api_tag: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Do the hidden checks pass the correct file, also when the grader cannot reach published ports (a
    grading engine in its own network namespace), and fail a file whose API cannot reach the database?"""
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = _folder(tmp_path / "good", "passes_all")
    with monkeypatch.context() as patched:
        def unreachable(*args, **kwargs):
            raise requests.ConnectionError("the published port is in another network namespace")

        patched.setattr(ex6.requests, "request", unreachable)
        res = ex6.check_hidden(good / "compose.yaml", HIDDEN_CASES, SERVICE, folder=good, project=project,
                               tag=api_tag)
    assert [r.name for r in res if not r.passed] == [], [(r.name, r.message) for r in res]
    assert all(r.hidden for r in res)
    bad = _folder(tmp_path / "bad", "fails_database_on_localhost")
    res = ex6.check_hidden(bad / "compose.yaml", HIDDEN_CASES, SERVICE, folder=bad, project=project, tag=api_tag)
    assert {r.name for r in res if not r.passed} == {"fresh-start", "many-customers"}
    assert "3 of 3 answers were wrong or missing, for example" in res.get("many-customers").message
    # It waits for a healthy database, so the hint is about how it reaches it, not about waiting.
    assert "localhost is the container itself" in res.get("fresh-start").hint, res.get("fresh-start")


@pytest.mark.docker
@pytest.mark.parametrize("fixture", sorted(REFUSED))
def test_refused_file_starts_nothing_and_says_why(fixture: str, tmp_path: Path, project: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Is a file that escapes the sandbox (or cannot be interpolated) refused before any build or start?"""
    def never(*args, **kwargs):
        raise AssertionError("the check built or started something for a refused file")

    monkeypatch.setattr(ex6.service, "build_submission", never)
    monkeypatch.setattr(engine, "compose_up", never)
    folder = _folder(tmp_path, fixture)
    res = ex6.check(folder / "compose.yaml", SERVICE, folder=folder, project=project, hidden_cases=HIDDEN_CASES)
    assert res.score == 0 and {r.name for r in res if not r.passed} == set(ex6.POINTS)
    assert REFUSED[fixture] in res[0].message, res[0].message
    assert all("Counts once the check can start your file" in r.message for r in res[1:] if not r.hidden)
    assert all(f"Counts once {ex6.UP}" in r.message for r in res if r.hidden)


@pytest.mark.docker
def test_static_checks_read_the_normalised_model(tmp_path: Path) -> None:
    """Do the file-only checks see the short depends_on, the one-string exec healthcheck and a written password?"""
    env = {"API_TOKEN": "x" * 12, "POSTGRES_PASSWORD": "y" * 12}
    read = {name: composefile.read(_folder(tmp_path, name) / "compose.yaml", tmp_path, project="cl-ex-test-static",
                                   env=env)
            for name in ("passes_all", "fails_short_depends_on", "fails_healthcheck_one_string",
                         "fails_password_in_file")}
    passed = {name: {n for n, r in ex6.static_checks(stack, ()).items() if r.passed} for name, stack in read.items()}
    assert passed["passes_all"] == {"db-healthcheck", "waits-for-db", "no-secret-in-file"}
    assert passed["fails_short_depends_on"] == {"db-healthcheck", "no-secret-in-file"}
    assert passed["fails_healthcheck_one_string"] == {"waits-for-db", "no-secret-in-file"}
    assert passed["fails_password_in_file"] == {"db-healthcheck", "waits-for-db"}
    # The token handed out in service/.env counts as written when it appears in the file.
    token = "handed-out-token-123"
    assert composefile.written_secrets(read["passes_all"], (token,)) == []
    (tmp_path / "compose.yaml").write_text((FIXTURES / "passes_all.compose.yaml").read_text().replace(
        "${API_TOKEN:?set API_TOKEN}", token))
    stack = composefile.read(tmp_path / "compose.yaml", tmp_path, project="cl-ex-test-static", env=env)
    assert any("from the service's .env" in f for f in composefile.written_secrets(stack, (token,)))


@pytest.mark.docker
@pytest.mark.slow
def test_a_stack_another_student_already_made_is_not_started_again(tmp_path: Path, project: str, api_tag: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """In a class grading, does a second student's identical file get the first one's measured outcome, without
    a stack of its own, and the same results as the first?"""
    monkeypatch.setattr(shared, "_folder", tmp_path / "shared")
    (tmp_path / "anna").mkdir()
    (tmp_path / "omar").mkdir()
    anna, omar = _folder(tmp_path / "anna", "passes_all"), _folder(tmp_path / "omar", "passes_all")
    first = ex6.check(anna / "compose.yaml", SERVICE, folder=anna, project=project, tag=api_tag,
                      hidden_cases=HIDDEN_CASES)
    assert first.score == sum(ex6.POINTS.values()), [(r.name, r.message) for r in first if not r.passed]

    def never(*args, **kwargs):
        raise AssertionError("the second student's identical stack was started")

    monkeypatch.setattr(engine, "compose_up", never)
    second = ex6.check(omar / "compose.yaml", SERVICE, folder=omar, project=f"{project}-omar", tag=api_tag,
                       hidden_cases=HIDDEN_CASES)
    assert [(r.name, r.passed, r.message) for r in second] == [(r.name, r.passed, r.message) for r in first]
