"""scan.scan_image: does it find baked secrets and data where they hide, and only there?

Unit tests feed it a hand-made ``docker save`` archive (the engine faked);
integration tests build the book's demo images on the real engine.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator

import pytest

from containerlab import config, engine, scan, shared

#: Made up for the tests; it is nobody's credential.
FAKE_SECRET = "cl-sec-FAKE-token-0000-not-real"
BAKED = config.DOCKER_DIR / "baked-secrets"


# --------------------------------------------------------------------------- a fake engine


@pytest.fixture(autouse=True)
def fresh_scan_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no layer or image scanned yet, no shared folder."""
    for name in ("_IMAGE_SCANS", "_LAYER_SCANS", "_MEMBER_DIFF_IDS"):
        monkeypatch.setattr(scan, name, {})
    monkeypatch.setattr(shared, "_folder", None)



def _tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding ``files`` (path -> content), like one image layer."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


#: How engines write ``docker save``: the legacy store's ``<id>/layer.tar`` (uncompressed), and the
#: containerd image store's OCI layout (Engine 25 and later), whose blobs are compressed as built or pulled.
LAYOUTS = ("legacy", "oci-gzip", "oci-zstd")


def _compress(blob: bytes, layout: str) -> bytes:
    if layout == "oci-gzip":
        return gzip.compress(blob)
    if layout == "oci-zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=blob, capture_output=True, check=True).stdout
    return blob


def _fake_image(monkeypatch: pytest.MonkeyPatch, layers: list[tuple[str, dict[str, bytes]]],
                config_extra: dict | None = None, extra_history: list[dict] | None = None,
                with_manifest: bool = True, layout: str = "legacy") -> str:
    """Make engine.image_archive/engine.image serve an image with these (instruction, files) layers.

    ``with_manifest=False`` leaves out the archive's ``manifest.json`` (a damaged archive);
    ``layout`` is one of :data:`LAYOUTS`.
    """
    tars = [_tar(files) for _, files in layers]
    diff_ids = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in tars]
    image_config = {
        "config": {"Env": ["PATH=/usr/bin"], **(config_extra or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": instruction} for instruction, _ in layers] + (extra_history or []),
    }
    raw_config = json.dumps(image_config).encode()
    blobs = [_compress(blob, layout) for blob in tars]
    if layout == "legacy":
        names = [f"layer{i}/layer.tar" for i in range(len(blobs))]
        config_name = "0123abcd.json"
        extra: list[tuple[str, bytes]] = []
    else:
        names = [f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}" for blob in blobs]
        config_name = f"blobs/sha256/{hashlib.sha256(raw_config).hexdigest()}"
        extra = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                 ("index.json", json.dumps({"schemaVersion": 2, "manifests": []}).encode())]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        # Layers first, the config and manifest last, as engines write them: the scan must not care.
        members = [*zip(names, blobs), (config_name, raw_config), *extra]
        if with_manifest:
            members.append(("manifest.json", json.dumps([{"Config": config_name, "Layers": names}]).encode()))
        for member, content in members:
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))

    @contextlib.contextmanager
    def fake_archive(name: str) -> Iterator[io.BytesIO]:
        yield io.BytesIO(archive.getvalue())

    # The image id is the sha256 of the config, as the legacy store makes it.
    image_id = "sha256:" + hashlib.sha256(raw_config).hexdigest()
    monkeypatch.setattr(engine, "image_archive", fake_archive)
    monkeypatch.setattr(engine, "image", lambda name: engine.ImageInfo(id=image_id, layers=tuple(diff_ids)))
    def history(name: str) -> list[dict]:
        return [{"created_by": step["created_by"], "created": 0, "size": 0, "comment": ""}
                for step in image_config["history"]]

    # The package's name and the one engine.content_digest calls inside engine.images.
    monkeypatch.setattr(engine, "image_history", history)
    monkeypatch.setattr(engine.images, "image_history", history)
    return "fake:image"


