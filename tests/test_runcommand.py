"""Exercise 3's run command, read the way the shell and Docker read it (no engine needed).

Each test is one kind of command a student writes; the parser is reached through
``ex3.parse_run_command``, the name the check has always used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from containerlab import config
from containerlab.checks import ex3

FOLDER = (config.ROOT / "solutions" / "ch14").resolve()
DATA = str(FOLDER / "service" / "data")
TOKEN = "cl-ex-exercise-token-7f3a9c2e51d4"  # the made-up token of solutions/ch14/service/.env
SECURITY = "Security rule of the grader (not a Docker error)"


def parse(text: str, folder: Path = FOLDER) -> ex3.RunSpec:
    return ex3.parse_run_command(text, folder)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A student's exercise folder: the service (data, .env) and room for their own files."""
    shutil.copytree(FOLDER / "service", tmp_path / "service")
    return tmp_path.resolve()


@pytest.mark.parametrize("command", [
    "docker run -dp 8000:80 --env-file service/.env -v ./service/data:/data cl-ex-ex3:latest",
    "docker run -itd -p8000:80 --env-file=service/.env -v=./service/data:/data cl-ex-ex3:latest",
    "docker run -d -p=8000:80 --env-file service/.env --volume=./service/data:/data cl-ex-ex3:latest",
])
def test_combined_short_flags_are_read_as_docker_reads_them(command: str) -> None:
    """Are -dp 8000:80, -itd, -p8000:80 and -p=8000:80 read with pflag's rules, finding the image?"""
    spec = parse(command)
    assert spec.image == "cl-ex-ex3:latest"
    assert spec.environment == {"API_TOKEN": TOKEN}
    assert spec.volumes == {DATA: {"bind": "/data", "mode": "rw"}}
    assert any("-p 8000:80" in note or "-p8000:80" in note or "8000:80" in note for note in spec.notes)


def test_harmless_options_are_left_out_with_a_note() -> None:
    """Are --restart, --name, --hostname, --label, --workdir, --user, --memory, --cpus and --health-* accepted?"""
    spec = parse('docker run --detach --restart unless-stopped --name api --hostname api -l team=ds '
                 '--workdir /app --user 1000:1000 --memory 512m --cpus 1.5 --init --rm '
                 '--health-cmd "python -c pass" --health-interval 5s -e API_TOKEN=abc '
                 '-v "$PWD/service/data:/data:ro" cl-ex-ex3:latest')
    assert spec.image == "cl-ex-ex3:latest" and spec.command == []
    assert spec.environment == {"API_TOKEN": "abc"}
    notes = " ".join(spec.notes)
    for written in ("--restart unless-stopped", "--name api", "-l team=ds", '--health-cmd "python -c pass"',
                    "--memory 512m"):
        assert written in notes


@pytest.mark.parametrize("option", ["--restart always", "-w /app", "-u 1000", "--health-retries 3",
                                    "--stop-timeout 5", "--log-opt max-size=1m", "-h api", "--pull never"])
def test_an_option_value_is_not_mistaken_for_the_image(option: str) -> None:
    """Does every option that takes a value consume it, so the image is the word after it?"""
    assert parse(f"docker run {option} cl-ex-ex3:latest").image == "cl-ex-ex3:latest"


def test_a_boolean_flag_takes_equals_value_but_never_the_next_word() -> None:
    """Are --rm=false and -d=true read as values, while `--rm false` makes `false` the image, as in Docker?"""
    assert parse("docker run --rm=false -d=true --init=1 cl-ex-ex3").image == "cl-ex-ex3"
    spec = parse("docker run --rm false cl-ex-ex3")
    assert spec.image == "false" and spec.command == ["cl-ex-ex3"]
    with pytest.raises(ex3.RunCommandProblem, match="on or off"):
        parse("docker run --rm=maybe cl-ex-ex3")


def test_double_dash_ends_the_options() -> None:
    """Does `--` end the options, so the next word is the image even when it starts like an option?"""
    assert parse("docker run -d -- cl-ex-ex3:latest").image == "cl-ex-ex3:latest"


def test_options_after_the_image_are_the_containers_command() -> None:
    """Is `docker run IMAGE -v ...` refused, because Docker would run `-v` inside the container?"""
    with pytest.raises(ex3.RunCommandProblem, match="after the image name"):
        parse("docker run cl-ex-ex3:latest -v ./service/data:/data")


def test_unknown_options_are_named() -> None:
    """Are an unknown long option and an unknown shorthand named, as Docker names them?"""
    with pytest.raises(ex3.RunCommandProblem, match="--detatch"):
        parse("docker run --detatch cl-ex-ex3")
    with pytest.raises(ex3.RunCommandProblem, match="'x' in -dx"):
        parse("docker run -dx cl-ex-ex3")
    with pytest.raises(ex3.RunCommandProblem, match="needs a value"):
        parse("docker run --name")


