"""The class grader: keys, shards, workers, result files that survive kill -9, hygiene on the engine."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from containerlab import batch, cli, config, engine, gradebook, resultfiles
from containerlab.checks import CheckResult, results, service
from containerlab.grading import StudentGrade

TESTS = Path(__file__).parent
FAKE = "batch_fakes.quick_grade"


def _class(root: Path, answers: dict[str, str]) -> Path:
    """A submissions folder: one flat folder per student, holding answer.txt (read by the stand-in grader)."""
    for student, answer in answers.items():
        (root / student).mkdir(parents=True)
        (root / student / "answer.txt").write_text(answer, encoding="utf-8")
    return root


def _log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _done(path: Path) -> list[str]:
    return [parts[1] for parts in _log(path) if parts[0] == "done"]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in grader's log file; tests/ is importable in the workers."""
    log = tmp_path / "grader.log"
    monkeypatch.setenv("CL_FAKE_LOG", str(log))
    monkeypatch.setenv("CL_FAKE_SECONDS", "0")
    monkeypatch.syspath_prepend(str(TESTS))
    return log


def _exits_at_once(*args: object) -> None:
    os._exit(3)


def _quick():
    sys.path.insert(0, str(TESTS))
    import batch_fakes

    return batch_fakes.quick_grade


# --------------------------------------------------------------------------- keys and shards


def test_names_differing_by_accents_or_case_get_different_keys() -> None:
    """Do `José García`, `jose-garcia` and `JOSE GARCIA` get keys that differ but read alike and are tag-safe?"""
    names = ["José García", "jose-garcia", "JOSE GARCIA", "jose garcia", "Zoë", "李雷", "a" * 300, "..."]
    keys = [batch.student_key(n) for n in names]
    assert len(set(keys)) == len(names)
    assert all(k.startswith("jose-garcia-") for k in keys[:4])
    import re
    for key in keys:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", key) and len(key) <= 49, key
    assert batch.student_key("José García") == batch.student_key("José García")  # stable


def test_shards_split_the_class_the_same_way_whatever_the_order() -> None:
    """Do the N shards partition the class, by key and not by order, with roughly equal slices?"""
    keys = [batch.student_key(f"student {i}") for i in range(300)]
    slices = [[k for k in keys if batch.in_shard(k, (i, 3))] for i in (1, 2, 3)]
    assert sorted(sum(slices, [])) == sorted(keys)
    assert all(60 <= len(s) <= 140 for s in slices)
    assert [k for k in reversed(keys) if batch.in_shard(k, (2, 3))] == list(reversed(slices[1]))
    assert batch.parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(ValueError, match="K/N"):
            batch.parse_shard(bad)


def test_a_grade_survives_its_json_form() -> None:
    """Does StudentGrade.from_dict(to_dict()) give back the same grade, through JSON?"""
    grade = StudentGrade("José", "jose-1234abcd", {"ex1": results("ex1", [
        CheckResult("builds", "The image builds", True, 2, "Built.", hidden=False),
        CheckResult("hidden", "Hidden", False, 1, "no", "try", hidden=True)], image="t:1", notes=["CRLF"])},
        problems={"ex2": "no notebook"}, notes={"ex1": ["found in a copy"]}, seconds=3.5)
    again = StudentGrade.from_dict(json.loads(json.dumps(grade.to_dict())))
    assert again == grade and again.score == 2


def test_default_jobs_follow_cores_and_memory() -> None:
    """Is the default number of jobs at least 1 and at most twice the cores?"""
    jobs = batch.default_jobs()
    assert 1 <= jobs <= 2 * len(os.sched_getaffinity(0))
    assert batch.default_jobs(memory_limit_bytes=10**15) == 1


# --------------------------------------------------------------------------- result files, resuming