PRIVATE_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakefakefake\n-----END OPENSSH PRIVATE KEY-----\n"
PUBLIC_CERT = b"-----BEGIN CERTIFICATE-----\nMIIfakefake\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_deleted_file_is_reported_in_the_layer_that_stores_it(monkeypatch, layout):
    """Is a .env removed by a later layer still reported, in its own layer, with the deleting layer named,
    in the archives of both image stores (compressed OCI blobs too)?"""
    name = _fake_image(monkeypatch, [
        ("base", {"etc/os-release": b"fake"}),
        ("COPY .env .", {"app/.env": f"TOKEN={FAKE_SECRET}\n".encode()}),
        ("RUN rm .env", {"app/.wh..env": b""}),
    ], layout=layout)
    findings = scan.scan_image(name, secret_values=[FAKE_SECRET])
    assert {(f.kind, f.where, f.layer, f.path) for f in findings} == {
        (scan.SECRET_FILE, "layer", 1, "app/.env"),
        (scan.SECRET_VALUE, "layer", 1, "app/.env"),
    }
    assert all(f.instruction == "COPY .env ." and "later layer (2)" in f.detail for f in findings)
    assert all(FAKE_SECRET not in f.detail for f in findings), "the secret itself must be masked"


def test_private_keys_and_key_names_are_found_but_public_certificates_are_not(monkeypatch):
    """Are id_rsa and a .pem holding a private key reported, and a .pem certificate left alone?"""
    name = _fake_image(monkeypatch, [
        ("COPY keys", {"root/.ssh/id_rsa": b"anything", "srv/tls/server.pem": PRIVATE_KEY,
                       "etc/ssl/certs/ca.pem": PUBLIC_CERT}),
    ])
    found = {(f.kind, f.path) for f in scan.scan_image(name)}
    assert found == {(scan.SECRET_FILE, "root/.ssh/id_rsa"), (scan.SECRET_FILE, "srv/tls/server.pem")}


def test_a_dot_file_in_an_archive_written_with_leading_dot_slash_keeps_its_name(monkeypatch):
    """Is ``./.env`` (as `tar -C dir .` writes it, e.g. an imported root file system) found as ``.env``?"""
    name = _fake_image(monkeypatch, [("ADD rootfs.tar /", {"./.env": b"TOKEN=anything", "./app/ok.txt": b"x"})])
    assert {(f.kind, f.path) for f in scan.scan_image(name)} == {(scan.SECRET_FILE, ".env")}


def test_only_data_files_at_or_above_the_size_limit_are_reported(monkeypatch):
    """Is a CSV at the size limit reported while a smaller one (a package's sample data) is not?"""
    name = _fake_image(monkeypatch, [
        ("COPY data", {"app/data/customers.csv": b"x" * 2000, "lib/pkg/iris.csv": b"x" * 1999,
                       "app/data/big.parquet": b"p" * 5000}),
    ])
    found = {f.path for f in scan.scan_image(name, data_min_bytes=2000) if f.kind == scan.DATA_FILE}
    assert found == {"app/data/customers.csv", "app/data/big.parquet"}


def test_data_files_are_found_by_their_bytes_whatever_they_are_called(monkeypatch):
    """Is a data file found renamed, inside a bigger file, and after a later layer deleted it, but not by chance?"""
    sample = b"tenure_months,orders_last_year,avg_order_value,support_tickets\n" + b"24,6,50.0,1\n" * 40
    name = _fake_image(monkeypatch, [
        ("COPY data/customers.csv model/training-set.txt", {"app/model/training-set.txt": sample}),
        ("RUN cat data/*.csv > all.txt", {"app/all.txt": b"header\n" + sample + b"more\n"}),
        ("COPY data/customers.csv /tmp/x", {"tmp/x": sample}),
        ("RUN rm /tmp/x", {"tmp/.wh.x": b""}),
        ("COPY src/ src/", {"app/src/api.py": b"print('24,6,50.0,1')\n"}),
    ])
    found = [f for f in scan.scan_image(name, data_files={"data/customers.csv": sample}) if f.kind == scan.DATA_COPY]
    assert {(f.path, f.layer) for f in found} == {("app/model/training-set.txt", 0), ("app/all.txt", 1), ("tmp/x", 2)}
    assert "is a copy of the data file data/customers.csv" in found[0].detail
    assert "holds the contents of" in found[1].detail
    assert "later layer (3)" in found[2].detail


