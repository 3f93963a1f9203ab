"""No free points, read without an engine: what is withheld, and what counts as an improvement (issue 9, section 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from containerlab.checks import CheckResult, counts_once, dockerfile, ex2

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_passed_check_is_withheld_with_its_reason() -> None:
    """Does a passed check fail once withheld, saying what it counts once, and keep what was measured?"""
    built = CheckResult("builds", "The image builds", True, 2, "Built x in 3.0 s.")
    held = counts_once(built, "a container of the image answers GET /health", "Make the service answer first.")
    assert not held.passed and held.awarded == 0
    assert held.message == "Counts once a container of the image answers GET /health. Built x in 3.0 s."
    assert held.hint == "Make the service answer first."


def test_a_failed_check_keeps_its_own_message() -> None:
    """Does a check that failed anyway keep its own message and hint (they name the real cause)?"""
    failed = CheckResult("health", "answers", False, 2, "The server listens on 127.0.0.1:80 only.", "Use 0.0.0.0.")
    assert counts_once(failed, "anything", "other") is failed


@pytest.mark.parametrize("fixture,expected", [
    ("ex1/passes_all", False),
    ("ex2/passes_all", False),
    ("ex2/passes_textbook_multistage_venv", False),
    ("ex2/fails_code_before_deps", True),
    ("ex2/fails_code_before_deps_multistage", True),
    ("ex1/fails_data_copied", False),  # COPY . . after the install: the install is still reused
])
def test_code_before_deps_is_read_from_the_dockerfile(fixture: str, expected: bool) -> None:
    """Is a Dockerfile that copies code before installing told apart from one that copies only requirements?"""
    assert dockerfile.code_before_deps(dockerfile.read(FIXTURES / f"{fixture}.dockerfile")) is expected


def test_ex1_reinstalls_needs_a_readable_dockerfile(tmp_path: Path) -> None:
    """Without an exercise-1 Dockerfile, is no order improvement assumed (only size then counts)?"""
    assert ex2.ex1_reinstalls(tmp_path / "ex1.Dockerfile") is False
    assert ex2.ex1_reinstalls(FIXTURES / "ex2" / "fails_code_before_deps.dockerfile") is True


def test_a_literal_platform_pin_is_found() -> None:
    """Is FROM --platform=linux/amd64 found, and $BUILDPLATFORM (the multi-platform idiom) left alone?"""
    pinned = dockerfile.read(FIXTURES / "ex1" / "passes_platform_pinned_note.dockerfile")
    assert [p for _, p in dockerfile.pinned_platforms(pinned)] == ["linux/amd64"]
    idiom = dockerfile.Dockerfile(Path("x"), "", tuple(dockerfile.parse("FROM --platform=$BUILDPLATFORM python:3.13-slim\n")), ())
    assert dockerfile.pinned_platforms(idiom) == []


def test_margin_sits_between_the_measured_routes() -> None:
    """Does the margin lie between what the venv-only route measured (+2 %) and what dropping tests/ saved (-20 %)?"""
    assert 0.02 < ex2.MARGIN < 0.196
