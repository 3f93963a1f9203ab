"""Measure builds and images: which steps a build reused, what each layer weighs.

Every fact here comes from the engine's image metadata (through
:mod:`containerlab.engine`, the one module that talks to the engine):

- ``RootFS.Layers``: the layer digests of an image, bottom first. Two builds of
  the same Dockerfile share a leading run of layers exactly as far as the
  builder reused its cache.
- the image history: one entry per Dockerfile instruction with the time it was
  created and the bytes it added. A step taken from the build cache keeps the
  time of the build that first made it.

Builder text output is streamed to a person while a build runs, never parsed for
facts. Nothing here draws: charts live in :mod:`containerlab.charts`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import engine


class LayerError(RuntimeError):
    """An image's metadata cannot answer the question asked (e.g. an image is missing)."""


@dataclass(frozen=True)
class Step:
    """One instruction of the built image's own Dockerfile stage (base image steps excluded).

    Attributes:
        index: position among the build's own steps, 1 for the first after ``FROM``.
        instruction: the instruction, tidied for reading (``RUN pip install ...``).
        size_bytes: bytes the step added to the image (0 for metadata-only steps
            such as ``ENV``, ``EXPOSE`` or ``CMD``).
        layer: the digest of the layer the step made, or ``None`` when it made none.
        created: when the step was made, seconds since the epoch (engine clock).
        reused: ``True`` when the step came from the build cache instead of running.
    """

    index: int
    instruction: str
    size_bytes: int
    layer: str | None
    created: int
    reused: bool


@dataclass(frozen=True)
class MeasuredBuild:
    """A finished build with its measurements.

    Attributes:
        image: the image id (``sha256:...``).
        tag: the tag given to the image.
        seconds: wall time of the whole build, in seconds.
        steps: the build's own steps, in Dockerfile order (see :class:`Step`).
        base: the base image reference of the final stage (``python:3.13-slim``),
            or ``None`` when it could not be resolved.
        size_bytes: size of the whole image, in bytes.
        log: the builder's output, for people to read.
    """

    image: str
    tag: str
    seconds: float
    steps: list[Step]
    base: str | None
    size_bytes: int
    log: str = field(repr=False, default="")

    @property
    def reused_steps(self) -> int:
        """How many of the build's steps came from the cache."""
        return sum(step.reused for step in self.steps)

    def table(self) -> pd.DataFrame:
        """The steps as a table.

        Returns:
            One row per step (index ``step``, 1-based) with columns ``instruction``
            (str), ``size_bytes`` (int) and ``outcome`` (``"reused"`` or ``"rebuilt"``).
        """
        return pd.DataFrame(
            {
                "instruction": [s.instruction for s in self.steps],
                "size_bytes": [s.size_bytes for s in self.steps],
                "outcome": ["reused" if s.reused else "rebuilt" for s in self.steps],
            },
            index=pd.Index([s.index for s in self.steps], name="step"),
        )


# Instructions that write files (and so a layer); the rest only change the config.
_LAYER_INSTRUCTIONS = ("RUN", "COPY", "ADD", "WORKDIR")


def tidy_instruction(created_by: str) -> str:
    """Turn a history ``CreatedBy`` string into the Dockerfile instruction a person wrote.

    Examples: ``"RUN /bin/sh -c pip install -r r.txt # buildkit"`` becomes
    ``"RUN pip install -r r.txt"``; ``"EXPOSE map[80/tcp:{}]"`` becomes ``"EXPOSE 80/tcp"``;
    an empty string (a layer imported from a file system) becomes ``"(imported file system)"``.
    """
    text = created_by.strip()
    if not text:
        return "(imported file system)"
    text = re.sub(r"\s*# buildkit$", "", text)
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", text)  # legacy builder metadata steps
    text = re.sub(r"^/bin/sh -c ", "RUN ", text)  # legacy builder RUN steps
    # BuildKit records the build arguments in scope before the command: "RUN |2 A=1 B=2 /bin/sh -c ..."
    text = re.sub(r"^RUN \|\d+ (?:\S+=\S* )*", "RUN ", text)
    text = text.replace("RUN /bin/sh -c ", "RUN ")
    if text.startswith("EXPOSE map["):
        text = "EXPOSE " + " ".join(re.findall(r"(\d+/\w+)", text))
    if text.startswith("HEALTHCHECK &{"):
        text = "HEALTHCHECK " + " ".join(re.findall(r'"([^"]*)"', text.split("]")[0]))
    return re.sub(r"\s+", " ", text)