def test_secret_split_across_read_chunks_is_still_found(monkeypatch):
    """Is a secret value found when it straddles the scanner's 1 MiB read boundary?"""
    boundary = 1 << 20
    content = b"a" * (boundary - 10) + FAKE_SECRET.encode() + b"b" * 100
    name = _fake_image(monkeypatch, [("COPY blob", {"app/model.bin": content})])
    findings = scan.scan_image(name, secret_values=[FAKE_SECRET])
    assert [(f.kind, f.path) for f in findings] == [(scan.SECRET_VALUE, "app/model.bin")]


def test_secrets_in_config_and_history_are_found(monkeypatch):
    """Are a secret in ENV (config) and in a RUN step's build arguments (history) both reported?"""
    name = _fake_image(
        monkeypatch,
        [("base", {"etc/hostname": b"x"})],
        config_extra={"Env": ["PATH=/usr/bin", f"API_TOKEN={FAKE_SECRET}", "DB_PASSWORD=hunter-fake"]},
        extra_history=[{"created_by": "ARG BUILD_TOKEN", "empty_layer": True},
                       {"created_by": f"RUN |1 BUILD_TOKEN={FAKE_SECRET} /bin/sh -c make", "empty_layer": True}],
    )
    findings = scan.scan_image(name, secret_values=[FAKE_SECRET])
    kinds = {(f.kind, f.where) for f in findings}
    assert (scan.SECRET_VALUE, "config") in kinds
    assert (scan.SECRET_VALUE, "history") in kinds
    # A variable named like a secret is reported even when its value was not given.
    assert any(f.kind == scan.SECRET_NAME and "DB_PASSWORD" in f.detail for f in findings)
    history = [f for f in findings if f.where == "history"]
    assert history[0].instruction.startswith("RUN |1 BUILD_TOKEN=")


def test_clean_image_gives_no_findings(monkeypatch):
    """Does an image with ordinary files, a certificate and small CSVs give an empty list?"""
    name = _fake_image(monkeypatch, [
        ("base", {"usr/bin/python3": b"\x7fELF", "etc/ssl/certs/ca.pem": PUBLIC_CERT}),
        ("COPY src/ src/", {"app/src/api.py": b"print('hello')", "app/src/lookup.csv": b"a,b\n1,2\n"}),
    ])
    assert scan.scan_image(name, secret_values=[FAKE_SECRET, ""]) == []


def test_a_layer_scanned_once_is_not_read_again_for_the_same_search(monkeypatch):
    """Scanning an image twice reads its layers once; another secret value reads them again."""
    reads = []
    real = scan._scan_layer
    monkeypatch.setattr(scan, "_scan_layer", lambda *args, **kw: reads.append(1) or real(*args, **kw))
    name = _fake_image(monkeypatch, [("base", {"etc/hostname": b"x"}),
                                     ("COPY . .", {"app/settings.txt": f"t={FAKE_SECRET}".encode()})])
    first = scan.scan_image(name, secret_values=[FAKE_SECRET])
    assert len(reads) == 2
    assert scan.scan_image(name, secret_values=[FAKE_SECRET]) == first and len(reads) == 2
    scan.scan_image(name, secret_values=["cl-another-made-up-value"])
    assert len(reads) == 4


def _count_saves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the calls of the (fake) ``docker save``: the names saved, in order."""
    saves: list[str] = []
    real = engine.image_archive
    monkeypatch.setattr(engine, "image_archive", lambda name: saves.append(name) or real(name))
    return saves


def test_an_image_scanned_once_is_not_saved_again_in_this_process_or_one_that_shares_the_folder(
        monkeypatch, tmp_path):
    """Is an image met again (same id, same search) taken from this process's scans, then from a shared folder?"""
    name = _fake_image(monkeypatch, [("COPY . .", {"app/.env": f"API_TOKEN={FAKE_SECRET}".encode()}),
                                     ("RUN rm .env", {"app/.wh..env": b""})])
    saves = _count_saves(monkeypatch)
    shared.share(tmp_path / "scans")
    first = scan.scan_image(name, secret_values=[FAKE_SECRET])
    assert {f.kind for f in first} == {scan.SECRET_FILE, scan.SECRET_VALUE} and "deletes it" in first[0].detail
    assert scan.scan_image(name, secret_values=[FAKE_SECRET]) == first and len(saves) == 1
    # Another worker: nothing in its own memory, the same folder.
    monkeypatch.setattr(scan, "_IMAGE_SCANS", {})
    monkeypatch.setattr(scan, "_LAYER_SCANS", {})
    assert scan.scan_image(name, secret_values=[FAKE_SECRET]) == first and len(saves) == 1
    # Another search is another scan.
    scan.scan_image(name, secret_values=["cl-another-made-up-value"])
    assert len(saves) == 2


