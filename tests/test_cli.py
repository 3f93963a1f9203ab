"""The containerlab command: without an engine it says what is missing, without a traceback; it leaves this process as found."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from containerlab import cli


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    return subprocess.run(
        [sys.executable, "-m", "containerlab.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("command", [["engine"], ["images"], ["book"]])
def test_no_engine_gives_a_clear_message(command):
    """Does each command that needs the engine exit 2 with a message naming the cause and the fix?"""
    result = run_cli(*command)
    assert result.returncode == 2
    assert "No Docker engine answers" in result.stderr
    assert "scripts/ensure-engine.sh" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_subcommands():
    """Does --help list every subcommand?"""
    result = subprocess.run([sys.executable, "-m", "containerlab.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in ("engine", "images", "book", "grade", "gradebook"):
        assert name in result.stdout


def test_engine_script_check_mode_reports_missing_engine(tmp_path):
    """Does `ensure-engine.sh --check` fail with the install hint when no engine answers?"""
    from containerlab import config

    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        ["bash", str(config.ROOT / "scripts" / "ensure-engine.sh"), "--check"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 1
    assert "docs.docker.com/engine/install" in result.stderr


def test_grade_without_an_engine_says_so(tmp_path):
    """Does `grade` exit 2 naming the missing engine before it writes any result?"""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    result = run_cli("grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert result.returncode == 2
    assert "No Docker engine answers" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("results/*.json"))


def test_grade_help_shows_the_class_options():
    """Does `grade --help` offer --jobs, --shard, --keep-storage and --engine, and `gradebook` merge?"""
    grade = subprocess.run([sys.executable, "-m", "containerlab.cli", "grade", "--help"], capture_output=True,
                           text=True)
    for option in ("--jobs", "--shard", "--keep-storage", "--engine", "--no-prune"):
        assert option in grade.stdout
    merge = subprocess.run([sys.executable, "-m", "containerlab.cli", "gradebook", "--help"], capture_output=True,
                           text=True)
    assert "merge" in merge.stdout and "--out" in merge.stdout


def test_grade_in_process_leaves_the_engine_address_as_it_was(tmp_path, monkeypatch):
    """After `grade` chose a running grading engine, is this process's DOCKER_HOST back to what it was?

    A test or notebook that grades in-process and then stops the grading engine must
    not stay pointed at its socket (CI once failed every later engine test that way).
    """
    from containerlab import batch, engine, sandbox

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "answers", lambda address=None: True)
    monkeypatch.setattr(sandbox, "is_grading_engine", lambda address: True)
    seen = []

    def grade_class(submissions, **options):
        seen.append(os.environ.get("DOCKER_HOST"))
        return []

    monkeypatch.setattr(batch, "grade_class", grade_class)
    assert cli.main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    assert seen == [sandbox.host(None)], "the batch did not run on the grading engine"
    assert "DOCKER_HOST" not in os.environ


def test_output_cut_short_by_its_reader_ends_quietly():
    """Piped into `head`, does a command that prints much end with status 1 and no traceback?"""
    program = (
        "import argparse, sys\n"
        "from containerlab import cli\n"
        "def talk(args):\n"
        "    for i in range(200000):\n"
        "        print('line', i)\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.set_defaults(func=talk, command='talk')\n"
        "cli.build_parser = lambda: parser\n"
        "sys.exit(cli.main([]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # what `head -1` does after its line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
