"""Look inside an image for secrets and data that should never have been baked in.

An image is a stack of layers plus a config. Deleting a file in a later layer
only hides it: the earlier layer still holds its bytes, and anyone with the
image can read them. Build arguments and ``ENV`` values end up in the image's
history and config. :func:`scan_image` reads all three places:

* every layer's files, streamed from ``docker save`` (engine.image_archive),
  put in ``RootFS.Layers`` order by the archive's manifest; a layer already
  scanned for the same things by this process (found by its diff id) is not read again,
  and an image already scanned for the same things (found by its content, by this process or,
  in a class grading, by another worker: :mod:`containerlab.shared`) is not saved again;
* the image config (``Env``, ``Labels``, ``Cmd``, ...);
* the build history (each step's instruction, with the build arguments it used).

It returns plain :class:`Finding` objects; it never prints. The exercise
autograder imports :func:`scan_image`.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import posixpath
import re
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from . import engine, shared

#: Finding kinds.
SECRET_VALUE = "secret-value"  # one of the given secret values, found verbatim
SECRET_FILE = "secret-file"  # a file that usually holds credentials (.env, private keys)
SECRET_NAME = "secret-name"  # an ENV or build argument whose name says it is a secret
DATA_FILE = "data-file"  # a large data file (CSV, Parquet, ...)
DATA_COPY = "data-copy"  # the bytes of one of the given data files, whatever the file is called

#: Data files at least this big (bytes) are reported; small ones (a package's
#: bundled sample data, test fixtures) are not.
DATA_MIN_BYTES = 1_000_000

DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".feather", ".csv.gz", ".tsv.gz")
#: File names that hold credentials whatever their content.
SECRET_FILE_NAMES = {
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".netrc", ".pypirc", ".git-credentials", ".pgpass",
}
#: Suffixes of key files; reported only when the file holds a private key.
KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
PRIVATE_KEY_MARK = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
#: Names of variables that hold secrets (matched case-insensitively).
SECRET_NAME_PATTERN = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)$",
                                 re.IGNORECASE)
#: BuildKit records the build arguments a RUN step used as ``|N NAME=value ... /bin/sh -c``.
_RUN_ARGS = re.compile(r"^(?:RUN )?\|\d+ (.*?) (?:/bin/sh -c|/bin/bash -c|\S+/\S+ )")

_CHUNK = 1 << 20
#: Given data files shorter than this (bytes) are not searched for inside other files (too likely by chance).
DATA_NEEDLE_MIN_BYTES = 64


class ScanError(engine.EngineError):
    """The image could not be read (not there, or its archive is damaged)."""


@dataclass(frozen=True)
class Finding:
    """One thing in an image that should not be there.

    Attributes:
        kind: ``"secret-value"``, ``"secret-file"``, ``"secret-name"`` or ``"data-file"``.
        where: ``"layer"``, ``"config"`` or ``"history"``.
        path: the file's path in the layer (``app/.env``) or the config field
            (``Env``); ``""`` for history findings.
        detail: one sentence for a person; secret values are shown masked.
        layer: index into ``RootFS.Layers`` (0 = bottom) for layer findings, else ``None``.
        instruction: the build step that made that layer, or the history step
            that holds the secret (``created_by`` of the image history); ``""`` for config findings.
    """

    kind: str
    where: str
    path: str
    detail: str
    layer: int | None = None
    instruction: str = ""


def mask(value: str) -> str:
    """Show a secret value safely: its first 3 characters and its length, e.g. ``'fak…' (24 chars)``."""
    return f"'{value[:3]}…' ({len(value)} chars)"


@dataclass
class _Layer:
    """What the scan saw in one layer archive, before it knows the layer's index."""

    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, path, detail)
    whiteouts: set[str] = field(default_factory=set)  # paths deleted by this layer
    opaque_dirs: set[str] = field(default_factory=set)  # directories emptied by this layer


def _contains(stream: IO[bytes], needles: list[bytes], *, head: int = 0) -> tuple[set[bytes], bytes]:
    """Read a file stream; return which needles occur in it and its first ``head`` bytes."""
    found: set[bytes] = set()
    keep = max((len(n) for n in needles), default=1) - 1
    tail = b""
    first = b""
    while chunk := stream.read(_CHUNK):
        if len(first) < head:
            first += chunk[: head - len(first)]
        window = tail + chunk
        for needle in needles:
            if needle not in found and needle in window:
                found.add(needle)
        tail = window[-keep:] if keep else b""
    return found, first


