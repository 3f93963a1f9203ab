"""``containerlab doctor``: is this machine ready for the course, and if not, what to do.

Each check is a plain function that returns a :class:`Finding` (what was
measured, whether it is a problem, and the fix for it); it never prints.
:func:`diagnose` runs them all in order; :func:`containerlab.report.render_doctor`
turns the findings into text. The engine is reached through
:mod:`containerlab.engine`; the checks take the engine (:class:`Daemon`: that
module itself, or a test's fake with the same functions) and a runner of
``docker`` commands as arguments so that tests can hand them a fake engine.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import baseimages, config, engine

#: Below this much free space (bytes) where the engine keeps images, builds fail half way.
MIN_FREE_BYTES = 5 * 1024**3
#: A build cache larger than this (bytes) is worth pruning when space runs short.
LARGE_BUILD_CACHE_BYTES = 10 * 1024**3
#: Bridge networks the engine can create with its default address pools: 172.17-31.0.0/16
#: (15 networks of /16) and 192.168.0.0/16 split into /20 (16 networks). Source: moby's
#: ``libnetwork/ipamutils`` (``localScopeDefaultNetworks``); see docker/for-linux#599.
DEFAULT_POOL_NETWORKS = 31
#: Warn when fewer networks than this can still be created.
MIN_FREE_NETWORKS = 5
#: Where the engine reads its ``default-address-pools`` (Linux).
DAEMON_JSON = Path("/etc/docker/daemon.json")
#: Packages of the course environment compared with their locked versions.
LOCKFILE: Path = config.ROOT / "requirements" / "course.lock"

#: Runs ``docker ARGS`` and returns (exit status, output): :func:`engine.docker_cli` by default.
Runner = Callable[[list[str]], tuple[int, str]]


class Daemon(Protocol):
    """What the doctor asks of the engine: the functions of :mod:`containerlab.engine` of these names.

    :func:`diagnose` passes that module itself; a test passes a fake with the same functions.
    """

    def version(self) -> dict[str, Any]:
        """:func:`containerlab.engine.version`."""

    def info(self) -> dict[str, Any]:
        """:func:`containerlab.engine.info`."""

    def system_df(self) -> dict[str, Any]:
        """:func:`containerlab.engine.system_df`."""

    def image(self, name: str) -> engine.ImageInfo | None:
        """:func:`containerlab.engine.image`."""

    def networks(self) -> list[engine.NetworkInfo]:
        """:func:`containerlab.engine.networks`."""

    def image_file(self, image_name: str, path: str) -> bytes | None:
        """:func:`containerlab.engine.image_file`."""


@dataclass(frozen=True)
class Finding:
    """The outcome of one doctor check.

    Attributes:
        name: short identifier (``"engine"``, ``"buildx"``, ``"disk"``).
        status: ``"ok"``, ``"problem"`` (something will fail; see ``fix``), ``"warning"``
            (works, but worth a look) or ``"skipped"`` (could not be checked; ``detail`` says why).
        detail: what was measured, as one line.
        fix: for a problem or warning, what to do, as commands a person types.
    """

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Whether this finding lets the course work (everything but ``"problem"``)."""
        return self.status != "problem"


def _ok(name: str, detail: str) -> Finding:
    return Finding(name, "ok", detail)


def _problem(name: str, detail: str, fix: str) -> Finding:
    return Finding(name, "problem", detail, fix)


def _warning(name: str, detail: str, fix: str) -> Finding:
    return Finding(name, "warning", detail, fix)


def _skipped(name: str, why: str) -> Finding:
    return Finding(name, "skipped", why)


def _docker(args: list[str]) -> tuple[int, str]:
    try:
        proc = engine.docker_cli(args, timeout=60)
    except engine.CommandTimedOut as exc:
        return 124, str(exc)  # the status `timeout` gives a command it stopped
    except engine.EngineError as exc:  # no docker command at all
        return 127, str(exc)
    return proc.returncode, proc.stdout


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


# --------------------------------------------------------------------------- engine and plugins


