"""Benchmark for section 14.3: build times with good and bad layer order, image sizes of three bases.

Run from the repository root (``make bench``)::

    .venv/bin/python benchmarks/layers.py

Everything is measured in one run, side by side, on this machine's engine:

- the cold build of the service (``--no-cache``), then a rebuild after a code-only
  edit with the dependencies installed before the code (good order) and with the
  code copied first (bad order), each as a ratio to the cold build;
- the sizes of the service built on the full base, on the slim base and as a
  multi-stage build, and their ratios;
- the floor: the slim base plus the installed runtime dependencies (the size of
  the ``pip install`` layer of the slim image), and the multi-stage image's
  ratio to it.

The goals of the course (issue 3) are printed beside the figures; they are
targets to compare with, not assertions. The service is copied into ``.cache/``
before it is edited; every image the benchmark tags is removed at the end.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from containerlab import config, engine, layers

GOOD_ORDER_GOAL = 0.05  # good-order rebuild <= 5 % of the cold build
FLOOR_GOAL = 1.15  # multi-stage <= 1.15 x (slim base + runtime dependencies)
FULL_GOAL = 4.0  # multi-stage at least 4 x smaller than the full-base build


def edit_code(context: Path) -> None:
    """A code-only edit: append a unique comment to the API module."""
    api = context / "src" / "customer_value" / "api.py"
    api.write_text(api.read_text(encoding="utf-8") + f"\n# benchmark edit {uuid.uuid4().hex}\n", encoding="utf-8")


def verdict(ok: bool) -> str:
    return "meets the goal" if ok else "MISSES the goal"


def main() -> int:
    engine.require_engine()
    run = uuid.uuid4().hex[:8]
    tags: list[str] = []

    def tag(variant: str) -> str:
        tags.append(f"cl-cache-bench-{run}:{variant}")
        return tags[-1]

    workdir = config.CACHE_DIR / "bench" / run
    context = workdir / "customer-value"
    shutil.copytree(config.SERVICE_DIR, context)
    bad_order = context / "Dockerfile.bad-order"
    try:
        print("Building (cold, then code edits with good and bad order; then full, slim, multi-stage) ...",
              flush=True)
        cold = layers.build(context, tag=tag("cold"), no_cache=True)
        edit_code(context)
        good = layers.build(context, tag=tag("good-order"), previous=cold.image)

        bad_first = layers.build(context, tag=tag("bad-order-1"), dockerfile=bad_order)
        edit_code(context)
        bad = layers.build(context, tag=tag("bad-order-2"), dockerfile=bad_order, previous=bad_first.image)

        full = layers.build(context, tag=tag("full"), build_args={"BASE_IMAGE": config.PYTHON_FULL_IMAGE})
        slim = good
        multi = layers.build(context, tag=tag("multistage"), dockerfile=context / "Dockerfile.multistage")

        base_bytes = engine.image_size(config.PYTHON_SLIM_IMAGE)
        deps_bytes = layers.step_size(slim.image, "pip install")
        floor = base_bytes + deps_bytes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        layers.remove_images(tags)

    def mb(n: int) -> str:
        return f"{n / 1e6:8.1f} MB"

    reused = sum(s.reused for s in good.steps), len(good.steps)
    print()
    print("Build wall time (seconds)")
    print(f"  cold build (--no-cache)            {cold.seconds:8.1f} s")
    print(f"  code edit, good order              {good.seconds:8.1f} s   {good.seconds / cold.seconds:6.1%} of cold"
          f"   ({reused[0]}/{reused[1]} steps reused)")
    print(f"  code edit, bad order               {bad.seconds:8.1f} s   {bad.seconds / cold.seconds:6.1%} of cold"
          f"   ({sum(s.reused for s in bad.steps)}/{len(bad.steps)} steps reused)")
    print(f"  -> goal: good order <= {GOOD_ORDER_GOAL:.0%} of cold: "
          f"{verdict(good.seconds <= GOOD_ORDER_GOAL * cold.seconds)}")
    print()
    print("Image size (bytes as the engine reports them, uncompressed)")
    print(f"  {'full base (' + config.PYTHON_FULL_IMAGE + ')':<35}{mb(full.size_bytes)}   "
          f"{full.size_bytes / multi.size_bytes:5.2f} x multi-stage")
    print(f"  {'slim base (' + config.PYTHON_SLIM_IMAGE + ')':<35}{mb(slim.size_bytes)}   "
          f"{slim.size_bytes / multi.size_bytes:5.2f} x multi-stage")
    print(f"  multi-stage                        {mb(multi.size_bytes)}")
    print(f"  full / slim                        {full.size_bytes / slim.size_bytes:8.2f} x")
    print()
    print("Floor: slim base + installed runtime dependencies")
    print(f"  slim base image                    {mb(base_bytes)}")
    print(f"  dependencies (pip install layer)   {mb(deps_bytes)}")
    print(f"  floor                              {mb(floor)}")
    print(f"  multi-stage / floor                {multi.size_bytes / floor:8.2f} x")
    print(f"  -> goal: multi-stage <= {FLOOR_GOAL} x floor: {verdict(multi.size_bytes <= FLOOR_GOAL * floor)}")
    print(f"  -> goal: full-base build >= {FULL_GOAL:.0f} x multi-stage: "
          f"{verdict(full.size_bytes >= FULL_GOAL * multi.size_bytes)}")
    standin = [name for name in (config.PYTHON_FULL_IMAGE, config.PYTHON_SLIM_IMAGE)
               if config.STANDIN_LABEL in ((engine.image(name).labels or {}) if engine.image(name) else {})]
    if standin:
        print(f"\n(Base images {', '.join(standin)} are local stand-ins built from Debian packages,"
              " not the official images.)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (engine.EngineError, layers.LayerError) as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        sys.exit(1)