def _makes_layer(entry: Mapping[str, object]) -> bool:
    created_by = str(entry["created_by"])
    if int(entry["size"]) > 0 or not created_by.strip():
        return True
    return tidy_instruction(created_by).split(" ", 1)[0] in _LAYER_INSTRUCTIONS


def _entries_with_layers(name: str) -> list[dict[str, object]]:
    """The image history, oldest first, each entry with the digest of its layer (or None).

    Raises:
        LayerError: the history and the layer list do not line up.
    """
    history = engine.image_history(name)
    layers = engine.image_layers(name)
    makes = [_makes_layer(entry) for entry in history]
    if sum(makes) != len(layers):
        raise LayerError(
            f"The history of {name} has {sum(makes)} steps that write files but the image has "
            f"{len(layers)} layers, so its layers cannot be matched to its steps."
        )
    digests = iter(layers)
    return [{**entry, "layer": next(digests) if make else None} for entry, make in zip(history, makes)]


def reused_layers(old: str, new: str) -> list[str]:
    """The layers ``new`` shares with ``old`` from the bottom up (what a rebuild kept).

    Layers are compared by digest in ``RootFS.Layers``. Only the leading run counts:
    once one layer differs, every layer above it was made afresh, even if a later
    digest happens to match.

    Args:
        old: tag or id of the earlier image.
        new: tag or id of the later image.

    Returns:
        The shared layer digests (``sha256:...``), bottom first; empty when the
        images share nothing.

    Raises:
        engine.EngineError: one of the images is not in the local engine.
    """
    shared = []
    for a, b in zip(engine.image_layers(old), engine.image_layers(new)):
        if a != b:
            break
        shared.append(a)
    return shared


def base_entries(name: str, base: str | None) -> int:
    """How many history entries of ``name`` come from its base image ``base``.

    The base image's history must be a prefix of the image's history (same
    instructions, same times); otherwise 0 (treat every entry as the image's own).
    """
    if base is None or engine.image(base) is None:
        return 0
    own = engine.image_history(name)
    theirs = engine.image_history(base)
    if len(theirs) > len(own) or own[: len(theirs)] != theirs:
        return 0
    return len(theirs)


def _steps(name: str, *, base: str | None, previous: str | None, started: float) -> list[Step]:
    entries = _entries_with_layers(name)
    skip = base_entries(name, base)
    old = _entries_with_layers(previous) if previous else None
    steps = []
    still_shared = True  # the leading run of entries identical to the previous image
    for i, entry in enumerate(entries):
        if old is not None:
            same = i < len(old) and all(
                old[i][key] == entry[key] for key in ("created_by", "created", "layer")
            )
            still_shared = still_shared and same
            reused = still_shared
        else:
            # A step taken from the cache keeps the time of the build that made it.
            reused = int(entry["created"]) < int(started)
        if i < skip:
            continue
        steps.append(
            Step(
                index=len(steps) + 1,
                instruction=tidy_instruction(str(entry["created_by"])),
                size_bytes=int(entry["size"]),
                layer=entry["layer"],  # type: ignore[arg-type]
                created=int(entry["created"]),
                reused=reused,
            )
        )
    return steps


