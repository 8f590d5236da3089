"""The sae-probes bridge: every task file of the pinned wheel is a dataset, a few build right and pass their
gates, and `probebank run --test-on ood` fits on a task and scores on its out-of-distribution set.

The wheel (sae-probes 0.4.2, 45 MB) is fetched once into PROBEBANK_CACHE; the task texts are read from it
here, never written into the repository. The end-to-end run uses a tiny random model.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from probebank.cli import main
from probebank.data.registry import load_catalog
from probebank.data.sources import fetch_pin
from probebank_plugins.datasets import sae_probes_cards
from probebank_plugins.datasets.sae_probes import MASTER, OOD_DIR, TASK_DIR, cut_left, last_word, read_table, task_rows

BUILDER = "sae-probes"


@pytest.fixture(scope="module")
def wheel() -> Path:
    return fetch_pin(sae_probes_cards.PIN)


@pytest.fixture(scope="module")
def bridge_cards() -> dict:
    catalog = load_catalog()
    return {n: e.card for n, e in catalog.entries.items() if e.card.builder == BUILDER}


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_task_file_of_the_wheel_is_a_dataset(wheel: Path, bridge_cards: dict) -> None:
    task_files = sorted(f"{TASK_DIR}/{p.name}" for p in (wheel / TASK_DIR).glob("*.csv.zst"))
    ood_files = sorted(f"{OOD_DIR}/{p.name}" for p in (wheel / OOD_DIR).glob("*_OOD.csv.zst"))
    every = sorted(str(p.relative_to(wheel)) for p in (wheel / "sae_probes").rglob("*.csv.zst"))
    # Nothing else is data: the package's task table and the list of phrase translations behind one OOD set.
    assert set(every) - set(task_files) - set(ood_files) == {MASTER, f"{OOD_DIR}/66_living-room_translations.csv.zst"}
    assert len(task_files) > 100 and len(ood_files) >= 8  # 155 and 8 in 0.4.2
    by_file = {card.params["file"]: card for card in bridge_cards.values()}
    assert sorted(by_file) == sorted(task_files + ood_files) and len(by_file) == len(bridge_cards)

    kinds = {Path(r["Dataset save name"]).name + ".zst": r["Data type"] for r in read_table(wheel / MASTER)
             if (r.get("Dataset Tag") or "").strip()}
    want = {"Binary Classification": "binary", "Multiclass Classification": "multiclass",
            "Continuous Data": "regression"}
    for file in task_files:
        assert by_file[file].labels.type == want[kinds[Path(file).name]], file
    assert Counter(by_file[f].labels.type for f in task_files) == Counter(want[kinds[Path(f).name]] for f in task_files)

    catalog = load_catalog()
    tasks = sorted(by_file[f].name for f in task_files)
    assert sorted(catalog.suite("sae-probes").datasets) == tasks
    with_ood = sorted(c.name for c in bridge_cards.values() if c.test_sets)
    assert sorted(catalog.suite("sae-probes-ood").datasets) == with_ood and len(with_ood) == len(ood_files)
    for file in ood_files:  # each OOD set is the `ood` test set of the task with its number and tag
        parent = by_file[f"{TASK_DIR}/{Path(file).name.replace('_OOD', '')}"]
        assert parent.test_sets == {"ood": by_file[file].name}
        assert by_file[file].labels == parent.labels and by_file[file].category == parent.category
    for card in bridge_cards.values():
        assert card.aggregation == "last" and card.license.startswith("MIT") and "Kantamneni" in card.citation
        assert card.sources[0].sha256 == sae_probes_cards.PIN.sha256


def test_committed_cards_are_what_the_generator_writes(wheel: Path) -> None:
    from probebank.paths import bank_root

    files = sae_probes_cards.generate(bank_root(), wheel)
    stale = [str(p) for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"run `python -m probebank_plugins.datasets.sae_probes_cards`: {stale[:3]}"


def test_task_rows_keep_each_prompt_once_and_drop_conflicts() -> None:
    rows = [{"prompt": p, "target": t} for p, t in [
        ("Ada Lovelace", "0"), ("Ada Lovelace", "0"),        # a repeat: kept once
        ("ada lovelace!", "0"),                              # a near-repeat with the same label: dropped
        ("Alan Turing", "1"), ("Alan Turing", "0"),          # one prompt, two labels: dropped
        ("3 + 4 =", "7"), ("3 * 4 =", "12"),                 # near-equal texts, other labels: both kept
        ("   ", "1"), ("Grace Hopper  \n", "1")]]            # empty prompt dropped; trailing whitespace cut
    assert task_rows(rows, 100) == [("Ada Lovelace", "0"), ("3 + 4 =", "7"), ("3 * 4 =", "12"), ("Grace Hopper", "1")]
    text = "alpha beta gamma delta"
    assert cut_left(text, 100) == text and cut_left(text, 12) == "gamma delta"
    assert last_word("Ada Lovelace") == (4, 12) and last_word("x\ny") == (2, 3) and last_word("one") == (0, 3)


def _build(name: str, limit: int | None = 60):
    from probebank.data.examples import build_dataset
    from probebank.plugins import get_registered

    return build_dataset(load_catalog().get(name), builders=get_registered().builders, limit=limit, progress=False)


@pytest.mark.parametrize("name", ["sae-probes-5-hist-fig-ismale", "sae-probes-13-us-state", "sae-probes-39-arith-infix",
                                  "sae-probes-90-glue-qnli-ood"])
def test_tasks_build_with_their_files_labels_and_pass_their_gates(wheel: Path, name: str) -> None:
    from probebank.data.examples import row_values
    from probebank.data.gates import run_gates
    from probebank.extract.tokenizer import load_tokenizer

    built = _build(name)
    card = built.card
    raw = read_table(wheel / card.params["file"])
    targets_of: dict[str, set[str]] = {}
    for r in raw:
        targets_of.setdefault(r["prompt"].rstrip(), set()).add(r["target"].strip())
    order = sorted({r["target"].strip() for r in raw})  # sae-probes' LabelEncoder: sorted distinct targets
    texts = built.dataset["text"]
    assert len(set(texts)) == len(texts) and len(texts) >= 40
    for ex in built.dataset.select(range(0, len(texts), 7)):
        # the text is a prompt of the file, or the end of a long one
        source = [ex["text"]] if ex["text"] in targets_of else [p for p in targets_of if p.endswith(ex["text"])]
        assert len(source) == 1, ex["text"][:60]
        (target,) = targets_of[source[0]]
        if card.labels.type == "regression":
            assert row_values(ex) == [float(target)]
        else:
            assert card.labels.classes[ex["label"]] == card.labels.classes[order.index(target)]
        (span,) = ex["targets"]
        assert ex["text"][span["start"]:span["end"]] == ex["text"].split()[-1]
    tok = load_tokenizer()
    report = run_gates(built, tok.tokenizer, tok.revision)
    assert not report.failures, [(r.gate, r.value, r.detail) for r in report.failures]


def test_qnli_ood_labels_follow_sae_probes_label_encoder(wheel: Path) -> None:
    """The OOD file names its classes '1' and 'not_entailment'; sae-probes' LabelEncoder reads '1' as 0."""
    built = _build("sae-probes-90-glue-qnli-ood", limit=None)
    raw = {r["prompt"].rstrip(): r["target"] for r in read_table(wheel / built.card.params["file"])}
    got = Counter((raw[ex["text"]], built.card.labels.classes[ex["label"]]) for ex in built.dataset)
    assert set(got) == {("1", "0"), ("not_entailment", "1")}


