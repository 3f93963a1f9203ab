"""Exercise 3's run command, run by a real shell in a sandbox and read by the real Docker client.

Each test is one kind of command a student writes. ``read_run_command`` runs the
script in a throwaway container where ``docker`` only records its arguments, then
creates (never starts) the container with ``docker container create`` and reads
``docker container inspect``; every test needs the engine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from containerlab import config, engine
from containerlab.checks import ex3
from containerlab.checks.runcommand import student_files

pytestmark = pytest.mark.docker

FOLDER = (config.ROOT / "solutions" / "ch14").resolve()
FIXTURES = Path(__file__).parent / "fixtures" / "ex3"
DATA = str(FOLDER / "service" / "data")
TOKEN = "cl-ex-exercise-token-7f3a9c2e51d4"  # the made-up token of solutions/ch14/service/.env
SECURITY = "Security rule of the grader (not a Docker error)"


def read(text: str, folder: Path = FOLDER, **kwargs) -> ex3.RunSpec:
    return ex3.read_run_command(text, folder, **kwargs)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A student's exercise folder: the service (data, .env) and room for their own files."""
    shutil.copytree(FOLDER / "service", tmp_path / "service")
    return tmp_path.resolve()


@pytest.fixture(autouse=True)
def nothing_left(docker_client):
    """Does every test leave no container, volume or image of the check behind?"""
    def names() -> set[str]:
        # One listing call each: objects that other runs on the engine remove meanwhile cannot fail it.
        api = docker_client.api
        return ({n.lstrip("/") for c in api.containers(all=True) for n in c.get("Names") or []}
                | {v["Name"] for v in api.volumes().get("Volumes") or []}
                | {t for i in api.images() for t in i.get("RepoTags") or []})
    before = names()
    yield
    left = {n for n in names() - before if f"cl-ex-{config.INSTANCE}" in n or n == "customers-data"}
    assert left == set()


def test_the_command_substitution_of_the_issue_gets_the_token_and_the_mount() -> None:
    """Does `-e API_TOKEN="$(grep ... | cut ...)"` with `--mount source="$(pwd)"/...` give the token and the bind?"""
    spec = read((FIXTURES / "passes_command_substitution.run.sh").read_text())
    assert spec.image == "cl-ex-ex3:latest"
    assert spec.environment == {"API_TOKEN": TOKEN}
    assert spec.volumes == {DATA: {"bind": "/data", "mode": "ro"}}
    assert any("-p 8000:80" in note for note in spec.notes)


@pytest.mark.parametrize("command", [
    "docker run -dp 8000:80 --env-file service/.env -v ./service/data:/data cl-ex-ex3:latest",
    "docker run -itd -p8000:80 --env-file=service/.env -v=./service/data:/data cl-ex-ex3:latest",
    "docker run -d=true -p=8000:80 --sig-proxy=false --detach-keys ctrl-x --env-file service/.env "
    "--volume=./service/data:/data cl-ex-ex3:latest",
])
def test_run_only_options_are_taken_out_as_create_names_them(command: str) -> None:
    """Are -d (also inside -dp, -itd), --sig-proxy and --detach-keys, which create refuses, taken out?"""
    spec = read(command)
    assert spec.image == "cl-ex-ex3:latest"
    assert spec.environment == {"API_TOKEN": TOKEN}
    assert spec.volumes == {DATA: {"bind": "/data", "mode": "rw"}}


def test_harmless_options_are_accepted() -> None:
    """Are --restart, --name, --hostname, --label, --workdir, --user, --memory, --cpus, --init, --rm accepted?"""
    spec = read('docker run --detach --restart unless-stopped --name api --hostname api -l team=ds '
                '--workdir /app --user 1000:1000 --memory 512m --cpus 1.5 --init --cidfile api.cid '
                '--health-cmd "python -c pass" --health-interval 5s -e API_TOKEN=abc '
                '-v "$PWD/service/data:/data:ro" cl-ex-ex3:latest')
    assert spec.image == "cl-ex-ex3:latest" and spec.command == []
    assert spec.environment == {"API_TOKEN": "abc"}
    assert not (FOLDER / "api.cid").exists()
    notes = " ".join(spec.notes)
    assert "--restart unless-stopped, --name api" in notes and "--memory, --cpus" in notes
    with pytest.raises(ex3.RunCommandProblem, match="cannot specify both --restart and --rm"):
        read("docker run --restart always --rm cl-ex-ex3")


