"""The base images against the facts of the official images (docker/standins/official-facts.toml).

One container per image reports everything the facts file names (where each
command is, which files exist, users, folders, locales, the Python layout); the
image configuration comes from the engine. The facts are the official images',
so a pulled official image passes as well as a stand-in. Then what the facts
promise, tried for real: a two-stage build that copies site-packages, and
postgres containers started with each kind of setting.
"""

from __future__ import annotations

import gzip
import json
import lzma
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from containerlab import baseimages, config, engine

FIXTURES = Path(__file__).parent / "fixtures" / "standins"
#: Label put on every container a test here starts (tests/conftest.py).
TEST_LABELS = {"org.containerlab.test-run": "test_standin_facts"}


def _facts(name: str) -> dict[str, Any]:
    return baseimages.official_facts()["images"][name]


def _bases(*, python: bool | None = None) -> list[pytest.param]:
    return [pytest.param(base.name, id=base.name) for base in baseimages.BASE_IMAGES
            if python is None or ("python" in _facts(base.name)) == python]


# --------------------------------------------------------------------------- one look per image

_PYTHON_PROBE = """
import importlib, json, os, sys, sysconfig
modules = json.loads(sys.argv[1])
found = {"version": sys.version.split()[0], "prefix": sys.prefix, "executable": sys.executable,
         "purelib": sysconfig.get_path("purelib"), "platlib": sysconfig.get_path("platlib"),
         "include": sysconfig.get_path("include"),
         "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")), "imports": {}}
for module in modules:
    try:
        importlib.import_module(module)
        found["imports"][module] = "ok"
    except Exception as exc:
        found["imports"][module] = f"{type(exc).__name__}: {exc}"
names = os.listdir(found["purelib"]) if os.path.isdir(found["purelib"]) else []
found["site_packages"] = sorted({n.split("-")[0].lower() for n in names if n.endswith((".dist-info", ".egg-info"))})
print("python\\t" + json.dumps(found))
"""


def _probe_script(facts: dict[str, Any]) -> str:
    """A POSIX shell script that prints one tab-separated line per fact it looks at."""
    commands = facts["commands"]
    names = sorted({*commands["at"], *commands.get("present", []), *commands.get("absent", [])})
    files = facts.get("files", {})
    patterns = [*files.get("present", []), *files.get("absent", [])]
    quoted = lambda items: " ".join(shlex.quote(item) for item in items)  # noqa: E731
    lines = [
        f"for c in {quoted(names)}; do printf 'command\\t%s\\t%s\\n' \"$c\" \"$(command -v \"$c\" || true)\"; done",
        # The pattern is expanded by `set --` (a multiarch folder); what is left is looked for.
        f"for p in {quoted(patterns)}; do set -- $p; "
        "if [ -e \"$1\" ] || [ -L \"$1\" ]; then r=yes; else r=no; fi; printf 'file\\t%s\\t%s\\n' \"$p\" \"$r\"; done",
        f"for u in {quoted(facts.get('users', {}))}; do "
        "printf 'user\\t%s\\t%s\\t%s\\n' \"$u\" \"$(getent passwd \"$u\" || true)\" \"$(getent group \"$u\" || true)\"; done",
        f"for d in {quoted(facts.get('directories', {}))}; do "
        "printf 'directory\\t%s\\t%s\\n' \"$d\" \"$(stat -c '%a %U %G' \"$d\" 2>/dev/null || true)\"; done",
        "locale -a 2>/dev/null | while read -r l; do printf 'locale\\t%s\\n' \"$l\"; done",
    ]
    if "python" in facts:
        python = facts["python"]
        stdlib = f"{python['prefix']}/lib/python{python['version_prefix'].rstrip('.')}"
        modules = json.dumps([*python["imports"], *python["import_fails"]])
        # Counted before Python runs: importing modules writes new *.pyc files.
        lines.append(f"printf 'pyc\\t%s\\n' \"$(find {shlex.quote(stdlib)} -name '*.pyc' 2>/dev/null | wc -l)\"")
        lines.append(f"PYTHONDONTWRITEBYTECODE=1 python3 -c {shlex.quote(_PYTHON_PROBE)} {shlex.quote(modules)}")
    return "\n".join(lines)


