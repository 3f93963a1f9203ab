"""Every Dockerfile in the repository passes hadolint with the one config file, .hadolint.yaml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from containerlab import config

HADOLINT = Path(sys.executable).with_name("hadolint")
HADOLINT_CONFIG = config.ROOT / ".hadolint.yaml"
SKIP_DIRS = {".git", ".venv", "_build", ".cache", "node_modules", ".pytest_cache"}
#: Submissions that are wrong on purpose (the graders' test inputs), not the course's Dockerfiles.
SUBMISSION_FIXTURES = Path("tests") / "fixtures"


def repo_dockerfiles() -> list[Path]:
    """Every file named ``Dockerfile``, ``Dockerfile.<variant>`` or ``<name>.dockerfile`` in the repository."""
    found = []
    for path in config.ROOT.rglob("*"):
        relative = path.relative_to(config.ROOT)
        if any(part in SKIP_DIRS for part in relative.parts) or relative.is_relative_to(SUBMISSION_FIXTURES):
            continue
        if path.is_file() and (
            path.name == "Dockerfile" or path.name.startswith("Dockerfile.") or path.name.endswith(".dockerfile")
        ):
            found.append(path)
    return sorted(found)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--config", str(HADOLINT_CONFIG), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_sweep_finds_the_known_dockerfiles():
    """Does the sweep find the service's Dockerfiles and the stand-ins (so the lint tests cover them)?"""
    names = {p.relative_to(config.ROOT).as_posix() for p in repo_dockerfiles()}
    assert {
        "docker/customer-value/Dockerfile",
        "docker/customer-value/Dockerfile.bad-order",
        "docker/customer-value/Dockerfile.multistage",
        "docker/standins/python-full/Dockerfile",
    } <= names


@pytest.mark.parametrize("dockerfile", repo_dockerfiles(), ids=lambda p: p.relative_to(config.ROOT).as_posix())
def test_dockerfile_passes_hadolint(dockerfile: Path):
    """Does this Dockerfile pass hadolint at the threshold set in .hadolint.yaml?"""
    result = hadolint(dockerfile)
    assert result.returncode == 0, f"hadolint findings in {dockerfile}:\n{result.stdout}{result.stderr}"


def test_hadolint_config_flags_a_bad_dockerfile():
    """Does hadolint with our config still fail a Dockerfile with real mistakes (so the sweep can fail)?"""
    result = hadolint(Path(__file__).parent / "fixtures" / "fails_lint.dockerfile.txt")
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3025"):  # :latest tag, `cd` in RUN, shell-form CMD
        assert rule in result.stdout


def test_every_ignored_rule_is_justified():
    """Does .hadolint.yaml explain, in a comment, each rule it switches off?"""
    text = HADOLINT_CONFIG.read_text(encoding="utf-8")
    settings = yaml.safe_load(text)
    comments = "\n".join(line for line in text.splitlines() if line.strip().startswith("#"))
    ignored = settings.get("ignored") or []
    for rule in ignored:
        assert re.search(rf"\b{rule}\b", comments), f"{rule} is ignored without a comment saying why"
    assert settings.get("failure-threshold") in {"info", "style", "warning", "error"}