def test_the_image_is_the_word_docker_takes_as_the_image() -> None:
    """Is `--rm false cl-ex-ex3` read as Docker does (image `false`), and `--hostname X X` find the image?"""
    spec = read("docker run --rm false cl-ex-ex3")
    assert spec.image == "false" and spec.command == ["cl-ex-ex3"]
    assert read("docker run --hostname cl-ex-ex3 -- cl-ex-ex3").image == "cl-ex-ex3"


def test_options_after_the_image_are_the_containers_command() -> None:
    """Is `docker run IMAGE -v ...` refused, because Docker would run `-v` inside the container?"""
    with pytest.raises(ex3.RunCommandProblem, match="after the image name"):
        read("docker run cl-ex-ex3:latest -v ./service/data:/data")


def test_unknown_options_are_named_in_dockers_words() -> None:
    """Are an unknown long option, an unknown shorthand and a missing value reported as Docker says them?"""
    with pytest.raises(ex3.RunCommandProblem, match="unknown flag: --detatch"):
        read("docker run --detatch cl-ex-ex3")
    with pytest.raises(ex3.RunCommandProblem, match="unknown shorthand flag: 'x'"):
        read("docker run -dx cl-ex-ex3")
    with pytest.raises(ex3.RunCommandProblem, match="needs an argument"):
        read("docker run --name")


@pytest.mark.parametrize("option", [
    "--privileged", "--privileged=true", "--cap-add SYS_ADMIN", "--cap-add=ALL", "--device /dev/null",
    "--gpus all", "--network host", "--net=host", "--pid host", "--pid=host", "--ipc host", "--uts host",
    "--userns host", "--security-opt seccomp=unconfined", "--security-opt apparmor=unconfined",
    "--cgroup-parent /",
])
def test_sandbox_weakening_options_are_refused_as_a_security_rule(option: str) -> None:
    """Is each option that would weaken the sandbox refused, saying it is the grader's rule, not Docker's?"""
    with pytest.raises(ex3.SecurityRule, match=r"Security rule of the grader \(not a Docker error\)") as info:
        read(f"docker run -d {option} -e API_TOKEN=abc -v ./service/data:/data cl-ex-ex3")
    assert option.split()[0].split("=")[0] in str(info.value)


@pytest.mark.parametrize("option", ["--security-opt no-new-privileges", "--privileged=false", "--network bridge",
                                    "--cap-drop ALL", "--read-only", "--network none", "--ipc private"])
def test_hardening_and_harmless_values_of_those_options_are_accepted(option: str) -> None:
    """Are options that keep or tighten the sandbox (no-new-privileges, --cap-drop, --privileged=false) accepted?"""
    assert read(f"docker run {option} cl-ex-ex3").image == "cl-ex-ex3"


@pytest.mark.parametrize("mount", ["-v /var/run/docker.sock:/var/run/docker.sock",
                                   "-v /var/run/docker.sock:/docker.sock:ro", "--use-api-socket"])
def test_a_docker_socket_mount_is_refused_as_a_security_rule(mount: str) -> None:
    """Is mounting the engine's socket refused as a security rule, naming the socket?"""
    with pytest.raises(ex3.SecurityRule, match="Docker socket"):
        read(f"docker run {mount} cl-ex-ex3")


def test_a_mount_or_env_file_outside_the_folder_is_refused_without_showing_host_paths(folder: Path) -> None:
    """Are mounts and env files from outside the folder (also through .. or a link) refused, naming $PWD?"""
    (folder / "escape").symlink_to("/etc")
    for option in ("-v /etc:/x", '-v "$PWD/..":/x', "-v ./escape:/x", "-v ../:/x", "--env-file ../x.env",
                   "--env-file /etc/hostname"):
        with pytest.raises(ex3.SecurityRule, match="outside your exercise folder") as info:
            read(f"docker run {option} cl-ex-ex3", folder)
        assert str(folder) not in str(info.value)


def test_a_bare_relative_source_is_refused_in_dockers_words_with_the_fix() -> None:
    """Is `-v service/data:/data` reported as Docker reports it (an invalid volume name), with the fix?"""
    with pytest.raises(ex3.RunCommandProblem) as info:
        read((FIXTURES / "fails_docker_refuses.run.sh").read_text())
    message = str(info.value)
    assert "invalid characters for a local volume name" in message
    assert '-v "$PWD/service/data:/data"' in message and "./service/data:/data" in message


def test_dot_relative_and_pwd_sources_are_all_the_data_folder() -> None:
    """Are ./service/data (-v and --mount), $(pwd), `pwd`, $PWD and ${PWD} all the same bind of the data folder?"""
    for mount in ("-v ./service/data:/data:ro", "--mount type=bind,src=./service/data,dst=/data,readonly",
                  '-v "$(pwd)/service/data:/data:ro"', "-v `pwd`/service/data:/data:ro",
                  "--mount type=bind,source=${PWD}/service/data,target=/data,ro=true"):
        assert read(f"docker run {mount} cl-ex-ex3").volumes == {DATA: {"bind": "/data", "mode": "ro"}}, mount


