"""The fault battery: a damaged cache or a bad --out ends in recovery or in exit 2, never a wrong number.

One clean run fills a reference cache; each case copies it, damages one file the way a crash, a full
disk or a stray edit would, and runs again. The second run must exit 0 with the same F1 values, and
say in one line which entry it set aside (or exit 2 naming the file and the fix).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import GOOD_CARD, TOY_PLUGIN, write

from probebank.cli import main
from probebank.results.records import RECORDS_FILE


def _args(bank: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(bank), "--out", str(out),
            "--no-progress", "--seeds", "0,1", "--bases", "identity,pca", *extra]


def _figures(out: Path) -> list[tuple]:
    """What a user reads from a run: every probe's identity, units and F1 (not its wall time)."""
    rows = []
    for line in (out / RECORDS_FILE).read_text().splitlines():
        r = json.loads(line)
        rows.append((r["feature"], r["layer"], r["basis"], r["method"], r["k"], r["seed"], tuple(r["units"]),
                     r["metrics"]["f1"]))
    return sorted(rows)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """(bank folder, clean cache, figures of the clean run)."""
    root = tmp_path_factory.mktemp("faults")
    write(root / "empty-bank" / "registry.yaml", "version: 1\ndatasets: {}\n")
    (root / "empty-bank" / "datasets").mkdir()
    bank = root / "bank"
    write(bank / "toy-words" / "card.yaml", GOOD_CARD.format(name="toy-words", builder="toy-words"))
    write(bank / "toy_plugin.py", TOY_PLUGIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBEBANK_BANK", str(root / "empty-bank"))
        mp.setenv("PROBEBANK_CACHE", str(root / "cache"))
        assert main(_args(bank, root / "out")) == 0
    figures = _figures(root / "out")
    assert figures
    return bank, root / "cache", figures, root / "empty-bank"


STORE, BUILT, RECORDS, BASES = "store/*/", "built/toy-words/v*/", "records/*/", "bases/*/"


def _one(folder: Path, pattern: str) -> Path:
    if pattern.startswith(STORE):  # the dataset's store, not the basis corpus's
        stores = [p for p in folder.glob(STORE) if
                  json.loads((p / "meta.json").read_text())["parts"]["dataset"]["name"] == "toy-words"]
        assert len(stores) == 1
        pattern = str(stores[0].relative_to(folder)) + "/" + pattern[len(STORE):]
    found = sorted(folder.glob(pattern))
    assert found, f"no {pattern} under {folder}"
    return found[0]


def _noise_after_header(path: Path) -> None:
    """Finite fp16 noise over an .npy file's data, keeping its valid header and size."""
    data = bytearray(path.read_bytes())
    header = 128
    rng = np.random.default_rng(0)
    data[header:] = rng.standard_normal((len(data) - header) // 2).astype(np.float16).tobytes()
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _relabel(built: Path) -> None:
    """Flip every label of a built dataset and save it in place (valid Arrow, new content)."""
    from datasets.load import load_from_disk

    ds = load_from_disk(str(built / "data"))
    flipped = ds.map(lambda row: {"label": 1 - row["label"]})
    tmp = built.parent / "relabelled"
    flipped.save_to_disk(str(tmp))
    for f in (built / "data").iterdir():
        f.unlink()
    for f in tmp.iterdir():
        shutil.move(str(f), built / "data" / f.name)


def _leftovers(cache: Path) -> None:
    """What killed writers leave: a staging folder, a half-written records file, a garbage lock file."""
    (cache / "store" / ".abc.tmp-99999999-dead").mkdir()
    (cache / "store" / ".abc.tmp-99999999-dead" / "mlp.npy").write_bytes(b"\x93NUMPY")
    (cache / "records" / ".x.tmp-99999999-dead").write_text("{not json\n")
    (cache / "locks" / "garbage.lock").write_text("junk")


CASES: dict[str, tuple[Callable[[Path], None], str | None]] = {
    "store shard: noise after a valid header": (
        lambda c: _noise_after_header(_one(c, STORE + "shards/00000/mlp.npy")), "mlp.npy differs from its checksum"),
    "store shard: truncated": (lambda c: _truncate(_one(c, STORE + "shards/00000/mlp.npy")), "mlp.npy has"),
    "store shard: a rows file deleted": (lambda c: _one(c, STORE + "shards/00000/rows_label.npy").unlink(),
                                         "rows_label.npy is missing"),
    "store shard: folder deleted": (lambda c: shutil.rmtree(_one(c, STORE + "shards/00000")), "is missing"),
    "store: gathered rows file deleted": (lambda c: _one(c, STORE + "rows_label.npy").unlink(),
                                          "rows_label.npy is missing"),
    "store: meta.json truncated": (lambda c: _truncate(_one(c, STORE + "meta.json")), "meta.json"),
    "store: seal deleted": (lambda c: _one(c, STORE + "checksums.json").unlink(), "no checksums.json"),
    "built dataset: relabelled": (lambda c: _relabel(_one(c, BUILT)), "differs from its checksum"),
    "built dataset: Arrow file truncated": (lambda c: _truncate(_one(c, BUILT + "data/*.arrow")), ".arrow has"),
    "built dataset: meta.json garbled": (lambda c: _one(c, BUILT + "meta.json").write_text("{"), "meta.json has"),
    "records cache: a bad line appended": (
        lambda c: _one(c, RECORDS + RECORDS_FILE).open("a").write("{not a record\n"), "records.jsonl has"),
    "records cache: file deleted": (lambda c: _one(c, RECORDS + RECORDS_FILE).unlink(), "records.jsonl is missing"),
    "fitted basis: noise in its weights": (
        lambda c: _noise_after_header(_one(c, BASES + "arrays.safetensors")), "arrays.safetensors differs"),
    "leftovers of killed writers": (_leftovers, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_cache_is_repaired_never_trusted(reference, tmp_path: Path, monkeypatch, capsys, case: str) -> None:
    bank, clean, figures, empty = reference
    cache = tmp_path / "cache"
    shutil.copytree(clean, cache)
    damage, says = CASES[case]
    damage(cache)
    monkeypatch.setenv("PROBEBANK_BANK", str(empty))
    monkeypatch.setenv("PROBEBANK_CACHE", str(cache))
    capsys.readouterr()
    code = main(_args(bank, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    assert _figures(tmp_path / "out") == figures  # never a wrong number
    if says is not None:
        lines = [line for line in err.splitlines() if line.startswith("cache: ")]
        assert len(lines) == 1 and says in lines[0], err
    # repaired for good: a third run finds nothing to say
    assert main(_args(bank, tmp_path / "out2")) == 0
    assert "cache: " not in capsys.readouterr().err
    assert _figures(tmp_path / "out2") == figures


def test_records_never_outlive_the_store_they_came_from(reference, tmp_path: Path, monkeypatch) -> None:
    """A store whose contents changed (and were sealed again) gets new probes, not the old records."""
    from probebank.cache.checksums import seal

    bank, clean, figures, empty = reference
    cache = tmp_path / "cache"
    shutil.copytree(clean, cache)
    shard = _one(cache, STORE + "shards/00000")
    _noise_after_header(shard / "mlp.npy")
    seal(shard)
    seal(shard.parent.parent)
    monkeypatch.setenv("PROBEBANK_BANK", str(empty))
    monkeypatch.setenv("PROBEBANK_CACHE", str(cache))
    assert main(_args(bank, tmp_path / "out")) == 0
    assert len([p for p in (cache / "records").iterdir() if p.is_dir()]) == 2  # a new probe key
    assert _figures(tmp_path / "out") != figures


@pytest.mark.parametrize("setup, expected", [
    (lambda out: out.write_text("not a folder"), "is a file, not a folder"),
    (lambda out: out.parent.joinpath("file").write_text("x"), "is not writable"),
])
def test_a_bad_out_exits_2_naming_it(bank, tmp_path: Path, capsys, setup, expected: str) -> None:
    out = tmp_path / "results"
    setup(out)
    target = out if out.exists() else tmp_path / "file" / "sub"
    code = main(_args(bank(), target))
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "--out" in err


def test_a_read_only_out_exits_2_before_anything_runs(bank, tmp_path: Path, capsys, monkeypatch) -> None:
    import probebank.results.folder as folder_module

    out = tmp_path / "results"
    out.mkdir()
    real = folder_module._writable  # root may write anywhere, so the read-only answer is what we simulate
    monkeypatch.setattr(folder_module, "_writable", lambda p: False if Path(p) == out else real(p))
    code = main(_args(bank(), out))
    err = capsys.readouterr().err
    assert code == 2 and "read-only" in err and "chmod" in err


FAILING_PLUGIN = TOY_PLUGIN.replace('register("toy-words", build)', 'register("toy-words", broken)') + '''

def broken(ctx):
    raise ValueError("the source file is damaged")
'''


@pytest.mark.parametrize("how", ["--limit 0", "a dataset that fails to build"])
def test_a_failed_run_leaves_the_earlier_folder_as_it_was(bank, tmp_path: Path, how: str) -> None:
    folder, out = bank(), tmp_path / "results"
    assert main(_args(folder, out)) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    if how == "--limit 0":
        code = main(_args(folder, out, "--limit", "0"))
        assert code == 2
    else:
        broken = tmp_path / "broken-bank"
        write(broken / "toy-words" / "card.yaml", GOOD_CARD.format(name="toy-words", builder="toy-words"))
        write(broken / "broken_plugin.py", FAILING_PLUGIN)
        with pytest.raises(ValueError, match="damaged"):
            main(_args(broken, out))
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