def _scan_layer(tar_stream: IO[bytes], values: list[str], data_min_bytes: int,
                data: dict[str, bytes] | None = None) -> _Layer:
    """Scan one layer's tar, streamed; report files by path (no leading ``/``).

    ``data`` maps a data file's name to its bytes: a file holding those bytes
    (a renamed copy, or a concatenation) is reported whatever it is called.
    """
    result = _Layer()
    data = {name: content for name, content in (data or {}).items() if len(content) >= DATA_NEEDLE_MIN_BYTES}
    needles = [v.encode() for v in values] + list(data.values())
    with tarfile.open(fileobj=tar_stream, mode="r|") as layer:  # type: ignore[call-overload]
        for member in layer:
            path = engine.tar_path(member.name)
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == ".wh..wh..opq":
                result.opaque_dirs.add(parent)
                continue
            if base.startswith(".wh."):
                result.whiteouts.add(posixpath.join(parent, base[4:]))
                continue
            if not member.isfile():
                continue
            lower = base.lower()
            is_key_file = lower.endswith(KEY_SUFFIXES)
            if lower in SECRET_FILE_NAMES:
                result.findings.append((SECRET_FILE, path, f"a {base} file usually holds credentials"))
            elif lower == ".env" or lower.startswith(".env.") or lower.endswith(".env"):
                result.findings.append((SECRET_FILE, path, "an environment file: such files usually hold secrets"))
            if lower.endswith(DATA_SUFFIXES) and member.size >= data_min_bytes:
                result.findings.append(
                    (DATA_FILE, path, f"a data file of {member.size / 1e6:.1f} MB baked into the image"))
            if not needles and not is_key_file:
                continue
            stream = layer.extractfile(member)
            if stream is None:
                continue
            found, first = _contains(stream, needles, head=8192 if is_key_file else 0)
            if is_key_file and PRIVATE_KEY_MARK.search(first):
                result.findings.append((SECRET_FILE, path, "a private key"))
            for value in values:
                if value.encode() in found:
                    result.findings.append((SECRET_VALUE, path, f"the file contains the secret value {mask(value)}"))
            for name, content in data.items():
                if content in found:
                    same = "is a copy of" if member.size == len(content) else "holds the contents of"
                    result.findings.append((DATA_COPY, path, f"the file {same} the data file {name}"))
    return result


def _is_tar(head: bytes) -> bool:
    """Whether these first bytes start a tar archive (a ustar header, or the zero block of an empty one)."""
    return (len(head) >= 262 and head[257:262] == b"ustar") or (len(head) >= 512 and not any(head[:512]))


#: The first bytes of a gzip stream (RFC 1952) and of a zstd frame (RFC 8878).
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _layer_stream(head: bytes, stream: IO[bytes]) -> IO[bytes] | None:
    """The uncompressed tar of a layer member, or ``None`` when the member is not a layer.

    The legacy image store's ``docker save`` writes each layer as an uncompressed
    ``layer.tar``. The containerd image store (the default of new installs) writes
    the blobs its content store holds, compressed as they were built or pulled:
    gzip (``application/vnd.oci.image.layer.v1.tar+gzip``, every Docker builder's
    default) or zstd (``...tar+zstd``). Source: the OCI image spec, ``layer.md``.

    Raises:
        ScanError: a zstd layer, and the ``zstd`` program to read it is not installed.
    """
    if _is_tar(head):
        return _Peeked(head, stream)  # type: ignore[return-value]
    if head.startswith(_GZIP_MAGIC):
        inner = gzip.GzipFile(fileobj=_Peeked(head, stream), mode="rb")  # type: ignore[arg-type]
    elif head.startswith(_ZSTD_MAGIC):
        inner = _zstd_reader(_Peeked(head, stream))  # type: ignore[arg-type]
    else:
        return None
    try:
        first = inner.read(512)
    except (OSError, EOFError):
        return None
    return _Peeked(first, inner) if _is_tar(first) else None  # type: ignore[return-value]