def test_a_mount_source_without_dot_is_refused_as_docker_does() -> None:
    """Is --mount type=bind,source=service/data refused with Docker's 'must be absolute' and the fix?"""
    with pytest.raises(ex3.RunCommandProblem, match="must be absolute.*source=./service/data"):
        read("docker run --mount type=bind,source=service/data,target=/data cl-ex-ex3")


@pytest.mark.parametrize("mount", ["-v customers-data:/data", "--mount type=volume,src=customers-data,dst=/data",
                                   "--mount source=customers-data,target=/data"])
def test_a_named_volume_is_read_as_a_volume_not_as_the_data_folder(mount: str) -> None:
    """Is a named volume kept apart from the binds (and the volume Docker made for it removed)?"""
    spec = read(f"docker run {mount} --env-file service/.env cl-ex-ex3")
    assert spec.volumes == {}
    assert [(m.source, m.target) for m in spec.named_volumes] == [("customers-data", "/data")]


def test_a_volume_driver_option_that_binds_a_host_path_is_refused() -> None:
    """Is the host-path-in-disguise volume (volume-opt device=/, o=bind) refused as a security rule?"""
    with pytest.raises(ex3.SecurityRule):
        read("docker run --mount type=volume,dst=/x,volume-opt=type=none,volume-opt=o=bind,"
             "volume-opt=device=/ cl-ex-ex3")


def test_a_script_that_sources_the_env_file_with_set_a_is_graded() -> None:
    """Does `set -a; . service/.env; set +a` then `docker run -e API_TOKEN` pass the token, as bash does?"""
    spec = read((FIXTURES / "passes_sourced_env.run.sh").read_text())
    assert spec.environment == {"API_TOKEN": TOKEN}
    spec = read("#!/usr/bin/env bash\nset -euo pipefail\nsource ./service/.env\n"
                'docker run -e "API_TOKEN=$API_TOKEN" cl-ex-ex3')
    assert spec.environment == {"API_TOKEN": TOKEN}


def test_a_sourced_variable_that_is_not_exported_does_not_reach_docker() -> None:
    """Without set -a, does `-e API_TOKEN` get nothing (as in bash), with a note saying what to write?"""
    spec = read((FIXTURES / "fails_sourced_not_exported.run.sh").read_text())
    assert "API_TOKEN" not in spec.environment
    assert any("set -a" in note for note in spec.notes)


def test_export_a_prefix_assignment_and_a_variable_of_a_previous_line_reach_docker() -> None:
    """Do `export NAME=value`, `NAME=value docker run -e NAME` and a variable set on a previous line work?"""
    assert read("export API_TOKEN=abc\ndocker run -e API_TOKEN cl-ex-ex3").environment == {"API_TOKEN": "abc"}
    assert read("API_TOKEN=abc docker run -e API_TOKEN cl-ex-ex3").environment == {"API_TOKEN": "abc"}
    assert read((FIXTURES / "passes_variable_set_before.run.sh").read_text()).environment == {"API_TOKEN": TOKEN}


def test_a_bare_env_name_takes_the_scripts_environment_not_the_graders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does `-e API_TOKEN` read the script's environment only, never the grader's own variables?"""
    monkeypatch.setenv("API_TOKEN", "grader-secret")
    assert read("docker run -e API_TOKEN cl-ex-ex3").environment == {}


def test_export_of_a_command_substitution_works_as_in_bash() -> None:
    """Does `export $(grep -v '^#' service/.env | xargs)` load the token, as it does in bash?"""
    spec = read("export $(grep -v '^#' service/.env | xargs)\ndocker run -e API_TOKEN cl-ex-ex3")
    assert spec.environment == {"API_TOKEN": TOKEN}


def test_cd_inside_the_folder_works_and_outside_is_refused() -> None:
    """Does `cd service && docker run -v ./data:/data` bind service/data, while a docker run from /tmp is refused?"""
    assert read("cd service && docker run -v ./data:/data cl-ex-ex3").volumes == {DATA: {"bind": "/data", "mode": "rw"}}
    assert read('cd "$(dirname "$0")"\ndocker run -v ./service/data:/data cl-ex-ex3').volumes == \
        {DATA: {"bind": "/data", "mode": "rw"}}
    with pytest.raises(ex3.RunCommandProblem, match="outside your exercise folder"):
        read("cd /tmp && docker run cl-ex-ex3")


@pytest.mark.parametrize("script", ["sudo docker run img", "python start.py", "podman run img",
                                    (FIXTURES / "fails_never_runs_docker.run.sh").read_text()])
def test_a_script_that_never_runs_docker_says_so_with_its_output(script: str) -> None:
    """Is a script that never calls docker run refused, with the shell's own last words?"""
    with pytest.raises(ex3.RunCommandProblem, match="never ran docker run"):
        read(script)