def test_rerun_keeps_unchanged_results_and_regrades_changed_ones(tmp_path: Path, fake: Path) -> None:
    """Does a rerun grade nobody when nothing changed, and only the student whose files changed?"""
    subs = _class(tmp_path / "subs", {"alice": "good", "bob": "wrong", "José García": "good", "jose-garcia": "x"})
    out = tmp_path / "out"
    seen: list[str] = []
    grades = batch.grade_class(subs, out=out, jobs=2, grader=_quick(), progress=lambda g: seen.append(g.student))
    assert sorted(g.student for g in grades) == sorted(seen) == ["José García", "alice", "bob", "jose-garcia"]
    assert len(list((out / "results").glob("*.json"))) == 4 and len(_done(fake)) == 4
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert rows["alice"]["ex1"] == "2" and rows["bob"]["ex1"] == "0" and rows["José García"]["ex1"] == "2"
    assert (out / "feedback" / "José García.txt").exists() and (out / "feedback" / "jose-garcia.txt").exists()
    data = json.loads(resultfiles.result_path(out, batch.student_key("alice")).read_text())
    assert data["format"] == 1 and data["fingerprint"] == batch.fingerprint(subs / "alice")

    said: list[str] = []
    batch.grade_class(subs, out=out, jobs=2, grader=_quick(), say=said.append)
    assert len(_done(fake)) == 4 and any("Kept 4" in s for s in said)

    (subs / "bob" / "answer.txt").write_text("good")
    batch.grade_class(subs, out=out, jobs=2, grader=_quick())
    assert _done(fake)[4:] == [batch.student_key("bob")]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert rows["bob"]["ex1"] == "2" and len(rows) == 4


def test_a_student_squeezed_by_a_neighbour_is_graded_again_alone(tmp_path: Path, fake: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a failure with pressure signs, met beside other students, get a second grading with no one beside?

    The stand-in "squeezed" fails only while another student is graded (as when a neighbour's disk bomb
    filled the grading engine's disk); "bomb" fails alone too, and its second, failing grade stands.
    """
    monkeypatch.setenv("CL_FAKE_SECONDS", "3")  # the two workers' spawns overlap well within it
    subs = _class(tmp_path / "subs", {"ann": "squeezed", "bob": "good", "cat": "bomb", "dan": "good"})
    said: list[str] = []
    grades = {g.student: g for g in batch.grade_class(subs, out=tmp_path / "out", jobs=2, grader=_quick(),
                                                       say=said.append)}
    assert grades["ann"].score == 2 and not grades["ann"].pressure
    assert grades["cat"].score == 0 and grades["cat"].pressure == {"ex1": ["the engine's disk was full"]}
    assert grades["bob"].score == grades["dan"].score == 2
    log = _log(fake)
    keys = {g.student: g.key for g in grades.values()}
    starts = [parts[1] for parts in log if parts[0] == "start"]
    assert starts.count(keys["ann"]) == 2 and starts.count(keys["cat"]) == 2
    assert starts.count(keys["bob"]) == starts.count(keys["dan"]) == 1
    # each second grading ran alone: nothing else started between its start and its done
    for student in ("ann", "cat"):
        second = max(i for i, parts in enumerate(log) if parts[:2] == ["start", keys[student]])
        done = next(i for i, parts in enumerate(log) if i > second and parts[:2] == ["done", keys[student]])
        assert not [parts for parts in log[second + 1:done] if parts[0] == "start"], log
        assert ["beside", keys[student]] not in log[second:done + 1]
    assert sum("graded again, alone on the engine" in line and "disk was full" in line for line in said) == 2, said
    saved = json.loads(resultfiles.result_path(tmp_path / "out", keys["cat"]).read_text())
    assert saved["grade"]["pressure"] == {"ex1": ["the engine's disk was full"]}
    # the result files say whose grade is a second one, and why (the class report lists them)
    assert saved["grade"]["regraded"] == {"ex1": ["the engine's disk was full"]}
    assert grades["ann"].regraded == {"ex1": ["the engine's disk was full"]}
    assert grades["bob"].regraded == grades["dan"].regraded == {}


def test_a_student_graded_alone_is_not_graded_twice(tmp_path: Path, fake: Path) -> None:
    """With one job no one is graded beside anyone: a failure with pressure signs is the submission's own."""
    subs = _class(tmp_path / "subs", {"cat": "bomb", "bob": "good"})
    said: list[str] = []
    grades = batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick(), say=said.append)
    assert [g.score for g in grades] == [2, 0]
    assert len([parts for parts in _log(fake) if parts[0] == "start"]) == 2
    assert not [line for line in said if "graded again" in line]


def test_a_grader_bug_is_reported_and_the_batch_goes_on(tmp_path: Path, fake: Path) -> None:
    """Does a grader that raises for one student name it, grade the others, and retry it on a rerun?"""
    subs = _class(tmp_path / "subs", {"alice": "good", "bug": "bug", "carol": "good"})
    said: list[str] = []
    grades = batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick(), say=said.append)
    assert [g.student for g in grades] == ["alice", "carol"]
    assert any(s.startswith("bug: the grader failed (ZeroDivisionError") for s in said)


