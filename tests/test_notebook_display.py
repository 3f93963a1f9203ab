"""What the book's pages print: plain names and ports, lines that fit, builder logs condensed.

The pages run commands with this instance's names and host ports (config.INSTANCE,
config.instance_port) and print them as a reader types them on a machine of
their own (containerlab.notebook's docstring).
"""

from __future__ import annotations

import pytest
import requests

from containerlab import config, notebook

I = config.INSTANCE


@pytest.mark.parametrize("real, plain", [
    (f"docker run --detach --name box-a-{I} python:3.13-slim", "docker run --detach --name box-a python:3.13-slim"),
    (f"customer-value-{I}_db-data", "customer-value_db-data"),
    (f"customer-value-{I}-api-1", "customer-value-api-1"),
    (f"--publish {config.instance_port(8080)}:80", "--publish 8080:80"),
    (f"http://localhost:{config.instance_port(8080)}/health", "http://localhost:8080/health"),
    (f"127.0.0.1:{config.instance_port(8000)}->80/tcp", "127.0.0.1:8000->80/tcp"),
    (f"API_PORT={config.instance_port(8000)}", "API_PORT=8000"),
])
def test_shown_names_and_ports_are_the_plain_ones(real: str, plain: str):
    """Does shown() print this instance's names and host ports as the prose writes them?"""
    assert notebook.shown(real) == plain


def test_numbers_that_are_not_ports_stay_as_they_are():
    """Are five-digit numbers that are not written where a port stands (sizes, ids, versions) left alone?"""
    port = config.instance_port(8080)
    text = f"{port} bytes; sha256:{port}abcdef; version 2.{port}; pid {port}"
    assert notebook.shown(text) == text


def test_table_columns_stay_under_their_headings():
    """When a name in a table (docker ps) loses its suffix, does the next column stay under its heading?"""
    table = (f"NAMES               IMAGE              STATUS\n"
             f"box-b-{I}   python:3.13-slim   Up 2 seconds")
    header, row = notebook.shown(table).splitlines()
    assert row.startswith("box-b ") and row.index("python") == header.index("IMAGE")
    assert row.index("Up 2") == header.index("STATUS")


def test_push_progress_shows_each_layer_once_in_its_last_state():
    """Is docker push's output shown as a terminal ends up showing it: each layer once, with its last state?"""
    shown = []
    progress = notebook._LayerProgress(shown.append)
    for line in ["The push refers to repository [localhost:5000/customer-value]",
                 "b30eb4efe6df: Waiting", "3be4837d18f0: Waiting", "b30eb4efe6df: Pushed",
                 "3be4837d18f0: Layer already exists", "1.0: digest: sha256:3a03 size: 856"]:
        progress(line)
    progress.flush()
    assert shown == ["The push refers to repository [localhost:5000/customer-value]",
                     "b30eb4efe6df: Pushed", "3be4837d18f0: Layer already exists",
                     "1.0: digest: sha256:3a03 size: 856"]


def test_a_port_given_to_host_port_is_shown_as_given():
    """Is the registry's port shown as localhost:5000, and does a request to localhost:5000 reach it?"""
    real = notebook.host_port(5000)
    assert real != 5000 and notebook.host_port(5000) == real
    assert notebook.shown(f"localhost:{real}/customer-value:1.0") == "localhost:5000/customer-value:1.0"
    assert notebook._actual_url("http://localhost:5000/v2/") == f"http://localhost:{real}/v2/"
    assert notebook._actual_url("http://example.org:5000/") == "http://example.org:5000/"


def test_requests_to_a_shown_port_reach_the_instances_port(monkeypatch):
    """After setup(), does requests.get('http://localhost:8080/...') go to this instance's port for 8080?"""
    seen = []

    def fake_send(self, request, **kwargs):
        seen.append(request.url)
        response = requests.Response()
        response.status_code = 204
        return response

    monkeypatch.setattr(requests.Session, "send", fake_send)
    # The routing stays in this process otherwise; only the pages' kernels should keep it.
    monkeypatch.setattr(requests.Session, "request", requests.Session.request)
    notebook._route_shown_ports()
    requests.get("http://localhost:8080/health")
    assert seen == [f"http://localhost:{config.instance_port(8080)}/health"]


def test_long_commands_are_continued_and_quoted_words_kept_whole():
    """Is a long command printed in lines of at most WIDTH characters, continued with a backslash, with an
    option beside its value and a quoted argument never split?"""
    command = ("docker run --detach --name customer-value-demo --publish 8080:80 --env API_TOKEN=demo-FAKE-token "
               "customer-value:1.0 sh -c 'uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80'")
    lines = notebook.command_lines(command)
    assert len(lines) > 1 and lines[0].startswith("$ docker run")
    assert all(len(line) <= notebook.WIDTH for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1])
    assert any("--publish 8080:80" in line for line in lines)
    assert sum("'uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80'" in line for line in lines) == 1
    # Joined back, it is the same command (what a reader copies runs as written).
    joined = " ".join(line.rstrip(" \\").strip() for line in lines).removeprefix("$ ")
    assert joined == command