def test_a_script_that_never_ends_is_stopped_with_a_clear_message() -> None:
    """Is a script that loops forever stopped at the deadline, saying so?"""
    with pytest.raises(ex3.RunCommandProblem, match="still running after 3 s"):
        read((FIXTURES / "fails_loops_forever.run.sh").read_text(), seconds=3)


def test_env_files_come_before_e_options_whatever_the_order(folder: Path) -> None:
    """Does -e override --env-file even when written first, and are env-file quotes kept as Docker keeps them?"""
    (folder / "extra.env").write_text('QUOTED="a b"\n  # comment\nAPI_TOKEN=from-file\nPASSED\n', encoding="utf-8")
    spec = read("export PASSED=yes\ndocker run -e API_TOKEN=from-e --env-file extra.env cl-ex-ex3", folder)
    assert spec.environment == {"QUOTED": '"a b"', "API_TOKEN": "from-e", "PASSED": "yes"}


def test_the_token_file_a_mount_puts_in_the_container_is_found(folder: Path) -> None:
    """Is the host file behind API_TOKEN_FILE found, mounted as a file or inside a mounted folder?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN + "\n", encoding="utf-8")
    for mount in ('-v "$PWD/secrets/api_token:/run/secrets/api_token:ro"', "-v ./secrets:/run/secrets:ro",
                  "--mount type=bind,src=./secrets/api_token,dst=/run/secrets/api_token,readonly"):
        spec = read(f"docker run -e API_TOKEN_FILE=/run/secrets/api_token {mount} cl-ex-ex3", folder)
        assert spec.host_file("/run/secrets/api_token") == folder / "secrets" / "api_token", mount
        assert TOKEN in ex3.secret_values(folder / "service", spec)
    spec = read("docker run -e API_TOKEN_FILE=/run/secrets/api_token cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/api_token") is None


def test_a_powershell_continuation_gets_the_bash_form() -> None:
    """Is a PowerShell backtick at a line end explained, with the backslash to write instead?"""
    with pytest.raises(ex3.RunCommandProblem, match="PowerShell"):
        read("docker run -d `\n  -v ./service/data:/data `\n  cl-ex-ex3")


def test_other_docker_lines_are_left_out_and_only_one_run_counts() -> None:
    """Are `docker build` and `docker rm -f` left out with a note, `docker container run` read, two runs refused?"""
    spec = read("docker build -t cl-ex-ex3 -f ex3.Dockerfile service\ndocker rm -f api || true\n"
                "docker container run -d -e API_TOKEN=abc cl-ex-ex3")
    assert spec.environment == {"API_TOKEN": "abc"}
    assert any("docker build" in note for note in spec.notes) and any("docker rm" in note for note in spec.notes)
    assert read((FIXTURES / "passes_rm_then_run.run.sh").read_text()).environment == {"API_TOKEN": TOKEN}
    with pytest.raises(ex3.RunCommandProblem, match="more than once"):
        read((FIXTURES / "fails_runs_docker_twice.run.sh").read_text())
    with pytest.raises(ex3.RunCommandProblem, match="not docker create"):
        read("docker create img")


@pytest.mark.parametrize("script", ["docker -H tcp://10.0.0.1:2375 run img", "docker --context other run img",
                                    "export DOCKER_HOST=tcp://10.0.0.1:2375\ndocker run img"])
def test_docker_sent_to_another_engine_is_refused(script: str) -> None:
    """Is a docker sent elsewhere (-H, --context, $DOCKER_HOST) refused as a security rule?"""
    with pytest.raises(ex3.SecurityRule, match="another engine"):
        read(script)


def test_two_mounts_at_one_place_are_refused_in_dockers_words() -> None:
    """Are two mounts at the same container path refused with Docker's 'Duplicate mount point'?"""
    with pytest.raises(ex3.RunCommandProblem, match="Duplicate mount point"):
        read("docker run -v ./service/data:/data -v customers-data:/data/ cl-ex-ex3")


