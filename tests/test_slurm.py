"""deploy/'s Slurm job array on a real one-node Slurm cluster: its shards, merged, are the one-machine gradebook.

The cluster is Debian's Slurm (``slurm-wlm``, ``munge``) started for the test
only, as root: munged with a key made here, slurmctld and slurmd with a
slurm.conf of their own (``SLURM_CONF``) on free ports, every state, spool,
log and pid file in one temporary folder. No systemd and no cgroups are needed
(``proctrack/linuxproc``, ``task/none``). Everything it started is stopped by
its pid, pass or fail.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from containerlab import config

ROOT = Path(__file__).resolve().parents[1]
SBATCH_SCRIPT = ROOT / "deploy" / "slurm" / "grade-array.sbatch"
#: The programs of Debian's packages the cluster needs.
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
#: Longest wait for a daemon to answer, and for the whole job array, in seconds.
START_TIMEOUT = 30
JOB_TIMEOUT = 600


def _require_slurm() -> None:
    """Fail under CI (``.ci/run`` installs Slurm) and skip elsewhere when Slurm or root is missing, saying how."""
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    reason = (f"Slurm is not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge" if missing
              else "the one-node Slurm cluster is started as root" if os.geteuid() != 0 else None)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs Slurm under CI")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, ready, timeout: float, log: Path | None = None) -> None:
    """Poll ``ready()`` until it is true, or fail after ``timeout`` seconds showing the end of ``log``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"{what} within {timeout} s\n{tail}")
        time.sleep(0.5)


@dataclass
class Cluster:
    """A running one-node Slurm cluster: its folder and the environment its commands need (``SLURM_CONF``)."""

    root: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(args, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}"
        return done.stdout

    def answers(self) -> bool:
        return subprocess.run(["scontrol", "ping"], env=self.env, capture_output=True, text=True,
                              timeout=30).stdout.count("UP") >= 1

    def node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() == "idle"


#: The daemons, each with the pid file slurm.conf or its command line names.
DAEMONS = ("slurmd", "slurmctld", "munged")


