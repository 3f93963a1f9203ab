"""Benchmark for exercise 2 and section 14.3.2: the image size of every route the book names.

Run from the repository root::

    .venv/bin/python benchmarks/sizes.py

Each route is a Dockerfile for the same service (``docker/customer-value``),
built on this machine's engine, one after the other, and measured side by side:
its size as the engine reports it (``docker image inspect``, uncompressed), its
reduction against the course's single-stage image (the ``smaller-than-reference``
check of exercise 2), and whether a container still answers ``/health`` and
``/predict``. The margin exercise 2 asks for (``ex2.MARGIN``) is printed beside
the figures: a route the book teaches for shrinking must clear it, the routes
that do not shrink must not.

What the routes show (issue 9, section 5): a virtual environment copied from a
builder stage is not smaller by itself; the venv carries its own pip and
setuptools, next to the base image's. What saves bytes is leaving out what the
service never runs: pip itself, setuptools, and the packages' bundled test
suites, deleted in the step that installs them (a later step only hides them).
Every locked dependency is a wheel for this Python and platform, so the slim
builder stage installs them without compilers: the full image adds nothing.

Every image the benchmark tags is removed at the end.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from containerlab import config, engine
from containerlab.checks import ex2, service

CMD = 'CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]'
#: Deletes the packages' own test suites wherever pip put them (site-packages or Debian's dist-packages).
DROP_TESTS = r'find / -xdev -depth -type d -name tests -path "*-packages/*" -exec rm -rf {} +'


@dataclass(frozen=True)
class Route:
    """One way to write the Dockerfile: a label, the file, and whether the book offers it for shrinking."""

    label: str
    dockerfile: str
    shrinks: bool


def _read(name: str) -> str:
    return (config.SERVICE_DIR / name).read_text(encoding="utf-8")


def _venv_copied(builder: str, *, tidy: str = "") -> str:
    """A two-stage Dockerfile: a venv installed in a stage from ``builder`` (``tidy`` ends its install
    step), copied into a slim final stage."""
    return f"""FROM {builder} AS builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt{tidy}

FROM python:3.13-slim
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY src/ src/
{CMD}
"""


ROUTES: tuple[Route, ...] = (
    Route("single-stage slim, pip --no-cache-dir (the course's Dockerfile)", _read("Dockerfile"), False),
    Route("single-stage slim, pip keeps its cache", f"""FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY src/ src/
{CMD}
""", False),
    Route("single-stage slim, pip cache mount (Dockerfile.pip-cache)", _read("Dockerfile.pip-cache"), False),
    Route("textbook multi-stage: venv in a slim builder, copied", _venv_copied("python:3.13-slim"), False),
    Route("textbook multi-stage: venv in a full builder, copied", _venv_copied("python:3.13"), False),
    Route("multi-stage venv, pip and setuptools removed in the builder",
          _venv_copied("python:3.13-slim", tidy=" \\\n    && pip uninstall --yes pip setuptools"), False),
    Route("multi-stage venv, pip and test folders removed (the ex2 solution)",
          (config.ROOT / "solutions" / "ch14" / "ex2.Dockerfile").read_text(encoding="utf-8"), True),
    Route("multi-stage venv, full builder, pip and tests removed (Dockerfile.multistage)",
          _read("Dockerfile.multistage"), True),
    Route("single-stage slim, test folders removed in the install step", f"""FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \\
    && {DROP_TESTS}
COPY src/ src/
{CMD}
""", True),
    Route("single-stage slim, test folders removed in a later step", f"""FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN {DROP_TESTS}
COPY src/ src/
{CMD}
""", False),
)


def main() -> int:
    engine.require_engine()
    run = uuid.uuid4().hex[:8]
    workdir = config.CACHE_DIR / "bench" / f"sizes-{run}"
    context = workdir / "customer-value"
    shutil.copytree(config.SERVICE_DIR, context)
    tags: list[str] = []
    rows: list[tuple[Route, int, float, bool]] = []
    pip_cache = 0
    try:
        for number, route in enumerate(ROUTES, start=1):
            tag = f"cl-sizes-bench-{run}:route{number}"
            tags.append(tag)
            dockerfile = workdir / f"route{number}.Dockerfile"
            dockerfile.write_text(route.dockerfile, encoding="utf-8")
            print(f"[{number}/{len(ROUTES)}] {route.label} ...", flush=True)
            built = engine.build(context, tag=tag, dockerfile=dockerfile)
            probe = service.probe_service(tag, service.VISIBLE_CASES)
            rows.append((route, engine.image_size(tag), built.seconds, probe.healthy and not probe.wrong_answers()))
            if "keeps its cache" in route.label:
                cache = engine.exec_output(tag, ["sh", "-c", "du -sb /root/.cache/pip 2>/dev/null || echo 0"])
                pip_cache = int(cache.split()[0] or 0)
    finally:
        for tag in tags:
            engine.remove_image(tag)
        shutil.rmtree(workdir, ignore_errors=True)

    reference = rows[0][1]
    print()
    print(f"Image sizes of the service, every route (MB = 10**6 bytes); ex2 asks for >= {ex2.MARGIN:.0%} "
          "smaller than the single-stage image")
    print(f"  {'route':<80} {'size':>9} {'change':>8} {'build':>7}  answers  clears margin")
    misses = 0
    for route, size, seconds, answers in rows:
        shrink = (reference - size) / reference
        clears = shrink >= ex2.MARGIN
        misses += clears != route.shrinks
        print(f"  {route.label:<80} {size / 1e6:7.1f} MB {-shrink:+7.1%} {seconds:6.1f}s  "
              f"{'yes' if answers else 'NO':<7}  {'yes' if clears else 'no'}"
              f"{'' if clears == route.shrinks else '   <- not what the book says'}")
    base = engine.image_size(config.PYTHON_SLIM_IMAGE)
    print(f"\n  slim base image alone: {base / 1e6:.1f} MB")
    print(f"  pip's own cache left in the image without --no-cache-dir: {pip_cache / 1e6:.1f} MB"
          + ("  (pip stored nothing here: the network's proxy marks downloads as not cacheable)"
             if pip_cache < 1e6 else ""))
    standin = config.STANDIN_LABEL in ((engine.image(config.PYTHON_SLIM_IMAGE).labels or {})
                                       if engine.image(config.PYTHON_SLIM_IMAGE) else {})
    if standin:
        print(f"  ({config.PYTHON_SLIM_IMAGE} is a local stand-in built from Debian packages, not the official image.)")
    return 1 if misses else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except engine.EngineError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        sys.exit(1)
