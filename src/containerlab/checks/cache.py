"""Does a code-only edit keep the dependency layer? Rebuild after an edit and compare with the first build.

Exercise 2 (:func:`.ex2.dependency_reuse`) and the check of any project
(:mod:`.project`) ask the same question and word the answer their own way:
this module measures, they phrase. The edit is made in a copy of the build
context (the student's folder is never changed); the rebuilt image is removed
afterwards.

How reuse is told (ENGINE.md): a step taken from the build cache keeps the
creation time of the build that first made it, so in the image history of the
rebuild it is older than the rebuild's start (:func:`containerlab.layers.build`).
A step that ran again but made the very same layer (a ``COPY --from`` of a
stage that came from the cache) installed nothing again either: pip's output
is never byte for byte the same twice. A step that ran again is given a second
chance with a second edit: on a shared engine it may have joined another
user's build of the same step; a Dockerfile that breaks the cache runs it again
after every edit.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import config, engine, layers
from . import causes, service
from . import dockerfile as df

#: Outcomes of :func:`rebuild_after_edit`.
REUSED = "reused"  # the dependency step came from the build cache
SAME_BYTES = "same-bytes"  # it ran again and made the very layer of the first build
SAME_AFTER_TWO_EDITS = "same-after-two-edits"  # a COPY that made the same layer after two edits
REBUILT = "rebuilt"  # the dependencies were installed again
NO_FILE = "no-file"  # the context has no such file to edit
NO_OWN_LAYER = "no-own-layer"  # the build adds no layer on top of its base
BUILD_FAILED = "build-failed"  # the rebuild after the edit failed


@dataclass(frozen=True)
class EditedRebuild:
    """What a rebuild after a code-only edit reused.

    Attributes:
        outcome: one of :data:`REUSED`, :data:`SAME_BYTES`, :data:`SAME_AFTER_TWO_EDITS`,
            :data:`REBUILT`, :data:`NO_FILE`, :data:`NO_OWN_LAYER`, :data:`BUILD_FAILED`.
        edited: the file that was edited, relative to the context (POSIX form).
        deps: the dependency step: the largest step of the rebuild that writes a layer
            (installed packages dwarf the code), or ``None``.
        steps: the rebuild's own steps that write a layer, in Dockerfile order.
        cause: why the rebuild failed (:data:`BUILD_FAILED`), else ``None``.
        pressure: signs that the engine's shared limits stopped the rebuild, or the second one that
            would have told :data:`SAME_AFTER_TWO_EDITS` (:attr:`containerlab.engine.BuildFailed.pressure`).
    """

    outcome: str
    edited: str
    deps: layers.Step | None = None
    steps: tuple[layers.Step, ...] = ()
    cause: causes.Cause | None = None
    pressure: tuple[str, ...] = ()

    @property
    def reused(self) -> bool:
        """Whether the dependencies were not installed again."""
        return self.outcome in (REUSED, SAME_BYTES, SAME_AFTER_TWO_EDITS)

    @property
    def rebuilt(self) -> list[str]:
        """The instructions of the steps that ran again, in order."""
        return [s.instruction for s in self.steps if not s.reused]


def _edit(path: Path, what: str) -> None:
    """Append a comment line that is new every time: an edit seen before could come whole from the cache."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# {what} made by containerlab's check ({uuid.uuid4().hex}).\n")


def rebuild_after_edit(image: str, parsed: df.Dockerfile, context: Path, edited: str) -> EditedRebuild:
    """Edit one file in a copy of ``context``, rebuild ``parsed``, and say whether the dependency layer was reused.

    Args:
        image: the tag of the first build (its layers are compared with the rebuild's).
        parsed: the Dockerfile the first build used (its cleaned text is built again).
        context: the build context folder of the first build.
        edited: the file to edit, relative to ``context`` (e.g. ``"src/customer_value/api.py"``);
            a comment line is appended to it.

    Returns:
        The outcome, with the dependency step and the rebuild's steps.

    Raises:
        engine.EngineUnavailable: no engine answers.
    """
    config.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cl-ex-edit-", dir=config.CACHE_DIR))
    tag = f"cl-ex-edited-{uuid.uuid4().hex[:8]}:check"
    try:
        copy = scratch / "context"
        shutil.copytree(context, copy, ignore=shutil.ignore_patterns("__pycache__"))
        target = copy / edited
        if not target.is_file():
            return EditedRebuild(NO_FILE, edited)
        _edit(target, "A code-only edit")
        dockerfile = scratch / "Dockerfile"
        dockerfile.write_text(parsed.text, encoding="utf-8")
        try:
            measured = layers.build(copy, tag=tag, dockerfile=dockerfile, fast_export=True)
        except engine.BuildFailed as exc:
            cause = service.build_cause(exc, timeout=service.BUILD_TIMEOUT, context=copy, parsed=parsed)
            return EditedRebuild(BUILD_FAILED, edited, cause=cause, pressure=exc.pressure)
        own = tuple(s for s in measured.steps if s.layer is not None)
        if not own:
            return EditedRebuild(NO_OWN_LAYER, edited)
        deps = max(own, key=lambda s: s.size_bytes)
        # Layer digests alone cannot tell a reused step: a cached step may come from another, equal cache
        # record; they do tell when a step that ran again made the same layer (below).
        first = engine.image_layers(image)

        def kept(step: layers.Step, steps: tuple[layers.Step, ...]) -> EditedRebuild | None:
            """Reused, or run again into the very layer of the first build: nothing installed again."""
            if step.reused:
                return EditedRebuild(REUSED, edited, step, steps)
            if step.layer in first:
                return EditedRebuild(SAME_BYTES, edited, step, steps)
            return None

        if found := kept(deps, own):
            return found
        # The edit reached a step below the dependency step (its layer is new: `COPY . .` before the install),
        # so the Dockerfile itself makes the install run again after every edit: no second rebuild is needed.
        if any(s.layer is not None and s.layer not in first for s in measured.steps if s.index < deps.index):
            return EditedRebuild(REBUILT, edited, deps, own)
        # Once more, with another edit. The step may have run again for a reason that is not the Dockerfile's:
        # it joined another build of the same step running on this engine at that moment (a shared engine),
        # or two builds of one stage at once (students graded in parallel) left two cache records with one key
        # and a COPY --from took the other one.
        try:
            again = _rebuild_again(copy, dockerfile, edited)
        except engine.BuildFailed as exc:
            return EditedRebuild(REBUILT, edited, deps, own, pressure=exc.pressure)
        second = next((s for s in again if s.instruction == deps.instruction), None)
        if second is not None and (found := kept(second, again)):
            return found
        if second is not None and deps.instruction.startswith("COPY") and second.layer == deps.layer:
            return EditedRebuild(SAME_AFTER_TWO_EDITS, edited, deps, own)
        return EditedRebuild(REBUILT, edited, deps, own)
    finally:
        engine.remove_image(tag)
        shutil.rmtree(scratch, ignore_errors=True)


def _rebuild_again(context: Path, dockerfile: Path, edited: str) -> tuple[layers.Step, ...]:
    """Edit the code once more and rebuild; the rebuild's steps that write a layer.

    The image is removed afterwards.

    Raises:
        engine.BuildFailed: the rebuild failed.
    """
    tag = f"cl-ex-edited-{uuid.uuid4().hex[:8]}:check"
    _edit(context / edited, "A second code-only edit")
    try:
        return tuple(s for s in layers.build(context, tag=tag, dockerfile=dockerfile, fast_export=True).steps if s.layer is not None)
    finally:
        engine.remove_image(tag)
