"""Images: look up, pull, import, measure (size, layers, history) and read their files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import posixpath
import shlex
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
from docker.models.images import Image

from .client import CommandTimedOut, EngineError, cli_environment, client, docker_cli, info
from .containers import ContainerFailed, _remove


@dataclass(frozen=True)
class ImageInfo:
    """One local image as ``docker image inspect`` describes it, read when it was looked up.

    Attributes:
        id: the image id (``sha256:...``): the config's digest on the legacy store, the digest of
            a manifest or index on the containerd image store.
        tags: its ``repository:tag`` names (empty for an untagged image).
        labels: its labels (the Dockerfile's ``LABEL``, a build's ``--label``).
        os: the operating system it was built for (``Os``, e.g. ``"linux"``).
        architecture: the processor it was built for (``Architecture``, e.g. ``"amd64"``).
        config: the image's ``Config`` as the engine reports it: ``Env`` (list of ``NAME=value``),
            ``Cmd``, ``Entrypoint``, ``User``, ``WorkingDir``, ``ExposedPorts`` (``{"80/tcp": {}}``),
            ``Volumes``, ``Healthcheck`` (``{"Test": [...]}``), ``StopSignal``, ``Labels``; a key the
            Dockerfile did not set may be missing or ``None``.
        layers: the diff ids of its layers (``RootFS.Layers``), bottom layer first.
        size: inspect's ``Size`` in bytes: the unpacked layers on the legacy store, the compressed
            content on the containerd store (:class:`ImageSizes` says which figure is which).
        created: when it was built, as the engine writes it (``2024-05-01T12:00:00.123456789Z``).
    """

    id: str
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    os: str = "linux"
    architecture: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    size: int = 0
    created: str = ""


def _image_info(found: Image) -> ImageInfo:
    """The :class:`ImageInfo` of an image the SDK looked up."""
    attrs = found.attrs
    config = dict(attrs.get("Config") or {})
    return ImageInfo(
        id=str(found.id),
        tags=tuple(found.tags),
        labels=dict(config.get("Labels") or {}),
        os=str(attrs.get("Os") or "linux"),
        architecture=str(attrs.get("Architecture") or ""),
        config=config,
        layers=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
        size=int(attrs.get("Size") or 0),
        created=str(attrs.get("Created") or ""),
    )


def image(name: str) -> ImageInfo | None:
    """Look up the local image ``name`` (a tag or an id).

    Returns:
        What inspect says of it, or ``None`` when there is no such image.

    Raises:
        EngineUnavailable: no engine answers.
    """
    try:
        return _image_info(client().images.get(name))
    except docker.errors.ImageNotFound:
        return None


def remove_image(name: str) -> None:
    """Remove the local image ``name`` (forcefully); do nothing when it is not there."""
    try:
        client().images.remove(name, force=True)
    except docker.errors.ImageNotFound:
        pass


def untag(name: str) -> None:
    """Remove the tag ``name``; the image goes too when no other tag or container keeps it.

    Nothing happens when the tag is not there.
    """
    try:
        client().images.remove(name, force=False, noprune=False)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError:
        pass  # a container still uses it: leave it


def tag_image(image_id: str, name: str) -> bool:
    """Give the image ``image_id`` the tag ``name`` (``docker tag``); ``False`` when the image is gone."""
    repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
    try:
        return bool(client().images.get(image_id).tag(repository, tag))
    except docker.errors.ImageNotFound:
        return False


def pull(name: str, *, timeout: float = 120) -> bool:
    """Try to pull ``name`` from its registry.

    Args:
        name: an image reference such as ``"python:3.13-slim"``.
        timeout: seconds to wait for the registry at most.

    Returns:
        ``True`` when the image was pulled, ``False`` when the registry cannot be
        reached or does not have it (the caller decides what to do then).
    """
    try:
        return docker_cli(["pull", "--quiet", name], timeout=timeout).returncode == 0
    except CommandTimedOut:
        return False


def import_rootfs(rootfs: Path, tag: str, *, changes: Iterable[str] = (), timeout: float = 1800) -> ImageInfo:
    """Import a root file system folder as a single-layer image (``docker import``).

    Args:
        rootfs: folder holding the file system (e.g. made by debootstrap).
        tag: the tag to give the image.
        changes: Dockerfile instructions to apply (``--change``), e.g. ``"ENV LANG=C.UTF-8"``.
        timeout: seconds after which the import is stopped.

    Returns:
        The imported image.

    Raises:
        EngineError: when tar or the import fails (:class:`CommandTimedOut`: it ran past ``timeout``).
    """
    change_args = [arg for change in changes for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        imp = docker_cli(["import", *change_args, "-", tag], input=tar.stdout, timeout=timeout, merge=False)
    finally:
        tar.stdout.close()
    if tar.wait() != 0 or imp.returncode != 0:
        raise EngineError(f"Could not import {rootfs} as {tag}: {imp.stderr.strip()}")
    found = image(tag)
    if found is None:
        raise EngineError(f"`docker import` reported success but {tag} is not there")
    return found


def exec_output(image_name: str, command: list[str]) -> str:
    """Run ``command`` in a throwaway container of ``image_name`` and return its stdout.

    Raises:
        ContainerFailed: the command exited non-zero (its output attached).
    """
    try:
        out = client().containers.run(image_name, command, remove=True, stdout=True, stderr=False)
    except docker.errors.ContainerError as exc:
        raise ContainerFailed(
            f"`{shlex.join(command)}` failed in {image_name} (exit {exc.exit_status})",
            logs=(exc.stderr or b"").decode("utf-8", "replace"),
        ) from exc
    return out.decode("utf-8", "replace")


def local_tags() -> list[str]:
    """Every ``repository:tag`` of the images in the local engine."""
    return sorted(tag for found in client().images.list() for tag in found.tags)


def image_files(image_name: str) -> Iterator[tuple[str, int]]:
    """List the regular files of an image's final file system (``docker export`` of a container).

    Args:
        image_name: the image.

    Yields:
        ``(path, size_bytes)`` for every regular file, path without a leading ``/``.

    Raises:
        EngineError: the image does not exist.
    """
    try:
        container = client().containers.create(image_name, command=["true"], entrypoint=[])
    except docker.errors.DockerException as exc:
        raise EngineError(f"Could not open image {image_name}: {exc}") from exc
    try:
        stream = _ChunkReader(container.export(chunk_size=1 << 20))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    yield tar_path(member.name), member.size
    finally:
        _remove(container.id)


#: Symbolic links :func:`image_file` follows, one after another, before it gives up (the kernel's limit).
_SYMLINK_HOPS = 40


def image_file(image_name: str, path: str) -> bytes | None:
    """Read one file of an image, from a container that is created, never started (the archive API).

    Not from a container's output: the logs of a container that printed 400 kB and
    exited at once were seen cut short.

    Args:
        image_name: the image (tag or id).
        path: the file's absolute path in the image, e.g. ``"/etc/ssl/certs/ca-certificates.crt"``.

    Returns:
        The file's bytes, through symbolic links (resolved inside the image); ``None`` when the image has
        no such file, it is not a regular file, or it cannot be read.

    Raises:
        EngineError: the image does not exist, or the engine refused to create the container.
    """
    try:
        container = client().containers.create(image_name, command=["true"])
    except docker.errors.DockerException as exc:
        raise EngineError(f"Could not open image {image_name}: {exc}") from exc
    try:
        for _ in range(_SYMLINK_HOPS):
            chunks, _stat = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                member = tar.next()
                if member is not None and member.issym():  # e.g. /etc/os-release -> ../usr/lib/os-release
                    path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                    continue
                data = tar.extractfile(member) if member is not None and member.isfile() else None
                return data.read() if data is not None else None
        return None  # a chain of links longer than the kernel follows
    except (docker.errors.APIError, tarfile.TarError):  # NotFound: no such file in the image
        return None
    finally:
        _remove(container.id)


def tar_path(name: str) -> str:
    """A tar member's path as a path in the image: without the ``./`` some archivers put in front.

    Only that one prefix goes: ``./.env`` is ``.env`` (``str.lstrip("./")`` would make it ``env``).
    """
    return name.removeprefix("./")


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (for streaming tar reads)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def remove_unused_image(image_id: str) -> bool:
    """Remove an image by id unless a container or another tag still uses it.

    Returns:
        ``True`` when it was removed.
    """
    try:
        if client().images.get(image_id).tags:
            # Docker removes an image by id when one tag is left on it: that tag (another exercise's
            # image, the same bytes) would go with it.
            return False
        client().images.remove(image_id, force=False, noprune=False)
    except docker.errors.DockerException:
        return False
    return True


def image_history(name: str) -> list[dict[str, object]]:
    """Return the history of the local image ``name``, oldest step first.

    Source: the engine's ``GET /images/{name}/history`` through the Docker SDK.

    Args:
        name: an image tag or id.

    Returns:
        One dict per history entry, oldest (the base image's first step) first, with
        ``created_by`` (str, the instruction as the builder recorded it), ``created``
        (int, seconds since the epoch, engine clock), ``size`` (int, bytes the step
        added) and ``comment`` (str).

    Raises:
        EngineError: there is no image ``name``.
    """
    try:
        entries = client().api.history(name)
    except docker.errors.ImageNotFound as exc:
        raise EngineError(f"There is no image {name!r} in the local engine.") from exc
    return [
        {
            "created_by": entry.get("CreatedBy") or "",
            "created": int(entry.get("Created") or 0),
            "size": int(entry.get("Size") or 0),
            "comment": entry.get("Comment") or "",
        }
        for entry in reversed(entries)
    ]


def content_digest(found: ImageInfo) -> str:
    """A digest of an image's content: its layers' diff ids, its config and its build history.

    Two images with the same digest hold the same files and start the same way, so
    whatever is read from one (a scan) or measured by starting it (a probe of its
    service) holds for the other. Not the image id: on the legacy store that is the
    config's digest, but on the containerd image store it is the digest of a manifest
    or index, and an index also holds the build's provenance attestation (BuildKit's
    default since buildx 0.10) with the time of the build, so two builds of the same
    Dockerfile that give the same layers and config get two ids.

    Args:
        found: the image, as :func:`image` gives it.

    Returns:
        ``"sha256:"`` and 64 hex digits.

    Raises:
        EngineError: the image is gone (its history cannot be read).
    """
    history = [(h.get("created_by"), h.get("created"), h.get("comment")) for h in image_history(found.id)]
    content = [found.layers, found.config, found.created, found.architecture, found.os, history]
    return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def image_layers(name: str) -> list[str]:
    """Return the layer digests of the local image ``name``, bottom layer first.

    Source: ``RootFS.Layers`` of ``docker image inspect`` (Docker SDK). Two images
    that share a leading run of these digests share those layers on disk.

    Raises:
        EngineError: there is no image ``name``.
    """
    found = image(name)
    if found is None:
        raise EngineError(f"There is no image {name!r} in the local engine.")
    return list(found.layers)


def image_size(name: str) -> int:
    """Return the size of the local image ``name`` in bytes: its layers' files, uncompressed.

    This is the one size the course's checks and pages compare, because it means
    the same on both image stores. It is the sum of the ``Size`` of every entry of
    the image history (each layer's unpacked bytes), which the engine reports the
    same way on the containerd image store and on the legacy (overlay2) store. The
    ``Size`` of ``docker image inspect`` does not: the legacy store gives the
    unpacked bytes there, the containerd store the compressed content instead
    (seen on Engine 26.1: 146 MB unpacked against 51 MB for a Debian base).
    :func:`image_sizes` gives every figure a reader may see.

    Raises:
        EngineError: there is no image ``name``.
    """
    return image_sizes(name).unpacked


@dataclass(frozen=True)
class ImageSizes:
    """The sizes of one image, in bytes, as the different commands show them.

    Attributes:
        unpacked: the layers' files, uncompressed (the sum of ``docker history``'s sizes).
        content: the compressed layers and configs the containerd image store keeps beside the
            unpacked files (the ``Size`` of ``docker image inspect`` there); 0 on the legacy store.
        containerd_store: whether the engine keeps images in the containerd image store.
    """

    unpacked: int
    content: int
    containerd_store: bool

    @property
    def listed(self) -> int:
        """What ``docker image ls`` shows: the unpacked files, plus the compressed content on the containerd store.

        Source: Engine 26.1 with the containerd store lists ``python:3.13-slim`` at 196 MB where its
        history adds up to 146 MB and ``docker image inspect`` gives 51 MB; the legacy store lists 146 MB.
        """
        return self.unpacked + self.content

    @property
    def inspected(self) -> int:
        """What ``docker image inspect --format '{{.Size}}'`` shows on this store."""
        return self.content if self.containerd_store else self.unpacked


def image_sizes(name: str) -> ImageSizes:
    """Measure the local image ``name`` as each command shows it (see :class:`ImageSizes`).

    Raises:
        EngineError: there is no image ``name``.
    """
    found = image(name)
    if found is None:
        raise EngineError(f"There is no image {name!r} in the local engine.")
    unpacked = sum(int(entry["size"]) for entry in image_history(found.id))
    if uses_containerd_store():
        return ImageSizes(unpacked=unpacked, content=found.size, containerd_store=True)
    return ImageSizes(unpacked=unpacked, content=0, containerd_store=False)


def uses_containerd_store() -> bool:
    """Whether this engine keeps its images in the containerd image store (see :func:`is_containerd_store`)."""
    return is_containerd_store(info())


def is_containerd_store(info: Mapping[str, Any]) -> bool:
    """Whether an engine's ``GET /info`` answer (``docker info``'s JSON) names the containerd image store.

    Source: the Engine API's ``/info``: ``DriverStatus`` holds ``["driver-type",
    "io.containerd.snapshotter.v1"]`` on the containerd store (Engine 24 and later; the
    default of new installs of Engine 29 and Docker Desktop), not on a legacy graph driver.
    """
    return any(len(row) == 2 and row[0] == "driver-type" and row[1] == "io.containerd.snapshotter.v1"
               for row in info.get("DriverStatus") or [])


class ImageNotFound(EngineError):
    """The image asked for is not in the local engine."""


@contextlib.contextmanager
def image_archive(name: str) -> Iterator[IO[bytes]]:
    """Stream an image as the tar archive ``docker save`` writes (layers, config, manifest).

    The archive is read as it is produced, never written to disk. Engines up to
    Docker 24 write one ``<id>/layer.tar`` per layer plus ``<config digest>.json``;
    newer ones write an OCI layout (``index.json``, ``blobs/sha256/<digest>``), and
    ``manifest.json`` in both. The legacy image store writes each layer as the
    uncompressed tar whose sha256 is the layer's diff id in ``RootFS.Layers``; the
    containerd image store writes the blobs of its content store as they are,
    compressed (gzip, or zstd), named by the digest of the compressed bytes.
    :mod:`containerlab.scan` reads both.

    Args:
        name: image tag or id.

    Yields:
        A binary stream to read once, front to back (e.g. ``tarfile.open(fileobj=..., mode="r|")``).

    Raises:
        ImageNotFound: there is no such local image.
        EngineError: ``docker save`` failed (its message), and the reader met a short archive or none;
            its :attr:`~EngineError.pressure` names the failure (a full disk makes it fail).
    """
    found = image(name)
    if found is None:
        raise ImageNotFound(f"There is no local image {name!r}; build it first (docker images lists what there is).")
    with tempfile.TemporaryFile() as errors:
        # A stream read as it comes, not a finished command: the one `docker` call that does not go
        # through docker_cli, so it is pointed at this process's engine here.
        proc = subprocess.Popen(["docker", "save", found.id], stdout=subprocess.PIPE, stderr=errors,
                                env=cli_environment())
        assert proc.stdout is not None
        try:
            yield proc.stdout
        except BaseException as exc:
            said = _ended(proc, errors)
            if said and isinstance(exc, Exception):  # a short archive because `docker save` failed: say why
                raise _save_failed(name, said) from exc
            raise
        if said := _ended(proc, errors):
            raise _save_failed(name, said)


def _save_failed(name: str, said: str) -> EngineError:
    """The error of a ``docker save`` of ``name`` that failed saying ``said``: pressure, since the engine
    writes the archive's layers to its own disk first, and a full disk makes it fail."""
    return EngineError(f"`docker save` of {name} failed: {said}", pressure=(f"`docker save` failed ({said})",))


def _ended(proc: subprocess.Popen, errors: IO[bytes]) -> str:
    """Wait for a ``docker save``; return what it wrote on stderr when it failed (else ``""``)."""
    if proc.stdout is not None:
        proc.stdout.close()  # closing our end first lets `docker save` stop when the reader stopped early
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.returncode in (0, -signal.SIGPIPE, -signal.SIGKILL):  # done, or the reader stopped early
        return ""
    errors.seek(0)
    said = errors.read().decode("utf-8", "replace").strip()[-500:] or f"exit code {proc.returncode}"
    return "" if "broken pipe" in said.lower() else said