def test_a_damaged_shared_scan_is_ignored_and_the_image_scanned_again(monkeypatch, tmp_path):
    """Does a shared scan file that is not JSON (a crash, a full disk) lead to a fresh scan, not an error?"""
    name = _fake_image(monkeypatch, [("COPY . .", {"app/settings.txt": f"t={FAKE_SECRET}".encode()})])
    saves = _count_saves(monkeypatch)
    shared.share(tmp_path)
    first = scan.scan_image(name, secret_values=[FAKE_SECRET])
    [stored] = tmp_path.glob("*.json")
    stored.write_text("{ not json", encoding="utf-8")
    monkeypatch.setattr(scan, "_IMAGE_SCANS", {})
    assert scan.scan_image(name, secret_values=[FAKE_SECRET]) == first and len(saves) == 2


def test_a_reused_member_name_with_other_contents_is_read_again(monkeypatch):
    """A layer member named like one scanned before, but with other contents (per the manifest), is scanned anew."""
    clean = _fake_image(monkeypatch, [("COPY . .", {"app/settings.txt": b"nothing here"})])
    assert scan.scan_image(clean, secret_values=[FAKE_SECRET]) == []
    baked = _fake_image(monkeypatch, [("COPY . .", {"app/settings.txt": f"t={FAKE_SECRET}".encode()})])
    assert [f.path for f in scan.scan_image(baked, secret_values=[FAKE_SECRET])] == ["app/settings.txt"]


def test_an_archive_without_a_manifest_is_a_clear_error(monkeypatch):
    """An archive with layers but no manifest.json raises ScanError saying so."""
    name = _fake_image(monkeypatch, [("base", {"etc/hostname": b"x"})], with_manifest=False)
    with pytest.raises(scan.ScanError, match="no manifest"):
        scan.scan_image(name)


def test_missing_image_raises_a_clear_error():
    """Does scanning an image that does not exist raise ScanError naming it?"""
    missing = f"cl-sec-no-such-image-{uuid.uuid4().hex[:8]}:nope"
    with pytest.raises(scan.ScanError, match="no local image"):
        scan.scan_image(missing)


def test_every_secret_finding_is_named_up_to_five(monkeypatch):
    """Does the secret check name each finding (where, path, what), not only the first, and count the rest?"""
    from containerlab.checks import CheckResult, baked

    found = [scan.Finding(scan.SECRET_VALUE, "layer", f"app/copy{i}.env", "holds the token", i, "COPY . .")
             for i in range(6)] + [scan.Finding(scan.SECRET_VALUE, "config", "Env", "ENV TOKEN=cl-***", None, "")]
    monkeypatch.setattr(scan, "scan_image", lambda *args, **kwargs: found)
    make = lambda name, passed, message, hint: CheckResult(name, name, passed, 1, message, hint)  # noqa: E731
    secret, _data = baked.scan_checks("some:image", values=["x"], data={}, make=make)
    assert not secret.passed and secret.message.startswith("7 finding(s):")
    assert [line for line in secret.message.splitlines() if line.startswith("- layer")] == [
        f"- layer {i} (COPY . .): /app/copy{i}.env: holds the token" for i in range(5)]
    assert secret.message.splitlines()[-1] == "- and 2 more"


