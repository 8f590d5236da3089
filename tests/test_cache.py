"""The cache's ground rules: atomic publishing, seals that catch damage, quarantine, and locks."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from probebank.cache import atomic, checksums, entry, locks, quarantine


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PROBEBANK_CACHE", str(root))
    return root


def _entry(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"\x00\x01" * 1000)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("hello")
    checksums.seal(folder)
    return folder


def test_temporary_names_are_unique_and_beside_the_target(tmp_path: Path) -> None:
    final = tmp_path / "x.jsonl"
    names = {atomic.temporary_name(final) for _ in range(100)}
    assert len(names) == 100 and all(n.parent == tmp_path and atomic.TMP_MARK in n.name for n in names)


def test_staging_folder_is_published_whole_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    with atomic.staging_folder(final) as staging:
        (staging / "f").write_text("1")
        assert not final.exists()
    assert (final / "f").read_text() == "1"
    with pytest.raises(RuntimeError), atomic.staging_folder(final) as staging:
        (staging / "f").write_text("2")
        raise RuntimeError("killed mid-way")
    assert (final / "f").read_text() == "1"  # the earlier entry is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no staging leftover


@pytest.mark.parametrize("damage, expected", [
    (lambda f: (f / "a.bin").write_bytes(b"\x00\x02" * 1000), "a.bin differs from its checksum"),
    (lambda f: (f / "a.bin").write_bytes(b"\x00"), "a.bin has 1 bytes"),
    (lambda f: (f / "sub" / "b.txt").unlink(), "sub/b.txt is missing"),
    (lambda f: (f / checksums.SEAL).write_text("{"), "checksums.json is unreadable"),
    (lambda f: (f / checksums.SEAL).unlink(), "has no checksums.json"),
])
def test_a_seal_catches_every_kind_of_damage(tmp_path: Path, damage, expected: str) -> None:
    folder = _entry(tmp_path / "e")
    assert checksums.problem(folder) is None
    damage(folder)
    why = checksums.problem(folder)
    assert why is not None and expected in str(why)


def test_a_passed_check_is_not_repeated_in_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _entry(tmp_path / "e")
    assert checksums.problem(folder) is None
    calls = []
    monkeypatch.setattr(checksums, "sha256_file", lambda p: calls.append(p) or "x")
    assert checksums.problem(folder) is None and calls == []
    damaged = folder / "sub" / "b.txt"
    damaged.write_text("hellO")  # same size, rewritten: its stamp changed, so it is hashed again
    st = damaged.stat()  # (on a coarse-clock filesystem the rewrite could keep the mtime: make it differ)
    os.utime(damaged, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert checksums.problem(folder) is not None and calls


def test_content_digest_ignores_excluded_files_only(tmp_path: Path) -> None:
    a, b = _entry(tmp_path / "a"), _entry(tmp_path / "b")
    (b / "sub" / "b.txt").write_text("other")
    checksums.seal(b)
    assert checksums.content_digest(a) != checksums.content_digest(b)
    assert checksums.content_digest(a, exclude=("sub/b.txt",)) == checksums.content_digest(b, exclude=("sub/b.txt",))


def test_single_file_seal(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps([1, 2]))
    assert checksums.file_problem(path) is not None  # no .sum yet: unfinished
    checksums.seal_file(path)
    assert checksums.file_problem(path) is None
    path.write_text(json.dumps([1, 3]))  # same size, other content
    assert "differs" in str(checksums.file_problem(path))


def test_quarantine_moves_the_entry_aside_and_says_why(cache: Path, capsys) -> None:
    folder = _entry(cache / "built" / "x" / "v1-abc")
    moved = quarantine.quarantine(folder, "a.bin differs from its checksum")
    assert not folder.exists() and moved is not None and (moved / "a.bin").is_file()
    assert moved.parent == cache / "quarantine"
    err = capsys.readouterr().err
    assert "built/x/v1-abc" in err and "a.bin differs" in err and err.count("\n") == 1


def test_reuse_or_make_makes_once_and_remakes_a_damaged_entry(cache: Path) -> None:
    final = cache / "records" / "k"
    made = []

    def make(staging: Path) -> None:
        made.append(1)
        (staging / "r.jsonl").write_text("x\n")

    assert entry.reuse_or_make(final, make, what="t") is False
    assert entry.reuse_or_make(final, make, what="t") is True and len(made) == 1
    (final / "r.jsonl").write_text("y\n")  # damaged after it was sealed
    assert entry.reuse_or_make(final, make, what="t") is False and len(made) == 2
    assert (final / "r.jsonl").read_text() == "x\n"
    assert len(list((cache / "quarantine").iterdir())) == 1


def test_a_second_maker_waits_for_the_first_and_reuses_its_work(cache: Path) -> None:
    final = cache / "store" / "k"
    made, results = [], []

    def make(staging: Path) -> None:
        made.append(threading.get_ident())
        time.sleep(0.3)
        (staging / "a").write_text("1")

    # filelock's FileLock is reentrant per thread-less object; separate threads each get their own lock object
    threads = [threading.Thread(target=lambda: results.append(entry.reuse_or_make(final, make, what="t")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and sorted(results) == [False, True, True]


def test_lock_files_live_in_the_cache(cache: Path) -> None:
    with locks.entry_lock(cache / "store" / "abc"):
        held = list((cache / "locks").iterdir())
    assert len(held) == 1 and held[0].suffix == ".lock"