def _look_inside(docker_client: Any, name: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Run the probe in one container of ``name`` (entrypoint bypassed) and parse what it printed."""
    container = docker_client.containers.run(
        name, [_probe_script(facts)], entrypoint=["/bin/sh", "-c"], detach=True, labels=TEST_LABELS
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        output = container.logs(stdout=True, stderr=False).decode()
        errors = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True, v=True)
    seen: dict[str, Any] = {"command": {}, "file": {}, "user": {}, "directory": {}, "locale": [],
                            "python": None, "pyc": None, "status": status, "stderr": errors}
    for line in output.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind in ("command", "file", "directory"):
            seen[kind][fields[0]] = fields[1] if len(fields) > 1 else ""
        elif kind == "user":
            seen["user"][fields[0]] = (fields[1], fields[2])
        elif kind == "locale":
            seen["locale"].append(fields[0])
        elif kind == "pyc":
            seen["pyc"] = int(fields[0])
        elif kind == "python":
            seen["python"] = json.loads(rest)
    return seen


@pytest.fixture(scope="module")
def inside(docker_client):
    """What one container of each image reports, looked at once per image."""
    seen: dict[str, dict[str, Any]] = {}

    def look(name: str) -> dict[str, Any]:
        if engine.image(name) is None:
            pytest.fail(f"{name} is not in the engine: run `containerlab images` first")
        if name not in seen:
            seen[name] = _look_inside(docker_client, name, _facts(name))
        return seen[name]

    return look


def _differences(label: str, expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    return [f"{label} {key}: official {want!r}, here {found.get(key)!r}"
            for key, want in expected.items() if found.get(key) != want]


# --------------------------------------------------------------------------- the facts, compared


@pytest.mark.docker
@pytest.mark.parametrize("name", _bases())
def test_image_config_matches_the_official_image(name):
    """Do CMD, ENTRYPOINT, USER, WORKDIR, EXPOSE, VOLUME, STOPSIGNAL and ENV match the official image?"""
    facts = _facts(name)
    image = engine.image(name)
    assert image is not None, f"{name} is not in the engine: run `containerlab images` first"
    cfg = image.config
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [])
    found = {
        "cmd": cfg.get("Cmd") or [], "entrypoint": cfg.get("Entrypoint") or [], "user": cfg.get("User") or "",
        "workdir": cfg.get("WorkingDir") or "", "exposed_ports": sorted(cfg.get("ExposedPorts") or {}),
        "volumes": sorted(cfg.get("Volumes") or {}), "stop_signal": cfg.get("StopSignal") or "",
    }
    wrong = _differences("config", {key: facts[key] for key in found}, found)
    wrong += _differences("ENV", facts["env"]["values"], env)
    wrong += [f"ENV {key} is not set (the official image sets it)" for key in facts["env"]["set"] if not env.get(key)]
    wrong += [f"ENV {key}={env[key]!r} is set (the official image leaves it unset)"
              for key in facts["env"]["unset"] if key in env]
    assert not wrong, "\n".join(wrong)


@pytest.mark.docker
@pytest.mark.parametrize("name", _bases())
def test_commands_are_where_the_official_image_has_them(name, inside):
    """Does `command -v` find each command where the official image has it, and not find the ones it lacks?"""
    facts, seen = _facts(name)["commands"], inside(name)["command"]
    wrong = _differences("command -v", facts["at"], seen)
    wrong += [f"{c}: not found (the official image has it)" for c in facts.get("present", []) if not seen.get(c)]
    wrong += [f"{c}: found at {seen[c]} (the official image has none)" for c in facts.get("absent", []) if seen.get(c)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.docker
@pytest.mark.parametrize("name", _bases())
def test_files_users_and_folders_match_the_official_image(name, inside):
    """Are the official image's files, users (ids, home, shell), folders (mode, owner) and locales here?"""
    facts, seen = _facts(name), inside(name)
    files = facts.get("files", {})
    wrong = [f"{p}: missing" for p in files.get("present", []) if seen["file"].get(p) != "yes"]
    wrong += [f"{p}: present (the official image has none)" for p in files.get("absent", []) if seen["file"].get(p) != "no"]
    for user, want in facts.get("users", {}).items():
        passwd, group = seen["user"].get(user, ("", ""))
        fields = passwd.split(":") if passwd else []
        got = {"uid": int(fields[2]), "gid": int(fields[3]), "home": fields[5], "shell": fields[6]} if fields else {}
        wrong += _differences(f"user {user}", want, got)
        if not group.startswith(f"{user}:x:{want['gid']}:"):
            wrong.append(f"group {user}: official gid {want['gid']}, here {group!r}")
    for folder, want in facts.get("directories", {}).items():
        mode, _, owners = seen["directory"].get(folder, "").partition(" ")
        owner, _, group = owners.partition(" ")
        wrong += _differences(f"folder {folder}", want, {"mode": mode, "owner": owner, "group": group})
    wrong += [f"locale {loc}: not available" for loc in facts.get("locales", {}).get("available", [])
              if loc not in seen["locale"]]
    assert not wrong, "\n".join(wrong)


@pytest.mark.docker
@pytest.mark.parametrize("name", _bases(python=True))
def test_python_layout_matches_the_official_image(name, inside):
    """Is Python where the official image has it: prefix, site-packages, headers, modules, only pip installed?"""
    facts, seen = _facts(name)["python"], inside(name)
    python = seen["python"]
    assert python is not None, f"no python3 answered in {name}: {seen['stderr'][-2000:]}"
    assert python["version"].startswith(facts["version_prefix"]), python["version"]
    keys = ("prefix", "executable", "purelib", "platlib", "include", "shared", "site_packages")
    wrong = _differences("python", {key: facts[key] for key in keys}, python)
    wrong += [f"import {m}: {python['imports'][m]}" for m in facts["imports"] if python["imports"][m] != "ok"]
    wrong += [f"import {m} works (the official image cannot import it)" for m in facts["import_fails"]
              if python["imports"][m] == "ok"]
    if seen["pyc"] != facts["stdlib_pyc_files"]:
        wrong.append(f"{seen['pyc']} *.pyc files in the standard library (official: {facts['stdlib_pyc_files']})")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------------------- what the facts promise


@pytest.mark.docker
@pytest.mark.slow
def test_site_packages_copied_from_a_builder_stage_import_in_the_slim_image(tmp_path, unique_tag):
    """Does a two-stage build that copies /usr/local/lib/python3.13/site-packages build, and import there?"""
    (tmp_path / "Dockerfile").write_text((FIXTURES / "passes_copies_site_packages.dockerfile").read_text())
    engine.build(tmp_path, tag=unique_tag, build_args={"BASE_IMAGE": config.PYTHON_SLIM_IMAGE})
    version, where, prefix = engine.exec_output(unique_tag, [
        "python", "-c", "import requests, sys; print(requests.__version__, requests.__file__, sys.prefix)"]).split()
    assert version == "2.32.3"
    assert where.startswith("/usr/local/lib/python3.13/site-packages/") and prefix == "/usr/local"


def _zstd_frame(data: bytes) -> bytes:
    """``data`` as one Zstandard frame of raw (stored) blocks, which `zstd -d` reads.

    Format: RFC 8878, section 3.1.1 (magic number, a frame header with the content size
    in 8 bytes, blocks of at most 128 KiB with a 3-byte header: last flag, type 0, size).
    """
    frame = bytearray(b"\x28\xb5\x2f\xfd" + bytes([0b11100000]) + len(data).to_bytes(8, "little"))
    chunks = [data[i:i + 128 * 1024] for i in range(0, len(data), 128 * 1024)] or [b""]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        frame += (int(last) | len(chunk) << 3).to_bytes(3, "little") + chunk
    return bytes(frame)


def _readable_folder(path: Path) -> Path:
    """Make ``path`` and what it holds readable by the container's postgres user (another uid)."""
    path.mkdir(parents=True, exist_ok=True)
    for parent in [path, *path.parents[:3]]:
        parent.chmod(parent.stat().st_mode | 0o055)
    return path


def _postgres(environment: dict[str, str], volumes: dict[str, dict[str, str]] | None = None):
    return engine.run(config.POSTGRES_IMAGE, ports={5432: None}, environment=environment,
                      volumes=volumes or {}, labels=TEST_LABELS)


def _connect(port: int, *, user: str, dbname: str, password: str | None, timeout: float = 60) -> psycopg.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname,
                                   connect_timeout=3)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _exit_and_logs(container: engine.ContainerRef, *, timeout: float = 60) -> tuple[int, str]:
    status = engine.wait_container(container, timeout=timeout)
    assert status is not None, f"the container still ran after {timeout:.0f} s"
    return status, engine.logs(container, tail=None)