def test_a_batch_grader_brings_the_students_token_file_and_nothing_else(folder: Path) -> None:
    """Are the files a command mounts or names from the student's folder listed, without the course's service/?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN, encoding="utf-8")
    (folder / "secrets" / "link").symlink_to(folder / "secrets" / "api_token")
    (folder / "notes.txt").write_text("not mounted", encoding="utf-8")
    (folder / "token.env").write_text(f"API_TOKEN={TOKEN}\n", encoding="utf-8")
    assert student_files('docker run -v "$PWD/secrets/api_token:/t:ro" -e API_TOKEN_FILE=/t --env-file '
                         "service/.env -v ./service/data:/data cl-ex-ex3", folder) == ("secrets/api_token",)
    assert student_files("docker run -v ./secrets:/run/secrets:ro cl-ex-ex3", folder) == ("secrets/api_token",)
    assert student_files("set -a; . ./token.env; set +a\ndocker run -e API_TOKEN cl-ex-ex3", folder) == ("token.env",)
    assert student_files("docker run --privileged cl-ex-ex3", folder) == ()


def test_the_token_file_is_the_deepest_mount_and_never_a_link_out(folder: Path) -> None:
    """Does the deepest mount win, as in Docker, and is a token file that links out of its mount never read?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN, encoding="utf-8")
    (folder / "other").mkdir()
    (folder / "other" / "api_token").write_text("other", encoding="utf-8")
    spec = read("docker run -v ./secrets/api_token:/run/secrets/api_token -v ./other:/run/secrets cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/api_token") == folder / "secrets" / "api_token"
    spec = read("docker run -v ./secrets:/run/secrets -v customers-data:/run/secrets/x cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/x/y") is None
    (folder / "secrets" / "leak").symlink_to("/etc/hostname")
    spec = read("docker run -v ./secrets:/run/secrets cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/leak") is None


@pytest.mark.parametrize("mount", ["-v '$PWD/service/data:/data'", "-v “$PWD/service/data:/data”"])
def test_single_and_typographic_quotes_reach_docker_as_written(mount: str) -> None:
    """Are single-quoted $PWD and pasted typographic quotes refused in Docker's words (an invalid volume name)?"""
    with pytest.raises(ex3.RunCommandProblem, match="invalid characters for a local volume name"):
        read(f"docker run {mount} cl-ex-ex3")


def test_the_untouched_placeholder_is_named_as_such(tmp_path: Path) -> None:
    """Does the released placeholder of the run-command cell get "still holds the placeholder", not a shell error?"""
    with pytest.raises(ex3.RunCommandProblem, match="still holds the placeholder"):
        read("# YOUR CODE HERE\nraise NotImplementedError()\n", tmp_path)


def test_the_sandbox_has_no_network_and_a_read_only_folder(folder: Path) -> None:
    """Does the script run without network and without writing to the folder, so only its docker call counts?"""
    spec = read("touch written.txt 2>/dev/null; getent hosts deb.debian.org >/dev/null && N=net || N=none\n"
                "docker run -e NET=$N cl-ex-ex3", folder)
    assert spec.environment == {"NET": "none"}
    assert not (folder / "written.txt").exists()
    assert engine.volume_names() is not None


def test_the_script_runs_with_bash_unless_its_first_line_asks_for_sh() -> None:
    """Is a script run with bash, and one that starts with #!/bin/sh with sh (Debian's dash), as a terminal would?"""
    script = '[ -n "$BASH_VERSION" ] && S=bash || S=sh\ndocker run -e SHELL_WAS=$S cl-ex-ex3'
    assert read(script).environment == {"SHELL_WAS": "bash"}
    assert read("#!/bin/sh\n" + script).environment == {"SHELL_WAS": "sh"}


def test_windows_line_ends_are_read_as_the_notebook_writes_them() -> None:
    """Does a script with CRLF line ends (pasted from Windows) run as with LF ends?"""
    spec = read("export API_TOKEN=abc\r\ndocker run -e API_TOKEN \\\r\n  -v ./service/data:/data:ro cl-ex-ex3\r\n")
    assert spec.environment == {"API_TOKEN": "abc"} and spec.volumes == {DATA: {"bind": "/data", "mode": "ro"}}


@pytest.mark.parametrize("bomb", [":(){ :|:& };:", "yes | head -c 100000000", "python3 -c \"x = ' ' * 2 * 10**9\""],
                         ids=["processes", "output", "memory"])
def test_a_bomb_before_docker_run_stays_in_the_sandbox(bomb: str) -> None:
    """Do a fork bomb, 100 MB of output or a 2 GB allocation hit the sandbox's limits and leave the call recorded?"""
    assert read(f"{bomb}\ndocker run -e API_TOKEN=abc cl-ex-ex3", seconds=8).environment == {"API_TOKEN": "abc"}
