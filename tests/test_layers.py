"""containerlab.layers: which steps a build reused, what each layer weighs, and the solution Dockerfiles.

Unit tests fake the engine's metadata; the tests marked ``docker`` build real
images on the real engine and call the real service over HTTP. Every image
tag and container they create is removed afterwards, pass or fail.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests

from containerlab import charts, config, engine, layers, notebook

FIXTURES = Path(__file__).parent / "fixtures"
CUSTOMER = {"tenure_months": 30, "orders_last_year": 8, "avg_order_value": 45.5, "support_tickets": 1}


# --------------------------------------------------------------------------- unit tests (no engine)


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        ("RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt # buildkit",
         "RUN pip install --no-cache-dir -r requirements.txt"),
        ("RUN |1 BASE_IMAGE=python:3.13 /bin/sh -c python -m venv /opt/venv # buildkit",
         "RUN python -m venv /opt/venv"),
        ("COPY src/ src/ # buildkit", "COPY src/ src/"),
        ("EXPOSE map[80/tcp:{}]", "EXPOSE 80/tcp"),
        ("/bin/sh -c #(nop)  CMD [\"python3\"]", 'CMD ["python3"]'),
        ("", "(imported file system)"),
    ],
)
def test_tidy_instruction(created_by: str, expected: str):
    """Is a history CreatedBy string turned into the instruction a person wrote?"""
    assert layers.tidy_instruction(created_by) == expected


def test_final_base_follows_build_args_and_stages():
    """Does final_base resolve ARG defaults, --build-arg overrides and FROM <stage>?"""
    folder = _scratch_dir()
    try:
        dockerfile = folder / "Dockerfile"
        dockerfile.write_text(
            "ARG BUILDER_IMAGE=python:3.13\nARG BASE_IMAGE=python:3.13-slim\n"
            "FROM ${BUILDER_IMAGE} AS builder\nRUN true\n"
            "FROM $BASE_IMAGE AS runtime\nRUN true\nFROM runtime\nCMD [\"true\"]\n"
        )
        assert layers.final_base(dockerfile) == "python:3.13-slim"
        assert layers.final_base(dockerfile, {"BASE_IMAGE": "python:3.13"}) == "python:3.13"
        assert layers.final_base(config.SERVICE_DIR / "Dockerfile.multistage") == config.PYTHON_SLIM_IMAGE
        assert layers.final_base(folder / "missing") is None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_reused_layers_counts_only_the_leading_run(monkeypatch):
    """Does reused_layers stop at the first differing layer, even if a later digest matches again?"""
    fake = {"old": ["sha256:a", "sha256:b", "sha256:c", "sha256:d"], "new": ["sha256:a", "sha256:b", "sha256:X", "sha256:d"]}
    monkeypatch.setattr(engine, "image_layers", lambda name: fake[name])
    assert layers.reused_layers("old", "new") == ["sha256:a", "sha256:b"]
    assert layers.reused_layers("new", "new") == fake["new"]


def _fake_image(monkeypatch, images: dict[str, list[tuple[str, int, int, str | None]]]) -> None:
    """Fake engine metadata: image -> [(created_by, created, size, layer digest or None)], oldest first."""

    def history(name):
        return [{"created_by": c, "created": t, "size": s, "comment": ""} for c, t, s, _ in images[name]]

    monkeypatch.setattr(engine, "image_history", history)
    monkeypatch.setattr(engine, "image_layers", lambda name: [d for *_, d in images[name] if d])
    monkeypatch.setattr(engine, "image", lambda name: engine.ImageInfo(id=f"sha256:{name}") if name in images else None)


BASE = [("", 100, 1000, "sha256:base"), ("CMD [\"python3\"]", 100, 0, None)]


def test_steps_compare_with_previous_image(monkeypatch):
    """Are steps reused up to the first changed layer and rebuilt from there, with base steps left out?"""
    old = BASE + [
        ("WORKDIR /app", 200, 0, "sha256:w"),
        ("RUN /bin/sh -c pip install -r requirements.txt # buildkit", 200, 500, "sha256:deps"),
        ("COPY src/ src/ # buildkit", 200, 5, "sha256:code1"),
        ("CMD [\"uvicorn\"]", 200, 0, None),
    ]
    new = old[:4] + [("COPY src/ src/ # buildkit", 300, 6, "sha256:code2"), ("CMD [\"uvicorn\"]", 300, 0, None)]
    _fake_image(monkeypatch, {"base": BASE, "old": old, "new": new})
    steps = layers._steps("new", base="base", previous="old", started=300)
    assert [(s.instruction, s.reused) for s in steps] == [
        ("WORKDIR /app", True),
        ("RUN pip install -r requirements.txt", True),
        ("COPY src/ src/", False),
        ('CMD ["uvicorn"]', False),
    ]
    assert steps[1].layer == "sha256:deps" and steps[1].size_bytes == 500


def test_steps_without_previous_use_creation_times(monkeypatch):
    """Without a previous image, is a step reused exactly when it is older than the build's start?"""
    image = BASE + [("RUN /bin/sh -c pip install x # buildkit", 200, 500, "sha256:deps"),
                    ("COPY src/ src/ # buildkit", 300, 6, "sha256:code")]
    _fake_image(monkeypatch, {"base": BASE, "img": image})
    steps = layers._steps("img", base="base", previous=None, started=300.4)
    assert [s.reused for s in steps] == [True, False]