def _running(pid: int, name: str | None = None) -> bool:
    """Whether process ``pid`` runs (a zombie does not), and is program ``name`` when one is given."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return state not in "ZX" and (name is None or comm == name)


def _daemons(root: Path) -> list[int]:
    """The pids of this cluster's daemons still running, from their pid files (a reused pid is another program)."""
    pids = []
    for name in DAEMONS:
        try:
            pid = int((root / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if _running(pid, name):
            pids.append(pid)
    return pids


def _pids_with_conf(conf: Path) -> list[int]:
    """Processes started by this cluster's daemons (job steps, slurmstepd): their environment names ``conf``."""
    marker = f"SLURM_CONF={conf}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0") and _running(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _cancel_jobs(env: dict[str, str], timeout: float = 20) -> None:
    """Cancel the cluster's jobs and wait until they are gone: their steps then end before the daemons stop."""
    deadline = time.monotonic() + timeout
    try:
        subprocess.run(["scancel", "--partition=grading"], env=env, capture_output=True, timeout=timeout)
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True, timeout=timeout)
            if queue.returncode != 0 or not queue.stdout.strip():
                return
            time.sleep(0.5)
    except subprocess.TimeoutExpired:
        pass


def _stop(root: Path, conf: Path) -> None:
    """Stop every process the cluster started: the daemons by their pid files, then anything left behind."""
    for pid in _daemons(root):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 15
    while alive := _daemons(root) + _pids_with_conf(conf):
        if time.monotonic() > deadline:
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        time.sleep(0.5)


SLURM_CONF = """\
ClusterName=containerlab-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
# The node is declared with at least the resources grade-array.sbatch asks for (4 CPUs, 8 GB), so the
# script runs with its own #SBATCH lines on a smaller machine; slurmd takes the declared figures.
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=grading Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm() -> Iterator[Cluster]:
    """A one-node Slurm cluster on this machine (munged, slurmctld, slurmd), stopped afterwards, pass or fail."""
    _require_slurm()
    root = Path(tempfile.mkdtemp(prefix="cl-slurm-"))
    root.chmod(0o755)  # munged wants its socket's folder searchable by every user
    conf = root / "slurm.conf"
    host = socket.gethostname().split(".")[0]
    memory_mb = max(8192, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2)
    conf.write_text(SLURM_CONF.format(host=host, root=root, ctld_port=_free_port(), slurmd_port=_free_port(),
                                      cpus=max(4, os.cpu_count() or 1), memory_mb=memory_mb))
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(root, env)
    try:
        subprocess.run(["munged", f"--socket={root}/munge.socket", f"--key-file={key}",
                        f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
                        f"--seed-file={root}/munged.seed"], env=env, check=True, timeout=30)
        _wait("munged did not start", lambda: (root / "munge.socket").exists(), START_TIMEOUT, root / "munged.log")
        subprocess.run(["slurmctld", "-i"], env=env, check=True, timeout=30)
        _wait("slurmctld did not answer", cluster.answers, START_TIMEOUT, root / "slurmctld.log")
        subprocess.run(["slurmd", "-N", host], env=env, check=True, timeout=30)
        _wait("slurmd's node did not come up idle", cluster.node_idle, START_TIMEOUT, root / "slurmd.log")
        yield cluster
    finally:
        _cancel_jobs(env)
        _stop(root, conf)
        shutil.rmtree(root, ignore_errors=True)



def _class(root: Path) -> Path:
    """A small class graded in seconds, yet with points, failures and problems to agree on.

    ann hands in the released notebooks unchanged (nbgrader's layout); ben an
    exercise 1 whose build fails at once, and the free-text answers; cat only
    the free-text answers; eve the solution of exercise 1 (its layers are in the
    engine's build cache after the book) and the answer to exercise 5.
    """
    from test_grading import SOURCE, _fill

    _fill(root / "ann" / "ch14", answers_from=None)
    _fill(root / "ben", answers_from=SOURCE, overrides={
        "ex1-dockerfile": f"%%writefile ex1.Dockerfile\nFROM {config.PYTHON_SLIM_IMAGE}\nRUN exit 3\n"})
    _fill(root / "cat", answers_from=SOURCE)
    _fill(root / "eve", answers_from=SOURCE)
    for student, kept in (("ben", "145"), ("cat", "45"), ("eve", "15")):
        for notebook in (root / student).glob("ex*.ipynb"):
            if notebook.name[2] not in kept:
                notebook.unlink()
    return root


def _gradebook(folder: Path) -> list[dict[str, str]]:
    return sorted(csv.DictReader((folder / "gradebook.csv").open(encoding="utf-8")), key=lambda r: r["student"])


def _verdicts(folder: Path) -> dict[str, dict[str, list[tuple[str, bool, float]]]]:
    """Per student and exercise, every check's name, verdict and points, from the result files."""
    verdicts = {}
    for path in (folder / "results").glob("*.json"):
        grade = json.loads(path.read_text(encoding="utf-8"))["grade"]
        verdicts[grade["student"]] = {
            exercise: [(check["name"], check["passed"], check["points"]) for check in result["results"]]
            for exercise, result in grade["results"].items()}
    return verdicts


@pytest.mark.docker
@pytest.mark.slow
def test_the_job_array_on_a_real_slurm_merges_into_the_one_machine_gradebook(slurm: Cluster, tmp_path: Path) -> None:
    """Do deploy/'s job array's shards, run by Slurm and merged, give the gradebook of one machine's run?"""
    containerlab = ROOT / ".venv" / "bin" / "containerlab"
    assert containerlab.exists(), f"the job array runs {containerlab}: `make env` makes it"
    submitted = _class(tmp_path / "submitted")
    # Both runs grade on the main engine (not a grading engine another test may have started), with the same
    # options; --no-prune: the shared engine's build cache holds the layers the book and later tests reuse.
    env = {**slurm.env, "DOCKER_HOST": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")}
    options = ["--build-timeout", "300", "--no-prune"]
    started = time.monotonic()
    one = subprocess.run([sys.executable, "-m", "containerlab.cli", "grade", str(submitted),
                          "--out", str(tmp_path / "one"), *options],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    assert one.returncode == 0, one.stdout + one.stderr
    one_seconds = time.monotonic() - started

    # Submitted from the clone, as deploy/README.md says; the tasks' logs go to the test's folder.
    job = subprocess.run(["sbatch", "--parsable", "--array=1-2", f"--output={tmp_path}/grade-%A-%a.log",
                          str(SBATCH_SCRIPT), str(submitted), str(tmp_path / "grades"), *options],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip().split(";")[0]
    started = time.monotonic()
    _wait("the job array did not finish", lambda: not slurm.run("squeue", "-h", "-j", job_id).strip(),
          JOB_TIMEOUT, slurm.root / "slurmd.log")
    array_seconds = time.monotonic() - started
    logs = "\n".join(log.read_text(errors="replace") for log in sorted(tmp_path.glob("grade-*.log")))
    tasks = slurm.run("scontrol", "show", "job", job_id, "--oneliner").splitlines()
    assert len(tasks) == 2, tasks
    for task in tasks:
        assert "JobState=COMPLETED" in task and "ExitCode=0:0" in task, f"{task}\n{logs}"
        # The script's own --cpus-per-task and --exclusive held: one task at a time on the node.
        assert "NumCPUs=4" in task and "OverSubscribe=NO" in task, task
    # Each task graded its own slice: no student in both shards (the merge below must hold them all).
    shards = [_verdicts(tmp_path / "grades" / f"shard-{k}") for k in (1, 2)]
    assert all(shards) and not set(shards[0]) & set(shards[1]), logs
    print(f"one machine {one_seconds:.0f} s; job array of 2 tasks on Slurm {array_seconds:.0f} s")

    merged = subprocess.run([str(containerlab), "gradebook", "merge", *(str(tmp_path / "grades" / f"shard-{k}")
                                                                       for k in (1, 2)),
                             "--out", str(tmp_path / "grades" / "all")],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert _gradebook(tmp_path / "grades" / "all") == _gradebook(tmp_path / "one")
    assert _verdicts(tmp_path / "grades" / "all") == _verdicts(tmp_path / "one")
    rows = {row["student"]: row for row in _gradebook(tmp_path / "one")}
    assert rows["eve"]["ex1"] != "0" and rows["ben"]["ex1"] == "0" and rows["ann"]["total"] == "0"
    assert "There is no notebook" in rows["cat"]["problems"]
