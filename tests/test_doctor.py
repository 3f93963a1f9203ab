"""`containerlab doctor`: does each check see the problem on a faked engine, and name the fix?"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from containerlab import baseimages, config, doctor, engine, report


def net(name: str, *, containers: int = 0, driver: str = "bridge") -> engine.NetworkInfo:
    return engine.NetworkInfo(name=name, driver=driver, containers=tuple(f"c{i}" for i in range(containers)))


class FakeEngine:
    """Just the engine functions the doctor calls (:class:`doctor.Daemon`), with answers a test chooses."""

    def __init__(self, *, images=None, networks=(), build_cache=0, root="/nonexistent-docker-root",
                 version="26.1.5", containerd_store=True, files=None):
        self._images = images if images is not None else {b.name: {} for b in baseimages.BASE_IMAGES}
        self._networks = list(networks) or [net("bridge", containers=1), net("host", driver="host")]
        self._cache = build_cache
        self._root = root
        self._version = version
        self._containerd = containerd_store
        self._files = files or {}

    def image(self, name):
        labels = self._images.get(name)
        return None if labels is None else engine.ImageInfo(id=f"sha256:{name}", tags=(name,), labels=labels)

    def image_file(self, image_name, path):
        return self._files.get((image_name, path))

    def version(self):
        return {"Version": self._version, "ApiVersion": "1.45"}

    def info(self):
        if self._containerd:
            return {"DockerRootDir": self._root, "Driver": "overlayfs",
                    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}
        return {"DockerRootDir": self._root, "Driver": "overlay2",
                "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]]}

    def system_df(self):
        return {"BuildCache": [{"Size": self._cache}], "Images": [{"Size": 100}]}

    def networks(self):
        return self._networks


def runner(answers: dict[str, tuple[int, str]]):
    return lambda args: answers.get(" ".join(args), (1, "unknown command"))


GOOD_DOCKER = {
    "buildx version": (0, "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3"),
    "compose version": (0, "Docker Compose version 2.26.1-4"),
    "buildx inspect": (0, "Name:          default\nDriver:        docker\n"),
}


def by_name(findings):
    return {f.name: f for f in findings}


def test_no_engine_is_a_problem_with_the_install_fix():
    """Without an engine, is the engine a problem whose fix says how to get one, and the rest skipped?"""
    findings = doctor.diagnose(daemon=None, run=runner(GOOD_DOCKER), connect=False)
    f = by_name(findings)
    assert f["engine"].status == "problem" and "ensure-engine.sh" in f["engine"].fix
    assert f["builder"].status == "skipped" and f["networks"].status == "skipped"
    assert not doctor.all_well(findings)


def test_missing_plugins_are_problems():
    """Do a missing buildx or compose plugin each give a problem with the install fix?"""
    run = runner({})
    for plugin in ("buildx", "compose"):
        finding = doctor.check_plugin(plugin, run=run)
        assert finding.status == "problem" and "plugin" in finding.fix


def test_docker_container_builder_is_a_problem():
    """Does a docker-container builder (images not loaded into the engine) say to switch back?"""
    run = runner({"buildx inspect": (0, "Name:          ci\nDriver:        docker-container\n")})
    finding = doctor.check_builder(run=run)
    assert finding.status == "problem"
    assert "docker buildx use default" in finding.fix
    assert doctor.check_builder(run=runner(GOOD_DOCKER)).status == "ok"


def test_missing_base_image_says_make_images():
    """Is a missing base image a problem whose fix is `make images`?"""
    findings = doctor.check_base_images(FakeEngine(images={config.POSTGRES_IMAGE: {}}))
    missing = [f for f in findings if f.status == "problem"]
    assert {f.name for f in missing} == {f"image {config.PYTHON_SLIM_IMAGE}", f"image {config.PYTHON_FULL_IMAGE}"}
    assert all("make images" in f.fix for f in missing)


def test_low_disk_and_big_cache(monkeypatch):
    """Is little free space a problem, and a large build cache a warning, each with a prune command?"""
    few = SimpleNamespace(free=1 * 1024**3)
    findings = by_name(doctor.check_disk(FakeEngine(build_cache=20 * 1024**3), disk_usage=lambda _: few))
    assert findings["disk"].status == "problem" and "docker builder prune" in findings["disk"].fix
    assert findings["build cache"].status == "warning" and "20.0 GiB" in findings["build cache"].detail
    plenty = SimpleNamespace(free=100 * 1024**3)
    findings = by_name(doctor.check_disk(FakeEngine(), disk_usage=lambda _: plenty))
    assert findings["disk"].ok and findings["build cache"].status == "ok"


def test_leftover_networks_exhaust_the_pools(tmp_path):
    """Do leftover networks that use up the address pools give a problem naming `docker network prune`?"""
    leftovers = [net(f"ex_default_{i}") for i in range(doctor.DEFAULT_POOL_NETWORKS)]
    finding = doctor.check_networks(FakeEngine(networks=leftovers), daemon_json=tmp_path / "none.json")
    assert finding.status == "problem" and "docker network prune" in finding.fix
    assert "ex_default_0" in finding.fix
    few = doctor.check_networks(FakeEngine(networks=leftovers[:3]), daemon_json=tmp_path / "none.json")
    assert few.status == "ok"


def test_pool_capacity_follows_daemon_json(tmp_path):
    """Does the capacity come from daemon.json's default-address-pools when it sets them?"""
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}))
    assert doctor._pool_capacity(daemon) == 256
    assert doctor._pool_capacity(tmp_path / "missing.json") == doctor.DEFAULT_POOL_NETWORKS


CERT = "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n"