@pytest.mark.parametrize("option", [
    "--privileged", "--privileged=true", "--cap-add SYS_ADMIN", "--cap-add=ALL", "--device /dev/fuse",
    "--gpus all", "--network host", "--net=host", "--network container:db", "--pid host", "--pid=host",
    "--ipc host", "--uts host", "--userns host", "--cgroupns host", "--security-opt seccomp=unconfined",
    "--security-opt apparmor=unconfined", "--use-api-socket", "--volumes-from db", "--cgroup-parent /",
])
def test_sandbox_weakening_options_are_refused_as_a_security_rule(option: str) -> None:
    """Is each option that would weaken the sandbox refused, saying it is the grader's rule, not Docker's?"""
    with pytest.raises(ex3.SecurityRule, match=r"Security rule of the grader \(not a Docker error\)") as info:
        parse(f"docker run -d {option} -e API_TOKEN=abc -v ./service/data:/data cl-ex-ex3")
    assert option.split()[0].split("=")[0] in str(info.value)


@pytest.mark.parametrize("option", ["--security-opt no-new-privileges", "--privileged=false", "--network bridge",
                                    "--cap-drop ALL", "--read-only", "--network none", "--pid private"])
def test_hardening_and_harmless_values_of_those_options_are_accepted(option: str) -> None:
    """Are options that keep or tighten the sandbox (no-new-privileges, --cap-drop, --privileged=false) accepted?"""
    assert parse(f"docker run {option} cl-ex-ex3").image == "cl-ex-ex3"


@pytest.mark.parametrize("mount", ["-v /var/run/docker.sock:/var/run/docker.sock",
                                   "--mount type=bind,src=/run/docker.sock,dst=/var/run/docker.sock",
                                   "-v /var/run/docker.sock:/docker.sock:ro"])
def test_a_docker_socket_mount_is_refused_as_a_security_rule(mount: str) -> None:
    """Is mounting the engine's socket refused as a security rule, naming the socket?"""
    with pytest.raises(ex3.SecurityRule, match="Docker socket"):
        parse(f"docker run {mount} cl-ex-ex3")


def test_a_mount_outside_the_folder_is_refused_without_showing_host_paths(folder: Path) -> None:
    """Are mounts from outside the folder (also through .. or a link) refused, naming $PWD, not the host path?"""
    (folder / "escape").symlink_to("/etc")
    for source in ("/etc", '"$PWD/.."', "./escape", "../"):
        with pytest.raises(ex3.SecurityRule, match="outside your exercise folder") as info:
            parse(f"docker run -v {source}:/x cl-ex-ex3", folder)
        assert str(folder) not in str(info.value)


def test_a_bare_relative_source_is_a_volume_name_that_docker_refuses() -> None:
    """Is `-v service/data:/data` reported as Docker reports it (an invalid volume name), with the fix?"""
    with pytest.raises(ex3.RunCommandProblem) as info:
        parse("docker run -v service/data:/data --env-file service/.env cl-ex-ex3")
    message = str(info.value)
    assert "invalid characters for a local volume name" in message
    assert '-v "$PWD/service/data:/data"' in message and "./service/data:/data" in message


def test_dot_relative_bind_sources_are_made_absolute_as_the_cli_does() -> None:
    """Are ./service/data (-v and --mount) and $(pwd)/`pwd` forms all the same bind of the data folder?"""
    for mount in ("-v ./service/data:/data:ro", "--mount type=bind,src=./service/data,dst=/data,readonly",
                  '-v "$(pwd)/service/data:/data:ro"', "-v `pwd`/service/data:/data:ro",
                  "--mount type=bind,source=${PWD}/service/data,target=/data,ro=true"):
        assert parse(f"docker run {mount} cl-ex-ex3").volumes == {DATA: {"bind": "/data", "mode": "ro"}}, mount


def test_a_mount_source_without_dot_is_refused_as_docker_does() -> None:
    """Is --mount type=bind,source=service/data refused with Docker's 'must be absolute' and the fix?"""
    with pytest.raises(ex3.RunCommandProblem, match="must be absolute.*source=./service/data"):
        parse("docker run --mount type=bind,source=service/data,target=/data cl-ex-ex3")


@pytest.mark.parametrize("mount", ["-v mydata:/data", "--mount type=volume,src=mydata,dst=/data",
                                   "--mount source=mydata,target=/data"])
def test_a_named_volume_is_read_as_a_volume_not_as_the_data_folder(mount: str) -> None:
    """Is a named volume kept apart from the binds, so it cannot pass for the data folder?"""
    spec = parse(f"docker run {mount} --env-file service/.env cl-ex-ex3")
    assert spec.volumes == {}
    assert [(m.source, m.target) for m in spec.named_volumes] == [("mydata", "/data")]


