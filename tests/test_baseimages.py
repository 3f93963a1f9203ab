"""Base images: the decision logic (fake engine) and the real stand-ins (real engine)."""

from __future__ import annotations

import time
import uuid

import docker
import psycopg
import pytest

from containerlab import baseimages, config, engine

# --------------------------------------------------------------------------- decisions, no engine


class FakeEngine:
    """Records calls; holds images as name -> labels."""

    def __init__(self, images: dict[str, dict[str, str]], *, registry_up: bool):
        self.images = images
        self.registry_up = registry_up
        self.pulled: list[str] = []
        self.built: list[str] = []

    def image(self, name):
        labels = self.images.get(name)
        return None if labels is None else engine.ImageInfo(id=f"sha256:{name}", tags=(name,), labels=labels)

    def pull(self, name, timeout=120):
        self.pulled.append(name)
        return self.registry_up


@pytest.fixture
def fake(monkeypatch):
    def make(images, *, registry_up):
        fake_engine = FakeEngine(images, registry_up=registry_up)
        monkeypatch.setattr(baseimages.engine, "connect", lambda: None)
        monkeypatch.setattr(baseimages.engine, "image", fake_engine.image)
        monkeypatch.setattr(baseimages.engine, "pull", fake_engine.pull)
        monkeypatch.setattr(
            baseimages, "_build_standin", lambda base, digest, echo: fake_engine.built.append(base.name)
        )
        return fake_engine

    return make


def test_registry_image_is_never_replaced(fake):
    """Is an image without the stand-in label kept, without pulling or building?"""
    engine_ = fake({config.PYTHON_SLIM_IMAGE: {}}, registry_up=False)
    [outcome] = baseimages.ensure_images(names=[config.PYTHON_SLIM_IMAGE], echo=lambda _: None)
    assert outcome.action == "kept"
    assert engine_.pulled == [] and engine_.built == []


def test_current_standin_is_left_alone(fake):
    """Is a stand-in whose inputs digest matches left as it is?"""
    base = baseimages.BASE_IMAGES[0]
    digest = baseimages._inputs_digest(base)
    engine_ = fake(
        {base.name: {config.STANDIN_LABEL: base.name, config.INPUTS_LABEL: digest}}, registry_up=False
    )
    [outcome] = baseimages.ensure_images(names=[base.name], echo=lambda _: None)
    assert outcome.action == "up to date"
    assert engine_.pulled == [] and engine_.built == []


def test_stale_standin_is_rebuilt_when_the_registry_is_down(fake):
    """Is a stand-in with an old inputs digest rebuilt after the registry was tried?"""
    base = baseimages.BASE_IMAGES[0]
    engine_ = fake({base.name: {config.STANDIN_LABEL: base.name, config.INPUTS_LABEL: "old"}}, registry_up=False)
    [outcome] = baseimages.ensure_images(names=[base.name], echo=lambda _: None)
    assert outcome.action == "built stand-in"
    assert engine_.pulled == [base.name] and engine_.built == [base.name]


def test_missing_image_is_pulled_when_the_registry_answers(fake):
    """Is a missing image pulled, not built, when the registry can be reached?"""
    engine_ = fake({}, registry_up=True)
    outcomes = baseimages.ensure_images(echo=lambda _: None)
    assert {o.action for o in outcomes} == {"pulled"}
    assert engine_.built == []


def test_unknown_image_name_is_refused(fake):
    """Does asking for an image the course does not use fail with the list of known ones?"""
    fake({}, registry_up=False)
    with pytest.raises(baseimages.BaseImageError, match="python:3.13-slim"):
        baseimages.ensure_images(names=["ubuntu:24.04"], echo=lambda _: None)


# --------------------------------------------------------------------------- the real images