def check_engine(daemon: Daemon | None, *, error: str = "") -> Finding:
    """Does an engine answer, is it recent enough, and which image store does it use?

    The course supports Docker Engine :data:`config.MIN_ENGINE_MAJOR` and later, on
    either image store: the containerd image store (new installs of Engine 29 and
    Docker Desktop; ``DriverStatus`` then holds ``driver-type
    io.containerd.snapshotter.v1``) or the older graph drivers such as overlay2
    (kept by engines upgraded from older versions). Source: ``GET /info`` of the
    Engine API; docs.docker.com/engine/storage/containerd/.

    Args:
        daemon: the engine, or ``None`` when it could not be reached.
        error: why it could not (e.g. the socket's "permission denied").

    Returns:
        A problem for no engine or one older than the minimum, else ``ok`` with the
        version, API version and image store.
    """
    if daemon is None:
        why = f" ({error})" if error else ""
        return _problem("engine", f"no Docker engine answers{why}", engine.HOW_TO_GET_AN_ENGINE)
    try:
        version = daemon.version()
        info = daemon.info()
    except Exception as exc:  # noqa: BLE001 - any failure here means "no engine" to a student
        return _problem("engine", f"the Docker engine does not answer ({exc})", engine.HOW_TO_GET_AN_ENGINE)
    number = str(version.get("Version", "?"))
    store = image_store(info)
    detail = f"Docker engine {number} (API {version.get('ApiVersion', '?')}), {store}"
    major = re.match(r"(\d+)\.", number)
    if major and int(major.group(1)) < config.MIN_ENGINE_MAJOR:
        return _problem("engine", f"{detail}: older than Docker Engine {config.MIN_ENGINE_MAJOR}, the oldest "
                        "the course supports (its builder lacks what the chapter teaches, and it is out of support)",
                        f"Upgrade to Docker Engine {config.MIN_ENGINE_MAJOR} or later (as root on Debian/Ubuntu, stop "
                        "the old engine and run `bash scripts/ensure-engine.sh`; elsewhere "
                        "https://docs.docker.com/engine/install/).")
    return _ok("engine", detail)


def image_store(info: dict[str, Any]) -> str:
    """Name the image store of an engine from its ``GET /info`` answer.

    Args:
        info: the engine's info (``docker info``'s JSON): ``Driver`` and ``DriverStatus``.

    Returns:
        ``"containerd image store (overlayfs snapshotter)"`` or ``"legacy image store (overlay2)"``.
    """
    driver = str(info.get("Driver") or "?")
    if engine.is_containerd_store(info):
        return f"containerd image store ({driver} snapshotter)"
    return f"legacy image store ({driver})"


def check_plugin(plugin: str, *, run: Runner = _docker) -> Finding:
    """Does ``docker PLUGIN version`` answer (``buildx``, ``compose``)?"""
    status, out = run([plugin, "version"])
    if status != 0:
        return _problem(plugin, f"`docker {plugin}` does not work: {out.strip()[:200]}",
                        f"Install the {plugin} plugin: as root on Debian/Ubuntu `bash scripts/ensure-engine.sh`; "
                        "elsewhere https://docs.docker.com/engine/install/ (Docker Desktop has both plugins).")
    version = re.search(r"v?(\d+\.\d+\.\d+)", out)
    return _ok(plugin, f"docker {plugin} {version.group(1) if version else out.strip()}")


def check_builder(*, run: Runner = _docker) -> Finding:
    """Does the active buildx builder put the images it builds into the engine?

    Only a builder with the ``docker`` driver does so by itself. A
    ``docker-container`` (or ``kubernetes``, ``remote``) builder keeps the result in
    its own cache unless every build passes ``--load`` (moby/buildkit#3855): the
    checks then find no image. ``BUILDX_BUILDER`` overrides the active builder.
    """
    status, out = run(["buildx", "inspect"])
    if status != 0:
        return _skipped("builder", f"`docker buildx inspect` failed: {out.strip()[:200]}")
    name = re.search(r"^Name:\s*(\S+)", out, re.MULTILINE)
    driver = re.search(r"^Driver:\s*(\S+)", out, re.MULTILINE)
    name_s, driver_s = (name.group(1) if name else "?"), (driver.group(1) if driver else "?")
    if driver_s == "docker":
        return _ok("builder", f"buildx builder {name_s!r} (driver docker) builds into the engine")
    via_env = " (chosen by BUILDX_BUILDER)" if os.environ.get("BUILDX_BUILDER") else ""
    return _problem("builder", f"the active buildx builder {name_s!r}{via_env} uses the {driver_s!r} driver: "
                    "images it builds do not appear in the engine",
                    "Switch to the engine's own builder: `docker buildx use default`"
                    + (" and `unset BUILDX_BUILDER`" if via_env else "") + ".")


