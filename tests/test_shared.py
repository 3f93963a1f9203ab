"""What the workers of a class grading share (containerlab.shared): scans and probes of images with one content.

The engine is faked here (unit tests): an image is an ``ImageInfo`` with a content
digest, and a probe's container run is counted instead of made. The scan's sharing
is tested in test_scan.py; the class grader's use of both, on the real engine, by the
corpus and tests/test_batch.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from containerlab import engine, shared
from containerlab.checks import service

CASES = [({"tenure_months": 12.0}, 100.0), ({"tenure_months": 24.0}, 200.0)]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Images whose content digest is their name before the colon; each container run of a probe is recorded."""
    started: list[str] = []

    def run_probe(image: str, found: object, cases: list, **kwargs: object) -> service.Probe:
        started.append(image)
        if image.startswith("broken"):
            return service.Probe(problem="It exited at once.")
        return service.Probe(healthy=True, answers=[(c, e, e) for c, e in cases], notes=["A note."])

    monkeypatch.setattr(engine, "image", lambda name: engine.ImageInfo(id="sha256:" + name))
    monkeypatch.setattr(engine, "content_digest", lambda found: found.id.split(":")[1])
    monkeypatch.setattr(service, "_run_probe", run_probe)
    monkeypatch.setattr(shared, "_folder", None)
    return started


def test_a_probe_of_an_image_with_the_same_content_is_taken_from_another_worker(tmp_path: Path,
                                                                               runs: list[str]) -> None:
    """In a class grading, is an image with the same content, asked the same cases, started only once?"""
    shared.share(tmp_path / "shared")
    first = service.probe_service("same:anna", CASES)
    again = service.probe_service("same:omar", CASES)
    assert runs == ["same:anna"]
    assert again == first and again.healthy and again.notes == ["A note."]
    service.probe_service("same:li", CASES[:1])  # other cases: another run
    service.probe_service("other:zoe", CASES)  # other content: another run
    service.probe_service("same:ann", CASES, limits=engine.SandboxLimits(memory_bytes=2**29))  # other limits
    service.probe_service("same:bo", CASES, environment={"API_TOKEN": "t"})  # a student's own settings: never shared
    assert runs == ["same:anna", "same:li", "other:zoe", "same:ann", "same:bo"]


def test_a_failed_probe_is_never_shared_and_nothing_is_shared_outside_a_class_grading(tmp_path: Path,
                                                                                       runs: list[str]) -> None:
    """Is a probe that did not come up healthy started again for the next student, and does a check cell
    (no shared folder) start its own container every time?"""
    shared.share(tmp_path / "shared")
    service.probe_service("broken:anna", CASES)
    service.probe_service("broken:omar", CASES)
    assert runs == ["broken:anna", "broken:omar"]
    shared.share(None)
    service.probe_service("same:anna", CASES)
    service.probe_service("same:omar", CASES)
    assert runs[2:] == ["same:anna", "same:omar"]


def test_an_unreadable_entry_counts_as_missing(tmp_path: Path, runs: list[str]) -> None:
    """Does a damaged shared entry (a crash mid-write on another machine's copy) lead to a fresh probe?"""
    shared.share(tmp_path)
    service.probe_service("same:anna", CASES)
    [entry] = tmp_path.glob("probe-*.json")
    entry.write_text("{ not json", encoding="utf-8")
    service.probe_service("same:omar", CASES)
    entry.write_text('{"answers": [["x"]], "notes": []}', encoding="utf-8")
    service.probe_service("same:li", CASES)
    assert runs == ["same:anna", "same:omar", "same:li"]


def test_a_worker_waits_for_an_entry_another_is_computing_instead_of_computing_it_beside_it(tmp_path: Path) -> None:
    """While one worker computes an entry, does another that asks for the same one wait and take it, and compute
    it itself only when the first one's value was not to be kept?"""
    import threading
    import time

    shared.share(tmp_path)
    try:
        computed: list[str] = []

        def slow(who: str, value: int) -> object:
            def compute() -> int:
                computed.append(who)
                time.sleep(0.5)
                return value
            return compute

        def ask(who: str, value: int, got: list[int], entry: str) -> None:
            got.append(shared.computed("probe", entry, slow(who, value), read=lambda doc: doc and doc["value"],
                                       write=lambda v: {"value": v} if v > 0 else None))

        for entry, first_value, expected in (("kept", 7, (["first"], [7, 7])),
                                            ("not-kept", -1, (["first", "second"], [-1, 5]))):
            computed.clear()
            got: list[int] = []
            first = threading.Thread(target=ask, args=("first", first_value, got, shared.key(entry)))
            first.start()
            time.sleep(0.1)
            ask("second", 5, got, shared.key(entry))
            first.join()
            assert (computed, got) == expected
    finally:
        shared.share(None)


def test_the_key_of_files_follows_their_names_bytes_and_links_not_their_place(tmp_path: Path) -> None:
    """Do two copies of a folder share a key, while a changed byte, a new file, a renamed file or a changed
    link does not, and a missing path has none?"""
    def folder(name: str) -> Path:
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        (root / "data" / "a.csv").write_text("x,y\n1,2\n", encoding="utf-8")
        (root / "link").symlink_to("data/a.csv")
        return root

    one, two = folder("one"), folder("two")
    first = shared.files_key(one)
    assert first is not None and first == shared.files_key(two)
    assert shared.files_key(one / "data" / "a.csv") == shared.files_key(two / "data" / "a.csv") is not None
    changed = folder("three")
    (changed / "data" / "a.csv").write_text("x,y\n1,3\n", encoding="utf-8")
    added = folder("four")
    (added / "data" / "b.csv").write_text("", encoding="utf-8")
    renamed = folder("five")
    (renamed / "data" / "a.csv").rename(renamed / "data" / "c.csv")
    relinked = folder("six")
    (relinked / "link").unlink()
    (relinked / "link").symlink_to("data")
    keys = {shared.files_key(p) for p in (changed, added, renamed, relinked)}
    assert first not in keys and len(keys) == 4
    assert shared.files_key(tmp_path / "missing") is None
    assert shared.files_key(folder("seven"), limit=4) is None