@pytest.mark.docker
@pytest.mark.slow
def test_postgres_takes_every_setting_from_secret_files_and_runs_each_kind_of_init_file(tmp_path):
    """Do the *_FILE variables, POSTGRES_INITDB_ARGS and every init file kind work, with the server as uid 999?"""
    entrypoint_facts = _facts(config.POSTGRES_IMAGE)["entrypoint_variables"]
    secrets = _readable_folder(tmp_path / "secrets")
    password = "from-a-file-" + uuid.uuid4().hex[:8]
    values = {"POSTGRES_PASSWORD": password, "POSTGRES_USER": "course", "POSTGRES_DB": "shop",
              "POSTGRES_INITDB_ARGS": "--data-checksums --auth-local=trust"}
    assert set(values) == set(entrypoint_facts["from_file"])
    for name, value in values.items():
        (secrets / name.lower()).write_text(value + "\n")
        (secrets / name.lower()).chmod(0o644)

    init = _readable_folder(tmp_path / "initdb")
    files = {
        "10-table.sql": b"CREATE TABLE seen (kind text);\n",
        "20-rows.sql.gz": gzip.compress(b"INSERT INTO seen VALUES ('sql.gz');\n"),
        "30-rows.sql.xz": lzma.compress(b"INSERT INTO seen VALUES ('sql.xz');\n"),
        "40-rows.sql.zst": _zstd_frame(b"INSERT INTO seen VALUES ('sql.zst');\n"),
        # Sourced (not executable): runs in the entrypoint's shell and can use its helper.
        "50-sourced.sh": b"docker_process_sql -c \"INSERT INTO seen VALUES ('sourced sh in $POSTGRES_DB')\"\n",
        # Executable: its own process, with the exported settings.
        "60-run.sh": b"#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 --username \"$POSTGRES_USER\" --dbname \"$POSTGRES_DB\""
                     b" -c \"INSERT INTO seen VALUES ('executable sh')\"\n",
        "70-notes.txt": b"not SQL: the entrypoint leaves this alone\n",
    }
    assert {Path(f).name.partition(".")[2] for f in files} >= {s.lstrip(".") for s in entrypoint_facts["init_file_suffixes"]}
    for name, data in files.items():
        (init / name).write_bytes(data)
        (init / name).chmod(0o755 if name == "60-run.sh" else 0o644)

    environment = {f"{name}_FILE": f"/run/secrets/{name.lower()}" for name in values}
    container = _postgres(environment, {str(secrets): {"bind": "/run/secrets", "mode": "ro"},
                                        str(init): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}})
    try:
        port = engine.host_port(container, 5432)
        with _connect(port, user="course", dbname="shop", password=password) as conn:
            kinds = sorted(row[0] for row in conn.execute("SELECT kind FROM seen").fetchall())
            checksums = conn.execute("SHOW data_checksums").fetchone()[0]
        assert kinds == ["executable sh", "sourced sh in shop", "sql.gz", "sql.xz", "sql.zst"]
        assert checksums == "on", "POSTGRES_INITDB_ARGS_FILE did not reach initdb"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="course", password="wrong", dbname="shop",
                            connect_timeout=3)
        code, output = engine.exec_inside(container, ["sh", "-c", "grep '^Uid:' /proc/1/status; stat -c '%u %a' \"$PGDATA\""])
        assert code == 0, output
        uid_line, pgdata = output.splitlines()
        assert uid_line.split()[1:] == ["999"] * 4, f"the server does not run as postgres (999): {uid_line}"
        assert pgdata == "999 700"
        assert "ignoring /docker-entrypoint-initdb.d/70-notes.txt" in engine.logs(container, tail=None)
    finally:
        engine.remove_container(container)