def test_a_failed_docker_save_is_named_and_counted_as_engine_pressure(monkeypatch, tmp_path):
    """Does a `docker save` that fails (the engine's disk full) say so, not "empty file", with pressure on its error?"""
    from containerlab.engine import images

    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Error response from daemon: write /var/lib/docker/tmp/docker-export-1/"
                    "layer.tar: no space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    full = engine.ImageInfo(id="sha256:" + "0" * 64)
    monkeypatch.setattr(images, "image", lambda name: full)
    monkeypatch.setattr(engine, "image", lambda name: full)
    monkeypatch.setattr(images, "image_history", lambda name: [])
    with pytest.raises(scan.ScanError, match="docker save.*no space left on device") as raised:
        scan.scan_image("cl-sec-test-full-disk:test")
    assert [sign for sign in raised.value.pressure if "docker save" in sign and "no space" in sign]


# --------------------------------------------------------------------------- the real engine


@pytest.fixture(scope="module")
def demo_images() -> Iterator[dict[str, str]]:
    """Build the three baked-secrets demo images under test tags; remove the tags afterwards."""
    run = uuid.uuid4().hex[:8]
    tags = {kind: f"cl-sec-test-{kind}-{run}:test" for kind in ("copy", "env", "mount")}
    try:
        engine.build(BAKED, tag=tags["copy"], dockerfile=BAKED / "copy-then-delete.Dockerfile")
        engine.build(BAKED, tag=tags["env"], dockerfile=BAKED / "env-and-arg.Dockerfile",
                     build_args={"BUILD_TOKEN": FAKE_SECRET})
        engine.build(BAKED, tag=tags["mount"], dockerfile=BAKED / "secret-mount.Dockerfile",
                     secrets={"build_token": BAKED / "build_token.txt"})
        yield tags
    finally:
        for tag in tags.values():
            engine.remove_image(tag)


@pytest.mark.docker
@pytest.mark.slow
def test_scan_recovers_the_secret_a_later_layer_deleted(demo_images):
    """Does the scan find the .env (and the token in it) that copy-then-delete removed, and can it be read back?"""
    findings = scan.scan_image(demo_images["copy"], secret_values=[FAKE_SECRET])
    in_layers = [f for f in findings if f.where == "layer"]
    assert {(f.kind, f.path) for f in in_layers} == {(scan.SECRET_FILE, "app/.env"), (scan.SECRET_VALUE, "app/.env")}
    layer = in_layers[0].layer
    assert in_layers[0].instruction.startswith("COPY .env")
    assert "deletes it" in in_layers[0].detail
    # The running container cannot see the file, but the layer still holds it.
    assert FAKE_SECRET in scan.layer_file(demo_images["copy"], layer, "app/.env").decode()


@pytest.mark.docker
@pytest.mark.slow
def test_scan_finds_the_env_and_arg_secret_in_config_and_history(demo_images):
    """Does the scan report the token in the image config (ENV) and in the history (ARG used by RUN)?"""
    findings = scan.scan_image(demo_images["env"], secret_values=[FAKE_SECRET])
    where = {(f.kind, f.where) for f in findings}
    assert (scan.SECRET_VALUE, "config") in where
    assert (scan.SECRET_VALUE, "history") in where
    assert any(f.instruction.startswith("RUN |1 BUILD_TOKEN=") for f in findings if f.where == "history")
    assert not any(f.where == "layer" for f in findings)


@pytest.mark.docker
@pytest.mark.slow
def test_secret_mount_image_keeps_nothing(demo_images):
    """Does the image built with a BuildKit secret mount hold the token nowhere?"""
    assert scan.scan_image(demo_images["mount"], secret_values=[FAKE_SECRET]) == []


@pytest.mark.docker
@pytest.mark.slow
def test_service_image_holds_no_secret_and_no_data():
    """Does the customer-value service image hold no token, .env, key or data file in any layer?"""
    tag = f"cl-sec-test-service-{uuid.uuid4().hex[:8]}:test"
    try:
        engine.build(config.SERVICE_DIR, tag=tag)
        assert scan.scan_image(tag, secret_values=[FAKE_SECRET, "change-me-to-a-long-random-token"]) == []
    finally:
        engine.remove_image(tag)