def test_slim_rootfs_drops_docs_and_package_lists_but_keeps_copyrights(tmp_path):
    """Does slimming remove manuals, translations and apt lists, keep copyright notices, and tell dpkg?"""
    files = {
        "usr/share/doc/bash/copyright": b"GPL",
        "usr/share/doc/bash/README.gz": b"x" * 1000,
        "usr/share/man/man1/bash.1.gz": b"x" * 500,
        "usr/share/locale/de/LC_MESSAGES/bash.mo": b"x" * 200,
        "usr/share/locale/locale.alias": b"alias",
        "var/lib/apt/lists/deb.debian.org_Packages": b"x" * 300,
        "usr/bin/bash": b"ELF",
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)

    removed = baseimages.slim_rootfs(tmp_path)

    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert removed == 1000 + 500 + 200 + 300
    assert {"usr/share/doc/bash/copyright", "usr/share/locale/locale.alias", "usr/bin/bash"} <= left
    assert not any(name.startswith(("usr/share/man/", "var/lib/apt/lists/d")) for name in left)
    assert (tmp_path / "var/lib/apt/lists/partial").is_dir()
    dpkg = (tmp_path / baseimages.SLIM_DPKG_CONFIG.lstrip("/")).read_text()
    assert "path-exclude=/usr/share/doc/*" in dpkg and "path-include=/usr/share/doc/*/copyright" in dpkg


def test_minimized_rootfs_has_debians_apt_and_dpkg_settings_for_containers(tmp_path):
    """Does minimizing write apt's clean-up, gzip and no-translation settings, dpkg's speed-up and policy-rc.d?"""
    baseimages.minimize_rootfs(tmp_path)

    clean = (tmp_path / "etc/apt/apt.conf.d/docker-clean").read_text()
    assert "DPkg::Post-Invoke" in clean and "/var/cache/apt/archives/*.deb" in clean
    assert 'Acquire::GzipIndexes "true"' in (tmp_path / "etc/apt/apt.conf.d/docker-gzip-indexes").read_text()
    assert 'Acquire::Languages "none"' in (tmp_path / "etc/apt/apt.conf.d/docker-no-languages").read_text()
    assert "force-unsafe-io" in (tmp_path / "etc/dpkg/dpkg.cfg.d/docker-apt-speedup").read_text()
    policy = tmp_path / "usr/sbin/policy-rc.d"
    assert policy.read_text().startswith("#!/bin/sh") and "exit 101" in policy.read_text()
    assert policy.stat().st_mode & 0o111


def test_measured_env_is_filled_in_by_a_second_build(monkeypatch, tmp_path):
    """Is a variable known only after the build read from a first, untagged build and passed to a tagged second one?"""
    builds, removed = [], []

    def build(context, *, tag, build_args, labels, echo):
        builds.append((tag, dict(build_args)))
        return engine.BuildResult(image=engine.ImageInfo(id=f"sha256:{len(builds)}"), seconds=1.0, log="")

    monkeypatch.setattr(baseimages.config, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(baseimages, "_ensure_rootfs_image", lambda echo: None)
    monkeypatch.setattr(baseimages.engine, "build", build)
    monkeypatch.setattr(baseimages.engine, "remove_unused_image", removed.append)
    monkeypatch.setattr(baseimages, "_measure_env", lambda image_id, wanted: {"PG_VERSION": "17.9-0+deb13u1"})
    base = next(b for b in baseimages.BASE_IMAGES if b.measured_env)

    baseimages._build_standin(base, "digest", echo=lambda _: None)

    assert [tag for tag, _ in builds] == [None, base.name]
    assert builds[1][1]["PG_VERSION"] == "17.9-0+deb13u1" and "PG_VERSION" not in builds[0][1]
    assert removed == ["sha256:1"]


def test_official_facts_name_a_source_for_every_image():
    """Does every image in the facts file name its sources, each with a repository, a commit and paths?"""
    facts = baseimages.official_facts()
    assert set(facts["images"]) == {b.name for b in baseimages.BASE_IMAGES}
    for name, image in facts["images"].items():
        assert image["sources"], name
        for source in image["sources"]:
            assert {"repo", "commit", "paths"} <= set(facts["sources"][source]), source


@pytest.mark.docker
def test_slim_base_stays_slim_and_full_base_does_not():
    """Do packages installed on the slim stand-in leave their manuals out, while the full one keeps them?"""
    for name, expect_manuals in ((config.PYTHON_SLIM_IMAGE, False), (config.PYTHON_FULL_IMAGE, True)):
        if not baseimages.is_standin(name):
            pytest.skip(f"{name} came from a registry; this checks the stand-ins")
        found = engine.exec_output(name, ["sh", "-c", "ls /usr/share/man | wc -l; ls /var/lib/apt/lists | wc -l"])
        manuals, lists = (int(n) for n in found.split())
        assert (manuals > 0) == expect_manuals, name
        assert lists <= 1, f"{name} ships package lists"


@pytest.mark.docker
def test_second_run_changes_nothing():
    """Does a second ensure_images run leave every image id as it was, reporting nothing to do?"""
    before = {b.name: engine.image(b.name).id for b in baseimages.BASE_IMAGES}
    outcomes = baseimages.ensure_images(echo=lambda _: None)
    assert {o.action for o in outcomes} <= {"up to date", "kept"}
    assert {b.name: engine.image(b.name).id for b in baseimages.BASE_IMAGES} == before


@pytest.mark.docker
def test_python_image_has_python_and_pip_on_path():
    """Does the Python base run `python` 3.13 and `pip` from PATH, as the official slim image does?"""
    out = engine.exec_output(config.PYTHON_SLIM_IMAGE, ["sh", "-c", "python --version && pip --version"])
    assert "Python 3.13" in out
    assert "pip " in out


@pytest.mark.docker
@pytest.mark.slow
def test_pip_install_works_as_root_in_a_build(tmp_path, unique_tag):
    """Can a Dockerfile on the Python base `pip install` a package as root without extra flags?"""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {config.PYTHON_SLIM_IMAGE}\nRUN pip install --no-cache-dir six==1.16.0\n"
    )
    engine.build(tmp_path, tag=unique_tag)
    assert engine.exec_output(unique_tag, ["python", "-c", "import six; print(six.__version__)"]).strip() == "1.16.0"