# --------------------------------------------------------------------------- images, disk, networks


def check_base_images(daemon: Daemon) -> list[Finding]:
    """Are the course's base images there, pulled or as current stand-ins?"""
    findings = []
    for base in baseimages.BASE_IMAGES:
        name = f"image {base.name}"
        found = daemon.image(base.name)
        if found is None:
            findings.append(_problem(name, "missing", "Run `make images` (or `containerlab images`): it pulls the "
                                     "image, or builds a stand-in from Debian packages when no registry answers."))
            continue
        labels = found.labels
        if config.STANDIN_LABEL not in labels:
            findings.append(_ok(name, "present (from a registry)"))
            continue
        try:
            current = labels.get(config.INPUTS_LABEL) == baseimages._inputs_digest(base)
        except Exception:  # noqa: BLE001 - the digest needs the parent image; say so instead
            current = None
        if current is False:
            findings.append(_warning(name, "a stand-in older than its recipe (its Dockerfile or the host's CA "
                                     "bundle changed since it was built)",
                                     "Run `containerlab images` to rebuild it."))
        else:
            findings.append(_ok(name, f"present (stand-in built from Debian {config.DEBIAN_SUITE})"))
    return findings


def check_disk(daemon: Daemon, *, disk_usage: Callable[[str], Any] = shutil.disk_usage) -> list[Finding]:
    """How much space is free where the engine keeps its data, and how big is the build cache?

    The cache size is the sum of ``BuildCache[].Size`` over the records not shared with
    another, and the images' size is ``LayersSize``, both from the engine's ``system df``
    (:func:`engine.system_df`), the figures ``docker system df`` prints.
    """
    findings = []
    root = "/var/lib/docker"
    try:
        root = daemon.info().get("DockerRootDir") or root
    except Exception:  # noqa: BLE001
        pass
    place = root if os.path.exists(root) else str(config.ROOT)
    try:
        free = disk_usage(place).free
    except OSError as exc:
        findings.append(_skipped("disk", f"cannot measure free space of {place}: {exc}"))
    else:
        if free < MIN_FREE_BYTES:
            findings.append(_problem("disk", f"only {_gib(free)} free in {place} (builds need at least "
                                     f"{_gib(MIN_FREE_BYTES)})",
                                     "Free space: `docker builder prune` (build cache), `docker image prune` "
                                     "(untagged images), `docker container prune`."))
        else:
            findings.append(_ok("disk", f"{_gib(free)} free in {place}"))
    try:
        df = daemon.system_df()
    except Exception as exc:  # noqa: BLE001
        findings.append(_skipped("build cache", f"the engine's disk usage is not available ({exc})"))
        return findings
    # As `docker system df` counts them: a record shared with another is counted once, by the
    # other (docker/cli's disk-usage formatter skips Shared records); images by their layers.
    cache = sum(int(item.get("Size") or 0) for item in df.get("BuildCache") or [] if not item.get("Shared"))
    images = int(df.get("LayersSize") or 0)
    detail = f"build cache {_gib(cache)}, images {_gib(images)}"
    if cache > LARGE_BUILD_CACHE_BYTES:
        findings.append(_warning("build cache", detail + f" (more than {_gib(LARGE_BUILD_CACHE_BYTES)})",
                                 "`docker builder prune --filter until=72h` removes the older part of the cache."))
    else:
        findings.append(_ok("build cache", detail))
    return findings


def _pool_capacity(daemon_json: Path = DAEMON_JSON) -> int:
    """How many bridge networks the engine's address pools hold (its ``default-address-pools``)."""
    try:
        pools = json.loads(daemon_json.read_text()).get("default-address-pools")
    except (OSError, ValueError, AttributeError):
        pools = None
    if not pools:
        return DEFAULT_POOL_NETWORKS
    total = 0
    for pool in pools:
        try:
            base_bits = int(str(pool["base"]).split("/")[1])
            total += 2 ** max(int(pool["size"]) - base_bits, 0)
        except (KeyError, ValueError, IndexError):
            continue
    return total or DEFAULT_POOL_NETWORKS


