"""Released notebooks in a classroom: no jupytext pairing, and the course kernel's metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from containerlab import exercises
from containerlab.checks import registry

RELEASED = sorted((exercises.EXERCISES_DIR / exercises.ASSIGNMENT).glob("*.ipynb"))


def test_release_metadata_strips_the_pairing_and_keeps_the_cells(tmp_path: Path) -> None:
    """Does the release step drop the jupytext metadata, set the course kernel's, and leave the cells alone?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%writefile ex1.Dockerfile\nFROM x")])
    nb.metadata = {"jupytext": {"formats": "ipynb,md:myst"},
                   "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    path = tmp_path / "ex.ipynb"
    nbformat.write(nb, path)
    exercises.release_metadata(path)
    released = nbformat.read(path, as_version=4)
    assert "jupytext" not in released.metadata
    assert released.metadata["kernelspec"] == exercises.course_kernel_metadata()["kernelspec"]
    assert released.metadata["language_info"]["name"] == "python"
    assert released.metadata["language_info"]["version"].count(".") == 2
    assert [c.source for c in released.cells] == [c.source for c in nb.cells]


@pytest.mark.slow
def test_generated_student_versions_carry_no_pairing() -> None:
    """Does `exercises.generate` (nbgrader, then the release step) give notebooks without jupytext metadata?"""
    course = exercises.scratch_course()
    try:
        generated = exercises.generate(course)
        notebooks = sorted(generated.glob("*.ipynb"))
        assert [n.name for n in notebooks] == sorted(e.notebook for e in registry.exercises())
        for notebook in notebooks:
            metadata = nbformat.read(notebook, as_version=4).metadata
            assert "jupytext" not in metadata, notebook.name
            assert metadata["kernelspec"]["name"] == "python3"
    finally:
        shutil.rmtree(course, ignore_errors=True)


@pytest.mark.parametrize("notebook", RELEASED, ids=lambda p: p.name)
def test_committed_student_versions_carry_no_pairing(notebook: Path) -> None:
    """Is each committed student notebook free of jupytext pairing (saving it writes no .md beside it)?"""
    assert "jupytext" not in nbformat.read(notebook, as_version=4).metadata