def test_mismatched_history_and_layers_is_a_clear_error(monkeypatch):
    """When history and RootFS.Layers do not line up, is a LayerError raised instead of a wrong table?"""
    monkeypatch.setattr(engine, "image_history",
                        lambda name: [{"created_by": "COPY a b", "created": 1, "size": 3, "comment": ""}])
    monkeypatch.setattr(engine, "image_layers", lambda name: ["sha256:1", "sha256:2"])
    with pytest.raises(layers.LayerError, match="cannot be matched"):
        layers._entries_with_layers("img")


def test_layer_breakdown_groups_the_base(monkeypatch):
    """Does layer_breakdown sum the base image into one row, and do the shares add up to 1?"""
    image = BASE + [("RUN /bin/sh -c pip install x # buildkit", 200, 3000, "sha256:deps")]
    _fake_image(monkeypatch, {"base": BASE, "img": image})
    frame = layers.layer_breakdown("img", base="base")
    assert list(frame["instruction"]) == ["base image base", "RUN pip install x"]
    assert list(frame["size_bytes"]) == [1000, 3000]
    assert frame["share"].sum() == pytest.approx(1.0)
    assert list(charts.by_category(frame)[["base image", "Python packages"]]) == [1000, 3000]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("docker run python:3.13-slim", "runs `docker build"),
        ("docker build docker/customer-value", "needs a --tag"),
        ("docker build --tag x", "build context"),
        ("docker build --tag x --squash docker/customer-value", "--squash"),
        ("docker build --tag x --build-arg BASE_IMAGE docker/customer-value", "KEY=VALUE"),
    ],
)
def test_build_helper_rejects_commands_it_cannot_run(command: str, message: str):
    """Does the notebook's build() explain what is wrong with a command line, before building anything?"""
    with pytest.raises(notebook.BuildCommandError, match=message):
        notebook.build(command)


# --------------------------------------------------------------------------- real engine


def _scratch_dir() -> Path:
    folder = config.CACHE_DIR / "tests" / uuid.uuid4().hex[:10]
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def service_copy() -> Iterator[Path]:
    """A throwaway copy of the customer-value build context (inside .cache/), removed afterwards."""
    folder = _scratch_dir()
    shutil.copytree(config.SERVICE_DIR, folder / "customer-value")
    yield folder / "customer-value"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tag() -> Iterator[Callable[[str], str]]:
    """Make unique image tags (cl-cache-test-...); every image tagged so is removed afterwards."""
    made: list[str] = []
    prefix = f"cl-cache-test-{uuid.uuid4().hex[:8]}"

    def new(variant: str) -> str:
        made.append(f"{prefix}:{variant}")
        return made[-1]

    yield new
    layers.remove_images(made)


@pytest.fixture
def containers() -> Iterator[list]:
    """Containers a test starts; force-removed afterwards, pass or fail."""
    started: list = []
    yield started
    for container in started:
        engine.remove_container(container)


def edit_code(context: Path) -> None:
    """Change the application code (and nothing else) in a copy of the service."""
    api = context / "src" / "customer_value" / "api.py"
    api.write_text(api.read_text(encoding="utf-8") + f"\n# test edit {uuid.uuid4().hex}\n", encoding="utf-8")