@pytest.mark.docker
@pytest.mark.slow
def test_postgres_refuses_a_value_and_its_file_together(tmp_path):
    """Does setting both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE stop the container with a message naming both?"""
    secret = _readable_folder(tmp_path / "secrets") / "password"
    secret.write_text("from-the-file\n")
    secret.chmod(0o644)
    container = _postgres({"POSTGRES_PASSWORD": "from-the-environment", "POSTGRES_PASSWORD_FILE": "/run/secrets/password"},
                          {str(secret.parent): {"bind": "/run/secrets", "mode": "ro"}})
    try:
        status, logs = _exit_and_logs(container)
    finally:
        engine.remove_container(container)
    assert status != 0
    assert "POSTGRES_PASSWORD" in logs and "POSTGRES_PASSWORD_FILE" in logs, logs


@pytest.mark.docker
@pytest.mark.slow
def test_postgres_without_a_password_stops_and_says_what_to_set():
    """Does a first start without POSTGRES_PASSWORD (and no trust) stop at once, naming POSTGRES_PASSWORD?"""
    container = _postgres({})
    try:
        status, logs = _exit_and_logs(container)
    finally:
        engine.remove_container(container)
    assert status != 0
    assert "POSTGRES_PASSWORD" in logs, logs


@pytest.mark.docker
@pytest.mark.slow
def test_postgres_trust_lets_clients_in_without_a_password():
    """Does POSTGRES_HOST_AUTH_METHOD=trust start without a password and let a network client in without one?"""
    assert _facts(config.POSTGRES_IMAGE)["entrypoint_variables"]["password_required_unless"] == "trust"
    container = _postgres({"POSTGRES_HOST_AUTH_METHOD": "trust"})
    try:
        port = engine.host_port(container, 5432)
        with _connect(port, user="postgres", dbname="postgres", password=None) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"
    finally:
        engine.remove_container(container)