def test_an_exercise_the_grader_failed_on_is_listed_and_graded_again_on_a_rerun(tmp_path: Path, fake: Path) -> None:
    """Is a grader error inside one exercise named in the summary, and graded again by the next run (the rest kept)?"""
    subs = _class(tmp_path / "subs", {"alice": "good", "gina": "grader-error"})
    said: list[str] = []
    batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick(), say=said.append)
    assert any("grader itself failed" in line and "gina (ex1)" in line for line in said), said
    (subs / "gina" / "answer.txt").write_text("good", encoding="utf-8")  # the grader is fixed; her work is unchanged
    grades = batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick(), say=said.append)
    starts = [parts[1] for parts in _log(fake) if parts[0] == "start"]
    keys = {g.student: g.key for g in grades}
    assert starts.count(keys["gina"]) == 2 and starts.count(keys["alice"]) == 1
    assert [g.score for g in grades] == [2, 2]


def test_a_grader_error_inside_an_exercise_is_not_the_students_mistake(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Does an exception inside one exercise's grading give 'not graded yet, not your mistake', recorded as a grader error?"""
    from containerlab import grading
    from containerlab.checks import registry

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    ex1 = dataclasses.replace(registry.exercise("ex1"), grade=broken)
    monkeypatch.setattr(registry, "exercises", lambda: (ex1,))
    folder = tmp_path / "sub"
    folder.mkdir()
    grade = grading.grade_student("gina", folder, key="gina", work_root=tmp_path / "work", cases=[])
    assert grade.grader_errors == {"ex1": "KeyError: 'boom'"}
    message = grade.results["ex1"].results[0].message
    assert "not a mistake in your work" in message and "Fix the problem" not in grade.results["ex1"].results[0].hint
    assert grading.StudentGrade.from_dict(grade.to_dict()).grader_errors == grade.grader_errors


def test_a_worker_that_dies_is_replaced_and_the_batch_goes_on(tmp_path: Path, fake: Path) -> None:
    """When a worker process is killed mid-student, is that student named, and are the others graded?"""
    subs = _class(tmp_path / "subs", {"a": "good", "b-crash": "crash", "c": "good", "d": "good"})
    said: list[str] = []
    grades = batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick(), say=said.append)
    assert [g.student for g in grades] == ["a", "c", "d"]
    assert any(s.startswith("b-crash: the grader process died (exit code -9)") for s in said)