def check_networks(daemon: Daemon, *, daemon_json: Path = DAEMON_JSON) -> Finding:
    """Can the engine still create networks, or have leftover networks used its address pools up?

    Every ``docker compose up`` and every check's sandbox makes a bridge network; one
    left behind keeps its subnet. When the pools are used up the next one fails with
    "could not find an available, non-overlapping IPv4 address pool" (docker/for-linux#599).
    """
    try:
        networks = daemon.networks()
    except Exception as exc:  # noqa: BLE001
        return _skipped("networks", f"cannot list networks ({exc})")
    bridges = [n for n in networks if n.driver == "bridge" and n.name != "bridge"]
    unused = [n.name for n in bridges if not n.containers]
    capacity = _pool_capacity(daemon_json)
    free = capacity - len(bridges)
    detail = (f"{len(bridges)} user-defined bridge network(s) of about {capacity} the address pools hold; "
              f"{len(unused)} with no container")
    fix = ("Remove networks no container uses: `docker network prune` (course ones only: "
           "`docker network prune --filter label=com.docker.compose.project`"
           " or `docker network rm " + " ".join(unused[:5]) + ("..." if len(unused) > 5 else "") + "`).")
    if free <= 0:
        return _problem("networks", detail + ": no address pool is left, new networks fail", fix)
    if free < MIN_FREE_NETWORKS:
        return _warning("networks", detail + f": only {free} more can be made", fix)
    return _ok("networks", detail)


#: The trust store pip reads inside Debian-based images (and the stand-ins).
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _certificates(pem: str) -> set[str]:
    """The certificates in a PEM bundle, each as its base64 body without white space."""
    bodies = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.DOTALL)
    return {"".join(body.split()) for body in bodies}