def test_proxy_ca_missing_from_the_standin_is_a_problem(tmp_path):
    """Is a host CA certificate missing from the stand-in's trust store a problem whose fix rebuilds it?"""
    bundle = tmp_path / "ca.crt"
    bundle.write_text(CERT.format("UHVibGljQ0E=") + CERT.format("UHJveHlDQQ=="))
    slim = config.PYTHON_SLIM_IMAGE

    def standin(store: str | None) -> FakeEngine:
        files = {} if store is None else {(slim, doctor.IMAGE_CA_BUNDLE): store.encode()}
        return FakeEngine(images={slim: {config.STANDIN_LABEL: slim}}, files=files)

    public_only = doctor.check_proxy_ca(standin(CERT.format("UHVibGljQ0E=")), host_bundle=bundle)
    assert public_only.status == "problem" and "1 of the host's 2" in public_only.detail
    assert "containerlab images" in public_only.fix
    both = CERT.format("UHJveHlD\nQQ==") + CERT.format("UHVibGljQ0E=")  # other line breaks, other order
    assert doctor.check_proxy_ca(standin(both), host_bundle=bundle).status == "ok"
    no_store = doctor.check_proxy_ca(standin(None), host_bundle=bundle)
    assert no_store.status == "problem"
    registry = FakeEngine(images={slim: {}})
    assert doctor.check_proxy_ca(registry, host_bundle=bundle).status == "ok"


def test_old_python_and_drifted_environment(tmp_path):
    """Are Python 3.10 and a package at another version than locked both problems, with `make env`?"""
    lock = tmp_path / "course.lock"
    lock.write_text("docker==7.2.0\n    # via containerlab\nappnope==1.0.0 ; sys_platform == 'never'\n")
    findings = by_name(doctor.check_python(version=(3, 10, 1), lockfile=lock, installed=lambda name: "7.1.0"))
    assert findings["python"].status == "problem"
    assert findings["environment"].status == "problem" and "docker 7.1.0 (locked 7.2.0)" in findings["environment"].detail
    assert "make env" in findings["environment"].fix
    fine = by_name(doctor.check_python(version=(3, 11, 7), lockfile=lock, installed=lambda name: "7.2.0"))
    assert fine["python"].ok and fine["environment"].status == "ok"


def test_no_chromium_says_apt_get():
    """Without Chromium, is the fix Debian's package (no browser download)?"""
    finding = doctor.check_chromium(which=lambda name: None)
    assert finding.status == "problem" and "apt-get install chromium" in finding.fix
    found = doctor.check_chromium(which=lambda name: "/usr/bin/chromium", version_of=lambda p: "Chromium 156")
    assert found.ok and "Chromium 156" in found.detail


def test_all_well_on_a_good_fake_machine(monkeypatch, tmp_path):
    """On a fake engine with everything in place, is every finding ok and the text 'All is well.'?"""
    monkeypatch.setattr(doctor, "check_python", lambda: [doctor.Finding("python", "ok", "Python 3.11")])
    monkeypatch.setattr(doctor, "check_chromium", lambda: doctor.Finding("chromium", "ok", "Chromium"))
    plenty = SimpleNamespace(free=400 * 1024**3)
    findings = doctor.diagnose(daemon=FakeEngine(root=str(tmp_path)), run=runner(GOOD_DOCKER),
                               disk_usage=lambda _place: plenty)  # not this machine's disk, which may be full
    assert [f for f in findings if f.status != "ok"] == []
    text = report.render_doctor(findings)
    assert text.endswith("All is well.") and "[ok]" in text


def test_render_shows_the_fix_under_a_problem():
    """Does the text put each problem's fix on the line under it, and name the problems at the end?"""
    text = report.render_doctor([doctor.Finding("disk", "problem", "1 GiB free", "docker builder prune")])
    assert "[PROBLEM]" in text and "fix: docker builder prune" in text
    assert text.splitlines()[-1].startswith("1 problem(s): disk")


def test_doctor_without_an_engine_exits_1_without_a_traceback():
    """Does `containerlab doctor` on a machine without an engine exit 1, print the fix and no traceback?"""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run([sys.executable, "-m", "containerlab.cli", "doctor"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[PROBLEM] engine" in result.stdout and "ensure-engine.sh" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.docker
def test_doctor_on_this_machine():
    """On this machine's real engine, does every engine check give an answer (none skipped)?"""
    findings = by_name(doctor.diagnose())
    for name in ("engine", "buildx", "compose", "builder", "disk", "build cache", "networks", "proxy CA"):
        assert findings[name].status != "skipped", findings[name]
    assert findings["engine"].ok and findings["builder"].ok
    print(report.render_doctor(findings.values()))


@pytest.mark.parametrize("containerd_store, store", [(True, "containerd image store (overlayfs snapshotter)"),
                                                     (False, "legacy image store (overlay2)")])
def test_the_engine_line_names_the_image_store(containerd_store, store):
    """Does the engine finding say which image store the engine uses, for both stores?"""
    found = doctor.check_engine(FakeEngine(containerd_store=containerd_store))
    assert found.ok and store in found.detail and "26.1.5" in found.detail


def test_an_engine_older_than_the_minimum_is_a_problem_with_the_upgrade_fix():
    """Is Docker 20.10 (below the course's minimum) a problem whose fix says how to upgrade?"""
    found = doctor.check_engine(FakeEngine(version="20.10.24", containerd_store=False))
    assert found.status == "problem" and f"Docker Engine {config.MIN_ENGINE_MAJOR}" in found.detail
    assert "ensure-engine.sh" in found.fix
    assert doctor.check_engine(FakeEngine(version=f"{config.MIN_ENGINE_MAJOR}.0.0")).ok
