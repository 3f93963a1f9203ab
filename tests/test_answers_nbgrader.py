"""`nbgrader autograde` and `containerlab grade` grade the same answer.

The answer is the copy the student ran last, built with the student's .dockerignore.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest

from containerlab import engine, exercises
from containerlab.checks import ex1, registry, submission

#: Exercise 1's official solution (solutions/ch14/ex1.Dockerfile), nbgrader's markers taken out.
SOLUTION = "".join(line for line in (submission.SOLUTIONS / "ex1.Dockerfile").read_text().splitlines(keepends=True)
                   if not line.startswith("### "))
#: The solution with the code copied by ``COPY . .``: right only with a .dockerignore that keeps the data out.
COPY_ALL = SOLUTION.replace("COPY src/ src/", "COPY . .")
#: What the student's .dockerignore says.
DOCKERIGNORE = "**/__pycache__\n**/*.pyc\ndata/\n.env\n"


@pytest.mark.docker
@pytest.mark.slow
def test_autograde_and_grade_take_the_copy_run_last_with_the_students_dockerignore(tmp_path: Path) -> None:
    """With a working copy run last above a broken copy, and the student's .dockerignore, do both graders give 10/10?"""
    from nbgrader.api import Gradebook

    assert "COPY . ." in COPY_ALL
    course = exercises.scratch_course()
    before = engine.image(ex1.DEFAULT_TAG)
    graded = submission.Submission(registry.exercise("ex1"), Path("ex1-write-a-dockerfile.ipynb"), tmp_path / "work",
                                   key=f"copier-{uuid.uuid4().hex[:10]}", build_timeout=600,
                                   cases=submission.hidden_cases())
    try:
        release = exercises.generate(course)
        folder = course / "submitted" / "copier" / "ch14"
        shutil.copytree(release, folder)
        (folder / "service" / ".dockerignore").write_text(DOCKERIGNORE)
        path = folder / "ex1-write-a-dockerfile.ipynb"
        nb = nbformat.read(path, as_version=4)
        index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id")
                     == "ex1-dockerfile")
        working = nb.cells[index]
        working.source, working.execution_count = f"%%writefile ex1.Dockerfile\n{COPY_ALL}", 7
        broken = copy.deepcopy(working)  # a copy keeps the nbgrader metadata, as in JupyterLab
        broken.id = "copied-cell"
        broken.source, broken.execution_count = "%%writefile ex1.Dockerfile\nFROM python:3.13-slim\nRUN exit 3\n", 3
        nb.cells.insert(index + 1, broken)
        nbformat.write(nb, path)

        # containerlab grade
        graded = dataclasses.replace(graded, notebook=path)
        graded.work.mkdir()
        batch = graded.exercise.grade(graded)
        assert batch.score == sum(ex1.POINTS.values()), [(r.name, r.message) for r in batch if not r.passed]
        assert any("2 cells" in n for n in batch.notes)

        # nbgrader autograde
        exercises.nbgrader(["db", "student", "add", "copier"], course_dir=course)
        exercises.nbgrader(["autograde", "ch14", "--notebook=ex1-write-a-dockerfile"], course_dir=course)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            recorded = gb.find_submission_notebook("ex1-write-a-dockerfile", "ch14", "copier")
            assert recorded.code_score == batch.score
        autograded = course / "autograded" / "copier" / "ch14"
        assert (autograded / "service" / ".dockerignore").read_text() == DOCKERIGNORE
        assert "# Not run by the grader" in (autograded / "ex1-write-a-dockerfile.ipynb").read_text()
    finally:
        shutil.rmtree(course, ignore_errors=True)
        engine.remove_image(graded.tag)
        after = engine.image(ex1.DEFAULT_TAG)
        if after is not None and (before is None or after.id != before.id):
            engine.remove_image(ex1.DEFAULT_TAG)