def test_a_volume_driver_option_that_binds_a_host_path_is_refused() -> None:
    """Is the host-path-in-disguise volume (volume-opt device=/, o=bind) refused as a security rule?"""
    with pytest.raises(ex3.SecurityRule):
        parse("docker run --mount type=volume,dst=/x,volume-opt=type=none,volume-opt=o=bind,"
              "volume-opt=device=/ cl-ex-ex3")


def test_a_script_that_sources_the_env_file_with_set_a_is_graded() -> None:
    """Does `set -a; . service/.env; set +a` then `docker run -e API_TOKEN` pass the token, as bash does?"""
    spec = parse('set -a; . service/.env; set +a\n'
                 'docker run -d -e API_TOKEN -v "$PWD/service/data:/data:ro" cl-ex-ex3:latest\n')
    assert spec.environment == {"API_TOKEN": TOKEN}
    assert spec.reads == ["service/.env", "service/data"]
    spec = parse("#!/usr/bin/env bash\nset -euo pipefail\nsource ./service/.env\n"
                 'docker run -e "API_TOKEN=$API_TOKEN" cl-ex-ex3')
    assert spec.environment == {"API_TOKEN": TOKEN}


def test_a_sourced_variable_that_is_not_exported_does_not_reach_docker() -> None:
    """Without set -a, does `-e API_TOKEN` get nothing (as in bash), with a note saying what to write?"""
    spec = parse(". service/.env\ndocker run -e API_TOKEN cl-ex-ex3")
    assert "API_TOKEN" not in spec.environment
    assert any("set -a" in note for note in spec.notes)


def test_export_and_a_prefix_assignment_reach_docker() -> None:
    """Do `export NAME=value` and `NAME=value docker run -e NAME` put the value in the container?"""
    assert parse("export API_TOKEN=abc\ndocker run -e API_TOKEN cl-ex-ex3").environment == {"API_TOKEN": "abc"}
    assert parse("API_TOKEN=abc docker run -e API_TOKEN cl-ex-ex3").environment == {"API_TOKEN": "abc"}
    assert parse("API_TOKEN=abc\nexport API_TOKEN\ndocker run -e API_TOKEN cl-ex-ex3").environment == \
        {"API_TOKEN": "abc"}


def test_a_bare_env_name_takes_the_scripts_environment_not_the_graders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does `-e API_TOKEN` read the script's environment only, never the grader's own variables?"""
    monkeypatch.setenv("API_TOKEN", "grader-secret")
    assert parse("docker run -e API_TOKEN cl-ex-ex3").environment == {}


def test_command_substitution_is_refused_with_what_to_write() -> None:
    """Is `export $(grep ... | xargs)` refused with the set -a form and --env-file to write instead?"""
    with pytest.raises(ex3.RunCommandProblem, match=r"set -a; \. service/\.env; set \+a.*--env-file"):
        parse("export $(grep -v '^#' service/.env | xargs)\ndocker run -e API_TOKEN cl-ex-ex3")


@pytest.mark.parametrize("script,word", [("cd service && docker run img", "cd"),
                                         ("sudo docker run img", "sudo"),
                                         ("docker run img | tee log", "pipe"),
                                         ("python start.py", "python")])
def test_other_shell_lines_are_refused_with_what_to_write(script: str, word: str) -> None:
    """Are cd, sudo, pipes and other programs refused, naming them and saying what to write?"""
    with pytest.raises(ex3.RunCommandProblem, match=word):
        parse(script)


def test_env_files_come_before_e_options_whatever_the_order(folder: Path) -> None:
    """Does -e override --env-file even when written first, and are env-file quotes kept as Docker 28 keeps them?"""
    (folder / "extra.env").write_text('QUOTED="a b"\n  # comment\nAPI_TOKEN=from-file\nPASSED\n', encoding="utf-8")
    spec = parse("export PASSED=yes\ndocker run -e API_TOKEN=from-e --env-file extra.env cl-ex-ex3", folder)
    assert spec.environment == {"QUOTED": '"a b"', "API_TOKEN": "from-e", "PASSED": "yes"}


def test_the_token_file_a_mount_puts_in_the_container_is_found(folder: Path) -> None:
    """Is the host file behind API_TOKEN_FILE found, mounted as a file or inside a mounted folder?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN + "\n", encoding="utf-8")
    for mount in ('-v "$PWD/secrets/api_token:/run/secrets/api_token:ro"', "-v ./secrets:/run/secrets:ro",
                  "--mount type=bind,src=./secrets/api_token,dst=/run/secrets/api_token,readonly"):
        spec = parse(f"docker run -e API_TOKEN_FILE=/run/secrets/api_token {mount} cl-ex-ex3", folder)
        assert spec.host_file("/run/secrets/api_token") == folder / "secrets" / "api_token", mount
        assert TOKEN in ex3.secret_values(folder / "service", spec)
    spec = parse("docker run -e API_TOKEN_FILE=/run/secrets/api_token cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/api_token") is None


