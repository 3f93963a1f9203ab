"""Exercise 2's checks against Dockerfiles named by outcome, measured on the real engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from containerlab import config, engine
from containerlab.checks import ex1, ex2

FIXTURES = Path(__file__).parent / "fixtures" / "ex2"
SERVICE = config.ROOT / "solutions" / "ch14" / "service"

EXPECTED: dict[str, tuple[set[str], dict[str, str]]] = {
    "passes_all": (set(), {}),
    "fails_code_before_deps": ({"deps-reused", "smaller-than-ex1", "smaller-than-reference"},
                               {"deps-reused": "before you copy the code"}),
    "fails_not_smaller": ({"smaller-than-ex1", "smaller-than-reference"},
                          {"smaller-than-ex1": "multi-stage"}),
}


@pytest.fixture(scope="module")
def ex1_image():
    """The exercise-1 image of a student who passed exercise 1 (removed after the module)."""
    tag = f"cl-ex-test-{uuid.uuid4().hex[:10]}:ex1"
    built = ex1.check(config.ROOT / "tests" / "fixtures" / "ex1" / "passes_all.dockerfile", SERVICE, tag=tag)
    assert built.get("builds").passed
    yield tag
    engine.remove_image(tag)


@pytest.fixture
def student_tag():
    """A unique tag for the improved image; removed after the test, pass or fail."""
    tag = f"cl-ex-test-{uuid.uuid4().hex[:10]}:ex2"
    yield tag
    engine.remove_image(tag)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_fails_exactly_its_checks(fixture: str, ex1_image: str, student_tag: str) -> None:
    """Does each exercise-2 fixture fail exactly the checks its name says, with the intended hint?"""
    must_fail, words = EXPECTED[fixture]
    res = ex2.check(FIXTURES / f"{fixture}.dockerfile", SERVICE, tag=student_tag, ex1_image=ex1_image)
    assert {r.name for r in res if not r.passed} == must_fail, [(r.name, r.message) for r in res]
    for name, word in words.items():
        assert word in res.get(name).hint
    leftovers = [t for i in engine.client().images.list() for t in i.tags
                 if t.startswith("cl-ex-edited-")]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.slow
def test_reported_reduction_is_compared_with_the_measured_one(ex1_image: str, student_tag: str) -> None:
    """Is a report within the tolerance accepted, and one off by more, or not a number, refused?"""
    res = ex2.check(FIXTURES / "passes_all.dockerfile", SERVICE, tag=student_tag, ex1_image=ex1_image)
    measured = ex2.measured_reduction(student_tag, ex1_image)
    assert measured > 10
    assert ex2.check_report(res, round(measured, 1), ex1_image=ex1_image).get("reported-reduction").passed
    wrong = ex2.check_report(res, measured + 5, ex1_image=ex1_image).get("reported-reduction")
    assert not wrong.passed and "docker image ls" in wrong.hint
    assert not ex2.check_report(res, "a lot", ex1_image=ex1_image).get("reported-reduction").passed