@pytest.mark.docker
def test_standins_are_labelled_with_the_tag_they_replace():
    """Does every stand-in carry the label naming the official tag it stands in for?"""
    for base in baseimages.BASE_IMAGES:
        labels = engine.image(base.name).labels or {}
        if config.STANDIN_LABEL in labels:
            assert labels[config.STANDIN_LABEL] == base.name


def _connect(port: int, password: str, *, timeout: float = 60) -> psycopg.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(
                host="127.0.0.1", port=port, user="course", password=password, dbname="shop", connect_timeout=3
            )
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.docker
@pytest.mark.slow
def test_postgres_honours_settings_and_keeps_data_across_restart(tmp_path):
    """Does the PostgreSQL base take user/password/db, run init scripts, and keep rows after a restart?"""
    # The server runs as the postgres user, which must be able to read the scripts.
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents[:2]:
        parent.chmod(parent.stat().st_mode | 0o055)
    (tmp_path / "init.sql").write_text("CREATE TABLE seen (note text);\n")
    (tmp_path / "init.sql").chmod(0o644)
    volume = f"containerlab-test-pg-{uuid.uuid4().hex[:8]}"
    password = "not-a-real-password-" + uuid.uuid4().hex[:6]
    container = engine.run(
        config.POSTGRES_IMAGE,
        ports={5432: None},
        environment={"POSTGRES_PASSWORD": password, "POSTGRES_USER": "course", "POSTGRES_DB": "shop"},
        volumes={volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                 str(tmp_path): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}},
    )
    try:
        port = engine.host_port(container, 5432)
        with _connect(port, password) as conn:
            conn.execute("INSERT INTO seen VALUES ('kept')")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="course", password="wrong", dbname="shop",
                            connect_timeout=3)
        assert engine.exec_inside(container, ["pg_isready"])[0] == 0
        assert engine.docker_cli(["restart", "-t", "20", container.id], timeout=120).returncode == 0
        port = engine.host_port(container, 5432)
        with _connect(port, password) as conn:
            assert conn.execute("SELECT note FROM seen").fetchall() == [("kept",)]
    finally:
        engine.remove_container(container)
        docker.from_env().volumes.get(volume).remove(force=True)