_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def final_base(dockerfile: str | os.PathLike[str], build_args: Mapping[str, str] | None = None) -> str | None:
    """The image the last stage of a Dockerfile starts from, with build arguments filled in.

    Reads the Dockerfile (not the builder's output): global ``ARG`` defaults, overridden
    by ``build_args``, are substituted into ``FROM``; a ``FROM`` naming an earlier stage
    is followed to that stage's base.

    Returns:
        An image reference such as ``"python:3.13-slim"``, or ``None`` for ``scratch``
        or an unreadable Dockerfile.
    """
    try:
        text = Path(dockerfile).read_text(encoding="utf-8")
    except OSError:
        return None
    lines = re.sub(r"\\\n", " ", text).splitlines()
    args: dict[str, str] = {}
    stages: dict[str, str] = {}
    last: str | None = None
    seen_from = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not seen_from and (m := _ARG.match(line)):
            value = (m.group(2) or "").strip().strip('"').strip("'")
            args[m.group(1)] = value
            continue
        if m := _FROM.match(line):
            seen_from = True
            ref = re.sub(
                r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                lambda v: dict(args, **(build_args or {})).get(v.group(1), ""),
                m.group(1),
            )
            ref = stages.get(ref.lower(), ref)
            if m.group(2):
                stages[m.group(2).lower()] = ref
            last = ref
    return None if last in (None, "", "scratch") else last


def build(
    context: str | os.PathLike[str],
    *,
    tag: str,
    dockerfile: str | os.PathLike[str] | None = None,
    previous: str | None = None,
    build_args: Mapping[str, str] | None = None,
    no_cache: bool = False,
    fast_export: bool = False,
    echo: engine.Echo | None = None,
) -> MeasuredBuild:
    """Build an image with ``docker buildx build`` and measure what the build reused.

    Args:
        context: the build context folder.
        tag: the tag to give the image (``name:tag``).
        dockerfile: the Dockerfile (default: ``Dockerfile`` in the context).
        previous: tag or id of an earlier image to compare with. A step counts as
            reused when it and every step below it are identical to the previous
            image's (same layer digest, same instruction, same creation time).
            Without it, a step counts as reused when its history entry is older
            than the start of this build (cached steps keep their original time).
        build_args: ``--build-arg`` values.
        no_cache: build every step afresh (a cold build).
        fast_export: compress new layers with zstd, not gzip (see :func:`containerlab.engine.build`);
            the sizes measured here are unpacked sizes, which it does not change.
        echo: called with each line of builder output while the build runs.

    Returns:
        The image id, the wall time in seconds, the build's own steps (base image
        steps left out) with their sizes and outcome, and the image size in bytes.

    Raises:
        engine.BuildFailed: the build failed; it names the failing step and the
            builder's error lines.
        engine.EngineError: ``previous`` is not in the local engine.
        LayerError: the image's history and layers do not line up.
    """
    if previous is not None and engine.image(previous) is None:
        raise engine.EngineError(f"There is no image {previous!r} to compare the build with.")
    # Pin the previous image by id: the new build may take over its tag. On the containerd image
    # store an image goes away with its last tag (Engine 26.1 keeps no dangling image), so a tag
    # of its own keeps it until the comparison is made.
    previous_id = engine.image(previous).id if previous is not None else None  # type: ignore[union-attr]
    keep = f"cl-previous-build:{uuid.uuid4().hex[:12]}" if previous_id is not None else None
    if previous_id is None:
        # History times have whole-second resolution: start on a fresh second so that
        # "created before the build started" means "taken from the cache".
        time.sleep(1.0 - time.time() % 1.0)
    elif not engine.tag_image(previous_id, keep):  # type: ignore[arg-type]
        raise engine.EngineError(f"The image {previous!r} went away before the build could be compared with it.")
    try:
        started = time.time()
        result = engine.build(
            context, tag=tag, dockerfile=dockerfile, build_args=build_args, no_cache=no_cache,
            fast_export=fast_export, echo=echo,
        )
        dockerfile_path = Path(dockerfile) if dockerfile else Path(context) / "Dockerfile"
        base = final_base(dockerfile_path, build_args)
        image_id = result.image.id
        return MeasuredBuild(
            image=image_id,
            tag=tag,
            seconds=result.seconds,
            steps=_steps(image_id, base=base, previous=previous_id, started=started),
            base=base,
            size_bytes=engine.image_size(image_id),
            log=result.log,
        )
    finally:
        if keep is not None:
            engine.untag(keep)