def test_a_powershell_continuation_gets_the_bash_form() -> None:
    """Is a PowerShell backtick at a line end explained, with the backslash to write instead?"""
    with pytest.raises(ex3.RunCommandProblem, match="PowerShell"):
        parse("docker run -d `\n  -v ./service/data:/data `\n  cl-ex-ex3")


def test_other_docker_lines_are_left_out_and_docker_container_run_counts() -> None:
    """Are `docker build` and `docker rm -f` lines left out with a note, and `docker container run` read?"""
    spec = parse("docker build -t cl-ex-ex3 -f ex3.Dockerfile service\ndocker rm -f api || true\n"
                 "docker container run -d -e API_TOKEN=abc cl-ex-ex3")
    assert spec.environment == {"API_TOKEN": "abc"}
    assert any("docker build" in note for note in spec.notes) and any("docker rm" in note for note in spec.notes)
    with pytest.raises(ex3.RunCommandProblem, match="more than one"):
        parse("docker run img\ndocker run img")


def test_two_mounts_at_one_place_are_refused_as_docker_does() -> None:
    """Are two mounts at the same container path refused with Docker's 'Duplicate mount point'?"""
    with pytest.raises(ex3.RunCommandProblem, match="Duplicate mount point"):
        parse("docker run -v ./service/data:/data -v mydata:/data/ cl-ex-ex3")


def test_a_batch_grader_brings_the_students_token_file_and_nothing_else(folder: Path) -> None:
    """Are the files a command mounts from the student's folder listed, without the course's service/?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN, encoding="utf-8")
    (folder / "secrets" / "link").symlink_to(folder / "secrets" / "api_token")
    (folder / "notes.txt").write_text("not mounted", encoding="utf-8")
    from containerlab.checks.runcommand import student_files

    assert student_files('docker run -v "$PWD/secrets/api_token:/t:ro" -e API_TOKEN_FILE=/t --env-file '
                         "service/.env -v ./service/data:/data cl-ex-ex3", folder) == ("secrets/api_token",)
    assert student_files("docker run -v ./secrets:/run/secrets:ro cl-ex-ex3", folder) == ("secrets/api_token",)
    assert student_files("docker run --privileged cl-ex-ex3", folder) == ()


def test_the_token_file_is_the_deepest_mount_and_never_a_link_out(folder: Path) -> None:
    """Does the deepest mount win, as in Docker, and is a token file that links out of its mount never read?"""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "api_token").write_text(TOKEN, encoding="utf-8")
    (folder / "other").mkdir()
    (folder / "other" / "api_token").write_text("other", encoding="utf-8")
    spec = parse("docker run -v ./secrets/api_token:/run/secrets/api_token -v ./other:/run/secrets cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/api_token") == folder / "secrets" / "api_token"
    spec = parse("docker run -v ./secrets:/run/secrets -v mydata:/run/secrets/x cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/x/y") is None
    (folder / "secrets" / "leak").symlink_to("/etc/hostname")
    spec = parse("docker run -v ./secrets:/run/secrets cl-ex-ex3", folder)
    assert spec.host_file("/run/secrets/leak") is None


def test_single_quoted_pwd_is_explained_as_the_shell_leaves_it() -> None:
    """Is '$PWD/service/data:/data' in single quotes (never expanded) refused with the double-quoted form?"""
    with pytest.raises(ex3.RunCommandProblem, match="single quotes.*-v \"\\$PWD/service/data:/data\""):
        parse("docker run -v '$PWD/service/data:/data' cl-ex-ex3")


def test_a_backslash_with_blanks_after_it_is_named() -> None:
    """Is `\\ ` at a line's end (which does not continue the line in bash) named, with its line?"""
    with pytest.raises(ex3.RunCommandProblem, match=r"line 1\).*blanks after the backslash"):
        parse("docker run -d \\  \n  -v ./service/data:/data cl-ex-ex3")


def test_typographic_quotes_are_named() -> None:
    """Are quotes pasted from a web page (“ ”), which bash reads as letters, named with what to type?"""
    with pytest.raises(ex3.RunCommandProblem, match="typographic quotes"):
        parse("docker run -v “$PWD/service/data:/data” cl-ex-ex3")


def test_the_untouched_placeholder_is_named_as_such(tmp_path: Path) -> None:
    """Does the released placeholder of the run-command cell get "still holds the placeholder", not a shell error?"""
    with pytest.raises(ex3.RunCommandProblem, match="still holds the placeholder"):
        parse("# YOUR CODE HERE\nraise NotImplementedError()\n", tmp_path)
