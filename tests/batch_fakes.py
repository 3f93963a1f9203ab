"""Stand-ins for grading.grade_student, quick and engine-free, for the batch tests.

Module-level functions, so the batch's spawned workers can import them. Each
appends to the log file named by ``CL_FAKE_LOG``: ``start <key> <pid> <child pid>``
when it begins and ``done <key>`` when it returns, so a test can count how often
each student was graded. ``CL_FAKE_SECONDS`` makes each grading take that long,
spent waiting on a child process (as a real grading waits on ``docker buildx``).
While a stand-in grades, it holds a file named by the key in ``busy/`` beside the log,
so that it can tell whether another student was graded at the same time (it logs
``beside <key>`` then).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from containerlab import engine
from containerlab.checks import CheckResult, results
from containerlab.grading import StudentGrade


def _log(line: str) -> None:
    with open(os.environ["CL_FAKE_LOG"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def unimportable_grade(*args: object, **kwargs: object) -> StudentGrade:
    """Never called: the test that uses it makes the workers fail before their first task."""
    raise AssertionError("a worker got to grading")


def quick_grade(student: str, folder: Path, *, key: str, work_root: Path, **_: object) -> StudentGrade:
    """Grade by reading ``answer.txt``: "good" passes ex1; "squeezed" passes unless another student is
    graded at the same time, and "bomb" always fails, both with pressure signs; "engine-gone" raises EngineUnavailable; "bug" raises;
    "grader-error" returns an exercise the grader failed on; "engine-silent" returns a problem as a check that met a dead engine would."""
    busy = Path(os.environ["CL_FAKE_LOG"]).parent / "busy"
    busy.mkdir(exist_ok=True)
    (busy / key).touch()
    others = {p.name for p in busy.iterdir()} - {key}
    child = subprocess.Popen(["sleep", os.environ.get("CL_FAKE_SECONDS", "0")])
    _log(f"start {key} {os.getpid()} {child.pid}")
    _log(f"context {key} {os.environ.get('DOCKER_CONTEXT', '-')}")
    child.wait()
    others |= {p.name for p in busy.iterdir()} - {key}
    (busy / key).unlink()
    if others:
        _log(f"beside {key}")
    answer = (folder / "answer.txt").read_text(encoding="utf-8").strip() if (folder / "answer.txt").exists() else ""
    if answer in {"squeezed", "bomb"} and (answer == "bomb" or others):
        # "squeezed" fails only beside another student (their disk bomb filled the disk); "bomb" always
        res = results("ex1", [CheckResult("builds", "The image builds", False, 2, "no space left on device")])
        _log(f"done {key}")
        return StudentGrade(student, key, {"ex1": res}, pressure={"ex1": ["the engine's disk was full"]})
    if answer == "squeezed":
        answer = "good"
    if answer == "engine-gone":
        raise engine.EngineUnavailable("No Docker engine answers (a test's stand-in).")
    if answer == "crash":  # the worker process dies (as when the kernel's OOM killer picks it)
        os.kill(os.getpid(), 9)
    if answer == "bug":
        raise ZeroDivisionError("a bug in the grader")
    if answer == "grader-error":  # the grader failed inside one exercise (grading.grade_student records it)
        _log(f"done {key}")
        return StudentGrade(student, key, problems={"ex1": "grader error, not graded (KeyError: 'boom')"},
                            grader_errors={"ex1": "KeyError: 'boom'"})
    if answer == "engine-silent":  # a check met a dead engine and took it for the student's fault
        return StudentGrade(student, key, problems={"ex1": "The grader failed on this exercise (ConnectionError)."})
    res = results("ex1", [CheckResult("builds", "The image builds", answer == "good", 2, f"answer {answer!r}")])
    _log(f"done {key}")
    return StudentGrade(student, key, {"ex1": res}, seconds=0.01)


class ReadOnlyEngine:
    """A stand-in Docker engine on a unix socket, for unit tests: it answers pings, and refuses every new
    volume with the error a real engine gives when the file system under its data root went read-only
    (the words of Engine 26.1's containerd store, CI 2026-12-07), or accepts it when ``read_only`` is false.

    Use as a context manager; ``host`` is its ``DOCKER_HOST``.
    """

    REFUSAL = ("failed to create lease: write /var/lib/cl-test-corpus/root/docker/containerd/daemon/"
               "io.containerd.metadata.v1.bolt/meta.db: read-only file system: unknown")

    def __init__(self, folder: Path, *, read_only: bool = True) -> None:
        import http.server
        import json
        import socketserver
        import threading

        refusal, created = self.REFUSAL, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/_ping"):
                    self._answer(200, "OK")
                elif self.path.endswith("/version"):
                    self._answer(200, {"Version": "26.1.5", "ApiVersion": "1.45", "MinAPIVersion": "1.24"})
                else:
                    self._answer(404, {"message": f"no such thing in this stand-in: {self.path}"})

            do_HEAD = do_GET

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.split("?")[0].endswith("/volumes/create"):
                    self._answer(404, {"message": f"no such thing in this stand-in: {self.path}"})
                elif read_only:
                    self._answer(500, {"message": refusal})
                else:
                    created.append("probe")
                    self._answer(201, {"Name": "probe", "Driver": "local", "Mountpoint": "/x", "Labels": {}})

            def do_DELETE(self) -> None:  # noqa: N802
                created.clear()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):  # noqa: ANN202  (a unix socket's peer has no address; http.server wants one)
                request, _ = super().get_request()
                return request, ("stand-in", 0)

        self.path = folder / "docker.sock"
        self.host = f"unix://{self.path}"
        self.created = created
        self._server = Server(str(self.path), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "ReadOnlyEngine":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
