"""`probebank cache verify` and `probebank cache gc` on a cache made by a real run (tiny random model)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from probebank.cache.checksums import SEAL, seal
from probebank.cli import main
from probebank.extract.store import STORE_FORMAT
from probebank.run import RunConfig, run


def _run(bank: Path, out: Path) -> None:
    run(RunConfig(model="tiny:llama", datasets=["toy-words"], include=[bank], out=out, progress=False,
                  methods=["mean_diff"]), log=lambda m: None)


def _entries(cache: Path) -> dict[str, bytes]:
    """Every sealed entry of the cache, by path, with its seal's bytes (a remade entry has a new seal)."""
    return {p.parent.relative_to(cache).as_posix(): p.read_bytes() for p in cache.rglob(SEAL)
            if "quarantine" not in p.parts}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_verify_finds_damage_and_repair_quarantines_it(bank, cache: Path, tmp_path: Path, capsys) -> None:
    folder = bank()
    _run(folder, tmp_path / "a")
    assert main(["cache", "verify"]) == 0
    out = capsys.readouterr().out
    assert " 0 bad" in out
    (records,) = (cache / "records").iterdir()
    data = bytearray((records / "records.jsonl").read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")  # same size: only a hash finds it
    (records / "records.jsonl").write_bytes(bytes(data))
    assert main(["cache", "verify", "--quick"]) == 0  # sizes only
    capsys.readouterr()
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"records/{records.name}" in out and "records.jsonl differs from its checksum" in out and " 1 bad" in out

    (shard,) = (cache / "store").glob("*/shards/00000")
    npy = next(shard.glob("rows_*.npy"))
    npy.write_bytes(npy.read_bytes()[:-8])  # truncated: sizes find it
    assert main(["cache", "verify", "--quick"]) == 1
    out = capsys.readouterr().out
    assert f"store/{shard.parent.parent.name}" in out and "bytes, its seal says" in out

    assert main(["cache", "verify", "--repair"]) == 0
    out = capsys.readouterr().out
    assert " 2 bad, moved to quarantine/" in out
    # the records entry goes whole; of the store only its bad shard goes, so its other shards are kept
    assert not records.exists() and not shard.exists() and shard.parent.parent.is_dir()
    assert len(list((cache / "quarantine").iterdir())) == 2
    assert main(["cache", "verify"]) == 0
    capsys.readouterr()
    _run(folder, tmp_path / "b")  # the lost shard is extracted again, the records made again
    assert shard.is_dir() and (shard.parent.parent / SEAL).is_file() and records.is_dir()
    assert (tmp_path / "b" / "records.jsonl").read_text().count("\n") == \
        (tmp_path / "a" / "records.jsonl").read_text().count("\n")
    assert main(["cache", "verify"]) == 0
    out = capsys.readouterr().out
    assert " 0 bad" in out and "older format" not in out


def test_gc_removes_garbage_and_keeps_what_a_rerun_reuses(bank, cache: Path, tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    folder = bank()
    _run(folder, tmp_path / "a")
    live = _entries(cache)
    assert {p.split("/")[0] for p in live} >= {"store", "built", "records"}
    # garbage of every kind gc knows
    (cache / "quarantine" / "records__old").mkdir(parents=True)
    (cache / "quarantine" / "records__old" / "records.jsonl").write_text("{}\n")
    dead = cache / "records" / f".abc.tmp-{2 ** 22 + 1}-0123abcd"  # beyond any pid: its writer is gone
    dead.write_text("half")
    old_tmp = cache / "gates" / "0123.tmp"
    old_tmp.parent.mkdir(parents=True, exist_ok=True)
    old_tmp.write_text("[]")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    running = cache / "store" / f".k.tmp-{os.getpid()}-0123abcd"  # a writer that still runs: kept
    running.mkdir()
    legacy = cache / "records" / "0123456789abcdef.jsonl"
    legacy.write_text("{}\n")
    gone = cache / "built" / "no-such-dataset" / "v1.0-0123456789abcdef"
    gone.mkdir(parents=True)
    (gone / "meta.json").write_text(json.dumps({"content_hash": "f" * 64}))
    seal(gone)
    orphan = cache / "store" / ("0" * 24)
    orphan.mkdir()
    (orphan / "meta.json").write_text(json.dumps({"key": "0" * 24, "status": "partial", "format": STORE_FORMAT,
                                                  "parts": {"dataset": {"content_hash": "f" * 64}}}))
    older = cache / "store" / ("1" * 24)
    older.mkdir()
    (older / "meta.json").write_text(json.dumps({"key": "1" * 24, "status": "complete", "format": 2}))
    unsealed = cache / "built" / "toy-words" / "v1.0-00000000000000ff"
    (unsealed / "data").mkdir(parents=True)
    planted = [cache / "quarantine", dead, old_tmp, legacy, gone, orphan, older, unsealed]

    assert main(["cache", "gc", "--dry-run", "--include", str(folder)]) == 0
    out = capsys.readouterr().out
    assert all(p.exists() for p in planted) and running.exists()
    for why in ("temporary leftovers", "quarantine", "older formats", "built datasets not in the catalog",
                "stores of no built dataset", "would remove"):
        assert why in out, why

    assert main(["cache", "gc", "--include", str(folder)]) == 0
    out = capsys.readouterr().out
    assert [p for p in planted if p.exists()] == [] and running.exists() and not gone.parent.exists()
    assert "removed" in out and _entries(cache) == live
    assert not [p for p in (cache / "locks").iterdir()]  # no process holds them now

    import probebank.scale.units as units_module

    def boom(*args, **kwargs):
        raise AssertionError("probed again after gc")

    monkeypatch.setattr(units_module, "evaluate_store", boom)
    _run(folder, tmp_path / "b")  # everything reused: built dataset, store and records
    assert _entries(cache) == live
    assert (tmp_path / "b" / "records.jsonl").read_text() == (tmp_path / "a" / "records.jsonl").read_text()


def test_gc_without_the_include_folder_drops_its_built_dataset_and_what_hangs_on_it(bank, cache: Path,
                                                                                   tmp_path: Path, capsys) -> None:
    _run(bank(), tmp_path / "a")
    assert main(["cache", "gc"]) == 0
    out = capsys.readouterr().out
    assert "built datasets not in the catalog" in out and "stores of no built dataset" in out
    assert "records of no built dataset" in out
    assert not list((cache / "store").iterdir()) and not list((cache / "records").iterdir())


def test_a_tmp_file_inside_a_sealed_entry_is_part_of_it(cache: Path) -> None:
    from probebank.cache.inventory import leftovers

    entry = cache / "sources" / "pypi" / "pkg-1.0-0123456789ab"
    (entry / "unpacked").mkdir(parents=True)
    (entry / "unpacked" / "fixture.tmp").write_text("a file of the package")
    os.utime(entry / "unpacked" / "fixture.tmp", (time.time() - 7200, time.time() - 7200))
    seal(entry)
    stale = entry / f".x.tmp-{2 ** 22 + 1}-0123abcd"
    stale.write_text("left by a killed writer")
    assert [p for p, _ in leftovers(cache)] == [stale]
