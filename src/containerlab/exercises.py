"""The exercise notebooks and nbgrader: generate the student versions, compare them.

The course directory of nbgrader is the repository root (``nbgrader_config.py``
there): source versions in ``solutions/ch14``, student versions in
``exercises/ch14``. :func:`generate` runs nbgrader's own ``generate_assignment``
in a scratch course directory, so the repository's gradebook is never touched.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import config

ASSIGNMENT = "ch14"
SOLUTIONS_DIR: Path = config.ROOT / "solutions"
EXERCISES_DIR: Path = config.ROOT / "exercises"
NBGRADER_CONFIG: Path = config.ROOT / "nbgrader_config.py"
#: The exercises' copy of the service; its code and lockfile come from the course's service.
SERVICE_COPY: Path = SOLUTIONS_DIR / ASSIGNMENT / "service"
#: What the copy takes over from ``docker/customer-value`` (the rest, its data and .env, is the exercise's own).
SERVICE_SHARED = ("src", "requirements.txt")


class NbgraderFailed(RuntimeError):
    """An nbgrader command failed; the message holds the end of its output."""


def nbgrader(args: list[str], *, course_dir: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader ARGS`` in ``course_dir`` (which holds an ``nbgrader_config.py``).

    The venv's ``bin`` folder goes first on ``PATH`` (nbgrader starts ``alembic``
    and kernels from there), and Jupyter's folders stay inside the project.

    Args:
        args: e.g. ``["autograde", "ch14"]``.
        course_dir: the nbgrader course directory.
        timeout: seconds after which the command is stopped.

    Returns:
        The finished process (output merged into ``stdout``).

    Raises:
        NbgraderFailed: nbgrader exited non-zero or took longer than ``timeout``.
    """
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, **config.isolated_environment(), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        proc = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=course_dir, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NbgraderFailed(f"`nbgrader {' '.join(args)}` took more than {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise NbgraderFailed(f"`nbgrader {' '.join(args)}` failed in {course_dir}:\n{tail}")
    return proc


def scratch_course(parent: Path | None = None) -> Path:
    """Make a fresh nbgrader course directory: the course's config and a copy of the sources.

    Args:
        parent: where to make it (default: the project's ``.cache`` folder).

    Returns:
        The course directory, holding ``nbgrader_config.py`` and ``solutions/ch14``.
    """
    parent = parent or config.CACHE_DIR
    parent.mkdir(parents=True, exist_ok=True)
    course = Path(tempfile.mkdtemp(prefix="cl-ex-course-", dir=parent))
    shutil.copy(NBGRADER_CONFIG, course / "nbgrader_config.py")
    shutil.copytree(SOLUTIONS_DIR / ASSIGNMENT, course / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return course


def generate(course: Path | None = None) -> Path:
    """Generate the student versions with ``nbgrader generate_assignment`` in a scratch course.

    Returns:
        The generated assignment folder (``<course>/exercises/ch14``).

    Raises:
        NbgraderFailed: nbgrader failed.
    """
    course = course or scratch_course()
    nbgrader(["generate_assignment", ASSIGNMENT, "--force"], course_dir=course)
    released = course / "exercises" / ASSIGNMENT
    for notebook in sorted(released.rglob("*.ipynb")):
        release_metadata(notebook)
    return released


def course_kernel_metadata() -> dict[str, dict[str, object]]:
    """The ``kernelspec`` and ``language_info`` that the course environment's kernel reports.

    JupyterLab writes both into a notebook when its kernel starts; when they differ
    from what the file holds, the notebook is marked modified the moment it opens,
    and closing it unchanged asks to save. Released notebooks carry these values.

    Returns:
        ``{"kernelspec": {...}, "language_info": {...}}`` of ipykernel's ``python3``
        kernel in this environment (display name from its kernel spec, language info
        from ``IPythonKernel.language_info``, which holds this Python's version).
    """
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        display_name = KernelSpecManager().get_kernel_spec("python3").display_name
    except NoSuchKernel:
        display_name = "Python 3 (ipykernel)"
    return {"kernelspec": {"display_name": display_name, "language": "python", "name": "python3"},
            "language_info": dict(IPythonKernel.language_info)}


def release_metadata(notebook: Path) -> None:
    """Make a released notebook's metadata what students need (rewrites ``notebook`` in place).

    - No ``jupytext`` metadata: with it, jupytext's contents manager (on in the course
      environment) pairs the notebook with a ``.md`` file that saving writes beside it,
      and a fresh copy of the notebook then clashes with that older text file
      (mwouts/jupytext#157). The sources in ``solutions/`` keep their pairing.
    - The course kernel's ``kernelspec`` and ``language_info``
      (:func:`course_kernel_metadata`), so that opening it does not mark it modified.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.pop("jupytext", None)
    nb.metadata.update(course_kernel_metadata())
    nbformat.write(nb, notebook)


def sync_service_copy() -> None:
    """Refresh the exercises' service code and lockfile from ``docker/customer-value``.

    The service students package is the chapter's own service; copying it here
    (instead of editing a second version by hand) keeps the two from drifting.
    """
    for name in SERVICE_SHARED:
        source, target = config.SERVICE_DIR / name, SERVICE_COPY / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)


def write_student_versions() -> Path:
    """Regenerate ``exercises/ch14`` from ``solutions/ch14`` (replacing what is there),
    after refreshing the service copy with :func:`sync_service_copy`.

    Returns:
        The written folder.
    """
    sync_service_copy()
    course = scratch_course()
    try:
        generated = generate(course)
        target = EXERCISES_DIR / ASSIGNMENT
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)
    finally:
        shutil.rmtree(course, ignore_errors=True)
    return target


def differences(generated: Path, committed: Path) -> list[str]:
    """Compare two assignment folders file by file.

    Returns:
        One line per difference (``"only in generated: x"``, ``"differs: y"``); empty when in sync.
    """
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}

    mine, theirs = files(generated), files(committed)
    out = [f"only in generated: {f}" for f in sorted(mine - theirs)]
    out += [f"only in committed: {f}" for f in sorted(theirs - mine)]
    out += [f"differs: {f}" for f in sorted(mine & theirs)
            if not filecmp.cmp(generated / f, committed / f, shallow=False)]
    return out