def test_feature_splits_score_on_held_out_rows_only() -> None:
    from types import SimpleNamespace

    from probebank.data.schema import DatasetCard
    from probebank.data.splits import feature_splits

    card = DatasetCard(name="toy", version="1.0", category="lexical", description="a toy binary dataset",
                       citation="tests", license="CC0-1.0", builder="toy",
                       labels={"type": "binary", "classes": ["a", "b"]})
    labels = np.array([0, 1] * 20 + [0, 1] * 10)  # 40 task rows, then 20 held-out rows
    groups = np.array([f"g{i}" for i in range(40)] + [f"ood:g{i}" for i in range(20)], dtype=object)
    rows = {"label": labels, "example": np.arange(60)}
    built = SimpleNamespace(card=card, dataset={"group": list(groups)})
    held = np.arange(40, 60)
    (sp,) = feature_splits(built, rows, groups=groups, scored=held)  # type: ignore[arg-type]
    (plain,) = feature_splits(built, {"label": labels[:40], "example": np.arange(40)}, groups=groups[:40])  # type: ignore[arg-type]
    assert set(sp.test) <= set(held) and len(sp.test) == 20 and not set(sp.train) & set(held)
    assert np.array_equal(sp.train, plain.train)  # the training side is the card's own split's
    assert np.array_equal(sp.y_test, labels[sp.test])


