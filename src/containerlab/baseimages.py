"""Make sure the base images the course uses exist in the local engine.

For each image named in :mod:`containerlab.config` the registry is tried first.
When it cannot be reached (these course machines have no image registry, see
ENGINE.md), a local stand-in is built from Debian 13 packages: a ``debootstrap``
root file system made like ``debian:trixie-slim`` (minbase, slimmed, with the
apt and dpkg settings of Debian's container images) imported as an image, then
the Dockerfile under ``docker/standins/<name>/``. Stand-ins carry two labels: the
official tag they replace, and a digest of their build inputs, so that a second
run can tell they are current and do nothing. An image that came from a
registry (no stand-in label) is never replaced.

What a Dockerfile or a compose file can see of the official images (paths,
``PATH``, environment, users, entrypoint variables) is written down once, with
its sources, in ``docker/standins/official-facts.toml`` (:func:`official_facts`);
the stand-ins are built to match it and ``tests/test_standin_facts.py`` checks
them against it. The Python stand-ins compile CPython from python.org's source
into ``/usr/local`` as the official images do, so ``sys.prefix`` is
``/usr/local`` and packages go to ``/usr/local/lib/python3.13/site-packages``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, engine

#: Debian packages added to the minbase root file system every stand-in starts from: none,
#: as in ``debian:trixie-slim`` (its package list: debuerreotype/docker-debian-artifacts,
#: ``trixie/slim/rootfs.manifest``). No Python: the Python stand-ins compile their own.
ROOTFS_PACKAGES: tuple[str, ...] = ()
ROOTFS_IMAGE = f"containerlab/debian-rootfs:{config.DEBIAN_SUITE}"
#: The image configuration of ``debian:trixie-slim`` (``trixie/slim/oci/blobs/image-config.json``
#: of the same repository): a ``PATH``, ``bash`` as the command, nothing else (no ``LANG``).
ROOTFS_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["bash"]')

#: The official facts of each image a stand-in replaces (see :func:`official_facts`).
OFFICIAL_FACTS = config.STANDINS_DIR / "official-facts.toml"

#: What Debian's own "slim" images leave out, as shell globs under the root file system,
#: and what they keep inside those folders. Source: debuerreotype (the tool that builds
#: the official debian images), ``scripts/.slimify-excludes`` and ``.slimify-includes``.
SLIM_EXCLUDES = (
    "/usr/share/doc/*", "/usr/share/groff/*", "/usr/share/info/*", "/usr/share/linda/*",
    "/usr/share/lintian/overrides/*", "/usr/share/locale/*", "/usr/share/man/*",
)
SLIM_INCLUDES = ("/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias")
#: dpkg reads this file, so packages installed later in the image stay slim too. Same path as
#: in Debian's slim images (debuerreotype ``scripts/debuerreotype-slimify``): Dockerfiles edit
#: it, e.g. the official postgres image, to get translations back.
SLIM_DPKG_CONFIG = "/etc/dpkg/dpkg.cfg.d/docker"

#: The apt and dpkg settings every Debian container image has, non-slim too; a Dockerfile sees
#: them (no .deb files left behind after ``apt-get install``, compressed package lists, no
#: services started by packages). Path -> content, our wording of what debuerreotype's
#: ``scripts/debuerreotype-minimizing-config`` writes.
MINIMIZING_CONFIG = {
    "/etc/apt/apt.conf.d/docker-clean": (
        "# Delete downloaded packages after every install and update, as `apt-get clean` would:\n"
        "# in an image they would only make the layer bigger.\n"
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
        ' /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
        ' /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "/etc/apt/apt.conf.d/docker-gzip-indexes": (
        "# Keep package lists compressed on disk.\n"
        'Acquire::GzipIndexes "true";\n'
    ),
    "/etc/apt/apt.conf.d/docker-no-languages": (
        "# Download no translated package descriptions.\n"
        'Acquire::Languages "none";\n'
    ),
    "/etc/apt/apt.conf.d/docker-autoremove-suggests": (
        "# `apt-get purge --auto-remove` also removes what was kept only because a package suggests it.\n"
        'Apt::AutoRemove::SuggestsImportant "false";\n'
    ),
    "/etc/dpkg/dpkg.cfg.d/docker-apt-speedup": (
        "# A build step is thrown away on failure anyway: dpkg need not sync after each file.\n"
        "force-unsafe-io\n"
    ),
    "/usr/sbin/policy-rc.d": (
        "#!/bin/sh\n"
        "# Packages installed in an image build must not start their services.\n"
        "exit 101\n"
    ),
}

#: Everything that decides the root file system; its image is labelled with it.
ROOTFS_RECIPE = "{suite} minbase+[{packages}] slim minimized {settings}".format(
    suite=config.DEBIAN_SUITE,
    packages=",".join(ROOTFS_PACKAGES),
    settings=hashlib.sha256(repr(
        (ROOTFS_CHANGES, SLIM_EXCLUDES, SLIM_INCLUDES, SLIM_DPKG_CONFIG, MINIMIZING_CONFIG)).encode()).hexdigest()[:12],
)


class BaseImageError(RuntimeError):
    """A base image could neither be pulled nor built; the message says why and what to do."""


@dataclass(frozen=True)
class BaseImage:
    """One base image of the course.

    Attributes:
        name: the official reference, e.g. ``"python:3.13-slim"``.
        standin: folder under ``docker/standins/`` holding its stand-in's build context.
        needs_host_ca: whether the stand-in trusts the host's CA bundle (for pip in builds).
        after: the base image (by name) the stand-in builds on, or ``None`` for the root file system.
        measured_env: environment variables whose value is known only once the image is built
            (the version Debian shipped), each with the shell command that prints it inside the
            image. The Dockerfile takes each as a build argument of the same name, after its last
            ``RUN``: a second build fills them in and reuses every other step from the cache.
    """

    name: str
    standin: str
    needs_host_ca: bool = False
    after: str | None = None
    measured_env: tuple[tuple[str, str], ...] = ()


BASE_IMAGES: tuple[BaseImage, ...] = (
    BaseImage(config.PYTHON_SLIM_IMAGE, "python-slim", needs_host_ca=True),
    BaseImage(config.POSTGRES_IMAGE, "postgres", measured_env=(
        ("PG_VERSION", "dpkg-query --show --showformat='${Version}' \"postgresql-$PG_MAJOR\""),
        ("GOSU_VERSION", "gosu --version | cut -d' ' -f1"),
    )),
    BaseImage(config.PYTHON_FULL_IMAGE, "python-full", after=config.PYTHON_SLIM_IMAGE),
)


def official_facts() -> dict[str, Any]:
    """What a Dockerfile or a compose file can see of each official image, with sources.

    Read from :data:`OFFICIAL_FACTS` (TOML): its ``sources`` table names the public files
    (repository, path, commit) each fact was taken from, and ``images`` holds one table per
    official reference (``"python:3.13-slim"``...). The stand-ins are built to match it.

    Returns:
        The parsed file.
    """
    with OFFICIAL_FACTS.open("rb") as file:
        return tomllib.load(file)


@dataclass(frozen=True)
class Outcome:
    """What :func:`ensure_images` did for one image.

    Attributes:
        name: the image reference.
        action: ``"kept"`` (from a registry, left alone), ``"up to date"`` (current
            stand-in), ``"pulled"`` or ``"built stand-in"``.
        seconds: wall time spent on it, in seconds.
    """

    name: str
    action: str
    seconds: float


def ensure_images(
    *, names: Sequence[str] | None = None, pull: bool = True, echo: engine.Echo = print
) -> list[Outcome]:
    """Make sure the course's base images exist, pulling or building stand-ins.

    Args:
        names: official references to handle (default: all in ``BASE_IMAGES``).
        pull: try the registry before building a stand-in.
        echo: called with progress lines for a person.

    Returns:
        One :class:`Outcome` per image, in order.

    Raises:
        BaseImageError: an image could not be pulled and its stand-in could not be built.
        engine.EngineUnavailable: no Docker engine answers.
    """
    engine.connect()
    wanted = [b for b in BASE_IMAGES if names is None or b.name in names]
    unknown = set(names or ()) - {b.name for b in BASE_IMAGES}
    if unknown:
        raise BaseImageError(f"Unknown base image(s) {sorted(unknown)}; the course uses "
                             f"{[b.name for b in BASE_IMAGES]}")

    def ensure(base: BaseImage) -> Outcome:
        start = time.monotonic()
        action = _ensure_one(base, pull=pull, echo=echo)
        outcome = Outcome(base.name, action, time.monotonic() - start)
        echo(f"{base.name}: {action} ({outcome.seconds:.1f} s)")
        return outcome

    # The images made from the root file system are made side by side (the CPython compile uses the
    # CPUs while the PostgreSQL stand-in mostly downloads and unpacks); one made from another image
    # waits for it.
    done: dict[str, Outcome] = {}
    for batch in ([b for b in wanted if b.after is None], [b for b in wanted if b.after is not None]):
        with ThreadPoolExecutor(max_workers=max(len(batch), 1), thread_name_prefix="standin") as pool:
            for outcome in pool.map(ensure, batch):
                done[outcome.name] = outcome
    return [done[base.name] for base in wanted]


def is_standin(name: str) -> bool:
    """Whether the local image ``name`` is one of our stand-ins (``False`` if absent)."""
    found = engine.image(name)
    return found is not None and config.STANDIN_LABEL in found.labels


def _ensure_one(base: BaseImage, *, pull: bool, echo: engine.Echo) -> str:
    existing = engine.image(base.name)
    digest = _inputs_digest(base)
    if existing is not None:
        labels = existing.labels
        if config.STANDIN_LABEL not in labels:
            return "kept"
        if labels.get(config.INPUTS_LABEL) == digest:
            return "up to date"
    if pull:
        echo(f"{base.name}: trying the registry")
        if engine.pull(base.name):
            return "pulled"
        echo(f"{base.name}: registry not reachable; building a stand-in from Debian {config.DEBIAN_SUITE}")
    _build_standin(base, digest, echo=echo)
    return "built stand-in"


def _inputs_digest(base: BaseImage) -> str:
    """SHA-256 over everything the stand-in is made from (files, CA bundle, root fs recipe)."""
    h = hashlib.sha256()
    h.update(ROOTFS_RECIPE.encode())
    h.update(repr(base.measured_env).encode())
    folder = config.STANDINS_DIR / base.standin
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    if base.needs_host_ca and config.HOST_CA_BUNDLE.exists():
        h.update(config.HOST_CA_BUNDLE.read_bytes())
    if base.after:
        after = engine.image(base.after)
        h.update((after.id if after else "").encode())
    return h.hexdigest()[:16]


def _build_standin(base: BaseImage, digest: str, *, echo: engine.Echo) -> None:
    if base.after:
        parent = base.after
    else:
        _ensure_rootfs_image(echo=echo)
        parent = ROOTFS_IMAGE
    context = config.CACHE_DIR / "contexts" / base.standin
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(config.STANDINS_DIR / base.standin, context)
    if base.needs_host_ca:
        if not config.HOST_CA_BUNDLE.exists():
            raise BaseImageError(
                f"The stand-in for {base.name} copies the host's CA bundle, but "
                f"{config.HOST_CA_BUNDLE} does not exist. Install the ca-certificates package."
            )
        shutil.copy(config.HOST_CA_BUNDLE, context / "host-ca-certificates.crt")
    build_args = {"ROOTFS_IMAGE": parent, "BASE_IMAGE": parent}
    labels = {config.STANDIN_LABEL: base.name, config.INPUTS_LABEL: digest}
    try:
        # Named lines: two stand-ins are built at once.
        built = engine.build(context, tag=None if base.measured_env else base.name, build_args=build_args,
                             labels=labels, echo=lambda line: echo(f"  {base.standin}| {line}"))
        if base.measured_env:
            measured = _measure_env(built.image.id, base.measured_env)
            echo(f"  {base.standin}| measured in the image: {', '.join(f'{k}={v}' for k, v in measured.items())}")
            engine.build(context, tag=base.name, build_args={**build_args, **measured}, labels=labels,
                         echo=lambda line: echo(f"  {base.standin}| {line}"))
            engine.remove_unused_image(built.image.id)
    except engine.BuildFailed as exc:
        raise BaseImageError(f"Could not build the stand-in for {base.name}. {exc}") from exc
    finally:
        shutil.rmtree(context, ignore_errors=True)


def _measure_env(image_id: str, wanted: Sequence[tuple[str, str]], *, timeout: float = 60) -> dict[str, str]:
    """Run the commands of ``wanted`` in one container of the image; name -> the line it printed.

    The container is removed with its anonymous volumes (the postgres image declares one).

    Raises:
        BaseImageError: a command printed nothing, or the container failed or still ran after
            ``timeout`` seconds (exit status ``None``).
    """
    script = "; ".join(f"printf '%s\\n' \"$({command})\"" for _, command in wanted)
    names = [name for name, _ in wanted]
    container = engine.run(image_id, ["sh", "-c", script])
    try:
        status = engine.wait_container(container, timeout=timeout)
        lines = engine.logs(container, tail=len(wanted)).splitlines()
    finally:
        engine.remove_container(container)
    values = {name: value.strip() for name, value in zip(names, lines)}
    empty = [name for name in names if not values.get(name)]
    if status != 0 or empty:
        raise BaseImageError(f"The new image printed no value for {empty or names} (exit status {status}); "
                             "its build did not install what they name.")
    return values


#: Held while the root file system image is checked or made: stand-ins are built side by side.
_ROOTFS_LOCK = threading.Lock()


def _ensure_rootfs_image(*, echo: engine.Echo) -> None:
    """Import a Debian minbase root file system as ``ROOTFS_IMAGE`` unless it is there."""
    with _ROOTFS_LOCK:
        _make_rootfs_image(echo=echo)


def _make_rootfs_image(*, echo: engine.Echo) -> None:
    existing = engine.image(ROOTFS_IMAGE)
    if existing is not None and existing.labels.get(config.INPUTS_LABEL) == ROOTFS_RECIPE:
        return
    if shutil.which("debootstrap") is None:
        raise BaseImageError(
            "No image registry is reachable and `debootstrap` is not installed, so the base "
            "images cannot be built locally. On Debian/Ubuntu: `apt-get install debootstrap` "
            "(as root), or make a registry reachable."
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            "No image registry is reachable, and building the base images locally with "
            "debootstrap needs root. Run `containerlab images` as root, or make a registry reachable."
        )
    mirror = subprocess.run(
        [str(config.ROOT / "scripts" / "debian-mirror.sh")], capture_output=True, text=True
    )
    if mirror.returncode != 0:
        raise BaseImageError(f"Cannot find a Debian mirror: {mirror.stderr.strip()}")
    rootfs = config.CACHE_DIR / f"rootfs-{config.DEBIAN_SUITE}"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    echo(f"debootstrap {config.DEBIAN_SUITE} from {mirror.stdout.strip()} (about a minute)")
    include = [f"--include={','.join(ROOTFS_PACKAGES)}"] if ROOTFS_PACKAGES else []
    result = subprocess.run(
        ["debootstrap", "--variant=minbase", *include, config.DEBIAN_SUITE, str(rootfs), mirror.stdout.strip()],
        capture_output=True, text=True,
    )
    try:
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-10:] + result.stderr.splitlines()[-10:])
            raise BaseImageError(f"debootstrap failed:\n{tail}")
        slim_rootfs(rootfs)
        minimize_rootfs(rootfs)
        engine.import_rootfs(
            rootfs, ROOTFS_IMAGE, changes=[f"LABEL {config.INPUTS_LABEL}=\"{ROOTFS_RECIPE}\"", *ROOTFS_CHANGES]
        )
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def slim_rootfs(rootfs: Path) -> int:
    """Trim a Debian root file system the way Debian's official "slim" images are trimmed.

    Removes the package downloads and package lists (official images ship without them,
    so a Dockerfile runs ``apt-get update`` first), then the documentation, manual pages
    and translations in :data:`SLIM_EXCLUDES` except :data:`SLIM_INCLUDES`, and writes
    :data:`SLIM_DPKG_CONFIG` so that packages installed later leave those out as well.
    Source: debuerreotype's ``scripts/.tar-exclude`` and ``scripts/.slimify-*``.

    Args:
        rootfs: the root of the file system, e.g. a ``debootstrap`` target folder.

    Returns:
        The bytes of regular files removed.
    """
    removed = 0
    keep = [pattern.lstrip("/") for pattern in SLIM_INCLUDES]
    globs = ["var/cache/apt/*", "var/lib/apt/lists/*"] + [p.lstrip("/") for p in SLIM_EXCLUDES]
    for pattern in globs:
        for top in rootfs.glob(pattern):
            paths = [top] if not top.is_dir() or top.is_symlink() else [*top.rglob("*"), top]
            for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
                relative = path.relative_to(rootfs)
                if any(relative.match(k) for k in keep):
                    continue
                if path.is_symlink() or path.is_file():
                    removed += path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    config_lines = [f"path-exclude={p}" for p in SLIM_EXCLUDES] + [f"path-include={p}" for p in SLIM_INCLUDES]
    dpkg_config = rootfs / SLIM_DPKG_CONFIG.lstrip("/")
    dpkg_config.parent.mkdir(parents=True, exist_ok=True)
    dpkg_config.write_text(
        "# Written by containerlab: keep this image as slim as Debian's own slim images.\n"
        + "\n".join(config_lines) + "\n"
    )
    return removed


def minimize_rootfs(rootfs: Path) -> None:
    """Write the apt and dpkg settings of Debian's container images into a root file system.

    Debian's images (slim or not) have them, so a Dockerfile that runs ``apt-get install``
    leaves no downloaded packages in its layer, gets compressed package lists and starts no
    services. Source: debuerreotype, ``scripts/debuerreotype-minimizing-config``; the files
    and their settings are in :data:`MINIMIZING_CONFIG`.

    Args:
        rootfs: the root of the file system, e.g. a ``debootstrap`` target folder.
    """
    for name, text in MINIMIZING_CONFIG.items():
        path = rootfs / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if text.startswith("#!") else 0o644)