def predict(image_tag: str, started: list) -> float:
    """Run ``image_tag`` on a random host port and return its /predict answer for CUSTOMER."""
    token = f"test-FAKE-{uuid.uuid4().hex[:8]}"
    container = engine.run(image_tag, ports={80: None}, name=f"cl-cache-test-{uuid.uuid4().hex[:10]}",
                           environment={"API_TOKEN": token})
    started.append(container)
    port = engine.host_port(container, 80)
    engine.wait_http(f"http://127.0.0.1:{port}/health", container=container, timeout=90)
    answer = requests.post(f"http://127.0.0.1:{port}/predict", json=CUSTOMER, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    return answer.json()["customer_value"]


def _step(build: layers.MeasuredBuild, starts_with: str) -> layers.Step:
    matches = [s for s in build.steps if s.instruction.startswith(starts_with)]
    assert len(matches) == 1, f"expected one step starting with {starts_with!r} in {build.table()}"
    return matches[0]


@pytest.mark.docker
@pytest.mark.slow
def test_good_order_reuses_everything_up_to_the_dependency_install(service_copy, tag):
    """After a code-only edit, is every layer up to and including `pip install` reused, and the code layer rebuilt?"""
    first = layers.build(service_copy, tag=tag("good-1"))
    edit_code(service_copy)
    second = layers.build(service_copy, tag=tag("good-2"), previous=first.image)

    install = _step(second, "RUN pip install")
    code = _step(second, "COPY src/")
    assert all(step.reused for step in second.steps if step.index <= install.index), second.table()
    assert not code.reused
    # The same fact, straight from RootFS.Layers: the dependency layer is shared, the code layer is not.
    shared = layers.reused_layers(first.image, second.image)
    assert install.layer in shared
    assert code.layer not in shared
    assert install.size_bytes > 50_000_000  # the dependencies really are in that layer


@pytest.mark.docker
@pytest.mark.slow
def test_bad_order_rebuilds_the_dependency_layer(service_copy, tag):
    """With code copied before `pip install`, does a code-only edit rebuild the dependency layer?"""
    dockerfile = service_copy / "Dockerfile.bad-order"
    first = layers.build(service_copy, tag=tag("bad-1"), dockerfile=dockerfile)
    edit_code(service_copy)
    second = layers.build(service_copy, tag=tag("bad-2"), dockerfile=dockerfile, previous=first.image)

    install = _step(second, "RUN pip install")
    assert not install.reused, second.table()
    assert install.layer not in layers.reused_layers(first.image, second.image)
    assert _step(first, "RUN pip install").layer != install.layer


@pytest.mark.docker
@pytest.mark.slow
def test_multistage_is_smaller_non_root_and_answers_the_same(tag, containers):
    """Is the multi-stage image smaller than single-stage slim, run as non-root, and does it predict the same value?"""
    slim = layers.build(config.SERVICE_DIR, tag=tag("slim"))
    multi = layers.build(config.SERVICE_DIR, tag=tag("multistage"),
                         dockerfile=config.SERVICE_DIR / "Dockerfile.multistage")

    assert multi.size_bytes < slim.size_bytes
    assert multi.base == config.PYTHON_SLIM_IMAGE
    # Nothing of the builder stage (the full image's compilers) is in the final image.
    builder_only = set(engine.image_layers(config.PYTHON_FULL_IMAGE)) - set(engine.image_layers(config.PYTHON_SLIM_IMAGE))
    assert not builder_only & set(engine.image_layers(multi.image))
    assert engine.exec_output(multi.tag, ["id", "-u"]).strip() != "0"
    assert predict(multi.tag, containers) == predict(slim.tag, containers)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "dockerfile", "build_args"),
    [
        ("bad-order", "Dockerfile.bad-order", {}),
        ("pip-cache", "Dockerfile.pip-cache", {}),
        ("full-base", "Dockerfile", {"BASE_IMAGE": config.PYTHON_FULL_IMAGE}),
    ],
)
def test_solution_dockerfile_builds_and_answers(variant, dockerfile, build_args, tag, containers):
    """Does this solution Dockerfile build, and does its service answer /predict like the reference image?"""
    reference = layers.build(config.SERVICE_DIR, tag=tag("reference"))
    built = layers.build(config.SERVICE_DIR, tag=tag(variant), dockerfile=config.SERVICE_DIR / dockerfile,
                         build_args=build_args)
    if build_args:
        assert built.base == build_args["BASE_IMAGE"]
    assert predict(built.tag, containers) == predict(reference.tag, containers)


@pytest.mark.docker
@pytest.mark.slow
def test_layer_breakdown_adds_up_to_the_image_size(tag):
    """Do the layer sizes of the breakdown add up to the image size the engine reports?"""
    built = layers.build(config.SERVICE_DIR, tag=tag("breakdown"))
    frame = layers.layer_breakdown(built.tag, base=config.PYTHON_SLIM_IMAGE)
    assert frame["size_bytes"].sum() == built.size_bytes
    assert frame.iloc[0]["instruction"] == f"base image {config.PYTHON_SLIM_IMAGE}"
    sizes = layers.compare_sizes({"base": config.PYTHON_SLIM_IMAGE, "service": built.tag})
    assert sizes.loc["base", "vs_smallest"] == 1.0
    assert sizes.loc["service", "size_bytes"] == built.size_bytes