def _zstd_reader(stream: IO[bytes]) -> IO[bytes]:
    """Decompress a zstd layer through the ``zstd`` program (Python reads zstd itself only from 3.14).

    The compressed layer is copied to a temporary file first, so that the archive
    is read by this thread alone.
    """
    if shutil.which("zstd") is None:
        raise ScanError("The image has a layer compressed with zstd, and reading it needs the `zstd` program "
                        "(Debian/Ubuntu: `apt-get install zstd`).")
    with tempfile.TemporaryFile() as compressed:
        shutil.copyfileobj(stream, compressed, _CHUNK)
        compressed.seek(0)
        proc = subprocess.Popen(["zstd", "-dcq"], stdin=compressed, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc.stdout


class _Peeked:
    """A stream whose first bytes were already read (to tell a layer tar from a JSON blob)."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0 or size >= len(self.head):
                data, self.head = self.head, b""
                more = self.rest.read(-1 if size < 0 else size - len(data))
                return data + more
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)


def _archive_files(image_name: str) -> Iterator[tuple[tarfile.TarInfo, bytes, IO[bytes]]]:
    """Stream ``docker save`` of an image and yield each regular file in it.

    Yields:
        The archive member, its first 512 bytes (enough to tell a layer tar from
        JSON), and the stream to read the rest from, in archive order.

    Raises:
        engine.ImageNotFound: there is no such local image.
    """
    with engine.image_archive(image_name) as raw, tarfile.open(fileobj=raw, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            if not member.isfile():
                continue
            stream = archive.extractfile(member)
            if stream is not None:
                yield member, stream.read(512), stream


#: Scans of layers by (diff id, what was searched for). A diff id is the sha256 of the layer's
#: contents, so a layer met again (a base image's, the service's dependencies shared by a class)
#: is not read again by this process. Bounded: emptied when it holds :data:`_CACHE_LIMIT` layers.
_LAYER_SCANS: dict[tuple[str, str], _Layer] = {}
#: Archive member names of layers (``<id>/layer.tar``, ``blobs/sha256/<digest>``) with the diff id an
#: earlier archive's manifest gave them. Used only as a guess: each archive's own manifest must confirm it.
_MEMBER_DIFF_IDS: dict[str, str] = {}
_CACHE_LIMIT = 5000
#: Whole-image scans by (content key, what was searched for): the layers bottom to top and the config.
#: The content key (:func:`engine.content_digest`) names every layer by its diff id, the config and the history, so an
#: image met again (a class's correct Dockerfiles build the same image) needs no ``docker save``.
_IMAGE_SCANS: dict[tuple[str, str], tuple[list[_Layer | None], dict[str, Any]]] = {}
_IMAGE_CACHE_LIMIT = 200
def _image_scan(image_id: str, content_key: str, values: list[str], data_min_bytes: int,
                data: dict[str, bytes] | None) -> tuple[list[_Layer | None], dict[str, Any]]:
    """:func:`_read_archive` of one image, once per content and search (this process, then the shared folder)."""
    key = (content_key, _searched_for(values, data_min_bytes, data))
    known = _IMAGE_SCANS.get(key) or shared.computed(
        "scan", shared.key(*key), lambda: _read_archive(image_id, values, data_min_bytes, data),
        read=_from_shared, write=_to_shared)
    if len(_IMAGE_SCANS) >= _IMAGE_CACHE_LIMIT:
        _IMAGE_SCANS.clear()
    _IMAGE_SCANS[key] = known
    return known


def _to_shared(scanned: tuple[list[_Layer | None], dict[str, Any]]) -> dict[str, Any]:
    """A whole-image scan as JSON-safe data, for the other workers (:func:`_from_shared` reads it)."""
    layers, config = scanned
    return {"layers": [None if layer is None else {"findings": layer.findings, "whiteouts": sorted(layer.whiteouts),
                                                   "opaque_dirs": sorted(layer.opaque_dirs)} for layer in layers],
            "config": config}


def _from_shared(doc: Any) -> tuple[list[_Layer | None], dict[str, Any]] | None:
    """A whole-image scan as another worker kept it (:mod:`containerlab.shared`), or ``None`` when unreadable."""
    try:
        return ([None if item is None else _Layer([tuple(f) for f in item["findings"]], set(item["whiteouts"]),
                                                  set(item["opaque_dirs"])) for item in doc["layers"]], doc["config"])
    except (KeyError, TypeError):
        return None


def _searched_for(values: list[str], data_min_bytes: int, data: dict[str, bytes] | None) -> str:
    """A fingerprint of what a layer scan looks for (secret values, data size limit, data files)."""
    digest = hashlib.sha256(repr((values, data_min_bytes)).encode())
    for name, content in sorted((data or {}).items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def _manifest(docs: dict[str, Any], image_name: str) -> tuple[list[str], dict[str, Any]]:
    """From an archive's JSON members: the layers' member names bottom to top, and the image config.

    ``docker save`` writes ``manifest.json`` (both the classic layout and the OCI
    layout of Docker 25 and later): its ``Layers`` list names the layer members in
    the order of the config's ``rootfs.diff_ids``.

    Raises:
        ScanError: no manifest, no config, or as many layer names as diff ids.
    """
    manifest = docs.get("manifest.json")
    entry = manifest[0] if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict) else {}
    config = docs.get(str(entry.get("Config", "")))
    if not isinstance(config, dict) or "rootfs" not in config:
        raise ScanError(f"The archive of {image_name} has no manifest naming its image config; "
                        "`docker save` may have failed.")
    members = [str(name) for name in entry.get("Layers", [])]
    diff_ids = config["rootfs"].get("diff_ids", [])
    if len(members) != len(diff_ids):
        raise ScanError(f"The archive of {image_name} lists {len(members)} layers for {len(diff_ids)} diff ids.")
    return members, config


def _json_member(member: tarfile.TarInfo, head: bytes, stream: IO[bytes]) -> Any:
    """The JSON document an archive member holds, or ``None`` when it holds none (or is too big to be one)."""
    if not head.lstrip().startswith((b"{", b"[")) or member.size >= 50_000_000:
        return None
    try:
        return json.loads(head + stream.read())
    except ValueError:
        return None


_T = TypeVar("_T")


def _walk_archive(image_name: str, read_layer: Callable[[str, IO[bytes]], _T]
                  ) -> tuple[dict[str, _T], list[str], dict[str, Any]]:
    """Stream ``docker save`` once: hand each layer member to ``read_layer``, keep the JSON members.

    Args:
        image_name: the local image (tag or id).
        read_layer: called with a layer member's name and its stream (a layer tar); it may leave
            the stream unread.

    Returns:
        What ``read_layer`` gave for each layer member, by member name; the layer members bottom
        to top (the archive's manifest, in ``RootFS.Layers`` order); and the image config.

    Raises:
        ScanError: the image is not there, or its archive could not be read or has no manifest. When
            a disk was full, its :attr:`~engine.EngineError.pressure` says so (the class grader then
            grades the student again, alone).
    """
    read: dict[str, _T] = {}
    docs: dict[str, Any] = {}
    try:
        for member, head, stream in _archive_files(image_name):
            if (layer := _layer_stream(head, stream)) is not None:
                read[member.name] = read_layer(member.name, layer)
            elif (doc := _json_member(member, head, stream)) is not None:
                docs[member.name] = doc
    except engine.EngineUnavailable:
        raise
    except engine.EngineError as exc:  # no such image, or `docker save` failed (its message)
        raise ScanError(str(exc), pressure=exc.pressure) from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC  # the grader's disk, not the submission
        raise ScanError(f"The archive of {image_name} could not be read ({exc}); is the engine still running?",
                        pressure=(f"the disk was full while the archive of {image_name} was read",) if full else ()
                        ) from exc
    members, config = _manifest(docs, image_name)
    return read, members, config


def _read_archive(image_name: str, values: list[str], data_min_bytes: int,
                  data: dict[str, bytes] | None = None, *, reuse: bool = True
                  ) -> tuple[list[_Layer | None], dict[str, Any]]:
    """Stream ``docker save``; return its layers bottom to top (as ``RootFS.Layers``) and the image config.

    The archive's ``manifest.json`` names each layer's member, in order; the
    config's ``rootfs.diff_ids`` give their diff ids. A layer whose member an
    earlier archive named, with the diff id of a layer already scanned for the
    same things, is skipped unread; should this archive's manifest give that
    member another diff id, the whole archive is read again without reuse.
    """
    searched = _searched_for(values, data_min_bytes, data)
    guessed: dict[str, str] = {}

    def read_layer(name: str, stream: IO[bytes]) -> _Layer:
        diff_id = _MEMBER_DIFF_IDS.get(name, "") if reuse else ""
        known = _LAYER_SCANS.get((diff_id, searched))
        if known is not None:
            guessed[name] = diff_id
            return known
        return _scan_layer(stream, values, data_min_bytes, data)

    scanned, members, config = _walk_archive(image_name, read_layer)
    given = dict(zip(members, config["rootfs"]["diff_ids"]))
    if any(given.get(name) != diff_id for name, diff_id in guessed.items()):
        return _read_archive(image_name, values, data_min_bytes, data, reuse=False)
    if len(_LAYER_SCANS) > _CACHE_LIMIT:
        _LAYER_SCANS.clear()
        _MEMBER_DIFF_IDS.clear()
    for name, diff_id in given.items():
        _MEMBER_DIFF_IDS[name] = diff_id
        if name in scanned:
            _LAYER_SCANS[(diff_id, searched)] = scanned[name]
    return [scanned.get(name) for name in members], config


def _deleted_later(path: str, index: int, layer_list: list[_Layer | None]) -> int | None:
    """Index of the first later layer that deletes ``path`` (whiteout or opaque parent), or None."""
    for later in range(index + 1, len(layer_list)):
        scanned = layer_list[later]
        if scanned is None:
            continue
        if path in scanned.whiteouts:
            return later
        parent = path
        while parent:
            parent = posixpath.dirname(parent)
            if parent in scanned.whiteouts or parent in scanned.opaque_dirs:
                return later
            if not parent or parent == "/":
                break
    return None


def scan_image(
    image_name: str,
    *,
    secret_values: Iterable[str] = (),
    data_min_bytes: int = DATA_MIN_BYTES,
    skip_layers_of: str | None = None,
    data_files: dict[str, bytes] | None = None,
) -> list[Finding]:
    """Find secrets and data baked into an image: in its layers, its config and its history.

    Args:
        image_name: the local image to scan (tag or id).
        secret_values: strings that must not appear anywhere (e.g. the token
            you pass at run time); empty strings are ignored.
        data_min_bytes: report data files (CSV, TSV, Parquet, Feather) of at least this many bytes.
        skip_layers_of: a base image whose layers (the leading layers the two
            images share) are not scanned, to look only at what a Dockerfile added.
        data_files: data file name to its bytes; any file in any layer holding those
            bytes is reported as :data:`DATA_COPY`, whatever it is called (files of at
            least :data:`DATA_NEEDLE_MIN_BYTES`).

    Returns:
        Findings in order: layers bottom to top, then config, then history. An
        empty list means nothing was found. Files deleted by a later layer are
        still reported, with the deleting layer named in ``detail``.

    Raises:
        ScanError: the image is not there or could not be read.
    """
    values = sorted({v for v in secret_values if v}, key=len, reverse=True)
    found = engine.image(image_name)
    if found is None:
        raise ScanError(f"There is no local image {image_name!r}; build it first (docker images lists what there is).")
    layer_list, config = _image_scan(found.id, engine.content_digest(found), values, data_min_bytes, data_files)
    diff_ids: list[str] = list(config.get("rootfs", {}).get("diff_ids", []))
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    instructions = [str(h.get("created_by", "")) for h in history]
    if len(instructions) != len(diff_ids):
        instructions = [""] * len(diff_ids)
    skip = 0
    if skip_layers_of:
        base = engine.image(skip_layers_of)
        if base is None:
            raise ScanError(f"There is no local image {skip_layers_of!r} to compare with.")
        base_layers = base.layers
        while skip < min(len(base_layers), len(diff_ids)) and base_layers[skip] == diff_ids[skip]:
            skip += 1

    findings: list[Finding] = []
    for index, scanned in enumerate(layer_list):
        if scanned is None or index < skip:
            continue
        for kind, path, detail in scanned.findings:
            deleted = _deleted_later(path, index, layer_list)
            if deleted is not None:
                detail += (f"; a later layer ({deleted}) deletes it, but layer {index} still stores it "
                           "and anyone with the image can read it")
            findings.append(Finding(kind=kind, where="layer", path=path, detail=detail, layer=index,
                                    instruction=_short(instructions[index])))

    image_config = config.get("config") or {}
    for key, item in image_config.items():
        entries = item if isinstance(item, list) else list(item.items()) if isinstance(item, dict) else [item]
        for entry in entries:
            text = "=".join(map(str, entry)) if isinstance(entry, tuple) else str(entry)
            for value in values:
                if value in text:
                    findings.append(Finding(kind=SECRET_VALUE, where="config", path=key,
                                            detail=f"{key} holds the secret value {mask(value)}"))
            if key == "Env" and "=" in text:
                name, _, val = text.partition("=")
                if SECRET_NAME_PATTERN.search(name) and val and not any(v in text for v in values):
                    findings.append(Finding(kind=SECRET_NAME, where="config", path=key,
                                            detail=f"the variable {name} is set in the image ({mask(val)})"))

    for step in config.get("history", []):
        created_by = str(step.get("created_by", ""))
        text = created_by + " " + str(step.get("comment", ""))
        # Build arguments whose names say "secret", with values nobody told us about.
        guessed: list[tuple[str, str, str]] = []
        if match := _RUN_ARGS.match(created_by):
            for assignment in match.group(1).split():
                name, _, val = assignment.partition("=")
                if SECRET_NAME_PATTERN.search(name) and val and not any(v in assignment for v in values):
                    guessed.append((assignment, name, val))
        # The finding says where a secret is without repeating it.
        shown = created_by
        for value in values:
            shown = shown.replace(value, f"<secret {mask(value)}>")
        for assignment, name, val in guessed:
            shown = shown.replace(assignment, f"{name}=<secret {mask(val)}>")
        for value in values:
            if value in text:
                findings.append(Finding(kind=SECRET_VALUE, where="history", path="", instruction=_short(shown),
                                        detail=f"the build step's record holds the secret value {mask(value)}"))
        for _, name, val in guessed:
            findings.append(Finding(kind=SECRET_NAME, where="history", path="", instruction=_short(shown),
                                    detail=f"the build argument {name} was used in this step ({mask(val)})"))
    return findings


def _short(instruction: str, width: int = 120) -> str:
    """A history instruction without BuildKit's comment suffix, cut to ``width`` characters."""
    text = instruction.replace(" # buildkit", "").strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def layer_file(image_name: str, layer: int, path: str, *, max_bytes: int = 1_000_000) -> bytes:
    """Read one file as a given layer stores it, even when a later layer deleted it.

    Args:
        image_name: the local image (tag or id).
        layer: index into ``RootFS.Layers`` (0 = bottom), as in :attr:`Finding.layer`.
        path: the file's path inside the layer, e.g. ``"app/.env"``.
        max_bytes: read at most this many bytes.

    Returns:
        The file's bytes.

    Raises:
        ScanError: no such image, layer, or file in that layer.
    """
    found = engine.image(image_name)
    if found is None:
        raise ScanError(f"There is no local image {image_name!r}.")
    diff_ids = found.layers
    if not 0 <= layer < len(diff_ids):
        raise ScanError(f"{image_name} has layers 0 to {len(diff_ids) - 1}, not {layer}.")
    wanted = path.lstrip("/")

    def read_layer(_name: str, stream: IO[bytes]) -> bytes | None:
        content = None
        with tarfile.open(fileobj=stream, mode="r|") as inner:  # type: ignore[call-overload]
            for entry in inner:
                name = engine.tar_path(entry.name)
                if name == wanted and entry.isfile():
                    data = inner.extractfile(entry)
                    content = data.read(max_bytes) if data else b""
        return content

    contents, members, _config = _walk_archive(image_name, read_layer)
    if members[layer] not in contents:
        raise ScanError(f"Layer {layer} of {image_name} was not found in its archive.")
    content = contents[members[layer]]
    if content is None:
        raise ScanError(f"Layer {layer} of {image_name} has no file {wanted}.")
    return content


def layer_contents(image_name: str) -> list[list[tuple[str, int]]]:
    """List the regular files each layer of an image stores, as the layer itself holds them.

    Unlike the image's final file system, a layer still holds files that a later
    layer deletes: those bytes are in the image all the same.

    Args:
        image_name: the local image (tag or id).

    Returns:
        One list per layer, in ``RootFS.Layers`` order (0 = bottom), of ``(path, size_bytes)``
        for each regular file (path without a leading ``/``).

    Raises:
        ScanError: no such image, or its archive could not be read.
    """
    def read_layer(_name: str, stream: IO[bytes]) -> list[tuple[str, int]]:
        with tarfile.open(fileobj=stream, mode="r|") as inner:  # type: ignore[call-overload]
            return [(engine.tar_path(entry.name), entry.size)
                    for entry in inner if entry.isfile()]

    files, members, _config = _walk_archive(image_name, read_layer)
    return [files.get(name, []) for name in members]