def test_a_tab_in_a_format_is_shown_as_backslash_t():
    """Is a tab in a --format string printed as \\t, which docker reads the same and a reader can type?"""
    assert notebook.command_lines("docker ps --format 'table {{.Names}}\t{{.Status}}'") == \
        ["$ docker ps --format 'table {{.Names}}\\t{{.Status}}'"]


def test_long_output_lines_wrap_at_the_width():
    """Does an output line longer than WIDTH wrap as a terminal of that width shows it, nothing lost?"""
    line = "x" * 200
    wrapped = notebook.output_lines(line)
    assert all(len(part) <= notebook.WIDTH for part in wrapped) and "".join(wrapped) == line


COMPOSE_OUTPUT = """\
#0 building with "default" instance using docker driver

#1 [api internal] load build definition from Dockerfile
#1 transferring dockerfile: 666B done
#1 DONE 0.0s

#4 [api 1/5] FROM docker.io/library/python:3.13-slim@sha256:4bc1de20257ad127525c1abea04d34efe00b7a10bbcfec18cde428ae504e3d6b
#4 DONE 0.0s

#6 [api 4/5] RUN pip install --no-cache-dir -r requirements.txt
#6 CACHED

#7 [api 2/5] WORKDIR /app
#7 CACHED

#8 [api 3/5] COPY requirements.txt .
#8 CACHED

#9 [api 5/5] COPY src/ src/
#9 DONE 0.1s

#10 [api] exporting to image
#10 naming to docker.io/library/cv-edit-demo-api:latest done
#10 DONE 0.1s
 Network cv-edit-demo_default  Creating
 Network cv-edit-demo_default  Created
 Container cv-edit-demo-api-1  Created
"""


def test_compose_build_output_is_condensed_to_steps_and_compose_lines():
    """Is a compose build's log shown as one line per Dockerfile step, in order, the base image's digest
    left out, and compose's own lines as they come?"""
    shown = []
    progress = notebook._condensed_progress(shown.append, width=notebook.WIDTH, passthrough=True)
    for line in COMPOSE_OUTPUT.splitlines():
        progress(line)
    progress.flush()
    steps = [line for line in shown if line.startswith("[api ")]
    assert [s.split("]")[0] for s in steps] == [f"[api {n}/5" for n in range(1, 6)]
    assert "sha256" not in steps[0] and steps[0].startswith("[api 1/5] FROM docker.io/library/python:3.13-slim")
    assert " Network cv-edit-demo_default  Created" in shown
    assert all(len(line) <= notebook.WIDTH for line in shown)
    assert len(shown) < len(COMPOSE_OUTPUT.splitlines()) / 2


def test_the_full_log_is_one_click_away():
    """Does the full builder log render as a closed <details> box that holds every line, escaped?"""
    log = notebook.FullLog(["#1 [internal] load <build> definition", "#2 DONE 0.0s"])
    rendered = log._repr_html_()
    assert rendered.startswith("<details") and "<summary>" in rendered and "(2 lines)" in rendered
    assert "&lt;build&gt;" in rendered
    assert "2 lines" in repr(log)


def test_shell_shows_each_command_before_its_output_as_typed(capsys):
    """Does shell() print each command of a script just before its output, loop bodies and here-documents
    as a reader would copy them, with plain names, and return what really ran and printed?"""
    script = (f"echo box-a-{I}\n"
              "cat <<'EOF'\nFROM python:3.13-slim\nEOF\n"
              "for n in 1 2; do\n  echo $n\ndone")
    returned = notebook.shell(script)
    assert capsys.readouterr().out.splitlines() == [
        "$ echo box-a", "box-a",
        "$ cat <<'EOF'", "FROM python:3.13-slim", "EOF", "FROM python:3.13-slim",
        "$ for n in 1 2; do", "    echo $n", "  done", "1", "2",
    ]
    assert f"box-a-{I}\n" in returned


def test_shell_stops_at_a_failing_command_and_says_so(capsys):
    """Does a failing command stop shell()'s script (the next one never runs) and raise CommandFailed?"""
    with pytest.raises(notebook.CommandFailed, match="status 3"):
        notebook.shell("echo before\n(exit 3)\necho never-printed")
    assert "never-printed" not in capsys.readouterr().out  # not even as a command: it never ran
    # A failure the script handles itself does not stop it.
    assert notebook.shell("(exit 3) || echo handled").endswith("\nhandled\n")