@pytest.mark.docker
def test_dockerignore_shrinks_the_context(service_copy):
    """Does the service's .dockerignore keep a data folder out of what the builder receives?"""
    (service_copy / "data").mkdir()
    (service_copy / "data" / "customers.csv").write_bytes(b"x,y\n" * 500_000)  # 2 MB
    with_ignore = layers.context_bytes(service_copy)
    without = layers.context_bytes(service_copy, use_dockerignore=False)
    assert with_ignore < 100_000
    assert without - with_ignore > 2_000_000


@pytest.mark.docker
def test_failing_build_names_the_step_and_leaves_nothing_running(capsys, tag):
    """Does a failing build show the failing step and the builder's error, raise BuildFailed, and leave no container or process?"""
    context = _scratch_dir()
    (context / ".dockerignore").write_text("*\n")
    failing = tag("fails")
    try:
        with pytest.raises(engine.BuildFailed) as raised:
            notebook.build(f"docker build --file {FIXTURES / 'fails_at_run_step.dockerfile'} "
                           f"--tag {failing} {context}")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    shown = capsys.readouterr().out
    assert "The build failed at step" in shown
    assert "RUN pip install" in raised.value.step
    assert shown.count("Could not find a version that satisfies the requirement scikit-lern") == 1
    assert "exit code" in shown  # the builder's own verdict
    assert "printed above" in str(raised.value) and "Could not find" not in str(raised.value)
    assert engine.image(failing) is None
    assert not [c for c in docker.from_env().containers.list(all=True) if failing in c.attrs["Config"]["Image"]]
    still_running = [
        p for p in Path("/proc").glob("[0-9]*/cmdline")
        if _read(p).count("fails_at_run_step.dockerfile")
    ]
    assert not still_running


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.mark.docker
def test_a_rebuild_under_the_same_tag_is_compared_with_the_image_it_replaced(tag):
    """When a rebuild takes over the tag of the image it is compared with (which the containerd image
    store then deletes), is it still compared with that image, and is no helper tag left behind?"""
    context = _scratch_dir()
    try:
        (context / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\nWORKDIR /app\nCOPY a.txt .\n")
        (context / "a.txt").write_text(uuid.uuid4().hex)
        same = tag("same")
        first = layers.build(context, tag=same)
        (context / "a.txt").write_text(uuid.uuid4().hex)
        second = layers.build(context, tag=same, previous=first.image)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    outcome = {step.instruction: step.reused for step in second.steps}
    assert outcome == {"WORKDIR /app": True, "COPY a.txt .": False}, second.table()
    assert not [t for t in engine.local_tags() if t.startswith("cl-previous-build:")]


@pytest.mark.docker
def test_an_env_line_keeps_the_copy_below_cached_and_runs_the_run_step_again(tag):
    """Under BuildKit, does an ENV line added above a COPY and a RUN leave the COPY cached (no file
    changed) and run the RUN again (its environment changed), as 14.3.1's task says?"""
    context = _scratch_dir()
    try:
        (context / "requirements.txt").write_text(uuid.uuid4().hex)
        plain = f"FROM {config.PYTHON_SLIM_IMAGE}\nWORKDIR /app\nCOPY requirements.txt .\nRUN cat requirements.txt\n"
        (context / "Dockerfile").write_text(plain)
        layers.build(context, tag=tag("plain"))
        (context / "Dockerfile").write_text(plain.replace("WORKDIR /app\n", "WORKDIR /app\nENV MODEL_VERSION=2\n"))
        with_env = layers.build(context, tag=tag("env"))
    finally:
        shutil.rmtree(context, ignore_errors=True)
    outcome = {step.instruction.split(" ")[0] + " " + step.instruction.split(" ")[1]: step.reused
               for step in with_env.steps if step.layer is not None}
    assert outcome == {"WORKDIR /app": True, "COPY requirements.txt": True, "RUN cat": False}, with_env.table()


@pytest.mark.docker
def test_a_build_that_must_fail_prints_a_report_that_fits_and_a_success_is_an_error(capsys, tag):
    """Does build_fails() print the failing step's report in lines that fit the page and return it, and
    does it raise when the build it was given succeeds?"""
    context = _scratch_dir()
    (context / ".dockerignore").write_text("*\n")
    try:
        report = notebook.build_fails(f"docker build --file {FIXTURES / 'fails_at_run_step.dockerfile'} "
                                      f"--tag {tag('fails')} {context}")
        printed = capsys.readouterr().out
        (context / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\n")
        with pytest.raises(notebook.CommandFailed, match="expected to fail"):
            notebook.build_fails(f"docker build --tag {tag('builds')} {context}")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    assert "Could not find a version that satisfies the requirement scikit-lern" in report
    assert "The build failed at step" in printed
    assert max(len(line) for line in printed.splitlines()) <= notebook.WIDTH