def test_test_on_fits_on_the_task_and_scores_on_its_ood_set(tmp_path: Path, capsys) -> None:
    task, ood = "sae-probes-7-hist-fig-ispolitician", "sae-probes-7-hist-fig-ispolitician-ood"
    common = ["run", "--model", "tiny:llama", "--datasets", task, "--limit", "20", "--layers", "0,1", "--seeds", "0,1",
              "--no-progress", "--no-controls"]
    code, out = run_cli(capsys, *common, "--test-on", "ood", "--out", str(tmp_path / "ood"))
    assert code == 0, out
    code, out = run_cli(capsys, *common, "--out", str(tmp_path / "own"))
    assert code == 0, out
    read = {k: [json.loads(line) for line in (tmp_path / k / "records.jsonl").read_text().splitlines()]
            for k in ("ood", "own")}
    ood_built = _build(ood, limit=20)
    n_ood = Counter(ood_built.dataset["label"])
    for rec in read["ood"]:
        p = rec["provenance"]
        assert (p["test_set"], p["test_dataset"], p["test_dataset_hash"]) == ("ood", ood, ood_built.content_hash)
        assert p["dataset"] == task and rec["n_test"] == 2 * min(n_ood.values())  # all OOD rows, balanced
    for rec in read["own"]:
        assert rec["provenance"].get("test_set") is None
    key = ("layer", "seed", "method", "k")
    own = {tuple(r[k] for k in key): r for r in read["own"]}
    for rec in read["ood"]:  # same training rows, other test rows
        twin = own[tuple(rec[k] for k in key)]
        assert rec["n_train"] == twin["n_train"] and rec["n_train_pos"] == twin["n_train_pos"]
    assert {r["n_test"] for r in read["ood"]} != {r["n_test"] for r in read["own"]}
    assert f"{task} [--test-on ood]" in (tmp_path / "ood" / "summary.md").read_text()
    assert f"{ood} (--test-on ood)" in json.loads((tmp_path / "ood" / "alignment.json").read_text())


@pytest.mark.parametrize("args, expected", [
    (["--datasets", "sae-probes-13-us-state"], "1 of the run's 1 datasets have no test set 'ood': sae-probes-13-us-state"),
    (["--suite", "sae-probes"], "--suite sae-probes-ood"),
    (["--datasets", "sae-probes-5-hist-fig-ismale", "--random-init"], "does not combine with"),
])
def test_test_on_without_such_a_test_set_is_a_clear_error(tmp_path: Path, capsys, args: list[str],
                                                          expected: str) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "records.jsonl").write_text("earlier\n")
    code, out = run_cli(capsys, "run", "--model", "tiny:llama", "--test-on", "ood", "--out", str(tmp_path / "out"),
                        "--no-progress", *args)
    assert code == 2 and expected in " ".join(out.split()), out
    assert "--test-on" in out
    assert (tmp_path / "out" / "records.jsonl").read_text() == "earlier\n"  # nothing already there is lost


def test_an_unknown_test_set_name_names_the_datasets_that_have_one(capsys, tmp_path: Path) -> None:
    code, out = run_cli(capsys, "run", "--model", "tiny:llama", "--datasets", "sae-probes-5-hist-fig-ismale",
                        "--test-on", "odd", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 2 and "no test set 'odd'" in out and "no card names a test set of that name" in " ".join(out.split())


def test_a_card_naming_an_unlisted_test_set_is_a_registry_error(tmp_path: Path) -> None:
    from conftest import GOOD_CARD, write

    from probebank.data.registry import load_registry_file
    from probebank.errors import CardError, RegistryError

    write(tmp_path / "datasets" / "toy-words" / "card.yaml",
          GOOD_CARD.format(name="toy-words", builder="toy-words") + "test_sets: {ood: toy-words-ood}\n")
    write(tmp_path / "registry.yaml", """\
        version: 1
        datasets:
          toy-words: {card: datasets/toy-words/card.yaml, version: "1.0", category: lexical}
        """)
    with pytest.raises(RegistryError) as info:
        load_registry_file(tmp_path / "registry.yaml")
    assert "toy-words-ood" in info.value.render() and "registry.yaml" in info.value.render()
    write(tmp_path / "datasets" / "toy-words" / "card.yaml",
          GOOD_CARD.format(name="toy-words", builder="toy-words") + "test_sets: {OOD set: toy-words-ood}\n")
    with pytest.raises(CardError, match="test_sets"):
        load_registry_file(tmp_path / "registry.yaml")