def test_workers_that_cannot_start_stop_the_batch_instead_of_being_restarted(tmp_path: Path, fake: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """When no worker can even start (a broken environment), does the batch stop with a message, not loop?"""
    monkeypatch.setattr(batch.workers, "_worker", _exits_at_once)  # spawned workers import tests/, as the target does
    subs = _class(tmp_path / "subs", {"a": "good", "b": "good"})
    with pytest.raises(batch.WorkersFailed, match=r"ended \(exit code 3\) with 2 student\(s\) not graded"):
        batch.grade_class(subs, out=tmp_path / "out", jobs=2, grader=_quick())


def test_the_engine_going_away_stops_the_batch_resumably(tmp_path: Path, fake: Path) -> None:
    """Does EngineUnavailable mid-batch stop it with a message saying to rerun, keeping what was graded?"""
    subs = _class(tmp_path / "subs", {"a1": "good", "a2": "good", "m-gone": "engine-gone", "z1": "good"})
    out = tmp_path / "out"
    with pytest.raises(batch.BatchStopped, match="rerun the same command: the batch resumes") as caught:
        batch.grade_class(subs, out=out, jobs=1, grader=_quick())
    assert "went away mid-batch" in str(caught.value)
    saved = {p.stem for p in (out / "results").glob("*.json")}
    assert {batch.student_key("a1"), batch.student_key("a2")} <= saved
    assert len(list(csv.DictReader((out / "gradebook.csv").open()))) == len(saved)
    (subs / "m-gone" / "answer.txt").write_text("good")
    batch.grade_class(subs, out=out, jobs=1, grader=_quick())
    assert sorted(_done(fake)) == sorted(batch.student_key(s) for s in ("a1", "a2", "m-gone", "z1"))


def test_a_problem_met_while_the_engine_is_gone_is_not_saved(tmp_path: Path, fake: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """When a grade has problems and the engine no longer answers, is it left unsaved and the batch stopped?"""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    subs = _class(tmp_path / "subs", {"alice": "good", "bob": "engine-silent"})
    with pytest.raises(batch.BatchStopped, match="stopped answering while bob was graded"):
        batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick())
    assert [p.stem for p in (tmp_path / "out" / "results").glob("*.json")] == [batch.student_key("alice")]


def test_a_slow_ping_is_not_a_gone_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a ping that times out count as an answer when a later try answers, and a refusal count at once?"""
    import importlib

    import docker
    import requests

    engine_client = importlib.import_module("containerlab.engine.client")  # the module, for its constants

    calls: list[str] = []

    class Busy:
        def ping(self) -> bool:
            calls.append("ping")
            if len(calls) < engine_client._PING_TRIES:
                raise requests.exceptions.ReadTimeout("busy")
            return True

    monkeypatch.setattr(docker, "from_env", lambda **_: Busy())
    assert engine.answers() and len(calls) == engine_client._PING_TRIES

    class Gone:
        def ping(self) -> bool:
            calls.append("refused")
            raise requests.exceptions.ConnectionError("refused")

    calls.clear()
    monkeypatch.setattr(docker, "from_env", lambda **_: Gone())
    assert not engine.answers() and calls == ["refused"]


def test_two_runs_never_share_an_output_folder(tmp_path: Path, fake: Path) -> None:
    """Is a second run into an output folder that a running batch writes refused, naming the other run?"""
    subs = _class(tmp_path / "subs", {"alice": "good"})
    out = tmp_path / "out"
    out.mkdir()
    held = batch.runs.lock_output(out)
    try:
        with pytest.raises(batch.OutputInUse, match="Another grading run"):
            batch.grade_class(subs, out=out, grader=_quick())
    finally:
        held.release()


KILLED_RUN = """
import sys
sys.path[:0] = {paths!r}
from pathlib import Path
import batch_fakes
from containerlab import batch
batch.grade_class(Path({subs!r}), out=Path({out!r}), jobs=2, grader=batch_fakes.quick_grade)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_kill_9_mid_batch_then_rerun_loses_nothing_and_grades_no_one_twice(tmp_path: Path, fake: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """After kill -9 of the grader mid-batch, do its workers die, and does a rerun finish every student once?"""
    students = {f"student-{i:02d}": "good" if i % 2 else "wrong" for i in range(8)}
    subs = _class(tmp_path / "subs", students)
    out = tmp_path / "out"
    monkeypatch.setenv("CL_FAKE_SECONDS", "1.5")
    script = KILLED_RUN.format(paths=[str(config.ROOT / "src"), str(TESTS)], subs=str(subs), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list((out / "results").glob("*.json"))) < 2 or len(_log(fake)) < 6:
        assert proc.poll() is None and time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = set(_done(fake))
    started = [parts for parts in _log(fake) if parts[0] == "start"]
    assert len(finished_before) < len(students)
    # Workers and the processes they started die with the parent (no orphan goes on grading).
    deadline = time.monotonic() + 15
    while any(_alive(int(pid)) for _, _, worker, child in started for pid in (worker, child)):
        assert time.monotonic() < deadline, "a worker or its child outlived the killed parent"
        time.sleep(0.1)
    assert len(set(_done(fake))) == len(_done(fake))

    monkeypatch.setenv("CL_FAKE_SECONDS", "0")
    grades = batch.grade_class(subs, out=out, jobs=2, grader=_quick())
    done = _done(fake)
    assert sorted(done) == sorted(batch.student_key(s) for s in students)  # each finished exactly once
    assert not set(done[len(finished_before):]) & finished_before
    assert [g.student for g in grades] == sorted(students)
    assert len(list(csv.DictReader((out / "gradebook.csv").open()))) == len(students)
    assert not list((out / "results").glob(".*.tmp"))


# --------------------------------------------------------------------------- shards and merge


def test_shards_graded_apart_merge_into_one_gradebook(tmp_path: Path, fake: Path, capsys) -> None:
    """Do three shards graded into three folders merge (CLI) into one gradebook with every student once?"""
    students = {f"s{i}": "good" for i in range(10)}
    subs = _class(tmp_path / "subs", students)
    outs = [tmp_path / f"shard-{k}" for k in (1, 2, 3)]
    for k, out in enumerate(outs, start=1):
        batch.grade_class(subs, out=out, shard=(k, 3), jobs=1, grader=_quick())
    counts = [len(list((o / "results").glob("*.json"))) for o in outs]
    assert sum(counts) == 10 and len(_done(fake)) == 10
    assert cli.main(["gradebook", "merge", *map(str, outs), "--out", str(tmp_path / "all")]) == 0
    rows = list(csv.DictReader((tmp_path / "all" / "gradebook.csv").open()))
    assert sorted(r["student"] for r in rows) == sorted(students)
    assert "Merged 10" in capsys.readouterr().out
    assert len(gradebook.load_results(tmp_path / "all")) == 10


def test_workers_take_the_named_engines_in_turn(tmp_path: Path, fake: Path) -> None:
    """With --engine given twice, do the workers run against those docker contexts, one each?"""
    subs = _class(tmp_path / "subs", {f"s{i}": "good" for i in range(4)})
    batch.grade_class(subs, out=tmp_path / "out", jobs=2, engines=["default", "default"], grader=_quick())
    assert {parts[2] for parts in _log(fake) if parts[0] == "context"} == {"default"}


def test_cli_rejects_a_bad_shard_and_jobs(tmp_path: Path, capsys) -> None:
    """Do --shard 4/3 and --jobs 0 fail as usage errors naming the form expected?"""
    for args in (["--shard", "4/3"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as caught:
            cli.main(["grade", str(tmp_path), *args])
        assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "K/N" in err and "at least 1" in err


# --------------------------------------------------------------------------- hygiene on the engine


def test_a_builder_that_does_not_load_images_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a docker-container buildx builder (moby/buildkit#3855) stop grading with a clear message?"""
    inspect = textwrap.dedent("""\
        Name:   grading
        Driver: docker-container

        Nodes:
        Name:      grading0
        """)
    monkeypatch.setattr(engine.builds, "docker_cli", lambda args, **kw: subprocess.CompletedProcess(args, 0, inspect, ""))
    with pytest.raises(engine.BuilderDoesNotLoad, match=r"grading \(docker-container\).*docker buildx use default"):
        engine.check_builder()
    default = inspect.replace("grading", "default").replace("docker-container", "docker")
    monkeypatch.setattr(engine.builds, "docker_cli", lambda args, **kw: subprocess.CompletedProcess(args, 0, default, ""))
    assert engine.check_builder() == "default (docker)"


@pytest.mark.docker
def test_leftovers_of_killed_runs_go_and_those_of_running_ones_stay(tmp_path: Path, docker_client) -> None:
    """Are a dead run's networks and containers removed, a live or unknown run's kept, images only by key?

    Only this grader's images (tag part: its instance) go: another user's image of the same student stays.
    """
    from conftest import TEST_LABEL

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {config.PYTHON_SLIM_IMAGE}\n")
    suffix = os.urandom(4).hex()
    ours, theirs = f"cl-ex-grade-mine{suffix}-ex1:{config.INSTANCE}", f"cl-ex-grade-other{suffix}-ex1:{config.INSTANCE}"
    other_graders = f"cl-ex-grade-mine{suffix}-ex1:someone-else-0a1b2c"
    for tag in (ours, theirs, other_graders):
        engine.build(tmp_path / "ctx", tag=tag, labels={service.CHECK_LABEL: "student-image", TEST_LABEL: "1",
                                                         "which": tag})
    runs = tmp_path / "runs"
    live = batch.runs.Lock(runs / "live0000run.lock")
    batch.runs.Lock(runs / "dead0000run.lock").release()  # its process ended: the lock is free
    made = []
    # Run-labelled objects already on the shared engine (another clone's killed batch) are unknown runs too.
    unknown_before = sum(len(engine.labelled(batch.RUN_LABEL)[kind]) for kind in ("containers", "networks"))
    try:
        for run in ("live0000run", "dead0000run", "elsewhere00"):
            labels = {batch.RUN_LABEL: run, TEST_LABEL: "1", service.CHECK_LABEL: "ex3"}
            made.append(docker_client.networks.create(f"cl-test-left-{run}-{os.getpid()}", labels=labels))
            made.append(docker_client.containers.create(config.PYTHON_SLIM_IMAGE, "true", labels=labels,
                                                        name=f"cl-test-left-{run}-{os.getpid()}"))
        cleanup = batch.clean_leftovers(run_id="mine", keys=[f"mine{suffix}"], runs_dir=runs)
        left = {c.labels[batch.RUN_LABEL] for c in docker_client.containers.list(
            all=True, filters={"label": TEST_LABEL})} | {n.attrs["Labels"][batch.RUN_LABEL] for n in
                                                         docker_client.networks.list(filters={"label": TEST_LABEL})}
        assert left == {"live0000run", "elsewhere00"}
        assert cleanup.removed == 3 and cleanup.dead_runs == ["dead0000run"]
        assert cleanup.unknown == unknown_before + 2
        assert engine.image(ours) is None and engine.image(theirs) is not None
        assert engine.image(other_graders) is not None
        assert not (runs / "dead0000run.lock").exists()
        assert "removed 3 leftover(s) of 1 killed run(s)" in str(cleanup)
    finally:
        live.release()
        engine.remove_image(ours)
        engine.remove_image(other_graders)
        engine.remove_image(theirs)
        for obj in made:
            try:
                obj.remove(force=True) if hasattr(obj, "status") else obj.remove()
            except Exception:  # noqa: BLE001  (already removed by the clean-up)
                pass


@pytest.mark.docker
def test_a_killed_runs_exercise6_stack_goes_with_its_volume(docker_client) -> None:
    """Are the container, network and named volume of a stack this grader left for a student about to be
    graded removed (its stored rows must not reach the next grading), and another student's kept?"""
    from conftest import TEST_LABEL
    from containerlab.checks import registry

    stack_project = registry.exercise("ex6").stack_project
    suffix = os.urandom(4).hex()
    made = []
    try:
        for key in (f"mine{suffix}", f"other{suffix}"):
            labels = {batch.COMPOSE_PROJECT_LABEL: stack_project(key), TEST_LABEL: "1"}
            made.append(docker_client.volumes.create(f"{stack_project(key)}_pgdata", labels=labels))
            made.append(docker_client.networks.create(f"{stack_project(key)}_default", labels=labels))
            made.append(docker_client.containers.create(config.PYTHON_SLIM_IMAGE, "true", labels=labels,
                                                        name=f"{stack_project(key)}-db-1"))
        cleanup = batch.clean_leftovers(run_id="mine", keys=[f"mine{suffix}"])
        projects = {obj.name.split("_")[0].removesuffix("-db-1") for obj in made
                    if _still_there(docker_client, obj)}
        assert projects == {stack_project(f"other{suffix}")}
        assert cleanup.removed >= 3
    finally:
        for obj in reversed(made):
            try:
                obj.remove(force=True) if hasattr(obj, "status") else obj.remove()
            except Exception:  # noqa: BLE001  (already removed by the clean-up)
                pass


def _still_there(docker_client, obj) -> bool:  # noqa: ANN001
    """Whether a container, network or volume the test made is still on the engine."""
    import docker.errors

    try:
        obj.reload()
        return True
    except docker.errors.NotFound:
        return False


@pytest.mark.docker
@pytest.mark.slow
def test_two_tiny_submissions_graded_on_the_engine_in_parallel(tmp_path: Path, docker_client) -> None:
    """Do two students whose names differ only by accents and case get their own grades, and nothing stays?"""
    from test_grading import SOURCE, _fill

    subs = tmp_path / "submitted"
    _fill(subs / "José García" / "ch14", answers_from=SOURCE)
    _fill(subs / "jose-garcia", answers_from=None, overrides={
        "ex1-dockerfile": f"%%writefile ex1.Dockerfile\nFROM {config.PYTHON_SLIM_IMAGE}\nRUN exit 3\n"})
    for folder in (subs / "José García" / "ch14", subs / "jose-garcia"):  # exercise 1 only: quick
        for notebook in folder.glob("ex[2-5]-*.ipynb"):
            notebook.unlink()
    out = tmp_path / "out"

    def run_labelled() -> set[str]:  # another clone's killed batch may have left some on the shared engine
        return {item.id for item in docker_client.containers.list(all=True, filters={"label": batch.RUN_LABEL})
                + docker_client.networks.list(filters={"label": batch.RUN_LABEL})}

    before = run_labelled()
    # No prune of the shared engine's build cache: it holds the layers the book and later tests reuse.
    grades = batch.grade_class(subs, out=out, jobs=2, build_timeout=300, keep_storage=None)
    by_name = {g.student: g for g in grades}
    assert by_name["José García"].results["ex1"].score == by_name["José García"].results["ex1"].max_score
    assert by_name["jose-garcia"].results["ex1"].score < by_name["José García"].results["ex1"].score
    assert "There is no notebook" in by_name["jose-garcia"].problems["ex2"]
    assert by_name["José García"].key != by_name["jose-garcia"].key
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert set(rows) == {"José García", "jose-garcia"}
    # Nothing of the batch stays on the engine: containers, networks, images.
    assert run_labelled() <= before
    assert not [t for i in docker_client.images.list() for t in i.tags
                if any(t.startswith(f"cl-ex-grade-{g.key}") for g in grades)]
    said: list[str] = []
    batch.grade_class(subs, out=out, jobs=2, say=said.append, keep_storage=None)
    assert any("Kept 2" in s for s in said)


@pytest.mark.docker
def test_an_engine_named_by_its_context_is_checked_from_its_own_process() -> None:
    """Does preparing the engine of docker context `default` check its builder and clean it from a spawned process?"""
    cleanup = batch.prepare_engine("default", run_id="test-prepare", keys=[])
    assert isinstance(cleanup, batch.Cleanup) and "removed" in str(cleanup)


def test_run_labels_reach_every_container_and_network_of_the_block() -> None:
    """Inside engine.run_labels, do containers and networks get the run's labels, with a call's own labels winning?"""
    with engine.run_labels({batch.RUN_LABEL: "r1", batch.STUDENT_LABEL: "k1"}):
        with engine.run_labels({batch.STUDENT_LABEL: "k2"}):
            assert engine._with_run_labels({"own": "x", batch.RUN_LABEL: "mine"}) == {
                batch.RUN_LABEL: "mine", batch.STUDENT_LABEL: "k2", "own": "x"}
        assert engine._with_run_labels(None) == {batch.RUN_LABEL: "r1", batch.STUDENT_LABEL: "k1"}
    assert engine._with_run_labels(None) == {}


def test_a_prune_waits_for_the_students_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a build-cache prune wait until no student is being graded, and hold new students back meanwhile?"""
    import multiprocessing
    import threading
    import time

    pruned: list[float] = []
    monkeypatch.setattr(engine, "disk_usage", lambda: {"build_cache": 10})
    monkeypatch.setattr(engine, "prune_build_cache", lambda keep_bytes: pruned.append(time.monotonic()))
    gate = batch.workers.Gate(multiprocessing.get_context("spawn"))
    gate.enter()  # a student in progress
    pruner = threading.Thread(target=gate.prune, args=(5,))
    pruner.start()
    time.sleep(0.5)
    assert not pruned, "the prune ran while a student was being graded"
    left = time.monotonic()
    gate.leave()
    pruner.join(timeout=10)
    assert pruned and pruned[0] >= left
    gate.enter()  # the gate is open again
    gate.leave()
    monkeypatch.setattr(engine, "disk_usage", lambda: {"build_cache": 1})
    gate.prune(5)  # under budget: nothing to do
    assert len(pruned) == 1


def test_the_cache_kept_between_students_fits_the_engines_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an 8 GB engine, is a 3 GB build cache pruned to 2 GB, though --keep-storage allows 5 GB?"""
    import multiprocessing

    pruned: list[int] = []
    monkeypatch.setattr(engine, "data_root_size", lambda: 8 * 10**9)
    monkeypatch.setattr(engine, "disk_usage", lambda: {"build_cache": 3 * 10**9})
    monkeypatch.setattr(engine, "prune_build_cache", lambda keep_bytes: pruned.append(keep_bytes))
    gate = batch.workers.Gate(multiprocessing.get_context("spawn"))
    gate.prune(5 * 10**9)
    assert pruned == [2 * 10**9]
    monkeypatch.setattr(engine, "data_root_size", lambda: None)  # a disk this process cannot see
    gate.prune(5 * 10**9)
    assert pruned == [2 * 10**9]  # 3 GB is within 5 GB


def test_the_probe_names_a_read_only_data_root_and_passes_a_writable_one(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Does storage_fault() give the engine's words when a new volume meets a read-only file system, and
    "" when the volume is created (which it then removes)?"""
    sys.path.insert(0, str(TESTS))
    import batch_fakes

    for read_only in (True, False):
        folder = tmp_path / str(read_only)
        folder.mkdir()
        with batch_fakes.ReadOnlyEngine(folder, read_only=read_only) as fake_engine:
            monkeypatch.setenv("DOCKER_HOST", fake_engine.host)
            engine.reconnect()  # the client of this process is made for the stand-in, and dropped after
            try:
                fault = engine.storage_fault()
            finally:
                engine.reconnect()
        if read_only:
            assert fault == batch_fakes.ReadOnlyEngine.REFUSAL
        else:
            assert fault == "" and not fake_engine.created, "the probe's volume was not removed"


def test_a_read_only_engine_stops_the_batch_and_keeps_the_failed_grade_out(tmp_path: Path, fake: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """When a student fails a check and the engine can no longer write its storage, is their grade left
    unsaved, no one after them graded, and the batch stopped with what to do?"""
    sys.path.insert(0, str(TESTS))
    import batch_fakes

    subs = _class(tmp_path / "subs", {"alice": "good", "bob": "bad", "carol": "good"})
    with batch_fakes.ReadOnlyEngine(tmp_path) as fake_engine:
        monkeypatch.setenv("DOCKER_HOST", fake_engine.host)  # the spawned workers ask this engine
        with pytest.raises(batch.BatchStopped, match="can no longer write") as caught:
            batch.grade_class(subs, out=tmp_path / "out", jobs=1, grader=_quick())
    text = str(caught.value)
    assert "read-only file system" in text and "while bob was graded" in text and "Free space" in text
    assert [p.stem for p in (tmp_path / "out" / "results").glob("*.json")] == [batch.student_key("alice")]
    assert not any(line[:2] == ["start", batch.student_key("carol")] for line in _log(fake))
