"""The registry of exercises: every exercise module declares one, found in order, with its notebook's cells."""

from __future__ import annotations

import dataclasses

import pytest

from containerlab import config, exercises
from containerlab.checks import conceptual, registry
from containerlab.checks.submission import Submission


def test_every_exercise_notebook_has_its_module_in_order() -> None:
    """Is there one exercise per source notebook, in the order of their numbers, each named by its module?"""
    notebooks = sorted(p.name for p in (exercises.SOLUTIONS_DIR / exercises.ASSIGNMENT).glob("ex*.ipynb"))
    found = registry.exercises()
    assert [e.key for e in found] == [f"ex{n}" for n in range(1, len(found) + 1)]
    assert sorted(e.notebook for e in found) == notebooks
    assert all(e.notebook.startswith(f"{e.key}-") for e in found)


def test_answer_files_come_from_the_source_notebooks_writefile_cells() -> None:
    """Are an exercise's answer files and cells the %%writefile cells of its source notebook?"""
    assert registry.exercise("ex3").answers == {"ex3.Dockerfile": "ex3-dockerfile", "ex3-run.sh": "ex3-run-command"}
    assert registry.exercise("ex4").answers == {}


def test_engine_objects_are_named_by_student_exercise_and_grader() -> None:
    """Do the image tags and stack names an exercise leaves name the student, the exercise and this grader?"""
    assert registry.exercise("ex1").image_tag("alice-1a2b") == f"cl-ex-grade-alice-1a2b-ex1:{config.INSTANCE}"
    assert registry.exercise("ex6").stack_project("alice-1a2b") == f"cl-ex-grade-{config.INSTANCE}-alice-1a2b-ex6"
    assert [e.key for e in registry.exercises() if e.image] == ["ex1", "ex2", "ex3"]
    assert [e.key for e in registry.exercises() if e.stack] == ["ex6"]


def test_an_unknown_exercise_is_named_with_the_known_ones() -> None:
    """Does asking for an exercise that is not there say which ones are?"""
    with pytest.raises(registry.RegistryError, match="ex1"):
        registry.exercise("ex9")


def test_a_module_that_declares_another_exercise_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Is an exercise module whose SPEC carries another key refused instead of graded under the wrong name?"""
    from containerlab.checks import ex4

    monkeypatch.setattr(ex4, "SPEC", dataclasses.replace(ex4.SPEC, key="ex5"))
    registry.exercises.cache_clear()
    try:
        with pytest.raises(registry.RegistryError, match="ex4"):
            registry.exercises()
    finally:
        registry.exercises.cache_clear()


@pytest.mark.parametrize(("key", "grade_id", "points"), [("ex3", "ex3-answer", 3), ("ex4", "ex4-answer", 4),
                                                         ("ex5", "ex5-answer", 4)])
def test_free_text_points_are_the_source_notebooks(key: str, grade_id: str, points: int, tmp_path) -> None:
    """Does a free-text answer's message name the points its cell carries in the source notebook?"""
    exercise = registry.exercise(key)
    checked = conceptual.answered(Submission(exercise, exercise.source, tmp_path, "alice"), grade_id)
    assert checked.results[0].passed and checked.results[0].message.endswith(f"({points} points).")


def test_a_free_text_notebook_that_cannot_be_read_is_the_exercises_problem(tmp_path) -> None:
    """Is a free-text exercise whose notebook is missing graded 0 and recorded as a problem, naming the notebook?"""
    exercise = registry.exercise("ex5")
    checked = exercise.grade(Submission(exercise, tmp_path / exercise.notebook, tmp_path, "alice"))
    assert not checked.results[0].passed
    assert exercise.problem(checked).startswith(f"There is no notebook {exercise.notebook}")
    assert registry.exercise("ex1").problem(checked) == ""