def check_proxy_ca(daemon: Daemon, *, host_bundle: Path = config.HOST_CA_BUNDLE) -> Finding:
    """Do builds trust the certificate authorities the host trusts (a TLS-intercepting proxy's CA)?

    Behind such a proxy, ``pip install`` in a build fails with CERTIFICATE_VERIFY_FAILED
    unless the base image trusts the proxy's CA. The stand-in ``python:3.13-slim`` copies
    the host's CA bundle into its trust store (:mod:`containerlab.baseimages`): this
    reads the image's trust store (from a container that is created, not run) and looks for every
    certificate of the host's bundle in it. An image from a registry trusts the public
    CAs only, which is all it needs where a registry answers (no proxy in the way).
    """
    base = next(b for b in baseimages.BASE_IMAGES if b.needs_host_ca)
    found = daemon.image(base.name)
    if found is None:
        return _skipped("proxy CA", f"{base.name} is missing (see above)")
    if config.STANDIN_LABEL not in found.labels:
        return _ok("proxy CA", f"{base.name} is from a registry: builds trust the public certificate authorities")
    fix = "Rebuild the stand-ins with the host's bundle: `containerlab images`."
    try:
        host = _certificates(host_bundle.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return _problem("proxy CA", f"the host has no CA bundle at {host_bundle}",
                        "Install the host's CA certificates (`apt-get install ca-certificates`), then "
                        "`containerlab images`.")
    stored = daemon.image_file(base.name, IMAGE_CA_BUNDLE)
    inside = stored.decode("utf-8", "replace") if stored is not None else None
    if inside is None:
        return _problem("proxy CA", f"{base.name} has no readable {IMAGE_CA_BUNDLE}: builds trust no CA", fix)
    missing = host - _certificates(inside)
    if missing:
        return _problem("proxy CA", f"{len(missing)} of the host's {len(host)} CA certificates are not in "
                        f"{base.name}'s trust store: `pip install` in builds may fail with "
                        "CERTIFICATE_VERIFY_FAILED", fix)
    return _ok("proxy CA", f"{base.name} trusts all {len(host)} CA certificates of the host's bundle "
               f"({host_bundle})")


# --------------------------------------------------------------------------- Python, environment, browser


def _locked_versions(lockfile: Path) -> dict[str, str]:
    """``name -> version`` of the lockfile's pins that apply to this interpreter."""
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - packaging comes with the environment
        Marker = None  # type: ignore[assignment,misc]  # noqa: N806
    pins = {}
    for line in lockfile.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line:
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and Marker is not None and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = requirement.partition("==")
        pins[re.sub(r"[-_.]+", "-", name.split("[")[0].strip().lower())] = version.strip()
    return pins


def check_python(*, version: Sequence[int] = tuple(sys.version_info[:3]), prefix: str = sys.prefix,
                 lockfile: Path = LOCKFILE,
                 installed: Callable[[str], str] = importlib.metadata.version) -> list[Finding]:
    """Is this Python new enough, and is it the course environment with the locked packages?"""
    findings = []
    shown = ".".join(map(str, version))
    if tuple(version[:2]) < (3, 11):
        findings.append(_problem("python", f"Python {shown} (the course needs 3.11 or newer)",
                                 "Install Python 3.11 or newer, then `make env`."))
    else:
        findings.append(_ok("python", f"Python {shown} at {prefix}"))
    venv = config.ROOT / ".venv"
    in_venv = Path(prefix).resolve() == venv.resolve() if venv.exists() else False
    try:
        pins = _locked_versions(lockfile)
    except OSError as exc:
        findings.append(_skipped("environment", f"cannot read {lockfile}: {exc}"))
        return findings
    wrong = []
    for name, pinned in sorted(pins.items()):
        try:
            have = installed(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} missing")
            continue
        if have != pinned:
            wrong.append(f"{name} {have} (locked {pinned})")
    where = "the course environment (.venv)" if in_venv else f"not the course's .venv but {prefix}"
    if wrong:
        findings.append(_problem("environment", f"{where}: {len(wrong)} of {len(pins)} locked packages differ: "
                                 + ", ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""),
                                 "Recreate the environment from the lockfile: `rm -f .venv/.installed && make env`, "
                                 "then run the course's commands as `.venv/bin/containerlab ...`."))
    else:
        findings.append(_ok("environment", f"{where}: all {len(pins)} locked packages at their versions"))
    return findings


def check_chromium(*, which: Callable[[str], str | None] = shutil.which,
                   version_of: Callable[[str], str] | None = None) -> Finding:
    """Is there a Chromium for the browser tests (Playwright drives Debian's, it downloads none)?"""
    browser = next((path for name in ("chromium", "chromium-browser") if (path := which(name))), None)
    if browser is None:
        return _problem("chromium", "no Chromium: the browser tests (rendered pages, JupyterLab) cannot run",
                        "As root on Debian/Ubuntu: `apt-get install chromium` (`.ci/run` does this). "
                        "Playwright's own browser download does not work offline and is not used.")

    def _version(path: str) -> str:
        try:
            return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return _ok("chromium", f"{(version_of or _version)(browser) or 'Chromium'} at {browser}")


# --------------------------------------------------------------------------- all together


def diagnose(*, daemon: Daemon | None = None, run: Runner = _docker, connect: bool = True,
             disk_usage: Callable[[str], Any] = shutil.disk_usage) -> list[Finding]:
    """Run every check, in the order a person fixes things.

    Args:
        daemon: the engine (default: the module :mod:`containerlab.engine`, once it answers, when ``connect``).
        run: runs ``docker ARGS`` (default: the real command line).
        connect: reach the engine when no ``daemon`` is given.
        disk_usage: measures a folder's file system, as :func:`shutil.disk_usage` (its ``.free`` in bytes).

    Returns:
        The findings; the engine's own checks are ``"skipped"`` when no engine answers.
    """
    error = ""
    if daemon is None and connect:
        try:
            engine.connect()
            daemon = engine
        except engine.EngineUnavailable as exc:
            cause = exc.__cause__
            error = str(cause).split("\n")[0][:200] if cause else ""
    findings = [check_engine(daemon, error=error)]
    findings += [check_plugin("buildx", run=run), check_plugin("compose", run=run)]
    engine_ok = findings[0].ok
    if engine_ok and findings[1].ok:
        findings.append(check_builder(run=run))
    else:
        findings.append(_skipped("builder", "needs the engine and buildx"))
    if daemon is not None and engine_ok:
        findings += check_base_images(daemon)
        findings += check_disk(daemon, disk_usage=disk_usage)
        findings.append(check_networks(daemon))
        findings.append(check_proxy_ca(daemon))
    else:
        findings += [_skipped(n, "no engine answers") for n in ("base images", "disk", "networks", "proxy CA")]
    findings += check_python()
    findings.append(check_chromium())
    return findings


def all_well(findings: Iterable[Finding]) -> bool:
    """Whether no finding is a problem (the exit status of ``containerlab doctor`` is 0)."""
    return all(f.ok for f in findings)