def layer_breakdown(image: str, *, base: str | None = None) -> pd.DataFrame:
    """Each instruction of an image with the bytes it added and its share of the total.

    Args:
        image: tag or id of a local image.
        base: tag of the image's base image; when given (and it matches), its steps
            are summed into one row named ``base image <tag>``.

    Returns:
        One row per history entry, oldest first, with columns ``instruction`` (str),
        ``size_bytes`` (int, from the image history) and ``share`` (float, fraction
        of the sum of ``size_bytes``, so the column adds up to 1).

    Raises:
        engine.EngineError: the image is not in the local engine.
    """
    history = engine.image_history(image)
    skip = base_entries(image, base)
    rows: list[tuple[str, int]] = []
    if skip:
        rows.append((f"base image {base}", sum(int(e["size"]) for e in history[:skip])))
    rows += [(tidy_instruction(str(e["created_by"])), int(e["size"])) for e in history[skip:]]
    frame = pd.DataFrame(rows, columns=["instruction", "size_bytes"])
    total = frame["size_bytes"].sum()
    frame["share"] = frame["size_bytes"] / total if total else 0.0
    return frame


def compare_sizes(images: Sequence[str] | Mapping[str, str]) -> pd.DataFrame:
    """Sizes of several images side by side.

    Args:
        images: image tags, or a mapping of a label (``"slim"``) to an image tag.

    Returns:
        One row per image, indexed by label (or tag), with columns ``image`` (str),
        ``size_bytes`` (int), ``size_mb`` (float, 10**6 bytes) and ``vs_smallest``
        (float, size divided by the smallest size in the table).

    Raises:
        engine.EngineError: an image is not in the local engine.
    """
    named = dict(images) if isinstance(images, Mapping) else {name: name for name in images}
    if not named:
        raise LayerError("compare_sizes needs at least one image.")
    sizes = {label: engine.image_size(ref) for label, ref in named.items()}
    frame = pd.DataFrame(
        {"image": list(named.values()), "size_bytes": list(sizes.values())},
        index=pd.Index(list(named), name="variant"),
    )
    frame["size_mb"] = (frame["size_bytes"] / 1e6).round(1)
    frame["vs_smallest"] = (frame["size_bytes"] / frame["size_bytes"].min()).round(2)
    return frame


def step_size(image: str, contains: str) -> int:
    """Bytes added by the history entries of ``image`` whose instruction contains ``contains``.

    Example: ``step_size("customer-value:1.0", "pip install")`` is the size of the
    installed dependencies.

    Raises:
        LayerError: no entry matches.
    """
    matches = [int(e["size"]) for e in engine.image_history(image) if contains in str(e["created_by"])]
    if not matches:
        raise LayerError(f"No step of {image} contains {contains!r}.")
    return sum(matches)


#: Kinds of files that an image often carries without needing them (see :func:`removable_bytes`).
PIP_CACHE = "pip-cache"  # pip's download and wheel cache (pip install without --no-cache-dir)
APT_LISTS = "apt-lists"  # the package index apt-get update downloads
APT_ARCHIVES = "apt-archives"  # apt's caches: downloaded .deb files, the package cache apt-get update makes
TEST_FOLDERS = "test-folders"  # test suites: those installed packages bring along, or a project's own
COMPILERS = "compilers"  # a C compiler (gcc), needed only to build packages from source

_COMPILER = re.compile(r"^usr/(lib|libexec)/gcc/|^usr/bin/(\w+-linux-gnu-)?(gcc|g\+\+|c\+\+|cc1\w*)(-\d+)?$")