def test_history_findings_do_not_repeat_the_secret(monkeypatch):
    """Are secret values masked in the instruction a history finding shows, given or only guessed by name?"""
    name = _fake_image(monkeypatch, [("base", {"etc/hostname": b"x"})], extra_history=[
        {"created_by": f"RUN |2 BUILD_TOKEN={FAKE_SECRET} DB_PASSWORD=fake-pw-123 /bin/sh -c make", "empty_layer": True},
    ])
    findings = scan.scan_image(name, secret_values=[FAKE_SECRET])
    assert {f.kind for f in findings} == {scan.SECRET_VALUE, scan.SECRET_NAME}
    for finding in findings:
        assert FAKE_SECRET not in finding.instruction and "fake-pw-123" not in finding.instruction


def test_cli_scan_lists_findings_and_exits_1(monkeypatch, capsys):
    """Does `containerlab scan` print one line per finding and exit 1, and exit 2 with a message for a missing image?"""
    from containerlab import cli

    name = _fake_image(monkeypatch, [("COPY .env .", {"app/.env": b"X=1"})])
    with pytest.raises(SystemExit) as caught:
        cli.main(["scan", name])
    assert caught.value.code == 1
    assert "secret-file" in capsys.readouterr().out

    monkeypatch.undo()  # the real engine again: it has no such image
    assert cli.main(["scan", f"cl-sec-no-such-image-{uuid.uuid4().hex[:8]}:x"]) == 2
    assert "no local image" in capsys.readouterr().err


def test_cli_scan_reads_secrets_from_a_file_and_an_environment_variable(monkeypatch, capsys, tmp_path):
    """Do --secret-file and --secret-env find the value they name, and refuse a missing one clearly?"""
    from containerlab import cli

    other = "cl-sec-OTHER-token-1111-not-real"
    name = _fake_image(monkeypatch, [("RUN echo", {"app/settings.txt": f"a={FAKE_SECRET} b={other}".encode()})])
    token_file = tmp_path / "token.txt"
    token_file.write_text(FAKE_SECRET + "\n")
    monkeypatch.setenv("CL_TEST_SECRET", other)
    with pytest.raises(SystemExit) as caught:
        cli.main(["scan", name, "--secret-file", str(token_file), "--secret-env", "CL_TEST_SECRET"])
    assert caught.value.code == 1
    out = capsys.readouterr().out
    assert out.count(scan.SECRET_VALUE) == 2
    assert FAKE_SECRET not in out and other not in out

    monkeypatch.delenv("CL_TEST_SECRET")
    assert cli.main(["scan", name, "--secret-env", "CL_TEST_SECRET"]) == 2
    assert "CL_TEST_SECRET is not set" in capsys.readouterr().err
    assert cli.main(["scan", name, "--secret-file", str(tmp_path / "missing.txt")]) == 2
    assert "Cannot read the secret file" in capsys.readouterr().err


def test_a_full_disk_while_an_archive_is_read_is_the_graders_pressure_not_the_images_fault(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a full disk while `docker save`'s archive is read raise ScanError with pressure, so that the class
    grader grades the student again, alone (a damaged archive raises ScanError without it)?"""
    import errno

    def archive(disk_full: bool):
        def files(image_name: str):
            raise OSError(errno.ENOSPC, "No space left on device") if disk_full else tarfile.ReadError("truncated")
            yield  # a generator, as the real one
        return files

    monkeypatch.setattr(scan, "_archive_files", archive(False))
    with pytest.raises(scan.ScanError, match="truncated") as damaged:
        scan.layer_contents("some-image")
    assert damaged.value.pressure == ()
    monkeypatch.setattr(scan, "_archive_files", archive(True))
    with pytest.raises(scan.ScanError, match="No space left") as full:
        scan.layer_contents("some-image")
    assert full.value.pressure == ("the disk was full while the archive of some-image was read",)


def test_an_image_the_grader_cannot_read_is_not_the_students_failed_data_check(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path) -> None:
    """Does exercise 1's hidden data check raise when the image it just built cannot be read (the grader then
    records its own failure and grades again), instead of failing the student with 'Build the image again'?"""
    from containerlab.checks import ex1

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "customers.csv").write_text("a,b\n1,2\n")

    def unreadable(*args, **kwargs):
        raise scan.ScanError("The archive of x could not be read ([Errno 28] No space left on device)")

    monkeypatch.setattr(scan, "scan_image", unreadable)
    with pytest.raises(scan.ScanError, match="No space left"):
        ex1.data_check("cl-ex-some-image:tag", tmp_path / "data")
