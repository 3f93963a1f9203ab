"""Parts of the checks that need no engine: Dockerfile reading, failure explanations, free-text answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from containerlab import engine
from containerlab.checks import conceptual, dockerfile, policy, service


def test_final_base_follows_args_and_stages(tmp_path: Path) -> None:
    """Is the final stage's base found through ARG defaults and stage names?"""
    path = tmp_path / "Dockerfile"
    path.write_text("ARG BASE_IMAGE=python:3.13-slim\nFROM python:3.13 AS builder\nRUN true\n"
                    "FROM ${BASE_IMAGE} AS final\nFROM final\nCMD [\"x\"]\n")
    parsed = dockerfile.read(path)
    assert parsed.final_base() == "python:3.13-slim"
    assert parsed.stage_count() == 3


@pytest.mark.parametrize("ref,slim", [("python:3.13-slim", True), ("docker.io/library/python:slim-bookworm", True),
                                      ("python:3.13", False), ("python:3.13-slim@sha256:ab", True),
                                      ("debian:trixie-slim", False), ("", False)])
def test_slim_python_references(ref: str, slim: bool) -> None:
    """Are slim official Python references told apart from full and non-Python ones?"""
    assert dockerfile.is_slim_python(ref) is slim


def test_exec_form_is_a_json_list_of_strings() -> None:
    """Is only a JSON list of strings taken as exec form?"""
    assert dockerfile.exec_form('["uvicorn", "app"]') == ["uvicorn", "app"]
    assert dockerfile.exec_form("uvicorn app") is None
    assert dockerfile.exec_form("['uvicorn']") is None


def test_continuations_and_comments_are_joined(tmp_path: Path) -> None:
    """Are continued lines joined into one instruction, with its first line number, and comments dropped?"""
    path = tmp_path / "Dockerfile"
    path.write_text("# comment\nFROM python:3.13-slim\nRUN pip install \\\n  # inner comment\n  pandas\n")
    parsed = dockerfile.read(path)
    assert [(i.keyword, i.args, i.line) for i in parsed.instructions] == [
        ("FROM", "python:3.13-slim", 2), ("RUN", "pip install pandas", 3)]


@pytest.mark.parametrize("content,words", [(b"", "no instructions"), (b"\xff\xfe\x00F", "not UTF-8"),
                                           (b"# YOUR CODE HERE\nraise NotImplementedError()", "placeholder")])
def test_unusable_dockerfiles_are_named(tmp_path: Path, content: bytes, words: str) -> None:
    """Does an empty, non-UTF-8 or untouched Dockerfile raise a message naming the problem?"""
    path = tmp_path / "ex1.Dockerfile"
    path.write_bytes(content)
    with pytest.raises(dockerfile.DockerfileProblem, match=words):
        dockerfile.read(path)


def test_full_disk_is_explained() -> None:
    """Does a build that ran out of disk space get a message saying so, and what to change?"""
    exc = engine.BuildFailed("failed", step="[3/4] RUN dd if=/dev/zero of=/big", log="#7 ERROR: write /big: "
                             "no space left on device", error_lines=["ERROR: no space left on device"])
    problem, hint = service.explain_build_failure(exc, timeout=900)
    assert "disk space" in problem and "remove it" in hint


def _notebook(path: Path, answer: str) -> Path:
    cell = {"cell_type": "markdown", "metadata": {"nbgrader": {"grade_id": "ex4-answer"}}, "source": answer}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize("answer,passed,words", [
    ("YOUR ANSWER HERE", False, "placeholder"),
    ("Containers are good.", False, "words"),
    (" ".join(["word"] * 40), True, "rubric"),
])
def test_free_text_answer_presence(tmp_path: Path, answer: str, passed: bool, words: str) -> None:
    """Is a free-text answer present only when the placeholder is gone and it has enough words?"""
    result = conceptual.check(_notebook(tmp_path / "ex4.ipynb", answer), "ex4-answer", exercise="ex4",
                              manual_points=4).get("answer-present")
    assert result.passed is passed and words in result.message + result.hint
    assert result.points == 0


def test_unreadable_notebook_is_named(tmp_path: Path) -> None:
    """Does a notebook that is not JSON give a message naming the file, not a traceback?"""
    broken = tmp_path / "ex4.ipynb"
    broken.write_text("{not json")
    result = conceptual.check(broken, "ex4-answer", exercise="ex4", manual_points=4).get("answer-present")
    assert not result.passed and "ex4.ipynb is not a valid notebook" in result.message


@pytest.mark.parametrize("host_config,option", [
    ({"Privileged": True}, "--privileged"), ({"CapAdd": ["NET_ADMIN"]}, "--cap-add NET_ADMIN"),
    ({"PidMode": "host", "SecurityOpt": ["label=disable"]}, "--pid host"),
    ({"NetworkMode": "container:db"}, "--network container:db"), ({"CgroupnsMode": "host"}, "--cgroupns host"),
    ({"DeviceRequests": [{"Count": -1}]}, "--gpus"), ({"SecurityOpt": ["seccomp=unconfined"]}, "--security-opt"),
])
def test_a_created_containers_config_is_judged_by_the_security_rules(tmp_path: Path, host_config: dict,
                                                                      option: str) -> None:
    """Is each weakening HostConfig field of `docker inspect` refused, naming the docker run option?"""
    baseline = {"HostConfig": {"CgroupnsMode": "private", "IpcMode": "private", "NetworkMode": "bridge"}}
    with pytest.raises(policy.SecurityRule, match="not a Docker error") as info:
        policy.judge_container({"HostConfig": host_config}, tmp_path, baseline=baseline)
    assert option in str(info.value)


def test_the_engines_own_defaults_are_not_held_against_the_command(tmp_path: Path) -> None:
    """Is a mode every container of this engine gets (cgroupns host on a cgroup v1 engine) accepted?"""
    defaults = {"HostConfig": {"CgroupnsMode": "host", "IpcMode": "private", "NetworkMode": "bridge"}}
    policy.judge_container(defaults, tmp_path, baseline=defaults)
    policy.judge_container({"HostConfig": {"NetworkMode": "none", "SecurityOpt": ["no-new-privileges"]}}, tmp_path)


def test_bind_sources_outside_the_folder_are_refused_from_the_inspect_data(tmp_path: Path) -> None:
    """Are a bind of / and of the Docker socket, read from inspect's Mounts, refused without the host path?"""
    for source, words in (("/", "outside your exercise folder"), ("/run/docker.sock", "Docker socket")):
        attrs = {"HostConfig": {}, "Mounts": [{"Type": "bind", "Source": source, "Destination": "/x"}]}
        with pytest.raises(policy.SecurityRule, match=words):
            policy.judge_container(attrs, tmp_path)
    (tmp_path / "service").mkdir()
    policy.judge_container({"Mounts": [{"Type": "bind", "Source": str(tmp_path / "service"), "Destination": "/d"}]},
                           tmp_path)