def removable_kind(path: str) -> str | None:
    """Which kind of removable file ``path`` (inside an image, no leading ``/``) is, or ``None``."""
    if path.startswith(".cache/pip/") or "/.cache/pip/" in path:
        return PIP_CACHE
    if path.startswith("var/lib/apt/lists/") and not path.endswith("/lock"):
        return APT_LISTS
    if path.startswith("var/cache/apt/"):
        return APT_ARCHIVES
    if {"tests", "test"} & set(path.split("/")[:-1]):
        return TEST_FOLDERS
    if _COMPILER.search(path):
        return COMPILERS
    return None


def removable_bytes(files: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Bytes of each kind of removable file among ``files``.

    Args:
        files: ``(path, size_bytes)`` pairs, e.g. one layer of :func:`containerlab.scan.layer_contents`.

    Returns:
        Kind (:data:`PIP_CACHE`, :data:`APT_LISTS`, :data:`APT_ARCHIVES`, :data:`TEST_FOLDERS`,
        :data:`COMPILERS`) to bytes; kinds with none are left out.
    """
    found: dict[str, int] = {}
    for path, size in files:
        kind = removable_kind(path)
        if kind is not None:
            found[kind] = found.get(kind, 0) + size
    return found


def context_bytes(context: str | os.PathLike[str], *, use_dockerignore: bool = True) -> int:
    """How many bytes of a build context reach the builder.

    Measured, not estimated: a throwaway image is built ``FROM scratch`` with one
    ``COPY . /context/``; the size of that layer is what the builder received
    after ``.dockerignore`` was applied. The image is removed afterwards.

    Args:
        context: the build context folder.
        use_dockerignore: ``False`` measures a copy of the context without its
            ``.dockerignore`` (everything in the folder is sent).

    Returns:
        Bytes in the copied layer (file contents plus tar headers).

    Raises:
        engine.BuildFailed: the probe build failed.
    """
    with _context_probe(context, use_dockerignore=use_dockerignore) as tag:
        return sum(int(e["size"]) for e in engine.image_history(tag))


def context_files(context: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """The files of a build context that reach the builder, after ``.dockerignore`` (measured as :func:`context_bytes`).

    Returns:
        ``(path, size_bytes)`` of each regular file, the path relative to the context (POSIX form).

    Raises:
        engine.BuildFailed: the probe build failed.
    """
    from . import scan

    with _context_probe(context, use_dockerignore=True) as tag:
        (copied,) = scan.layer_contents(tag)
    return [(path.removeprefix("context/"), size) for path, size in copied if path.startswith("context/")]


@contextlib.contextmanager
def _context_probe(context: str | os.PathLike[str], *, use_dockerignore: bool) -> Iterator[str]:
    """Build ``FROM scratch`` + ``COPY . /context/`` of ``context``; yield its tag, remove it afterwards."""
    tag = f"cl-cache-context-probe:{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="context-probe-", dir=_scratch()) as tmp:
        probe = Path(tmp) / "Dockerfile.probe"
        probe.write_text("FROM scratch\nCOPY . /context/\n", encoding="utf-8")
        source = Path(context)
        if not use_dockerignore:
            source = Path(tmp) / "context"
            shutil.copytree(context, source, symlinks=True,
                            ignore=lambda folder, names: [".dockerignore"] if Path(folder) == Path(context) else [])
        try:
            engine.build(source, tag=tag, dockerfile=probe)
            yield tag
        finally:
            engine.remove_image(tag)


def layer_instructions(image: str) -> list[str]:
    """The instruction that made each layer of ``image``, in ``RootFS.Layers`` order (tidied for reading).

    Raises:
        LayerError: the image's history and layers do not line up.
        engine.EngineError: the image is not in the local engine.
    """
    return [tidy_instruction(str(e["created_by"])) for e in _entries_with_layers(image) if e["layer"] is not None]


def _scratch() -> Path:
    from . import config

    path = config.CACHE_DIR / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_images(tags: Iterable[str]) -> None:
    """Remove the local images ``tags`` (those that exist); for clean-up cells and fixtures."""
    for tag in tags:
        engine.remove_image(tag)
