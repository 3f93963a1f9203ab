"""checks.cache: a rebuild after a code-only edit, with the builder faked (what each rebuild reused)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from containerlab import engine, layers
from containerlab.checks import cache
from containerlab.checks import dockerfile as df

DEPS = "RUN pip install --no-cache-dir -r requirements.txt"


def _step(instruction: str, layer: str, *, reused: bool, size: int, index: int) -> layers.Step:
    return layers.Step(index=index, instruction=instruction, size_bytes=size, layer=layer, created=0, reused=reused)


def _rebuilds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *reused: bool,
              code_first: bool = False) -> cache.EditedRebuild:
    """Run rebuild_after_edit where rebuild N reuses the dependency step when ``reused[N]`` (a new layer else).

    With ``code_first`` the Dockerfile copies the code before the install; a rebuild past the
    ones ``reused`` lists fails the test (StopIteration).
    """
    context = tmp_path / "context"
    (context / "src").mkdir(parents=True)
    (context / "src" / "app.py").write_text("print('hi')\n")
    answers = iter(reused)

    def fake_build(where, *, tag, dockerfile, fast_export):  # noqa: ANN001, ANN202
        again = next(answers)
        deps = _step(DEPS, "sha256:first" if again else f"sha256:new-{tag}", reused=again, size=300_000_000,
                     index=2 if code_first else 1)
        code = _step("COPY src/ src/", f"sha256:code-{tag}", reused=False, size=1_000, index=1 if code_first else 2)
        return SimpleNamespace(steps=[code, deps] if code_first else [deps, code])

    monkeypatch.setattr(layers, "build", fake_build)
    monkeypatch.setattr(engine, "image_layers", lambda image: ["sha256:base", "sha256:first", "sha256:code"])
    monkeypatch.setattr(engine, "remove_image", lambda tag: None)
    steps = ["COPY src/ src/", DEPS] if code_first else [DEPS, "COPY src/ src/"]
    (tmp_path / "Dockerfile").write_text("FROM python:3.13-slim\nCOPY requirements.txt .\n" + "\n".join(steps) + "\n")
    parsed = df.read(tmp_path / "Dockerfile")
    return cache.rebuild_after_edit("cl-test:first", parsed, context, "src/app.py")


def test_a_step_reused_at_once_needs_no_second_edit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Reused after the first edit: one rebuild, outcome reused."""
    assert _rebuilds(monkeypatch, tmp_path, True).outcome == cache.REUSED


def test_a_step_that_ran_again_once_gets_a_second_edit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ran again after the first edit (another build of the step on a shared engine), reused after the second."""
    found = _rebuilds(monkeypatch, tmp_path, False, True)
    assert found.outcome == cache.REUSED and found.reused
    assert found.rebuilt == ["COPY src/ src/"]


def test_a_step_that_runs_again_after_every_edit_is_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ran again after both edits (the code is copied before the install): outcome rebuilt."""
    found = _rebuilds(monkeypatch, tmp_path, False, False)
    assert found.outcome == cache.REBUILT and not found.reused


def test_an_install_below_the_edited_code_is_rebuilt_after_one_edit(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """The code is copied before the install: the edit explains the rerun, so no second rebuild is made."""
    found = _rebuilds(monkeypatch, tmp_path, False, code_first=True)
    assert found.outcome == cache.REBUILT and not found.reused
    assert found.rebuilt == ["COPY src/ src/", DEPS]
